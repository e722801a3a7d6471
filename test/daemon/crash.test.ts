// Crash safety: the daemon as a child process, 200+ files, SIGKILLed at several points and restarted; then drained.
// Every file must be in exactly one output folder — none lost, none duplicated — with a valid sidecar each.
// And SIGTERM drains cleanly with exit code 0.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { colourImage, listFiles, waitFor, workspace, type Workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

const children: ChildProcess[] = [];

/** Start `matchd run` on the workspace; `ready` resolves once it logs that it is running. */
function startChild(ws: Workspace): ChildProcess & { ready: Promise<void> } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', ws.configFile], {
    cwd: ws.root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MATCHD_LOG_LEVEL: 'info' },
  });
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"matchd running"')) resolve();
    });
  });
  child.stderr!.on('data', (d: Buffer) => process.env.MATCHD_TEST_VERBOSE && process.stderr.write(d));
  children.push(child);
  return Object.assign(child, { ready });
}

const exited = (c: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) resolve({ code: c.exitCode, signal: c.signalCode });
    else c.once('exit', (code, signal) => resolve({ code, signal }));
  });

/** Output images (sidecars excluded) by name → folders holding one. */
function placements(ws: Workspace): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const f of listFiles(ws.sorted).filter((f) => !f.endsWith('.json'))) {
    const name = path.basename(f);
    m.set(name, [...(m.get(name) ?? []), path.dirname(f)]);
  }
  return m;
}

const COLOURS: [number, number, number][] = [[220, 20, 20], [20, 40, 220], [20, 160, 40], [240, 220, 30], [10, 10, 10]];

describe('daemon: crash and shutdown', () => {
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    cleanupTmpDirs();
  });

  test('SIGKILL at several points, restarts, drain: every file in exactly one folder, valid sidecars', { timeout: 240_000 }, async () => {
    const ws = workspace({ model: { maxBatch: 4, maxDelayMs: 5 } });
    const total = 210;
    const names: string[] = [];
    for (let i = 0; i < total; i++) {
      const name = `img-${String(i).padStart(3, '0')}.${i % 2 ? 'png' : 'jpg'}`;
      // every 30th file is not an image at all, so the error path is crashed through too
      if (i % 30 === 7) fs.writeFileSync(path.join(ws.inbox, name), `not an image ${i}`);
      else await colourImage(path.join(ws.inbox, name), COLOURS[i % COLOURS.length]!, [48, 32]);
      names.push(name);
    }
    const killPoints = [15, 70, 140];
    for (const point of killPoints) {
      const child = startChild(ws);
      await waitFor(() => placements(ws).size >= point || child.exitCode !== null, `${point} files sorted`, 60_000, 5);
      child.kill('SIGKILL');
      const { signal } = await exited(child);
      assert.equal(signal, 'SIGKILL', 'the daemon was killed, not exited');
    }
    const child = startChild(ws);
    await child.ready;
    await waitFor(() => placements(ws).size === total && listFiles(ws.inbox).length === 0, 'all files sorted after the last restart', 120_000);
    // Give any leftover action a moment, then stop cleanly.
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null });

    const placed = placements(ws);
    assert.deepEqual([...placed.keys()].sort(), names, 'none lost');
    for (const [name, folders] of placed) assert.equal(folders.length, 1, `${name} is in ${folders.join(', ')}`);
    const all = listFiles(ws.sorted);
    assert.equal(all.filter((f) => f.endsWith('.json')).length, total, 'one sidecar per image');
    assert.ok(!all.some((f) => f.endsWith('.tmp')), 'no temp files left');
    for (const [name, [folder]] of placed) {
      const side = JSON.parse(fs.readFileSync(path.join(ws.sorted, folder!, `${name}.json`), 'utf8'));
      assert.equal(side.outcome, folder, `${name}: sidecar outcome matches its folder`);
      const i = Number(name.slice(4, 7));
      if (i % 30 === 7) assert.equal(side.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
      else assert.equal(side.results.length, 1);
    }
    assert.ok((placed.get('img-000.jpg') ?? [])[0] === 'adopt', 'red images are adopted');
  });

  test('SIGTERM: intake stops, in-flight work finishes, exit code 0; a restart finishes the rest', { timeout: 120_000 }, async () => {
    const ws = workspace();
    const child = startChild(ws);
    for (let i = 0; i < 40; i++) await colourImage(path.join(ws.inbox, `t-${i}.png`), COLOURS[i % COLOURS.length]!, [48, 32]);
    await waitFor(() => placements(ws).size >= 5, 'some files sorted', 60_000, 5);
    child.kill('SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    const again = startChild(ws);
    await again.ready;
    await waitFor(() => placements(ws).size === 40 && listFiles(ws.inbox).length === 0, 'the rest after restart', 60_000);
    again.kill('SIGTERM');
    assert.deepEqual(await exited(again), { code: 0, signal: null });
    for (const [name, folders] of placements(ws)) assert.equal(folders.length, 1, name);
  });
});
