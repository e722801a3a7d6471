// The S3 source in the daemon against a real S3 server (Ceph RGW on 127.0.0.1, started here): scoring and
// tagging/copying new objects, same-second bursts exactly once, overwrites, minimum age, a gateway killed mid-poll,
// per-item codes, credentials that never reach the log.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../../../src/core/config.ts';
import { Daemon } from '../../../src/core/daemon.ts';
import { createLogger } from '../../../src/core/log.ts';
import { builtinRegistry } from '../../../src/plugins/index.ts';
import { waitFor, workspace } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { RGW_CREDENTIALS, TestRgw } from '../../fixtures/rgw.ts';
import { BLUE, RED, RULES, S3Daemon } from '../../fixtures/s3-daemon.ts';
import { TestBucket, colourBytes, jobsOf, unfinishedActions } from '../../fixtures/s3.ts';

let rgw: TestRgw;
const running: S3Daemon[] = [];

async function start(b: TestBucket, options: Record<string, unknown> = {}, model: object = {}): Promise<S3Daemon> {
  const d = await S3Daemon.start(b, { options, model });
  running.push(d);
  return d;
}

describe('s3 source', () => {
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('new objects are scored, tagged (merged with existing tags), copied per band and get a result sidecar', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b);
    const redTag = await b.put('incoming/shop/red.jpg', await colourBytes(RED, 'jpeg'));
    await b.client.send(new PutObjectTaggingCommand({ Bucket: b.name, Key: 'incoming/shop/red.jpg', Tagging: { TagSet: [{ Key: 'owner', Value: 'alice' }] } }));
    await b.put('incoming/blue.png', await colourBytes(BLUE));
    await b.put('elsewhere/red.png', await colourBytes(RED)); // outside the prefix
    await b.put('incoming/readme.txt', 'not listed: not an image extension');
    await waitFor(() => d.finished(2), 'two jobs scored with all their actions done');

    const byKey = d.byKey();
    assert.deepEqual(Object.keys(byKey).sort(), ['incoming/blue.png', 'incoming/shop/red.jpg']);
    assert.equal(byKey['incoming/shop/red.jpg']!.dedupeKey, `s3:${b.name}/incoming/shop/red.jpg@${redTag}`);
    assert.equal(byKey['incoming/shop/red.jpg']!.outcome, 'adopt');
    assert.equal(byKey['incoming/blue.png']!.outcome, 'reject');

    const tags = await b.tags('incoming/shop/red.jpg');
    assert.equal(tags.owner, 'alice');
    assert.equal(tags['matchd-band'], 'adopt');
    assert.match(tags['matchd-score']!, /^(0|1)\.\d\d$/);
    assert.equal((await b.tags('incoming/blue.png'))['matchd-band'], 'reject');

    assert.equal((await b.head('sorted/adopt/shop/red.jpg'))?.etag, redTag);
    assert.ok(await b.exists('sorted/reject/blue.png'));
    assert.ok(await b.exists('incoming/shop/red.jpg'), 'no deleteSource: still there');

    const side = await b.json('results/shop/red.jpg.matchd.json');
    assert.equal(side.outcome, 'adopt');
    assert.equal(side.origin.key, 'incoming/shop/red.jpg');
    // People see the object, not the spool file it was downloaded to.
    assert.equal(side.originalPath, `s3://${b.name}/incoming/shop/red.jpg`);
    assert.equal(side.file, 'red.jpg');
    assert.equal(side.results[0].text, 'a red product');
    assert.deepEqual(d.spool(), [], 'spooled downloads are deleted after the actions');
    assert.equal(d.health()?.state, 'ok');
  });

  test('50 objects written within the same second are all processed exactly once (paged listing, many polls)', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b, { pageSize: 7, pollIntervalMs: 20 });
    const png = await colourBytes(BLUE);
    const started = Date.now();
    await Promise.all(Array.from({ length: 50 }, (_, i) => b.put(`incoming/burst/${String(i).padStart(2, '0')}.png`, png)));
    const wroteIn = Date.now() - started;
    await waitFor(() => d.finished(50), '50 jobs done', 30_000);
    await d.polls(3);
    const js = d.jobs();
    assert.equal(js.length, 50);
    assert.equal(new Set(js.map((j) => j.origin.key)).size, 50, `each key once (written in ${wroteIn} ms)`);
    assert.ok(js.every((j) => j.outcome === 'reject'));
    const seconds = new Set(js.map((j) => String(j.origin.lastModified).slice(0, 19)));
    assert.ok(seconds.size <= 3, `the burst shares LastModified seconds (${[...seconds].join(', ')})`);
  });

  test('an overwritten key (new ETag) is processed again; an unchanged one is not, although tagging moved its LastModified', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b);
    const first = await b.put('incoming/item.png', await colourBytes(RED));
    const putAt = (await b.listed('incoming/item.png'))!.lastModified;
    await waitFor(() => d.finished(1), 'the first version');
    assert.equal((await b.tags('incoming/item.png'))['matchd-band'], 'adopt');
    // RGW moves LastModified when tags change: our own tagging must not look like a new upload.
    assert.ok((await b.listed('incoming/item.png'))!.lastModified > putAt, 'RGW moved LastModified when it was tagged');
    await d.polls(3);
    assert.equal(d.jobs().length, 1, 'an unchanged object is not scored again');
    const second = await b.put('incoming/item.png', await colourBytes(BLUE));
    assert.notEqual(first, second);
    await waitFor(() => d.finished(2), 'the second version');
    assert.deepEqual(d.jobs().map((j) => [j.dedupeKey, j.outcome]), [
      [`s3:${b.name}/incoming/item.png@${first}`, 'adopt'],
      [`s3:${b.name}/incoming/item.png@${second}`, 'reject'],
    ]);
    assert.equal((await b.tags('incoming/item.png'))['matchd-band'], 'reject');
    await d.polls(2);
    assert.equal(d.jobs().length, 2);
  });

  test('objects younger than minAgeMs wait for a later poll', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b, { minAgeMs: 2500 });
    await b.put('incoming/young.png', await colourBytes(RED));
    const putAt = Date.now();
    await d.polls(3);
    if (Date.now() - putAt < 2400) assert.equal(d.jobs().length, 0, 'not taken while younger than minAgeMs');
    await waitFor(() => d.finished(1), 'taken once old enough', 10_000);
    const job = d.jobs()[0]!;
    assert.ok(job.createdAt - Date.parse(String(job.origin.lastModified)) >= 2500, 'journalled only after minAgeMs');
  });

  test('the gateway killed mid-poll and restarted: the source shows the store down, recovers; nothing missed or doubled', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b, { downloadConcurrency: 1 });
    const png = await colourBytes(RED);
    for (let i = 0; i < 15; i++) await b.put(`incoming/a-${i}.png`, png);
    await waitFor(() => d.jobs().length >= 2, 'the first downloads');
    await rgw.killGateway(); // mid-poll: downloads and actions of this poll now fail
    try {
      await waitFor(() => d.health()?.state === 'down', 'the source reported the store down', 10_000);
      // A request cut by the kill reads "socket hang up"; the ones after it are refused.
      assert.match(String(d.health()?.detail), /the store \(http:\/\/127\.0\.0\.1:\d+\) has not answered since .*(ECONNREFUSED|ECONNRESET|socket hang up)/);
      await new Promise((r) => setTimeout(r, 500)); // a few backed-off attempts against the dead port
    } finally {
      await rgw.startGateway(); // same port, same cluster behind it (also for the next tests when this one fails)
    }
    for (let i = 0; i < 5; i++) await b.put(`incoming/b-${i}.png`, png);
    await waitFor(() => d.finished(20), 'all 20 objects scored with their actions', 30_000);
    await d.polls(2);
    const js = d.jobs();
    assert.equal(js.length, 20);
    assert.equal(new Set(js.map((j) => j.origin.key)).size, 20, 'each object exactly once');
    for (const j of js) assert.equal((await b.tags(String(j.origin.key)))['matchd-band'], 'adopt', `${j.origin.key} tagged`);
    await waitFor(() => d.health()?.state === 'ok', 'healthy again');
    assert.deepEqual(d.spool(), []);
  });

  test('a non-image object and an object over maxObjectBytes get their per-item codes, named by their s3:// URI; the source goes on', async () => {
    const b = await TestBucket.create(rgw);
    // maxObjectBytes equal to the core's model.maxBytes (as the README asks)
    const d = await start(b, { maxObjectBytes: 100_000 }, { maxBytes: 100_000 });
    await b.put('incoming/notes.jpg', 'this is text, not a JPEG');
    await b.put('incoming/huge.png', Buffer.alloc(300_000, 7));
    await b.put('incoming/fine.png', await colourBytes(RED));
    await waitFor(() => d.finished(3), 'three jobs');
    const byKey = d.byKey();
    assert.equal(byKey['incoming/notes.jpg']!.outcome, 'error');
    assert.equal(byKey['incoming/notes.jpg']!.result!.error!.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(byKey['incoming/huge.png']!.outcome, 'error');
    assert.equal(byKey['incoming/huge.png']!.result!.error!.code, 'MATCHD_IMAGE_TOO_LARGE');
    assert.equal(byKey['incoming/fine.png']!.outcome, 'adopt');
    assert.equal((await b.tags('incoming/huge.png'))['matchd-band'], 'error');
    const side = await b.json('results/notes.jpg.matchd.json');
    assert.equal(side.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    // The error names the object, not the local spool file it was downloaded to.
    assert.match(side.error.message, new RegExp(`s3://${b.name}/incoming/notes\\.jpg`));
    assert.doesNotMatch(side.error.message, /spool/);
    assert.equal(side.originalPath, `s3://${b.name}/incoming/notes.jpg`);
    assert.equal(d.health()?.state, 'ok');
    assert.deepEqual(d.spool(), []);
  });
});

