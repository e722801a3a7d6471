/**
 * The engine: an ONNX model loaded by the native addon, run off the event loop.
 * Options are checked here, once, and handed to the addon as one flat object.
 */
import fs from 'node:fs';
import { Checker } from './check.ts';
import { MatchdError, isMatchdError } from './errors.ts';
import { defaultMaxModelBytes, graphCacheDir, planCachedLoad, removeEntry, type GraphCacheSettings, type GraphCacheStatus } from './graph-cache.ts';
import { addon, type IoMeta, type NativeSession, type NativeSessionOptions, type Tensor } from './native.ts';

export type { IoMeta, Tensor, TensorType } from './native.ts';
export type { GraphCacheStatus } from './graph-cache.ts';

export interface CudaOptions {
  /** Device memory the CUDA arena may use, in bytes (default: no limit). */
  memLimitBytes?: number;
  arenaExtendStrategy?: 'nextPowerOfTwo' | 'sameAsRequested';
  cudnnConvAlgoSearch?: 'exhaustive' | 'heuristic' | 'default';
}

/** Warnings go here (a pino logger fits); without one they become process warnings. */
export interface EngineLogger {
  warn(obj: object, msg: string): void;
}

export interface EngineOptions {
  provider?: 'cpu' | 'cuda';
  deviceId?: number;
  /** ORT intra-op threads; 0 = ORT's default (one per physical core). */
  intraOpThreads?: number;
  interOpThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Busy-wait in ORT's thread pool between ops. Off by default: it steals the cores that decode images. */
  allowSpinning?: boolean;
  cpuMemArena?: boolean;
  memPattern?: boolean;
  cuda?: CudaOptions;
  /** If CUDA cannot load, run on CPU instead (logged as a warning, and `provider` says 'cpu'). Default false. */
  fallbackToCpu?: boolean;
  /**
   * Folder of cached optimised graphs (CPU provider; see graph-cache.ts), or false for none. Default:
   * $MATCHD_GRAPH_CACHE (a folder, or "off"), else $XDG_CACHE_HOME/matchd/graphs (~/.cache/matchd/graphs).
   */
  graphCache?: string | false;
  /** Models smaller than this (graph + external data, bytes) are not cached (default 64 MiB). */
  graphCacheMinBytes?: number;
  /** Models larger than this are not cached (default: an eighth of RAM; see graph-cache.ts for why). */
  graphCacheMaxBytes?: number;
  logger?: EngineLogger;
}

/** Smaller models load in well under a second: a cached copy would save less than it costs to read. */
const GRAPH_CACHE_MIN_BYTES = 64 * 2 ** 20;

const OPTION_KEYS = [
  'provider', 'deviceId', 'intraOpThreads', 'interOpThreads', 'executionMode', 'graphOptimizationLevel',
  'allowSpinning', 'cpuMemArena', 'memPattern', 'cuda', 'fallbackToCpu', 'graphCache', 'graphCacheMinBytes', 'graphCacheMaxBytes', 'logger',
] as const;

/** Validate user options into the addon's flat form; every problem listed in one MATCHD_BAD_OPTION. */
export function resolveEngineOptions(modelPath: string, options: EngineOptions = {}): NativeSessionOptions {
  const c = new Checker();
  c.known('engine', options, OPTION_KEYS);
  const cuda = options.cuda ?? {};
  c.known('engine.cuda', cuda, ['memLimitBytes', 'arenaExtendStrategy', 'cudnnConvAlgoSearch']);
  const resolved: NativeSessionOptions = {
    path: modelPath,
    provider: c.oneOf('provider', options.provider, ['cpu', 'cuda'], 'cpu'),
    deviceId: c.int('deviceId', options.deviceId, 0, 0, 64),
    intraOpThreads: c.int('intraOpThreads', options.intraOpThreads, 0, 0, 1024),
    interOpThreads: c.int('interOpThreads', options.interOpThreads, 0, 0, 1024),
    executionMode: c.oneOf('executionMode', options.executionMode, ['sequential', 'parallel'], 'sequential'),
    graphOptimizationLevel: c.oneOf(
      'graphOptimizationLevel', options.graphOptimizationLevel, ['disabled', 'basic', 'extended', 'all'], 'all'),
    allowSpinning: c.bool('allowSpinning', options.allowSpinning, false),
    cpuMemArena: c.bool('cpuMemArena', options.cpuMemArena, true),
    memPattern: c.bool('memPattern', options.memPattern, true),
    cudaMemLimit: c.int('cuda.memLimitBytes', cuda.memLimitBytes, 0, 0),
    cudaArenaExtendStrategy: c.oneOf(
      'cuda.arenaExtendStrategy', cuda.arenaExtendStrategy, ['nextPowerOfTwo', 'sameAsRequested'], 'nextPowerOfTwo'),
    cudnnConvAlgoSearch: c.oneOf(
      'cuda.cudnnConvAlgoSearch', cuda.cudnnConvAlgoSearch, ['exhaustive', 'heuristic', 'default'], 'exhaustive'),
  };
  c.bool('fallbackToCpu', options.fallbackToCpu, false);
  graphCacheSettings(options, c);
  c.done('MATCHD_BAD_OPTION', 'invalid engine options');
  return resolved;
}

