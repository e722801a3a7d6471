/**
 * @bench-scenario ui-jobs
 *
 * The web page over a large journal: `--jobs` finished jobs (default 100,000; 3 rules — one of them rare —, 3
 * sources, every band, 5 % errors, 3 actions each, 1 % decided on the review page, spread over 20 days), served by a
 * real daemon (demo model, no sources). For each page — the jobs page unfiltered, filtered by band, rare rule,
 * source + band, outcome, a one-day window, a deep page, the review queue, the labels export — the time of an HTTP
 * GET from request to the last byte (median and p95 of `--requests`), and the page's queries alone on the same
 * journal with and without schema version 3's indexes (the baseline, measured in the same run on a copy without
 * them). Plus what the indexes cost where it matters: journalling a job (enqueue + complete, synchronous=FULL).
 *
 *   node --import tsx bench/ui-jobs.ts [--json] [--jobs 100000] [--requests 30] [--writes 1000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { parseConfig } from '../src/core/config.ts';
import { Daemon } from '../src/core/daemon.ts';
import { actionsOfJobs, iterateLabels, labelsOfJobs, listJobs, reviewQueue, type JobFilter } from '../src/core/journal-review.ts';
import { Journal } from '../src/core/journal.ts';
import { silentLogger } from '../src/core/log.ts';
import { builtinRegistry } from '../src/plugins/index.ts';
import { type ScenarioResult, describeMachine, emitResult, machineInfo, markdownTable, median, progress, repoRoot, runWhenMain, textTable } from './lib.ts';

const DAY = 86_400_000;
const BANDS = [['adopt', 0.3], ['review', 0.1], ['improve', 0.2], ['reject', 0.35], ['error', 0.05]] as const;
const V3_INDEXES = ['jobs_by_outcome', 'jobs_by_rule', 'jobs_by_source', 'jobs_by_created'];

/** A journal of `n` finished jobs, written in bulk (the daemon's own writes would take hours at synchronous=FULL). */
export function fillJournal(file: string, n: number, now: number): { midId: number; day: number } {
  const j = new Journal(file, () => now);
  const db = j.sql;
  db.pragma('synchronous = OFF');
  const job = db.prepare(`INSERT INTO jobs (id, dedupe_key, source, rule, image_path, meta, extra, origin, texts, state, attempts, outcome, result, location, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, '{}', '{}', '{}', NULL, ?, 1, ?, ?, ?, ?, ?)`);
  const action = db.prepare(`INSERT INTO outbox (job_id, seq, kind, payload, state, attempts, next_at) VALUES (?, ?, ?, '{}', 'done', 1, ?)`);
  const label = db.prepare(`INSERT INTO labels (job_id, rule, decision, band, previous, reviewer, at, image, texts, results, decided_by) VALUES (?, ?, 'approve', 'adopt', 'review', 'alice', ?, ?, '[]', '[]', NULL)`);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  db.transaction(() => {
    for (let id = 1; id <= n; id++) {
      const at = now - 20 * DAY + Math.floor((id / n) * 20 * DAY);
      const rule = rnd() < 0.01 ? 'rare' : rnd() < 0.5 ? 'red-products' : 'blue-products';
      const source = ['inbox', 'uploads', 'api'][Math.floor(rnd() * 3)]!;
      let r = rnd();
      const band = BANDS.find(([, share]) => (r -= share) < 0)?.[0] ?? 'reject';
      const file = `/data/inbox/img-${id}.jpg`;
      const result = band === 'error'
        ? { jobId: id, outcome: 'error', error: { code: 'MATCHD_IMAGE_DECODE', message: 'image: cannot decode jpeg' } }
        : { jobId: id, file: `img-${id}.jpg`, rule, outcome: band, decidedBy: 'a red product', results: [{ text: 'a red product', cosine: 0.35, score: 0.35, band }, { text: 'a red dress', cosine: 0.2, score: 0.2, band: 'improve' }] };
      job.run(id, `folder:${file}:${id}`, source, rule, file, band === 'error' ? 'failed' : 'done', band, JSON.stringify(result), `/data/sorted/${band}/img-${id}.jpg`, at, at);
      for (const [seq, kind] of ['move', 'sidecar', 'callback'].entries()) action.run(id, seq, kind, at);
      if (band === 'review' && rnd() < 0.1) label.run(id, rule, at + 60_000, file);
    }
  })();
  j.close();
  return { midId: Math.floor(n / 2), day: now - 10 * DAY };
}

/** Median and 95th percentile (nearest rank). */
function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: median(s), p95: s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]! };
}

interface PageCase {
  name: string;
  url: string;
  /** The page's queries alone (what the indexes change). */
  query: (j: Journal) => unknown;
}

