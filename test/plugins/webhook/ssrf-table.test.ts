// The SSRF guard against a table of URL forms: IPv4 written in decimal, octal, hex and short forms; IPv6 loopback,
// unspecified, IPv4-mapped, IPv4-compatible (the `[::127.0.0.1]` that once got through), NAT64, 6to4, Teredo,
// documentation, link-local, unique-local, site-local, multicast; names whose DNS answer is one of those; schemes
// and credentials; and redirects to each kind. Every form must be refused with MATCHD_URL_REFUSED before any
// connection: listeners on 127.0.0.1 and ::1 count connection attempts, and must count none. Positive controls show
// the same harness does see a connection when one is allowed.
import assert from 'node:assert/strict';
import type dns from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isMatchdError } from '../../../src/core/errors.ts';
import { OutboundGuard, send } from '../../../src/core/outbound.ts';

/** What the test resolver answers per name (the guard checks the answer the socket would connect with). */
const DNS: Record<string, string[]> = {
  'localhost': ['127.0.0.1', '::1'],
  'localhost.': ['127.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'private.test': ['10.1.2.3'],
  'mixed.test': ['93.184.216.34', '127.0.0.1'], // one bad answer among good ones
  'mapped.test': ['::ffff:127.0.0.1'],
  'compat.test': ['::127.0.0.1'],
  'nat64.test': ['64:ff9b::7f00:1'],
  'ula.test': ['fd00::1'],
  'linklocal.test': ['fe80::1'],
  'sixtofour.test': ['2002:a9fe:a9fe::1'],
  'public.test': ['93.184.216.34'],
};
const resolve = (host: string, _o: dns.LookupAllOptions, cb: (e: NodeJS.ErrnoException | null, a: dns.LookupAddress[]) => void) => {
  const list = DNS[host];
  if (!list) return cb(Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), []);
  cb(null, list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
};

/** [URL form (P = the counting listeners' port), what it is]. */
const FORMS: [string, string][] = [
  ['http://127.0.0.1:P/', 'IPv4 loopback'],
  ['http://127.1:P/', 'IPv4 short form'],
  ['http://2130706433:P/', 'IPv4 as one decimal number'],
  ['http://0x7f000001:P/', 'IPv4 as one hex number'],
  ['http://0177.0.0.1:P/', 'IPv4 octal octet'],
  ['http://0x7f.0.0.1:P/', 'IPv4 hex octet'],
  ['http://017700000001:P/', 'IPv4 as one octal number'],
  ['http://127.000.000.001:P/', 'IPv4 zero-padded octets'],
  ['http://127.255.255.254:P/', 'IPv4 loopback, end of range'],
  ['http://0:P/', '0 (0.0.0.0)'],
  ['http://0.0.0.0:P/', 'IPv4 unspecified'],
  ['http://10.0.0.1:P/', 'RFC 1918 10/8'],
  ['http://012.0.0.1:P/', 'RFC 1918 in octal'],
  ['http://167772161:P/', 'RFC 1918 as decimal'],
  ['http://172.16.0.1:P/', 'RFC 1918 172.16/12'],
  ['http://172.31.255.255:P/', 'RFC 1918 172.16/12, end'],
  ['http://192.168.1.1:P/', 'RFC 1918 192.168/16'],
  ['http://0xc0a80101:P/', 'RFC 1918 as hex'],
  ['http://169.254.169.254:P/', 'cloud metadata'],
  ['http://2852039166:P/', 'cloud metadata as decimal'],
  ['http://0xa9fea9fe:P/', 'cloud metadata as hex'],
  ['http://0251.0376.0251.0376:P/', 'cloud metadata in octal'],
  ['http://100.64.0.1:P/', 'CGNAT'],
  ['http://192.0.0.1:P/', 'IETF protocol assignments'],
  ['http://192.0.2.1:P/', 'TEST-NET-1'],
  ['http://198.18.0.1:P/', 'benchmarking'],
  ['http://198.51.100.1:P/', 'TEST-NET-2'],
  ['http://203.0.113.1:P/', 'TEST-NET-3'],
  ['http://192.88.99.1:P/', '6to4 relay anycast'],
  ['http://224.0.0.1:P/', 'multicast'],
  ['http://240.0.0.1:P/', 'reserved'],
  ['http://255.255.255.255:P/', 'broadcast'],
  ['http://[::1]:P/', 'IPv6 loopback'],
  ['http://[0:0:0:0:0:0:0:1]:P/', 'IPv6 loopback, long form'],
  ['http://[::]:P/', 'IPv6 unspecified'],
  ['http://[::ffff:127.0.0.1]:P/', 'IPv4-mapped loopback'],
  ['http://[::ffff:7f00:1]:P/', 'IPv4-mapped loopback, hex'],
  ['http://[::ffff:169.254.169.254]:P/', 'IPv4-mapped metadata'],
  ['http://[::ffff:8.8.8.8]:P/', 'IPv4-mapped public address'],
  ['http://[::127.0.0.1]:P/', 'IPv4-compatible loopback'],
  ['http://[::7f00:1]:P/', 'IPv4-compatible loopback, hex'],
  ['http://[::10.0.0.1]:P/', 'IPv4-compatible private'],
  ['http://[::169.254.169.254]:P/', 'IPv4-compatible metadata'],
  ['http://[64:ff9b::127.0.0.1]:P/', 'NAT64 of loopback'],
  ['http://[64:ff9b::a9fe:a9fe]:P/', 'NAT64 of metadata'],
  ['http://[64:ff9b:1::1]:P/', 'local-use NAT64'],
  ['http://[2002:7f00:1::1]:P/', '6to4 of loopback'],
  ['http://[2002:a9fe:a9fe::1]:P/', '6to4 of metadata'],
  ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:P/', 'Teredo'],
  ['http://[2001:2::1]:P/', 'IPv6 benchmarking'],
  ['http://[2001:10::1]:P/', 'ORCHID'],
  ['http://[2001:db8::1]:P/', 'IPv6 documentation'],
  ['http://[3fff::1]:P/', 'IPv6 documentation (RFC 9637)'],
  ['http://[100::1]:P/', 'IPv6 discard-only'],
  ['http://[fe80::1]:P/', 'IPv6 link-local'],
  ['http://[fe80::1%25lo]:P/', 'IPv6 link-local with a zone'],
  ['http://[fc00::1]:P/', 'unique-local fc00::/8'],
  ['http://[fd12:3456:789a::1]:P/', 'unique-local fd00::/8'],
  ['http://[fec0::1]:P/', 'site-local (deprecated)'],
  ['http://[ff02::1]:P/', 'IPv6 multicast'],
  ['http://localhost:P/', 'name → 127.0.0.1 and ::1'],
  ['http://localhost.:P/', 'name with a trailing dot'],
  ['http://metadata.test:P/', 'name → metadata'],
  ['http://private.test:P/', 'name → RFC 1918'],
  ['http://mixed.test:P/', 'name → one public, one loopback answer'],
  ['http://mapped.test:P/', 'name → IPv4-mapped'],
  ['http://compat.test:P/', 'name → IPv4-compatible'],
  ['http://nat64.test:P/', 'name → NAT64'],
  ['http://ula.test:P/', 'name → unique-local'],
  ['http://linklocal.test:P/', 'name → link-local'],
  ['http://sixtofour.test:P/', 'name → 6to4'],
  ['ftp://public.test:P/', 'ftp scheme'],
  ['file:///etc/passwd', 'file scheme'],
  ['gopher://public.test:P/', 'gopher scheme'],
  ['http://user:pass@public.test:P/', 'credentials in the URL'],
  ['http://user@public.test:P/', 'a user name in the URL'],
];

/** Redirect targets (the first hop is an allow-listed receiver; the target must be refused before connecting). */
const REDIRECTS: [string, string][] = [
  ['http://[::1]:P/', 'IPv6 loopback'],
  ['http://[::127.0.0.1]:P/', 'IPv4-compatible loopback'],
  ['http://[::ffff:127.0.0.2]:P/', 'IPv4-mapped loopback'],
  ['http://2130706434:P/', 'decimal 127.0.0.2'],
  ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
  ['http://metadata.test/', 'a name → metadata'],
  ['http://[fd00::1]:P/', 'unique-local'],
  ['file:///etc/passwd', 'file scheme'],
];

describe('webhook outbound guard: URL forms', () => {
  const servers: http.Server[] = [];
  let port = 0;
  let connections = 0;
  let redirector = 0;

  const listen = async (host: string, p: number, handler: http.RequestListener) => {
    const s = http.createServer(handler);
    s.on('connection', () => connections++);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(p, host, resolve);
    });
    servers.push(s);
    return (s.address() as AddressInfo).port;
  };

  before(async () => {
    port = await listen('127.0.0.1', 0, (_req, res) => res.writeHead(200).end('ok'));
    await listen('::1', port, (_req, res) => res.writeHead(200).end('ok'));
    redirector = await listen('127.0.0.1', 0, (req, res) => {
      const to = decodeURIComponent(req.url!.slice('/to/'.length)).replace(':P', `:${port}`);
      res.writeHead(302, { location: to }).end();
    });
  });
  after(() => servers.forEach((s) => s.close()));

  test(`${FORMS.length} URL forms are refused before connecting`, async () => {
    assert.ok(FORMS.length >= 50);
    const guard = new OutboundGuard({ allowHttp: true, resolve });
    const accepted: string[] = [];
    for (const [form, what] of FORMS) {
      const url = form.replace(':P', `:${port}`);
      try {
        await send(guard, url, { timeoutMs: 3000 });
        accepted.push(`${what} (${url}): connected`);
      } catch (err) {
        if (!isMatchdError(err, 'MATCHD_URL_REFUSED')) accepted.push(`${what} (${url}): ${(err as Error).message}`);
      }
    }
    assert.deepEqual(accepted, [], 'every form must be refused with MATCHD_URL_REFUSED');
    assert.equal(connections, 0, 'no connection was attempted');
  });

  test(`redirects to ${REDIRECTS.length} refused targets are refused at the hop`, async () => {
    const guard = new OutboundGuard({ allowHttp: true, allow: ['127.0.0.1/32'], maxRedirects: 3, resolve });
    const before = connections;
    for (const [target, what] of REDIRECTS) {
      await assert.rejects(
        send(guard, `http://127.0.0.1:${redirector}/to/${encodeURIComponent(target)}`, { timeoutMs: 3000 }),
        (e) => isMatchdError(e, 'MATCHD_URL_REFUSED'),
        what,
      );
    }
    assert.equal(connections - before, REDIRECTS.length, 'only the allow-listed first hops connected');
  });

  test('positive controls: public addresses pass the check; an allow-listed address really connects', async () => {
    const guard = new OutboundGuard({ allowHttp: true, resolve });
    for (const a of ['8.8.8.8', '93.184.216.34', '1.1.1.1', '2606:4700:4700::1111', '2a00:1450:4001:82a::200e', '2001:4860:4860::8888']) {
      assert.equal(guard.addressProblem(a), null, a);
    }
    const before = connections;
    const r = await send(new OutboundGuard({ allowHttp: true, allow: ['127.0.0.1'] }), `http://127.0.0.1:${port}/`, { timeoutMs: 3000 });
    r.res.resume();
    assert.equal(r.status, 200);
    assert.equal(connections - before, 1, 'the harness counts a real connection');
  });
});
