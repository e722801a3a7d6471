// One daemon per SQLite journal: a second one refuses to start, naming the first; the lock goes with its process,
// however it ends (a daemon killed with -9 leaves nothing that keeps the next one out).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { JournalLock } from '../../src/core/journal-lock.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { waitFor, workspace } from '../fixtures/daemon.ts';
import { silentLogger } from '../../src/core/log.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

const children: ChildProcess[] = [];

function run(configFile: string, cwd: string): ChildProcess & { out: () => string } {
  const c = spawn(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', configFile], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MATCHD_LOG_LEVEL: 'info' } });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  children.push(c);
  return Object.assign(c, { out: () => out });
}

const exited = (c: ChildProcess) => new Promise<number | null>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(c.exitCode) : c.once('exit', (code) => resolve(code))));

describe('daemon: one daemon per SQLite journal', () => {
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    cleanupTmpDirs();
  });

  test('a second daemon on the same journal refuses to start, naming the first; once it stops, another starts', async () => {
    const ws = workspace();
    const start = () => Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
    const first = await start();
    try {
      await assert.rejects(start(), (e: any) => e.code === 'MATCHD_JOURNAL_LOCKED' && e.message.includes(`pid ${process.pid}`) && e.message.includes('journal.db'));
    } finally {
      await first.stop();
    }
    const again = await start();
    await again.stop();
  });

  test('`matchd run` twice: the second exits 1 with MATCHD_JOURNAL_LOCKED and the first\'s pid; kill -9 the first and the next starts at once', { timeout: 120_000 }, async () => {
    const ws = workspace();
    const first = run(ws.configFile, ws.root);
    await waitFor(() => first.out().includes('"msg":"matchd running"'), 'the first daemon running', 60_000);
    const second = run(ws.configFile, ws.root);
    assert.equal(await exited(second), 1);
    assert.match(second.out(), new RegExp(`matchd: MATCHD_JOURNAL_LOCKED: the journal .*journal\\.db is in use by matchd pid ${first.pid} on `));
    first.kill('SIGKILL');
    await exited(first);
    const third = run(ws.configFile, ws.root);
    await waitFor(() => third.out().includes('"msg":"matchd running"') || third.exitCode !== null, 'the third daemon running', 60_000);
    assert.ok(third.out().includes('"msg":"matchd running"'), third.out());
    third.kill('SIGTERM');
    assert.equal(await exited(third), 0);
  });

  test('the lock alone: taken, refused while held, free again once released', () => {
    const file = path.join(workspace().root, 'x.db');
    const lock = JournalLock.acquire(file);
    assert.throws(() => JournalLock.acquire(file), (e: any) => e.code === 'MATCHD_JOURNAL_LOCKED');
    lock.release();
    JournalLock.acquire(file).release();
  });
});
