// The S3 source instance and its actions, driven directly (fake context) against a real S3 server (Ceph RGW,
// started here): objects that vanish between list and get, backpressure, the tracking window, fatal listing errors,
// the actions' idempotence, their checks of the scored version, and their wait for a store that is down.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { PermanentActionError, RetryLaterError, type ActionContext } from '../../../src/core/plugin.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { describe as describeError } from '../../../src/plugins/s3/client.ts';
import { S3ConfigSchema, S3Source } from '../../../src/plugins/s3/index.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { fakeContext, type FakeContext } from '../../fixtures/plugin-context.ts';
import { TestRgw, freePort } from '../../fixtures/rgw.ts';
import { TestBucket, colourBytes } from '../../fixtures/s3.ts';

let rgw: TestRgw;
const sources: S3Source[] = [];

function source(b: TestBucket, options: Record<string, unknown> = {}, client?: S3Client): { src: S3Source; ctx: FakeContext } {
  const baseDir = tmpDir('matchd-s3-');
  const ctx = fakeContext({ name: 's3t', knownIncludesAccepted: true, baseDir });
  fs.mkdirSync(ctx.spoolDir, { recursive: true });
  const src = new S3Source(ctx, S3ConfigSchema.parse(b.options(options)), client);
  sources.push(src);
  return { src, ctx };
}

/** The context the runner gives an action; `payload` is what `remember` last stored. */
function actionCtx(origin: Record<string, unknown>, attempt = 1, now = Date.now): ActionContext & { remembered: Record<string, unknown>[] } {
  const remembered: Record<string, unknown>[] = [];
  return {
    jobId: 1, job: { source: 's3t', rule: 'r', imagePath: '', meta: {}, origin, outcome: 'adopt', result: null, createdAt: 0 },
    attempt, now, location: '', remember: (p) => void remembered.push(p), log: silentLogger(), remembered,
  };
}

const DOC = { outcome: 'adopt', rule: 'r', source: 's3t', decidedBy: 'a red product', results: [{ text: 'a red product', cosine: 0.61234, score: 0.4321, band: 'adopt' }] };

