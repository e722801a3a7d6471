// The event-driven mode against a real store: Ceph RGW (started here) pushes bucket notifications to the source's
// HTTP endpoint (an SNS-style topic with push-endpoint, made with awscli), so objects are taken as they arrive and
// the prefix is listed only by the slow reconciliation sweep; a sweep finds what no event announced.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, afterEach, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseEvents } from '../../../src/plugins/s3/events.ts';
import { waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { TestRgw } from '../../fixtures/rgw.ts';
import { BLUE, RED, S3Daemon } from '../../fixtures/s3-daemon.ts';
import { TestBucket, colourBytes } from '../../fixtures/s3.ts';

const run = promisify(execFile);
let rgw: TestRgw;
const running: S3Daemon[] = [];
const TOKEN = 'event-token-for-tests';

async function aws(...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/aws', ['--endpoint-url', rgw.endpoint, ...args], { env: rgw.cliEnv() });
  return stdout;
}

/** A daemon whose s3 source listens for events (port chosen by the system), and that port. */
async function start(b: TestBucket, options: Record<string, unknown>): Promise<{ d: S3Daemon; port: number }> {
  const d = await S3Daemon.start(b, { options: { events: { http: { port: 0, path: '/s3-events', token: TOKEN } }, ...options } });
  running.push(d);
  const addr = d.daemon.journalForTools.pluginGet('s3in', 'eventsAddress') as { port: number } | undefined;
  assert.ok(addr?.port, 'the event endpoint listens');
  return { d, port: addr.port };
}

/** RGW sends the bucket's created/removed events to `url` (a topic with push-endpoint, made by awscli). */
async function notify(b: TestBucket, url: string): Promise<void> {
  const topic = `matchd-${b.name}`;
  const { TopicArn } = JSON.parse(await aws('sns', 'create-topic', '--name', topic, '--attributes', `push-endpoint=${url}`)) as { TopicArn: string };
  await aws('s3api', 'put-bucket-notification-configuration', '--bucket', b.name, '--notification-configuration', JSON.stringify({
    TopicConfigurations: [{ Id: 'matchd', TopicArn, Events: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'] }],
  }));
}

const listedAt = (d: S3Daemon) => d.daemon.journalForTools.pluginGet('s3in', 'lastListedAt');

describe('s3 source: bucket notifications from a real server', () => {
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

  test('RGW pushes events: objects are scored as they arrive without listing the prefix (a key with a space and + arrives as written); an overwrite is scored again', async () => {
    const b = await TestBucket.create(rgw);
    const { d, port } = await start(b, { sweepIntervalMs: 3_600_000 });
    await waitFor(() => listedAt(d) !== undefined, 'the first sweep at start');
    const swept = listedAt(d);
    await notify(b, `http://127.0.0.1:${port}/s3-events?token=${TOKEN}`);
    const red = await colourBytes(RED);
    const keys = ['incoming/one.png', 'incoming/two words+plus.png', 'incoming/deep/three.png'];
    for (const k of keys) await b.put(k, red);
    await waitFor(() => d.finished(3), 'three objects scored with their actions, from events alone', 15_000);
    assert.deepEqual(Object.keys(d.byKey()).sort(), [...keys].sort());
    assert.equal(listedAt(d), swept, 'no listing of the prefix since the start-up sweep');
    await b.put('incoming/one.png', await colourBytes(BLUE));
    await waitFor(() => d.finished(4), 'the overwrite scored from its event', 15_000);
    assert.equal(d.jobs().filter((j) => j.origin.key === 'incoming/one.png').map((j) => j.outcome).join(','), 'adopt,reject');
    assert.equal(listedAt(d), swept, 'still no listing');
    // The copies and sidecars the actions wrote (outside the prefix) and the tag updates are events too: ignored.
    assert.equal(d.jobs().length, 4);
  });

  test('the event endpoint refuses a wrong token (401) and a body that is not event records (400); nothing is taken from them', async () => {
    const b = await TestBucket.create(rgw);
    const { d, port } = await start(b, { sweepIntervalMs: 3_600_000 });
    await b.put('incoming/unannounced.png', await colourBytes(RED)); // after the start-up sweep, announced by no event
    const body = JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', eventSource: 'ceph:s3', s3: { bucket: { name: b.name }, object: { key: 'incoming/unannounced.png' } } }] });
    const wrong = await fetch(`http://127.0.0.1:${port}/s3-events?token=nope`, { method: 'POST', body });
    assert.equal(wrong.status, 401);
    const junk = await fetch(`http://127.0.0.1:${port}/s3-events?token=${TOKEN}`, { method: 'POST', body: '{"Records": 5}' });
    assert.equal(junk.status, 400);
    assert.match(await junk.text(), /not S3 event records: Records is not a list/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(d.jobs().length, 0);
    // The same record with the right token is taken.
    const ok = await fetch(`http://127.0.0.1:${port}/s3-events?token=${TOKEN}`, { method: 'POST', body });
    assert.equal(ok.status, 200);
    await waitFor(() => d.finished(1), 'taken once the event is accepted', 15_000);
  });

  test('events missed (no notification yet, then an endpoint that was down) are found by the sweep; an object named by an event and a sweep is scored once', async () => {
    const b = await TestBucket.create(rgw);
    const red = await colourBytes(RED);
    const { d, port } = await start(b, { sweepIntervalMs: 1000 });
    await b.put('incoming/before-notifications.png', red);
    await waitFor(() => d.finished(1), 'found by a sweep', 15_000);
    // RGW pushes to an address where nothing listens: the upload succeeds, the event is lost.
    await notify(b, 'http://127.0.0.1:9/s3-events');
    await b.put('incoming/event-lost.png', red);
    await waitFor(() => d.finished(2), 'the lost event made up for by a sweep', 15_000);
    // Now events arrive while sweeps run every second: both see each object, the journal takes each once.
    await notify(b, `http://127.0.0.1:${port}/s3-events?token=${TOKEN}`);
    for (let i = 0; i < 6; i++) await b.put(`incoming/both-${i}.png`, red);
    await waitFor(() => d.finished(8), 'all scored', 20_000);
    await d.polls(2);
    assert.equal(d.jobs().length, 8);
    assert.equal(new Set(d.jobs().map((j) => j.dedupeKey)).size, 8);
  });
});

describe('s3 event records', () => {
  test("AWS's shapes (as SQS delivers them, directly or in an SNS envelope): URL-encoded keys decoded, removals flagged, test events and other kinds ignored; RGW's keys as they are", () => {
    const aws = (eventName: string, key: string) => ({ eventVersion: '2.1', eventSource: 'aws:s3', eventName, s3: { bucket: { name: 'shop' }, object: { key, size: 5, eTag: 'x' } } });
    const body = { Records: [aws('ObjectCreated:Put', 'incoming/red+dress+%2B+%C3%BC.png'), aws('ObjectRemoved:Delete', 'incoming/a%25b.png'), aws('ObjectRestore:Completed', 'incoming/c.png'), aws('ObjectCreated:CompleteMultipartUpload', 'incoming/bad%E0.png')] };
    const expected = [
      { bucket: 'shop', key: 'incoming/red dress + ü.png', created: true },
      { bucket: 'shop', key: 'incoming/a%b.png', created: false },
      { bucket: 'shop', key: 'incoming/bad%E0.png', created: true }, // not valid percent-encoding: kept as sent
    ];
    assert.deepEqual(parseEvents(body), expected);
    assert.deepEqual(parseEvents({ Type: 'Notification', MessageId: 'm', TopicArn: 'arn:aws:sns:eu-west-1:1:t', Message: JSON.stringify(body) }), expected);
    assert.deepEqual(parseEvents({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'shop' }), []);
    assert.deepEqual(parseEvents({ Records: [{ eventSource: 'ceph:s3', eventName: 's3:ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: 'x/a b+c%20.png' } } }] }), [{ bucket: 'b', key: 'x/a b+c%20.png', created: true }]);
    assert.throws(() => parseEvents({ Records: 5 }), /Records is not a list/);
    assert.throws(() => parseEvents('text'), /not a JSON object/);
  });
});
