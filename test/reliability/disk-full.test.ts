// Disk full, for real: the daemon's journal and its output folder each sit on a small tmpfs (in a private mount
// namespace) that the test fills to the last byte. A full journal disk pauses intake, scoring and actions and marks
// /healthz down with MATCHD_JOURNAL_FULL — no crash — and everything resumes by itself when space returns; a full
// output disk makes actions fail with ENOSPC and retry, leaving no temp file; in the end every file is sorted
// exactly once with its sidecar. (The scenario runs in disk-full-inside.ts; any uncaught exception kills it.)
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { runWithSmallFilesystems } from '../fixtures/small-fs.ts';

describe('reliability: disk full', () => {
  after(cleanupTmpDirs);

  test('journal disk full → paused and down, resumes when space returns; output disk full → retried, no temp files; nothing lost or doubled', { timeout: 240_000 }, async () => {
    const root = tmpDir('matchd-diskfull-');
    const run = await runWithSmallFilesystems('test/reliability/disk-full-inside.ts', [root], [
      { dir: path.join(root, 'jfs'), size: '16m' },
      { dir: path.join(root, 'outfs'), size: '4m' },
    ], 200_000);
    const r = run.report;
    assert.ok(r, `the scenario printed no report (exit ${run.code}) — did the daemon crash?\n${run.stderr.slice(-3000)}`);
    assert.equal(r.harnessError, undefined, `${r.harnessError}\n${JSON.stringify(r.log, null, 1)}`);
    assert.equal(r.directAccepted, 50, 'the 50 jobs were journalled before the disk filled');
    assert.equal(r.firstFault, 'lease jobs', 'leasing queued jobs was the first write to fail');
    assert.equal(r.downHealth.status, 503);
    assert.equal(r.downHealth.journal.fault, 'full');
    assert.match(r.downHealth.journal.detail, /disk is full/);
    assert.equal(r.whilePaused.stillDown, 503, 'still down while the disk is full');
    assert.equal(r.whilePaused.sorted, 10, 'nothing more is scored or moved while the journal is full');
    assert.equal(r.whilePaused.inbox, 10, 'the files dropped meanwhile wait in the inbox');
    assert.ok(r.resumeLogged, 'resuming was logged');
    assert.deepEqual(r.afterJournalFull, { sorted: 70, sidecars: 70 });
    assert.equal(r.whileOutputsFull.health, 200, 'a full output disk does not take the journal down');
    assert.ok(r.whileOutputsFull.enospcRetries >= 1);
    assert.deepEqual(r.whileOutputsFull.tempFiles, [], 'failed writes leave no temp files');
    assert.deepEqual(r.final, { sorted: 80, distinct: 80, sidecars: 80, tempFiles: [], inbox: 0 });
    console.log(`# journal full: down after ${r.downAfterMs} ms, resumed ${r.resumedAfterMs} ms after space returned; ` +
      `outputs full: ${r.whileOutputsFull.enospcRetries} ENOSPC retries, done ${r.outputsRecoveredAfterMs} ms after space returned`);
  });
});
