/**
 * The statistics of `matchd calibrate`, on labelled values (a cosine or a score per example, match or not): ROC AUC
 * (Mann–Whitney, ties counted half), precision / recall / F1 at every candidate threshold, the adopt threshold (the
 * one with the requested precision that adopts the most matches) and the reject threshold (the highest that keeps the
 * requested recall of matches above it), the review zone between them, the share of examples each band gets, and bootstrap
 * intervals for all of it. Pure functions; `random` is seeded by the caller so a run can be repeated exactly.
 */

export interface Labelled {
  value: number;
  match: boolean;
}

export interface Point {
  /** Examples at or above this value are predicted "match". */
  threshold: number;
  tp: number;
  fp: number;
  precision: number;
  recall: number;
  f1: number;
}

/** ROC AUC: the chance that a random match scores above a random non-match (ties count half). */
export function rocAuc(xs: readonly Labelled[]): number {
  const sorted = [...xs].sort((a, b) => a.value - b.value);
  const pos = xs.filter((x) => x.match).length;
  const neg = xs.length - pos;
  if (!pos || !neg) return NaN;
  let rankSum = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j < sorted.length && sorted[j]!.value === sorted[i]!.value) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j share their average
    for (let k = i; k < j; k++) if (sorted[k]!.match) rankSum += avgRank;
    i = j;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Precision / recall / F1 with the threshold at each distinct value, highest first. */
export function prCurve(xs: readonly Labelled[]): Point[] {
  const sorted = [...xs].sort((a, b) => b.value - a.value);
  const pos = xs.filter((x) => x.match).length;
  const points: Point[] = [];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < sorted.length;) {
    const v = sorted[i]!.value;
    while (i < sorted.length && sorted[i]!.value === v) {
      if (sorted[i]!.match) tp++;
      else fp++;
      i++;
    }
    const precision = tp / (tp + fp);
    const recall = pos ? tp / pos : 0;
    points.push({ threshold: v, tp, fp, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 });
  }
  return points;
}

/**
 * A threshold between two observed values (`lower` < t ≤ `upper`), as short a decimal as lies in that gap, so the
 * examples fall on the same sides and the number in the config is readable.
 */
export function between(lower: number | undefined, upper: number): number {
  if (lower === undefined) return upper;
  for (let digits = 2; digits <= 6; digits++) {
    const f = 10 ** digits;
    const t = Math.round(((lower + upper) / 2) * f) / f;
    if (t > lower && t <= upper) return t;
    const t2 = Math.floor(upper * f) / f;
    if (t2 > lower && t2 <= upper) return t2;
  }
  return upper;
}

export interface Thresholds {
  /** The threshold whose "≥ t" set has the requested precision and the most matches (null: none reaches it). */
  adopt: number | null;
  /** The highest threshold that keeps the requested share of matches at or above it. */
  reject: number;
  /** Precision and recall of "≥ adopt", and the share of matches at or above reject. */
  adoptPrecision: number | null;
  adoptRecall: number | null;
  rejectRecall: number;
  /**
   * True when the reject threshold came out above the adopt one and was lowered to it: both targets are met by one
   * threshold (everything below adopt keeps even more matches out of the bottom band), so no review zone is needed.
   */
  overlap: boolean;
}

