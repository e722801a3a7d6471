// Folder source against real files: start-up scan, events, stability window, filters, dedupe, backpressure,
// rescans, polling, lost roots, stop(). Small windows keep it fast; waits poll for conditions rather than sleep.
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { type FolderConfig, FolderConfigSchema, FolderSource } from '../../../src/plugins/folder/index.ts';
import type { FolderTestOptions } from '../../../src/plugins/folder/source.ts';
import { unreadableSubfolderScenario } from '../../fixtures/folder-unreadable.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { type FakeContext, fakeContext, sleep, waitFor } from '../../fixtures/plugin-context.ts';

const running: FolderSource[] = [];

/** Start a source on `paths` with fast windows (stability 300 ms, min age 100 ms, no rescans) unless overridden. */
async function startSource(paths: string[], options: Partial<FolderConfig> = {}, testing?: FolderTestOptions, ctx: FakeContext = fakeContext()) {
  const config = FolderConfigSchema.parse({ paths, stabilityMs: 300, minAgeMs: 100, rescanMs: 0, ...options });
  const source = new FolderSource(ctx, config, testing);
  running.push(source);
  await source.start();
  return { ctx, source };
}

/** The key the source must use for `file` as it is now. */
function keyOf(file: string): string {
  const st = statSync(file, { bigint: true });
  return `folder:${file}:${st.size}:${Number(st.mtimeNs) / 1e6}:${st.ino}`;
}

const rels = (ctx: FakeContext) => ctx.accepted.map((j) => j.origin!.relativePath as string).sort();
const write = (dir: string, rel: string, data: string | Buffer = 'x') => {
  const file = path.join(dir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, data);
  return file;
};

