// The daemon in-process: the main job end to end, hostile files to `error`, start-up files, slow writers,
// plugin lifecycle order, metrics and health.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { MatchdError } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { colourImage, listFiles, waitFor, workspace, type Workspace } from '../fixtures/daemon.ts';
import { pngBomb } from '../fixtures/images.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { sampleImages, samplesDir } from '../fixtures/packages.ts';

const running: Daemon[] = [];
async function start(ws: Workspace): Promise<Daemon> {
  const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
  running.push(d);
  return d;
}

/** Images (not sidecars) per band folder. */
function outputs(ws: Workspace): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of listFiles(ws.sorted).filter((f) => !/\.(json|txt)$/.test(f))) (out[path.dirname(f)] ??= []).push(path.basename(f));
  return out;
}

describe('daemon: main job', () => {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
  });
  after(cleanupTmpDirs);

  test('dropped images end in exactly one band folder each, with a sidecar of cosine, score and band per text', async () => {
    const ws = workspace();
    await start(ws);
    for (const f of fs.readdirSync(samplesDir)) fs.copyFileSync(path.join(samplesDir, f), path.join(ws.inbox, f));
    const n = sampleImages().length;
    // Every image with its sidecar, and red.jpg's companions (red.txt, red.json) moved along with it.
    await waitFor(() => listFiles(ws.sorted).length === 2 * n + 2 && listFiles(ws.inbox).length === 0, 'every sample sorted with its sidecar');
    const out = outputs(ws);
    assert.deepEqual(out.adopt, ['red.jpg']);
    assert.ok(out.reject!.includes('blue.png') && out.reject!.includes('green.webp'));
    const side = JSON.parse(fs.readFileSync(path.join(ws.sorted, 'adopt', 'red.jpg.json'), 'utf8'));
    assert.equal(side.outcome, 'adopt');
    assert.equal(side.rule, 'colours');
    assert.equal(side.source, 'inbox');
    assert.equal(side.model.name, 'demo-colours');
    assert.deepEqual(Object.keys(side.results[0]).sort(), ['band', 'cosine', 'score', 'text', 'truncated']);
    assert.equal(side.results[0].text, 'a red product');
    assert.ok(side.results[0].cosine > 0.4);
    // red.jpg came with its own texts (samples/red.txt) and meta (samples/red.json).
    assert.deepEqual(side.results.map((r: { text: string }) => r.text), ['a red product', 'a blue product']);
    assert.deepEqual(side.meta, JSON.parse(fs.readFileSync(path.join(samplesDir, 'red.json'), 'utf8')).meta);
    assert.ok(fs.existsSync(path.join(ws.sorted, 'adopt', 'red.txt')));
  });

  test('hostile files go to error with their code while the daemon keeps working', async () => {
    const ws = workspace();
    const d = await start(ws);
    fs.writeFileSync(path.join(ws.inbox, 'notes.jpg'), 'this is text, not a JPEG');
    fs.writeFileSync(path.join(ws.inbox, 'empty.png'), '');
    fs.writeFileSync(path.join(ws.inbox, 'bomb.png'), pngBomb(50_000, 50_000)); // a header claiming 50000×50000
    await waitFor(() => listFiles(path.join(ws.sorted, 'error')).length === 6, 'three files in error, each with its sidecar');
    const code = (f: string) => JSON.parse(fs.readFileSync(path.join(ws.sorted, 'error', `${f}.json`), 'utf8')).error.code;
    assert.equal(code('notes.jpg'), 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(code('empty.png'), 'MATCHD_IMAGE_DECODE');
    assert.equal(code('bomb.png'), 'MATCHD_IMAGE_TOO_LARGE');
    await colourImage(path.join(ws.inbox, 'after.png'), [220, 20, 20]);
    await waitFor(() => outputs(ws).adopt?.includes('after.png'), 'a good image after the bad ones');
    assert.equal(d.health().status, 'ok');
  });

  test('files already in the inbox at start-up are processed', async () => {
    const ws = workspace();
    for (let i = 0; i < 5; i++) await colourImage(path.join(ws.inbox, `early-${i}.png`), [20, 40, 220]);
    await start(ws);
    await waitFor(() => outputs(ws).reject?.length === 5, 'the five early files');
  });

  test('a file written slowly over several seconds is not read before it is complete', async () => {
    const ws = workspace();
    await start(ws);
    const full = fs.readFileSync(path.join(samplesDir, 'red.jpg'));
    const file = path.join(ws.inbox, 'slow.jpg');
    const chunks = 8;
    for (let i = 0; i < chunks; i++) {
      fs.appendFileSync(file, full.subarray(Math.floor((i * full.length) / chunks), Math.floor(((i + 1) * full.length) / chunks)));
      await new Promise((r) => setTimeout(r, 250));
      assert.deepEqual(listFiles(ws.sorted), [], `nothing sorted while still being written (chunk ${i})`);
    }
    await waitFor(() => outputs(ws).adopt?.includes('slow.jpg'), 'the slow file, scored whole');
    assert.equal(fs.statSync(path.join(ws.sorted, 'adopt', 'slow.jpg')).size, full.length);
  });

  test('metrics and health respond on the admin address', async () => {
    const ws = workspace();
    const d = await start(ws);
    await colourImage(path.join(ws.inbox, 'm.png'), [220, 20, 20]);
    await waitFor(() => outputs(ws).adopt?.length === 1, 'one image scored');
    const base = `http://127.0.0.1:${d.adminAddress!.port}`;
    const health = (await (await fetch(`${base}/healthz`)).json()) as any;
    assert.equal(health.status, 'ok');
    assert.deepEqual(health.model, { name: 'demo-colours', version: '1', provider: 'cpu' });
    assert.equal(health.journal.ok, true);
    assert.equal(health.sources.inbox.state, 'ok');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /matchd_jobs_total\{outcome="adopt"\} 1/);
    assert.match(metrics, /matchd_batch_size_count [1-9]/);
    assert.match(metrics, /matchd_queue_depth /);
    assert.match(metrics, /matchd_compute_seconds_bucket/);
    // Node's process metrics under the standard names stock dashboards use (not matchd_process_process_...).
    assert.match(metrics, /^process_cpu_seconds_total \d/m);
    assert.match(metrics, /^process_resident_memory_bytes \d/m);
    assert.match(metrics, /^nodejs_heap_size_used_bytes \d/m);
    assert.match(metrics, /^nodejs_eventloop_lag_seconds \d/m);
    assert.doesNotMatch(metrics, /matchd_process_/);
    // An unknown route: the { error: { code, message } } shape of every HTTP error of matchd's.
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    const body = (await missing.json()) as any;
    assert.equal(body.error.code, 'MATCHD_REQUEST_INVALID');
    assert.match(body.error.message, /no route GET \/nope; this server has GET \/metrics, GET \/healthz, /);
    assert.deepEqual(body.routes.slice(0, 2), ['GET /metrics', 'GET /healthz'], 'then the web page\'s routes');
  });
});

