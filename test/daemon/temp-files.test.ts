// Temp files of crash-safe writes never pile up: a failed atomic write removes its temp file; stale ones left by a
// killed process (its pid gone, or a pid reused by this process) are swept when the daemon starts — in every folder
// its rules write to — and the first time a write goes into any other folder; a live writer's temp file is kept.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { writeFileAtomic } from '../../src/core/actions/fs-ops.ts';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { silentLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const tempsIn = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).sort();

describe('daemon: temp files', () => {
  after(cleanupTmpDirs);

  test('a failed atomic write leaves no temp file', async () => {
    const dir = tmpDir();
    const target = path.join(dir, 'result.json');
    fs.mkdirSync(target); // rename() onto a directory fails
    fs.writeFileSync(path.join(target, 'keep'), 'x');
    await assert.rejects(writeFileAtomic(target, '{}'), (e: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code!));
    assert.deepEqual(tempsIn(dir), []);
  });

  test('the first write into a folder sweeps the stale temp files there, not a live writer\'s', async () => {
    const dir = tmpDir();
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const names = {
        dead: `.a.png.json.${deadPid()}.${Date.now() - 5000}.tmp`,
        reused: `.b.png.json.${process.pid}.${Date.now() - 86_400_000}.tmp`, // our pid, but from before we started
        live: `.c.png.json.${live.pid}.${Date.now()}.tmp`,
        other: 'not-ours.tmp',
      };
      for (const n of Object.values(names)) fs.writeFileSync(path.join(dir, n), 'partial');
      await writeFileAtomic(path.join(dir, 'd.png.json'), '{}');
      assert.deepEqual(tempsIn(dir), [names.live, names.other].sort());
    } finally {
      live.kill();
    }
  });

  test('the daemon sweeps every folder its rules write to at start-up', async () => {
    const ws = workspace();
    const stale = `.x.png.${deadPid()}.${Date.now() - 1000}.tmp`;
    for (const band of ['adopt', 'reject', 'error']) {
      fs.mkdirSync(path.join(ws.sorted, band), { recursive: true });
      fs.writeFileSync(path.join(ws.sorted, band, stale), 'partial');
    }
    const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
    try {
      for (const band of ['adopt', 'reject', 'error']) assert.deepEqual(tempsIn(path.join(ws.sorted, band)), [], band);
    } finally {
      await d.stop();
    }
  });
});
