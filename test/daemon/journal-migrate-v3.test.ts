// A version-2 journal (as matchd 16b21a1 wrote it) opens in this matchd: migrated in place to version 3 — the labels
// table, the trigger that keeps a label's image where its file went, the job filter indexes — its jobs, pending
// actions and plugin state intact; a decision can then be recorded on a job that was in review before the upgrade.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { decide, labelOf, listJobs } from '../../src/core/journal-review.ts';
import { Journal } from '../../src/core/journal.ts';
import { JOURNAL_VERSION } from '../../src/core/journal-migrate.ts';
import { MATCHD_APPLICATION_ID } from '../../src/core/journal-file.ts';
import { planReview } from '../../src/core/review.ts';
import { RuleSchema } from '../../src/core/config.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

/** The version-2 schema exactly as matchd 16b21a1 created it. */
const V2 = `
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, source TEXT NOT NULL, rule TEXT NOT NULL, image_path TEXT NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}', origin TEXT NOT NULL DEFAULT '{}', texts TEXT,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')), attempts INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT, lease_until INTEGER, outcome TEXT, result TEXT, location TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  payload TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')), attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL, last_error TEXT, UNIQUE (job_id, seq)
);
CREATE INDEX outbox_pending ON outbox (state, next_at);
CREATE TABLE plugin_state (plugin TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (plugin, key));
PRAGMA user_version = 2;
PRAGMA application_id = ${MATCHD_APPLICATION_ID};
`;

const RESULT = {
  jobId: 1, file: 'a.png', outcome: 'review', decidedBy: 'a red product',
  results: [{ text: 'a red product', cosine: 0.35, score: 0.35, band: 'review', truncated: false }],
};

function v2Journal(): string {
  const file = path.join(tmpDir('matchd-migrate3-'), 'journal.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(V2);
  const insert = db.prepare(`INSERT INTO jobs (dedupe_key, source, rule, image_path, origin, texts, state, outcome, result, location, created_at, updated_at)
    VALUES (?, 'inbox', 'colours', ?, '{}', ?, ?, ?, ?, ?, 1, 1)`);
  insert.run('k1', '/in/a.png', null, 'done', 'review', JSON.stringify(RESULT), '/out/review/a.png');
  insert.run('k2', '/in/b.png', JSON.stringify(['a blue shirt']), 'queued', null, null, null);
  db.prepare(`INSERT INTO outbox (job_id, seq, kind, payload, state, next_at) VALUES (1, 0, 'move', ?, 'done', 1), (1, 1, 'sidecar', '{}', 'done', 1), (1, 2, 'callback', '{}', 'pending', 1)`)
    .run(JSON.stringify({ src: '/in/a.png', dir: '/out/review', dest: '/out/review/a.png' }));
  db.prepare(`INSERT INTO plugin_state VALUES ('inbox', 'cursor', '"7"')`).run();
  db.close();
  return file;
}

describe('journal: schema migration 2 → 3', () => {
  after(cleanupTmpDirs);

  test('a version-2 journal gets labels, the trigger and the indexes; its work is intact', () => {
    assert.equal(JOURNAL_VERSION, 3);
    const file = v2Journal();
    const j = new Journal(file);
    try {
      assert.equal(j.get(1)!.outcome, 'review');
      assert.deepEqual(j.get(2)!.texts, ['a blue shirt']);
      assert.equal(j.queuedCount(), 1);
      assert.deepEqual(j.actionsOf(1).map((a) => a.state), ['done', 'done', 'pending']);
      assert.equal(j.pluginGet('inbox', 'cursor'), '7');
      const names = (j.sql.prepare(`SELECT name FROM sqlite_schema WHERE type IN ('table', 'index', 'trigger') ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
      for (const n of ['labels', 'labels_by_at', 'labels_follow_file', 'jobs_by_outcome', 'jobs_by_rule', 'jobs_by_source', 'jobs_by_created']) assert.ok(names.includes(n), n);
      // The filter indexes are what the jobs page's queries use.
      const plan = j.sql.prepare(`EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE outcome = ? AND id < ? ORDER BY id DESC LIMIT 51`).all('review', 1e9) as { detail: string }[];
      assert.match(plan.map((p) => p.detail).join(' '), /jobs_by_outcome/);
      assert.deepEqual(listJobs(j, { band: 'review' }, {}, 10).jobs.map((x) => x.id), [1]);

      // A job that was in review before the upgrade is decided on the migrated journal.
      const rule = RuleSchema.parse({ texts: ['a red product'], actions: { default: [{ move: { to: '/out/{band}' } }, { sidecar: {} }] } });
      const bands = { on: 'cosine' as const, list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'reject' }] };
      const r = decide(j, 1, (job, actions) => planReview({ rule, bands, job, actions, decision: { decision: 'approve' }, reviewer: 'alice', at: 5, baseDir: '/' }), 5);
      assert.ok(r.ok);
      assert.equal(j.get(1)!.outcome, 'adopt');
      assert.deepEqual(j.actionsOf(1).slice(3).map((a) => [a.seq, a.kind]), [[3, 'move'], [4, 'discard'], [5, 'sidecar']]);
      assert.equal(j.actionsOf(1)[3]!.payload.src, '/out/review/a.png', 'the move starts where the review band put the file');
      assert.equal(j.actionsOf(1)[4]!.payload.path, '/out/review/a.png.json', 'the old sidecar is removed after the move');
      // The label follows the file when the move records its new location.
      j.actionDone(j.actionsOf(1)[3]!, '/out/adopt/a.png');
      assert.equal(labelOf(j, 1)!.image, '/out/adopt/a.png');
      assert.equal(labelOf(j, 1)!.reviewer, 'alice');
    } finally {
      j.close();
    }
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), 3);
    db.close();
    // Opening again neither migrates twice nor loses the label.
    const again = new Journal(file);
    assert.equal(labelOf(again, 1)!.band, 'adopt');
    again.close();
  });

  test('labels outlive their job when it is pruned (they are calibration data)', () => {
    const file = v2Journal();
    const j = new Journal(file, () => 100 * 86_400_000);
    try {
      const rule = RuleSchema.parse({ texts: ['a red product'], actions: { default: [{ log: {} }] } });
      const bands = { on: 'cosine' as const, list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'reject' }] };
      assert.ok(decide(j, 1, (job, actions) => planReview({ rule, bands, job, actions, decision: { decision: 'reject' }, reviewer: 'bob', at: 1, baseDir: '/' }), 1).ok);
      j.sql.prepare(`UPDATE outbox SET state = 'done'`).run();
      j.sql.prepare(`UPDATE jobs SET updated_at = 1`).run();
      assert.equal(j.prune(30), 1, 'the finished job is pruned');
      assert.equal(j.get(1), undefined);
      assert.equal(labelOf(j, 1)!.band, 'reject');
    } finally {
      j.close();
    }
  });
});
