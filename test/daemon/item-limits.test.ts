// An item's own texts and meta against the configured limits, and what the core makes of a bad item: refused (HTTP
// intake) or journalled as failed with its code (files, objects). Hostile sizes included.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/core/config.ts';
import { admit } from '../../src/core/intake.ts';
import { DEFAULT_ITEM_LIMITS, checkItem, checkItemTexts } from '../../src/core/item.ts';
import { checkMeta } from '../../src/core/meta.ts';

const config = parseConfig(`
items: { maxTexts: 3, maxTextChars: 10, meta: { maxDepth: 3, maxBytes: 64 } }
rules:
  colours: { texts: [a red product] }
  titles: { texts: per-item }
`);
const job = (extra: object) => ({ dedupeKey: 'k', image: { path: '/x.jpg' }, ...extra });
const deep = (n: number): Record<string, unknown> => (n <= 1 ? { leaf: 1 } : { a: deep(n - 1) });

describe('item limits', () => {
  test('defaults: 64 texts per item, 2,000 characters per text; characters are code points', () => {
    assert.equal(DEFAULT_ITEM_LIMITS.maxTexts, 64);
    assert.equal(DEFAULT_ITEM_LIMITS.maxTextChars, 2000);
    assert.deepEqual(checkItemTexts(['😀'.repeat(2000)], DEFAULT_ITEM_LIMITS), [], '2,000 emoji are 4,000 UTF-16 units but 2,000 characters');
    assert.deepEqual(checkItemTexts(['x'.repeat(2001)], DEFAULT_ITEM_LIMITS), ['text 0: 2001 characters; at most 2000']);
  });

  test('bad texts: not a list, empty list, empty or whitespace, a lone surrogate, too many, too long — all listed', () => {
    const l = { maxTexts: 3, maxTextChars: 10 };
    assert.match(checkItemTexts('a red dress', l)[0]!, /texts must be a list of strings; got string/);
    assert.match(checkItemTexts([], l)[0]!, /texts is empty/);
    const problems = checkItemTexts(['ok', '   ', 'a\ud800b', 'x'.repeat(11), 7], l);
    assert.deepEqual(problems, [
      '5 texts; at most 3 per item',
      'text 1: empty or only whitespace',
      'text 2: not well-formed Unicode (lone surrogate), i.e. not encodable as UTF-8',
      'text 3: 11 characters; at most 10',
      'text 4: expected a string but received number',
    ]);
  });

  test('10,000 texts and a 1 MB text are refused quickly with a bounded message', () => {
    const t0 = performance.now();
    const many = checkItemTexts(Array.from({ length: 10_000 }, () => ' '), DEFAULT_ITEM_LIMITS);
    assert.equal(many[0], '10000 texts; at most 64 per item');
    assert.equal(many.length, 12, 'the count, ten bad texts, and how many more');
    assert.equal(many.at(-1), '... and 9990 more bad texts');
    assert.deepEqual(checkItemTexts(['x'.repeat(1_000_000)], DEFAULT_ITEM_LIMITS), ['text 0: 1000000 characters; at most 2000']);
    assert.ok(performance.now() - t0 < 5000);
  });

  test('meta: an object only, depth and size limited; a very deep value costs no stack', () => {
    const limits = { maxDepth: 3, maxBytes: 64 };
    assert.deepEqual(checkMeta({ sku: 'A1', tags: ['x'] }, limits), []);
    assert.deepEqual(checkMeta(deep(3), limits), []);
    assert.deepEqual(checkMeta(deep(4), limits), ['meta is nested more than 3 levels deep (at meta.a.a.a)']);
    assert.match(checkMeta({ s: 'x'.repeat(100) }, limits)[0]!, /^meta is 108 bytes as JSON, over the 64-byte limit$/);
    assert.match(checkMeta(['a'], limits)[0]!, /meta must be a JSON object; got an array/);
    assert.match(checkMeta(null, limits)[0]!, /got null/);
    assert.match(checkMeta('x', limits)[0]!, /got string/);
    let v: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) v = { v };
    assert.deepEqual(checkMeta(v, limits), ['meta is nested more than 3 levels deep (at meta.v.v.v)']);
  });

  test('checkItem lists text and meta problems together; the code names texts first', () => {
    const p = checkItem({ texts: [''], meta: deep(17) }, DEFAULT_ITEM_LIMITS)!;
    assert.equal(p.code, 'MATCHD_TEXT_INVALID');
    assert.equal(p.problems.length, 2);
    assert.equal(checkItem({ meta: deep(17) }, DEFAULT_ITEM_LIMITS)!.code, 'MATCHD_META_INVALID');
    assert.equal(checkItem({}, DEFAULT_ITEM_LIMITS), undefined);
  });
});

