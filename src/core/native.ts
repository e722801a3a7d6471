/**
 * The only module that loads the addon (`build/Release/matchd.node`) and the one declaration of its surface.
 * Everything else imports from here.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MatchdError } from './errors.ts';

/** Element types the engine passes through, and the TypedArray that carries each. */
export interface TensorArrays {
  float32: Float32Array;
  float16: Uint16Array;
  float64: Float64Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}
export type TensorType = keyof TensorArrays;
export type TensorData = TensorArrays[TensorType];

/** A tensor as it crosses the addon boundary: the data is used in place, never copied. */
export interface Tensor<T extends TensorType = TensorType> {
  type: T;
  dims: number[];
  data: TensorArrays[T];
}

/** An input or output of a loaded model. Dynamic dims are `null`, with their symbolic name when the model has one. */
export interface IoMeta {
  name: string;
  type: TensorType | string;
  shape: (number | null)[];
  dimNames: (string | null)[];
}

/** Flat, already-validated session options (engine.ts builds them). */
export interface NativeSessionOptions {
  path: string;
  provider: 'cpu' | 'cuda';
  deviceId: number;
  intraOpThreads: number;
  interOpThreads: number;
  executionMode: 'sequential' | 'parallel';
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  allowSpinning: boolean;
  cpuMemArena: boolean;
  memPattern: boolean;
  cudaMemLimit: number;
  cudaArenaExtendStrategy: 'nextPowerOfTwo' | 'sameAsRequested';
  cudnnConvAlgoSearch: 'exhaustive' | 'heuristic' | 'default';
  /** Write the optimised graph here while loading (the graph cache); its data file is `saveExternalData` beside it. */
  saveOptimizedPath?: string;
  saveExternalData?: string;
  /** Also write the pre-packed weights into that data file, so that a later load memory-maps them. */
  savePrepacked?: boolean;
}

export interface NativeSession {
  readonly inputs: IoMeta[];
  readonly outputs: IoMeta[];
  readonly provider: 'cpu' | 'cuda' | null;
  readonly activeRuns: number;
  readonly disposed: boolean;
  /** Runs on the addon's engine threads. `outputs`: names to fetch (ORT allocates, handed over without a copy), or preallocated tensors ORT writes into. */
  run(feeds: Record<string, Tensor>, outputs?: string[] | Record<string, Tensor>): Promise<Record<string, Tensor>>;
  dispose(): void;
}

/** A decoded image of exactly the batch's width × height, 8 bits per channel, interleaved. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export interface PackSpec {
  width: number;
  height: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Multiplier applied to 0–255 before mean/std (default 1/255). */
  scale?: number;
  channelOrder?: 'rgb' | 'bgr';
  /** First batch slot to write. */
  offset?: number;
}

