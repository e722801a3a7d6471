// Slow and unauthenticated clients over real sockets: a request without a valid token is answered 401 from its
// headers and its connection closed, its body never read; 100 such clients holding 1 MB bodies open are all gone
// within seconds; headers trickled in (slowloris) are cut off at headersTimeoutMs, a signed body trickled in at
// requestTimeoutMs; signed requests waiting for their body are capped per address and in all; connections beyond
// the per-address cap are closed at once. Authenticated work goes on meanwhile.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { SIGNING_SECRET, TOKEN, postJob, red, startDaemon, stopDaemons, webhookWorkspace } from '../../fixtures/webhook.ts';

interface Client {
  socket: net.Socket;
  /** Everything the server sent. */
  received: () => string;
  closed: Promise<number>;
  /** Bytes this client managed to write before the server closed. */
  written: () => number;
  /** Keep writing `chunk` every `everyMs` until the socket closes. */
  trickle(chunk: string, everyMs: number): void;
}

async function connect(port: number, head: string): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let data = '';
  let written = 0;
  let timer: NodeJS.Timeout | undefined;
  const t0 = Date.now();
  socket.on('data', (d) => (data += d.toString()));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => {
    clearInterval(timer);
    resolve(Date.now() - t0);
  }));
  const write = (s: string) => {
    if (!socket.destroyed && socket.writable) socket.write(s, () => (written += Buffer.byteLength(s)));
  };
  write(head);
  return {
    socket, closed, received: () => data, written: () => written,
    trickle(chunk, everyMs) {
      timer = setInterval(() => write(chunk), everyMs);
    },
  };
}

const postHead = (headers: Record<string, string>, length: number) =>
  `POST /v1/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n` +
  Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';

function signatureHeaders(): Record<string, string> {
  const at = new Date();
  const id = `msg_${Math.random().toString(36).slice(2)}`;
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(SIGNING_SECRET).sign(id, at, 'x') };
}

const portOf = (base: string) => Number(new URL(base).port);

describe('webhook intake: slow and unauthenticated clients', () => {
  const clients: Client[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.socket.destroy());
    await stopDaemons();
  });
  after(cleanupTmpDirs);
  const open = async (port: number, head: string) => {
    const c = await connect(port, head);
    clients.push(c);
    return c;
  };

  test('no token: 401 from the headers alone, the connection closed, the 1 MB body never read', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const c = await open(portOf(base), postHead({}, 1024 * 1024));
    c.trickle('x'.repeat(1024), 100);
    const ms = await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    assert.notEqual(ms, -1, 'the server closed the connection');
    assert.match(c.received(), /^HTTP\/1\.1 401 /);
    assert.match(c.received(), /MATCHD_UNAUTHORIZED/);
    assert.ok(c.written() < 64 * 1024, `only ${c.written()} body bytes were sent before the close`);
  });

  test('100 unauthenticated clients holding 1 MB bodies open: all answered 401 and closed; authenticated work goes on', { timeout: 60_000 }, async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { rateLimit: { perSecond: 1000, burst: 1000 }, limits: { maxConnectionsPerAddress: 200 } } }));
    const port = portOf(base);
    const many = await Promise.all(Array.from({ length: 100 }, () => open(port, postHead({ authorization: 'Bearer not-a-valid-token-000000' }, 1024 * 1024))));
    many.forEach((c) => c.trickle('y'.repeat(512), 200));
    const times = await Promise.all(many.map((c) => Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))])));
    assert.ok(times.every((t) => t >= 0), `${times.filter((t) => t < 0).length} connections were still open after 15 s`);
    assert.ok(many.every((c) => /^HTTP\/1\.1 401 /.test(c.received())), 'every one was answered 401');
    const ok = await postJob(base, { image: red().toString('base64') });
    assert.equal(ok.status, 202, 'a client with a token is served');
    console.log(`# 100 unauthenticated 1 MB uploads: all closed within ${Math.max(...times)} ms, ${Math.max(...many.map((c) => c.written()))} bytes written by any client before it was closed`);
  });

  test('slowloris: headers trickled in are cut off at headersTimeoutMs', async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { limits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } } }));
    const c = await open(portOf(base), 'POST /v1/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\n');
    c.trickle('x-slow: 1\r\n', 300);
    const ms = await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    assert.ok(ms >= 900 && ms < 5000, `closed after ${ms} ms`);
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
  });

  test('a signed request whose body trickles in is cut off at requestTimeoutMs', async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { limits: { headersTimeoutMs: 500, requestTimeoutMs: 1500 } } }));
    const c = await open(portOf(base), postHead(signatureHeaders(), 100_000));
    c.trickle('z'.repeat(100), 100);
    const ms = await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    assert.ok(ms >= 1400 && ms < 5000, `closed after ${ms} ms`);
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
  });

  test('signed requests still being read are capped per address; connections over the per-address cap are closed at once', async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { limits: { unverifiedPerAddress: 2, maxConnectionsPerAddress: 6 } } }));
    const port = portOf(base);
    const held = [await open(port, postHead(signatureHeaders(), 50_000)), await open(port, postHead(signatureHeaders(), 50_000))];
    held.forEach((c) => c.trickle('z', 500));
    await new Promise((r) => setTimeout(r, 300));
    const third = await open(port, postHead(signatureHeaders(), 50_000));
    await Promise.race([third.closed, new Promise((r) => setTimeout(r, 5000))]);
    assert.match(third.received(), /^HTTP\/1\.1 503 /, 'the third unverified request is refused');
    assert.match(third.received(), /limits\.unverifiedPerAddress/);

    const idle: Client[] = [];
    for (let i = 0; i < 4; i++) idle.push(await open(port, ''));
    const over = await open(port, '');
    const ms = await Promise.race([over.closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]);
    assert.notEqual(ms, -1, 'the 7th connection from one address is closed at once');
    assert.equal(over.received(), '', 'without reading anything');
    await waitFor(() => idle.every((c) => !c.socket.destroyed), 'the first six stay open');
  });
});
