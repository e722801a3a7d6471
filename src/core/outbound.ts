/**
 * Outbound HTTP with an SSRF guard. The check happens at connect time: the socket's `lookup` resolves the host and
 * refuses if ANY address is loopback, private (RFC 1918), link-local (169.254/16: the cloud metadata address),
 * CGNAT (100.64/10), unique-local (fc00::/7), IPv4-mapped IPv6, unspecified (0.0.0.0, ::) or otherwise not global
 * unicast — unless the allow-list names it. IP-literal hosts (which never go through `lookup`) are checked before
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

/** Ranges refused on top of "anything ipaddr.js does not call unicast" (kept explicit so the list is reviewable). */
const DENY_CIDRS = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16',
  '::/128', '::1/128', '::ffff:0:0/96', 'fc00::/7', 'fe80::/10',
].map((c) => ipaddr.parseCIDR(c));

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
      a = ipaddr.parse(address);
    } catch {
      return `${address} is not an IP address`;
    }
    if (this.allow.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits))) return null;
    const range = a.range();
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) return `${address} is an IPv4-mapped IPv6 address`;
    if (range !== 'unicast') return `${address} is a ${range} address`;
    if (DENY_CIDRS.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits))) return `${address} is in a private range`;
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
