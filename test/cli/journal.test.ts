// `matchd journal check | recover | init` and `matchd run` on bad journals, as a user runs them (the real CLI in a
// child process): a damaged outbox page is reported (exit 1, MATCHD_JOURNAL_CORRUPT), `recover` keeps every row on
// sound pages — exactly the damaged page's rows are lost — and keeps the damaged file; the daemon then starts on the
// salvaged journal and runs the pending actions. `run` on a 0-byte or damaged journal is a coded refusal, never a stack.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { Journal } from '../../src/core/journal.ts';
import { silentLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { waitFor } from '../fixtures/daemon.ts';
import { filledJournal, leafPages, smashPage } from '../fixtures/journal.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot } from '../fixtures/packages.ts';

function setup(): { root: string; config: string; db: string } {
  const root = tmpDir('matchd-journal-cli-');
  const config = path.join(root, 'matchd.yaml');
  fs.writeFileSync(config, stringify({
    model: { dir: demoDir }, journal: { path: 'var/matchd.db' }, admin: { enabled: false }, log: { level: 'warn' },
    rules: { colours: { texts: ['red'] } },
  }));
  return { root, config, db: path.join(root, 'var', 'matchd.db') };
}

function matchd(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli: matchd journal', () => {
  after(cleanupTmpDirs);

  test('check finds a damaged page; recover salvages every row on sound pages; the daemon then runs the pending actions', async () => {
    const { root, config, db } = setup();
    fs.mkdirSync(path.dirname(db));
    filledJournal(db, 60, 2);
    const leaves = leafPages(db, 'outbox');
    const k = Math.floor(leaves.length / 2);
    const first = leaves.slice(0, k).reduce((n, l) => n + l.rows, 0) + 1; // outbox rowids run 1..120
    const lost = leaves[k]!.rows;
    smashPage(db, leaves[k]!.pageno);

    const ok = matchd('journal', 'check', '--config', config);
    assert.equal(ok.code, 1, ok.stderr);
    assert.match(ok.stdout, /DAMAGED/);
    assert.match(ok.stderr, /^matchd: MATCHD_JOURNAL_CORRUPT: .*matchd journal recover/m);

    const refused = matchd('run', '--config', config);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^matchd: MATCHD_JOURNAL_CORRUPT: /m);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');

    const rec = matchd('journal', 'recover', '--config', config);
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(rec.stdout, /jobs: 60 row\(s\) kept/);
    assert.match(rec.stdout, new RegExp(`outbox: ${120 - lost} row\\(s\\) kept; unreadable rowids: ${first}–${first + lost - 1}\\b`));
    assert.match(rec.stdout, /plugin_state: 1 row\(s\) kept/);
    const kept = fs.readdirSync(path.dirname(db)).filter((f) => f.includes('.corrupt-'));
    assert.equal(kept.length, 1, `the damaged file is kept: ${kept}`);
    assert.equal(matchd('journal', 'check', '--config', config).code, 0, 'the salvaged journal is sound');

    const j = new Journal(db);
    assert.equal(j.counts().done, 60);
    assert.equal(j.pendingActionCount(), 120 - lost);
    assert.deepEqual(j.pluginGet('inbox', 'cursor'), { at: 1 });
    j.close();
    const daemon = await Daemon.start(loadConfig(config), { baseDir: root, registry: builtinRegistry(), logger: silentLogger() });
    try {
      await waitFor(() => daemon.journalForTools.pendingActionCount() === 0, 'the salvaged actions to run', 20_000);
    } finally {
      await daemon.stop();
    }
  });

  test('recover on a sound journal changes nothing; check says ok', () => {
    const { config, db } = setup();
    fs.mkdirSync(path.dirname(db));
    filledJournal(db, 3);
    const before = fs.readFileSync(db);
    const r = matchd('journal', 'recover', '--config', config);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nothing to recover/);
    assert.deepEqual(fs.readFileSync(db), before);
    assert.match(matchd('journal', 'check', '--config', config).stdout, /: ok — jobs 3, outbox 6, plugin_state 1/);
  });

  test('run refuses a 0-byte journal (file untouched); journal init starts one there; run on the missing file creates it', () => {
    const { config, db } = setup();
    fs.mkdirSync(path.dirname(db));
    fs.writeFileSync(db, '');
    const r = matchd('run', '--config', config);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^matchd: MATCHD_JOURNAL_INVALID: the journal .*matchd\.db is an empty file \(0 bytes\).*matchd journal init/m);
    assert.equal(fs.statSync(db).size, 0);
    const init = matchd('journal', 'init', '--config', config);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /new, empty journal written into the empty file/);
    assert.match(matchd('journal', 'init', '--config', config).stdout, /already a matchd journal; left as it is/);
    assert.match(matchd('journal', 'check', '--config', config).stdout, /: ok — jobs 0/);
  });
});
