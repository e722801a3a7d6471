// The webhook source with each request's own texts and meta, and POST /v1/score: a real daemon (demo model) on
// 127.0.0.1, real receivers verifying signatures with the `standardwebhooks` package.
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
  BOB_CALLBACK_SECRET, CALLBACK_SECRET, OTHER_TOKEN, TOKEN, type Receiver, getJob, postJob, receiver, red, startDaemon, stopDaemons, webhookOptions, webhookWorkspace,
} from '../../fixtures/webhook.ts';
import type { Workspace } from '../../fixtures/daemon.ts';

const b64 = () => red().toString('base64');
const receivers: Receiver[] = [];
const spool = (ws: Workspace) => fs.readdirSync(path.join(ws.root, 'var', 'spool', 'api'));
const texts = (r: { results: { text: string }[] }) => r.results.map((x) => x.text);

async function score(base: string, body: unknown, token = TOKEN): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${base}/v1/score`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

describe('webhook: per-request texts and meta', () => {
  afterEach(async () => {
    await stopDaemons();
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(cleanupTmpDirs);

  test('JSON texts and meta: scored against those texts, in order; meta echoed in the result, the status and the callback (signed with the caller\'s own secret)', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const { base } = await startDaemon(webhookWorkspace());
    const meta = { orderId: 4711, customer: { tier: 'gold' } };
    const r = await postJob(base, { image: b64(), texts: ['a blue dress', 'a red dress'], meta, callbackUrl: rx.url }, {}, '?wait=10s');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(texts(r.json.result), ['a blue dress', 'a red dress']);
    assert.equal(r.json.result.decidedBy, 'a red dress');
    assert.equal(r.json.result.textsFrom, 'item');
    assert.deepEqual(r.json.meta, meta);
    assert.deepEqual(r.json.texts, ['a blue dress', 'a red dress']);

    const status = await getJob(base, r.json.jobId);
    assert.deepEqual(status.json.meta, meta);
    assert.deepEqual(texts(status.json.result), ['a blue dress', 'a red dress']);

    await waitFor(() => rx.received.length === 1, 'the callback');
    const m = rx.received[0]!;
    const body = new Webhook(CALLBACK_SECRET).verify(m.body, m.headers as Record<string, string>) as any;
    assert.deepEqual(body.data.meta, meta);
    assert.deepEqual(texts(body.data), ['a blue dress', 'a red dress']);
    assert.equal(body.data.outcome, 'adopt');
    // Bob verifies his callbacks with his own secret; it cannot verify (nor forge) Alice's.
    assert.throws(() => new Webhook(BOB_CALLBACK_SECRET).verify(m.body, m.headers as Record<string, string>), /No matching signature/);
  });

  test('each caller\'s callbacks are signed with its own secret; a caller without one cannot ask for callbacks', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const ws = webhookWorkspace({ options: { auth: { tokens: [{ name: 'alice', token: TOKEN, callbackSecret: CALLBACK_SECRET }, { name: 'carol', token: OTHER_TOKEN }] } } });
    const { base } = await startDaemon(ws);
    const refused = await postJob(base, { image: b64(), callbackUrl: rx.url }, { authorization: `Bearer ${OTHER_TOKEN}` });
    assert.equal(refused.status, 400);
    assert.match(refused.json.error.message, /caller 'token:carol' has no callbackSecret configured/);
    assert.deepEqual(spool(ws), []);
    const ok = await postJob(base, { image: b64(), callbackUrl: rx.url });
    assert.equal(ok.status, 202);
    await waitFor(() => rx.received.length === 1, 'alice\'s callback');
    new Webhook(CALLBACK_SECRET).verify(rx.received[0]!.body, rx.received[0]!.headers as Record<string, string>);
  });

  test('multipart: one `text` field per text, or a `texts` JSON field, and a `meta` JSON field', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const post = async (fields: [string, string][]) => {
      const form = new FormData();
      for (const [k, v] of fields) form.append(k, v);
      form.set('image', new Blob([red()]), 'red.jpg');
      const res = await fetch(`${base}/v1/jobs?wait=10s`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
      return { status: res.status, json: (await res.json()) as any };
    };
    const a = await post([['text', 'a green shirt'], ['text', 'a red shirt'], ['meta', '{"sku":"S1"}']]);
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.deepEqual(texts(a.json.result), ['a green shirt', 'a red shirt']);
    assert.deepEqual(a.json.meta, { sku: 'S1' });
    const b = await post([['texts', '["a red shirt","a blue shirt"]']]);
    assert.deepEqual(texts(b.json.result), ['a red shirt', 'a blue shirt']);
    const both = await post([['texts', '["x"]'], ['text', 'y']]);
    assert.equal(both.status, 400);
    assert.match(both.json.error.message, /not both/);
    const badJson = await post([['texts', '[not json']]);
    assert.equal(badJson.status, 400);
    assert.match(badJson.json.error.message, /texts must be a JSON array/);
  });

  test('over the limits: 400 listing every problem, nothing journalled, nothing left in the spool', async () => {
    const ws = webhookWorkspace({ items: { maxTexts: 3, maxTextChars: 20, meta: { maxDepth: 3, maxBytes: 200 } } });
    const { daemon, base } = await startDaemon(ws);
    const many = await postJob(base, { image: b64(), texts: ['a', 'b', 'c', 'd'] });
    assert.equal(many.status, 400);
    assert.equal(many.json.error.code, 'MATCHD_TEXT_INVALID');
    assert.deepEqual(many.json.error.problems, ['4 texts; at most 3 per item']);
    const all = await postJob(base, { image: b64(), texts: ['x'.repeat(21), '  ', 7], meta: { a: { b: { c: { d: 1 } } } } });
    assert.equal(all.status, 400);
    assert.deepEqual(all.json.error.problems, [
      'text 0: 21 characters; at most 20',
      'text 1: empty or only whitespace',
      'text 2: expected a string but received number',
      'meta is nested more than 3 levels deep (at meta.a.b.c)',
    ]);
    const big = await postJob(base, { image: b64(), meta: { s: 'x'.repeat(300) } });
    assert.equal(big.json.error.code, 'MATCHD_META_INVALID');
    assert.deepEqual(big.json.error.problems, ['meta is 308 bytes as JSON, over the 200-byte limit']);
    const mixed = await postJob(base, { image: b64(), texts: [''], rule: 7 });
    assert.equal(mixed.json.error.code, 'MATCHD_REQUEST_INVALID', 'texts and other fields wrong: the request is');
    assert.deepEqual(mixed.json.error.problems, ['rule must be a rule name', 'text 0: empty or only whitespace']);
    const arr = await postJob(base, { image: b64(), meta: [1] });
    assert.match(arr.json.error.problems[0], /meta must be a JSON object; got an array/);
    const tooMany = await postJob(base, { image: b64(), texts: Array.from({ length: 10_000 }, () => 'red') });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.json.error.problems[0], '10000 texts; at most 3 per item');
    const huge = await postJob(base, { image: b64(), texts: ['r'.repeat(1_000_000)] }, {});
    assert.equal(huge.status, 400);
    assert.deepEqual(huge.json.error.problems, ['text 0: 1000000 characters; at most 20']);
    const over = await postJob(base, { image: b64(), texts: ['r'.repeat(1_100_000)] }, {});
    assert.equal(over.status, 413, 'over the 1 MiB JSON body limit');
    assert.equal(over.json.error.code, 'MATCHD_REQUEST_TOO_LARGE');
    assert.deepEqual(spool(ws), []);
    const c = daemon.journalForTools.counts();
    assert.equal(c.queued + c.running + c.done + c.failed, 0);
    const ok = await postJob(base, { image: b64(), texts: ['a red dress'] }, {}, '?wait=10s');
    assert.equal(ok.status, 200, 'the daemon is up and takes the next request');
  });

  test('a rule with texts: per-item: a request without texts is 400 MATCHD_TEXTS_REQUIRED; the rule\'s texts apply elsewhere', async () => {
    const { base } = await startDaemon(webhookWorkspace({ rules: { titles: { texts: 'per-item', actions: {} } } }));
    const none = await postJob(base, { image: b64(), rule: 'titles' });
    assert.equal(none.status, 400);
    assert.equal(none.json.error.code, 'MATCHD_TEXTS_REQUIRED');
    const own = await postJob(base, { image: b64(), rule: 'titles', texts: ['a red dress'] }, {}, '?wait=10s');
    assert.equal(own.json.result.outcome, 'adopt');
    const fallback = await postJob(base, { image: b64() }, {}, '?wait=10s');
    assert.deepEqual(texts(fallback.json.result), ['a red product']);
    assert.equal(fallback.json.result.textsFrom, 'rule');
  });
});

describe('webhook: POST /v1/score', () => {
  afterEach(stopDaemons);
  after(cleanupTmpDirs);

  test('results in the order of the texts, from base64, multipart or an image URL; the rule\'s texts without any', async () => {
    const img = red();
    const server = http.createServer((req, res) => res.writeHead(req.url === '/red.jpg' ? 200 : 404, { 'content-type': 'image/jpeg' }).end(img));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const ws = webhookWorkspace();
      const { base } = await startDaemon(ws);
      const order = ['a blue object', 'a red object', 'a green object'];
      const r = await score(base, { image: b64(), texts: order, meta: { q: 1 } });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(texts(r.json), order);
      assert.deepEqual(r.json.results.map((x: { band: string }) => x.band), ['reject', 'adopt', 'reject']);
      for (const x of r.json.results) assert.deepEqual(Object.keys(x).sort(), ['band', 'cosine', 'score', 'text']);
      assert.equal(r.json.model.name, 'demo-colours');
      assert.deepEqual(r.json.meta, { q: 1 });
      const reversed = await score(base, { image: b64(), texts: [...order].reverse() });
      assert.deepEqual(texts(reversed.json), [...order].reverse());

      const form = new FormData();
      form.append('text', 'a red object');
      form.append('text', 'a blue object');
      form.set('image', new Blob([img]), 'red.jpg');
      const mp = await fetch(`${base}/v1/score`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
      assert.deepEqual(texts((await mp.json()) as any), ['a red object', 'a blue object']);

      const url = await score(base, { imageUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}/red.jpg`, texts: ['a red object'] });
      assert.equal(url.json.results[0].band, 'adopt');
      const rule = await score(base, { image: b64() });
      assert.deepEqual(texts(rule.json), ['a red product']);
      assert.equal(rule.json.rule, 'colours');
      assert.deepEqual(spool(ws), [], 'nothing left in the spool');
    } finally {
      server.close();
    }
  });

  test('bad requests: 401 without a token, 400 for bad texts (listed) or a per-item rule without texts, 422 for a non-image, SSRF refused', async () => {
    const ws = webhookWorkspace({ rules: { titles: { texts: 'per-item', actions: {} } } });
    const { daemon, base } = await startDaemon(ws);
    assert.equal((await score(base, { image: b64(), texts: ['red'] }, 'wrong-token-0123456789')).status, 401);
    const bad = await score(base, { image: b64(), texts: ['', 'red'] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.error.problems, ['text 0: empty or only whitespace']);
    const none = await score(base, { image: b64(), rule: 'titles' });
    assert.equal(none.status, 400);
    assert.equal(none.json.error.code, 'MATCHD_TEXTS_REQUIRED');
    const pdf = await score(base, { image: Buffer.from('%PDF-1.7 not an image').toString('base64'), texts: ['red'] });
    assert.equal(pdf.status, 422);
    assert.equal(pdf.json.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    const ssrf = await score(base, { imageUrl: 'http://169.254.169.254/latest/meta-data/', texts: ['red'] });
    assert.equal(ssrf.json.error.code, 'MATCHD_URL_REFUSED');
    const cb = await score(base, { image: b64(), texts: ['red'], callbackUrl: 'https://example.com/x' });
    assert.equal(cb.status, 400);
    assert.match(cb.json.error.message, /unknown field 'callbackUrl'/);
    assert.deepEqual(spool(ws), []);
    const c = daemon.journalForTools.counts();
    assert.equal(c.queued + c.running + c.done + c.failed, 0, 'scoring now journals nothing');
  });

  test('a full queue: the core refuses to score now (backpressure), and the route answers 429 with Retry-After and cleans the spool', async () => {
    const ws = webhookWorkspace({ model: { queueSize: 2 } });
    const { daemon } = await startDaemon(ws);
    const j = daemon.journalForTools;
    // Two jobs journalled and not yet leased (the pump runs on the next turn): the queue is full right now.
    j.enqueue({ dedupeKey: 'q1', source: 'api', rule: 'colours', imagePath: '/nonexistent/1.jpg' });
    j.enqueue({ dedupeKey: 'q2', source: 'api', rule: 'colours', imagePath: '/nonexistent/2.jpg' });
    const refused = await daemon.score('colours', { image: { path: '/nonexistent/3.jpg' }, texts: ['red'] });
    assert.deepEqual(refused, { ok: false, reason: 'backpressure', retryAfterMs: 1000, message: 'the queue is full (2 jobs)' });

    // The route's answer to that refusal, through a context that refuses the same way.
    const dir = tmpDir('matchd-webhook-');
    const ctx = fakeContext({ name: 'api', baseDir: dir });
    fs.mkdirSync(ctx.spoolDir, { recursive: true });
    ctx.score = async () => ({ ok: false, reason: 'backpressure', retryAfterMs: 2500, message: 'the queue is full (2 jobs)' });
    const source = new WebhookSource(ctx, WebhookConfigSchema.parse(webhookOptions()));
    await source.start();
    try {
      const r = await score(`http://127.0.0.1:${source.address!.port}`, { image: b64(), texts: ['red'] });
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, 'MATCHD_RATE_LIMITED');
      assert.equal(r.headers.get('retry-after'), '3');
      assert.deepEqual(fs.readdirSync(ctx.spoolDir), []);
    } finally {
      await source.stop();
    }
  });
});
