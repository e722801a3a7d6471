/**
 * Runs inside the private mount namespace made by disk-full.test.ts: `<root>/jfs` (the journal's folder) and
 * `<root>/outfs` (where actions write) are small tmpfs mounts. A real daemon (demo model, folder source) is driven
 * through a full journal disk and then a full output disk, and one JSON report is printed on the last stdout line.
 * Any uncaught exception kills the process, so a report at all means the daemon survived.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { createLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { colourImage, listFiles, waitFor } from '../fixtures/daemon.ts';
import { demoDir } from '../fixtures/packages.ts';

const [root] = process.argv.slice(2) as [string];
const inbox = path.join(root, 'inbox');
const jfs = path.join(root, 'jfs');
const outfs = path.join(root, 'outfs');
fs.mkdirSync(inbox, { recursive: true });
const configFile = path.join(root, 'matchd.yaml');
fs.writeFileSync(configFile, stringify({
  model: { dir: demoDir, maxBatch: 8, maxDelayMs: 10 },
  journal: { path: 'jfs/matchd.db', leaseMs: 3000 },
  admin: { host: '127.0.0.1', port: 0 },
  log: { level: 'warn' },
  shutdown: { timeoutMs: 5000 },
  rules: {
    colours: {
      texts: ['a red product'],
      actions: { default: [{ sidecar: { to: 'outfs/sidecars' } }, { move: { to: 'outfs/sorted/{band}' } }] },
    },
  },
  sources: [{ type: 'folder', name: 'inbox', rule: 'colours', options: { paths: ['inbox'], stabilityMs: 200, minAgeMs: 100, rescanMs: 1000 } }],
}));

const logLines: Record<string, unknown>[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString().split('\n')) if (line.trim()) logLines.push(JSON.parse(line));
    cb();
  },
});

/** Fill the filesystem holding `dir` with one file until it is full; returns the file. */
function fill(dir: string): string {
  const file = path.join(dir, 'filler.bin');
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1 << 20, 1 << 12]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

async function health(base: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}/healthz`);
  return { status: r.status, body: await r.json() };
}

const images = (dir: string) => listFiles(dir).filter((f) => !f.endsWith('.json'));
const temps = (dir: string) => (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.tmp'));

async function drop(prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await colourImage(path.join(inbox, `${prefix}-${i}.png`), [200 + (i % 40), 20, 20], [32, 24]);
}

async function main(): Promise<Record<string, unknown>> {
  const daemon = await Daemon.start(loadConfig(configFile), {
    baseDir: root, registry: builtinRegistry(), logger: createLogger({ level: 'warn', destination: logSink }),
  });
  const base = `http://127.0.0.1:${daemon.adminAddress!.port}`;
  const sorted = path.join(outfs, 'sorted');
  const report: Record<string, any> = { jfsBytes: fs.statfsSync(jfs).blocks * fs.statfsSync(jfs).bsize };

  // 1. Normal operation.
  await drop('a', 10);
  await waitFor(() => images(sorted).length === 10, '10 images sorted before any fault', 30_000);

  // 2. The journal's disk fills up with work queued: 50 jobs are journalled, then — in the same tick, before the
  //    daemon leases them — the disk is filled, so leasing, the timers and the folder source's submits all meet
  //    SQLITE_FULL. (A truncating checkpoint first, so every later write must grow the WAL.)
  const direct = path.join(root, 'direct');
  fs.mkdirSync(direct);
  for (let i = 0; i < 50; i++) await colourImage(path.join(direct, `d-${i}.png`), [20, 20, 200 + (i % 40)], [32, 24]);
  const probe = new Database(path.join(jfs, 'matchd.db'));
  probe.pragma('wal_checkpoint(TRUNCATE)');
  probe.close();
  const submitted = Array.from({ length: 50 }, (_, i) => daemon.submit('inbox', 'colours', { dedupeKey: `direct-${i}`, image: { path: path.join(direct, `d-${i}.png`) } }));
  const jfiller = fill(jfs);
  report.directAccepted = submitted.filter((r) => r.accepted).length;
  await drop('b', 10);
  const fullAt = Date.now();
  const down = await waitFor(async () => {
    const h = await health(base);
    return h.status === 503 && h.body.journal.code === 'MATCHD_JOURNAL_FULL' ? h : null;
  }, '/healthz to report MATCHD_JOURNAL_FULL', 20_000);
  report.downAfterMs = Date.now() - fullAt;
  report.downHealth = { status: down.status, journal: down.body.journal };
  await new Promise((r) => setTimeout(r, 3000)); // paused: the daemon keeps running, the work waits
  report.whilePaused = { sorted: images(sorted).length, inbox: listFiles(inbox).length, stillDown: (await health(base)).status };

  // 3. Space returns.
  fs.rmSync(jfiller);
  const freedAt = Date.now();
  await waitFor(async () => (await health(base)).status === 200, '/healthz ok again', 20_000);
  report.resumedAfterMs = Date.now() - freedAt;
  await waitFor(() => images(sorted).length === 70 && listFiles(inbox).length === 0 && listFiles(direct).length === 0, 'all 70 images sorted after the journal recovered', 60_000);
  report.afterJournalFull = { sorted: images(sorted).length, sidecars: listFiles(path.join(outfs, 'sidecars')).length };

  // 4. The output disk fills up: actions fail with ENOSPC and are retried; no temp file may be left behind.
  const ofiller = fill(outfs);
  await drop('c', 10);
  await waitFor(() => logLines.some((l) => l.msg === 'action failed; will retry' && /ENOSPC/.test(String(l.err))), 'an action to fail with ENOSPC', 30_000);
  await new Promise((r) => setTimeout(r, 2000));
  report.whileOutputsFull = {
    health: (await health(base)).status,
    sorted: images(sorted).length,
    tempFiles: temps(outfs),
    enospcRetries: logLines.filter((l) => l.msg === 'action failed; will retry' && /ENOSPC/.test(String(l.err))).length,
  };
  fs.rmSync(ofiller);
  const outFreedAt = Date.now();
  await waitFor(() => images(sorted).length === 80 && listFiles(inbox).length === 0, 'all 80 images sorted after the output disk recovered', 60_000);
  report.outputsRecoveredAfterMs = Date.now() - outFreedAt;
  await waitFor(() => daemon.journalForTools.pendingActionCount() === 0, 'every action done', 30_000);
  await daemon.stop();

  const names = images(sorted).map((f) => path.basename(f));
  report.final = {
    sorted: names.length,
    distinct: new Set(names).size,
    sidecars: listFiles(path.join(outfs, 'sidecars')).length,
    tempFiles: temps(outfs).concat(temps(jfs)),
    inbox: listFiles(inbox).length,
  };
  report.firstFault = logLines.find((l) => l.code === 'MATCHD_JOURNAL_FULL')?.op;
  report.resumeLogged = logLines.some((l) => l.msg === 'the journal takes writes again; resuming');
  return report;
}

main().then(
  (r) => {
    console.log(JSON.stringify(r));
    process.exit(0);
  },
  (err) => {
    console.log(JSON.stringify({ harnessError: String(err?.stack ?? err), log: logLines.slice(-20) }));
    process.exit(1);
  },
);
