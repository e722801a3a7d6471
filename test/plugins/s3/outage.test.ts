// The S3 store down for longer than any attempt budget (Ceph RGW killed; on the daemon's clock), a store that hangs
// (RGW SIGSTOPped), and actions that waited past actionMaxAgeMs re-queued with `matchd replay --dead --kind tag`.
// The actions are held back behind a callback to a receiver that answers only once the gateway is dead, so every
// S3 action starts against a store that is down.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { replayCommand } from '../../../src/cli/replay.ts';
import { waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { TestRgw } from '../../fixtures/rgw.ts';
import { RED, S3Daemon } from '../../fixtures/s3-daemon.ts';
import { TestBucket, colourBytes } from '../../fixtures/s3.ts';
import { ENDPOINT_SECRET, fakeClock } from '../../fixtures/webhook.ts';

let rgw: TestRgw;
const running: S3Daemon[] = [];
const gates: Gate[] = [];

/** A callback receiver that holds every request until `open()`, then answers 200 (and at once from then on). */
interface Gate {
  url: string;
  received: number;
  open(): void;
  close(): Promise<void>;
}

async function gate(): Promise<Gate> {
  const held: http.ServerResponse[] = [];
  let opened = false;
  const g = { received: 0 } as Gate;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      g.received++;
      if (opened) res.writeHead(200).end('ok');
      else held.push(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  g.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  g.open = () => {
    opened = true;
    for (const res of held.splice(0)) res.writeHead(200).end('ok');
  };
  g.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  gates.push(g);
  return g;
}

/** A callback first (held by the gate), then the S3 actions. */
const rules = {
  colours: { texts: ['a red product'], actions: { default: [{ callback: { endpoint: 'crm' } }, { tag: {} }, { s3sidecar: { prefix: 'results/' } }] } },
};

async function setup(n: number, options: Record<string, unknown> = {}) {
  const clock = fakeClock();
  const g = await gate();
  const b = await TestBucket.create(rgw);
  const png = await colourBytes(RED);
  for (let i = 0; i < n; i++) await b.put(`incoming/${String(i).padStart(2, '0')}.png`, png);
  // One listing at start-up (the next an hour later): while the store is down only the actions notice it.
  const d = await S3Daemon.start(b, {
    options: { pollIntervalMs: 3_600_000, backoff: { initialMs: 1000, maxMs: 60_000 }, ...options }, rules, now: clock.now,
    callbacks: { endpoints: { crm: { url: g.url, secret: ENDPOINT_SECRET } } },
  });
  running.push(d);
  const kinds = (kind: string) => d.outbox().filter((a) => a.kind === kind);
  await waitFor(() => d.jobs().length === n && d.jobs().every((j) => j.state === 'done') && g.received > 0, 'every object scored, the first callbacks held', 30_000);
  await rgw.killGateway();
  g.open();
  await waitFor(() => kinds('callback').every((a) => a.state === 'done') && kinds('tag').length === n && kinds('tag').every((a) => a.attempts >= 1), 'every callback done, every tag tried once (refused)', 30_000);
  return { clock, g, b, d, kinds };
}

describe('s3 source: the store down', () => {
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    await Promise.all(gates.splice(0).map((g) => g.close()));
    await rgw.startGateway().catch(() => {}); // for the next test, if one left it dead
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('down for 25 minutes (at least 25 refused attempts each): no S3 action dead, health shows the store down, all done once it is back', { timeout: 120_000 }, async () => {
    const { clock, b, d, kinds } = await setup(20);
    await waitFor(() => d.health()?.state === 'down', 'the source shows the store down although no listing ran', 10_000);
    assert.match(d.health()!.detail!, /has not answered since .* failed request\(s\) in a row, the last: ECONNREFUSED/);
    assert.equal(d.daemon.health().status, 'degraded');
    for (let round = 2; round <= 25; round++) {
      clock.advance(61_000); // past the longest backoff step (backoff.maxMs 60 s)
      d.daemon.kickActions();
      await waitFor(() => kinds('tag').every((a) => a.attempts >= round), `attempt ${round} of every tag`, 20_000, 20);
    }
    assert.deepEqual([...new Set(kinds('tag').map((a) => a.state))], ['pending'], 'no tag action dead-lettered while the store was down');
    assert.equal((d.daemon.health().journal as { outboxDead: number }).outboxDead, 0);
    assert.equal(d.health()?.state, 'down');

    await rgw.startGateway();
    clock.advance(61_000);
    d.daemon.kickActions();
    await waitFor(() => d.finished(20), 'every action done once the store is back', 30_000);
    for (const j of d.jobs()) assert.equal((await b.tags(String(j.origin.key)))['matchd-band'], 'adopt', `${j.origin.key} tagged`);
    assert.equal((await b.keys('results/')).length, 20, 'every sidecar written');
    await waitFor(() => d.health()?.state === 'ok', 'healthy again');
  });

  test('actions older than actionMaxAgeMs are dead; `matchd replay --dead --kind tag` re-queues exactly those', { timeout: 120_000 }, async () => {
    const { clock, g, b, d, kinds } = await setup(6, { actionMaxAgeMs: 600_000 });
    const callbacksBefore = g.received;
    for (let i = 0; i < 11; i++) {
      clock.advance(61_000);
      d.daemon.kickActions();
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(() => kinds('tag').every((a) => a.state === 'dead'), 'every tag dead after 10 minutes', 20_000);
    assert.match(kinds('tag')[0]!.lastError!, /the store has failed this action for 1[01] min \(\d+ attempts, actionMaxAgeMs 10 min\)/);
    assert.equal((d.daemon.health().journal as { outboxDead: number }).outboxDead, 6);
    // The runner goes on with a job's next action after a dead one: the sidecars started failing later, so they wait.
    assert.ok(kinds('s3sidecar').every((a) => a.state === 'pending'), 'the sidecars, younger, still wait');

    await rgw.startGateway();
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    try {
      assert.equal(await replayCommand(['--dead', '--kind', 'tag', '--config', d.ws.configFile]), 0);
    } finally {
      process.stdout.write = write;
    }
    assert.match(out.join(''), /^re-queued 6 dead tags in /);
    clock.advance(61_000);
    d.daemon.kickActions();
    await waitFor(() => d.finished(6), 'the re-queued tags, then the sidecars, done', 30_000);
    for (const j of d.jobs()) assert.equal((await b.tags(String(j.origin.key)))['matchd-band'], 'adopt');
    assert.equal(g.received, callbacksBefore, 'callbacks (done, another kind) were not sent again');
  });

  test('a store that hangs (SIGSTOP): health says so within stallMs, long before the request times out; ok again once it answers', { timeout: 60_000 }, async () => {
    const b = await TestBucket.create(rgw);
    const d = await S3Daemon.start(b, { options: { pollIntervalMs: 200 } }); // stallMs 10 s, requestTimeoutMs 30 s: the defaults
    running.push(d);
    await d.polls(1);
    assert.equal(d.health()?.state, 'ok');
    const frozenAt = Date.now();
    rgw.freeze();
    try {
      await waitFor(() => d.health()?.state !== 'ok', 'the source no longer ok', 20_000, 100);
      const after = Date.now() - frozenAt;
      assert.equal(d.health()?.state, 'degraded');
      assert.match(d.health()!.detail!, /a request to the store \(http:\/\/127\.0\.0\.1:\d+\) has had no answer for 1\d s \(it times out after requestTimeoutMs, 30000 ms\)/);
      assert.ok(after < 20_000, `noticed after ${after} ms`);
    } finally {
      rgw.thaw();
    }
    await waitFor(() => d.health()?.state === 'ok', 'ok once the store answers', 20_000);
  });
});
