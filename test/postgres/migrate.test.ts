// The PostgreSQL journal's schema versions: created from an empty database, migrated from the previous version with
// its data intact, several nodes starting at once (one migration, under the advisory lock), and what is refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PgJournal } from '../../src/core/journal-pg/journal.ts';
import { PG_SCHEMA_VERSION, STEPS } from '../../src/core/journal-pg/schema.ts';
import { labelOf } from '../../src/core/journal-review.ts';
import { repoRoot } from '../fixtures/packages.ts';
import { startPostgres, type PgServer } from '../fixtures/postgres.ts';

let server: PgServer;
let n = 0;
const open = (url: string, node = 'm') => new PgJournal({ url, node: { name: node, role: 'all' }, leaseMs: 60_000, nodeTimeoutMs: 5_000 });
const version = async (url: string) => Number((await server.sql<{ value: string }>(url, `SELECT value FROM matchd_meta WHERE key = 'schema_version'`))[0]!.value);
const tables = async (url: string) =>
  (await server.sql<{ t: string }>(url, `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).map((r) => r.t);

function child(url: string, node: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'fixtures', 'pg-open-child.ts'), url, node], { cwd: repoRoot });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', () => resolve(out.trim()));
  });
}

describe('postgres: journal schema', () => {
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.destroy());

  test('an empty database is created at the latest version', async () => {
    const url = await server.createDatabase(`m${++n}`);
    open(url).close();
    assert.equal(await version(url), PG_SCHEMA_VERSION);
    assert.deepEqual(await tables(url), ['jobs', 'labels', 'matchd_meta', 'nodes', 'outbox', 'plugin_state']);
  });

  test('three nodes starting together on an empty database: one migration, all three start', async () => {
    const url = await server.createDatabase(`m${++n}`);
    const outs = await Promise.all(['n1', 'n2', 'n3'].map((node) => child(url, node)));
    assert.deepEqual(outs, [`ok ${PG_SCHEMA_VERSION}`, `ok ${PG_SCHEMA_VERSION}`, `ok ${PG_SCHEMA_VERSION}`]);
    assert.deepEqual((await server.sql<{ name: string }>(url, 'SELECT name FROM nodes ORDER BY name')).map((r) => r.name), ['n1', 'n2', 'n3']);
  });

  test('from the previous version: migrated in place, every row kept and usable', async () => {
    const url = await server.createDatabase(`m${++n}`);
    // A journal as version 1 wrote it: a finished job with two pending actions, a queued job, plugin state, a label.
    await server.sql(url, STEPS[1]!);
    await server.sql(url, `INSERT INTO matchd_meta VALUES ('schema_version', '1')`);
    await server.sql(url, `INSERT INTO jobs (dedupe_key, source, rule, image_path, meta, state, outcome, result, created_at, updated_at)
      VALUES ('done-1', 'inbox', 'r', '/in/a.jpg', '{"k":1}', 'done', 'review', '{"outcome":"review"}', 1, 1),
             ('queued-1', 'inbox', 'r', '/in/b.jpg', '{}', 'queued', NULL, NULL, 2, 2)`);
    await server.sql(url, `INSERT INTO outbox (job_id, seq, kind, payload, state, next_at) VALUES (1, 0, 'move', '{"to":"x"}', 'pending', 0), (1, 1, 'sidecar', '{}', 'pending', 0)`);
    await server.sql(url, `INSERT INTO plugin_state VALUES ('inbox', 'cursor', '{"at":1}')`);
    await server.sql(url, `INSERT INTO labels VALUES (1, 'r', 'approve', 'adopt', 'review', 'ann', 5, '/in/a.jpg', '["t"]', '[]', NULL)`);

    const j = open(url);
    try {
      assert.equal(await version(url), PG_SCHEMA_VERSION);
      assert.equal(j.get(1)!.outcome, 'review');
      assert.deepEqual(j.get(1)!.meta, { k: 1 });
      assert.deepEqual(j.pluginGet('inbox', 'cursor'), { at: 1 });
      assert.deepEqual(j.counts(), { queued: 1, running: 0, done: 1, failed: 0, outboxPending: 2, outboxDead: 0 });
      const [a] = j.dueActions(10);
      assert.deepEqual([a!.jobId, a!.seq, a!.payload], [1, 0, { to: 'x' }], 'the pending action is claimed in order');
      j.actionDone(a!, '/sorted/adopt/a.jpg');
      assert.equal(labelOf(j, 1)!.image, '/sorted/adopt/a.jpg', 'the trigger follows the file');
      assert.deepEqual(j.lease(5, 60_000).map((x) => x.dedupeKey), ['queued-1']);
      assert.deepEqual(j.enqueue({ dedupeKey: 'done-1', source: 'inbox', rule: 'r', imagePath: '/x' }), { jobId: 1, duplicate: true }, 'dedupe keys kept');
    } finally {
      j.close();
    }
  });

  test('a newer version, or a database that is not a journal, is refused and left as it was', async () => {
    const newer = await server.createDatabase(`m${++n}`);
    await server.sql(newer, `CREATE TABLE matchd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO matchd_meta VALUES ('schema_version', '99')`);
    assert.throws(() => open(newer), (e: any) => e.code === 'MATCHD_JOURNAL' && /version 99, newer/.test(e.message));
    assert.deepEqual(await tables(newer), ['matchd_meta']);
    const foreign = await server.createDatabase(`m${++n}`);
    await server.sql(foreign, `CREATE TABLE customers (id INT)`);
    assert.throws(() => open(foreign), (e: any) => e.code === 'MATCHD_JOURNAL_INVALID' && e.message.includes('customers'));
    assert.deepEqual(await tables(foreign), ['customers']);
  });

  test('an unreachable server at start-up: MATCHD_JOURNAL_UNREACHABLE naming the URL without its password', () => {
    const url = `postgres://matchd:s3cret@127.0.0.1:1/none`;
    assert.throws(() => open(url), (e: any) => e.code === 'MATCHD_JOURNAL_UNREACHABLE' && e.message.includes('127.0.0.1:1') && !e.message.includes('s3cret'));
  });
});