/** Where optimised graphs are cached for these options; null when they are not. */
function graphCacheSettings(options: EngineOptions, c: Checker): GraphCacheSettings | null {
  const g = options.graphCache;
  if (g !== undefined && g !== false && (typeof g !== 'string' || g === '')) {
    c.problems.push(`Expected a folder path or false for graphCache but received ${JSON.stringify(g)}`);
  }
  const minModelBytes = c.int('graphCacheMinBytes', options.graphCacheMinBytes, GRAPH_CACHE_MIN_BYTES, 0);
  const maxModelBytes = c.int('graphCacheMaxBytes', options.graphCacheMaxBytes, defaultMaxModelBytes(), 0);
  const dir = typeof g === 'string' && g !== '' ? graphCacheDir(g) : g === false ? null : graphCacheDir(undefined);
  return dir && (options.provider ?? 'cpu') === 'cpu' ? { dir, minModelBytes, maxModelBytes } : null;
}

function warn(options: EngineOptions, message: string, details: object = {}): void {
  if (options.logger) options.logger.warn(details, message);
  else process.emitWarning(message, { code: 'MATCHD_GRAPH_CACHE' });
}

/**
 * Load through the graph cache: a hit opens the cached optimised graph (optimisation off: it is done); a miss loads
 * the model and has ORT write its optimised graph into the cache. The cache failing never fails the load.
 */
async function loadCached(
  resolved: NativeSessionOptions, settings: GraphCacheSettings, options: EngineOptions,
): Promise<{ native: NativeSession; status: GraphCacheStatus }> {
  let plan;
  try {
    plan = await planCachedLoad(settings, resolved.path, addon().versions().onnxruntime, resolved.graphOptimizationLevel);
  } catch (err) {
    warn(options, `graph cache unavailable, loading ${resolved.path} without it: ${(err as Error).message}`, { dir: settings.dir });
    return { native: await addon().loadSession(resolved), status: 'failed' };
  }
  if (plan === 'small' || plan === 'large' || plan === 'unreadable') {
    return { native: await addon().loadSession(resolved), status: plan === 'unreadable' ? 'off' : plan };
  }
  if (plan.hit) {
    try {
      return { native: await addon().loadSession({ ...resolved, path: plan.hit.graph, graphOptimizationLevel: 'disabled' }), status: 'hit' };
    } catch (err) {
      removeEntry(plan.hit.entry);
      warn(options, `cached graph ${plan.hit.graph} did not load (removed): ${(err as Error).message}`, { dir: settings.dir });
      return { native: await addon().loadSession(resolved), status: 'failed' };
    }
  }
  const store = plan.store!;
  let native: NativeSession;
  try {
    native = await addon().loadSession({ ...resolved, saveOptimizedPath: store.graph, saveExternalData: store.data, savePrepacked: true });
  } catch (err) {
    store.abandon();
    // A failure to write the cache surfaces here too: the model decides by loading on its own.
    native = await addon().loadSession(resolved);
    warn(options, `could not write ${resolved.path}'s optimised graph to the cache: ${(err as Error).message}`, { dir: settings.dir });
    return { native, status: 'failed' };
  }
  try {
    store.publish();
    return { native, status: 'stored' };
  } catch (err) {
    store.abandon();
    warn(options, `could not publish ${resolved.path}'s optimised graph in the cache: ${(err as Error).message}`, { dir: settings.dir });
    return { native, status: 'failed' };
  }
}

