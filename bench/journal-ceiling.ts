/**
 * @bench-scenario journal-ceiling
 *
 * The journal's own ceiling: one daemon (role all) with a zero-cost engine stand-in (bench/stand-in-engine.ts, 0 ms
 * per batch, nothing decoded), `--jobs` jobs handed in by a source's `ctx.submit` as fast as it accepts them, each
 * with one action (`log`): submit → lease → result + outbox → action done, so every cost left is the journal's.
 * SQLite (a file, WAL, synchronous=FULL) and PostgreSQL (a server on this machine, fsync on) side by side, from the
 * first submit to the last action done; for PostgreSQL also the round trips per job (its driver thread counts them).
 *
 *   node --import tsx bench/journal-ceiling.ts [--json] [--jobs 3000] [--rounds 2]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { z } from 'zod';
import { startPostgres } from '../test/fixtures/postgres.ts';
import type { PgJournal } from '../src/core/journal-pg/journal.ts';
import type { PluginContext, SourcePlugin } from '../src/core/plugin.ts';
import { type ScenarioResult, describeMachine, emitResult, machineInfo, markdownTable, progress, repoRoot, runWhenMain, sleep, textTable } from './lib.ts';
import { useStandInEngine } from './stand-in-engine.ts';

interface Row {
  backend: 'sqlite' | 'postgres';
  round: number;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  roundTripsPerJob: number | null;
}

export interface JournalCeilingResult extends ScenarioResult {
  scenario: 'journal-ceiling';
  rows: Row[];
}

function benchSource(onCtx: (ctx: PluginContext) => void): SourcePlugin {
  return {
    name: 'bench', configSchema: z.strictObject({}),
    create(ctx) {
      onCtx(ctx);
      return { async start() {}, async stop() {} };
    },
  };
}

async function runOnce(backend: Row['backend'], url: string | undefined, jobs: number, round: number): Promise<Row> {
  const { loadConfig } = await import('../src/core/config.ts');
  const { Daemon } = await import('../src/core/daemon.ts');
  const { silentLogger } = await import('../src/core/log.ts');
  const { builtinRegistry } = await import('../src/plugins/index.ts');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-bench-ceiling-'));
  try {
    const image = path.join(root, 'img.png');
    fs.writeFileSync(image, 'not decoded by the stand-in');
    const configFile = path.join(root, 'matchd.yaml');
    fs.writeFileSync(configFile, stringify({
      model: { dir: path.join(repoRoot, 'models', 'demo'), maxBatch: 32, maxDelayMs: 1, decodeConcurrency: 32, queueSize: 1_000_000, intraOpThreads: 1 },
      journal: url ? { url, spoolDir: 'spool' } : { path: 'var/journal.db' },
      admin: { enabled: false }, ui: { enabled: false }, log: { level: 'warn' },
      rules: { r: { texts: ['a red product'], actions: { default: [{ log: { level: 'info' } }] } } },
      sources: [{ type: 'bench', name: 'bench', rule: 'r' }],
    }));
    let ctx: PluginContext | undefined;
    const registry = builtinRegistry().register(benchSource((c) => (ctx = c)));
    const daemon = await Daemon.start(loadConfig(configFile), { baseDir: root, registry, logger: silentLogger(), node: `ceiling-${round}` });
    const pg = backend === 'postgres' ? (daemon.journalApi as PgJournal) : undefined;
    try {
      const callsBefore = pg?.bridge.calls ?? 0;
      const t0 = performance.now();
      for (let i = 0; i < jobs; i++) {
        const r = ctx!.submit({ dedupeKey: `j-${i}`, image: { path: image } });
        if (!r.accepted) throw new Error(`submit refused: ${r.message}`);
        if (i % 64 === 63) await new Promise((r) => setImmediate(r)); // let leasing and actions in, as a real source does
      }
      for (;;) {
        const c = daemon.journalApi.counts();
        if (c.done === jobs && c.outboxPending === 0) break;
        await sleep(50);
      }
      const seconds = (performance.now() - t0) / 1000;
      // the loop's own counts() calls are not the journal's work per job
      const roundTrips = pg ? (pg.bridge.calls - callsBefore) / jobs : null;
      return { backend, round, jobs, seconds, jobsPerSecond: jobs / seconds, roundTripsPerJob: roundTrips };
    } finally {
      await daemon.stop();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, jobs: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '2' } } });
  const jobs = Number(values.jobs);
  const rounds = Number(values.rounds);
  useStandInEngine(0);
  const server = await startPostgres({ durable: true });
  const rows: Row[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const backend of ['sqlite', 'postgres'] as const) {
        const url = backend === 'postgres' ? await server.createDatabase(`ceiling_${round}`) : undefined;
        progress(`journal-ceiling: ${backend}, round ${round}, ${jobs} jobs`);
        rows.push(await runOnce(backend, url, jobs, round));
        progress(`  ${rows.at(-1)!.jobsPerSecond.toFixed(0)} jobs/s`);
      }
    }
  } finally {
    server.destroy();
  }
  const machine = machineInfo();
  const best = (b: Row['backend']) => rows.filter((r) => r.backend === b).reduce((m, r) => (r.jobsPerSecond > m.jobsPerSecond ? r : m));
  const header = ['backend', 'jobs/s (best of rounds)', 'each round', 'ms per job', 'round trips / job'];
  const body = (['sqlite', 'postgres'] as const).map((b) => {
    const r = best(b);
    return [b, r.jobsPerSecond.toFixed(0), rows.filter((x) => x.backend === b).map((x) => x.jobsPerSecond.toFixed(0)).join(', '), (1000 / r.jobsPerSecond).toFixed(2), r.roundTripsPerJob === null ? '—' : r.roundTripsPerJob.toFixed(2)];
  });
  const table = textTable(header, body);
  const markdown = `## The journal's own ceiling: SQLite and PostgreSQL (\`bench/journal-ceiling.ts\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${describeMachine(machine)}; PostgreSQL ${(fs.readdirSync('/usr/lib/postgresql').sort().at(-1)) ?? '?'} on the same machine, fsync on
- One daemon (role all), engine stand-in at 0 ms (nothing decoded or encoded), ${jobs} jobs submitted through a source's \`ctx.submit\`, one \`log\` action each; from the first submit to the last action done; ${rounds} rounds
- Reproduce: \`node --import tsx bench/journal-ceiling.ts\`

${markdownTable(header, body)}

Everything here is journal work on one event loop: SQLite commits with an fsync of its WAL, PostgreSQL with a round
trip to its server (and the server's own WAL flush). A PostgreSQL round trip per job is 2 for the submit (the queue
depth check and the insert) and the rest for the lease (per batch), the result with its actions, the claim and the
action done. This ceiling is one node's: nodes add theirs (\`cluster-scale\` above: 4 workers, 315 jobs/s, about
1,300 journal round trips a second, and still linear); the server's own limit was not reached here.`;
  const result: JournalCeilingResult = { scenario: 'journal-ceiling', date: new Date().toISOString(), machine, table, markdown, allTargetsMet: true, rows };
  emitResult(result, values.json!);
}

runWhenMain(import.meta.url, 'journal-ceiling', main);
