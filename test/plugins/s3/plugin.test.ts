// The S3 source instance and its actions, driven directly (fake context, real s3rver process): objects that vanish
// between list and get, backpressure, the tracking window, fatal listing errors, and the actions' idempotence.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { PermanentActionError, RetryLaterError, type ActionContext } from '../../../src/core/plugin.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { S3ConfigSchema, S3Source } from '../../../src/plugins/s3/index.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { fakeContext, type FakeContext } from '../../fixtures/plugin-context.ts';
import { TestS3, colourBytes, put, tagsOf } from '../../fixtures/s3.ts';

const servers: TestS3[] = [];
const sources: S3Source[] = [];

async function server(): Promise<TestS3> {
  const s = await new TestS3().start();
  servers.push(s);
  return s;
}

function source(s3: TestS3, options: Record<string, unknown> = {}, client?: S3Client): { src: S3Source; ctx: FakeContext } {
  const baseDir = tmpDir('matchd-s3-');
  const ctx = fakeContext({ name: 's3t', knownIncludesAccepted: true, baseDir });
  fs.mkdirSync(ctx.spoolDir, { recursive: true });
  const src = new S3Source(ctx, S3ConfigSchema.parse(s3.sourceOptions(options)), client);
  sources.push(src);
  return { src, ctx };
}

function actionCtx(meta: Record<string, unknown>, attempt = 1): ActionContext {
  return {
    jobId: 1, job: { source: 's3t', rule: 'r', imagePath: '', meta: {}, origin: meta, outcome: 'adopt', result: null, createdAt: 0 },
    attempt, now: Date.now, location: '', remember() {}, log: silentLogger(),
  };
}

const DOC = { outcome: 'adopt', rule: 'r', source: 's3t', decidedBy: 'a red product', results: [{ text: 'a red product', cosine: 0.61234, score: 0.4321, band: 'adopt' }] };

describe('s3 source instance', () => {
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  after(cleanupTmpDirs);

  test('an object deleted between list and get is a per-item outcome (MATCHD_S3_OBJECT_GONE), not a job or a crash', async () => {
    const s3 = await server();
    const c = s3.client();
    await put(c, 'incoming/gone.png', await colourBytes([200, 0, 0]));
    await put(c, 'incoming/stays.png', await colourBytes([200, 0, 0]));
    // a client that deletes gone.png just before it is downloaded
    const racing = s3.client();
    const send = racing.send.bind(racing) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
    (racing as unknown as { send: typeof send }).send = async (cmd, opts) => {
      if (cmd instanceof GetObjectCommand && cmd.input.Key === 'incoming/gone.png') await c.send(new DeleteObjectCommand({ Bucket: 'bucket', Key: 'incoming/gone.png' }));
      return send(cmd, opts);
    };
    const { src, ctx } = source(s3, {}, racing);
    assert.equal(await src.poll(), 100);
    assert.deepEqual(ctx.accepted.map((j) => j.origin!.key), ['incoming/stays.png']);
    const outcomes = ctx.state.get<{ key: string; code: string }[]>('outcomes')!;
    assert.deepEqual(outcomes.map((o) => [o.key, o.code]), [['incoming/gone.png', 'MATCHD_S3_OBJECT_GONE']]);
    assert.equal(src.stats.vanished, 1);
    assert.ok(ctx.healthLog.every((h) => h.state === 'ok'));
    assert.deepEqual(fs.readdirSync(ctx.spoolDir).filter((f) => !ctx.accepted.some((j) => j.image.path.endsWith(f))), [], 'no stray spool file');
  });

  test('backpressure: the refused object waits for the next poll, its spool file is removed, the watermark does not pass it', async () => {
    const s3 = await server();
    const c = s3.client();
    for (const k of ['a', 'b', 'c']) await put(c, `incoming/${k}.png`, await colourBytes([0, 0, 200]));
    const { src, ctx } = source(s3, { downloadConcurrency: 1 });
    ctx.refuse(1, 'backpressure', 250);
    assert.equal(await src.poll(), 250, 'the next poll comes after retryAfterMs');
    assert.equal(ctx.accepted.length, 0);
    assert.deepEqual(fs.readdirSync(ctx.spoolDir), []);
    await src.poll();
    assert.deepEqual(ctx.accepted.map((j) => j.origin!.key).sort(), ['incoming/a.png', 'incoming/b.png', 'incoming/c.png']);
    assert.equal(ctx.accepted[0]!.image.temporary, true);
    assert.match(ctx.accepted[0]!.dedupeKey, /^s3:bucket\/incoming\/[abc]\.png@[0-9a-f]{32}$/);
  });

  test('objects older than the watermark minus trackingWindowMs are not looked at again (journal retention)', async () => {
    const s3 = await server();
    const c = s3.client();
    await put(c, 'incoming/old.png', await colourBytes([0, 0, 200]));
    await new Promise((r) => setTimeout(r, 1100)); // a later LastModified second
    await put(c, 'incoming/new.png', await colourBytes([0, 0, 200]));
    const { src, ctx } = source(s3, { trackingWindowMs: 0 });
    await src.poll();
    assert.equal(ctx.accepted.length, 2);
    ctx.known.clear(); // as if the journal had pruned both jobs
    await src.poll();
    assert.deepEqual(ctx.accepted.slice(2).map((j) => j.origin!.key), ['incoming/new.png'], 'only the object at the watermark is compared again');
  });

  test('NoSuchBucket and bad credentials stop the source with MATCHD_S3_ACCESS; connection errors back off, capped', async () => {
    const s3 = await server();
    const { src, ctx } = source(s3, { bucket: 'no-such-bucket' });
    assert.equal(await src.poll(), Infinity, JSON.stringify(ctx.healthLog));
    assert.equal(ctx.healthLog.at(-1)!.state, 'down');
    assert.match(ctx.healthLog.at(-1)!.detail!, /NoSuchBucket.*MATCHD_S3_ACCESS/);

    // (s3rver checks the access key id, not SigV4 signatures, so a wrong secret would pass: use an unknown key id)
    const bad = source(s3, { accessKeyId: 'AKIAUNKNOWN' });
    assert.equal(await bad.src.poll(), Infinity, JSON.stringify(bad.ctx.healthLog));
    assert.match(bad.ctx.healthLog.at(-1)!.detail!, /InvalidAccessKeyId \(HTTP 403\).*MATCHD_S3_ACCESS/);

    const down = source(s3, { endpoint: 'http://127.0.0.1:9', backoff: { initialMs: 100, maxMs: 300 } });
    assert.deepEqual([await down.src.poll(), await down.src.poll(), await down.src.poll(), await down.src.poll()], [100, 200, 300, 300]);
    assert.equal(down.ctx.healthLog.at(-1)!.state, 'degraded');
    assert.equal(down.ctx.state.get('cursor'), undefined, 'state not advanced');
  });
});