/** An 8-bit interleaved image of any size (the input of `resizeImage`). */
export interface Raster {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** PIL's resampling filters that `resizeImage` reproduces bit for bit (8-bit images). */
export type ResampleFilter = 'bicubic' | 'bilinear' | 'lanczos';

/** The Qwen2-VL patch layout (`gme.image` of model.yaml) plus the first patch row of `out` to write. */
export interface VisionPatchSpec {
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** First row (of 3·temporalPatchSize·patchSize² floats) of `out` to write; default 0. */
  offset?: number;
}

/**
 * The class of the objects `loadSession` resolves to (exported so that `instanceof` works); constructing it from JS
 * throws MATCHD_BAD_INPUT, only the addon makes sessions.
 */
export interface NativeSessionClass {
  readonly prototype: NativeSession;
  new (never: never): NativeSession;
}

export interface Addon {
  Session: NativeSessionClass;
  loadSession(options: NativeSessionOptions): Promise<NativeSession>;
  /** Normalise and write NCHW planes into `out` (Float32Array → float32, Uint16Array → float16) off the event loop. */
  packImages(images: RawImage[], out: Float32Array | Uint16Array, spec: PackSpec): Promise<void>;
  /**
   * Resize like Pillow's `Image.resize(size, filter)` on an "L"/"RGB" image, bit-exact (channels independent, no
   * alpha premultiplication), on the libuv pool. Resolves to a new Buffer of width × height × channels.
   */
  resizeImage(image: Raster, spec: { width: number; height: number; filter?: ResampleFilter }): Promise<Buffer>;
  /**
   * Write an RGB image (sides multiples of patchSize·mergeSize) as Qwen2-VL patch rows into `out` from row
   * `spec.offset`: (H/p)·(W/p) rows of 3·temporalPatchSize·p² float32, the processor's exact values and order.
   */
  packVisionPatches(image: Raster & { channels: 3 }, out: Float32Array, spec: VisionPatchSpec): Promise<void>;
  float16ToFloat32(data: Uint16Array): Float32Array;
  float32ToFloat16(data: Float32Array): Uint16Array;
  versions(): { onnxruntime: string; ortApi: number; providers: string[] };
  /** One datagram to systemd's notification socket (a path or `@abstract`); null when sent, else why not. */
  sdNotify(socketPath: string, state: string): string | null;
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  /** Terminate runs in progress and join the engine threads (at process exit; later runs never settle). */
  stopEngine(): void;
}

/** Every export of the addon, checked against the loaded addon by test/engine/native-boundary.test.ts. */
export const ADDON_EXPORTS = [
  'Session', 'loadSession', 'packImages', 'resizeImage', 'packVisionPatches', 'float16ToFloat32', 'float32ToFloat16',
  'versions', 'sdNotify', 'setErrorClass', 'stopEngine',
] as const satisfies readonly (keyof Addon)[];
// A member of Addon missing from ADDON_EXPORTS fails the type check here.
const everyExportListed: Exclude<keyof Addon, (typeof ADDON_EXPORTS)[number]> extends never ? true : never = true;
void everyExportListed;

/** The addon's promise-returning functions (and `Session#run`): they settle on another thread, so see `callerStack`. */
const ASYNC_EXPORTS = ['loadSession', 'packImages', 'resizeImage', 'packVisionPatches'] as const satisfies readonly (keyof Addon)[];

/**
 * A native rejection is created when the work finishes, with no JavaScript on the stack, so its stack names no caller.
 * Like sharp, capture the caller's stack when the call is made (one `Error` per call: microseconds, beside
 * milliseconds of native work) and graft it onto the rejection. Synchronous throws (bad arguments) already carry it.
 */
function callerStack<A extends unknown[], R>(fn: (this: unknown, ...args: A) => Promise<R>): (this: unknown, ...args: A) => Promise<R> {
  return function withCallerStack(this: unknown, ...args: A): Promise<R> {
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, withCallerStack);
    return fn.apply(this, args).catch((err: unknown) => {
      if (err instanceof Error && caller.stack) {
        const frames = caller.stack.slice(caller.stack.indexOf('\n'));
        err.stack = `${err.name}: ${err.message}${frames}`;
      }
      throw err;
    });
  };
}

/** The addon as loaded, with the caller's stack grafted onto every rejection (`Session#run` through its prototype). */
function hardened(mod: Addon): Addon {
  const proto = mod.Session.prototype as NativeSession & { run: NativeSession['run'] };
  proto.run = callerStack(proto.run);
  const out = { ...mod };
  for (const name of ASYNC_EXPORTS) (out as Record<string, unknown>)[name] = callerStack(mod[name] as (...a: unknown[]) => Promise<unknown>);
  return Object.freeze(out);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the addon may be: an explicit override first, then the cmake-js build folders. */
export function addonCandidates(): string[] {
  const list = [path.join(root, 'build', 'Release', 'matchd.node'), path.join(root, 'build', 'Debug', 'matchd.node')];
  return process.env.MATCHD_ADDON_PATH ? [process.env.MATCHD_ADDON_PATH, ...list] : list;
}

let loaded: Addon | undefined;

/** Load the addon once per environment (each worker thread gets its own instance). */
export function addon(): Addon {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const file of addonCandidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file}: not found`);
      continue;
    }
    try {
      const mod = require(file) as Addon;
      mod.setErrorClass(MatchdError as unknown as new (code: string, message: string) => Error);
      // process.exit() while a run is in progress: stop ORT before exit() destroys its statics (see addon.cc).
      process.once('exit', () => mod.stopEngine());
      loaded = hardened(mod);
      return loaded;
    } catch (err) {
      tried.push(`${file}: ${(err as Error).message}`);
    }
  }
  throw new MatchdError(
    'MATCHD_ADDON_LOAD',
    [
      'the matchd native addon could not be loaded. Tried:',
      ...tried.map((t) => `  - ${t}`),
      'Fix: run `npm run build:native` in the matchd folder (it fetches ONNX Runtime 1.29.0 and builds the addon),',
      'or `npm install` on a linux-x64 machine with cmake >= 3.18 and a C++17 compiler.',
      'libonnxruntime.so.1 must sit next to matchd.node (the build puts it there).',
    ].join('\n'),
    { tried },
  );
}