describe('s3 source instance', () => {
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('an object deleted between list and get is a per-item outcome (MATCHD_S3_OBJECT_GONE), not a job or a crash', async () => {
    const b = await TestBucket.create(rgw);
    await b.put('incoming/gone.png', await colourBytes([200, 0, 0]));
    await b.put('incoming/stays.png', await colourBytes([200, 0, 0]));
    // a client that deletes gone.png just before it is downloaded
    const racing = rgw.client();
    const send = racing.send.bind(racing) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
    (racing as unknown as { send: typeof send }).send = async (cmd, opts) => {
      if (cmd instanceof GetObjectCommand && cmd.input.Key === 'incoming/gone.png') await b.client.send(new DeleteObjectCommand({ Bucket: b.name, Key: 'incoming/gone.png' }));
      return send(cmd, opts);
    };
    const { src, ctx } = source(b, {}, racing);
    assert.equal(await src.poll(), 100);
    assert.deepEqual(ctx.accepted.map((j) => j.origin!.key), ['incoming/stays.png']);
    const outcomes = ctx.state.get<{ key: string; code: string }[]>('outcomes')!;
    assert.deepEqual(outcomes.map((o) => [o.key, o.code]), [['incoming/gone.png', 'MATCHD_S3_OBJECT_GONE']]);
    assert.ok(ctx.healthLog.every((h) => h.state === 'ok'));
    assert.deepEqual(fs.readdirSync(ctx.spoolDir).filter((f) => !ctx.accepted.some((j) => j.image.path.endsWith(f))), [], 'no stray spool file');
  });

  test('backpressure: the refused object waits for the next poll, its spool file is removed, the watermark does not pass it', async () => {
    const b = await TestBucket.create(rgw);
    for (const k of ['a', 'b', 'c']) await b.put(`incoming/${k}.png`, await colourBytes([0, 0, 200]));
    const { src, ctx } = source(b, { downloadConcurrency: 1 });
    ctx.refuse(1, 'backpressure', 250);
    assert.equal(await src.poll(), 250, 'the next poll comes after retryAfterMs');
    assert.equal(ctx.accepted.length, 0);
    assert.deepEqual(fs.readdirSync(ctx.spoolDir), []);
    await src.poll();
    assert.deepEqual(ctx.accepted.map((j) => j.origin!.key).sort(), ['incoming/a.png', 'incoming/b.png', 'incoming/c.png']);
    assert.equal(ctx.accepted[0]!.image.temporary, true);
    assert.match(ctx.accepted[0]!.dedupeKey, new RegExp(`^s3:${b.name}/incoming/[abc]\\.png@[0-9a-f]{32}$`));
    assert.equal(ctx.accepted[0]!.origin!.uri, `s3://${b.name}/${ctx.accepted[0]!.origin!.key}`);
  });

  test('objects older than the watermark minus trackingWindowMs are not looked at again (journal retention)', async () => {
    const b = await TestBucket.create(rgw);
    await b.put('incoming/old.png', await colourBytes([0, 0, 200]));
    await new Promise((r) => setTimeout(r, 1100)); // a later LastModified
    await b.put('incoming/new.png', await colourBytes([0, 0, 200]));
    const { src, ctx } = source(b, { trackingWindowMs: 0 });
    await src.poll();
    assert.equal(ctx.accepted.length, 2);
    ctx.known.clear(); // as if the journal had pruned both jobs
    await src.poll();
    assert.deepEqual(ctx.accepted.slice(2).map((j) => j.origin!.key), ['incoming/new.png'], 'only the object at the watermark is compared again');
  });

  test('startAfter with shards: a poll lists only the keys after each shard\'s last one taken; keys written out of order or outside the shards wait for the sweep', async () => {
    const b = await TestBucket.create(rgw);
    const png = await colourBytes([200, 0, 0]);
    for (const s of ['a', 'b']) for (let i = 0; i < 5; i++) await b.put(`incoming/${s}/${String(i).padStart(4, '0')}.png`, png);
    await b.put('incoming/c/unsharded.png', png);
    const t0 = Date.now();
    const { src, ctx } = source(b, { startAfter: true, shards: ['a/', 'b/'], sweepIntervalMs: 5000, pageSize: 2 });
    const keys = (from: number) => ctx.accepted.slice(from).map((j) => String(j.origin!.key)).sort();
    await src.poll(); // the first poll is a sweep: everything under the prefix
    assert.equal(src.stats.sweeps, 1);
    assert.equal(ctx.accepted.length, 11);
    let listed = src.stats.listed;
    await src.poll();
    assert.equal(src.stats.listed - listed, 0, 'nothing after either shard\'s last key: nothing listed');
    assert.equal(src.stats.listCalls, 6 + 2, 'the sweep took 6 pages of 2; then one empty page per shard');
    await b.put('incoming/a/0005.png', png);
    await b.put('incoming/b/0005.png', png);
    await b.put('incoming/a/0002-late.png', png); // sorts before a/'s last key
    await b.put('incoming/c/new.png', png);
    listed = src.stats.listed;
    await src.poll();
    assert.deepEqual(keys(11), ['incoming/a/0005.png', 'incoming/b/0005.png']);
    assert.equal(src.stats.listed - listed, 2, 'only the two new keys were listed');
    assert.equal(src.stats.sweeps, 1);
    await new Promise((r) => setTimeout(r, t0 + 5100 - Date.now()));
    await src.poll(); // sweepIntervalMs has passed: a full listing
    assert.equal(src.stats.sweeps, 2);
    assert.deepEqual(keys(13), ['incoming/a/0002-late.png', 'incoming/c/new.png'], 'the sweep found what the incremental polls could not');
    assert.equal(new Set(ctx.accepted.map((j) => j.dedupeKey)).size, 15, 'each once');
  });

  test('NoSuchBucket and bad credentials stop the source with MATCHD_S3_ACCESS; a refused connection backs off, capped, and shows the store down', async () => {
    const b = await TestBucket.create(rgw);
    const { src, ctx } = source(b, { bucket: 'no-such-bucket' });
    assert.equal(await src.poll(), Infinity, JSON.stringify(ctx.healthLog));
    assert.equal(ctx.healthLog.at(-1)!.state, 'down');
    assert.match(ctx.healthLog.at(-1)!.detail!, /NoSuchBucket \(HTTP 404\).*MATCHD_S3_ACCESS/);
    assert.doesNotMatch(ctx.healthLog.at(-1)!.detail!, /UnknownError/);

    const bad = source(b, { accessKeyId: 'AKIAUNKNOWN' });
    assert.equal(await bad.src.poll(), Infinity, JSON.stringify(bad.ctx.healthLog));
    assert.match(bad.ctx.healthLog.at(-1)!.detail!, /InvalidAccessKeyId \(HTTP 403\).*MATCHD_S3_ACCESS/);

    const wrongSecret = source(b, { secretAccessKey: 'not-the-secret' });
    assert.equal(await wrongSecret.src.poll(), Infinity);
    assert.match(wrongSecret.ctx.healthLog.at(-1)!.detail!, /SignatureDoesNotMatch \(HTTP 403\).*MATCHD_S3_ACCESS/);

    const port = await freePort(); // nothing listens there
    const down = source(b, { endpoint: `http://127.0.0.1:${port}`, backoff: { initialMs: 100, maxMs: 300 } });
    assert.deepEqual([await down.src.poll(), await down.src.poll(), await down.src.poll(), await down.src.poll()], [100, 200, 300, 300]);
    assert.equal(down.ctx.healthLog.at(-1)!.state, 'down');
    assert.match(down.ctx.healthLog.at(-1)!.detail!, new RegExp(`the store \\(http://127\\.0\\.0\\.1:${port}\\) has not answered since .* \\(4 failed request\\(s\\) in a row, the last: ECONNREFUSED`));
    assert.equal(down.ctx.state.get('cursor'), undefined, 'state not advanced');
  });

  test("RGW's errors are described by their code and status, without the SDK's 'UnknownError'", async () => {
    const b = await TestBucket.create(rgw);
    const errOf = (p: Promise<unknown>) => p.then(() => assert.fail('should have failed'), (e: unknown) => e);
    const missing = await errOf(b.client.send(new GetObjectCommand({ Bucket: b.name, Key: 'nope' })));
    assert.equal((missing as Error).message, 'UnknownError', 'RGW sends no message the SDK can read');
    assert.equal(describeError(missing), 'NoSuchKey (HTTP 404)');
    const denied = await errOf(rgw.client({ accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' }).send(new GetObjectCommand({ Bucket: b.name, Key: 'nope' })));
    assert.equal(describeError(denied), 'InvalidAccessKeyId (HTTP 403)');
  });
});

describe('s3 actions', () => {
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('tag: merges, is idempotent, and refuses more than 10 tags', async () => {
    const b = await TestBucket.create(rgw);
    const etag = await b.put('incoming/x.png', 'bytes');
    await b.client.send(new PutObjectTaggingCommand({ Bucket: b.name, Key: 'incoming/x.png', Tagging: { TagSet: [{ Key: 'owner', Value: 'bob' }] } }));
    const { src, ctx } = source(b);
    const origin = { bucket: b.name, key: 'incoming/x.png', etag, size: 5 };
    await src.actions.tag!({ options: {}, doc: DOC }, actionCtx(origin));
    await src.actions.tag!({ options: {}, doc: DOC }, actionCtx(origin));
    assert.deepEqual(await b.tags('incoming/x.png'), { owner: 'bob', 'matchd-band': 'adopt', 'matchd-score': '0.43' });
    await src.actions.tag!({ options: { tags: { cos: '{cosine}', r: '{rule}' } }, doc: DOC }, actionCtx(origin));
    assert.deepEqual(await b.tags('incoming/x.png'), { owner: 'bob', 'matchd-band': 'adopt', 'matchd-score': '0.43', cos: '0.6123', r: 'r' });
    assert.deepEqual(ctx.state.get('tagKeys'), ['cos', 'matchd-band', 'matchd-score', 'r'], 'the tag keys put, for telling re-uploads from tag changes');
    const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(src.actions.tag!({ options: { tags: many }, doc: DOC }, actionCtx(origin)), (e) => e instanceof PermanentActionError && /S3 allows 10/.test(e.message));
  });

  test('tag, s3copy, s3sidecar on an object overwritten or deleted since it was scored: done with a note, nothing written', async () => {
    const b = await TestBucket.create(rgw);
    const etag = await b.put('incoming/x.png', 'bytes');
    const { src } = source(b);
    const origin = { bucket: b.name, key: 'incoming/x.png', etag, size: 5 };
    await b.put('incoming/x.png', 'new bytes');
    for (const [kind, options] of [['tag', { tags: { 'matchd-band': 'stale' } }], ['s3copy', { prefix: 'sorted/{band}/' }], ['s3sidecar', { prefix: 'results/' }]] as const) {
      const c = actionCtx(origin);
      assert.deepEqual(await src.actions[kind]!({ options, doc: DOC }, c), {}, `${kind} is done`);
      assert.match(String(c.remembered.at(-1)?.note), /was overwritten after it was scored \(ETag [0-9a-f]+ → [0-9a-f]+\)/, `${kind} says why`);
    }
    assert.notEqual((await b.tags('incoming/x.png'))['matchd-band'], 'stale', 'the new version is not tagged with the old result');
    assert.deepEqual(await b.keys(), ['incoming/x.png'], 'no copy, no sidecar for the old result');

    await b.delete('incoming/x.png');
    for (const [kind, options] of [['tag', {}], ['s3copy', { prefix: 'sorted/{band}/', deleteSource: true }], ['s3sidecar', {}]] as const) {
      const c = actionCtx(origin);
      assert.deepEqual(await src.actions[kind]!({ options, doc: DOC }, c), {}, `${kind} on a deleted object is done, not dead`);
      assert.match(String(c.remembered.at(-1)?.note), /is gone \(deleted after it was scored\)/);
    }
    assert.deepEqual(await b.keys(), [], 'no orphan sidecar or copy');
  });

  test('s3copy with deleteSource: copies per band, verifies, deletes; a re-run after a crash finds it done', async () => {
    const b = await TestBucket.create(rgw);
    const etag = await b.put('incoming/a/b.png', 'image bytes', { metadata: { owner: 'alice' } });
    const { src } = source(b);
    const origin = { bucket: b.name, key: 'incoming/a/b.png', etag, size: 11 };
    const payload = { options: { prefix: 'sorted/{band}', deleteSource: true }, doc: DOC };
    await src.actions.s3copy!(payload, actionCtx(origin));
    const copy = await b.head('sorted/adopt/a/b.png');
    assert.equal(copy?.etag, etag);
    assert.equal(copy?.metadata.owner, 'alice', "the object's own metadata goes along");
    assert.equal(copy?.metadata['matchd-source'], encodeURIComponent(`${b.name}/incoming/a/b.png`), 'the copy names its object');
    assert.ok(!(await b.exists('incoming/a/b.png')));
    await src.actions.s3copy!(payload, actionCtx(origin, 2)); // the retry after a crash: nothing left to do, no error
    assert.ok(await b.exists('sorted/adopt/a/b.png'));
  });

  test('s3copy and s3sidecar under a {band} prefix: a result in another band removes the outputs its object left in the old one, and only those', async () => {
    const b = await TestBucket.create(rgw);
    const etag = await b.put('incoming/x.png', 'image bytes');
    await b.put('sorted/review/y.png', 'not ours: no marker'); // same folder, another object
    await b.put('sorted/review/x.png.unrelated', 'not ours');
    const { src } = source(b);
    const origin = { bucket: b.name, key: 'incoming/x.png', etag, size: 11 };
    const review = { ...DOC, outcome: 'review' };
    await src.actions.s3copy!({ options: { prefix: 'sorted/{band}/' }, doc: review }, actionCtx(origin));
    await src.actions.s3sidecar!({ options: { prefix: 'results/{band}/' }, doc: review }, actionCtx(origin));
    assert.deepEqual(await b.keys(), ['incoming/x.png', 'results/review/x.png.matchd.json', 'sorted/review/x.png', 'sorted/review/x.png.unrelated', 'sorted/review/y.png']);
    // A person's decision (or a newer version) puts it in adopt.
    await src.actions.s3copy!({ options: { prefix: 'sorted/{band}/' }, doc: DOC }, actionCtx(origin));
    await src.actions.s3sidecar!({ options: { prefix: 'results/{band}/' }, doc: DOC }, actionCtx(origin));
    assert.deepEqual(await b.keys(), ['incoming/x.png', 'results/adopt/x.png.matchd.json', 'sorted/adopt/x.png', 'sorted/review/x.png.unrelated', 'sorted/review/y.png']);
  });

  test('a store that is down: retried with capped backoff, however many times, until actionMaxAgeMs after the first failure', async () => {
    const b = await TestBucket.create(rgw);
    const port = await freePort(); // nothing listens there
    const { src } = source(b, { endpoint: `http://127.0.0.1:${port}`, backoff: { initialMs: 100, maxMs: 300 }, actionMaxAgeMs: 3600_000 });
    const origin = { bucket: b.name, key: 'incoming/x.png', etag: 'abc', size: 1 };
    let t = 1_000_000;
    const now = () => t;
    const first = actionCtx(origin, 1, now);
    await assert.rejects(src.actions.tag!({ options: {}, doc: DOC }, first), (e) => e instanceof RetryLaterError && e.retryAfterMs === 100);
    const payload: Record<string, unknown> = { options: {}, doc: DOC, ...first.remembered.at(-1) };
    assert.equal(payload.firstFailedAt, t, 'the first failure is kept in the payload');
    const delays: number[] = [];
    for (let attempt = 2; attempt <= 30; attempt++) {
      t += 60_000; // 29 minutes of refusals: far more attempts than any fixed budget
      await src.actions.tag!(payload, actionCtx(origin, attempt, now)).catch((e: unknown) => {
        assert.ok(e instanceof RetryLaterError, `attempt ${attempt} waits: ${(e as Error).message}`);
        delays.push(e.retryAfterMs);
      });
    }
    assert.deepEqual(delays.slice(0, 3), [200, 300, 300]);
    t = 1_000_000 + 3600_000;
    await assert.rejects(src.actions.tag!(payload, actionCtx(origin, 31, now)), (e) => e instanceof PermanentActionError && /has failed this action for 1\.0 h \(31 attempts/.test(e.message));
  });
});
