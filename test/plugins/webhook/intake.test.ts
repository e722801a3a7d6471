// Webhook intake against abuse: auth (tokens, signatures), body and upload limits, rate limits, queue-full,
// idempotency, SSRF on image URLs, unknown routes. A real daemon (demo model) on 127.0.0.1 unless a fake context
// is enough.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { WebhookConfigSchema, WebhookSource } from '../../../src/plugins/webhook/index.ts';
import { waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { fakeContext } from '../../fixtures/plugin-context.ts';
import {
  CALLBACK_SECRET, OTHER_TOKEN, SIGNING_SECRET, TOKEN, getJob, postJob, red, startDaemon, stopDaemons, webhookOptions, webhookWorkspace,
} from '../../fixtures/webhook.ts';

const b64 = () => red().toString('base64');

function signed(body: string, secret = SIGNING_SECRET, at = new Date()): Record<string, string> {
  const id = `msg_${Math.random().toString(36).slice(2)}`;
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) };
}

/** POST raw bytes with chosen headers (no bearer unless given). */
async function raw(base: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers, body });
  return { status: res.status, json: (await res.json()) as any, headers: res.headers };
}

describe('webhook intake: abuse', () => {
  afterEach(stopDaemons);
  after(cleanupTmpDirs);

  test('no token, a wrong token, or a malformed header: 401 MATCHD_UNAUTHORIZED', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const body = JSON.stringify({ image: b64() });
    for (const auth of [undefined, 'Bearer wrong-token-0123456789abcdef', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const r = await raw(base, body, { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) });
      assert.equal(r.status, 401, String(auth));
      assert.equal(r.json.error.code, 'MATCHD_UNAUTHORIZED');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    }
    const status = await fetch(`${base}/v1/jobs/1`);
    assert.equal(status.status, 401);
  });

  test('Standard Webhooks signatures: valid → 202; bad, stale, future or for another body → 401', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const body = JSON.stringify({ image: b64() });
    const ok = await raw(base, body, { 'content-type': 'application/json', ...signed(body) });
    assert.equal(ok.status, 202, JSON.stringify(ok.json));
    const wrongSecret = 'whsec_' + Buffer.from('not-the-intake-secret-at-all-000000').toString('base64');
    const cases: Record<string, Record<string, string>> = {
      'wrong secret': signed(body, wrongSecret),
      stale: signed(body, SIGNING_SECRET, new Date(Date.now() - 6 * 60_000)),
      future: signed(body, SIGNING_SECRET, new Date(Date.now() + 6 * 60_000)),
      'another body': signed(JSON.stringify({ image: 'AAAA' })),
      'no signature header': (({ 'webhook-signature': _, ...rest }) => rest)(signed(body)),
    };
    for (const [what, headers] of Object.entries(cases)) {
      const r = await raw(base, body, { 'content-type': 'application/json', ...headers });
      assert.equal(r.status, 401, what);
      assert.equal(r.json.error.code, 'MATCHD_UNAUTHORIZED', what);
    }
  });

  test('a 2 MiB JSON body: 413 MATCHD_REQUEST_TOO_LARGE', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const r = await postJob(base, { image: 'A'.repeat(2 * 1024 * 1024) });
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, 'MATCHD_REQUEST_TOO_LARGE');
  });

  test('an oversized upload is refused with 413 while it is still streaming, and leaves nothing in the spool', async () => {
    const ws = webhookWorkspace({ options: { limits: { uploadBytes: 256 * 1024 } } });
    const { base } = await startDaemon(ws);
    const boundary = 'matchdboundary';
    const url = new URL(`${base}/v1/jobs`);
    let sent = 0;
    const response = await new Promise<{ status: number; body: string; sentWhenAnswered: number }>((resolve, reject) => {
      const req = http.request(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      req.on('response', (res) => {
        const at = sent;
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, sentWhenAnswered: at }));
        res.on('error', reject);
      });
      req.on('error', () => {}); // the server closes the connection after answering
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 7);
      // Up to 64 MiB, slowly enough that the answer arrives long before the end; never finished.
      const pump = () => {
        if (sent >= 64 * 1024 * 1024 || req.destroyed) return;
        sent += chunk.length;
        if (req.write(chunk)) setImmediate(pump);
        else req.once('drain', pump);
      };
      pump();
    });
    assert.equal(response.status, 413);
    assert.equal(JSON.parse(response.body).error.code, 'MATCHD_IMAGE_TOO_LARGE');
    assert.ok(response.sentWhenAnswered < 16 * 1024 * 1024, `answered after ${response.sentWhenAnswered} bytes`);
    const spool = path.join(ws.root, 'var', 'spool', 'api');
    await waitFor(() => fs.readdirSync(spool).length === 0, 'the partial upload removed');
  });

  test('an oversized base64 image: 413 MATCHD_IMAGE_TOO_LARGE', async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { limits: { uploadBytes: 1024 } } }));
    const r = await postJob(base, { image: Buffer.alloc(4096, 1).toString('base64') });
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, 'MATCHD_IMAGE_TOO_LARGE');
  });

  test('a burst over the limit: 429 MATCHD_RATE_LIMITED with Retry-After, per token', async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { rateLimit: { perSecond: 0.5, burst: 3 } } }));
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof getJob>> & { retryAfter?: string | null } = { status: 0, json: null };
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/v1/jobs/999`, { headers: { authorization: `Bearer ${TOKEN}` } });
      statuses.push(res.status);
      if (res.status === 429) limited = { status: 429, json: await res.json(), retryAfter: res.headers.get('retry-after') };
      else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [404, 404, 404, 429, 429]);
    assert.equal(limited.json.error.code, 'MATCHD_RATE_LIMITED');
    assert.ok(Number(limited.retryAfter) >= 1, String(limited.retryAfter));
    // Another token has its own bucket.
    const other = await getJob(base, '999', OTHER_TOKEN);
    assert.equal(other.status, 404);
  });

  test('a full queue: 429 with Retry-After, and the spooled image is removed', async () => {
    const dir = tmpDir('matchd-webhook-');
    const ctx = fakeContext({ name: 'api', baseDir: dir });
    fs.mkdirSync(ctx.spoolDir, { recursive: true });
    const source = new WebhookSource(ctx, WebhookConfigSchema.parse(webhookOptions()));
    await source.start();
    try {
      ctx.refuse(1, 'backpressure', 2500);
      const base = `http://127.0.0.1:${source.address!.port}`;
      const r = await postJob(base, { image: b64() });
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, 'MATCHD_RATE_LIMITED');
      assert.equal(r.headers.get('retry-after'), '3');
      assert.deepEqual(fs.readdirSync(ctx.spoolDir), []);
      const ok = await postJob(base, { image: b64() });
      assert.equal(ok.status, 202);
      assert.equal(ctx.accepted.length, 1);
      assert.equal(ctx.accepted[0]!.image.temporary, true);
      assert.ok(fs.existsSync(ctx.accepted[0]!.image.path));
    } finally {
      await source.stop();
    }
  });

  test('a replayed Idempotency-Key returns the same job (no second job); keys are scoped per identity', async () => {
    const { daemon, base } = await startDaemon(webhookWorkspace());
    const first = await postJob(base, { image: b64() }, { 'idempotency-key': 'order-42' });
    assert.equal(first.status, 202);
    const again = await postJob(base, { image: b64() }, { 'idempotency-key': 'order-42' });
    assert.ok(again.status === 200 || again.status === 202, String(again.status));
    assert.equal(again.json.jobId, first.json.jobId);
    assert.equal(again.json.duplicate, true);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const bob = await postJob(base, { image: b64() }, { 'idempotency-key': 'order-42', authorization: `Bearer ${OTHER_TOKEN}` });
    assert.equal(bob.status, 202);
    assert.notEqual(bob.json.jobId, first.json.jobId);
    await waitFor(() => daemon.journalForTools.counts().done === 2, 'both jobs scored');
    const c = daemon.journalForTools.counts();
    assert.equal(c.queued + c.running + c.done + c.failed, 2, 'two jobs, not three');
    // Bob cannot read Alice's job.
    assert.equal((await getJob(base, first.json.jobId, OTHER_TOKEN)).status, 404);
  });

  test('image URLs to the metadata address, private ranges or localhost are refused without the allow-list', async () => {
    const { base } = await startDaemon(webhookWorkspace({ options: { outbound: { allow: [] } } }));
    const urls = [
      'http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/x.jpg', 'http://localhost/x.jpg', 'http://127.0.0.1/x.jpg',
      'http://[::1]/x.jpg', 'http://[::ffff:127.0.0.1]/x.jpg', 'http://0.0.0.0/x.jpg', 'http://100.64.0.1/x.jpg', 'http://[fd00::1]/x.jpg',
    ];
    for (const imageUrl of urls) {
      const r = await postJob(base, { imageUrl });
      assert.equal(r.status, 400, imageUrl);
      assert.equal(r.json.error.code, 'MATCHD_URL_REFUSED', `${imageUrl}: ${r.json.error.message}`);
    }
    for (const imageUrl of ['file:///etc/passwd', 'ftp://example.com/x.jpg', 'https://user:pw@example.com/x.jpg']) {
      const r = await postJob(base, { imageUrl });
      assert.equal(r.json.error.code, 'MATCHD_URL_REFUSED', imageUrl);
    }
  });

  test('an image URL on an allow-listed address is fetched (size and redirect limits apply)', async () => {
    const img = red();
    const server = http.createServer((req, res) => {
      if (req.url === '/red.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(img);
      else if (req.url === '/big.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.alloc(300 * 1024));
      else if (req.url === '/moved') res.writeHead(302, { location: '/red.jpg' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { base } = await startDaemon(webhookWorkspace({ options: { outbound: { imageBytes: 200 * 1024 } } }));
      const ok = await postJob(base, { imageUrl: `http://127.0.0.1:${port}/red.jpg` }, {}, '?wait=10s');
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      assert.equal(ok.json.result.outcome, 'adopt');
      const big = await postJob(base, { imageUrl: `http://127.0.0.1:${port}/big.jpg` });
      assert.equal(big.status, 413);
      assert.equal(big.json.error.code, 'MATCHD_IMAGE_TOO_LARGE');
      const moved = await postJob(base, { imageUrl: `http://127.0.0.1:${port}/moved` });
      assert.equal(moved.status, 502);
      assert.equal(moved.json.error.code, 'MATCHD_FETCH_FAILED');
      assert.match(moved.json.error.message, /302.*not followed/);
      const missing = await postJob(base, { imageUrl: `http://127.0.0.1:${port}/nope.jpg` });
      assert.equal(missing.json.error.code, 'MATCHD_FETCH_FAILED');
    } finally {
      server.close();
    }
  });

  test('a non-image upload becomes a job whose result is MATCHD_IMAGE_UNSUPPORTED', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const form = new FormData();
    form.set('image', new Blob(['%PDF-1.7 definitely not an image']), 'scan.png');
    const res = await fetch(`${base}/v1/jobs?wait=10s`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
    const json = (await res.json()) as any;
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.equal(json.state, 'failed');
    assert.equal(json.outcome, 'error');
    assert.equal(json.result.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
  });

  test('a multipart upload with fields; unknown rules and fields are refused with 400', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const form = new FormData();
    form.set('rule', 'colours');
    form.set('image', new Blob([red()]), 'red.jpg');
    const res = await fetch(`${base}/v1/jobs?wait=10s`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
    const json = (await res.json()) as any;
    assert.equal(res.status, 200);
    assert.equal(json.result.outcome, 'adopt');

    const unknown = await postJob(base, { image: b64(), text: 'a red dress' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.code, 'MATCHD_REQUEST_INVALID');
    assert.match(unknown.json.error.message, /unknown field 'text'/);
    const rule = await postJob(base, { image: b64(), rule: 'nope' });
    assert.equal(rule.status, 400);
    assert.match(rule.json.error.message, /unknown rule 'nope'/);
    const both = await postJob(base, { image: b64(), imageUrl: 'https://example.com/x.jpg' });
    assert.equal(both.status, 400);
    const badJson = await postJob(base, '{"image":');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.json.error.code, 'MATCHD_REQUEST_INVALID');
    const cb = await postJob(base, { image: b64(), callbackUrl: 'https://user:pw@example.com/hook' });
    assert.equal(cb.json.error.code, 'MATCHD_URL_REFUSED');
  });

  test('an unknown route: 404 listing the routes', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const res = await fetch(`${base}/v1/job`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 404);
    const json = (await res.json()) as any;
    assert.deepEqual(json.routes, ['POST /v1/jobs', 'GET /v1/jobs/:id', 'POST /v1/score']);
    assert.match(json.error.message, /no route POST \/v1\/job;/);
    const unknownJob = await getJob(base, '12345');
    assert.equal(unknownJob.status, 404);
  });

  test('config: no token or signing secret, bad secrets and unknown options are refused', () => {
    const r = WebhookConfigSchema.safeParse({ auth: {}, callbacks: { secret: CALLBACK_SECRET, endpoints: {} }, nope: 1 });
    assert.equal(r.success, false);
    const msgs = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    assert.match(msgs, /auth: configure at least one bearer token/);
    assert.match(msgs, /callbacks\.secret: callbacks\.secret \(one secret for every caller\) is gone: give each caller its own auth\.tokens\[\]\.callbackSecret/);
    assert.match(msgs, /callbacks\.endpoints: callbacks\.endpoints moved to the top level/);
    assert.match(msgs, /unknown option\(s\) nope/);
    const secrets = WebhookConfigSchema.safeParse({
      auth: { tokens: [{ name: 'a', token: TOKEN, callbackSecret: 'not-a-secret!' }, { name: 'b', token: OTHER_TOKEN, callbackSecret: CALLBACK_SECRET }, { name: 'c', token: `${TOKEN}x`, callbackSecret: CALLBACK_SECRET }] },
    });
    const smsgs = secrets.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    assert.match(smsgs, /auth\.tokens\.0\.callbackSecret: secret must be a Standard Webhooks secret/);
    assert.match(smsgs, /each caller needs its own callbackSecret/);
  });
});
