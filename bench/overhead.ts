/**
 * @bench-scenario overhead
 *
 * Engine overhead: matchd's native engine vs onnxruntime-node, in one benchmark run, same models, same input
 * values, same session settings.
 *
 *   (a) per-run wall time on trivial models (Identity and Add+1) with a 32×3×224×224 float32 input and output
 *       — target: ours/onnxruntime-node (median) ≤ 1.0×;
 *   (b) the longest event-loop stall seen by a 1 ms interval timer while one ~200 ms inference runs
 *       — target: ours < 10 ms.
 *
 * Usage (from the repo root, after `npm run bench:setup`):
 *   node --import tsx bench/overhead.ts [--json] [--iterations 30] [--rounds 10] [--warmup 3] [--threads 1,0]
 *        [--models identity,add] [--batch 32] [--stall-runs 5] [--stall-ms 200] [--slow-size 512]
 *        [--slow-repeats N] [--spinning] [--only a|b]
 *
 * `--threads 1,0`: intra-op thread counts to test; 0 = ORT's default (one per physical core), for both engines.
 * `--json` prints one JSON object (ScenarioResult) on stdout; progress always goes to stderr.
 *
 * Why two processes: matchd's addon and onnxruntime-node each need their own `libonnxruntime.so.1` (ORT 1.29.0
 * with VERS_1.29.0 symbols, ORT 1.30.0 with VERS_1.30.0). Both carry the same soname, so the dynamic linker
 * reuses whichever was loaded first and the second addon fails to load, in either order. This program is the
 * coordinator: it builds the models and starts one child per engine (`--child ours|onnxruntime-node`), sends them
 * the same commands over IPC, rounds interleaved, and collects the timings, which the children take themselves
 * (the IPC is outside every timed region). Each child fills its input from the same seed, so both engines see
 * identical input bytes; within a child, every variant reads the same input buffer in place.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type ScenarioResult, type Stats, describeMachine, importBaseline, isMain, machineInfo, markdownTable, median, ms,
  progress, ratio, repoRoot, sleep, stats, textTable,
} from './lib.ts';

// ---------------------------------------------------------------------------------------------------------------
// The slice of onnxruntime-node's API used here (declared locally: bench/node_modules may be absent at typecheck).

interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  InferenceSession: { create(path: string, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  env: { versions?: Record<string, string> };
}

// ---------------------------------------------------------------------------------------------------------------

export interface OverheadOptions {
  iterations: number;
  rounds: number;
  warmup: number;
  threads: number[];
  models: ('identity' | 'add')[];
  batch: number;
  stallRuns: number;
  stallMs: number;
  slowSize: number;
  slowRepeats: number | null;
  spinning: boolean;
  only: 'a' | 'b' | null;
}

type EngineName = 'ours' | 'onnxruntime-node';
const IMPLS = ['ours', 'ours-prealloc', 'onnxruntime-node', 'onnxruntime-node-prealloc'] as const;
type ImplName = (typeof IMPLS)[number];
const implEngine = (i: ImplName): EngineName => (i.startsWith('ours') ? 'ours' : 'onnxruntime-node');
const implPrealloc = (i: ImplName): boolean => i.endsWith('-prealloc');

interface PerRunRow {
  model: string;
  threads: number;
  impl: ImplName;
  stats: Stats;
  /** Median of each round, in round order. */
  roundMedians: number[];
}

interface RatioRow {
  model: string;
  threads: number;
  /** 'engine-allocated' outputs (the target) or 'preallocated' outputs (informational). */
  outputs: 'engine-allocated' | 'preallocated';
  oursMedian: number;
  baselineMedian: number;
  ratio: number;
  /** Min and max of the per-round median ratios: how much the ratio moves between rounds. */
  roundRange: [number, number];
  target: number | null;
  met: boolean | null;
}

interface StallRow {
  impl: EngineName | 'reference: synchronous busy loop' | 'control: idle event loop, no inference';
  threads: number | null;
  /** MatMuls in the slowModel chain (null for the busy loop). */
  repeats: number | null;
  /** What the calibration predicted for one run with our engine (null when --slow-repeats was given). */
  calibratedMs: number | null;
  inference: Stats;
  /** Largest tick-to-tick gap in each measured run. */
  maxGaps: number[];
  maxGap: number;
  medianMaxGap: number;
  /** Timer ticks that fired while the inference ran (median over runs). */
  medianTicks: number;
}

