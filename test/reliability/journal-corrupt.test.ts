// A journal page goes bad while the daemon runs (garbage written over the outbox's page in the file, as a failing
// disk would): the daemon does not crash — it pauses, /healthz is down with MATCHD_JOURNAL_CORRUPT naming the
// recovery commands, new files wait in the inbox — then a restart refuses the journal with the same code, `recover`
// salvages it, and the daemon finishes the files that waited.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { isMatchdError } from '../../src/core/errors.ts';
import { recoverJournal } from '../../src/core/journal-recover.ts';
import { Journal } from '../../src/core/journal.ts';
import { silentLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { colourImage, listFiles, waitFor, workspace } from '../fixtures/daemon.ts';
import { leafPages, smashPage } from '../fixtures/journal.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';

const started: Daemon[] = [];
const start = async (configFile: string, root: string) => {
  const d = await Daemon.start(loadConfig(configFile), { baseDir: root, registry: builtinRegistry(), logger: silentLogger() });
  started.push(d);
  return d;
};

describe('reliability: journal corrupted at run time', () => {
  afterEach(async () => {
    await Promise.all(started.splice(0).map((d) => d.stop()));
  });
  after(cleanupTmpDirs);

  test('no crash: paused and down with MATCHD_JOURNAL_CORRUPT; restart refused; recover; the waiting files finish', async () => {
    const ws = workspace();
    const db = path.join(ws.root, 'var', 'journal.db');
    const daemon = await start(ws.configFile, ws.root);
    const health = async () => {
      const r = await fetch(`http://127.0.0.1:${daemon.adminAddress!.port}/healthz`);
      return { status: r.status, body: (await r.json()) as any };
    };
    for (let i = 0; i < 5; i++) await colourImage(path.join(ws.inbox, `a-${i}.png`), [220, 20, 20]);
    await waitFor(() => listFiles(ws.sorted).length === 10 && daemon.journalForTools.pendingActionCount() === 0, 'the first 5 files sorted');

    // Bad sector: the outbox's page is garbage in the file. A second connection checkpoints first (so the page is
    // read from the file, not the WAL) and writes once afterwards (so the daemon's page cache is dropped).
    const other = new Database(db);
    other.pragma('wal_checkpoint(TRUNCATE)');
    const [page] = leafPages(db, 'outbox');
    smashPage(db, page!.pageno);
    other.prepare(`INSERT INTO plugin_state (plugin, key, value) VALUES ('test', 'poke', '1')`).run();
    other.close();

    for (let i = 0; i < 5; i++) await colourImage(path.join(ws.inbox, `b-${i}.png`), [20, 20, 220]);
    const down = await waitFor(async () => {
      const h = await health();
      return h.status === 503 && h.body.journal.code === 'MATCHD_JOURNAL_CORRUPT' ? h : null;
    }, '/healthz to report MATCHD_JOURNAL_CORRUPT', 20_000);
    assert.match(down.body.journal.detail, /matchd journal check --config FILE.*matchd journal recover --config FILE/s);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await health()).status, 503, 'corruption is not retried away');
    const refused = daemon.submit('inbox', 'colours', { dedupeKey: 'late', image: { path: path.join(ws.inbox, 'b-0.png') } });
    assert.equal(refused.accepted, false, 'intake is paused');
    await started.pop()!.stop();

    assert.throws(() => new Journal(db), (e) => isMatchdError(e, 'MATCHD_JOURNAL_CORRUPT'));
    const r = recoverJournal(db);
    assert.equal(r.tables.jobs!.gaps.length, 0, 'every job row was readable');
    assert.ok(fs.existsSync(r.keptAs));

    const again = await start(ws.configFile, ws.root);
    await waitFor(() => listFiles(ws.inbox).length === 0 && listFiles(ws.sorted).filter((f) => !f.endsWith('.json')).length === 10, 'the files that waited are sorted after recovery', 30_000);
    await waitFor(() => again.journalForTools.pendingActionCount() === 0, 'actions done');
  });
});
