/**
 * The plugin contract. A source plugin is a factory plus a schema: `{ name, configSchema, create(ctx, config) }`
 * returning `{ start(), stop() }`. Everything a plugin needs arrives through `ctx`; a plugin never imports the
 * core's internals, another plugin, or the addon.
 */
import type { ZodType } from 'zod';
import type { ActionHandler } from './actions/runner.ts';
import type { ErrorCode } from './errors.ts';
import type { ItemProblem } from './item.ts';
import type { Logger } from './log.ts';

export type { ActionHandler } from './actions/runner.ts';
export type { ActionContext, ActionResult } from './actions/file-actions.ts';
export type { ItemProblem } from './item.ts';
export { PermanentActionError, RetryLaterError } from './actions/file-actions.ts';

/** What a source hands to the core: one image, with its own texts and meta or not, to score under one rule. */
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
  /** The item's own texts: scored instead of the rule's (checked against the config's `items` limits). */
  texts?: string[];
  /** The item's meta as its sender gave it (a JSON object): echoed as `meta` in the result, callbacks and status. */
  meta?: Record<string, unknown>;
  /** Where the item came from, as the source describes it (file path, object key, caller identity); actions read it. */
  origin?: Record<string, unknown>;
  /** Files that belong with the image (its texts companion): `move`/`copy` take them along, named after the image. */
  companions?: string[];
  /** Actions this job gets whatever its outcome, after the rule's (e.g. a callback to the URL the caller gave). */
  actions?: { kind: string; options?: Record<string, unknown> }[];
  /**
   * The item is already known to be unusable (e.g. an S3 object over the size limit, never downloaded; a companion
   * that is not UTF-8): it is journalled and routed to the rule's `error` outcome with this code, without decoding.
   */
  failed?: { code: ErrorCode; message: string };
  /**
   * What the core does with texts or meta over the limits, or a missing text for a `per-item` rule: `fail` (the
   * default) journals the item as failed with the code, so it takes the rule's `error` actions; `refuse` journals
   * nothing and answers `{ accepted: false, reason: 'invalid' }` (HTTP intake turns that into a 400).
   */
  onInvalid?: 'fail' | 'refuse';
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
  origin: Record<string, unknown>;
  /** The item's own texts, or null when it is scored against the rule's. */
  texts: string[] | null;
  createdAt: number;
}

export type SubmitResult =
  | { accepted: true; jobId: string; duplicate: boolean }
  | { accepted: false; reason: 'backpressure' | 'stopping' | 'unknown_rule'; retryAfterMs?: number; message: string }
  | { accepted: false; reason: 'invalid'; code: ErrorCode; problems: string[]; message: string };

/** One image scored now against texts, through the same pipeline and batches as jobs (POST /v1/score). */
export interface ScoreRequest {
  image: { path: string };
  /** The texts, in the order the results come back; omitted: the rule's. */
  texts?: string[];
  rule?: string;
}

export type ScoreResult =
  | { ok: true; rule: string; results: { text: string; cosine: number; score: number; band: string; truncated: boolean }[]; model: { name: string; version: string; provider: string } }
  | { ok: false; reason: 'backpressure' | 'stopping' | 'unknown_rule'; message: string; retryAfterMs?: number }
  /** `invalid`: the texts (or their absence under a per-item rule); `item`: the image could not be scored. */
  | { ok: false; reason: 'invalid' | 'item'; code: ErrorCode; message: string; problems?: string[] };

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
  /**
   * Score one image against texts now (no journal, no actions): the same batches and text cache as jobs, refused
   * like a submit when the queue is full. A bad image or text comes back as `{ ok: false, reason: 'item' }`.
   */
  score(req: ScoreRequest): Promise<ScoreResult>;
  /** Problems with an item's own texts and meta under the config's `items` limits (undefined when fine). */
  checkItem(item: { texts?: unknown; meta?: unknown }): ItemProblem | undefined;
  /** True when the rule (default: this source's) has `texts: per-item`, so every item must bring its own texts. */
  needsTexts(rule?: string): boolean;
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
