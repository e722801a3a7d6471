// `matchd replay` says which config and journal it looked at, and exits 1 (MATCHD_NOTHING_TO_DO) when nothing was
// re-queued — no such job, a job without callbacks, nothing finished in the window — instead of "re-queued 0", exit 0.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { Journal } from '../../src/core/journal.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

function matchd(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A config whose journal holds job 1 (a callback, delivered) and job 2 (no callback), finished an hour ago. */
function setup(): { config: string; db: string } {
  const root = tmpDir('matchd-replay-');
  const config = path.join(root, 'matchd.yaml');
  fs.writeFileSync(config, stringify({ journal: { path: 'var/matchd.db' } }));
  const db = path.join(root, 'var', 'matchd.db');
  fs.mkdirSync(path.dirname(db));
  const hourAgo = Date.now() - 3_600_000;
  const j = new Journal(db, () => hourAgo);
  for (const [key, actions] of [['a', [{ kind: 'callback', payload: { endpoint: 'crm' } }]], ['b', [{ kind: 'sidecar', payload: {} }]]] as const) {
    const { jobId } = j.enqueue({ dedupeKey: key, source: 'inbox', rule: 'colours', imagePath: `/in/${key}.png`, meta: {} });
    j.lease(1, 60_000);
    j.complete(jobId, 'adopt', { outcome: 'adopt' }, [...actions]);
    for (const a of j.dueActions(10)) j.actionDone(a);
  }
  j.close();
  return { config, db };
}

describe('cli: replay says what it looked at', () => {
  after(cleanupTmpDirs);

  test('a job that is not in the journal: exit 1, naming the journal and the config', () => {
    const { config, db } = setup();
    const r = matchd(['replay', '99', '--config', config]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `matchd: MATCHD_NOTHING_TO_DO: no job 99 in ${db} (from ${config}); nothing re-queued`);
  });

  test('a job without callbacks: exit 1, saying so', () => {
    const { config } = setup();
    const r = matchd(['replay', '2', '--config', config]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^matchd: MATCHD_NOTHING_TO_DO: job 2 \(done, rule colours\) has no callback actions in .*; nothing re-queued$/m);
  });

  test('--since a window with nothing finished in it: exit 1; a wider one re-queues and exits 0', () => {
    const { config, db } = setup();
    const none = matchd(['replay', '--since', '10m', '--config', config]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, new RegExp(`^matchd: MATCHD_NOTHING_TO_DO: no callback of a job finished since \\S+ to re-queue in ${db.replace(/[.]/g, '\\.')}`));
    const some = matchd(['replay', '--since', '2h', '--config', config]);
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stdout, /^re-queued 1 callback since \S+ \(jobs finished since then\) in /);
    // Already pending now: replaying the job again re-queues nothing and says why.
    const again = matchd(['replay', '1', '--config', config]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /job 1's 1 callback\(s\) are already pending in .*: a running daemon is sending them/);
  });

  test('without --config: the default config is named, and its journal', () => {
    const r = matchd(['replay', '999999999']); // no such job: nothing in a checkout's own journal is touched
    const def = path.join(repoRoot, 'config', 'default.yaml');
    // Whatever the checkout's own var/ holds, the answer says which config and journal it came from.
    assert.ok(`${r.stdout}${r.stderr}`.includes(`the default config ${def}`), r.stdout + r.stderr);
    assert.ok(`${r.stdout}${r.stderr}`.includes(path.join(repoRoot, 'var', 'matchd.db')), r.stdout + r.stderr);
  });
});
