// What happens to objects on a real S3 server (Ceph RGW, started here) that real clients (awscli, s3cmd) write:
// an object matchd may not read (403), the same bytes uploaded again, objects deleted while or after they are
// scored, an overwrite that changes band, multipart uploads (ETag -N), and keys with spaces, unicode, +, %, ../ and
// control characters.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { listFiles, waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { RGW_CREDENTIALS, RGW_OTHER_CREDENTIALS, TestRgw } from '../../fixtures/rgw.ts';
import { BLUE, RED, RULES, S3Daemon } from '../../fixtures/s3-daemon.ts';
import { TestBucket, colourBytes, unfinishedActions } from '../../fixtures/s3.ts';
import { ENDPOINT_SECRET } from '../../fixtures/webhook.ts';

const run = promisify(execFile);
let rgw: TestRgw;
const running: S3Daemon[] = [];
const closers: (() => Promise<void>)[] = [];

async function start(b: TestBucket, opts: Parameters<typeof S3Daemon.start>[1] = {}): Promise<S3Daemon> {
  const d = await S3Daemon.start(b, opts);
  running.push(d);
  return d;
}

/** Debian's awscli v2 against the gateway. */
async function aws(...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/aws', ['--endpoint-url', rgw.endpoint, ...args], { env: rgw.cliEnv() });
  return stdout;
}

/** Debian's s3cmd against the gateway (path-style, plain HTTP). */
async function s3cmd(...args: string[]): Promise<string> {
  const host = `127.0.0.1:${rgw.port}`;
  const { stdout } = await run('/usr/bin/s3cmd', [
    '--config=/dev/null', `--access_key=${RGW_CREDENTIALS.accessKeyId}`, `--secret_key=${RGW_CREDENTIALS.secretAccessKey}`,
    `--host=${host}`, `--host-bucket=${host}`, '--no-ssl', '--region=us-east-1', ...args,
  ]);
  return stdout;
}

async function file(name: string, bytes: Buffer): Promise<string> {
  const f = path.join(tmpDir('matchd-s3-up-'), name);
  fs.writeFileSync(f, bytes);
  return f;
}

/** A callback receiver that holds every request until `open()`. */
async function gate(): Promise<{ url: string; received: () => number; open(): void }> {
  const held: http.ServerResponse[] = [];
  let opened = false;
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      if (opened) res.writeHead(200).end();
      else held.push(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: () => n,
    open: () => {
      opened = true;
      for (const r of held.splice(0)) r.writeHead(200).end();
    },
  };
}

