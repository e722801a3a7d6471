/** The overhead scenario's options, rows and result, and the requests its engine children answer. */
import type { ScenarioResult, Stats } from '../lib.ts';

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

export type EngineName = 'ours' | 'onnxruntime-node';
export const IMPLS = ['ours', 'ours-prealloc', 'onnxruntime-node', 'onnxruntime-node-prealloc'] as const;
export type ImplName = (typeof IMPLS)[number];
export const implEngine = (i: ImplName): EngineName => (i.startsWith('ours') ? 'ours' : 'onnxruntime-node');
export const implPrealloc = (i: ImplName): boolean => i.endsWith('-prealloc');

export interface PerRunRow {
  model: string;
  threads: number;
  impl: ImplName;
  stats: Stats;
  /** Median of each round, in round order. */
  roundMedians: number[];
}

export interface RatioRow {
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

export interface StallRow {
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

export interface Target {
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

export function threadLabel(t: number | null): string {
  return t === null ? '–' : t === 0 ? 'default' : String(t);
}

/** What the coordinator asks an engine child (engine-child.ts) to do. */
export type Request =
  | { cmd: 'open'; key: string; path: string; dims: number[]; threads: number; spinning: boolean; seed: number; check: 'identity' | 'add' | null }
  | { cmd: 'time'; key: string; prealloc: boolean; warmup: number; iterations: number }
  | { cmd: 'stall'; key: string }
  | { cmd: 'busy'; ms: number }
  | { cmd: 'idle'; ms: number }
  | { cmd: 'close'; key: string };

export interface StallSample {
  maxGap: number;
  inferenceMs: number;
  ticks: number;
}

/** What an `open` answers. */
export interface OpenInfo {
  /** With a preallocated output, is the returned tensor's data the caller's own array (null: not checked)? */
  preallocReturnsCallerBuffer: boolean | null;
}
