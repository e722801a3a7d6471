/**
 * From scored, labelled examples to a proposal: AUC, the precision / recall table, the adopt and reject thresholds
 * with the review zone between them, the bands' shares, bootstrap intervals, warnings a person should read before
 * trusting the numbers, and the rule's new `bands` (and `range` for a linear 0–1 score).
 */
import type { Bands } from '../model/manifest.ts';
import { reviewBands } from '../review.ts';
import { bandShares, bootstrap, prCurve, quantile, rocAuc, seeded, thresholds, type Bootstrap, type Labelled, type Point, type Shares, type Thresholds } from './stats.ts';

export interface AnalyseOptions {
  adoptPrecision: number;
  rejectRecall: number;
  on: 'cosine' | 'score';
  /** The rule's bands now (their names are kept). */
  bands: Bands;
  /** Propose a `range` (the rule's score mapping is linear and the bands compare cosines). */
  proposeRange: boolean;
  rounds: number;
  seed: number;
  minPerClass: number;
}

export interface Proposal {
  bands: Bands;
  range?: [number, number];
  /** Bands of the rule left out (calibration places two boundaries: the top band's and the bottom band's). */
  dropped: string[];
}

export interface Calibration {
  on: 'cosine' | 'score';
  n: { match: number; noMatch: number };
  auc: number;
  targets: { adoptPrecision: number; rejectRecall: number };
  thresholds: Thresholds;
  adoptPoint?: Point;
  shares: Shares;
  bootstrap?: Bootstrap;
  curve: Point[];
  proposal: Proposal;
  warnings: string[];
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;

export function analyse(values: readonly Labelled[], o: AnalyseOptions): Calibration {
  const match = values.filter((v) => v.match);
  const noMatch = values.filter((v) => !v.match);
  const warnings: string[] = [];
  const auc = rocAuc(values);
  const t = thresholds(values, o.adoptPrecision, o.rejectRecall);
  const curve = prCurve(values);
  const adoptPoint = t.adopt === null ? undefined : curve.filter((p) => p.threshold >= t.adopt!).at(-1);
  const boot = o.rounds > 0 ? bootstrap(values, o.adoptPrecision, o.rejectRecall, o.rounds, seeded(o.seed)) : undefined;

  for (const [n, what] of [[match.length, 'match'], [noMatch.length, 'no-match']] as const) {
    if (n < o.minPerClass) warnings.push(`only ${n} ${what} example(s) (at least ${o.minPerClass} recommended): label ${o.minPerClass - n} more; the thresholds are shaky`);
  }
  if (boot) {
    const wide = (i: { low: number; high: number } | null, name: string) => {
      if (i && i.high - i.low > 0.05) warnings.push(`the ${name} threshold's 95 % interval is ${i.low.toFixed(3)}–${i.high.toFixed(3)}: more examples would pin it down`);
    };
    wide(boot.adopt, 'adopt');
    wide(boot.reject, 'reject');
  }
  if (auc < 0.7) warnings.push(`the model barely tells your matches from non-matches (AUC ${auc.toFixed(2)}): no threshold will do well; try other texts or another model`);
  if (t.adopt === null) {
    const best = Math.max(...curve.map((p) => p.precision));
    warnings.push(`no threshold gives ${pct(o.adoptPrecision)} precision (the best is ${pct(best)}): the proposal adopts nothing automatically (min 1)`);
  }

  return {
    on: o.on, n: { match: match.length, noMatch: noMatch.length }, auc,
    targets: { adoptPrecision: o.adoptPrecision, rejectRecall: o.rejectRecall },
    thresholds: t, ...(adoptPoint ? { adoptPoint } : {}), shares: bandShares(values, t.adopt, t.reject), ...(boot ? { bootstrap: boot } : {}),
    curve, proposal: propose(values, t, o, warnings), warnings,
  };
}

function pct(v: number): string {
  return `${Math.round(v * 1000) / 10} %`;
}

/** The rule's bands with the new thresholds: its best band from adopt, its review band from reject, its lowest below. */
function propose(values: readonly Labelled[], t: Thresholds, o: AnalyseOptions, warnings: string[]): Proposal {
  const names = o.bands.list.map((b) => b.name);
  const top = names[0]!;
  const bottom = names[names.length - 1]!;
  const review = reviewBands(o.bands)[0] ?? names.find((n) => n !== top && n !== bottom) ?? 'review';
  const marked = o.bands.list.find((b) => b.name === review)?.review;
  const list: Bands['list'] = [{ name: top, min: t.adopt ?? 1 }];
  if ((t.adopt ?? 1) > t.reject) list.push({ name: review, min: t.reject, ...(marked !== undefined ? { review: marked } : {}) });
  list.push({ name: bottom });
  const dropped = names.filter((n) => !list.some((b) => b.name === n));
  if (dropped.length) warnings.push(`the proposal has no place for band(s) ${dropped.join(', ')} (calibration finds two boundaries); their jobs would go to ${list.map((b) => b.name).join(' / ')}`);
  const proposal: Proposal = { bands: { on: o.on, list }, dropped };
  if (o.proposeRange) {
    const lo = quantile(values.filter((v) => !v.match).map((v) => v.value).sort((a, b) => a - b), 0.5);
    const hi = quantile(values.filter((v) => v.match).map((v) => v.value).sort((a, b) => a - b), 0.5);
    if (hi > lo) proposal.range = [r3(lo), r3(hi) > r3(lo) ? r3(hi) : hi];
  }
  return proposal;
}
