// The journal: dedupe, leases, recovery after a dead process, outbox order and retries, durability settings.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Journal } from '../../src/core/journal.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const job = (k: string) => ({ dedupeKey: k, source: 's', rule: 'r', imagePath: `/in/${k}.jpg`, meta: { k } });

describe('daemon: journal', () => {
  after(cleanupTmpDirs);

  test('WAL mode with synchronous=FULL, on a file', () => {
    const file = path.join(tmpDir(), 'j.db');
    const j = new Journal(file);
    const probe = new Database(file);
    assert.equal(probe.pragma('journal_mode', { simple: true }), 'wal');
    probe.close();
    j.close();
    // synchronous is per connection: check the journal's own
    const j2 = new Journal(file);
    assert.equal((j2 as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 2);
    j2.close();
  });

  test('a dedupe key is journalled once; isKnown sees it', () => {
    const j = new Journal(':memory:');
    const a = j.enqueue(job('a'));
    const again = j.enqueue(job('a'));
    assert.equal(a.duplicate, false);
    assert.deepEqual(again, { jobId: a.jobId, duplicate: true });
    assert.ok(j.isKnown('a') && !j.isKnown('b'));
    assert.equal(j.counts().queued, 1);
    j.close();
  });

  test('lease takes the oldest queued jobs and counts attempts', () => {
    const j = new Journal(':memory:');
    for (const k of ['a', 'b', 'c']) j.enqueue(job(k));
    const leased = j.lease(2, 60_000);
    assert.deepEqual(leased.map((x) => x.dedupeKey), ['a', 'b']);
    assert.ok(leased.every((x) => x.state === 'running' && x.attempts === 1));
    assert.deepEqual(leased[0]!.meta, { k: 'a' });
    assert.deepEqual(j.counts(), { queued: 1, running: 2, done: 0, failed: 0, outboxPending: 0, outboxDead: 0 });
    assert.equal(j.queuedCount(), 1);
    assert.equal(j.pendingActionCount(), 0);
    j.close();
  });

  test('after a crash, the next process re-queues the dead leases; poison jobs are abandoned after maxAttempts', () => {
    const file = path.join(tmpDir(), 'j.db');
    const first = new Journal(file);
    first.enqueue(job('a'));
    first.enqueue(job('b'));
    first.lease(2, 3_600_000); // leases still "valid" by time, but their owner is gone
    first.close();
    let t = Date.now();
    const second = new Journal(file, () => t);
    assert.deepEqual(second.recover(3, false), { requeued: 0, abandoned: [] }, 'not expired yet by time');
    const r = second.recover(3, true);
    assert.equal(r.requeued, 2);
    assert.equal(second.counts().queued, 2);
    // two more crashes each
    for (let i = 0; i < 2; i++) {
      second.lease(2, 1000);
      t += 2000;
      second.recover(3);
    }
    second.lease(2, 1000);
    t += 2000;
    const last = second.recover(3);
    assert.equal(last.requeued, 0);
    assert.deepEqual(last.abandoned.map((x) => x.dedupeKey), ['a', 'b']);
    second.close();
  });

  test('complete writes the result and its actions in one step; actions run in order per job', () => {
    const j = new Journal(':memory:');
    const { jobId: a } = j.enqueue(job('a'));
    const { jobId: b } = j.enqueue(job('b'));
    j.lease(2, 60_000);
    j.complete(a, 'adopt', { x: 1 }, [{ kind: 'move', payload: { n: 1 } }, { kind: 'sidecar', payload: { n: 2 } }]);
    j.complete(b, 'error', { e: 1 }, [{ kind: 'move', payload: { n: 3 } }], true);
    assert.equal(j.get(a)!.state, 'done');
    assert.equal(j.get(b)!.state, 'failed');
    assert.deepEqual(j.get(a)!.result, { x: 1 });
    let due = j.dueActions(10);
    assert.deepEqual(due.map((x) => [x.jobId, x.seq]), [[a, 0], [b, 0]], 'only the first action of each job');
    j.actionDone(due[0]!, '/out/a.jpg');
    assert.equal(j.get(a)!.location, '/out/a.jpg');
    due = j.dueActions(10);
    assert.deepEqual(due.map((x) => [x.jobId, x.seq]), [[a, 1], [b, 0]]);
    // completing twice (a duplicate run after a lease expired) keeps the first result and adds no actions
    j.complete(a, 'reject', { x: 2 }, [{ kind: 'move', payload: {} }]);
    assert.equal(j.get(a)!.outcome, 'adopt');
    assert.equal(j.counts().outboxPending, 2);
    j.close();
  });

  test('a failed action is retried at its time, or dead; payload decisions persist', () => {
    let t = 1_000_000;
    const j = new Journal(':memory:', () => t);
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
    j.close();
  });

  test('plugin state round-trips; prune forgets old finished jobs only', () => {
    let t = Date.now();
    const j = new Journal(':memory:', () => t);
    j.pluginSet('s3', 'cursor', { key: 'a/b', etag: 'x' });
    assert.deepEqual(j.pluginGet('s3', 'cursor'), { key: 'a/b', etag: 'x' });
    const { jobId } = j.enqueue(job('old'));
    j.lease(1, 1000);
    j.complete(jobId, 'adopt', {}, []);
    j.enqueue(job('queued'));
    t += 31 * 86_400_000;
    assert.equal(j.prune(30), 1);
    assert.ok(!j.isKnown('old') && j.isKnown('queued'));
    j.close();
  });

  test('an unusable journal path → MATCHD_JOURNAL naming it', () => {
    const file = path.join(tmpDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    const bad = path.join(file, 'sub', 'j.db'); // a folder under a regular file
    assert.throws(() => new Journal(bad), (e: any) => e.code === 'MATCHD_JOURNAL' && e.message.includes(bad));
  });
});
