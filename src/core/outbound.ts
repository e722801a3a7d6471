/**
 * Outbound HTTP with an SSRF guard. The check happens at connect time: the socket's `lookup` resolves the host and
 * refuses if ANY address is not global unicast — IPv4 loopback, private (RFC 1918), link-local (169.254/16: the
 * cloud metadata address), CGNAT, documentation, benchmarking, multicast, reserved; IPv6 anything outside 2000::/3
 * (so IPv4-mapped, IPv4-compatible and NAT64 forms too) or in its special ranges (Teredo, 6to4, documentation) —
 * unless the allow-list names it. IP-literal hosts (which never go through `lookup`) are checked before
 * connecting. A name that resolves to a public address when the URL is checked and to 127.0.0.1 a moment later
 * (DNS rebinding) is therefore still refused: the address checked is the address connected to.
 * Redirects are not followed unless configured; each hop is checked again (scheme, credentials, addresses).
 */
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ipaddr from 'ipaddr.js';
import { MatchdError } from './errors.ts';

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * IPv4: what ipaddr.js calls unicast, minus these (kept explicit so the list is reviewable): "this network",
 * RFC 1918, CGNAT, loopback, link-local (the cloud metadata address), IETF protocol assignments, the documentation
 * and benchmarking networks, the 6to4 relay anycast, multicast, reserved, broadcast.
 */
const V4_DENY = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24',
  '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
].map((c) => ipaddr.parseCIDR(c));

/**
 * IPv6: only global unicast (2000::/3) is reachable at all — which alone rules out ::1, ::, IPv4-mapped
 * (::ffff:0:0/96) and IPv4-compatible (::/96) forms, NAT64 (64:ff9b::/96, 64:ff9b:1::/48), discard, unique-local,
 * link-local, site-local and multicast — minus the special ranges inside it: IETF protocol assignments (2001::/23:
 * Teredo, benchmarking, ORCHID), documentation (2001:db8::/32, 3fff::/20) and 6to4 (2002::/16, which embeds an
 * IPv4 address the relay would connect to).
 */
const V6_GLOBAL = ipaddr.parseCIDR('2000::/3');
const V6_DENY = ['2001::/23', '2001:db8::/32', '2002::/16', '3fff::/20'].map((c) => ipaddr.parseCIDR(c));

const inAny = (a: Addr, list: [Addr, number][]) => list.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));

/**
 * An IPv6 text with a dotted IPv4 tail ("::127.0.0.1", "64:ff9b::1.2.3.4") in all-hex form: ipaddr.js reads any
 * "::a.b.c.d" as IPv4-mapped (::ffff:a.b.c.d), which it is not — the IPv4-compatible ::7f00:1 is another address.
 */
function hexTail(address: string): string {
  return address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
}

const V6_NAMES: [string, string][] = [
  ['::/128', 'unspecified'], ['::1/128', 'loopback'], ['::ffff:0:0/96', 'IPv4-mapped'], ['::/96', 'IPv4-compatible'],
  ['64:ff9b::/96', 'NAT64'], ['64:ff9b:1::/48', 'local-use NAT64'], ['100::/64', 'discard-only'], ['2001::/32', 'Teredo'],
  ['2001:db8::/32', 'documentation'], ['2001::/23', 'IETF protocol assignment'], ['2002::/16', '6to4'], ['3fff::/20', 'documentation'],
  ['fc00::/7', 'unique-local'], ['fe80::/10', 'link-local'], ['fec0::/10', 'site-local'], ['ff00::/8', 'multicast'],
];
const V6_NAMED = V6_NAMES.map(([cidr, label]) => [ipaddr.parseCIDR(cidr), label] as const);

/** What a refused IPv6 address is (the most specific range it falls in), for the refusal message. */
function describeV6(a: ipaddr.IPv6): string {
  const hit = V6_NAMED.filter(([[net, bits]]) => a.match(net, bits)).sort((x, y) => y[0][1] - x[0][1])[0];
  return hit ? hit[1] : 'reserved';
}

