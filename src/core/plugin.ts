/**
 * The plugin contract. A source plugin is a factory plus a schema: `{ name, configSchema, create(ctx, config) }`
 * returning `{ start(), stop() }`. Everything a plugin needs arrives through `ctx`; a plugin never imports the
 * core's internals, another plugin, or the addon.
 */
import type { ZodType } from 'zod';
import type { ActionHandler } from './actions/runner.ts';
import type { ErrorCode } from './errors.ts';
import type { Logger } from './log.ts';

export type { ActionHandler } from './actions/runner.ts';
export type { ActionContext, ActionResult } from './actions/file-actions.ts';
export { PermanentActionError, RetryLaterError } from './actions/file-actions.ts';

/** What a source hands to the core: one image to score under one rule. */
export interface JobRequest {
  /** Same key → same job: a repeat submit is recognised and not scored again. */
  dedupeKey: string;
  /**
   * The image, as a local file path. Sources that receive bytes (uploads, S3 objects) spool them to a file in
   * `ctx.spoolDir` first and set `temporary`: the core deletes it once the job's actions are done.
   */
  image: { path: string; temporary?: boolean };
  /** A rule name from the config (defaults to the source instance's configured rule). */
  rule?: string;
  /** Free-form details kept with the job and passed to actions (e.g. the original relative path). */
  meta?: Record<string, unknown>;
  /** Actions this job gets whatever its outcome, after the rule's (e.g. a callback to the URL the caller gave). */
  actions?: { kind: string; options?: Record<string, unknown> }[];
  /**
   * The item is already known to be unusable (e.g. an S3 object over the size limit, never downloaded): it is
   * journalled and routed to the rule's `error` outcome with this code, without decoding anything.
   */
  failed?: { code: ErrorCode; message: string };
}

/** What a source may see of a job. */
export interface JobView {
  id: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  source: string;
  rule: string;
  /** Band name, or `error`, once scored. */
  outcome: string | null;
  /** The result document (the sidecar's content) once scored. */
  result: Record<string, unknown> | null;
  meta: Record<string, unknown>;
  createdAt: number;
}

export type SubmitResult =
  | { accepted: true; jobId: string; duplicate: boolean }
  | { accepted: false; reason: 'backpressure' | 'stopping' | 'unknown_rule'; retryAfterMs?: number; message: string };

export type HealthState = 'ok' | 'degraded' | 'down';

/** Durable per-plugin key/value state, kept in the journal (e.g. listing cursors). */
export interface PluginState {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown): void;
}

export interface PluginContext {
  /** The instance name from the config. */
  readonly name: string;
  readonly log: Logger;
  /** Journal the job (synchronously, durably) or say why not. Never throws for a full queue. */
  submit(job: JobRequest): SubmitResult;
  /** True when this dedupe key is already journalled (queued, running or done). */
  isKnown(dedupeKey: string): boolean;
  readonly state: PluginState;
  /** Report this source's health; shown on /healthz. */
  setHealth(state: HealthState, detail?: string): void;
  /** Look a job up by the id `submit` returned. */
  getJob(jobId: string): JobView | undefined;
  /** The job journalled under a dedupe key, if any (to answer a repeated request with the original job). */
  findJob(dedupeKey: string): JobView | undefined;
  /** Resolves with the job once it is done or failed, or with its current view after `timeoutMs`. */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobView | undefined>;
  /** A folder for this source's temporary files (created, survives restarts, inside the journal's folder). */
  readonly spoolDir: string;
  /** Resolve a path from this plugin's options the way the config's own paths are (relative to the config file). */
  resolvePath(p: string): string;
  /** Aborted when the daemon stops intake. */
  readonly signal: AbortSignal;
}

export interface SourceInstance {
  start(): Promise<void>;
  /** Stop intake and release resources; jobs already submitted are the core's. */
  stop(): Promise<void>;
  /**
   * Action kinds this instance carries out for its own jobs (e.g. `callback`, `tag`). Rules name them like the
   * core's (`- tag: { ... }`); the core journals them and calls the handler of the instance that submitted the job.
   */
  actions?: Record<string, ActionHandler>;
}

/** A problem a plugin's `preflight` finds: `key` is the option's path inside `options` (e.g. `paths.0`, `port`). */
export interface PreflightProblem {
  key: string;
  message: string;
  code?: 'MATCHD_CONFIG_INVALID' | 'MATCHD_PORT_IN_USE';
}

export { probePort } from './port-check.ts';

export interface SourcePlugin<C = unknown> {
  /** The type name used in config (`sources[].type`). */
  readonly name: string;
  /** Validates this plugin's `options` block. */
  readonly configSchema: ZodType<C>;
  /** The action kinds its instances provide, with the schema of each one's options in a rule (checked at start-up). */
  readonly actionSchemas?: Record<string, ZodType>;
  create(ctx: PluginContext, config: C): SourceInstance | Promise<SourceInstance>;
  /**
   * Checks without side effects, run at start-up before matchd creates anything (journal, admin port, other
   * sources): folders exist, ports are free... Each problem names its option; none means the source may start.
   */
  preflight?(config: C, helpers: { resolvePath(p: string): string; name: string }): PreflightProblem[] | Promise<PreflightProblem[]>;
}

/** Check an object really is a plugin before registering it (external plugins come from anywhere). */
export function assertPlugin(candidate: unknown, from: string): asserts candidate is SourcePlugin {
  const p = candidate as Partial<SourcePlugin>;
  const problems: string[] = [];
  if (!p || typeof p !== 'object') problems.push('is not an object');
  else {
    if (typeof p.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(p.name)) problems.push('name must be a lower-case string like "folder"');
    if (!p.configSchema || typeof (p.configSchema as { safeParse?: unknown }).safeParse !== 'function') problems.push('configSchema must be a zod schema');
    if (typeof p.create !== 'function') problems.push('create(ctx, config) must be a function');
  }
  if (problems.length) throw new TypeError(`invalid plugin from ${from}: ${problems.join('; ')}`);
}
