// Webhook source end to end with a real daemon (demo model) and real receivers on 127.0.0.1: intake → job →
// signed callback, the Svix retry schedule on a fake clock, Retry-After, 410, restart with the receiver down,
// dead-letter and replay.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { repoRoot } from '../../fixtures/packages.ts';
import {
  CALLBACK_SECRET, ENDPOINT_SECRET, type Receiver, fakeClock, freePort, getJob, postJob, receiver, red, startDaemon, stopDaemons, webhookWorkspace,
} from '../../fixtures/webhook.ts';
import type { Daemon } from '../../../src/core/daemon.ts';

const receivers: Receiver[] = [];
async function recv(script?: Receiver['script'], port?: number): Promise<Receiver> {
  const r = await receiver(script, port);
  receivers.push(r);
  return r;
}

const exec = promisify(execFile);
const matchd = (args: string[]) => exec(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { cwd: repoRoot });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The job's callback action, or an empty record while the job has no result (and so no actions) yet. */
const callbackOf = (d: Daemon, jobId: string) =>
  d.journalForTools.actionsOf(Number(jobId)).find((a) => a.kind === 'callback') ?? { attempts: 0, state: 'none', lastError: null as string | null };

async function submit(base: string, callbackUrl: string): Promise<string> {
  const r = await postJob(base, { image: red().toString('base64'), callbackUrl });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  return r.json.jobId as string;
}