export interface GuardOptions {
  /** Addresses or CIDRs that are allowed even though they are in a denied range. */
  allow?: string[];
  /** Allow plain http (https only otherwise). */
  allowHttp?: boolean;
  /** How many redirects to follow (0: none). */
  maxRedirects?: number;
  /** The resolver (tests inject one to simulate DNS rebinding); default `dns.lookup`. */
  resolve?: (hostname: string, options: dns.LookupAllOptions, cb: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;
}

function parseAllow(entry: string): [Addr, number] {
  if (entry.includes('/')) return ipaddr.parseCIDR(entry);
  const a = ipaddr.parse(entry);
  return [a, a.kind() === 'ipv4' ? 32 : 128];
}

export class OutboundGuard {
  private readonly allow: [Addr, number][];
  readonly allowHttp: boolean;
  readonly maxRedirects: number;
  private readonly resolve: NonNullable<GuardOptions['resolve']>;

  constructor(opts: GuardOptions = {}) {
    this.resolve = opts.resolve ?? ((h, o, cb) => dns.lookup(h, o, cb));
    this.allow = (opts.allow ?? []).map(parseAllow);
    this.allowHttp = opts.allowHttp ?? false;
    this.maxRedirects = opts.maxRedirects ?? 0;
  }

  /** Why an address is refused, or null when it may be connected to. */
  addressProblem(address: string): string | null {
    let a: Addr;
    try {
      a = ipaddr.parse(net.isIPv6(address) ? hexTail(address) : address);
    } catch {
      return `${address} is not an IP address`;
    }
    if (inAny(a, this.allow)) return null;
    if (a.kind() === 'ipv6') {
      const v6 = a as ipaddr.IPv6;
      if (!a.match(V6_GLOBAL)) return `${address} is not a global unicast IPv6 address (${describeV6(v6)}; only 2000::/3 is allowed)`;
      if (inAny(a, V6_DENY)) return `${address} is in a special-purpose IPv6 range (${describeV6(v6)})`;
      return null;
    }
    const range = a.range();
    if (range !== 'unicast') return `${address} is a ${range} address`;
    if (inAny(a, V4_DENY)) return `${address} is in a private or special-purpose range`;
    return null;
  }

  /** Check a URL's form (scheme, credentials, IP-literal host); throws MATCHD_URL_REFUSED. */
  checkUrl(raw: string | URL): URL {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new MatchdError('MATCHD_URL_REFUSED', `not a valid URL: ${String(raw).slice(0, 200)}`);
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && this.allowHttp)) {
      throw new MatchdError('MATCHD_URL_REFUSED', `${u.protocol.replace(':', '')} URLs are not allowed (${this.allowHttp ? 'http and https' : 'https'} only)`);
    }
    if (u.username || u.password) throw new MatchdError('MATCHD_URL_REFUSED', 'URLs with credentials are not allowed');
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host)) {
      const problem = this.addressProblem(host);
      if (problem) throw new MatchdError('MATCHD_URL_REFUSED', `refusing ${u.host}: ${problem}`);
    }
    return u;
  }

  /** A `lookup` for sockets: resolves, then refuses the connection if any resolved address is denied. */
  readonly lookup = ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    this.resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      for (const a of addresses) {
        const problem = this.addressProblem(a.address);
        if (problem) return callback(new MatchdError('MATCHD_URL_REFUSED', `refusing ${hostname}: ${problem}`));
      }
      if (addresses.length === 0) return callback(new MatchdError('MATCHD_FETCH_FAILED', `${hostname} did not resolve`));
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  }) as unknown as net.LookupFunction;
}

export interface SendOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The whole exchange, headers and body, must finish within this. */
  timeoutMs: number;
  /** Abort from outside (daemon stopping). */
  signal?: AbortSignal;
}

export interface SendResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  /** The response (body not yet read); call `consume` or `discard`. */
  res: http.IncomingMessage;
}

