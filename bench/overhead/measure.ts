/**
 * The coordinator's measurements, over two engine children: (a) per-run cost on trivial models, variants interleaved
 * and rotated each round; (b) the event-loop stall while one ~200 ms inference runs, with a busy-loop reference and an
 * idle control.
 */
import path from 'node:path';
import { ChildClient } from '../child-process.ts';
import { benchDir, median, ms, progress, stats } from '../lib.ts';
import {
  IMPLS, implEngine, implPrealloc, threadLabel, type EngineName, type ImplName, type OpenInfo, type OverheadOptions,
  type OverheadResult, type PerRunRow, type RatioRow, type Request, type StallRow, type StallSample,
} from './types.ts';

/** One child per engine. */
export type Engines = Record<EngineName, ChildClient<Request>>;

export function startEngines(): Engines {
  const file = path.join(benchDir, 'overhead', 'engine-child.ts');
  return {
    ours: new ChildClient<Request>('ours', file, ['ours']),
    'onnxruntime-node': new ChildClient<Request>('onnxruntime-node', file, ['onnxruntime-node']),
  };
}

export async function engineVersion(e: ChildClient<Request>): Promise<string> {
  return ((await e.ready) as { version: string }).version;
}

// (a) per-run cost
export async function perRun(
  w: Engines, o: OverheadOptions, dir: string,
): Promise<{ rows: PerRunRow[]; preallocReturnsCallerBuffer: Record<EngineName, boolean | null> }> {
  // What each engine hands back for a preallocated output (checked at open).
  const preallocReturnsCallerBuffer: Record<EngineName, boolean | null> = { ours: null, 'onnxruntime-node': null };
  const { addModel, identityModel } = await import('../../test/fixtures/models.ts');
  const dims = [o.batch, 3, 224, 224];
  const rows: PerRunRow[] = [];
  for (const model of o.models) {
    const modelPath = model === 'identity' ? identityModel(dir, dims).path : addModel(dir, dims).path;
    for (const threads of o.threads) {
      const key = `${model}/${threads}`;
      for (const [name, e] of Object.entries(w) as [EngineName, ChildClient<Request>][]) {
        const info = await e.call<OpenInfo>({
          cmd: 'open', key, path: modelPath, dims, threads, spinning: o.spinning, seed: 12345, check: model,
        });
        preallocReturnsCallerBuffer[name] = info.preallocReturnsCallerBuffer;
      }
      const samples = new Map<ImplName, number[]>(IMPLS.map((k) => [k, []]));
      const roundMedians = new Map<ImplName, number[]>(IMPLS.map((k) => [k, []]));
      for (let r = 0; r < o.rounds; r++) {
        // rotate the order every round so that no variant always runs first or right after another
        const order = IMPLS.map((_, i) => IMPLS[(i + r) % IMPLS.length]!);
        for (const impl of order) {
          const t = await w[implEngine(impl)].call<number[]>({
            cmd: 'time', key, prealloc: implPrealloc(impl), warmup: o.warmup, iterations: o.iterations,
          });
          samples.get(impl)!.push(...t);
          roundMedians.get(impl)!.push(median(t));
        }
        progress(
          `  (a) ${model} threads=${threadLabel(threads)} round ${r + 1}/${o.rounds}: ` +
            IMPLS.map((k) => `${k} ${ms(roundMedians.get(k)!.at(-1)!)}`).join(', ') + ' ms (median)',
        );
      }
      for (const impl of IMPLS) {
        rows.push({ model, threads, impl, stats: stats(samples.get(impl)!), roundMedians: roundMedians.get(impl)! });
      }
      for (const e of Object.values(w)) await e.call({ cmd: 'close', key });
    }
  }
  return { rows, preallocReturnsCallerBuffer };
}

export function ratioRows(rows: PerRunRow[]): RatioRow[] {
  const out: RatioRow[] = [];
  const find = (model: string, threads: number, impl: ImplName) =>
    rows.find((r) => r.model === model && r.threads === threads && r.impl === impl)!;
  const keys = [...new Set(rows.map((r) => `${r.model}/${r.threads}`))];
  for (const key of keys) {
    const [model, t] = key.split('/') as [string, string];
    const threads = Number(t);
    const pairs = [
      ['engine-allocated', 'ours', 'onnxruntime-node'],
      ['preallocated', 'ours-prealloc', 'onnxruntime-node-prealloc'],
    ] as const;
    for (const [outputs, a, b] of pairs) {
      const ours = find(model, threads, a);
      const base = find(model, threads, b);
      const perRound = ours.roundMedians.map((m, i) => m / base.roundMedians[i]!);
      const value = ours.stats.median / base.stats.median;
      const target = outputs === 'engine-allocated' ? 1.0 : null;
      out.push({
        model,
        threads,
        outputs,
        oursMedian: ours.stats.median,
        baselineMedian: base.stats.median,
        ratio: value,
        roundRange: [Math.min(...perRound), Math.max(...perRound)],
        target,
        met: target === null ? null : value <= target,
      });
    }
  }
  return out;
}

