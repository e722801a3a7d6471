// A journal written by an older matchd opens in this one: version 1 migrated in place (origin split off meta, a
// texts column), version 2 (issue 16) given the labels table, its trigger and the job filter indexes; queued jobs and
// pending actions intact; a newer journal is refused.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { isMatchdError } from '../../src/core/errors.ts';
import { Journal } from '../../src/core/journal.ts';
import { JOURNAL_VERSION } from '../../src/core/journal-migrate.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

/** The version-1 schema exactly as matchd 1009397 created it. */
const V1 = `
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, source TEXT NOT NULL, rule TEXT NOT NULL, image_path TEXT NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}',
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
PRAGMA user_version = 1;
`;

function v1Journal(): string {
  const file = path.join(tmpDir('matchd-migrate-'), 'journal.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(V1);
  const insert = db.prepare(`INSERT INTO jobs (dedupe_key, source, rule, image_path, meta, extra, state, created_at, updated_at) VALUES (?, ?, 'colours', ?, ?, '{}', ?, 1, 1)`);
  insert.run('webhook:api:token:alice:order-1', 'api', '/spool/a.upload', JSON.stringify({ identity: 'token:alice', client: { orderId: 7 } }), 'done');
  insert.run('folder:/in/red.jpg:1:2:3', 'inbox', '/in/red.jpg', JSON.stringify({ root: '/in', relativePath: 'red.jpg', size: 1, mtimeMs: 2 }), 'queued');
  insert.run('s3:bucket/k@e', 's3', '/spool/k', JSON.stringify({ bucket: 'bucket', key: 'k', etag: 'e' }), 'queued');
  db.prepare(`INSERT INTO outbox (job_id, seq, kind, payload, state, next_at) VALUES (1, 0, 'callback', ?, 'pending', 1)`)
    .run(JSON.stringify({ options: { url: 'https://shop.example.com/hook' }, doc: { outcome: 'adopt' } }));
  db.prepare(`INSERT INTO plugin_state VALUES ('api', 'idem:x', '"1"')`).run();
  db.close();
  return file;
}

describe('journal: schema migration', () => {
  after(cleanupTmpDirs);

  test('a version-1 journal is migrated: origin holds the source details, meta only what the caller sent; work is intact', () => {
    const file = v1Journal();
    const j = new Journal(file);
    try {
      const alice = j.get(1)!;
      assert.deepEqual(alice.origin, { identity: 'token:alice' });
      assert.deepEqual(alice.meta, { orderId: 7 });
      assert.equal(alice.texts, null);
      assert.deepEqual(j.get(2)!.origin, { root: '/in', relativePath: 'red.jpg', size: 1, mtimeMs: 2 });
      assert.deepEqual(j.get(2)!.meta, {});
      assert.deepEqual(j.get(3)!.origin, { bucket: 'bucket', key: 'k', etag: 'e' });
      assert.equal(j.queuedCount(), 2);
      assert.equal(j.actionsOf(1)[0]!.state, 'pending');
      assert.equal(j.pluginGet('api', 'idem:x'), '1');
      // New jobs carry their texts.
      const { jobId } = j.enqueue({ dedupeKey: 'new', source: 'inbox', rule: 'colours', imagePath: '/in/b.jpg', texts: ['a blue shirt'], meta: { sku: 'B' }, origin: { root: '/in' } });
      assert.deepEqual(j.get(jobId)!.texts, ['a blue shirt']);
      assert.equal(j.lease(10, 1000).length, 3);
    } finally {
      j.close();
    }
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), JOURNAL_VERSION);
    db.close();
    // Opening again does not migrate twice.
    const again = new Journal(file);
    assert.deepEqual(again.get(1)!.meta, { orderId: 7 });
    again.close();
  });

  test('a new journal starts at the latest version', () => {
    const file = path.join(tmpDir('matchd-migrate-'), 'new.db');
    new Journal(file).close();
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), JOURNAL_VERSION);
    assert.ok((db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[]).some((c) => c.name === 'texts'));
    db.close();
  });

  test('a journal from a newer matchd is refused with MATCHD_JOURNAL, untouched', () => {
    const file = v1Journal();
    const db = new Database(file);
    db.pragma(`user_version = ${JOURNAL_VERSION + 1}`);
    db.close();
    assert.throws(() => new Journal(file), (e) => isMatchdError(e, 'MATCHD_JOURNAL') && new RegExp(`schema version ${JOURNAL_VERSION + 1}, newer than this matchd knows \\(${JOURNAL_VERSION}\\)`).test(e.message));
    const check = new Database(file, { readonly: true });
    assert.equal((check.prepare('PRAGMA table_info(jobs)').all() as { name: string }[]).some((c) => c.name === 'origin'), false);
    check.close();
  });
});
