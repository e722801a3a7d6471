// The SSRF guard: address classes, the allow-list, URL form, the check at connect time (DNS rebinding), redirects.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isMatchdError } from '../../../src/core/errors.ts';
import { OutboundGuard, send } from '../../../src/core/outbound.ts';

describe('webhook outbound guard', () => {
  let server: http.Server;
  let port = 0;
  const hits: string[] = [];
  before(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url!);
      if (req.url === '/to-private') res.writeHead(302, { location: 'http://10.0.0.1/secret' }).end();
      else if (req.url === '/to-self') res.writeHead(302, { location: '/ok' }).end();
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  test('refuses loopback, RFC 1918, link-local/metadata, CGNAT, unique-local, IPv4-mapped, unspecified; allows public', () => {
    const g = new OutboundGuard();
    for (const a of ['127.0.0.1', '127.9.9.9', '10.0.0.1', '172.16.5.5', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fc00::1', 'fd12::1', 'fe80::1', '::ffff:8.8.8.8', '::ffff:127.0.0.1', '224.0.0.1', '255.255.255.255']) {
      assert.ok(g.addressProblem(a), `${a} should be refused`);
    }
    for (const a of ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111']) assert.equal(g.addressProblem(a), null, a);
  });

  test('the allow-list exempts exactly what it names (addresses or CIDRs)', () => {
    const g = new OutboundGuard({ allow: ['127.0.0.1', '10.1.0.0/16'] });
    assert.equal(g.addressProblem('127.0.0.1'), null);
    assert.ok(g.addressProblem('127.0.0.2'));
    assert.equal(g.addressProblem('10.1.200.3'), null);
    assert.ok(g.addressProblem('10.2.0.1'));
    assert.ok(g.addressProblem('::ffff:127.0.0.1'), 'an IPv4-mapped form is not the allow-listed IPv4 address');
  });

  test('URL form: http(s) only (https unless allowHttp), no credentials, IP literals checked', () => {
    const strict = new OutboundGuard();
    const refused = (f: () => unknown, re: RegExp) => assert.throws(f, (e) => isMatchdError(e, 'MATCHD_URL_REFUSED') && re.test(e.message));
    refused(() => strict.checkUrl('http://example.com/'), /https only/);
    refused(() => strict.checkUrl('file:///etc/passwd'), /file URLs are not allowed/);
    refused(() => strict.checkUrl('https://a:b@example.com/'), /credentials/);
    refused(() => strict.checkUrl('https://169.254.169.254/'), /linkLocal/);
    refused(() => strict.checkUrl('https://[::1]/'), /loopback/);
    refused(() => strict.checkUrl('not a url'), /not a valid URL/);
    assert.equal(strict.checkUrl('https://example.com/x').hostname, 'example.com');
    assert.equal(new OutboundGuard({ allowHttp: true }).checkUrl('http://example.com/').protocol, 'http:');
  });

  test('a name is checked at connect time: localhost is refused, and a rebinding name is refused at the second lookup', async () => {
    const g = new OutboundGuard({ allowHttp: true });
    await assert.rejects(send(g, `http://localhost:${port}/ok`, { timeoutMs: 2000 }), (e) => isMatchdError(e, 'MATCHD_URL_REFUSED'));
    // A name whose DNS answer changes (rebinding): the guard never resolves ahead of time, it checks the answer the
    // socket connects with, so whatever the name resolves to at that moment is what is checked.
    let lookups = 0;
    const rebinding = new OutboundGuard({
      allowHttp: true,
      resolve: (_h, _o, cb) => {
        lookups++;
        cb(null, [{ address: '127.0.0.1', family: 4 }]);
      },
    });
    rebinding.checkUrl(`http://rebind.test:${port}/ok`); // the URL itself looks fine (a name)
    assert.equal(lookups, 0);
    const before = hits.length;
    await assert.rejects(send(rebinding, `http://rebind.test:${port}/ok`, { timeoutMs: 2000 }), (e) => isMatchdError(e, 'MATCHD_URL_REFUSED') && /127\.0\.0\.1 is a loopback/.test(e.message));
    assert.equal(lookups, 1, 'resolved by the socket, once');
    // Any denied address among the answers refuses the connection (no picking the good one and hoping).
    const mixed = new OutboundGuard({ allowHttp: true, resolve: (_h, _o, cb) => cb(null, [{ address: '93.184.216.34', family: 4 }, { address: '10.0.0.1', family: 4 }]) });
    await assert.rejects(send(mixed, `http://mixed.test:${port}/ok`, { timeoutMs: 2000 }), (e) => isMatchdError(e, 'MATCHD_URL_REFUSED') && /10\.0\.0\.1/.test(e.message));
    assert.equal(hits.length, before, 'nothing reached the server');
  });

  test('redirects: not followed by default; when enabled, every hop is checked again', async () => {
    const none = new OutboundGuard({ allowHttp: true, allow: ['127.0.0.1'] });
    const r = await send(none, `http://127.0.0.1:${port}/to-self`, { timeoutMs: 2000 });
    r.res.resume();
    assert.equal(r.status, 302);
    const follow = new OutboundGuard({ allowHttp: true, allow: ['127.0.0.1'], maxRedirects: 3 });
    const ok = await send(follow, `http://127.0.0.1:${port}/to-self`, { timeoutMs: 2000 });
    ok.res.resume();
    assert.equal(ok.status, 200);
    assert.equal(ok.url.pathname, '/ok');
    await assert.rejects(send(follow, `http://127.0.0.1:${port}/to-private`, { timeoutMs: 2000 }), (e) => isMatchdError(e, 'MATCHD_URL_REFUSED') && /10\.0\.0\.1/.test(e.message));
  });
});