describe('s3 actions', () => {
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  after(cleanupTmpDirs);

  test('tag: merges, is idempotent, skips an object overwritten since, and refuses more than 10 tags', async () => {
    const s3 = await server();
    const c = s3.client();
    const etag = await put(c, 'incoming/x.png', 'bytes');
    await c.send(new PutObjectTaggingCommand({ Bucket: 'bucket', Key: 'incoming/x.png', Tagging: { TagSet: [{ Key: 'owner', Value: 'bob' }] } }));
    const { src } = source(s3);
    const meta = { bucket: 'bucket', key: 'incoming/x.png', etag, size: 5 };
    await src.actions.tag!({ options: {}, doc: DOC }, actionCtx(meta));
    await src.actions.tag!({ options: {}, doc: DOC }, actionCtx(meta));
    assert.deepEqual(await tagsOf(c, 'incoming/x.png'), { owner: 'bob', 'matchd-band': 'adopt', 'matchd-score': '0.43' });
    await src.actions.tag!({ options: { tags: { cos: '{cosine}', r: '{rule}' } }, doc: DOC }, actionCtx(meta));
    assert.deepEqual(await tagsOf(c, 'incoming/x.png'), { owner: 'bob', 'matchd-band': 'adopt', 'matchd-score': '0.43', cos: '0.6123', r: 'r' });

    const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(src.actions.tag!({ options: { tags: many }, doc: DOC }, actionCtx(meta)), (e) => e instanceof PermanentActionError && /S3 allows 10/.test(e.message));

    await put(c, 'incoming/x.png', 'new bytes');
    await src.actions.tag!({ options: { tags: { 'matchd-band': 'stale' } }, doc: DOC }, actionCtx(meta));
    assert.notEqual((await tagsOf(c, 'incoming/x.png'))['matchd-band'], 'stale', 'the new version is not tagged with the old result');
  });

  test('s3copy with deleteSource: copies per band, verifies, deletes; a re-run after a crash finds it done', async () => {
    const s3 = await server();
    const c = s3.client();
    const etag = await put(c, 'incoming/a/b.png', 'image bytes');
    const { src } = source(s3);
    const meta = { bucket: 'bucket', key: 'incoming/a/b.png', etag, size: 11 };
    const payload = { options: { prefix: 'sorted/{band}', deleteSource: true }, doc: DOC };
    await src.actions.s3copy!(payload, actionCtx(meta));
    const copy = await c.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'sorted/adopt/a/b.png' }));
    assert.equal(copy.ETag?.replace(/"/g, ''), etag);
    await assert.rejects(c.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'incoming/a/b.png' })), /NotFound/);
    await src.actions.s3copy!(payload, actionCtx(meta, 2)); // the retry after a crash: nothing left to do, no error
    await src.actions.s3sidecar!({ options: {}, doc: DOC }, actionCtx(meta));
    const side = await c.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'incoming/a/b.png.matchd.json' }));
    assert.equal(JSON.parse(await side.Body!.transformToString()).outcome, 'adopt');
  });

  test('a store that is down: RetryLaterError with capped backoff, then permanent after actionAttempts', async () => {
    const s3 = await server();
    const { src } = source(s3, { endpoint: 'http://127.0.0.1:9', backoff: { initialMs: 100, maxMs: 300 }, actionAttempts: 3 });
    const meta = { bucket: 'bucket', key: 'incoming/x.png', etag: 'abc', size: 1 };
    await assert.rejects(src.actions.tag!({ options: {}, doc: DOC }, actionCtx(meta, 1)), (e) => e instanceof RetryLaterError && e.retryAfterMs === 100);
    await assert.rejects(src.actions.tag!({ options: {}, doc: DOC }, actionCtx(meta, 2)), (e) => e instanceof RetryLaterError && e.retryAfterMs === 200);
    await assert.rejects(src.actions.tag!({ options: {}, doc: DOC }, actionCtx(meta, 3)), (e) => e instanceof PermanentActionError && /gave up after 3/.test(e.message));
  });
});
