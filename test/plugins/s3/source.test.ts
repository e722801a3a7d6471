// The S3 source against a real S3 server (s3rver on 127.0.0.1, started here): scoring and tagging/copying new
// objects, same-second bursts exactly once, overwrites, minimum age, a store that goes away mid-poll, per-item codes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../../../src/core/config.ts';
import { Daemon } from '../../../src/core/daemon.ts';
import { createLogger, silentLogger } from '../../../src/core/log.ts';
import { builtinRegistry } from '../../../src/plugins/index.ts';
import { waitFor, workspace, type Workspace } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { TestS3, colourBytes, jobsOf, put, tagsOf, unfinishedActions } from '../../fixtures/s3.ts';

const RED: [number, number, number] = [220, 20, 20];
const BLUE: [number, number, number] = [20, 40, 220];

const running: Daemon[] = [];
const servers: TestS3[] = [];

async function server(): Promise<TestS3> {
  const s = await new TestS3().start();
  servers.push(s);
  return s;
}

const RULES = {
  colours: {
    texts: ['a red product'],
    actions: {
      default: [{ tag: {} }, { s3copy: { prefix: 'sorted/{band}/' } }, { s3sidecar: { prefix: 'results/' } }],
      error: [{ tag: { tags: { 'matchd-band': '{band}' } } }, { s3sidecar: { prefix: 'results/' } }],
    },
  },
};

function setup(s3: TestS3, options: Record<string, unknown> = {}, model: object = {}): Workspace {
  return workspace({ sources: [{ type: 's3', name: 's3in', rule: 'colours', options: s3.sourceOptions(options) }], rules: RULES, model });
}

async function start(ws: Workspace): Promise<Daemon> {
  const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
  running.push(d);
  return d;
}

/** The s3 source's entry on /healthz. */
const health = (d: Daemon) => (d.health().sources as Record<string, { state: string; detail?: string } | undefined>).s3in;
const journal = (ws: Workspace) => path.join(ws.root, 'var', 'journal.db');
const jobs = (ws: Workspace) => jobsOf(journal(ws), 's3in');
const finished = (ws: Workspace, n: number) => {
  const js = jobs(ws);
  return js.length === n && js.every((j) => j.state === 'done' || j.state === 'failed') && unfinishedActions(journal(ws)).length === 0;
};
const spool = (ws: Workspace) => fs.readdirSync(path.join(ws.root, 'var', 'spool', 's3in'));
/** Resolves once the source has completed `n` more listings (the watermark's timestamp moves each poll). */
async function polls(d: Daemon, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const before = d.journalForTools.pluginGet('s3in', 'lastListedAt');
    await waitFor(() => d.journalForTools.pluginGet('s3in', 'lastListedAt') !== before, 'another S3 poll', 10_000, 20);
  }
}

async function text(s3: TestS3, key: string): Promise<string> {
  const r = await s3.client().send(new GetObjectCommand({ Bucket: 'bucket', Key: key }));
  return r.Body!.transformToString();
}

