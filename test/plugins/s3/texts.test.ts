// The S3 source with each object's own texts and meta — from its user metadata or its `<key>.texts.json` companion
// key — against a real S3 server (s3rver on 127.0.0.1), a real daemon (demo model) and a real callback receiver
// verifying signatures with the `standardwebhooks` package.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../../../src/core/config.ts';
import { Daemon } from '../../../src/core/daemon.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { builtinRegistry } from '../../../src/plugins/index.ts';
import { waitFor, workspace, type Workspace } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { TestS3, colourBytes, jobsOf, put, unfinishedActions } from '../../fixtures/s3.ts';
import { ENDPOINT_SECRET, receiver, type Receiver } from '../../fixtures/webhook.ts';

const RED: [number, number, number] = [220, 20, 20];
const running: Daemon[] = [];
const servers: TestS3[] = [];
const receivers: Receiver[] = [];

/** JSON with every non-ASCII character escaped: what S3 user metadata (ASCII headers) can carry. */
const asciiJson = (v: unknown) => JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

async function setup(rules: object, callbacks?: object): Promise<{ s3: TestS3; ws: Workspace; d: Daemon }> {
  const s3 = await new TestS3().start();
  servers.push(s3);
  const ws = workspace({ sources: [{ type: 's3', name: 's3in', rule: 'colours', options: s3.sourceOptions() }], rules, ...(callbacks ? { callbacks } : {}) });
  const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
  running.push(d);
  return { s3, ws, d };
}

const journal = (ws: Workspace) => path.join(ws.root, 'var', 'journal.db');
const jobs = (ws: Workspace) => jobsOf(journal(ws), 's3in');
const settled = (ws: Workspace, n: number) => {
  const js = jobs(ws);
  return js.length === n && js.every((j) => j.state === 'done' || j.state === 'failed') && unfinishedActions(journal(ws)).length === 0;
};
const byKey = (ws: Workspace) => Object.fromEntries(jobs(ws).map((j) => [String(j.origin.key), j]));
const texts = (r: { results?: { text: string }[] } | null) => r?.results?.map((x) => x.text);

async function putWithMetadata(s3: TestS3, key: string, body: Buffer, metadata: Record<string, string>): Promise<void> {
  await s3.client().send(new PutObjectCommand({ Bucket: 'bucket', Key: key, Body: body, Metadata: metadata }));
}

async function json(s3: TestS3, key: string): Promise<any> {
  const r = await s3.client().send(new GetObjectCommand({ Bucket: 'bucket', Key: key }));
  return JSON.parse(await r.Body!.transformToString());
}

async function exists(s3: TestS3, key: string): Promise<boolean> {
  try {
    await s3.client().send(new HeadObjectCommand({ Bucket: 'bucket', Key: key }));
    return true;
  } catch {
    return false;
  }
}