describe('daemon: items known to be unusable at submit', () => {
  after(cleanupTmpDirs);
  const submitter = path.resolve(import.meta.dirname, '../fixtures/submit-plugin.ts');

  test('a job submitted as failed goes to the error outcome with its code, nothing decoded', async () => {
    const ws = workspace({
      sources: [{ type: submitter, name: 'direct', rule: 'colours', options: {} }],
      rules: { colours: { texts: ['red'], actions: { error: [{ sidecar: { to: 'out' } }] } } },
    });
    const d = await start(ws);
    const ctx = (globalThis as { __submitCtx?: import('../../src/core/plugin.ts').PluginContext }).__submitCtx!;
    const r = ctx.submit({ dedupeKey: 'x1', image: { path: path.join(ws.root, 'never-downloaded.png') }, failed: { code: 'MATCHD_IMAGE_TOO_LARGE', message: 'object is 9 GB' } });
    assert.ok(r.accepted);
    const job = await ctx.waitForJob(r.jobId, 10_000);
    assert.equal(job!.state, 'failed');
    assert.equal(job!.outcome, 'error');
    await waitFor(() => fs.existsSync(path.join(ws.root, 'out', 'never-downloaded.png.json')), 'the error sidecar');
    const side = JSON.parse(fs.readFileSync(path.join(ws.root, 'out', 'never-downloaded.png.json'), 'utf8'));
    assert.deepEqual(side.error, { code: 'MATCHD_IMAGE_TOO_LARGE', message: 'object is 9 GB' });
    await d.stop();
    running.length = 0;
  });
});

