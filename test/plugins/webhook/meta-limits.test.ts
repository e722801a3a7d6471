// `meta` limits at intake: a client's meta nested too deeply or too large is a 400 MATCHD_META_INVALID — never a
// 500, never a job that is accepted and then cannot be recorded. Meta at the limit is accepted and its job finishes.
// The limit check (src/core/meta.ts) is iterative: any depth, and cycles, are safe; a source that submits meta past
// the limits gets its item failed with MATCHD_META_INVALID (the core checks every source's items).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { DEFAULT_META_LIMITS as META_LIMITS, checkMeta } from '../../../src/core/meta.ts';

const metaProblem = (v: unknown) => (v === undefined ? null : (checkMeta(v, META_LIMITS)[0] ?? null));
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { TOKEN, postJob, red, startDaemon, stopDaemons, webhookWorkspace } from '../../fixtures/webhook.ts';

/** `{"a":{"a":...{"a":1}}}` with `depth` objects, as JSON text (built without recursion). */
const nestedJson = (depth: number) => '{"a":'.repeat(depth - 1) + '{"a":1}' + '}'.repeat(depth - 1);
const body = (metaJson: string) => `{"image":"${red().toString('base64')}","meta":${metaJson}}`;

describe('webhook intake: meta limits', () => {
  afterEach(stopDaemons);
  after(cleanupTmpDirs);

  test('too deep (100 000 levels, or one past the limit) or too large → 400; at the limit → accepted and recorded', async () => {
    const { daemon, base } = await startDaemon(webhookWorkspace());
    for (const [what, meta] of [
      ['100 000 levels', nestedJson(100_000)],
      ['3 000 levels', nestedJson(3_000)],
      [`${META_LIMITS.maxDepth + 1} levels`, nestedJson(META_LIMITS.maxDepth + 1)],
      ['an array nested too deeply', `{"list":${'['.repeat(40)}${']'.repeat(40)}}`],
      ['20 KB', JSON.stringify({ note: 'x'.repeat(20_000) })],
    ] as const) {
      const r = await postJob(base, body(meta));
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.json).slice(0, 300)}`);
      assert.equal(r.json.error.code, 'MATCHD_META_INVALID', what);
      assert.match(r.json.error.message, /meta is (nested more than 16 levels|\d+ bytes as JSON, over the 16384-byte limit)/, what);
    }
    assert.equal(daemon.journalForTools.counts().queued + daemon.journalForTools.counts().done, 0, 'no job was created');

    const ok = await postJob(base, body(nestedJson(META_LIMITS.maxDepth)), {}, '?wait=20s');
    assert.equal(ok.status, 200, JSON.stringify(ok.json).slice(0, 300));
    assert.equal(ok.json.state, 'done', 'the job at the limit was scored and recorded');
  });

  test('multipart meta is checked the same way', async () => {
    const { base } = await startDaemon(webhookWorkspace());
    const form = new FormData();
    form.append('image', new Blob([red()]), 'red.jpg');
    form.append('meta', nestedJson(50));
    const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).error.code, 'MATCHD_META_INVALID');
  });

  test('checkMeta: any depth, cycles, non-JSON values, the size limit; the core refuses a source\'s bad meta', async () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    assert.match(metaProblem(deep)!, /nested more than 16 levels deep \(at meta\.a\.a/);
    const cyclic: Record<string, unknown> = { name: 'x' };
    cyclic.self = cyclic;
    assert.match(metaProblem(cyclic)!, /nested more than 16 levels/);
    assert.match(metaProblem({ n: 10n })!, /meta\.n is a bigint/);
    assert.match(metaProblem([1, 2])!, /must be a JSON object/);
    assert.match(metaProblem({ s: 'é'.repeat(9000) })!, /18\d{3} bytes as JSON/);
    assert.equal(metaProblem({ a: [1, { b: null }], c: 'ok' }), null);
    assert.equal(metaProblem(undefined), null);

    const { daemon } = await startDaemon(webhookWorkspace());
    const r = daemon.submit('api', 'colours', { dedupeKey: 'deep', image: { path: path.join('/nonexistent', 'x.png') }, meta: deep, onInvalid: 'refuse' });
    assert.ok(!r.accepted && r.reason === 'invalid' && r.code === 'MATCHD_META_INVALID', JSON.stringify(r));
    assert.match(!r.accepted && r.reason === 'invalid' ? r.problems.join() : '', /nested more than 16 levels/);
  });
});
