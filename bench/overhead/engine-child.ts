/**
 * One engine per process (see bench/overhead.ts for why): this program loads matchd's engine or onnxruntime-node,
 * then answers the coordinator's requests (bench/child-process.ts), timing its own runs.
 *
 *   node --import tsx bench/overhead/engine-child.ts ours|onnxruntime-node   (started by bench/overhead.ts)
 */
import { performance } from 'node:perf_hooks';
import { serveParent } from '../child-process.ts';
import { importBaseline, isMain, sleep } from '../lib.ts';
import type { EngineName, Request, StallSample } from './types.ts';

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
  const { InferenceSession } = await import('../../src/core/engine.ts');
  const { addon } = await import('../../src/core/native.ts');
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

async function serve(role: EngineName): Promise<void> {
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
  serveParent<Request>({ version: engine.version }, handle);
}

if (isMain(import.meta.url)) {
  const role = process.argv[2];
  if (role !== 'ours' && role !== 'onnxruntime-node') throw new Error(`usage: engine-child.ts ours|onnxruntime-node (got '${role}')`);
  void serve(role);
}