function cases(midId: number, day: number, pageSize: number, reviewBands: Map<string, string[]>): PageCase[] {
  const page = (f: JobFilter, p: { olderThan?: number } = {}) => (j: Journal) => {
    const r = listJobs(j, f, p, pageSize);
    const ids = r.jobs.map((x) => x.id);
    return [actionsOfJobs(j, ids), labelsOfJobs(j, ids)];
  };
  const iso = (t: number) => new Date(t).toISOString().slice(0, 16);
  return [
    { name: 'jobs, newest', url: '/jobs', query: page({}) },
    { name: 'band=review', url: '/jobs?band=review', query: page({ band: 'review' }) },
    { name: 'rule=rare (1 %)', url: '/jobs?rule=rare', query: page({ rule: 'rare' }) },
    { name: 'source=api + band=improve', url: '/jobs?source=api&band=improve', query: page({ source: 'api', band: 'improve' }) },
    { name: 'rule=rare + source=api + band=review (0.03 %)', url: '/jobs?rule=rare&source=api&band=review', query: page({ rule: 'rare', source: 'api', band: 'review' }) },
    { name: 'a source with no jobs', url: '/jobs?source=nowhere', query: page({ source: 'nowhere' }) },
    { name: 'outcome=error', url: '/jobs?outcome=error', query: page({ outcome: 'error' }) },
    { name: 'outcome=reviewed', url: '/jobs?outcome=reviewed', query: page({ outcome: 'reviewed' }) },
    { name: 'one day, 10 days ago', url: `/jobs?from=${iso(day)}&to=${iso(day + DAY)}`, query: page({ from: new Date(iso(day)).getTime(), to: new Date(iso(day + DAY)).getTime() }) },
    { name: 'deep page (id < n/2)', url: `/jobs?before=${midId}`, query: page({}, { olderThan: midId }) },
    { name: 'review queue', url: '/review', query: (j) => reviewQueue(j, reviewBands) },
    { name: 'labels.csv', url: '/labels.csv', query: (j) => [...iterateLabels(j)] },
  ];
}

async function timeGet(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  // The first request opens a fresh connection (a kept-alive one may have been closed by the server while the
  // previous case timed its queries) and gets the session; the timed ones reuse it.
  const first = await fetch(url, { headers: { connection: 'close' } }).catch(() => fetch(url));
  const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
  await first.text();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(url, { headers: { cookie } });
    const body = await r.text();
    if (r.status !== 200 || body.length < 100) throw new Error(`${url}: ${r.status}`);
    times.push(performance.now() - t0);
  }
  return times;
}

function timeQuery(file: string, q: (j: Journal) => unknown, n: number): number[] {
  const j = new Journal(file);
  try {
    q(j); // warm the statement cache and the pages
    return Array.from({ length: n }, () => {
      const t0 = performance.now();
      q(j);
      return performance.now() - t0;
    });
  } finally {
    j.close();
  }
}