describe('s3 source: per-object texts and meta', () => {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(cleanupTmpDirs);

  test('texts and meta from user metadata or a <key>.texts.json companion; the rule\'s texts otherwise; results, meta and a signed callback', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const rules = {
      colours: {
        texts: ['a red product'],
        actions: { default: [{ s3copy: { prefix: 'sorted/{band}/', deleteSource: true } }, { s3sidecar: { prefix: 'results/' } }, { callback: { endpoint: 'crm' } }] },
      },
    };
    const { s3, ws } = await setup(rules, { endpoints: { crm: { url: rx.url, secret: ENDPOINT_SECRET } } });
    const img = await colourBytes(RED);
    const c = s3.client();
    await putWithMetadata(s3, 'incoming/meta.jpg', img, {
      'matchd-texts': asciiJson(['a blue dress', 'a red dress', 'une robe rouge é']),
      'matchd-meta': asciiJson({ sku: 'M-1', title: 'Robe été' }),
    });
    await put(c, 'incoming/companion.jpg.texts.json', JSON.stringify({ texts: ['a red shirt', 'a green shirt'], meta: { sku: 'C-1' } }));
    await putWithMetadata(s3, 'incoming/companion.jpg', img, { 'matchd-texts': '["ignored: the companion key wins"]' });
    await put(c, 'incoming/plain.jpg', img);
    await waitFor(() => settled(ws, 3) && rx.received.length === 3, 'three objects scored, moved, sidecars written, callbacks sent', 30_000);

    const j = byKey(ws);
    assert.deepEqual(Object.keys(j).sort(), ['incoming/companion.jpg', 'incoming/meta.jpg', 'incoming/plain.jpg'], 'the companion key is no job');
    assert.deepEqual(j['incoming/meta.jpg']!.texts, ['a blue dress', 'a red dress', 'une robe rouge é']);
    assert.deepEqual(j['incoming/meta.jpg']!.meta, { sku: 'M-1', title: 'Robe été' });
    assert.deepEqual(texts(j['incoming/meta.jpg']!.result), ['a blue dress', 'a red dress', 'une robe rouge é']);
    assert.deepEqual(texts(j['incoming/companion.jpg']!.result), ['a red shirt', 'a green shirt']);
    assert.deepEqual(j['incoming/companion.jpg']!.meta, { sku: 'C-1' });
    assert.equal(j['incoming/plain.jpg']!.texts, null);
    assert.deepEqual(texts(j['incoming/plain.jpg']!.result), ['a red product']);

    const side = await json(s3, 'results/meta.jpg.matchd.json');
    assert.deepEqual(side.meta, { sku: 'M-1', title: 'Robe été' });
    assert.equal(side.textsFrom, 'item');
    assert.equal(side.origin.key, 'incoming/meta.jpg');
    // The companion key moved with its object.
    assert.ok(await exists(s3, 'sorted/adopt/companion.jpg.texts.json'));
    assert.ok(!(await exists(s3, 'incoming/companion.jpg.texts.json')));
    assert.ok(!(await exists(s3, 'incoming/companion.jpg')));

    const wh = new Webhook(ENDPOINT_SECRET);
    const bodies = rx.received.map((m) => wh.verify(m.body, m.headers as Record<string, string>) as any);
    const meta = bodies.find((b) => b.data.origin.key === 'incoming/meta.jpg');
    assert.equal(meta.type, 'match.completed');
    assert.equal(meta.data.source, 's3in');
    assert.deepEqual(meta.data.meta, { sku: 'M-1', title: 'Robe été' });
    assert.equal(meta.data.outcome, 'adopt');
    assert.deepEqual(texts(meta.data), ['a blue dress', 'a red dress', 'une robe rouge é']);
  });

  test('bad texts or meta on an object are per-item errors with their codes; texts: per-item without any is MATCHD_TEXTS_REQUIRED; the source goes on', async () => {
    const rules = {
      colours: {
        texts: 'per-item',
        actions: { default: [{ s3sidecar: { prefix: 'results/' } }], error: [{ s3sidecar: { prefix: 'results/' } }] },
      },
    };
    const { s3, ws, d } = await setup(rules);
    const img = await colourBytes(RED);
    const c = s3.client();
    let deep: Record<string, unknown> = { x: 1 };
    for (let i = 0; i < 20; i++) deep = { deep };
    await putWithMetadata(s3, 'incoming/badjson.jpg', img, { 'matchd-texts': '["a red dress",' });
    await putWithMetadata(s3, 'incoming/empty.jpg', img, { 'matchd-texts': '["  "]' });
    await putWithMetadata(s3, 'incoming/deep.jpg', img, { 'matchd-texts': '["a red dress"]', 'matchd-meta': JSON.stringify(deep) });
    await put(c, 'incoming/broken.jpg.texts.json', '{"texts": oops}');
    await put(c, 'incoming/broken.jpg', img);
    await put(c, 'incoming/none.jpg', img);
    await putWithMetadata(s3, 'incoming/good.jpg', img, { 'matchd-texts': '["a red dress"]' });
    await waitFor(() => settled(ws, 6), 'six objects handled', 30_000);
    const j = byKey(ws);
    const code = (k: string) => j[`incoming/${k}`]!.result?.error?.code;
    assert.equal(code('badjson.jpg'), 'MATCHD_COMPANION_INVALID');
    assert.equal(code('empty.jpg'), 'MATCHD_TEXT_INVALID');
    assert.equal(code('deep.jpg'), 'MATCHD_META_INVALID');
    assert.equal(code('broken.jpg'), 'MATCHD_COMPANION_INVALID');
    assert.equal(code('none.jpg'), 'MATCHD_TEXTS_REQUIRED');
    assert.equal(j['incoming/good.jpg']!.outcome, 'adopt');
    assert.equal((await json(s3, 'results/broken.jpg.matchd.json')).error.code, 'MATCHD_COMPANION_INVALID');
    assert.equal((d.health().sources as Record<string, { state: string }>).s3in!.state, 'ok');
  });
});