describe('webhook: callbacks', () => {
  afterEach(async () => {
    await stopDaemons();
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(cleanupTmpDirs);

  test('a job posted with a callbackUrl is delivered once, signed per Standard Webhooks, and its status is readable', async () => {
    const rx = await recv();
    const { base } = await startDaemon(webhookWorkspace());
    const r = await postJob(base, { image: red().toString('base64'), callbackUrl: rx.url });
    assert.equal(r.status, 202);
    assert.match(r.json.jobId, /^\d+$/);
    assert.equal(r.json.statusUrl, `${base}/v1/jobs/${r.json.jobId}`);
    assert.equal(r.headers.get('location'), `/v1/jobs/${r.json.jobId}`);

    await waitFor(() => rx.received.length === 1, 'the callback');
    const msg = rx.received[0]!;
    assert.equal(msg.headers['content-type'], 'application/json');
    assert.match(String(msg.headers['webhook-id']), /^msg_/);
    // The receiver's check: the package's own verifier, over the raw body.
    const verified = new Webhook(CALLBACK_SECRET).verify(msg.body, msg.headers as Record<string, string>) as any;
    assert.equal(verified.type, 'match.completed');
    assert.ok(!Number.isNaN(Date.parse(verified.timestamp)));
    assert.equal(verified.data.jobId, r.json.jobId);
    assert.equal(verified.data.rule, 'colours');
    assert.equal(verified.data.source, 'api');
    assert.equal(verified.data.outcome, 'adopt');
    assert.deepEqual(Object.keys(verified.data.results[0]).sort(), ['band', 'cosine', 'score', 'text']);
    assert.equal(verified.data.results[0].text, 'a red product');
    assert.throws(() => new Webhook(ENDPOINT_SECRET).verify(msg.body, msg.headers as Record<string, string>), /No matching signature/);

    const status = await getJob(base, r.json.jobId);
    assert.equal(status.status, 200);
    assert.equal(status.json.state, 'done');
    assert.equal(status.json.outcome, 'adopt');
    assert.equal(status.json.result.results[0].band, 'adopt');
    await sleep(300);
    assert.equal(rx.received.length, 1, 'delivered exactly once');
  });

  test('?wait returns the result inline when it is ready in time', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const r = await postJob(base, { image: red().toString('base64') }, {}, '?wait=10s');
    assert.equal(r.status, 200);
    assert.equal(r.json.state, 'done');
    assert.equal(r.json.result.outcome, 'adopt');
    assert.equal(r.json.result.results[0].text, 'a red product');
  });

  test('500 twice then 200: three attempts on the schedule (now, ~5 s, ~5 min), one webhook-id, delivered once', async () => {
    const clock = fakeClock();
    const rx = await recv([{ status: 500 }, { status: 500 }, { status: 200 }]);
    const { daemon, base } = await startDaemon(webhookWorkspace(), clock);
    const jobId = await submit(base, rx.url);
    await waitFor(() => rx.received.length === 1 && callbackOf(daemon, jobId).attempts === 1, 'the first attempt, recorded');
    assert.match(callbackOf(daemon, jobId).lastError!, /answered 500/);

    clock.advance(4_000); // before the earliest jittered 5 s (4.5 s)
    daemon.kickActions();
    await sleep(300);
    assert.equal(rx.received.length, 1, 'no retry before ~5 s');
    clock.advance(1_600); // past the latest (5.5 s)
    daemon.kickActions();
    await waitFor(() => rx.received.length === 2 && callbackOf(daemon, jobId).attempts === 2, 'the second attempt');

    clock.advance(240_000); // 4 min: before the earliest jittered 5 min (4.5 min)
    daemon.kickActions();
    await sleep(300);
    assert.equal(rx.received.length, 2, 'no retry before ~5 min');
    clock.advance(90_000);
    daemon.kickActions();
    await waitFor(() => callbackOf(daemon, jobId).state === 'done', 'the third attempt succeeding');

    assert.equal(rx.received.length, 3);
    const ids = new Set(rx.received.map((m) => m.headers['webhook-id']));
    assert.equal(ids.size, 1, 'the same webhook-id on every attempt');
    const bodies = new Set(rx.received.map((m) => m.body));
    assert.equal(bodies.size, 1, 'the same body on every attempt');
    for (const m of rx.received) new Webhook(CALLBACK_SECRET).verify(m.body, m.headers as Record<string, string>);
    assert.equal(rx.received.filter((m) => m.status === 200).length, 1);
  });

  test('429 with Retry-After is honoured instead of the schedule', async () => {
    const clock = fakeClock();
    const rx = await recv([{ status: 429, headers: { 'retry-after': '120' } }, { status: 200 }]);
    const { daemon, base } = await startDaemon(webhookWorkspace(), clock);
    const jobId = await submit(base, rx.url);
    await waitFor(() => callbackOf(daemon, jobId).attempts === 1, 'the throttled attempt');
    clock.advance(60_000); // well past the schedule's 5 s, before Retry-After
    daemon.kickActions();
    await sleep(300);
    assert.equal(rx.received.length, 1, 'waits for Retry-After');
    clock.advance(61_000);
    daemon.kickActions();
    await waitFor(() => callbackOf(daemon, jobId).state === 'done', 'delivered after Retry-After');
    assert.equal(rx.received.length, 2);
  });

  test('503 with an HTTP-date Retry-After is honoured too', async () => {
    const clock = fakeClock();
    const rx = await recv([{ status: 503, headers: { 'retry-after': new Date(Date.now() + 30_000).toUTCString() } }, { status: 204 }]);
    const { daemon, base } = await startDaemon(webhookWorkspace(), clock);
    const jobId = await submit(base, rx.url);
    await waitFor(() => callbackOf(daemon, jobId).attempts === 1, 'the first attempt');
    clock.advance(10_000);
    daemon.kickActions();
    await sleep(300);
    assert.equal(rx.received.length, 1);
    clock.advance(25_000);
    daemon.kickActions();
    await waitFor(() => callbackOf(daemon, jobId).state === 'done', 'delivered');
  });

  test('a 3xx is a failure (not followed)', async () => {
    const clock = fakeClock();
    const rx = await recv([{ status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } }, { status: 200 }]);
    const { daemon, base } = await startDaemon(webhookWorkspace(), clock);
    const jobId = await submit(base, rx.url);
    await waitFor(() => callbackOf(daemon, jobId).attempts === 1, 'the first attempt');
    assert.equal(callbackOf(daemon, jobId).state, 'pending');
    assert.match(callbackOf(daemon, jobId).lastError!, /answered 302/);
  });

  test('410 disables the endpoint: dead-lettered, and later callbacks to it are not sent', async () => {
    const rx = await recv([{ status: 410 }]);
    const { daemon, base } = await startDaemon(webhookWorkspace());
    const first = await submit(base, rx.url);
    await waitFor(() => callbackOf(daemon, first).state === 'dead', 'the 410 dead-lettered');
    assert.match(callbackOf(daemon, first).lastError!, /410 Gone; endpoint disabled/);
    const second = await submit(base, rx.url);
    await waitFor(() => callbackOf(daemon, second).state === 'dead', 'the next one dead-lettered without sending');
    assert.match(callbackOf(daemon, second).lastError!, /is disabled/);
    assert.equal(rx.received.length, 1);
  });

  test('rule-level callback to a configured endpoint; a non-image upload arrives as match.failed with MATCHD_IMAGE_UNSUPPORTED', async () => {
    const rx = await recv();
    const ws = webhookWorkspace({
      callbacks: { endpoints: { hooks: { url: rx.url, secret: ENDPOINT_SECRET } } },
      actions: { default: [{ callback: { endpoint: 'hooks' } }] },
    });
    const { base } = await startDaemon(ws);
    const form = new FormData();
    form.set('image', new Blob(['this is text, not an image']), 'notes.jpg');
    const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { authorization: 'Bearer test-token-0123456789abcdef' }, body: form });
    assert.equal(res.status, 202);
    const { jobId } = (await res.json()) as { jobId: string };
    await waitFor(() => rx.received.length === 1, 'the failure callback');
    const m = rx.received[0]!;
    const body = new Webhook(ENDPOINT_SECRET).verify(m.body, m.headers as Record<string, string>) as any;
    assert.equal(body.type, 'match.failed');
    assert.equal(body.data.jobId, jobId);
    assert.equal(body.data.outcome, 'error');
    assert.equal(body.data.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(typeof body.data.error.message, 'string');
    const status = await getJob(base, jobId);
    assert.equal(status.json.state, 'failed');
    assert.equal(status.json.result.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
  });

  test('receiver down while the daemon restarts: delivered after the restart, nothing lost', async () => {
    const clock = fakeClock();
    const port = await freePort();
    const ws = webhookWorkspace();
    const first = await startDaemon(ws, clock);
    const jobId = await submit(first.base, `http://127.0.0.1:${port}/hook`);
    await waitFor(() => callbackOf(first.daemon, jobId).attempts === 1, 'a failed attempt (connection refused)');
    assert.equal(callbackOf(first.daemon, jobId).state, 'pending');
    await stopDaemons();

    const rx = await recv([{ status: 200 }], port);
    const second = await startDaemon(ws, clock);
    clock.advance(6_000);
    second.daemon.kickActions();
    await waitFor(() => rx.received.length === 1 && callbackOf(second.daemon, jobId).state === 'done', 'delivery after the restart');
    const m = rx.received[0]!;
    const body = new Webhook(CALLBACK_SECRET).verify(m.body, m.headers as Record<string, string>) as any;
    assert.equal(body.data.jobId, jobId);
    assert.equal(second.daemon.journalForTools.counts().outboxPending, 0);
  });

  test('a callback already due when the daemon starts is delivered (not dead-lettered for want of a handler)', async () => {
    const clock = fakeClock();
    const port = await freePort();
    // A folder source first: its start-up (watcher, walk) yields to the event loop before the webhook source exists.
    const ws = webhookWorkspace({ sourcesBefore: [{ type: 'folder', name: 'inbox', rule: 'colours', options: { paths: ['inbox'] } }] });
    const first = await startDaemon(ws, clock);
    const jobId = await submit(first.base, `http://127.0.0.1:${port}/hook`);
    await waitFor(() => callbackOf(first.daemon, jobId).attempts === 1, 'a failed attempt');
    await stopDaemons();
    const rx = await recv([{ status: 200 }], port);
    clock.advance(6_000); // due at start-up
    const second = await startDaemon(ws, clock);
    await waitFor(() => callbackOf(second.daemon, jobId).state !== 'pending', 'the due callback handled');
    assert.equal(callbackOf(second.daemon, jobId).state, 'done', callbackOf(second.daemon, jobId).lastError ?? '');
    assert.equal(rx.received.length, 1);
  });

  test('after the schedule is exhausted the callback is dead-lettered; replay re-sends with the same webhook-id and a fresh signature', async () => {
    const clock = fakeClock();
    const rx = await recv([{ status: 500 }]);
    const ws = webhookWorkspace();
    const { daemon, base } = await startDaemon(ws, clock);
    const jobId = await submit(base, rx.url);
    for (let n = 1; n <= 8; n++) {
      await waitFor(() => callbackOf(daemon, jobId).attempts === n, `attempt ${n}`);
      clock.advance(11 * 3600_000); // past any step of the schedule (10 h + 10 %)
      daemon.kickActions();
    }
    await waitFor(() => callbackOf(daemon, jobId).state === 'dead', 'dead-lettered');
    assert.equal(rx.received.length, 8);
    assert.match(callbackOf(daemon, jobId).lastError!, /failed 8 times; giving up/);

    rx.script = [{ status: 200 }];
    const before = rx.received.at(-1)!;
    await sleep(1000); // a new second: a fresh timestamp, so a fresh signature
    // `matchd replay <id>` in another process, against the running daemon's journal.
    const cli = await matchd(['replay', jobId, '--config', ws.configFile]);
    assert.match(cli.stdout, /^re-queued 1 callback of job \d+/);
    await waitFor(() => callbackOf(daemon, jobId).state === 'done', 'the replayed delivery (picked up by the running daemon)');
    assert.equal(rx.received.length, 9);
    const again = rx.received.at(-1)!;
    assert.equal(again.headers['webhook-id'], before.headers['webhook-id']);
    assert.equal(again.body, before.body);
    assert.notEqual(again.headers['webhook-signature'], before.headers['webhook-signature']);
    new Webhook(CALLBACK_SECRET).verify(again.body, again.headers as Record<string, string>);

    // --since re-sends delivered ones too (a receiver that lost its data asks for them again).
    const since = await matchd(['replay', '--since', '1d', '--config', ws.configFile]);
    assert.match(since.stdout, /^re-queued 1 callback since /);
    await waitFor(() => rx.received.length === 10, 'the --since re-send');
    assert.equal(rx.received[9]!.headers['webhook-id'], before.headers['webhook-id']);
    const usage = await matchd(['replay', '--config', ws.configFile]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((usage as { code: number }).code, 2);
  });
});
