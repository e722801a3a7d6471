// README "Running on several machines": the worked example as written — config/cluster.yaml, one intake and two
// workers started with the README's commands (here on one machine: MATCHD_SHARED is a temp folder all three see).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listFiles, waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot, sampleImages, samplesDir } from '../fixtures/packages.ts';
import { startPostgres, type PgServer } from '../fixtures/postgres.ts';

let server: PgServer;
const nodes: ChildProcess[] = [];

describe('postgres: the README example (one intake, two workers)', () => {
  before(async () => {
    server = await startPostgres();
  });
  after(() => {
    for (const n of nodes) if (n.exitCode === null && n.signalCode === null) n.kill('SIGKILL');
    server?.destroy();
    cleanupTmpDirs();
  });

  test('config/cluster.yaml with --role intake and --role worker ×2: the samples are sorted, /healthz lists the three nodes', { timeout: 180_000 }, async () => {
    const shared = tmpDir('matchd-shared-');
    const env = { ...process.env, MATCHD_JOURNAL_URL: await server.createDatabase('example'), MATCHD_SHARED: shared, MATCHD_LOG_LEVEL: 'info' };
    const run = (args: string[], port: number) => {
      const c = spawn(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', 'config/cluster.yaml', ...args], {
        cwd: repoRoot, env: { ...env, MATCHD_ADMIN_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      nodes.push(c);
      return Object.assign(c, { out: () => out });
    };
    const intake = run(['--role', 'intake', '--node', 'intake-1'], 0);
    await waitFor(() => intake.out().includes('"msg":"matchd running"') || intake.exitCode !== null, 'the intake node running', 60_000);
    assert.ok(intake.out().includes('"msg":"matchd running"'), intake.out());
    const workers = [run(['--role', 'worker', '--node', 'gpu-1'], 0), run(['--role', 'worker', '--node', 'gpu-2'], 0)];
    for (const w of workers) await waitFor(() => w.out().includes('"msg":"matchd running"') || w.exitCode !== null, 'a worker running', 60_000);
    for (const w of workers) assert.ok(w.out().includes('"msg":"matchd running"'), w.out());
    const images = sampleImages();
    for (const f of images) fs.copyFileSync(path.join(samplesDir, f), path.join(shared, 'inbox', f));
    await waitFor(() => listFiles(path.join(shared, 'sorted')).filter((f) => !f.endsWith('.json')).length === images.length, 'the samples sorted', 60_000);
    const admin = /"admin":"(http:\/\/[^"]+)"/.exec(intake.out())![1]!;
    const health = (await (await fetch(`${admin}/healthz`)).json()) as { role: string; node: string; journal: { nodes: { name: string; role: string; alive: boolean }[] } };
    assert.equal(health.role, 'intake');
    assert.deepEqual(health.journal.nodes.map((n) => [n.name, n.role, n.alive]), [['gpu-1', 'worker', true], ['gpu-2', 'worker', true], ['intake-1', 'intake', true]]);
    for (const n of [intake, ...workers]) n.kill('SIGTERM');
    for (const n of [intake, ...workers]) await new Promise((r) => (n.exitCode !== null ? r(null) : n.once('exit', r)));
    assert.deepEqual([intake, ...workers].map((n) => n.exitCode), [0, 0, 0]);
  });
});
