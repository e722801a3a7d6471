/** `matchd replay <jobId> | --since DURATION [--config FILE]`: re-queue webhook callbacks (dead-lettered or delivered). */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { ConfigSchema, interpolate, resolveFrom } from '../core/config.ts';
import { parseWithEnv } from '../core/env-coerce.ts';
import { MatchdError } from '../core/errors.ts';
import { Journal } from '../core/journal.ts';
import { UsageError, packageRoot } from './args.ts';

export const replayUsage = `matchd replay JOB_ID [--config FILE]       re-send a job's webhook callbacks (same webhook-id, fresh signature)
matchd replay --since 2h [--config FILE]   re-send callbacks of jobs finished since then (s, m, h, d or an ISO date)`;

/** `90s`, `30m`, `2h`, `1d` or an ISO date → epoch milliseconds. */
export function parseSince(v: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(v.trim());
  if (m) return now - Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since takes a duration like 2h, 30m, 1d or an ISO date; got ${JSON.stringify(v)}`);
  return t;
}

/** The journal path of a config, without needing its secrets (unset ${ENV} variables don't matter here). */
export function journalPath(file: string): string {
  let raw: Record<string, unknown>;
  try {
    raw = (parse(fs.readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new MatchdError('MATCHD_CONFIG_INVALID', `${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const filled = new Set<string>();
  const journal = parseWithEnv(ConfigSchema.shape.journal, interpolate(raw.journal, process.env, [], '', filled), filled);
  if (!journal.success) throw new MatchdError('MATCHD_CONFIG_INVALID', `${file}: journal: ${journal.error.issues.map((i) => i.message).join('; ')}`);
  return resolveFrom(file, journal.data.path);
}

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, since: { type: 'string' }, kind: { type: 'string', default: 'callback' } },
  });
  if ((positionals.length === 1) === (values.since !== undefined) || positionals.length > 1) throw new UsageError('replay takes one job id or --since');
  const file = path.resolve(values.config ?? path.join(packageRoot, 'config', 'default.yaml'));
  // Say which config and journal were looked at: without --config it is the package's default one.
  const from = `${values.config === undefined ? 'the default config ' : ''}${file}`;
  const db = journalPath(file);
  if (!fs.existsSync(db)) throw new MatchdError('MATCHD_JOURNAL', `no journal at ${db} (journal.path of ${from}); give the daemon's config with --config FILE`);
  let which: { jobId: number } | { sinceMs: number };
  if (positionals.length === 1) {
    const id = Number(positionals[0]);
    if (!Number.isSafeInteger(id) || id <= 0) throw new UsageError(`a job id is a positive integer; got ${JSON.stringify(positionals[0])}`);
    which = { jobId: id };
  } else which = { sinceMs: parseSince(values.since!) };
  const kind = values.kind!;
  const journal = new Journal(db);
  try {
    const where = `in ${db} (from ${from})`;
    if ('jobId' in which) {
      const job = journal.get(which.jobId);
      if (!job) throw new MatchdError('MATCHD_NOTHING_TO_DO', `no job ${which.jobId} ${where}; nothing re-queued`);
      const actions = journal.actionsOf(which.jobId).filter((a) => a.kind === kind);
      if (!actions.length) throw new MatchdError('MATCHD_NOTHING_TO_DO', `job ${which.jobId} (${job.state}, rule ${job.rule}) has no ${kind} actions ${where}; nothing re-queued`);
      const n = journal.replay(kind, which);
      if (n === 0) throw new MatchdError('MATCHD_NOTHING_TO_DO', `job ${which.jobId}'s ${actions.length} ${kind}(s) are already pending ${where}: a running daemon is sending them`);
      process.stdout.write(`re-queued ${n} ${kind}${n === 1 ? '' : 's'} of job ${which.jobId} ${where}; a running daemon sends them within a second\n`);
      return 0;
    }
    const since = new Date(which.sinceMs).toISOString();
    const n = journal.replay(kind, which);
    if (n === 0) throw new MatchdError('MATCHD_NOTHING_TO_DO', `no ${kind} of a job finished since ${since} to re-queue ${where}`);
    process.stdout.write(`re-queued ${n} ${kind}${n === 1 ? '' : 's'} since ${since} (jobs finished since then) ${where}; a running daemon sends them within a second\n`);
    return 0;
  } finally {
    journal.close();
  }
}