describe('s3 source', () => {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  after(cleanupTmpDirs);

  test('new objects are scored, tagged (merged with existing tags), copied per band and get a result sidecar', async () => {
    const s3 = await server();
    const c = s3.client();
    const ws = setup(s3);
    const d = await start(ws);
    const redTag = await put(c, 'incoming/shop/red.jpg', await colourBytes(RED, 'jpeg'));
    await c.send(new PutObjectTaggingCommand({ Bucket: 'bucket', Key: 'incoming/shop/red.jpg', Tagging: { TagSet: [{ Key: 'owner', Value: 'alice' }] } }));
    await put(c, 'incoming/blue.png', await colourBytes(BLUE));
    await put(c, 'elsewhere/red.png', await colourBytes(RED)); // outside the prefix
    await put(c, 'incoming/readme.txt', 'not listed: not an image extension');
    await waitFor(() => finished(ws, 2), 'two jobs scored with all their actions done');

    const byKey = Object.fromEntries(jobs(ws).map((j) => [String(j.origin.key), j]));
    assert.deepEqual(Object.keys(byKey).sort(), ['incoming/blue.png', 'incoming/shop/red.jpg']);
    assert.equal(byKey['incoming/shop/red.jpg']!.dedupeKey, `s3:bucket/incoming/shop/red.jpg@${redTag}`);
    assert.equal(byKey['incoming/shop/red.jpg']!.outcome, 'adopt');
    assert.equal(byKey['incoming/blue.png']!.outcome, 'reject');

    const tags = await tagsOf(c, 'incoming/shop/red.jpg');
    assert.equal(tags.owner, 'alice');
    assert.equal(tags['matchd-band'], 'adopt');
    assert.match(tags['matchd-score']!, /^(0|1)\.\d\d$/);
    assert.equal((await tagsOf(c, 'incoming/blue.png'))['matchd-band'], 'reject');

    const copy = await c.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'sorted/adopt/shop/red.jpg' }));
    assert.equal(copy.ETag?.replace(/"/g, ''), redTag);
    await c.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'sorted/reject/blue.png' }));
    await c.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'incoming/shop/red.jpg' })); // no deleteSource: still there

    const side = JSON.parse(await text(s3, 'results/shop/red.jpg.matchd.json'));
    assert.equal(side.outcome, 'adopt');
    assert.equal(side.origin.key, 'incoming/shop/red.jpg');
    assert.equal(side.results[0].text, 'a red product');
    assert.deepEqual(spool(ws), [], 'spooled downloads are deleted after the actions');
    assert.equal(health(d)?.state, 'ok');
  });

  test('50 objects written within the same second are all processed exactly once (paged listing, many polls)', async () => {
    const s3 = await server();
    const c = s3.client();
    const ws = setup(s3, { pageSize: 7, pollIntervalMs: 20 });
    const d = await start(ws);
    const png = await colourBytes(BLUE);
    const started = Date.now();
    await Promise.all(Array.from({ length: 50 }, (_, i) => put(c, `incoming/burst/${String(i).padStart(2, '0')}.png`, png)));
    const wroteIn = Date.now() - started;
    await waitFor(() => finished(ws, 50), '50 jobs done', 30_000);
    await polls(d, 3);
    const js = jobs(ws);
    assert.equal(js.length, 50);
    assert.equal(new Set(js.map((j) => j.origin.key)).size, 50, `each key once (written in ${wroteIn} ms)`);
    assert.ok(js.every((j) => j.outcome === 'reject'));
    const seconds = new Set(js.map((j) => String(j.origin.lastModified).slice(0, 19)));
    assert.ok(seconds.size <= 3, `the burst shares LastModified seconds (${[...seconds].join(', ')})`);
  });

  test('an overwritten key (new ETag) is processed again; an unchanged one is not', async () => {
    const s3 = await server();
    const c = s3.client();
    const ws = setup(s3);
    const d = await start(ws);
    const first = await put(c, 'incoming/item.png', await colourBytes(RED));
    await waitFor(() => finished(ws, 1), 'the first version');
    assert.equal((await tagsOf(c, 'incoming/item.png'))['matchd-band'], 'adopt');
    await polls(d, 2);
    assert.equal(jobs(ws).length, 1, 'an unchanged object is not scored again');
    const second = await put(c, 'incoming/item.png', await colourBytes(BLUE));
    assert.notEqual(first, second);
    await waitFor(() => finished(ws, 2), 'the second version');
    const js = jobs(ws);
    assert.deepEqual(js.map((j) => [j.dedupeKey, j.outcome]), [
      [`s3:bucket/incoming/item.png@${first}`, 'adopt'],
      [`s3:bucket/incoming/item.png@${second}`, 'reject'],
    ]);
    assert.equal((await tagsOf(c, 'incoming/item.png'))['matchd-band'], 'reject');
  });

  test('objects younger than minAgeMs wait for a later poll', async () => {
    const s3 = await server();
    const c = s3.client();
    const ws = setup(s3, { minAgeMs: 2500 });
    const d = await start(ws);
    await put(c, 'incoming/young.png', await colourBytes(RED));
    const putAt = Date.now();
    await polls(d, 3);
    // s3rver's LastModified may be truncated to the second, so the object can look up to 1 s older than it is
    if (Date.now() - putAt < 1400) assert.equal(jobs(ws).length, 0, 'not taken while younger than minAgeMs');
    await waitFor(() => finished(ws, 1), 'taken once old enough', 10_000);
    const job = jobs(ws)[0]!;
    assert.ok(job.createdAt - Date.parse(String(job.origin.lastModified)) >= 2500, 'journalled only after minAgeMs');
  });

  test('the store stopped mid-poll and restarted: the source backs off, shows degraded, recovers; nothing missed or doubled', async () => {
    const s3 = await server();
    const c = s3.client();
    const ws = setup(s3, { downloadConcurrency: 1 });
    const d = await start(ws);
    const png = await colourBytes(RED);
    for (let i = 0; i < 15; i++) await put(c, `incoming/a-${i}.png`, png);
    await waitFor(() => jobs(ws).length >= 2, 'the first downloads');
    await s3.stop(); // mid-poll: downloads and actions of this poll now fail
    await waitFor(() => health(d)?.state === 'degraded', 'the source reported degraded', 10_000);
    assert.match(String(health(d)?.detail), /failed|could not be downloaded/);
    await new Promise((r) => setTimeout(r, 500)); // a few backed-off attempts against the dead port
    await s3.start(); // same port, same directory
    const c2 = s3.client();
    for (let i = 0; i < 5; i++) await put(c2, `incoming/b-${i}.png`, png);
    await waitFor(() => finished(ws, 20), 'all 20 objects scored with their actions', 30_000);
    await polls(d, 2);
    const js = jobs(ws);
    assert.equal(js.length, 20);
    assert.equal(new Set(js.map((j) => j.origin.key)).size, 20, 'each object exactly once');
    for (const j of js) assert.equal((await tagsOf(c2, String(j.origin.key)))['matchd-band'], 'adopt', `${j.origin.key} tagged`);
    await waitFor(() => health(d)?.state === 'ok', 'healthy again');
    assert.deepEqual(spool(ws), []);
  });

  test('a non-image object and an object over maxObjectBytes get their per-item codes; the source goes on', async () => {
    const s3 = await server();
    const c = s3.client();
    // maxObjectBytes equal to the core's model.maxBytes (as the README asks)
    const ws = setup(s3, { maxObjectBytes: 100_000 }, { maxBytes: 100_000 });
    const d = await start(ws);
    await put(c, 'incoming/notes.jpg', 'this is text, not a JPEG');
    await put(c, 'incoming/huge.png', Buffer.alloc(300_000, 7));
    await put(c, 'incoming/fine.png', await colourBytes(RED));
    await waitFor(() => finished(ws, 3), 'three jobs');
    const byKey = Object.fromEntries(jobs(ws).map((j) => [String(j.origin.key), j]));
    assert.equal(byKey['incoming/notes.jpg']!.outcome, 'error');
    assert.equal(byKey['incoming/notes.jpg']!.result!.error!.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(byKey['incoming/huge.png']!.outcome, 'error');
    assert.equal(byKey['incoming/huge.png']!.result!.error!.code, 'MATCHD_IMAGE_TOO_LARGE');
    assert.equal(byKey['incoming/fine.png']!.outcome, 'adopt');
    assert.equal((await tagsOf(c, 'incoming/huge.png'))['matchd-band'], 'error');
    const side = JSON.parse(await text(s3, 'results/notes.jpg.matchd.json'));
    assert.equal(side.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(health(d)?.state, 'ok');
    assert.deepEqual(spool(ws), []);
  });
});