interface Target {
  id: 'a' | 'b';
  what: string;
  value: number;
  target: string;
  met: boolean;
  line: string;
}

export interface OverheadResult extends ScenarioResult {
  scenario: 'overhead';
  versions: { ours: string; onnxruntimeNode: string };
  options: OverheadOptions;
  inputShape: number[];
  perRun: PerRunRow[];
  ratios: RatioRow[];
  stall: { size: number; rows: StallRow[] } | null;
  targets: Target[];
  notes: string[];
}

function threadLabel(t: number | null): string {
  return t === null ? '–' : t === 0 ? 'default' : String(t);
}

/** Deterministic pseudo-random fill (xorshift32), values in [-1, 1). */
function randomInput(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// Child side: one engine per process.

/** One loaded model with its input and output buffers, ready to run. */
interface Runner {
  /** One inference; resolves with the output data. */
  run(prealloc: boolean): Promise<unknown>;
  input: Float32Array;
  output: Float32Array;
  close(): Promise<void>;
}

interface Engine {
  version: string;
  open(path: string, dims: number[], threads: number, spinning: boolean, input: Float32Array): Promise<Runner>;
}

async function loadOurs(): Promise<Engine> {
  const { InferenceSession } = await import('../src/core/engine.ts');
  const { addon } = await import('../src/core/native.ts');
  return {
    version: addon().versions().onnxruntime,
    async open(path, dims, threads, spinning, input) {
      const s = await InferenceSession.open(path, {
        intraOpThreads: threads,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        cpuMemArena: true,
        memPattern: true,
        allowSpinning: spinning,
      });
      const output = new Float32Array(input.length);
      const feeds = { x: { type: 'float32' as const, dims, data: input } };
      const fetch = { y: { type: 'float32' as const, dims, data: output } };
      return {
        input,
        output,
        run: async (prealloc) => (await (prealloc ? s.run(feeds, fetch) : s.run(feeds))).y?.data,
        close: async () => s.dispose(),
      };
    },
  };
}

async function loadOrt(): Promise<Engine> {
  const { module: ort, version } = await importBaseline<OrtModule>('onnxruntime-node');
  return {
    version,
    async open(path, dims, threads, spinning, input) {
      // The settings matchd's engine uses (engine.ts defaults): sequential, all optimisations, arena and memory
      // pattern on, spinning off unless --spinning; 0 threads = leave ORT's default.
      const s = await ort.InferenceSession.create(path, {
        ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        enableCpuMemArena: true,
        enableMemPattern: true,
        extra: {
          session: {
            intra_op: { allow_spinning: spinning ? '1' : '0' },
            inter_op: { allow_spinning: spinning ? '1' : '0' },
          },
        },
      });
      const output = new Float32Array(input.length);
      const feeds = { x: new ort.Tensor('float32', input, dims) }; // wraps `input`, no copy
      const fetch = { y: new ort.Tensor('float32', output, dims) };
      return {
        input,
        output,
        run: async (prealloc) => (await (prealloc ? s.run(feeds, fetch) : s.run(feeds))).y?.data,
        close: () => s.release(),
      };
    },
  };
}

type Request =
  | { cmd: 'open'; key: string; path: string; dims: number[]; threads: number; spinning: boolean; seed: number; check: 'identity' | 'add' | null }
  | { cmd: 'time'; key: string; prealloc: boolean; warmup: number; iterations: number }
  | { cmd: 'stall'; key: string }
  | { cmd: 'busy'; ms: number }
  | { cmd: 'idle'; ms: number }
  | { cmd: 'close'; key: string };

interface StallSample {
  maxGap: number;
  inferenceMs: number;
  ticks: number;
}

async function timeRuns(run: () => Promise<unknown>, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await run();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Run `work` while a 1 ms interval timer records the largest gap between its ticks. */
async function measureStall(work: () => Promise<unknown>): Promise<StallSample> {
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  let recording = false;
  const timer = setInterval(() => {
    const now = performance.now();
    if (recording) {
      maxGap = Math.max(maxGap, now - last);
      ticks++;
    }
    last = now;
  }, 1);
  await sleep(30); // let the timer settle into its rhythm
  recording = true;
  const t0 = performance.now();
  await work();
  const inferenceMs = performance.now() - t0;
  await sleep(5); // the first tick after the run closes the gap that the run caused
  recording = false;
  clearInterval(timer);
  return { maxGap, inferenceMs, ticks };
}

function checkOutput(what: string, data: unknown, input: Float32Array, model: 'identity' | 'add'): void {
  if (!(data instanceof Float32Array) || data.length !== input.length) {
    throw new Error(`${what}: output is not a Float32Array of ${input.length} elements`);
  }
  for (const i of [0, 1, input.length >> 1, input.length - 1]) {
    const want = model === 'identity' ? input[i]! : Math.fround(input[i]! + 1);
    if (data[i] !== want) throw new Error(`${what}: output[${i}] = ${data[i]}, expected ${want}`);
  }
}

async function child(role: EngineName): Promise<void> {
  const engine = role === 'ours' ? await loadOurs() : await loadOrt();
  const runners = new Map<string, Runner>();
  const get = (key: string) => {
    const r = runners.get(key);
    if (!r) throw new Error(`no model open under '${key}'`);
    return r;
  };
  const handle = async (req: Request): Promise<unknown> => {
    switch (req.cmd) {
      case 'open': {
        const input = randomInput(req.dims.reduce((a, b) => a * b, 1), req.seed);
        const r = await engine.open(req.path, req.dims, req.threads, req.spinning, input);
        let preallocReturnsCallerBuffer: boolean | null = null;
        if (req.check) {
          checkOutput(`${role} ${req.key}`, await r.run(false), input, req.check);
          r.output.fill(NaN);
          const returned = await r.run(true);
          checkOutput(`${role} ${req.key}, preallocated`, r.output, input, req.check);
          preallocReturnsCallerBuffer = returned === r.output;
        }
        runners.set(req.key, r);
        return { preallocReturnsCallerBuffer };
      }
      case 'time': {
        const r = get(req.key);
        const run = () => r.run(req.prealloc);
        await timeRuns(run, req.warmup);
        return timeRuns(run, req.iterations);
      }
      case 'stall': {
        const r = get(req.key);
        return measureStall(() => r.run(false));
      }
      case 'busy':
        return measureStall(async () => {
          const end = performance.now() + req.ms;
          while (performance.now() < end) {
            // a synchronous stand-in for an inference on the main thread
          }
        });
      case 'idle':
        return measureStall(() => sleep(req.ms));
      case 'close': {
        await get(req.key).close();
        runners.delete(req.key);
        return null;
      }
    }
  };
  process.on('message', (msg: { id: number; req: Request }) => {
    handle(msg.req).then(
      (value) => process.send!({ id: msg.id, value }),
      (err: unknown) => process.send!({ id: msg.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ id: 0, value: { version: engine.version } });
}

// ---------------------------------------------------------------------------------------------------------------
// Coordinator side.

class Worker {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly version: Promise<string>;
  private readonly proc: ChildProcess;

  constructor(readonly role: EngineName) {
    const execArgv = process.execArgv.length > 0 ? process.execArgv : ['--import', 'tsx'];
    this.proc = spawn(process.execPath, [...execArgv, fileURLToPath(import.meta.url), '--child', role], {
      cwd: repoRoot,
      stdio: ['ignore', 2, 2, 'ipc'], // the child's prints go to our stderr: stdout stays clean for --json
    });
    this.version = new Promise((resolve, reject) => {
      this.pending.set(0, { resolve: (v) => resolve((v as { version: string }).version), reject });
    });
    this.proc.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`${role} child: ${m.error}`));
      else p.resolve(m.value);
    });
    this.proc.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${role} child exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  call<T>(req: Request): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, req });
    });
  }

  stop(): void {
    if (this.proc.connected) this.proc.disconnect();
  }
}

