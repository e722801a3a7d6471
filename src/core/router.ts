/**
 * Routing: a rule turns a job's scores (or its error) into an outcome — a band name or `error` — and the
 * outcome into the concrete actions to journal, with path templates resolved.
 */
import path from 'node:path';
import type { Rule } from './config.ts';
import type { Job } from './journal.ts';
import type { TextScore } from './scoring.ts';

export interface ScoredOutcome {
  outcome: string;
  /** The text that decided the band (best match, or worst for `match: all`). */
  decidedBy?: TextScore;
  results?: TextScore[];
  error?: { code: string; message: string };
}

/** best: the best-matching text's band decides; all: the worst text's band does (every text must pass). */
export function decide(rule: Rule, results: TextScore[]): ScoredOutcome {
  const pick = results.reduce((a, b) => (rule.match === 'all' ? (b.cosine < a.cosine ? b : a) : b.cosine > a.cosine ? b : a));
  return { outcome: pick.band, decidedBy: pick, results };
}

function fill(template: string, vars: Record<string, string>, baseDir: string): string {
  return path.resolve(baseDir, template.replace(/\{(band|outcome|rule|source)\}/g, (_, k: string) => vars[k]!));
}

/** The JSON a sidecar holds and a log line carries. */
export function resultDocument(job: Job, o: ScoredOutcome, model: { name: string; version: string; provider: string }): Record<string, unknown> {
  return {
    jobId: job.id,
    file: path.basename(job.imagePath),
    originalPath: job.imagePath,
    source: job.source,
    rule: job.rule,
    outcome: o.outcome,
    ...(o.decidedBy ? { decidedBy: o.decidedBy.text } : {}),
    ...(o.results ? { results: o.results.map(({ text, cosine, score, band, truncated }) => ({ text, cosine, score, band, truncated })) } : {}),
    ...(o.error ? { error: o.error } : {}),
    textsFrom: job.texts ? 'item' : 'rule',
    model,
    meta: job.meta,
    origin: job.origin,
  };
}

/**
 * The actions for an outcome: the rule's list for that band (or `error`), else its `default` list; then the job's
 * own extra actions; then, for a temporary image copy, its deletion. Paths in core actions are resolved here.
 */
export function planActions(rule: Rule, job: Job, o: ScoredOutcome, doc: Record<string, unknown>, baseDir: string): { kind: string; payload: Record<string, unknown> }[] {
  const specs = [...(rule.actions[o.outcome] ?? rule.actions.default ?? []), ...(job.extra.actions ?? []).map((a) => ({ kind: a.kind, options: a.options ?? {} }))];
  const vars = { band: o.outcome, outcome: o.outcome, rule: job.rule, source: job.source };
  const planned: { kind: string; payload: Record<string, unknown> }[] = specs.map(({ kind, options }) => {
    switch (kind) {
      case 'move':
      case 'copy':
        return { kind, payload: { src: job.imagePath, dir: fill(String(options.to), vars, baseDir), ...(job.extra.companions?.length ? { companions: job.extra.companions } : {}) } };
      case 'sidecar':
        return { kind, payload: { ...(options.to ? { dir: fill(String(options.to), vars, baseDir) } : {}), doc } };
      case 'log':
        return { kind, payload: { level: options.level ?? 'info', doc } };
      default: // a plugin's kind: its options and the result, for the source's own handler
        return { kind, payload: { options, doc } };
    }
  });
  if (job.extra.temporary) planned.push({ kind: 'discard', payload: { path: job.imagePath } });
  return planned;
}