describe('s3 source: credentials and access errors', () => {
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('credentials from ${ENV} never reach the log, nor an endpoint URL\'s password; NoSuchBucket / a refused key / a wrong secret stop only their source, with MATCHD_S3_ACCESS', async () => {
    const { accessKeyId: KEY, secretAccessKey: SECRET } = RGW_CREDENTIALS;
    const OTHER = 'AKIAMATCHDUNKNOWN9';
    const WRONG = 'not-the-secret-0123456789';
    const b = await TestBucket.create(rgw);
    Object.assign(process.env, { MATCHD_TEST_S3_KEY: KEY, MATCHD_TEST_S3_SECRET: SECRET, MATCHD_TEST_S3_OTHER_KEY: OTHER, MATCHD_TEST_S3_WRONG: WRONG });
    const creds = { accessKeyId: '${MATCHD_TEST_S3_KEY}', secretAccessKey: '${MATCHD_TEST_S3_SECRET}' };
    const userinfo = rgw.endpoint.replace('http://', 'http://someone:pa55word@');
    const ws = workspace({
      rules: RULES,
      sources: [
        { type: 's3', name: 's3in', rule: 'colours', options: b.options({ ...creds, endpoint: userinfo }) },
        { type: 's3', name: 'nobucket', rule: 'colours', options: b.options({ ...creds, bucket: 'no-such-bucket' }) },
        { type: 's3', name: 'badkey', rule: 'colours', options: b.options({ ...creds, accessKeyId: '${MATCHD_TEST_S3_OTHER_KEY}' }) },
        { type: 's3', name: 'badsecret', rule: 'colours', options: b.options({ ...creds, secretAccessKey: '${MATCHD_TEST_S3_WRONG}' }) },
      ],
    });
    let logged = '';
    const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void (logged += s) } });
    const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger });
    try {
      await b.put('incoming/red.png', await colourBytes(RED));
      const journal = `${ws.root}/var/journal.db`;
      await waitFor(() => jobsOf(journal, 's3in')[0]?.state === 'done' && unfinishedActions(journal).length === 0, 'the image scored and tagged');
      const sources = () => d.health().sources as Record<string, { state: string; detail?: string }>;
      await waitFor(() => ['nobucket', 'badkey', 'badsecret'].every((s) => sources()[s]?.state === 'down'), 'the three broken sources down');
      const now = sources();
      assert.equal(now.s3in!.state, 'ok');
      assert.match(now.nobucket!.detail!, /NoSuchBucket.*MATCHD_S3_ACCESS/);
      assert.match(now.badkey!.detail!, /InvalidAccessKeyId.*MATCHD_S3_ACCESS/);
      assert.match(now.badsecret!.detail!, /SignatureDoesNotMatch.*MATCHD_S3_ACCESS/);
      assert.doesNotMatch(now.badkey!.detail!, /UnknownError/, 'RGW error bodies name no message: none is made up');
      assert.equal((await b.tags('incoming/red.png'))['matchd-band'], 'adopt', 'the working source goes on');
    } finally {
      await d.stop();
      for (const k of ['MATCHD_TEST_S3_KEY', 'MATCHD_TEST_S3_SECRET', 'MATCHD_TEST_S3_OTHER_KEY', 'MATCHD_TEST_S3_WRONG']) delete process.env[k];
    }
    assert.match(logged, /"code":"MATCHD_S3_ACCESS"/);
    assert.match(logged, /polling S3/);
    assert.ok(!logged.includes(SECRET), 'the secret access key is not logged');
    assert.ok(!logged.includes(WRONG), 'a wrong secret is not logged either');
    assert.ok(!logged.includes(KEY), 'the access key id is not logged');
    assert.ok(!logged.includes(OTHER), 'a refused access key id is not logged either');
    assert.ok(!logged.includes('pa55word'), "the endpoint URL's password is not logged");
    assert.match(logged, /"endpoint":"http:\/\/\*\*\*@127\.0\.0\.1:\d+\/?"/, 'the endpoint is logged without its credentials');
  });
});