/** One request through the guard, following redirects only as configured (each hop re-checked). */
export async function send(guard: OutboundGuard, url: string | URL, opts: SendOptions): Promise<SendResult> {
  const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
  let u = guard.checkUrl(url);
  for (let hop = 0; ; hop++) {
    const r = await once(guard, u, opts, signal);
    const loc = r.headers.location;
    if (r.status >= 300 && r.status < 400 && loc && opts.method !== 'POST' && hop < guard.maxRedirects) {
      r.res.resume();
      u = guard.checkUrl(new URL(loc, u));
      continue;
    }
    return r;
  }
}

function once(guard: OutboundGuard, u: URL, opts: SendOptions, signal: AbortSignal): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, {
      method: opts.method ?? 'GET',
      headers: { 'user-agent': 'matchd-webhook', ...opts.headers, ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}) },
      lookup: guard.lookup,
      agent: false,
      signal,
    });
    req.on('response', (res) => {
      res.on('error', () => {}); // reported through the consumer; a late abort must not be an uncaught error
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: u, res });
    });
    req.on('error', (err) => reject(wrap(err, u, signal)));
    req.end(opts.body);
  });
}

function wrap(err: unknown, u: URL, signal: AbortSignal): MatchdError {
  if (err instanceof MatchdError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.cause instanceof MatchdError) return e.cause;
  if (signal.aborted || e.name === 'AbortError') return new MatchdError('MATCHD_FETCH_FAILED', `${u.host}: timed out or aborted`);
  return new MatchdError('MATCHD_FETCH_FAILED', `${u.host}: ${e.code ?? e.message}`);
}

/** Read and drop up to `max` bytes of a response body (so the connection closes cleanly). */
export async function discard(res: http.IncomingMessage, max = 64 * 1024): Promise<void> {
  let n = 0;
  try {
    for await (const chunk of res) {
      n += (chunk as Buffer).length;
      if (n > max) break;
    }
  } catch {
    /* the status is what matters */
  } finally {
    res.destroy();
  }
}

/** A transform that fails with MATCHD_IMAGE_TOO_LARGE (code `tooLarge`) once more than `max` bytes passed. */
export function byteCap(max: number, what: string): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > max) cb(new MatchdError('MATCHD_IMAGE_TOO_LARGE', `${what} is over the ${max}-byte limit`, { limit: max }));
      else cb(null, chunk);
    },
  });
}

/** Fetch an image URL into `file` with the size and time limits; 2xx only. */
export async function fetchImage(guard: OutboundGuard, url: string, file: string, opts: { timeoutMs: number; maxBytes: number; signal?: AbortSignal }): Promise<void> {
  const r = await send(guard, url, { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}), headers: { accept: 'image/*' } });
  if (r.status >= 300 && r.status < 400) {
    r.res.destroy();
    throw new MatchdError('MATCHD_FETCH_FAILED', `${r.url.host} answered ${r.status} (redirect${r.headers.location ? ' to ' + String(r.headers.location).slice(0, 200) : ''}); redirects are ${guard.maxRedirects ? 'limited to ' + guard.maxRedirects : 'not followed'}`);
  }
  if (r.status < 200 || r.status >= 300) {
    r.res.destroy();
    throw new MatchdError('MATCHD_FETCH_FAILED', `${r.url.host} answered ${r.status}`, { status: r.status });
  }
  const declared = Number(r.headers['content-length']);
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    r.res.destroy();
    throw new MatchdError('MATCHD_IMAGE_TOO_LARGE', `the image at ${r.url.host} is ${declared} bytes, over the ${opts.maxBytes}-byte limit`, { limit: opts.maxBytes });
  }
  try {
    await pipeline(r.res, byteCap(opts.maxBytes, `the image at ${r.url.host}`), fs.createWriteStream(file, { flags: 'wx' }));
  } catch (err) {
    if (err instanceof MatchdError) throw err;
    throw new MatchdError('MATCHD_FETCH_FAILED', `${r.url.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} while reading the image`);
  }
}
