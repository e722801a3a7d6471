// Opening the journal never silently replaces or trusts a bad file: an empty (0-byte) file, a file that is not
// SQLite, another program's SQLite database and a directory are refused with MATCHD_JOURNAL_INVALID and left
// untouched; `init` starts a journal in an empty file only; a journal with a damaged page fails `quick_check` at
// open with MATCHD_JOURNAL_CORRUPT naming the recovery commands.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isMatchdError } from '../../src/core/errors.ts';
import { MATCHD_APPLICATION_ID } from '../../src/core/journal-file.ts';
import { Journal } from '../../src/core/journal.ts';
import { filledJournal, leafPages, smashPage } from '../fixtures/journal.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const refused = (code: string, re: RegExp) => (e: unknown) => isMatchdError(e) && e.code === code && re.test(e.message);

describe('daemon: journal open', () => {
  after(cleanupTmpDirs);

  test('an existing 0-byte journal is refused and left as it is; init starts a journal in it', () => {
    const file = path.join(tmpDir(), 'matchd.db');
    fs.writeFileSync(file, '');
    assert.throws(() => new Journal(file), refused('MATCHD_JOURNAL_INVALID', /empty file \(0 bytes\).*matchd journal init.*journal\.path/s));
    assert.equal(fs.statSync(file).size, 0, 'the file was not touched');
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['matchd.db'], 'no -wal/-shm created');
    const j = new Journal(file, Date.now, { init: true });
    j.enqueue({ dedupeKey: 'a', source: 's', rule: 'r', imagePath: '/x' });
    j.close();
    const again = new Journal(file);
    assert.ok(again.isKnown('a'));
    again.close();
  });

  test('a file that is not SQLite, another SQLite database and a directory are refused, even with init, and left untouched', () => {
    const dir = tmpDir();
    const text = path.join(dir, 'notes.db');
    fs.writeFileSync(text, 'my precious notes\n');
    for (const init of [false, true]) {
      assert.throws(() => new Journal(text, Date.now, { init }), refused('MATCHD_JOURNAL_INVALID', /not an SQLite database/));
    }
    assert.equal(fs.readFileSync(text, 'utf8'), 'my precious notes\n');

    const other = path.join(dir, 'other.db');
    const db = new Database(other);
    db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (12.5)');
    db.close();
    const before = fs.readFileSync(other);
    for (const init of [false, true]) {
      assert.throws(() => new Journal(other, Date.now, { init }), refused('MATCHD_JOURNAL_INVALID', /not a matchd journal.*tables: invoices/));
    }
    assert.deepEqual(fs.readFileSync(other), before, 'the other database is byte-for-byte unchanged');

    const folder = path.join(dir, 'folder.db');
    fs.mkdirSync(folder);
    assert.throws(() => new Journal(folder), refused('MATCHD_JOURNAL_INVALID', /not a regular file \(it is a directory\)/));
  });

  test('a new journal carries the matchd application id; one from before it is recognised by its tables and stamped', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'new.db');
    new Journal(file).close();
    const probe = new Database(file, { readonly: true });
    assert.equal(probe.pragma('application_id', { simple: true }), MATCHD_APPLICATION_ID);
    probe.close();

    const legacy = path.join(dir, 'legacy.db');
    new Journal(legacy).close();
    const raw = new Database(legacy);
    raw.pragma('application_id = 0');
    raw.close();
    const j = new Journal(legacy);
    j.close();
    const after = new Database(legacy, { readonly: true });
    assert.equal(after.pragma('application_id', { simple: true }), MATCHD_APPLICATION_ID);
    after.close();
  });

  test('a damaged page: quick_check at open refuses it with MATCHD_JOURNAL_CORRUPT and the recovery commands', () => {
    const file = path.join(tmpDir(), 'matchd.db');
    filledJournal(file, 60);
    const leaves = leafPages(file, 'outbox');
    assert.ok(leaves.length >= 4, `the outbox spans ${leaves.length} leaf pages`);
    smashPage(file, leaves[Math.floor(leaves.length / 2)]!.pageno);
    assert.throws(
      () => new Journal(file),
      refused('MATCHD_JOURNAL_CORRUPT', /quick_check.*matchd journal check --config FILE.*matchd journal recover --config FILE/s),
    );
  });

  test('a garbled header is corruption too, not a generic failure', () => {
    const file = path.join(tmpDir(), 'matchd.db');
    filledJournal(file, 5);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(84, 0xee), 0, 84, 16); // page size, versions, counters: everything after the magic
    fs.closeSync(fd);
    assert.throws(() => new Journal(file), refused('MATCHD_JOURNAL_CORRUPT', /matchd journal recover/));
  });
});