describe('s3 source: objects on a real server', () => {
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    await Promise.all(closers.splice(0).map((c) => c()));
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('an object matchd may not read (403) becomes a failed job with MATCHD_S3_ACCESS after downloadAttempts, and no longer holds the watermark', async () => {
    const b = await TestBucket.create(rgw);
    // Another user may write into the bucket; what it writes (private) the bucket owner cannot read.
    await b.client.send(new PutBucketPolicyCommand({ Bucket: b.name, Policy: JSON.stringify({
      Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ['arn:aws:iam:::user/other'] }, Action: ['s3:PutObject'], Resource: [`arn:aws:s3:::${b.name}/*`] }],
    }) }));
    const png = await colourBytes(RED);
    await b.put('incoming/a-secret.png', png, { client: rgw.client(RGW_OTHER_CREDENTIALS) });
    await b.put('incoming/b-fine.png', png);
    const d = await start(b, { options: { downloadAttempts: 3 }, rules: { colours: { texts: ['a red product'], actions: { default: [{ tag: {} }], error: [{ s3sidecar: { prefix: 'results/' } }] } } } });
    await waitFor(() => d.finished(2), 'both objects journalled, their actions done', 20_000);
    const j = d.byKey();
    assert.equal(j['incoming/b-fine.png']!.outcome, 'adopt');
    const secret = j['incoming/a-secret.png']!;
    assert.equal(secret.state, 'failed');
    assert.equal(secret.result!.error!.code, 'MATCHD_S3_ACCESS');
    assert.match((secret.result!.error as unknown as { message: string }).message, new RegExp(`^s3://${b.name}/incoming/a-secret\\.png could not be downloaded \\(3 attempts\\): AccessDenied \\(HTTP 403\\)`));
    const side = await b.json('results/a-secret.png.matchd.json');
    assert.equal(side.error.code, 'MATCHD_S3_ACCESS', "the error actions ran (its result written although the object can't be read)");
    await d.polls(2);
    const lm = (await b.listed('incoming/a-secret.png'))!.lastModified;
    assert.ok(Number(d.daemon.journalForTools.pluginGet('s3in', 'cursor')) >= lm, 'the watermark moved past it');
    assert.equal(d.health()?.state, 'ok');
    assert.equal(d.jobs().length, 2, 'not journalled twice');
  });

  test('the same bytes uploaded again (S3 dropped the tags; a move had taken the object away) are journalled again and their actions run', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b);
    const png = await file('item.png', await colourBytes(RED));
    await aws('s3', 'cp', png, `s3://${b.name}/incoming/item.png`);
    await waitFor(() => d.finished(1), 'the first upload scored, tagged, copied');
    assert.equal((await b.tags('incoming/item.png'))['matchd-band'], 'adopt');
    await d.polls(3); // RGW moved LastModified when the tags were put: that is no new upload
    assert.equal(d.jobs().length, 1);

    await aws('s3', 'cp', png, `s3://${b.name}/incoming/item.png`); // the same bytes: same ETag, tags gone
    assert.deepEqual(await b.tags('incoming/item.png'), {}, 'S3 dropped the tags');
    await waitFor(() => d.finished(2), 'the re-upload journalled and its actions done');
    const [first, again] = d.jobs();
    assert.equal(again!.origin.etag, first!.origin.etag);
    assert.match(again!.dedupeKey, new RegExp(`^s3:${b.name}/incoming/item\\.png@${first!.origin.etag}#\\d+$`));
    assert.equal(again!.origin.reupload, true);
    assert.equal((await b.tags('incoming/item.png'))['matchd-band'], 'adopt', 'tagged again');
    await d.polls(3);
    assert.equal(d.jobs().length, 2, 'and only once');

    // A move (deleteSource): the same bytes uploaded again are moved again.
    const m = await TestBucket.create(rgw);
    const mv = await start(m, { rules: { colours: { texts: ['a red product'], actions: { default: [{ s3copy: { prefix: 'sorted/{band}/', deleteSource: true } }] } } } });
    await aws('s3', 'cp', png, `s3://${m.name}/incoming/item.png`);
    await waitFor(() => mv.finished(1), 'moved');
    assert.deepEqual(await m.keys(), ['sorted/adopt/item.png']);
    await aws('s3', 'cp', png, `s3://${m.name}/incoming/item.png`);
    await waitFor(() => mv.finished(2), 'moved again');
    assert.deepEqual(await m.keys(), ['sorted/adopt/item.png']);
  });

  test('objects deleted as soon as they are journalled (scored from the download) or after scoring, before their actions: tag, s3copy and s3sidecar are done with a note, none dead, no orphan output', async () => {
    const b = await TestBucket.create(rgw);
    const g = await gate();
    const rules = { colours: { texts: ['a red product'], actions: { default: [{ callback: { endpoint: 'crm' } }, { tag: {} }, { s3copy: { prefix: 'sorted/{band}/' } }, { s3sidecar: { prefix: 'results/' } }] } } };
    // The callback comes first and is held: the job's S3 actions wait behind it until the objects are gone. (Whether
    // the first object is gone before or after its scoring depends on the batcher, which does not wait for a partial
    // batch when nothing else is decoding; it is scored from its download either way.)
    const d = await start(b, { rules, callbacks: { endpoints: { crm: { url: g.url, secret: ENDPOINT_SECRET } } } });
    await b.put('incoming/during.png', await colourBytes(RED));
    await waitFor(() => d.jobs().length === 1, 'journalled', 10_000, 10);
    await b.delete('incoming/during.png');
    await b.put('incoming/after.png', await colourBytes(RED));
    await waitFor(() => d.jobs().length === 2 && d.jobs().every((j) => j.state === 'done') && g.received() >= 2, 'both scored, their callbacks held');
    await b.delete('incoming/after.png');
    g.open();
    await waitFor(() => d.finished(2), 'every action finished', 20_000);
    const s3 = d.outbox().filter((a) => ['tag', 's3copy', 's3sidecar'].includes(a.kind));
    assert.equal(s3.length, 6);
    for (const a of s3) {
      assert.equal(a.state, 'done', `${a.kind} of job ${a.jobId} done, not dead`);
      assert.match(String(a.payload.note), /is gone \(deleted after it was scored\): not (tagged|copied|written)/);
    }
    assert.deepEqual(unfinishedActions(d.journal), []);
    assert.deepEqual(await b.keys(), [], 'no copy, no sidecar of a deleted object');
  });

  test('an overwrite that changes band: the copy and the sidecar made for the old version leave the old band', async () => {
    const b = await TestBucket.create(rgw);
    const rules = { colours: { texts: ['a red product'], actions: { default: [{ tag: {} }, { s3copy: { prefix: 'sorted/{band}/' } }, { s3sidecar: { prefix: 'results/{band}/' } }] } } };
    const d = await start(b, { rules });
    await b.put('incoming/x.png', await colourBytes(RED));
    await b.put('incoming/other.png', await colourBytes(RED));
    await waitFor(() => d.finished(2), 'the first version in adopt');
    assert.deepEqual(await b.keys(), [
      'incoming/other.png', 'incoming/x.png', 'results/adopt/other.png.matchd.json', 'results/adopt/x.png.matchd.json', 'sorted/adopt/other.png', 'sorted/adopt/x.png',
    ]);
    const blue = await b.put('incoming/x.png', await colourBytes(BLUE));
    await waitFor(() => d.finished(3), 'the new version in reject');
    assert.deepEqual(await b.keys(), [
      'incoming/other.png', 'incoming/x.png', 'results/adopt/other.png.matchd.json', 'results/reject/x.png.matchd.json', 'sorted/adopt/other.png', 'sorted/reject/x.png',
    ]);
    assert.equal((await b.head('sorted/reject/x.png'))?.etag, blue);
    assert.equal((await b.json('results/reject/x.png.matchd.json')).origin.etag, blue);
  });

  test('a multipart upload (ETag -N, kept by RGW through copies) is scored once, copied and verified', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b, { rules: RULES });
    // A 6.5 MB PNG of noise around red, uploaded by awscli in 5 MB parts.
    const { default: sharp } = await import('sharp');
    const w = 1500;
    const raw = Buffer.alloc(w * w * 3);
    for (let i = 0; i < raw.length; i += 3) {
      raw[i] = 200 + ((i * 7919) % 56);
      raw[i + 1] = (i * 104729) % 40;
      raw[i + 2] = (i * 1299709) % 40;
    }
    const png = await file('big.png', await sharp(raw, { raw: { width: w, height: w, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer());
    const cfg = path.join(path.dirname(png), 'aws-config');
    fs.writeFileSync(cfg, '[default]\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n');
    await run('/usr/bin/aws', ['--endpoint-url', rgw.endpoint, 's3', 'cp', png, `s3://${b.name}/incoming/big.png`], { env: { ...rgw.cliEnv(), AWS_CONFIG_FILE: cfg } });
    const etag = (await b.head('incoming/big.png'))!.etag;
    assert.match(etag, /^[0-9a-f]{32}-2$/, 'a two-part upload');
    await waitFor(() => d.finished(1), 'scored with its actions', 30_000);
    const job = d.jobs()[0]!;
    assert.equal(job.dedupeKey, `s3:${b.name}/incoming/big.png@${etag}`);
    assert.equal(job.outcome, 'adopt');
    assert.equal((await b.head('sorted/adopt/big.png'))?.etag, etag);
    assert.equal((await b.tags('incoming/big.png'))['matchd-band'], 'adopt');
    await d.polls(3);
    assert.equal(d.jobs().length, 1);
  });

  test('keys with spaces, unicode, +, %, ../ and control characters (written by awscli, s3cmd and the SDK): each scored once, tagged, copied, with its sidecar', async () => {
    const b = await TestBucket.create(rgw);
    const d = await start(b);
    const red = await colourBytes(RED);
    const png = await file('k.png', red);
    const keys = {
      awscli: ['incoming/with space.png', 'incoming/ünïcødé 日本.png', 'incoming/plus+sign.png'],
      s3cmd: ['incoming/per%cent%20.png', 'incoming/s3cmd spaced+plus.png'],
      sdk: ['incoming/../escape.png', 'incoming/ctl\u0001\u001f\u007f.png', 'incoming/tab\tnew\nline.png'],
    };
    for (const k of keys.awscli) await aws('s3', 'cp', png, `s3://${b.name}/${k}`);
    for (const k of keys.s3cmd) await s3cmd('put', png, `s3://${b.name}/${k}`);
    for (const k of keys.sdk) await b.put(k, red);
    const all = [...keys.awscli, ...keys.s3cmd, ...keys.sdk];
    assert.deepEqual(await b.keys('incoming/'), [...all].sort(), 'the server kept every key as written');
    await waitFor(() => d.finished(all.length), `${all.length} objects scored with their actions`, 30_000);
    await d.polls(3);
    const j = d.byKey();
    assert.deepEqual(Object.keys(j).sort(), [...all].sort(), 'each key exactly once');
    for (const k of all) {
      assert.equal(j[k]!.outcome, 'adopt', k);
      assert.equal((await b.tags(k))['matchd-band'], 'adopt', `${k} tagged`);
      const rest = k.slice('incoming/'.length);
      assert.ok(await b.exists(`sorted/adopt/${rest}`), `${k} copied`);
      const side = await b.json(`results/${rest}.matchd.json`);
      assert.equal(side.origin.key, k);
      assert.equal(side.originalPath, `s3://${b.name}/${k}`);
    }
    // Keys never become paths: every download stayed in the spool (and is gone), nothing landed beside it.
    assert.deepEqual(d.spool(), []);
    assert.deepEqual(listFiles(d.ws.root).filter((f) => /escape|ctl|tab/.test(f)), []);
  });
});