describe('folder source', () => {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    cleanupTmpDirs();
  });

  test('files present at start-up are submitted once each, with key, origin and rule', async () => {
    const dir = tmpDir('matchd-folder-');
    const a = write(dir, 'a.jpg', 'aaa');
    const b = write(dir, 'b.png', 'bbbbb');
    const { ctx } = await startSource([dir], { rule: 'cars', rescanMs: 150 });
    await waitFor(() => ctx.accepted.length === 2, 'two submits');
    await sleep(700); // several ticks and rescans
    assert.equal(ctx.calls.length, 2);
    const byPath = new Map(ctx.accepted.map((j) => [j.image.path, j]));
    for (const [file, size] of [[a, 3], [b, 5]] as const) {
      const job = byPath.get(file)!;
      const st = statSync(file, { bigint: true });
      assert.equal(job.dedupeKey, keyOf(file));
      assert.equal(job.rule, 'cars');
      assert.deepEqual(job.origin, { root: dir, relativePath: path.basename(file), size, mtimeMs: Number(st.mtimeNs) / 1e6 });
    }
  });

  test('without a rule option the job carries none (the core applies the source rule)', async () => {
    const dir = tmpDir('matchd-folder-');
    write(dir, 'a.jpg');
    const { ctx } = await startSource([dir]);
    await waitFor(() => ctx.accepted.length === 1, 'a submit');
    assert.equal(ctx.accepted[0]!.rule, undefined);
  });

  test('a file dropped while running is submitted (watcher event; no rescans)', async () => {
    const dir = tmpDir('matchd-folder-');
    const { ctx } = await startSource([dir]);
    await sleep(100);
    const file = write(dir, 'new.webp', 'hello');
    await waitFor(() => ctx.accepted.length === 1, 'the new file');
    assert.equal(ctx.accepted[0]!.image.path, file);
    assert.equal(ctx.accepted[0]!.dedupeKey, keyOf(file));
  });

  test('a file moved in (rename) while running is submitted', async () => {
    const dir = tmpDir('matchd-folder-');
    const outside = tmpDir('matchd-folder-out-');
    const { ctx } = await startSource([dir]);
    const staged = write(outside, 'moved.jpg', 'data');
    renameSync(staged, path.join(dir, 'moved.jpg'));
    await waitFor(() => ctx.accepted.length === 1, 'the moved file');
    assert.equal(ctx.accepted[0]!.image.path, path.join(dir, 'moved.jpg'));
  });

  test('a file written slowly is submitted only after its last write + stabilityMs, with its final size', async () => {
    const dir = tmpDir('matchd-folder-');
    const stabilityMs = 1000;
    const { ctx } = await startSource([dir], { stabilityMs, minAgeMs: 100 });
    const file = path.join(dir, 'slow.jpg');
    const chunk = Buffer.alloc(1000, 7);
    writeFileSync(file, chunk);
    let lastWrite = Date.now();
    for (let i = 1; i < 9; i++) {
      await sleep(300);
      assert.equal(ctx.calls.length, 0, `submitted after ${i} of 9 chunks`);
      appendFileSync(file, chunk);
      lastWrite = Date.now();
    }
    await waitFor(() => ctx.accepted.length === 1, 'the finished file');
    const { job, at } = ctx.calls[0]!;
    assert.equal(job.origin!.size, 9000);
    assert.equal(job.dedupeKey, keyOf(file));
    assert.ok(at - lastWrite >= stabilityMs, `submitted ${at - lastWrite} ms after the last write`);
  });

  test('minAgeMs: a stable file waits until its mtime is old enough', async () => {
    const dir = tmpDir('matchd-folder-');
    const { ctx } = await startSource([dir], { stabilityMs: 100, minAgeMs: 1500 });
    const file = write(dir, 'young.jpg');
    const mtime = statSync(file).mtimeMs;
    await waitFor(() => ctx.accepted.length === 1, 'the file', 10_000);
    assert.ok(ctx.calls[0]!.at - mtime >= 1500, `submitted ${ctx.calls[0]!.at - mtime} ms after its mtime`);
  });

  test('an mtime in the future (skewed clock) does not hold a file back forever', async () => {
    const dir = tmpDir('matchd-folder-');
    const file = write(dir, 'future.jpg');
    const future = new Date(Date.now() + 365 * 24 * 3600 * 1000);
    utimesSync(file, future, future);
    const { ctx } = await startSource([dir]);
    await waitFor(() => ctx.accepted.length === 1, 'the file');
  });

  test('default ignores: dotfiles, *.tmp, *.part, *.crdownload, ~$*, @eaDir are never submitted', async () => {
    const dir = tmpDir('matchd-folder-');
    const early = ['.hidden.jpg', 'x.tmp', 'x.part', 'x.crdownload', 'photo.jpg.part', '~$x.jpg', '@eaDir/x.jpg', 'sub/@eaDir/y.jpg', '.dot/z.jpg'];
    const late = ['.late.jpg', 'late.tmp', 'late.part', 'late.crdownload', 'late.jpg.part', '~$late.jpg', '@eaDir/late.jpg', 'sub/@eaDir/late.jpg', '.dot/late.jpg'];
    for (const rel of early) write(dir, rel);
    // extensions: [] so only the ignore globs decide
    const { ctx } = await startSource([dir], { recursive: true, extensions: [], rescanMs: 150 });
    await sleep(100);
    for (const rel of late) write(dir, rel);
    write(dir, 'notes.bin');
    write(dir, 'sub/ok.jpg');
    await waitFor(() => ctx.accepted.length >= 2, 'the sentinels');
    await sleep(800);
    assert.deepEqual(rels(ctx), ['notes.bin', 'sub/ok.jpg']);
  });

  test('companions and manifests are never jobs, even with extensions: []; companions: { enabled: false } makes them files like any', async () => {
    const dir = tmpDir('matchd-folder-');
    for (const rel of ['photo.jpg', 'photo.txt', 'photo.json', 'matchd-manifest.csv', 'matchd-manifest.jsonl', 'notes.bin']) write(dir, rel, rel.endsWith('.json') ? '{}' : 'x');
    const { ctx } = await startSource([dir], { extensions: [] });
    await waitFor(() => ctx.accepted.length >= 2, 'photo.jpg and notes.bin');
    await sleep(600);
    assert.deepEqual(rels(ctx), ['notes.bin', 'photo.jpg']);
    assert.deepEqual(ctx.accepted.find((j) => j.origin!.relativePath === 'photo.jpg')!.companions?.map((c) => path.basename(c)).sort(), ['photo.json', 'photo.txt']);
    const other = tmpDir('matchd-folder-');
    for (const rel of ['photo.jpg', 'photo.txt']) write(other, rel);
    // The schema fills in the other companions options.
    const off = await startSource([other], { extensions: [], companions: { enabled: false } } as unknown as Partial<FolderConfig>);
    await waitFor(() => off.ctx.accepted.length === 2, 'both files, as jobs');
    assert.equal(off.ctx.accepted.find((j) => j.origin!.relativePath === 'photo.jpg')!.companions, undefined);
  });

  test('extension filter: non-images skipped, case-insensitive; custom ignore globs', async () => {
    const dir = tmpDir('matchd-folder-');
    for (const rel of ['notes.txt', 'noext', 'IMG_1.JPG', 'skip-me.jpg', 'raw/a.jpg', 'keep/raw/b.jpg', 'c.HEIC']) write(dir, rel);
    const { ctx } = await startSource([dir], { recursive: true, ignore: ['skip-*', 'raw/**'], rescanMs: 150 });
    await waitFor(() => ctx.accepted.length >= 3, 'three submits');
    write(dir, 'later.txt');
    write(dir, 'skip-later.png');
    write(dir, 'later.png');
    await waitFor(() => ctx.accepted.length >= 4, 'four submits');
    await sleep(800);
    assert.deepEqual(rels(ctx), ['IMG_1.JPG', 'c.HEIC', 'keep/raw/b.jpg', 'later.png']);
  });

  test('recursive: false ignores sub-folders; recursive: true sees them, including new folders', async () => {
    const flat = tmpDir('matchd-folder-');
    write(flat, 'top.jpg');
    write(flat, 'sub/deep.jpg');
    const a = await startSource([flat], { rescanMs: 150 });
    await waitFor(() => a.ctx.accepted.length === 1, 'top.jpg');
    write(flat, 'sub/later.jpg');
    write(flat, 'sub2/later.jpg');
    write(flat, 'top2.jpg');
    await waitFor(() => a.ctx.accepted.length === 2, 'top2.jpg');
    await sleep(700);
    assert.deepEqual(rels(a.ctx), ['top.jpg', 'top2.jpg']);

    const tree = tmpDir('matchd-folder-');
    write(tree, 'top.jpg');
    write(tree, 'sub/deep.jpg');
    write(tree, 'sub/a/b/deeper.jpg');
    const b = await startSource([tree], { recursive: true });
    await waitFor(() => b.ctx.accepted.length === 3, 'three files');
    // a folder moved in with files inside (rescans are off: the watcher must find them)
    const outside = tmpDir('matchd-folder-out-');
    write(outside, 'batch/x/1.jpg');
    write(outside, 'batch/2.jpg');
    renameSync(path.join(outside, 'batch'), path.join(tree, 'batch'));
    write(tree, 'sub/new.jpg');
    await waitFor(() => b.ctx.accepted.length === 6, 'six files');
    assert.deepEqual(rels(b.ctx), ['batch/2.jpg', 'batch/x/1.jpg', 'sub/a/b/deeper.jpg', 'sub/deep.jpg', 'sub/new.jpg', 'top.jpg']);
  });

  test('dedupe: unchanged files are not resubmitted across rescans; new content or mtime → new key', async () => {
    const dir = tmpDir('matchd-folder-');
    const file = write(dir, 'a.jpg', 'one');
    const { ctx } = await startSource([dir], { rescanMs: 100 });
    await waitFor(() => ctx.accepted.length === 1, 'first version');
    await sleep(800);
    assert.equal(ctx.calls.length, 1, 'resubmitted although unchanged');

    writeFileSync(file, 'version two');
    await waitFor(() => ctx.accepted.length === 2, 'second version');
    assert.equal(ctx.accepted[1]!.origin!.size, 11);
    assert.equal(ctx.accepted[1]!.dedupeKey, keyOf(file));
    assert.notEqual(ctx.accepted[1]!.dedupeKey, ctx.accepted[0]!.dedupeKey);

    const later = new Date(Date.now() - 60_000);
    utimesSync(file, later, later); // same size, other mtime
    await waitFor(() => ctx.accepted.length === 3, 'third version');
    assert.equal(ctx.accepted[2]!.dedupeKey, keyOf(file));
    await sleep(500);
    assert.equal(ctx.calls.length, 3);
  });

  test('dedupe: keys the core already knows (an earlier run) are skipped', async () => {
    const dir = tmpDir('matchd-folder-');
    const done = write(dir, 'done.jpg', 'old');
    const ctx = fakeContext();
    ctx.known.add(keyOf(done));
    await startSource([dir], { rescanMs: 100 }, undefined, ctx);
    write(dir, 'fresh.jpg');
    await waitFor(() => ctx.accepted.length === 1, 'fresh.jpg');
    await sleep(600);
    assert.deepEqual(rels(ctx), ['fresh.jpg']);
  });

  test('a file deleted before it is stable is dropped, never submitted', async () => {
    const dir = tmpDir('matchd-folder-');
    const { ctx, source } = await startSource([dir], { stabilityMs: 600 });
    const file = write(dir, 'brief.jpg');
    await waitFor(() => source.pending === 1, 'tracking');
    rmSync(file);
    await waitFor(() => source.pending === 0, 'dropped');
    await sleep(700);
    assert.equal(ctx.calls.length, 0);
  });

  test('backpressure: refused submits are retried later and nothing is lost', async () => {
    const dir = tmpDir('matchd-folder-');
    for (let i = 0; i < 5; i++) write(dir, `f${i}.jpg`);
    const ctx = fakeContext();
    ctx.refuse(4, 'backpressure', 200);
    const { source } = await startSource([dir], {}, undefined, ctx);
    await waitFor(() => ctx.accepted.length === 5, 'all five');
    const refused = ctx.calls.filter((c) => !c.result.accepted);
    assert.equal(refused.length, 4);
    // a refusal pauses every submit for retryAfterMs, so refusals are spaced out rather than hammered
    for (let i = 1; i < refused.length; i++) assert.ok(refused[i]!.at - refused[i - 1]!.at >= 190, 'retried before retryAfterMs');
    assert.deepEqual(rels(ctx), ['f0.jpg', 'f1.jpg', 'f2.jpg', 'f3.jpg', 'f4.jpg']);
    assert.equal(source.pending, 0);

    ctx.refuse(2, 'backpressure'); // no retryAfterMs: retried on a later tick
    write(dir, 'g.jpg');
    await waitFor(() => ctx.accepted.length === 6, 'g.jpg');
  });

  test('stopping: a "stopping" answer ends submitting', async () => {
    const dir = tmpDir('matchd-folder-');
    for (let i = 0; i < 3; i++) write(dir, `f${i}.jpg`);
    const ctx = fakeContext();
    ctx.refuse(100, 'stopping');
    await startSource([dir], { rescanMs: 100 }, undefined, ctx);
    await waitFor(() => ctx.calls.length === 1, 'one call');
    await sleep(700);
    assert.equal(ctx.calls.length, 1);
  });

  test('an aborted ctx.signal ends submitting', async () => {
    const dir = tmpDir('matchd-folder-');
    const ctx = fakeContext();
    await startSource([dir], { rescanMs: 100 }, undefined, ctx);
    ctx.abort();
    write(dir, 'a.jpg');
    await sleep(900);
    assert.equal(ctx.calls.length, 0);
  });

  test('unknown_rule: degraded health, no hammering of the core', async () => {
    const dir = tmpDir('matchd-folder-');
    write(dir, 'a.jpg');
    write(dir, 'b.jpg');
    const ctx = fakeContext();
    ctx.refuse(100, 'unknown_rule');
    await startSource([dir], { rule: 'nope', rescanMs: 100 }, undefined, ctx);
    await waitFor(() => ctx.healthLog.some((h) => h.state === 'degraded'), 'degraded health');
    await sleep(700);
    assert.equal(ctx.calls.length, 1);
    assert.ok(!ctx.healthLog.some((h) => h.state === 'ok'), 'a clean rescan must not hide an unknown rule');
  });

  test('a throwing ctx.submit degrades health and is retried; nothing crashes', async () => {
    const dir = tmpDir('matchd-folder-');
    write(dir, 'a.jpg');
    const ctx = fakeContext();
    const real = ctx.submit.bind(ctx);
    let throws = 1;
    ctx.submit = (job) => {
      if (throws-- > 0) throw new Error('journal is read-only');
      return real(job);
    };
    await startSource([dir], { rescanMs: 100 }, undefined, ctx);
    await waitFor(() => ctx.healthLog.some((h) => h.state === 'degraded' && /read-only/.test(h.detail ?? '')), 'degraded health');
    await waitFor(() => ctx.accepted.length === 1, 'the retried submit', 15_000);
    await waitFor(() => ctx.healthLog.at(-1)?.state === 'ok', 'health recovered');
  });

  test('rescan reconciles: with events missed, the periodic walk still finds new files', async () => {
    const dir = tmpDir('matchd-folder-');
    const { ctx } = await startSource([dir], { recursive: true, rescanMs: 200 }, { watch: false });
    write(dir, 'missed.jpg');
    write(dir, 'sub/missed-too.png');
    await waitFor(() => ctx.accepted.length === 2, 'both files');
    assert.deepEqual(rels(ctx), ['missed.jpg', 'sub/missed-too.png']);
  });

  test('control: with events missed and no rescans, a new file is not found', async () => {
    const dir = tmpDir('matchd-folder-');
    const { ctx } = await startSource([dir], { rescanMs: 0 }, { watch: false });
    write(dir, 'missed.jpg');
    await sleep(1200);
    assert.equal(ctx.calls.length, 0);
  });

  test('polling mode finds new files', async () => {
    const dir = tmpDir('matchd-folder-');
    write(dir, 'early.jpg');
    const { ctx } = await startSource([dir], { usePolling: true, pollIntervalMs: 100, recursive: true });
    await waitFor(() => ctx.accepted.length === 1, 'early.jpg');
    write(dir, 'late.jpg');
    write(dir, 'sub/later.jpg');
    await waitFor(() => ctx.accepted.length === 3, 'the new files');
    assert.deepEqual(rels(ctx), ['early.jpg', 'late.jpg', 'sub/later.jpg']);
  });

  test('several roots: origin names the root each file came from', async () => {
    const one = tmpDir('matchd-folder-');
    const two = tmpDir('matchd-folder-');
    write(one, 'a.jpg');
    write(two, 'b.jpg');
    const { ctx } = await startSource([one, two]);
    await waitFor(() => ctx.accepted.length === 2, 'both');
    const roots = Object.fromEntries(ctx.accepted.map((j) => [j.origin!.relativePath, j.origin!.root]));
    assert.deepEqual(roots, { 'a.jpg': one, 'b.jpg': two });
  });

  test('a root deleted while running: degraded, no crash; recreated: healthy and watched again', async () => {
    const parent = tmpDir('matchd-folder-');
    const dir = path.join(parent, 'inbox');
    mkdirSync(dir);
    const { ctx } = await startSource([dir], { rescanMs: 150 });
    rmSync(dir, { recursive: true });
    await waitFor(() => ctx.healthLog.some((h) => h.state === 'degraded' && h.detail!.includes(dir)), 'degraded health');
    mkdirSync(dir);
    await waitFor(() => ctx.healthLog.at(-1)?.state === 'ok', 'healthy again');
    write(dir, 'back.jpg');
    await waitFor(() => ctx.accepted.length === 1, 'a file in the recreated root');
  });

  test('an unreadable sub-folder degrades health; the rest is still processed', async () => {
    if (process.getuid?.() !== 0) return unreadableSubfolderScenario();
    // Root reads everything: run the scenario as an unprivileged user instead.
    const script = path.resolve(import.meta.dirname, '../../fixtures/folder-unreadable.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: path.resolve(import.meta.dirname, '../../..'), timeout: 60_000 });
    assert.equal(r.status, 0, `scenario as uid 65534 failed:\n${r.stderr}`);
  });

  test('stop() is idempotent and nothing is submitted after it', async () => {
    const dir = tmpDir('matchd-folder-');
    const { ctx, source } = await startSource([dir], { rescanMs: 100 });
    write(dir, 'pending.jpg'); // still inside its stability window at stop()
    await waitFor(() => source.pending === 1, 'tracking');
    const stops = [source.stop(), source.stop()];
    await Promise.all(stops);
    await source.stop();
    const stoppedAt = Date.now();
    write(dir, 'after.jpg');
    await sleep(900);
    assert.equal(ctx.calls.filter((c) => c.at >= stoppedAt).length, 0);
    assert.equal(ctx.calls.length, 0);
  });

  test('stop() during start() settles both', async () => {
    const dir = tmpDir('matchd-folder-');
    write(dir, 'a.jpg');
    const ctx = fakeContext();
    const source = new FolderSource(ctx, FolderConfigSchema.parse({ paths: [dir], stabilityMs: 100, minAgeMs: 0 }));
    const started = source.start();
    await source.stop();
    await started;
    await sleep(400);
    assert.equal(ctx.calls.length, 0);
  });
});