/** Adopt and reject thresholds for `precision` (of the top band) and `recall` (of matches, kept out of the bottom band). */
export function thresholds(xs: readonly Labelled[], precision: number, recall: number): Thresholds {
  const points = prCurve(xs); // highest threshold first
  const values = [...new Set(xs.map((x) => x.value))].sort((a, b) => b - a);
  const below = (v: number) => values[values.indexOf(v) + 1];
  // Adopt: of the thresholds with the precision, the one that adopts the most matches; of equals, the highest. (Going
  // lower past a non-match adopts no more matches: with classes far apart, the lowest threshold that still has the
  // precision would sit just above the best non-match and adopt it for nothing.)
  let adoptAt: Point | undefined;
  for (const p of points) if (p.precision >= precision && (!adoptAt || p.recall > adoptAt.recall)) adoptAt = p;
  // Reject: the highest threshold whose recall reaches the target (the first one scanning down).
  const rejectAt = points.find((p) => p.recall >= recall) ?? points[points.length - 1]!;
  const adopt = adoptAt ? between(below(adoptAt.threshold), adoptAt.threshold) : null;
  let reject = between(below(rejectAt.threshold), rejectAt.threshold);
  const overlap = adopt !== null && reject > adopt;
  if (overlap) reject = adopt;
  const matches = xs.filter((x) => x.match);
  return {
    adopt, reject, overlap,
    adoptPrecision: adoptAt?.precision ?? null,
    adoptRecall: adoptAt?.recall ?? null,
    rejectRecall: matches.filter((x) => x.value >= reject).length / Math.max(1, matches.length),
  };
}

export interface Shares {
  /** Share of all examples, of matches and of non-matches at or above adopt, between, below reject. */
  all: [number, number, number];
  match: [number, number, number];
  noMatch: [number, number, number];
}

export function bandShares(xs: readonly Labelled[], adopt: number | null, reject: number): Shares {
  const split = (list: readonly Labelled[]): [number, number, number] => {
    const n = Math.max(1, list.length);
    const top = list.filter((x) => adopt !== null && x.value >= adopt).length;
    const bottom = list.filter((x) => x.value < reject).length;
    return [top / n, (list.length - top - bottom) / n, bottom / n];
  };
  return { all: split(xs), match: split(xs.filter((x) => x.match)), noMatch: split(xs.filter((x) => !x.match)) };
}

/** A seeded generator (mulberry32): the same seed, the same bootstrap. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Interval {
  low: number;
  high: number;
}

export interface Bootstrap {
  rounds: number;
  auc: Interval;
  adopt: Interval | null;
  reject: Interval;
}

/** The p-quantile of sorted values (linear between neighbours). */
export function quantile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = (sorted.length - 1) * p;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
}

/**
 * 95 % intervals by resampling the examples with replacement (`rounds` times, each class resampled on its own so
 * every round has both): AUC, adopt and reject thresholds.
 */
export function bootstrap(xs: readonly Labelled[], precision: number, recall: number, rounds: number, random: () => number): Bootstrap {
  const pos = xs.filter((x) => x.match);
  const neg = xs.filter((x) => !x.match);
  const draw = (list: readonly Labelled[]) => Array.from({ length: list.length }, () => list[Math.floor(random() * list.length)]!);
  const aucs: number[] = [];
  const adopts: number[] = [];
  const rejects: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const sample = [...draw(pos), ...draw(neg)];
    aucs.push(rocAuc(sample));
    const t = thresholds(sample, precision, recall);
    if (t.adopt !== null) adopts.push(t.adopt);
    rejects.push(t.reject);
  }
  const interval = (v: number[]): Interval => {
    const s = v.sort((a, b) => a - b);
    return { low: quantile(s, 0.025), high: quantile(s, 0.975) };
  };
  // An adopt threshold that most rounds cannot find is not an interval worth printing.
  return { rounds, auc: interval(aucs), adopt: adopts.length >= rounds / 2 ? interval(adopts) : null, reject: interval(rejects) };
}

/** A histogram of values per class over `bins` equal bins spanning [lo, hi]. */
export function histogram(xs: readonly Labelled[], lo: number, hi: number, bins: number): { edges: number[]; match: number[]; noMatch: number[] } {
  const width = (hi - lo) / bins || 1;
  const match = new Array<number>(bins).fill(0);
  const noMatch = new Array<number>(bins).fill(0);
  for (const x of xs) {
    const i = Math.min(bins - 1, Math.max(0, Math.floor((x.value - lo) / width)));
    (x.match ? match : noMatch)[i]!++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * width), match, noMatch };
}
