/**
 * @bench-scenario cluster-scale
 *
 * Scale-out on one PostgreSQL journal: 1, 2 and 4 worker nodes (`--role worker`, each its own process) with the
 * engine stand-in (bench/stand-in-engine.ts: no decoding, a fixed `--latency` ms per image batch of up to `--batch`,
 * as a GPU), so that the work distribution is measured rather than this machine's cores running a model. Per run,
 * `--per-worker` × workers jobs are committed to the queue at once (one statement, as intake nodes would have
 * journalled them); the time is from that commit to the last job's action done. Each job has one action (`log`), so
 * a job is: lease, result + outbox, claim, action done. Also per job: the journal round trips the workers made
 * (their driver threads count them) and the rows written (pg_stat_user_tables: inserted + updated + deleted, the
 * queueing insert included; the nodes' heartbeats are listed apart, per second). The server runs with fsync on.
 * Target: 4 workers ≥ 0.85 × 4 × the throughput of 1.
 *
 *   node --import tsx bench/cluster-scale.ts [--json] [--workers 1,2,4] [--latency 200] [--batch 16] [--per-worker 1200]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { startPostgres, type PgServer } from '../test/fixtures/postgres.ts';
import { type ScenarioResult, benchDir, describeMachine, emitResult, intList, machineInfo, markdownTable, progress, repoRoot, runWhenMain, sleep, textTable } from './lib.ts';

interface Run {
  workers: number;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** Of linear: jobsPerSecond / (workers × the 1-worker jobsPerSecond). */
  scaling: number;
  roundTripsPerJob: number;
  rowsPerJob: Record<string, number>;
  heartbeatRowsPerSecond: number;
}

export interface ClusterScaleResult extends ScenarioResult {
  scenario: 'cluster-scale';
  options: { latency: number; batch: number; perWorker: number };
  runs: Run[];
}

type TableStats = Record<string, number>;

async function tableWrites(s: PgServer, db: string): Promise<TableStats> {
  await sleep(1500); // backends report their counters within a second of going idle
  const rows = await s.sql<{ relname: string; n: string }>(db, `SELECT relname, (n_tup_ins + n_tup_upd + n_tup_del)::text AS n FROM pg_stat_user_tables`);
  return Object.fromEntries(rows.map((r) => [r.relname, Number(r.n)]));
}

function worker(config: string, node: string, latency: number): ChildProcess & { lines: () => Record<string, number>[]; ready: Promise<void> } {
  const c = spawn(process.execPath, ['--import', 'tsx', path.join(benchDir, 'cluster-node.ts'), config, node, String(latency)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
  const ready = new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"ready"')) resolve();
    });
    c.once('exit', (code) => reject(new Error(`worker ${node} exited (${code}) before it was ready`)));
  });
  return Object.assign(c, { lines, ready });
}

