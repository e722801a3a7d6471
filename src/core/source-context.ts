/**
 * What a source's instance gets from the core (`PluginContext`): submit and score through the daemon, its own state
 * and the jobs in the journal (every call guarded: while the journal is paused reads answer the pause, writes are
 * skipped), its spool folder, and the intake signal. Built once per source by the plugin host.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.ts';
import { ruleTexts } from './intake.ts';
import { checkItem } from './item.ts';
import type { JobWaiters } from './job-waiters.ts';
import type { JournalApi } from './journal-api.ts';
import type { JournalHealth } from './journal-health.ts';
import type { Logger } from './log.ts';
import type { JobRequest, JobView, PluginContext, ScoreRequest, ScoreResult, SubmitResult } from './plugin.ts';
import type { LoadedSource, SourceHealth } from './plugin-host.ts';

/** The daemon's side of every source's context. */
export interface SourceHost {
  config: Config;
  log: Logger;
  journal(): JournalApi;
  health(): JournalHealth;
  submit(source: string, defaultRule: string, req: JobRequest): SubmitResult;
  score(defaultRule: string, req: ScoreRequest): Promise<ScoreResult>;
  waiters: JobWaiters;
  resolve(p: string): string;
  spoolDir(source: string): string;
  signal: AbortSignal;
}

export function sourceContext(host: SourceHost, source: LoadedSource, setHealth: (h: SourceHealth) => void): PluginContext {
  const { name, rule: defaultRule } = source;
  const { config } = host;
  return {
    name,
    log: host.log.child({ source: name }),
    submit: (job) => host.submit(name, defaultRule, job),
    score: (req) => host.score(defaultRule, req),
    checkItem: (item) => checkItem(item, config.items),
    needsTexts: (rule) => {
      const r = config.rules[rule ?? defaultRule];
      return !!r && ruleTexts(r) === undefined;
    },
    isKnown: (key) => host.health().run('isKnown', () => host.journal().isKnown(key), false),
    state: {
      get: <T>(key: string) => host.health().run('read plugin state', () => host.journal().pluginGet(name, key) as T | undefined, undefined),
      set: (key, value) => host.health().run('write plugin state', () => host.journal().pluginSet(name, key, value), undefined),
    },
    setHealth: (state, detail) => setHealth({ state, ...(detail ? { detail } : {}) }),
    resolvePath: (p) => host.resolve(p),
    getJob: (id) => jobView(host.journal(), host.health(), id),
    findJob: (key) => {
      const job = host.health().runOrThrow('find job', () => host.journal().byDedupeKey(key));
      return job ? jobView(host.journal(), host.health(), String(job.id)) : undefined;
    },
    waitForJob: (id, ms) => host.waiters.wait(id, ms),
    spoolDir: host.spoolDir(name),
    signal: host.signal,
  };
}

/** A job as sources may see it; throws the pause's error while the journal is paused. */
export function jobView(journal: JournalApi, health: JournalHealth, id: string): JobView | undefined {
  const n = Number(id);
  const job = Number.isSafeInteger(n) && n > 0 ? health.runOrThrow('read job', () => journal.get(n)) : undefined;
  if (!job) return undefined;
  return {
    id: String(job.id), state: job.state, source: job.source, rule: job.rule, outcome: job.outcome,
    result: (job.result as Record<string, unknown> | null) ?? null, meta: job.meta, origin: job.origin, texts: job.texts, createdAt: job.createdAt,
  };
}

/**
 * Where a source spools uploads and downloads (created). With a shared journal it is per node (two intake nodes of
 * one source never write the same name) under journal.spoolDir, which workers must see at the same path.
 */
export function spoolDirOf(config: Config, resolve: (p: string) => string, node: string | undefined, source: string): string {
  const j = config.journal;
  const root = j.spoolDir ? resolve(j.spoolDir) : path.join(path.dirname(resolve(j.path)), 'spool');
  const dir = node !== undefined ? path.join(root, node, source) : path.join(root, source);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
