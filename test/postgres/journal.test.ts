// The journal on a real PostgreSQL server: the SQLite journal's semantics (dedupe, leases, outbox order, retries,
// plugin state, pruning, replay, review decisions), and what several nodes add: SKIP LOCKED leases and claims, dead
// nodes detected by their heartbeat, node names, connection loss.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PgJournal, type PgJournalOptions } from '../../src/core/journal-pg/journal.ts';
import { decide, labelOf, listJobs } from '../../src/core/journal-review.ts';
import { startPostgres, type PgServer } from '../fixtures/postgres.ts';

const job = (k: string) => ({ dedupeKey: k, source: 's', rule: 'r', imagePath: `/in/${k}.jpg`, meta: { k } });

let server: PgServer;
let dbs = 0;
const open: PgJournal[] = [];

async function freshDb(): Promise<string> {
  return server.createDatabase(`j${++dbs}`);
}

function journal(url: string, node = 'a', more: Partial<PgJournalOptions> = {}): PgJournal {
  const j = new PgJournal({ url, node: { name: node, role: 'all' }, leaseMs: 60_000, nodeTimeoutMs: 3_000, ...more });
  open.push(j);
  return j;
}

describe('postgres: journal', () => {
  before(async () => {
    server = await startPostgres();
  });
  after(() => {
    for (const j of open) j.close();
    server?.destroy();
  });

  test('a dedupe key is journalled once; leases take the oldest; counts', async () => {
    const j = journal(await freshDb());
    const a = j.enqueue(job('a'));
    assert.deepEqual(j.enqueue(job('a')), { jobId: a.jobId, duplicate: true });
    for (const k of ['b', 'c']) j.enqueue(job(k));
    assert.ok(j.isKnown('a') && !j.isKnown('z'));
    const leased = j.lease(2, 60_000);
    assert.deepEqual(leased.map((x) => x.dedupeKey), ['a', 'b']);
    assert.ok(leased.every((x) => x.state === 'running' && x.attempts === 1));
    assert.deepEqual(leased[0]!.meta, { k: 'a' });
    assert.deepEqual(j.counts(), { queued: 1, running: 2, done: 0, failed: 0, outboxPending: 0, outboxDead: 0 });
    assert.equal(j.queuedCount(), 1);
  });

  test('complete writes the result and its actions at once; actions in order per job; the first result wins', async () => {
    const j = journal(await freshDb());
    const { jobId: a } = j.enqueue(job('a'));
    const { jobId: b } = j.enqueue(job('b'));
    j.lease(2, 60_000);
    j.complete(a, 'adopt', { x: 1 }, [{ kind: 'move', payload: { n: 1 } }, { kind: 'sidecar', payload: { n: 2 } }]);
    j.complete(b, 'error', { e: 1 }, [{ kind: 'move', payload: { n: 3 } }], true);
    assert.equal(j.get(a)!.state, 'done');
    assert.equal(j.get(b)!.state, 'failed');
    let due = j.dueActions(10);
    assert.deepEqual(due.map((x) => [x.jobId, x.seq]), [[a, 0], [b, 0]], 'only the first action of each job');
    j.actionDone(due[0]!, '/out/a.jpg');
    assert.equal(j.get(a)!.location, '/out/a.jpg');
    due = j.dueActions(10, { ids: [due[1]!.id] });
    assert.deepEqual(due.map((x) => [x.jobId, x.seq]), [[a, 1]], 'ids running here are left out');
    j.complete(a, 'reject', { x: 2 }, [{ kind: 'move', payload: {} }]);
    assert.equal(j.get(a)!.outcome, 'adopt');
    assert.equal(j.counts().outboxPending, 2);
  });

  test('a failed action is retried at its time or dead; payload decisions persist; replay makes it due again', async () => {
    let t = 1_000_000;
    const j = journal(await freshDb(), 'a', { now: () => t });
    const { jobId } = j.enqueue(job('a'));
    j.lease(1, 1000);
    j.complete(jobId, 'adopt', {}, [{ kind: 'move', payload: { src: 'x' } }]);
    const [a] = j.dueActions(1);
    j.updatePayload(a!.id, { src: 'x', dest: 'y' });
    j.actionFailed(a!, 'EACCES', t + 5000);
    assert.equal(j.dueActions(1).length, 0, 'not due yet');
    assert.equal(j.nextActionAt(), t + 5000);
    t += 5000;
    const [again] = j.dueActions(1);
    assert.deepEqual(again!.payload, { src: 'x', dest: 'y' });
    assert.equal(again!.attempts, 1);
    j.actionFailed(again!, 'gone', null);
    assert.equal(j.counts().outboxDead, 1);
    assert.equal(j.nextActionAt(), null);
    assert.equal(j.replay('move', { jobId }), 1);
    assert.deepEqual(j.actionsOf(jobId).map((x) => [x.state, x.attempts]), [['pending', 0]]);
  });

  test('plugin state; prune forgets old finished jobs only', async () => {
    let t = Date.now();
    const j = journal(await freshDb(), 'a', { now: () => t });
    j.pluginSet('s3', 'cursor', { key: 'a/b' });
    j.pluginSet('s3', 'cb:x', 1);
    assert.deepEqual(j.pluginGet('s3', 'cursor'), { key: 'a/b' });
    assert.deepEqual(j.pluginEntries('cb:').map((e) => e.key), ['cb:x']);
    assert.equal(j.pluginDelete('s3', 'cb:x'), true);
    const { jobId } = j.enqueue(job('old'));
    j.lease(1, 1000);
    j.complete(jobId, 'adopt', {}, []);
    j.enqueue(job('queued'));
    t += 31 * 86_400_000;
    assert.equal(j.prune(30), 1);
    assert.ok(!j.isKnown('old') && j.isKnown('queued'));
  });

  test('lease skips rows another transaction holds, without waiting (SKIP LOCKED)', async () => {
    const url = await freshDb();
    const j = journal(url);
    for (const k of ['a', 'b', 'c', 'd']) j.enqueue(job(k));
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT id FROM jobs WHERE dedupe_key IN ('a', 'b') FOR UPDATE`);
      const t0 = Date.now();
      const leased = j.lease(10, 60_000);
      assert.ok(Date.now() - t0 < 2000, 'did not wait for the locked rows');
      assert.deepEqual(leased.map((x) => x.dedupeKey), ['c', 'd']);
      await other.query('ROLLBACK');
      assert.deepEqual(j.lease(10, 60_000).map((x) => x.dedupeKey), ['a', 'b']);
    } finally {
      await other.end();
    }
  });

  test('two nodes: disjoint leases and claims; a silent node\'s leases and claims go to the other', async () => {
    const url = await freshDb();
    const a = journal(url, 'a');
    const b = journal(url, 'b');
    for (let i = 0; i < 6; i++) a.enqueue(job(`k${i}`));
    const la = a.lease(3, 60_000);
    const lb = b.lease(10, 60_000);
    assert.deepEqual([...la, ...lb].map((x) => x.dedupeKey).sort(), ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    assert.equal(b.recover(3).requeued, 0, 'a is alive: its leases stand');
    a.complete(la[0]!.id, 'adopt', {}, [{ kind: 'log', payload: {} }]);
    a.complete(la[1]!.id, 'adopt', {}, [{ kind: 'log', payload: {} }]);
    const [ca] = a.dueActions(1);
    assert.ok(ca, 'a claims one action');
    const claimedByB = b.dueActions(10);
    assert.equal(claimedByB.length, 1, 'b gets only the unclaimed one');
    assert.notEqual(claimedByB[0]!.id, ca.id);
    assert.equal(b.dueActions(10, { ids: [claimedByB[0]!.id] }).length, 0, "a's claim holds while a is alive");
    // a stops heartbeating: after nodeTimeoutMs its lease and its claim are free
    await server.sql(url, `UPDATE nodes SET seen_at = seen_at - 60000 WHERE name = 'a'`);
    assert.equal(b.recover(3).requeued, 1, "a's one remaining lease");
    assert.deepEqual(b.dueActions(10, { ids: [claimedByB[0]!.id] }).map((x) => x.id), [ca.id], "a's claimed action");
    assert.deepEqual(b.nodes().map((n) => [n.name, n.alive]), [['a', false], ['b', true]]);
  });

  test('a node name in use by a live node is refused, naming it; a name whose process died on this host is taken over', async () => {
    const url = await freshDb();
    journal(url, 'w1');
    assert.throws(() => journal(url, 'w1'), (e: any) => e.code === 'MATCHD_JOURNAL_LOCKED' && e.message.includes(`pid ${process.pid}`) && e.message.includes('--node'));
    await server.sql(url, `UPDATE nodes SET pid = 999999999 WHERE name = 'w1'`); // a pid that cannot exist here
    const again = journal(url, 'w1');
    assert.equal(again.heartbeat(), true);
  });

  test('review: the first decision wins, in one transaction with its actions; labels follow the moved file', async () => {
    const j = journal(await freshDb());
    const { jobId } = j.enqueue(job('r'));
    j.lease(1, 60_000);
    j.complete(jobId, 'review', { outcome: 'review' }, [{ kind: 'move', payload: {} }]);
    const plan = (band: string) => (jb: { imagePath: string }) => ({
      band, doc: { outcome: band }, actions: [{ kind: 'sidecar', payload: { band } }],
      label: { jobId, rule: 'r', decision: 'approve' as const, band, previous: 'review', reviewer: 'ann', at: 5, image: jb.imagePath, texts: ['t'], results: [], decidedBy: null },
    });
    const first = decide(j, jobId, plan('adopt') as never, 10);
    assert.equal(first.ok, true);
    const second = decide(j, jobId, plan('reject') as never, 11);
    assert.ok(!second.ok && second.error.code === 'MATCHD_REVIEW_DECIDED');
    assert.deepEqual(j.actionsOf(jobId).map((a) => [a.seq, a.kind]), [[0, 'move'], [1, 'sidecar']]);
    assert.equal(j.get(jobId)!.outcome, 'adopt');
    j.actionDone(j.dueActions(1)[0]!, '/sorted/adopt/r.jpg');
    assert.equal(labelOf(j, jobId)!.image, '/sorted/adopt/r.jpg');
    assert.deepEqual(listJobs(j, { outcome: 'reviewed' }, {}, 10).jobs.map((x) => x.id), [jobId]);
  });

  test('the database stops: calls fail at once with fault unreachable; once it is back the journal answers again', async () => {
    const j = journal(await freshDb());
    j.enqueue(job('before'));
    server.stop('fast');
    try {
      assert.throws(() => j.enqueue(job('during')), (e: any) => e.fault === 'unreachable');
      const t0 = Date.now();
      assert.throws(() => j.isKnown('x'), (e: any) => e.fault === 'unreachable');
      assert.ok(Date.now() - t0 < 50, 'fails fast while down');
      assert.equal(j.ping(), false);
    } finally {
      server.start();
    }
    const deadline = Date.now() + 15_000;
    while (!j.bridge.up && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(j.bridge.up, 'reconnected by itself');
    assert.ok(j.isKnown('before'));
    j.enqueue(job('after'));
    assert.equal(j.queuedCount(), 2);
  });
});
