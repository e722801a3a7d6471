// Companion files and manifests as the folder source and `matchd score --dir` read them: real bytes, every bad
// input named with its code.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isMatchdError } from '../../src/core/errors.ts';
import { companionPaths, isCompanionName, parseCompanionJson, parseTextsFile } from '../../src/core/items/companion.ts';
import { parseCsv } from '../../src/core/items/csv.ts';
import { parseManifest } from '../../src/core/items/manifest.ts';

const b = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
const code = (c: string, msg?: RegExp) => (e: unknown) => isMatchdError(e) && e.code === c && (!msg || msg.test(e.message));

describe('companion files', () => {
  test('photo.jpg → photo.txt and photo.json; only .txt and .json are companion names', () => {
    assert.deepEqual(companionPaths('/in/shop/photo.jpg'), { txt: '/in/shop/photo.txt', json: '/in/shop/photo.json' });
    assert.deepEqual(companionPaths('/in/a.b.png'), { txt: '/in/a.b.txt', json: '/in/a.b.json' });
    assert.ok(isCompanionName('photo.TXT') && isCompanionName('x.json'));
    assert.ok(!isCompanionName('photo.jpg') && !isCompanionName('manifest.csv'));
  });

  test('photo.txt: one text per line, trimmed; blank lines and # comments skipped; CRLF and a BOM are fine', () => {
    assert.deepEqual(parseTextsFile(b('\ufeff# titles\r\n  a red dress \r\n\r\nrot und blau\n#x\n'), 'photo.txt'), ['a red dress', 'rot und blau']);
  });

  test('bad photo.txt: not UTF-8 names the line (MATCHD_COMPANION_INVALID); no texts at all is MATCHD_TEXT_INVALID', () => {
    const bytes = Buffer.concat([b('red\nblue\n'), Buffer.from([0xc3, 0x28]), b('\n')]);
    assert.throws(() => parseTextsFile(bytes, 'photo.txt'), code('MATCHD_COMPANION_INVALID', /photo\.txt: invalid UTF-8 \(around line 3\)/));
    assert.throws(() => parseTextsFile(b('  \n# only a comment\n\n'), 'photo.txt'), code('MATCHD_TEXT_INVALID', /photo\.txt: no texts/));
  });

  test('photo.json: texts and meta; malformed JSON, a non-object and unknown keys are MATCHD_COMPANION_INVALID', () => {
    assert.deepEqual(parseCompanionJson(b('{"texts":["a red dress"],"meta":{"sku":"A1"}}'), 'photo.json'), { texts: ['a red dress'], meta: { sku: 'A1' } });
    assert.deepEqual(parseCompanionJson(b('{"meta":{"sku":"A1"}}'), 'photo.json'), { meta: { sku: 'A1' } });
    assert.throws(() => parseCompanionJson(b('{"texts": ["a",'), 'photo.json'), code('MATCHD_COMPANION_INVALID', /photo\.json: not valid JSON/));
    assert.throws(() => parseCompanionJson(b('["a red dress"]'), 'photo.json'), code('MATCHD_COMPANION_INVALID', /expected an object/));
    assert.throws(() => parseCompanionJson(b('{"text":["a"]}'), 'photo.json'), code('MATCHD_COMPANION_INVALID', /unknown key\(s\) "text"/));
    assert.throws(() => parseCompanionJson(Buffer.from([0x7b, 0xff, 0x7d]), 'photo.json'), code('MATCHD_COMPANION_INVALID', /invalid UTF-8/));
  });
});

describe('manifests', () => {
  test('CSV reader: quotes, doubled quotes, commas and line breaks inside quotes, CRLF, blank lines', () => {
    const rows = parseCsv('file,text\r\n"a.jpg","a ""red"", bright\ndress"\r\n\r\nb.jpg,plain\n');
    assert.deepEqual(rows, [
      { line: 1, fields: ['file', 'text'] },
      { line: 2, fields: ['a.jpg', 'a "red", bright\ndress'] },
      { line: 5, fields: ['b.jpg', 'plain'] },
    ]);
    assert.throws(() => parseCsv('file,text\na.jpg,"open\n'), /line 2: a quoted field is not closed/);
    assert.throws(() => parseCsv('file,text\na.jpg,x"y\n'), /line 2: a quote inside an unquoted field/);
  });

  test('CSV: repeated rows add texts, several text columns, a meta column and other columns as meta fields', () => {
    const csv = [
      'file,text,text2,sku,meta',
      'red.jpg,a red dress,,A1,',
      'red.jpg,a crimson dress,a scarlet dress,,"{""season"":""summer""}"',
      'sub/blue.png,a blue shirt,,B2,',
      'green.webp,,,G3,',
    ].join('\n');
    const m = parseManifest(b(csv), 'matchd-manifest.csv');
    assert.deepEqual(m.problems, []);
    assert.deepEqual(m.entries.get('red.jpg'), { texts: ['a red dress', 'a crimson dress', 'a scarlet dress'], meta: { sku: 'A1', season: 'summer' }, lines: [2, 3] });
    assert.deepEqual(m.entries.get('sub/blue.png'), { texts: ['a blue shirt'], meta: { sku: 'B2' }, lines: [4] });
    assert.deepEqual(m.entries.get('green.webp')!.texts, [], 'a row without texts gives meta only (the rule texts apply)');
  });

  test('CSV: bad rows are reported with their line and skipped; a file without a header naming `file` is unusable', () => {
    const m = parseManifest(b('file,text,meta\n,no name,\n../x.jpg,escape,\nok.jpg,fine,\nbad.jpg,x,not json\nwide.jpg,a,,extra\n'), 'm.csv');
    assert.deepEqual([...m.entries.keys()], ['ok.jpg']);
    assert.equal(m.problems.length, 4);
    assert.match(m.problems.join('\n'), /m\.csv line 2: no file name/);
    assert.match(m.problems.join('\n'), /line 3: file '\.\.\/x\.jpg' must be a name relative/);
    assert.match(m.problems.join('\n'), /line 5: the meta column is not JSON/);
    assert.match(m.problems.join('\n'), /line 6: 4 fields, the header has 3/);
    assert.throws(() => parseManifest(b('name,text\na.jpg,x\n'), 'm.csv'), code('MATCHD_COMPANION_INVALID', /header with a 'file' column/));
    assert.throws(() => parseManifest(Buffer.from([0x66, 0xff]), 'm.csv'), code('MATCHD_COMPANION_INVALID', /invalid UTF-8/));
  });

  test('JSON Lines: texts or text, meta, repeated lines add texts; bad lines are reported and skipped', () => {
    const jsonl = [
      '{"file":"red.jpg","texts":["a red dress"],"meta":{"sku":"A1"}}',
      '{"file":"red.jpg","text":"a crimson dress"}',
      '',
      'not json',
      '{"file":"x.jpg","texts":"a string"}',
      '{"file":"y.jpg","caption":"typo"}',
      '{"texts":["no file"]}',
    ].join('\n');
    const m = parseManifest(b(jsonl), 'matchd-manifest.jsonl');
    assert.deepEqual(m.entries.get('red.jpg'), { texts: ['a red dress', 'a crimson dress'], meta: { sku: 'A1' }, lines: [1, 2] });
    assert.deepEqual([...m.entries.keys()], ['red.jpg']);
    assert.deepEqual(m.problems.map((p) => p.replace(/:.*/, '')), ['matchd-manifest.jsonl line 4', 'matchd-manifest.jsonl line 5', 'matchd-manifest.jsonl line 6', 'matchd-manifest.jsonl line 7']);
  });
});