/** Milliseconds per job journalled (enqueue, lease, complete with 3 actions: what the daemon writes per job). */
function writeCost(dir: string, n: number, dropIndexes: boolean): number {
  const file = path.join(dir, `w-${dropIndexes ? 'bare' : 'v3'}-${Date.now()}.db`);
  const j = new Journal(file);
  if (dropIndexes) for (const ix of V3_INDEXES) j.sql.exec(`DROP INDEX ${ix}`);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const { jobId } = j.enqueue({ dedupeKey: `w${i}`, source: 'inbox', rule: 'red-products', imagePath: `/in/${i}.jpg` });
    j.lease(1, 60_000);
    j.complete(jobId, 'adopt', { outcome: 'adopt', results: [] }, [{ kind: 'move', payload: {} }, { kind: 'sidecar', payload: {} }, { kind: 'callback', payload: {} }]);
  }
  const ms = (performance.now() - t0) / n;
  j.close();
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  return ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, jobs: { type: 'string', default: '100000' }, requests: { type: 'string', default: '30' }, writes: { type: 'string', default: '1000' } } });
  const n = Number(values.jobs);
  const requests = Number(values.requests);
  const writes = Number(values.writes);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-bench-ui-'));
  try {
    const file = path.join(dir, 'journal.db');
    // (the write rounds use the same folder: os.tmpdir(), or TMPDIR)
    const now = Date.now();
    progress(`ui-jobs: writing a journal of ${n} jobs...`);
    const { midId, day } = fillJournal(file, n, now);
    const bare = path.join(dir, 'bare.db');
    fs.copyFileSync(file, bare);
    const b = new Journal(bare);
    for (const ix of V3_INDEXES) b.sql.exec(`DROP INDEX ${ix}`);
    b.close();
    const size = fs.statSync(file).size;

    const config = parseConfig(stringify({
      model: { dir: path.join(repoRoot, 'models', 'demo') }, journal: { path: file, retainDays: 3650 }, admin: { port: 0 }, log: { level: 'silent' },
      rules: Object.fromEntries(['red-products', 'blue-products', 'rare'].map((r) => [r, { texts: ['a red product'], actions: { default: [{ log: {} }] } }])),
    }));
    progress('ui-jobs: starting the daemon over it...');
    const d = await Daemon.start(config, { baseDir: dir, registry: builtinRegistry(), logger: silentLogger() });
    const rows: string[][] = [];
    const results: { name: string; http: ReturnType<typeof stats>; indexed: ReturnType<typeof stats>; bare: ReturnType<typeof stats> }[] = [];
    try {
      for (const c of cases(midId, day, config.ui.pageSize, new Map(['red-products', 'blue-products', 'rare'].map((r) => [r, ['review']])))) {
        progress(`ui-jobs: ${c.name}`);
        const http = stats(await timeGet(d.uiUrl!.replace(/\/$/, '') + c.url, requests));
        const indexed = stats(timeQuery(file, c.query, requests));
        const bareT = stats(timeQuery(bare, c.query, Math.max(3, Math.floor(requests / 3))));
        results.push({ name: c.name, http, indexed, bare: bareT });
        rows.push([c.name, http.median.toFixed(1), http.p95.toFixed(1), indexed.median.toFixed(2), bareT.median.toFixed(2), (bareT.median / indexed.median).toFixed(1) + '×']);
      }
    } finally {
      await d.stop();
    }
    progress(`ui-jobs: journalling ${writes} jobs with and without the indexes, alternating, 5 rounds...`);
    const costs = { v3: [] as number[], bare: [] as number[] };
    for (let round = 0; round < 5; round++) {
      costs.v3.push(writeCost(dir, writes, false));
      costs.bare.push(writeCost(dir, writes, true));
    }
    const withIx = median(costs.v3);
    const withoutIx = median(costs.bare);
    const worst = Math.max(...results.map((r) => r.http.p95));
    const target = 100;
    const header = ['page', 'HTTP median ms', 'HTTP p95 ms', 'queries ms (v3 indexes)', 'queries ms (no v3 indexes)', 'indexes speed-up'];
    const targets = [
      `${worst <= target ? '✅' : '❌'} slowest page p95 ${worst.toFixed(1)} ms with ${n.toLocaleString('en')} jobs (target ≤ ${target} ms)`,
      `ℹ️ journalling a job (enqueue + lease + complete with 3 actions, synchronous=FULL, median of 5 alternating rounds of ${writes}): ${withIx.toFixed(2)} ms with the v3 indexes, ${withoutIx.toFixed(2)} ms without (rounds: ${costs.v3.map((x) => x.toFixed(2)).join(' ')} / ${costs.bare.map((x) => x.toFixed(2)).join(' ')})`,
    ];
    const m = machineInfo();
    const table = `ui-jobs — ${n.toLocaleString('en')} jobs, journal ${(size / 2 ** 20).toFixed(0)} MiB, ${requests} requests per page\n${textTable(header, rows)}\n${targets.join('\n')}`;
    const markdown = [
      `- Date: ${new Date().toISOString().slice(0, 10)}`,
      `- Machine: ${describeMachine(m)}`,
      `- Journal: ${n.toLocaleString('en')} finished jobs (3 rules, one with 1 % of the jobs; 3 sources; adopt 30 %, review 10 %, improve 20 %, reject 35 %, error 5 %; 3 actions each; 1 % decided on the review page), ${(size / 2 ** 20).toFixed(0)} MiB, served by a real daemon (demo model, no sources) on the admin listener.`,
      `- HTTP: GET from request to last byte over loopback, one session, ${requests} requests per page (page size ${config.ui.pageSize}). Queries: the page's journal queries alone, in-process; "no v3 indexes" is a copy of the same journal without the four job indexes schema version 3 adds (the baseline).`,
      '- Reproduce: `node --import tsx bench/ui-jobs.ts` (`--jobs 100000 --requests 30 --writes 1000`)',
      '',
      '### Targets',
      '',
      ...targets.map((t) => `- ${t}`),
      '',
      '### Pages',
      '',
      markdownTable(header, rows),
    ].join('\n');
    const result: ScenarioResult = { scenario: 'ui-jobs', date: new Date().toISOString(), machine: m, table, markdown, allTargetsMet: worst <= target };
    emitResult(result, values.json);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, 'ui-jobs', main);
