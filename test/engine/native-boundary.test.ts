// The addon's boundary: what it exports is what native.ts declares, every code it can throw is in the catalogue,
// every entry point is guarded, and a native rejection names the JavaScript that made the call.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InferenceSession } from '../../src/core/engine.ts';
import { ERROR_CODES, MatchdError } from '../../src/core/errors.ts';
import { ADDON_EXPORTS, addon } from '../../src/core/native.ts';
import { openSession } from '../fixtures/engine.ts';
import { cleanupTmpDirs, tmpDir, writeCorruptModel } from '../fixtures/models.ts';
import { GraphBuilder } from '../fixtures/onnx-builder.ts';

const nativeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native');

/** Every "MATCHD_…" string literal in the addon's sources, with the files it appears in. */
function nativeCodes(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const f of fs.readdirSync(nativeDir).filter((n) => /\.(h|cc)$/.test(n))) {
    for (const m of fs.readFileSync(path.join(nativeDir, f), 'utf8').matchAll(/"(MATCHD_[A-Z0-9_]+)"/g)) {
      found.set(m[1]!, [...(found.get(m[1]!) ?? []), f]);
    }
  }
  return found;
}

const isCode = (expected: string) => (e: unknown) => {
  assert.ok(e instanceof MatchdError, `expected a MatchdError, got ${String(e)}`);
  assert.equal(e.code, expected, e.message);
  return true;
};

describe('native boundary', () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => cleanupTmpDirs());

  test('every code in native/ (errors.h and the sources) is in the catalogue of src/core/errors.ts', () => {
    const codes = nativeCodes();
    // errors.h declares eight codes today; an empty scan would prove nothing.
    assert.ok(codes.size >= 8, `found only ${[...codes.keys()].join(', ')} in ${nativeDir}`);
    const header = fs.readFileSync(path.join(nativeDir, 'errors.h'), 'utf8');
    assert.match(header, /"MATCHD_INTERNAL"/);
    const missing = [...codes].filter(([c]) => !(c in ERROR_CODES)).map(([c, files]) => `${c} (${files.join(', ')})`);
    assert.deepEqual(missing, [], 'native codes missing from ERROR_CODES');
  });

  test('the addon exports exactly what native.ts declares', () => {
    const raw = Object.keys(addon()).sort();
    assert.deepEqual(raw, [...ADDON_EXPORTS].sort());
    for (const name of ADDON_EXPORTS) assert.equal(typeof addon()[name], 'function', name);
  });

  test('sessions are instances of the declared Session class, which JS cannot construct', async () => {
    const model = new GraphBuilder('relu').input('x', 'float32', ['n']).node('Relu', ['x'], ['y']).output('y', 'float32', ['n']).write(path.join(dir, 'relu.onnx'));
    const s = await openSession(model);
    try {
      assert.ok((s as unknown as { native: unknown }).native instanceof addon().Session); // the wrapper keeps it private
      const Ctor = addon().Session as unknown as new () => unknown;
      assert.throws(() => new Ctor(), isCode('MATCHD_BAD_INPUT'));
    } finally {
      s.dispose();
    }
  });

  test('versions and setErrorClass are guarded: a bad argument is a coded error', () => {
    const v = addon().versions();
    assert.match(v.onnxruntime, /^\d+\.\d+\.\d+/);
    assert.ok(v.providers.includes('CPUExecutionProvider'), v.providers.join(','));
    const setErrorClass = addon().setErrorClass as unknown as (x: unknown) => void;
    assert.throws(() => setErrorClass(42), isCode('MATCHD_BAD_INPUT'));
    // The class handed over at load is still in place.
    assert.throws(() => new (addon().Session as unknown as new () => unknown)(), (e) => e instanceof MatchdError);
  });

  test('a rejected load carries the stack of the JS that called it', async () => {
    const corrupt = writeCorruptModel(dir);
    async function openFromTheCaller(): Promise<InferenceSession> {
      return await InferenceSession.open(corrupt, { graphCache: false });
    }
    const err = await openFromTheCaller().then(() => assert.fail('the corrupt model loaded'), (e: unknown) => e);
    assert.ok(err instanceof MatchdError && err.code === 'MATCHD_MODEL_LOAD', String(err));
    assert.match(err.stack ?? '', /^MatchdError: .*corrupt\.onnx/);
    assert.match(err.stack ?? '', /openFromTheCaller/, `no caller frame in: ${err.stack}`);
  });

  test('a run that fails inside ONNX Runtime rejects with the stack of the JS that called it', async () => {
    // a [n] + b [m]: shapes ORT can check only at run time, so the failure comes back from the engine thread.
    const model = new GraphBuilder('add2')
      .input('a', 'float32', ['n'])
      .input('b', 'float32', ['m'])
      .node('Add', ['a', 'b'], ['y'])
      .output('y', 'float32', ['k'])
      .write(path.join(dir, 'add2.onnx'));
    const s = await openSession(model);
    try {
      async function runFromTheCaller() {
        return await s.run({ a: { type: 'float32', dims: [3], data: new Float32Array(3) }, b: { type: 'float32', dims: [2], data: new Float32Array(2) } });
      }
      const err = await runFromTheCaller().then(() => assert.fail('the run succeeded'), (e: unknown) => e);
      assert.ok(err instanceof MatchdError && err.code === 'MATCHD_RUN_FAILED', String(err));
      assert.match(err.stack ?? '', /runFromTheCaller/, `no caller frame in: ${err.stack}`);
      assert.equal(s.activeRuns, 0);
    } finally {
      s.dispose();
    }
  });

  test('a refusal during the call (bad argument) still throws synchronously, with its own stack', async () => {
    const resize = addon().resizeImage as unknown as (img: unknown, spec: unknown) => Promise<Buffer>;
    function resizeFromTheCaller() {
      return resize({ data: new Uint8Array(3), width: 1, height: 1, channels: 3 }, { width: 0, height: 1 });
    }
    assert.throws(() => void resizeFromTheCaller(), (e: unknown) => e instanceof MatchdError && /resizeFromTheCaller/.test(e.stack ?? ''));
  });
});
