// The commands that read the SQLite journal file themselves — replay, endpoint, journal, calibrate --from-journal —
// refuse a config whose journal is on PostgreSQL (journal.url) with MATCHD_JOURNAL_SQLITE_ONLY, instead of acting on
// journal.path: there a SQLite file may still sit from before the move to PostgreSQL, and no daemon reads it any more.
// Each config here has such a file (with a job and a delivered callback), so a command that ignored journal.url would
// succeed on it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { Journal } from '../../src/core/journal.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

function matchd(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The default config with its journal on PostgreSQL, and a left-over SQLite journal at journal.path. */
function setup(): string {
  const root = tmpDir('matchd-sqlite-only-');
  const config = parse(fs.readFileSync(path.join(repoRoot, 'config', 'default.yaml'), 'utf8')) as Record<string, any>;
  config.model.dir = path.join(repoRoot, 'models', 'demo');
  // Nothing listens there: the commands must refuse before they try to connect.
  config.journal = { path: 'var/matchd.db', url: 'postgres://matchd:secret@127.0.0.1:1/matchd' };
  config.sources = [];
  const file = path.join(root, 'matchd.yaml');
  fs.writeFileSync(file, stringify(config));
  fs.mkdirSync(path.join(root, 'var'));
  const j = new Journal(path.join(root, 'var', 'matchd.db'));
  const { jobId } = j.enqueue({ dedupeKey: 'a', source: 'inbox', rule: 'red-products', imagePath: '/in/a.png', meta: {} });
  j.lease(1, 60_000);
  j.complete(jobId, 'adopt', { outcome: 'adopt' }, [{ kind: 'callback', payload: { endpoint: 'crm' } }]);
  for (const a of j.dueActions(10)) j.actionDone(a);
  j.close();
  return file;
}

describe('cli: SQLite-only commands on a PostgreSQL journal', () => {
  after(cleanupTmpDirs);

  for (const [name, args] of [
    ['replay', ['replay', '1']],
    ['endpoint', ['endpoint', 'list']],
    ['journal', ['journal', 'check']],
    ['calibrate --from-journal', ['calibrate', '--from-journal']],
  ] as const) {
    test(`${name}: exit 1, MATCHD_JOURNAL_SQLITE_ONLY naming the config and the command`, () => {
      const config = setup();
      const r = matchd([...args, '--config', config]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(r.stdout, '');
      const line = r.stderr.trim().split('\n')[0]!;
      assert.match(line, /^matchd: MATCHD_JOURNAL_SQLITE_ONLY: /);
      assert.ok(line.includes(`${config}: journal.url is set`), line);
      assert.ok(line.includes(`\`matchd ${name}`), line);
      assert.ok(!line.includes('secret'), 'the password stays out of the message');
    });
  }
});