async function runOnce(s: PgServer, workers: number, o: ClusterScaleResult['options']): Promise<Omit<Run, 'scaling'>> {
  const db = `scale_${workers}_${Date.now()}`;
  const url = await s.createDatabase(db);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-bench-scale-'));
  try {
    const image = path.join(root, 'img.png');
    fs.writeFileSync(image, 'not decoded by the stand-in; it must exist (workers check the path)');
    const configFile = path.join(root, 'matchd.yaml');
    fs.writeFileSync(configFile, stringify({
      model: { dir: path.join(repoRoot, 'models', 'demo'), maxBatch: o.batch, maxDelayMs: 5, batchesInFlight: 1, decodeConcurrency: o.batch, queueSize: 1_000_000, intraOpThreads: 1 },
      journal: { url, leaseMs: 120_000, nodeTimeoutMs: 10_000 },
      admin: { enabled: false }, ui: { enabled: false }, log: { level: 'warn' },
      rules: { r: { texts: ['a red product'], actions: { default: [{ log: { level: 'info' } }] } } },
    }));
    const nodes = Array.from({ length: workers }, (_, i) => worker(configFile, `w${i + 1}`, o.latency));
    await Promise.all(nodes.map((n) => n.ready));
    const callsAtReady = nodes.map((n) => n.lines().find((l) => 'calls' in l)?.calls ?? 0);
    const jobs = o.perWorker * workers;
    const before = await tableWrites(s, db);
    const t0 = performance.now();
    await s.sql(db, `WITH ins AS (
        INSERT INTO jobs (dedupe_key, source, rule, image_path, state, created_at, updated_at)
        SELECT 'bench-' || i, 'bench', 'r', $1, 'queued', $2, $2 FROM generate_series(1, $3) AS i RETURNING id)
      SELECT count(*), pg_notify('matchd_queued', '') FROM ins`, [image, Date.now(), jobs]);
    for (;;) {
      const [r] = await s.sql<{ n: number }>(db, `SELECT count(*)::int AS n FROM outbox WHERE state = 'done'`);
      if (r!.n >= jobs) break;
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const n of nodes) n.kill('SIGTERM');
    await Promise.all(nodes.map((n) => new Promise((r) => (n.exitCode !== null ? r(null) : n.once('exit', r)))));
    const calls = nodes.reduce((sum, n, i) => sum + (n.lines().filter((l) => 'calls' in l).at(-1)?.calls ?? 0) - callsAtReady[i]!, 0);
    const after = await tableWrites(s, db);
    const delta = (t: string) => (after[t] ?? 0) - (before[t] ?? 0);
    const rowsPerJob = Object.fromEntries(['jobs', 'outbox', 'plugin_state'].map((t) => [t, delta(t) / jobs]));
    rowsPerJob.total = Object.values(rowsPerJob).reduce((a, b) => a + b, 0);
    return { workers, jobs, seconds, jobsPerSecond: jobs / seconds, roundTripsPerJob: calls / jobs, rowsPerJob, heartbeatRowsPerSecond: delta('nodes') / (seconds + 3) };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { json: { type: 'boolean', default: false }, workers: { type: 'string', default: '1,2,4' }, latency: { type: 'string', default: '200' }, batch: { type: 'string', default: '16' }, 'per-worker': { type: 'string', default: '1200' } },
  });
  const options = { latency: Number(values.latency), batch: Number(values.batch), perWorker: Number(values['per-worker']) };
  const counts = intList('workers', values.workers!, 1);
  const server = await startPostgres({ durable: true });
  const runs: Run[] = [];
  try {
    for (const w of counts) {
      progress(`cluster-scale: ${w} worker(s), ${options.perWorker * w} jobs`);
      const r = await runOnce(server, w, options);
      const one = runs.find((x) => x.workers === 1)?.jobsPerSecond ?? (w === 1 ? r.jobsPerSecond : NaN);
      runs.push({ ...r, scaling: r.jobsPerSecond / (w * one) });
      progress(`  ${r.jobsPerSecond.toFixed(1)} jobs/s, ${r.roundTripsPerJob.toFixed(2)} round trips/job, ${r.rowsPerJob.total!.toFixed(2)} rows/job`);
    }
  } finally {
    server.destroy();
  }
  const machine = machineInfo();
  const ideal = (1000 / options.latency) * options.batch;
  const header = ['workers', 'jobs', 'seconds', 'jobs/s', 'of linear', 'round trips / job', 'rows / job (jobs + outbox + state)', 'heartbeat rows / s'];
  const rows = runs.map((r) => [
    String(r.workers), String(r.jobs), r.seconds.toFixed(1), r.jobsPerSecond.toFixed(1), `${(r.scaling * 100).toFixed(0)} %`, r.roundTripsPerJob.toFixed(2),
    `${r.rowsPerJob.total!.toFixed(2)} (${r.rowsPerJob.jobs!.toFixed(2)} + ${r.rowsPerJob.outbox!.toFixed(2)} + ${r.rowsPerJob.plugin_state!.toFixed(2)})`, r.heartbeatRowsPerSecond.toFixed(1),
  ]);
  const at4 = runs.find((r) => r.workers === 4);
  const met = at4 ? at4.scaling >= 0.85 : false;
  const target = at4 ? `${met ? '✅' : '❌'} 4 workers: ${(at4.scaling * 100).toFixed(0)} % of linear (target ≥ 85 %)` : '4 workers not run';
  const table = `${textTable(header, rows)}\n${target}`;
  const markdown = `## Several workers on one PostgreSQL journal (\`bench/cluster-scale.ts\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${describeMachine(machine)}; PostgreSQL ${(fs.readdirSync('/usr/lib/postgresql').sort().at(-1)) ?? '?'} on the same machine (fsync on), every node a separate process
- Engine stand-in: ${options.latency} ms per image batch of up to ${options.batch} (no decoding), so one worker can do at most ${ideal.toFixed(0)} jobs/s; each job has one action (\`log\`)
- ${options.perWorker} jobs per worker, committed to the queue at once; time from that commit to the last action done
- Reproduce: \`node --import tsx bench/cluster-scale.ts\`

### Target

- ${target}

${markdownTable(header, rows)}

Round trips are the workers' journal calls during the run (each one statement or one transaction; idle ticks
included). Rows are what the run wrote: per job, the queueing insert, the lease and result updates of \`jobs\`, and
the action's insert, claim and completion in \`outbox\`; heartbeats update one \`nodes\` row per node per second.`;
  const result: ClusterScaleResult = { scenario: 'cluster-scale', date: new Date().toISOString(), machine, table, markdown, allTargetsMet: met, options, runs };
  emitResult(result, values.json!);
}

runWhenMain(import.meta.url, 'cluster-scale', main);
