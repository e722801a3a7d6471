// The graph cache (src/core/graph-cache.ts): ORT's optimised graph with pre-packed weights written once, then loaded
// in its place with outputs identical bit for bit — for models stored in one file and with external data (CLIP towers,
// a GME package) — keyed by content, safe with concurrent processes, and never fatal when the cache itself fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InferenceSession, type Tensor } from '../../src/core/engine.ts';
import { graphCacheDir, graphCacheKey, modelFiles } from '../../src/core/graph-cache.ts';
import { importPackage, makeCheckpoint, patchPositions, randomPixels } from '../fixtures/gme.ts';
import { hfModel } from '../fixtures/hf-models.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { randomFloat32 } from '../fixtures/onnx-builder.ts';
import { repoRoot } from '../fixtures/packages.ts';

type Feeds = Record<string, Tensor>;

const pixels = (batch: number): Feeds => ({ pixel_values: { type: 'float32', dims: [batch, 3, 224, 224], data: randomFloat32(batch * 3 * 224 * 224, batch) } });

/** Every output of `file` for each feed set, without the cache and through it (first load, then a second one). */
async function throughCache(cache: string, file: string, feedSets: Feeds[]): Promise<{ statuses: string[]; outputs: Float32Array[][] }> {
  const statuses: string[] = [];
  const outputs: Float32Array[][] = [];
  for (const graphCache of [false, cache, cache] as const) {
    const s = await InferenceSession.open(file, { graphCache, graphCacheMinBytes: 0, intraOpThreads: 1 });
    statuses.push(s.graphCache);
    const outs: Float32Array[] = [];
    for (const feeds of feedSets) for (const t of Object.values(await s.run(feeds))) outs.push(t.data as Float32Array);
    outputs.push(outs);
    s.dispose();
  }
  return { statuses, outputs };
}

function entries(cache: string): string[] {
  return fs.readdirSync(cache).filter((n) => n !== 'hashes').sort();
}