/** Turn ORT's CUDA load failure into one that names the missing library and how to get it. */
export function explainCudaFailure(err: MatchdError): MatchdError {
  const m = /([A-Za-z0-9_.+-]+\.so(?:\.[0-9]+)*): cannot open shared object file/.exec(err.message);
  const missing = m?.[1] ?? null;
  const fix = missing?.startsWith('libonnxruntime_providers_cuda')
    ? 'run `npm run setup:cuda` to install the CUDA execution provider next to the addon'
    : 'install the CUDA 13 runtime, cuBLAS and cuDNN 9 and put their lib folders on LD_LIBRARY_PATH';
  const what = missing ? `${missing} cannot be loaded` : 'the provider failed to initialise';
  return new MatchdError('MATCHD_CUDA_UNAVAILABLE', `CUDA is unavailable: ${what}. Fix: ${fix}.\nDetail: ${err.message}`, {
    missingLibrary: missing,
  });
}

/** A loaded model. `run` resolves on the event loop; the work itself happens on the libuv thread pool. */
export class InferenceSession {
  /** Set when CUDA was asked for but the session runs on CPU (`fallbackToCpu`), with the reason. */
  readonly fallbackReason: string | undefined;

  private constructor(
    private readonly native: NativeSession,
    fallbackReason?: string,
    /** How the graph cache served this load. */
    readonly graphCache: GraphCacheStatus = 'off',
  ) {
    this.fallbackReason = fallbackReason;
  }

  /** Load an ONNX file. Parsing and graph optimisation run off the event loop. */
  static async open(modelPath: string, options: EngineOptions = {}): Promise<InferenceSession> {
    const resolved = resolveEngineOptions(modelPath, options);
    if (!fs.existsSync(modelPath)) {
      throw new MatchdError('MATCHD_MODEL_LOAD', `model file not found: ${modelPath}`, { path: modelPath });
    }
    const cache = graphCacheSettings(options, new Checker()); // options were checked just above
    try {
      if (cache) {
        const { native, status } = await loadCached(resolved, cache, options);
        return new InferenceSession(native, undefined, status);
      }
      return new InferenceSession(await addon().loadSession(resolved));
    } catch (err) {
      if (!isMatchdError(err, 'MATCHD_CUDA_UNAVAILABLE')) throw err;
      const explained = explainCudaFailure(err);
      if (!options.fallbackToCpu) throw explained;
      const warning = `CUDA requested but unavailable; FALLING BACK TO CPU (fallbackToCpu is set). ${explained.message}`;
      if (options.logger) options.logger.warn({ code: explained.code, ...explained.details }, warning);
      else process.emitWarning(warning, { code: explained.code });
      const cpu = await addon().loadSession({ ...resolved, provider: 'cpu' });
      return new InferenceSession(cpu, explained.message);
    }
  }

  get inputs(): IoMeta[] {
    return this.native.inputs;
  }

  get outputs(): IoMeta[] {
    return this.native.outputs;
  }

  /** The execution provider really in use ('cpu' after a fallback), or null once disposed. */
  get provider(): 'cpu' | 'cuda' | null {
    return this.native.provider;
  }

  get activeRuns(): number {
    return this.native.activeRuns;
  }

  get disposed(): boolean {
    return this.native.disposed;
  }

  /**
   * Run the model. Input data is used in place (do not modify it until the promise settles).
   * `outputs`: names to fetch, or preallocated tensors that ORT writes into directly.
   */
  async run(feeds: Record<string, Tensor>, outputs?: string[] | Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return this.native.run(feeds, outputs); // async: a refused call (bad input, disposed) rejects, never throws
  }

  /** Release the model. Refused with MATCHD_SESSION_BUSY while runs are in flight. */
  dispose(): void {
    this.native.dispose();
  }
}