// (b) event-loop stall
export async function stall(w: Engines, o: OverheadOptions): Promise<NonNullable<OverheadResult['stall']>> {
  const { slowModel, tmpDir } = await import('../../test/fixtures/models.ts');
  const size = o.slowSize;
  const dims = [size, size];
  const engines: EngineName[] = ['ours', 'onnxruntime-node'];
  const rows: StallRow[] = [];
  let referenceMs = o.stallMs;
  const row = (
    impl: StallRow['impl'], threads: number | null, repeats: number | null, calibratedMs: number | null, rs: StallSample[],
  ): StallRow => {
    const gaps = rs.map((r) => r.maxGap);
    return {
      impl,
      threads,
      repeats,
      calibratedMs,
      inference: stats(rs.map((r) => r.inferenceMs)),
      maxGaps: gaps,
      maxGap: Math.max(...gaps),
      medianMaxGap: median(gaps),
      medianTicks: median(rs.map((r) => r.ticks)),
    };
  };
  for (const threads of o.threads) {
    let repeats = o.slowRepeats;
    let calibratedMs: number | null = null;
    let model = slowModel(tmpDir('matchd-bench-'), { size, repeats: repeats ?? 20 });
    if (repeats === null) {
      // Calibrate with our engine at this thread count: time a 20-MatMul chain, scale it to --stall-ms, then check
      // the scaled chain and correct it up to twice more (short probes misjudge multi-threaded runs).
      repeats = 20;
      for (let step = 0; step < 3; step++) {
        const key = `probe/${threads}/${step}`;
        await w.ours.call({ cmd: 'open', key, path: model.path, dims, threads, spinning: o.spinning, seed: 7, check: null });
        const t = median(await w.ours.call<number[]>({ cmd: 'time', key, prealloc: false, warmup: 1, iterations: step === 0 ? 7 : 5 }));
        await w.ours.call({ cmd: 'close', key });
        calibratedMs = t;
        if (step > 0 && Math.abs(t - o.stallMs) <= 0.15 * o.stallMs) break;
        const next = Math.max(1, Math.min(5000, Math.round((repeats * o.stallMs) / t)));
        progress(
          `  (b) calibration, threads=${threadLabel(threads)}: ${repeats} MatMuls ${ms(t)} ms → ${next} MatMuls`,
        );
        if (next === repeats) break;
        repeats = next;
        calibratedMs = null;
        model = slowModel(tmpDir('matchd-bench-'), { size, repeats });
      }
    }
    const key = `slow/${threads}`;
    for (const e of engines) {
      await w[e].call({ cmd: 'open', key, path: model.path, dims, threads, spinning: o.spinning, seed: 7, check: null });
      await w[e].call({ cmd: 'time', key, prealloc: false, warmup: 1, iterations: 0 });
    }
    const results: Record<EngineName, StallSample[]> = { ours: [], 'onnxruntime-node': [] };
    for (let k = 0; k < o.stallRuns; k++) {
      for (const e of k % 2 === 0 ? engines : [...engines].reverse()) {
        results[e].push(await w[e].call<StallSample>({ cmd: 'stall', key }));
      }
    }
    for (const e of engines) {
      const r = row(e, threads, repeats, calibratedMs, results[e]);
      rows.push(r);
      progress(
        `  (b) threads=${threadLabel(threads)} ${e}: inference ${ms(r.inference.median)} ms, ` +
          `max stall per run ${r.maxGaps.map(ms).join(', ')} ms`,
      );
      if (e === 'ours' && threads === o.threads[0]) referenceMs = r.inference.median;
      await w[e].call({ cmd: 'close', key });
    }
  }
  // What a synchronous run of the same length does to the timer: a busy loop on the main thread.
  const busy: StallSample[] = [];
  for (let k = 0; k < o.stallRuns; k++) busy.push(await w.ours.call<StallSample>({ cmd: 'busy', ms: referenceMs }));
  rows.push(row('reference: synchronous busy loop', null, null, null, busy));
  // The machine's own noise floor: the same timer and window with nothing running.
  const idle: StallSample[] = [];
  for (let k = 0; k < o.stallRuns; k++) idle.push(await w.ours.call<StallSample>({ cmd: 'idle', ms: referenceMs }));
  rows.push(row('control: idle event loop, no inference', null, null, null, idle));
  progress(`  (b) control, idle loop: max gap per window ${idle.map((r) => ms(r.maxGap)).join(', ')} ms`);
  return { size, rows };
}