describe('engine: graph cache', () => {
  let work: string;
  let clip: string;
  let clipExternal: string;
  before(() => {
    work = tmpDir('matchd-graph-cache-');
    clip = hfModel({ family: 'clip' });
    clipExternal = hfModel({ family: 'clip', externalData: true });
  });
  after(cleanupTmpDirs);

  for (const [what, model] of [['one file', () => path.join(clip, 'onnx', 'vision_model.onnx')], ['external data', () => path.join(clipExternal, 'onnx', 'vision_model.onnx')]] as const) {
    test(`a CLIP vision tower (${what}): stored, then a hit; outputs identical bit for bit at batch 1 and 3`, async () => {
      const cache = fs.mkdtempSync(path.join(work, 'cache-'));
      const { statuses, outputs } = await throughCache(cache, model(), [pixels(1), pixels(3)]);
      assert.deepEqual(statuses, ['off', 'stored', 'hit']);
      assert.deepEqual(outputs[1], outputs[0]);
      assert.deepEqual(outputs[2], outputs[0]);
      const [entry, ...rest] = entries(cache);
      assert.deepEqual(rest, [], 'one entry, no temporary folder left');
      // ORT wrote the initializers (and the pre-packed weights) to external data beside the optimised graph.
      assert.deepEqual(fs.readdirSync(path.join(cache, entry!)).sort(), ['meta.json', 'model.onnx', 'model.onnx.data']);
      assert.ok(fs.statSync(path.join(cache, entry!, 'model.onnx.data')).size > fs.statSync(path.join(cache, entry!, 'model.onnx')).size);
      const meta = JSON.parse(fs.readFileSync(path.join(cache, entry!, 'meta.json'), 'utf8'));
      assert.equal(meta.source, model());
    });
  }

  test('a GME package (external data, decoder and vision tower): outputs identical through the cache', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'gme-'));
    const pkg = importPackage(makeCheckpoint(path.join(dir, 'ckpt'), { seed: 5 }), path.join(dir, 'pkg'));
    const cache = path.join(dir, 'cache');
    const patches = 16;
    const vision = await throughCache(cache, path.join(pkg, 'vision.onnx'), [{
      pixel_values: { type: 'float32', dims: [1, patches, 1176], data: randomPixels(patches, 3) },
      position_ids: { type: 'int64', dims: [patches, 2], data: patchPositions(4, 4) },
    }]);
    assert.deepEqual(vision.statuses, ['off', 'stored', 'hit']);
    assert.deepEqual(vision.outputs[2], vision.outputs[0]);
    const hidden = vision.outputs[0]![0]!.length / (patches / 4);
    const ids = BigInt64Array.from({ length: 12 }, (_, i) => BigInt(100 + i));
    const decoder = await throughCache(cache, path.join(pkg, 'decoder.onnx'), [{
      input_ids: { type: 'int64', dims: [2, 6], data: ids },
      attention_mask: { type: 'int64', dims: [2, 6], data: BigInt64Array.from({ length: 12 }, (_, i) => (i % 6 < 5 || i < 6 ? 1n : 0n)) },
      image_embeds: { type: 'float32', dims: [0, hidden], data: new Float32Array(0) },
    }]);
    assert.deepEqual(decoder.statuses, ['off', 'stored', 'hit']);
    assert.deepEqual(decoder.outputs[2], decoder.outputs[0]);
    assert.equal(entries(cache).length, 2);
  });

  test('keyed by content and ORT version: a changed model is stored again and its old entry pruned', async () => {
    const cache = fs.mkdtempSync(path.join(work, 'cache-'));
    const copy = path.join(fs.mkdtempSync(path.join(work, 'model-')), 'vision_model.onnx');
    fs.copyFileSync(path.join(clip, 'onnx', 'vision_model.onnx'), copy);
    const open = async () => {
      const s = await InferenceSession.open(copy, { graphCache: cache, graphCacheMinBytes: 0 });
      const status = s.graphCache;
      s.dispose();
      return status;
    };
    assert.equal(await open(), 'stored');
    const [first] = entries(cache);
    assert.equal(await open(), 'hit');
    // Same size, same name, one byte of the producer string changed: a different model as far as the key goes.
    const bytes = fs.readFileSync(copy);
    const at = bytes.indexOf(Buffer.from('pytorch'));
    assert.ok(at > 0);
    bytes[at] = 'P'.charCodeAt(0);
    fs.writeFileSync(copy, bytes);
    assert.equal(await open(), 'stored');
    const now = entries(cache);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], first);
    const { files } = modelFiles(copy);
    assert.notEqual(await graphCacheKey(cache, files, '1.29.0', 'all'), await graphCacheKey(cache, files, '1.30.0', 'all'));
    assert.notEqual(await graphCacheKey(cache, files, '1.29.0', 'all'), await graphCacheKey(cache, files, '1.29.0', 'basic'));
    // Its model file deleted, the entry goes at the next store of any model.
    fs.rmSync(copy);
    const other = await InferenceSession.open(path.join(clip, 'onnx', 'text_model.onnx'), { graphCache: cache, graphCacheMinBytes: 0 });
    assert.equal(other.graphCache, 'stored');
    other.dispose();
    assert.deepEqual(entries(cache).map((e) => JSON.parse(fs.readFileSync(path.join(cache, e, 'meta.json'), 'utf8')).source), [path.join(clip, 'onnx', 'text_model.onnx')]);
  });

  test('four processes with a cold cache at once: all load, the same outputs, one entry, nothing left over', async () => {
    const cache = path.join(work, 'concurrent');
    const model = path.join(clipExternal, 'onnx', 'vision_model.onnx');
    const child = path.join(repoRoot, 'test', 'fixtures', 'graph-cache-child.ts');
    const runs = await Promise.all(Array.from({ length: 4 }, () => new Promise<{ status: string; sum: number }>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', child, cache, model], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (c: Buffer) => (out += c));
      p.stderr.on('data', (c: Buffer) => (err += c));
      p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
    })));
    for (const r of runs) assert.ok(r.status === 'stored' || r.status === 'hit', r.status);
    assert.equal(new Set(runs.map((r) => r.sum)).size, 1, 'every process computed the same outputs');
    assert.equal(entries(cache).length, 1, `entries: ${entries(cache).join(', ')}`);
  });

  test('a damaged entry is not used: a truncated data file is rewritten; an unloadable graph is removed, the model loads', async () => {
    const cache = fs.mkdtempSync(path.join(work, 'cache-'));
    const model = path.join(clip, 'onnx', 'vision_model.onnx');
    const open = async () => {
      const warnings: string[] = [];
      const s = await InferenceSession.open(model, { graphCache: cache, graphCacheMinBytes: 0, logger: { warn: (_o, m) => warnings.push(m) } });
      const status = s.graphCache;
      const out = await s.run(pixels(1));
      s.dispose();
      return { status, warnings, out: Object.values(out)[0]!.data as Float32Array };
    };
    const good = await open();
    assert.equal(good.status, 'stored');
    const entry = path.join(cache, entries(cache)[0]!);
    fs.truncateSync(path.join(entry, 'model.onnx.data'), 1000);
    const afterTruncation = await open();
    assert.equal(afterTruncation.status, 'stored', 'sizes differ from meta.json: stored again');
    assert.deepEqual(afterTruncation.out, good.out);
    // Same size, garbage content: ORT refuses it, the entry goes, the model itself loads.
    const graph = path.join(entry, 'model.onnx');
    fs.writeFileSync(graph, Buffer.alloc(fs.statSync(graph).size, 0x5a));
    const garbage = await open();
    assert.equal(garbage.status, 'failed');
    assert.match(garbage.warnings.join('\n'), /did not load \(removed\)/);
    assert.deepEqual(garbage.out, good.out);
    assert.deepEqual(entries(cache), []);
    assert.equal((await open()).status, 'stored');
  });

  test('a cache folder that cannot be created: a warning, and the model loads without it', async () => {
    const blocker = path.join(work, 'not-a-folder');
    fs.writeFileSync(blocker, 'x');
    const warnings: string[] = [];
    const s = await InferenceSession.open(path.join(clip, 'onnx', 'vision_model.onnx'), {
      graphCache: path.join(blocker, 'cache'), graphCacheMinBytes: 0, logger: { warn: (_o, m) => warnings.push(m) },
    });
    assert.equal(s.graphCache, 'failed');
    assert.match(warnings.join('\n'), /graph cache unavailable/);
    assert.equal(Object.values(await s.run(pixels(1)))[0]!.dims[0], 1);
    s.dispose();
  });

  test('small and large models are not cached; graphCache: false is off; the folder comes from the option, then the environment', async () => {
    const cache = path.join(work, 'small');
    const s = await InferenceSession.open(path.join(clip, 'onnx', 'vision_model.onnx'), { graphCache: cache });
    assert.equal(s.graphCache, 'small'); // below the 64 MiB default
    s.dispose();
    const large = await InferenceSession.open(path.join(clip, 'onnx', 'vision_model.onnx'), { graphCache: cache, graphCacheMinBytes: 0, graphCacheMaxBytes: 1000 });
    assert.equal(large.graphCache, 'large');
    large.dispose();
    assert.ok(!fs.existsSync(cache), 'nothing written for a small or a large model');
    assert.equal(graphCacheDir(false, { MATCHD_GRAPH_CACHE: '/x' }), null);
    assert.equal(graphCacheDir('/a/b', { MATCHD_GRAPH_CACHE: '/x' }), '/a/b');
    assert.equal(graphCacheDir(undefined, { MATCHD_GRAPH_CACHE: '/x' }), '/x');
    assert.equal(graphCacheDir(undefined, { MATCHD_GRAPH_CACHE: 'off' }), null);
    assert.equal(graphCacheDir(undefined, { XDG_CACHE_HOME: '/c' }), '/c/matchd/graphs');
  });

  test('bad options: MATCHD_BAD_OPTION naming them', async () => {
    const model = path.join(clip, 'onnx', 'vision_model.onnx');
    await assert.rejects(InferenceSession.open(model, { graphCache: 42 as unknown as string }), { code: 'MATCHD_BAD_OPTION', message: /graphCache/ });
    await assert.rejects(InferenceSession.open(model, { graphCacheMinBytes: -1 }), { code: 'MATCHD_BAD_OPTION', message: /graphCacheMinBytes/ });
  });
});