describe('admission (the core at submit)', () => {
  test('good texts and meta pass; no texts under a rule with texts: the rule texts apply (nothing journalled as texts)', () => {
    assert.deepEqual(admit(config, 'colours', job({ texts: ['red'], meta: { sku: 'A1' } })), { ok: true, texts: ['red'], meta: { sku: 'A1' } });
    assert.deepEqual(admit(config, 'colours', job({})), { ok: true, meta: {} });
  });

  test('texts: per-item without texts: MATCHD_TEXTS_REQUIRED — failed by default, refused for HTTP intake', () => {
    const failed = admit(config, 'titles', job({ meta: { sku: 'A1' } }));
    assert.equal(failed.ok && failed.failed?.code, 'MATCHD_TEXTS_REQUIRED');
    assert.deepEqual(failed.ok && failed.meta, { sku: 'A1' }, 'the meta still travels with the error');
    const refused = admit(config, 'titles', job({ onInvalid: 'refuse' }));
    assert.equal(!refused.ok && refused.code, 'MATCHD_TEXTS_REQUIRED');
  });

  test('over the limits: failed with the code (bad meta dropped, good meta kept) or refused with every problem', () => {
    const texts = admit(config, 'colours', job({ texts: ['a', 'b', 'c', 'd'], meta: { sku: 'A1' } }));
    assert.ok(texts.ok);
    assert.equal(texts.failed?.code, 'MATCHD_TEXT_INVALID');
    assert.equal(texts.texts, undefined);
    assert.deepEqual(texts.meta, { sku: 'A1' });
    const meta = admit(config, 'titles', job({ texts: ['red'], meta: deep(5) }));
    assert.ok(meta.ok);
    assert.equal(meta.failed?.code, 'MATCHD_META_INVALID');
    assert.deepEqual(meta.meta, {});
    const refused = admit(config, 'colours', job({ texts: ['x'.repeat(11)], meta: deep(5), onInvalid: 'refuse' }));
    assert.ok(!refused.ok);
    assert.equal(refused.code, 'MATCHD_TEXT_INVALID');
    assert.deepEqual(refused.problems, ['text 0: 11 characters; at most 10', 'meta is nested more than 3 levels deep (at meta.a.a.a)']);
  });

  test('a source that already failed the item keeps its own code', () => {
    const r = admit(config, 'titles', job({ failed: { code: 'MATCHD_COMPANION_INVALID', message: 'photo.txt: invalid UTF-8' } }));
    assert.equal(r.ok && r.failed?.code, 'MATCHD_COMPANION_INVALID');
  });
});

describe('config', () => {
  test("texts: per-item is the only word a rule's texts may be; items limits must be positive", () => {
    assert.throws(() => parseConfig('rules: { r: { texts: per-image } }'), /rules\.r\.texts/);
    assert.throws(() => parseConfig('rules: { r: { texts: [] } }'), /a rule needs at least one text \(or texts: per-item\)/);
    assert.throws(() => parseConfig('items: { maxTexts: 0 }\nrules: { r: { texts: [x] } }'), /items\.maxTexts/);
    assert.equal(parseConfig('rules: { r: { texts: per-item } }').rules.r!.texts, 'per-item');
  });

  test('callbacks: a rule naming an endpoint that is not configured is refused at start-up; bad secrets too', () => {
    assert.throws(
      () => parseConfig('rules: { r: { texts: [x], actions: { default: [{ callback: { endpoint: crm } }] } } }'),
      /rules\.r\.actions\.default\.0\.callback\.endpoint: unknown endpoint 'crm' \(callbacks\.endpoints: none\)/,
    );
    assert.throws(() => parseConfig('callbacks: { endpoints: { crm: { url: "ftp://x", secret: "not a secret!" } } }\nrules: { r: { texts: [x] } }'), (e: Error) =>
      /callbacks\.endpoints\.crm\.url: url must be an http\(s\) URL/.test(e.message) && /callbacks\.endpoints\.crm\.secret: secret must be a Standard Webhooks secret/.test(e.message));
  });
});