type Workers = Record<EngineName, Worker>;

interface OpenInfo {
  /** With a preallocated output, is the returned tensor's data the caller's own array (null: not checked)? */
  preallocReturnsCallerBuffer: boolean | null;
}

/** Filled by perRun(): what each engine hands back for a preallocated output. */
const preallocReturnsCallerBuffer: Record<EngineName, boolean | null> = { ours: null, 'onnxruntime-node': null };

// (a) per-run cost
async function perRun(w: Workers, o: OverheadOptions, dir: string): Promise<PerRunRow[]> {
  const { addModel, identityModel } = await import('../test/fixtures/models.ts');
  const dims = [o.batch, 3, 224, 224];
  const rows: PerRunRow[] = [];
  for (const model of o.models) {
    const modelPath = model === 'identity' ? identityModel(dir, dims).path : addModel(dir, dims).path;
    for (const threads of o.threads) {
      const key = `${model}/${threads}`;
      for (const e of Object.values(w)) {
        const info = await e.call<OpenInfo>({
          cmd: 'open', key, path: modelPath, dims, threads, spinning: o.spinning, seed: 12345, check: model,
        });
        preallocReturnsCallerBuffer[e.role] = info.preallocReturnsCallerBuffer;
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
  return rows;
}

function ratioRows(rows: PerRunRow[]): RatioRow[] {
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
async function stall(w: Workers, o: OverheadOptions): Promise<NonNullable<OverheadResult['stall']>> {
  const { slowModel, tmpDir } = await import('../test/fixtures/models.ts');
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

// ---------------------------------------------------------------------------------------------------------------
// Reporting

const IMPL_LABEL: Record<ImplName, string> = {
  ours: 'ours',
  'ours-prealloc': 'ours, preallocated output',
  'onnxruntime-node': 'onnxruntime-node',
  'onnxruntime-node-prealloc': 'onnxruntime-node, preallocated output',
};

function targets(ratios: RatioRow[], st: OverheadResult['stall']): Target[] {
  const out: Target[] = [];
  for (const r of ratios) {
    if (r.target === null) continue;
    out.push({
      id: 'a',
      what: `${r.model}, intraOpThreads=${threadLabel(r.threads)}`,
      value: r.ratio,
      target: '≤ 1.0×',
      met: r.met!,
      line:
        `(a) ${r.model}, intraOpThreads=${threadLabel(r.threads)}: ours/baseline = ${r.ratio.toFixed(2)} ` +
        `(target ≤ 1.0×): ${r.met ? 'met' : 'NOT met'}`,
    });
  }
  if (st) {
    const ours = st.rows.filter((r) => r.impl === 'ours');
    const worst = Math.max(...ours.map((r) => r.maxGap));
    const base = st.rows.filter((r) => r.impl === 'onnxruntime-node');
    const baseWorst = Math.max(...base.map((r) => r.maxGap));
    out.push({
      id: 'b',
      what: 'longest event-loop stall during a ~200 ms inference (ours, all thread settings)',
      value: worst,
      target: '< 10 ms',
      met: worst < 10,
      line:
        `(b) longest event-loop stall, ours = ${ms(worst)} ms (target < 10 ms): ${worst < 10 ? 'met' : 'NOT met'}` +
        ` — onnxruntime-node: ${ms(baseWorst)} ms`,
    });
  }
  return out;
}

function renderText(r: Omit<OverheadResult, 'table' | 'markdown'>): string {
  const parts: string[] = [];
  parts.push(`overhead: ours (ONNX Runtime ${r.versions.ours}) vs onnxruntime-node ${r.versions.onnxruntimeNode}`);
  parts.push(`machine: ${describeMachine(r.machine)}`);
  if (r.perRun.length) {
    parts.push('');
    parts.push(
      `(a) per-run wall time, input and output ${r.inputShape.join('×')} float32, ` +
        `${r.options.rounds} rounds × ${r.options.iterations} runs (after ${r.options.warmup} warm-up runs per round), ms`,
    );
    parts.push(
      textTable(
        ['model', 'threads', 'engine', 'min', 'median', 'max'],
        r.perRun.map((p) => [p.model, threadLabel(p.threads), IMPL_LABEL[p.impl], ms(p.stats.min), ms(p.stats.median), ms(p.stats.max)]),
      ),
    );
    parts.push('');
    parts.push(
      textTable(
        ['model', 'threads', 'outputs', 'ours/baseline (median)', 'per-round range', 'target'],
        r.ratios.map((x) => [
          x.model, threadLabel(x.threads), x.outputs, ratio(x.ratio),
          `${x.roundRange[0].toFixed(2)}–${x.roundRange[1].toFixed(2)}`, x.target === null ? '(info)' : `≤ ${x.target.toFixed(1)}×`,
        ]),
      ),
    );
  }
  if (r.stall) {
    parts.push('');
    parts.push(
      `(b) event-loop stall: largest gap between ticks of a 1 ms setInterval while one inference runs ` +
        `(slowModel ${r.stall.size}×${r.stall.size}, a chain of MatMuls), ${r.options.stallRuns} runs each, ms`,
    );
    parts.push(
      textTable(
        ['engine', 'threads', 'MatMuls', 'inference (median)', 'max stall (worst run)', 'max stall (median run)', 'ticks during run'],
        r.stall.rows.map((s) => [
          s.impl, threadLabel(s.threads), s.repeats === null ? '–' : String(s.repeats), ms(s.inference.median),
          ms(s.maxGap), ms(s.medianMaxGap), String(s.medianTicks),
        ]),
      ),
    );
  }
  parts.push('');
  for (const t of r.targets) parts.push(t.line);
  return parts.join('\n');
}

function renderMarkdown(r: Omit<OverheadResult, 'table' | 'markdown'>, argv: string[]): string {
  const L: string[] = [];
  const args = argv.filter((a) => a !== '--json').join(' ');
  L.push('## Engine overhead vs onnxruntime-node (`bench/overhead.ts`)');
  L.push('');
  L.push(`- Date: ${r.date.slice(0, 10)}`);
  L.push(`- Machine: ${describeMachine(r.machine)}`);
  L.push(
    `- ONNX Runtime: ours ${r.versions.ours} (matchd addon, \`addon().versions()\`); ` +
      `baseline onnxruntime-node ${r.versions.onnxruntimeNode} (its bundled ORT has the same version)`,
  );
  L.push(
    `- Session settings, identical for both: sequential execution, graph optimisation \`all\`, CPU arena and memory ` +
      `pattern on, thread-pool spinning ${r.options.spinning ? 'on' : 'off'}; intra-op threads as in each row ` +
      `(\`default\` = ORT's default, one per physical core).`,
  );
  L.push('- Reproduce:');
  L.push('');
  L.push('  ```sh');
  L.push(`  npm run bench:setup && node --import tsx bench/overhead.ts${args ? ` ${args}` : ''}`);
  L.push('  npm run bench -- --write   # every scenario, and rewrite these sections of BENCHMARKS.md');
  L.push('  ```');
  L.push('');
  const tl = r.targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.line}`);
  L.push('### Targets');
  L.push('');
  L.push(...tl);
  if (r.perRun.length) {
    L.push('');
    L.push(`### (a) Per-run cost, trivial models, input and output ${r.inputShape.join('×')} float32`);
    L.push('');
    L.push(
      `Wall time of one awaited \`run()\` in ms: ${r.options.rounds} rounds × ${r.options.iterations} runs per variant ` +
        `(${r.options.warmup} warm-up runs before each round; variants interleaved, order rotated each round). ` +
        `Within each engine every variant reads one input \`Float32Array\` in place; the two engines' inputs hold ` +
        `identical values (same seed). "engine-allocated" outputs: each engine ` +
        `allocates the output (ours hands ORT's buffer to JS without a copy); "preallocated": the caller passes the ` +
        `output buffer and ORT writes into it.`,
    );
    L.push('');
    L.push(
      markdownTable(
        ['model', 'intra-op threads', 'engine', 'min', 'median', 'max'],
        r.perRun.map((p) => [
          p.model === 'identity' ? 'Identity' : 'Add (x + 1)', threadLabel(p.threads), IMPL_LABEL[p.impl],
          ms(p.stats.min), ms(p.stats.median), ms(p.stats.max),
        ]),
      ),
    );
    L.push('');
    L.push('Ratio of medians, ours / onnxruntime-node (lower is better; the per-round range shows the noise):');
    L.push('');
    L.push(
      markdownTable(
        ['model', 'intra-op threads', 'outputs', 'ours / baseline', 'per-round range', 'target', 'met'],
        r.ratios.map((x) => [
          x.model === 'identity' ? 'Identity' : 'Add (x + 1)', threadLabel(x.threads), x.outputs, ratio(x.ratio),
          `${x.roundRange[0].toFixed(2)}–${x.roundRange[1].toFixed(2)}`,
          x.target === null ? '(info)' : `≤ ${x.target.toFixed(1)}×`,
          x.met === null ? '' : x.met ? 'met' : '**NOT met**',
        ]),
      ),
    );
  }
  if (r.stall) {
    const s = r.stall;
    L.push('');
    L.push('### (b) Event-loop stall during a ~200 ms inference');
    L.push('');
    L.push(
      `A \`setInterval(…, 1)\` timer records the largest gap between consecutive ticks while one inference of ` +
        `\`slowModel\` (${s.size}×${s.size} input, a chain of MatMuls with one weight) is awaited; ` +
        (r.options.slowRepeats === null
          ? `the chain length is calibrated per thread setting so that our run takes ≈ ${r.options.stallMs} ms. `
          : '') +
        `${r.options.stallRuns} runs per row, times in ms. The busy-loop row blocks the main thread for as long as ` +
        'our first inference row took; the control row is the same timer over the same window with nothing ' +
        'running, i.e. what this machine does to a 1 ms timer on its own.',
    );
    L.push('');
    L.push(
      markdownTable(
        ['engine', 'intra-op threads', 'MatMuls', 'inference (median)', 'max stall, worst run', 'max stall, median run', 'timer ticks during the run'],
        s.rows.map((x) => [
          x.impl, threadLabel(x.threads), x.repeats === null ? '–' : String(x.repeats), ms(x.inference.median),
          ms(x.maxGap), ms(x.medianMaxGap), String(x.medianTicks),
        ]),
      ),
    );
  }
  if (r.notes.length) {
    L.push('');
    L.push('### Notes');
    L.push('');
    for (const n of r.notes) L.push(`- ${n}`);
  }
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

function parseOptions(argv: string[]): OverheadOptions & { json: boolean; child: EngineName | null } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      iterations: { type: 'string', default: '30' },
      rounds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      threads: { type: 'string', default: '1,0' },
      models: { type: 'string', default: 'identity,add' },
      batch: { type: 'string', default: '32' },
      'stall-runs': { type: 'string', default: '5' },
      'stall-ms': { type: 'string', default: '200' },
      'slow-size': { type: 'string', default: '512' },
      'slow-repeats': { type: 'string' },
      spinning: { type: 'boolean', default: false },
      only: { type: 'string' },
      child: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --import tsx bench/overhead.ts [--json] [--iterations 30] [--rounds 10] [--warmup 3]\n' +
        '         [--threads 1,0] [--models identity,add] [--batch 32] [--stall-runs 5] [--stall-ms 200]\n' +
        '         [--slow-size 512] [--slow-repeats N] [--spinning] [--only a|b]\n',
    );
    process.exit(0);
  }
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  const models = values.models.split(',').map((m) => m.trim());
  for (const m of models) if (m !== 'identity' && m !== 'add') throw new Error(`--models: unknown model '${m}' (identity, add)`);
  if (values.only !== undefined && values.only !== 'a' && values.only !== 'b') throw new Error(`--only must be 'a' or 'b'`);
  if (values.child !== undefined && values.child !== 'ours' && values.child !== 'onnxruntime-node') {
    throw new Error(`--child must be 'ours' or 'onnxruntime-node'`);
  }
  return {
    json: values.json,
    child: (values.child as EngineName | undefined) ?? null,
    iterations: int('iterations', values.iterations, 1),
    rounds: int('rounds', values.rounds, 1),
    warmup: int('warmup', values.warmup, 0),
    threads: values.threads.split(',').map((t) => int('threads', t.trim(), 0)),
    models: models as ('identity' | 'add')[],
    batch: int('batch', values.batch, 1),
    stallRuns: int('stall-runs', values['stall-runs'], 1),
    stallMs: int('stall-ms', values['stall-ms'], 1),
    slowSize: int('slow-size', values['slow-size'], 1),
    slowRepeats: values['slow-repeats'] === undefined ? null : int('slow-repeats', values['slow-repeats'], 1),
    spinning: values.spinning,
    only: (values.only as 'a' | 'b' | undefined) ?? null,
  };
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<OverheadResult | null> {
  const { json, child: role, ...o } = parseOptions(argv);
  if (role) {
    await child(role);
    return null;
  }
  // Fail early, with the fix, when the baseline is not installed.
  await importBaseline<unknown>('onnxruntime-node').catch((err: Error) => {
    if (/bench:setup/.test(err.message)) throw err;
    // installed but not loadable here: the child will report it
  });
  const { tmpDir } = await import('../test/fixtures/models.ts');
  const w: Workers = { ours: new Worker('ours'), 'onnxruntime-node': new Worker('onnxruntime-node') };
  try {
    const versions = { ours: await w.ours.version, onnxruntimeNode: await w['onnxruntime-node'].version };
    progress(`overhead: ours (ORT ${versions.ours}) vs onnxruntime-node ${versions.onnxruntimeNode}, one child process each`);
    const dir = tmpDir('matchd-bench-');
    const perRunRows = o.only === 'b' ? [] : await perRun(w, o, dir);
    const ratios = ratioRows(perRunRows);
    const st = o.only === 'a' ? null : await stall(w, o);
    const notes = [
      'The two engines run in two child processes of one benchmark run (see the header of `bench/overhead.ts`): ' +
        "matchd's addon (ORT 1.29.0) and onnxruntime-node (ORT 1.30.0) each bring a `libonnxruntime.so.1` with " +
        'the same soname, and whichever loads second fails with `version VERS_1.x.0 not found`. Commands are ' +
        'interleaved between the two; each child times its own runs; both fill their input from the same seed.',
      "onnxruntime-node's `InferenceSession.run()` returns a promise but is not asynchronous: it defers with " +
        '`setImmediate` and then calls the native `run` synchronously on the main thread, so its row in (b) is ' +
        'what a synchronous run looks like; there is no separate synchronous API to test. The busy-loop row is a ' +
        'synchronous stand-in of the same length as our single-thread inference, for reference.',
      "Ours queues the run on libuv's thread pool (`Napi::AsyncWorker`) and resolves on the event loop; with " +
        "more than one intra-op thread ORT's own pool threads run beside it.",
    ];
    if (perRunRows.length > 0) {
      const mb = ((o.batch * 3 * 224 * 224 * 4) / 1e6).toFixed(1);
      notes.push(
        'Ours, engine-allocated outputs: the output ORT allocated is handed to JS as an external `ArrayBuffer` ' +
          `without a copy, and returns to ORT's arena only when V8 finalises it. At ${mb} MB per run V8 answers the ` +
          'external-memory pressure with a full mark-compact every few runs (seen with `--trace-gc`), which is ' +
          'where most of the max column comes from; min and median are the copy-free cost. A preallocated ' +
          'output avoids both the allocation and the GC.',
      );
      const ortPre = preallocReturnsCallerBuffer['onnxruntime-node'];
      if (ortPre === false) {
        notes.push(
          'onnxruntime-node, preallocated output: ORT writes into the caller\'s tensor, but the result that ' +
            '`run()` returns is a new array (checked on every model), i.e. the binding still copies the output; ' +
            'so preallocating saves it nothing. Ours returns the caller\'s own tensor.',
        );
      }
    }
    const partial = {
      scenario: 'overhead' as const,
      date: new Date().toISOString(),
      machine: machineInfo(),
      versions,
      options: o,
      inputShape: [o.batch, 3, 224, 224],
      perRun: perRunRows,
      ratios,
      stall: st,
      targets: targets(ratios, st),
      notes,
      allTargetsMet: false,
    };
    partial.allTargetsMet = partial.targets.every((t) => t.met);
    const result: OverheadResult = { ...partial, table: renderText(partial), markdown: renderMarkdown(partial, argv) };
    if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write(`${result.table}\n`);
    return result;
  } finally {
    w.ours.stop();
    w['onnxruntime-node'].stop();
  }
}

if (isMain(import.meta.url)) {
  main().then(
    (r) => {
      if (r) process.exit(0); // a child keeps running until the coordinator disconnects
    },
    (err: unknown) => {
      // the message alone (it names the fix); BENCH_DEBUG=1 for the stack
      const e = err instanceof Error ? err : new Error(String(err));
      process.stderr.write(`overhead: ${process.env.BENCH_DEBUG ? (e.stack ?? e.message) : e.message}\n`);
      process.exit(1);
    },
  );
}