describe('s3 source: credentials and access errors', () => {
  after(cleanupTmpDirs);

  test('credentials from ${ENV} never reach the log; NoSuchBucket / a refused key stop only their source, with MATCHD_S3_ACCESS', async () => {
    const KEY = 'AKIAMATCHDTEST0001';
    const SECRET = 'sEcReT-9f8e7d6c5b4a';
    const OTHER = 'AKIAMATCHDUNKNOWN9';
    const s3 = await new TestS3(['bucket'], [[KEY, SECRET]]).start();
    Object.assign(process.env, { MATCHD_TEST_S3_KEY: KEY, MATCHD_TEST_S3_SECRET: SECRET, MATCHD_TEST_S3_OTHER_KEY: OTHER });
    const creds = { accessKeyId: '${MATCHD_TEST_S3_KEY}', secretAccessKey: '${MATCHD_TEST_S3_SECRET}' };
    const ws = workspace({
      rules: RULES,
      sources: [
        { type: 's3', name: 's3in', rule: 'colours', options: s3.sourceOptions(creds) },
        { type: 's3', name: 'nobucket', rule: 'colours', options: s3.sourceOptions({ ...creds, bucket: 'no-such-bucket' }) },
        { type: 's3', name: 'badkey', rule: 'colours', options: s3.sourceOptions({ ...creds, accessKeyId: '${MATCHD_TEST_S3_OTHER_KEY}' }) },
      ],
    });
    let logged = '';
    const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void (logged += s) } });
    const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger });
    try {
      const c = s3.client({ accessKeyId: KEY, secretAccessKey: SECRET });
      await put(c, 'incoming/red.png', await colourBytes(RED));
      await waitFor(() => finished(ws, 1), 'the image scored and tagged');
      const sources = d.health().sources as Record<string, { state: string; detail?: string }>;
      await waitFor(() => sources.nobucket?.state === 'down' && sources.badkey?.state === 'down', 'both broken sources down');
      const now = d.health().sources as typeof sources;
      assert.equal(now.s3in!.state, 'ok');
      assert.match(now.nobucket!.detail!, /NoSuchBucket.*MATCHD_S3_ACCESS/);
      assert.match(now.badkey!.detail!, /InvalidAccessKeyId.*MATCHD_S3_ACCESS/);
      assert.equal((await tagsOf(c, 'incoming/red.png'))['matchd-band'], 'adopt', 'the working source goes on');
    } finally {
      await d.stop();
      await s3.stop();
      for (const k of ['MATCHD_TEST_S3_KEY', 'MATCHD_TEST_S3_SECRET', 'MATCHD_TEST_S3_OTHER_KEY']) delete process.env[k];
    }
    assert.match(logged, /"code":"MATCHD_S3_ACCESS"/);
    assert.match(logged, /polling S3/);
    assert.ok(!logged.includes(SECRET), 'the secret access key is not logged');
    assert.ok(!logged.includes(KEY), 'the access key id is not logged');
    assert.ok(!logged.includes(OTHER), 'a refused access key id is not logged either');
  });
});