describe('daemon: plugins', () => {
  after(cleanupTmpDirs);
  const lifecycle = path.resolve(import.meta.dirname, '../fixtures/lifecycle-plugin.ts');

  test('sources start in config order and stop in reverse; external plugins load by module path', async () => {
    (globalThis as { __lifecycle?: string[] }).__lifecycle = [];
    const ws = workspace({ sources: ['a', 'b', 'c'].map((tag) => ({ type: lifecycle, name: tag, rule: 'colours', options: { tag } })) });
    const d = await start(ws);
    await d.stop();
    running.length = 0;
    assert.deepEqual((globalThis as { __lifecycle?: string[] }).__lifecycle, [
      'create a (a)', 'start a', 'create b (b)', 'start b', 'create c (c)', 'start c', 'stop c', 'stop b', 'stop a',
    ]);
  });

  test('a source that fails to start stops the ones already started, and the daemon refuses to start', async () => {
    (globalThis as { __lifecycle?: string[] }).__lifecycle = [];
    const ws = workspace({ sources: [
      { type: lifecycle, name: 'a', rule: 'colours', options: { tag: 'a' } },
      { type: lifecycle, name: 'b', rule: 'colours', options: { tag: 'b', failStart: true } },
    ] });
    await assert.rejects(start(ws), (e) => e instanceof MatchdError && e.code === 'MATCHD_PLUGIN' && /b refuses to start/.test(e.message));
    assert.deepEqual((globalThis as { __lifecycle?: string[] }).__lifecycle, ['create a (a)', 'start a', 'create b (b)', 'start b', 'stop b', 'stop a']);
  });

  test('a rule action no source of that rule provides is refused at start-up, naming the kinds it could use', async () => {
    const ws = workspace({
      rules: { colours: { texts: ['red'], actions: { adopt: [{ tag: { key: 'x' } }] } } },
    });
    await assert.rejects(start(ws), (e: unknown) => {
      assert.ok(e instanceof MatchdError && e.code === 'MATCHD_CONFIG_INVALID', String(e));
      assert.match(e.message, /rules\.colours\.actions\.adopt\.0\.tag: unknown action for source 'inbox' \(folder\); it can use move, copy, sidecar, log/);
      return true;
    });
  });

  test('bad plugin options and unknown types are listed together as MATCHD_CONFIG_INVALID', async () => {
    const ws = workspace({ sources: [
      { type: lifecycle, rule: 'colours', options: { tag: 3 } },
      { type: 'nonexistent-plugin-xyz', rule: 'colours' },
      { type: 'folder', rule: 'colours', options: { paths: [] } },
    ] });
    await assert.rejects(start(ws), (e: unknown) => {
      assert.ok(e instanceof MatchdError && e.code === 'MATCHD_CONFIG_INVALID', String(e));
      assert.match(e.message, /sources\.0\.options\.tag/);
      assert.match(e.message, /sources\.1\.type: .*nonexistent-plugin-xyz/);
      assert.match(e.message, /sources\.2\.options\.paths/);
      return true;
    });
  });
});
