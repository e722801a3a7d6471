/**
 * The plugin contract. A source plugin is a factory plus a schema: `{ name, configSchema, create(ctx, config) }`
 * returning `{ start(), stop() }`. Everything a plugin needs arrives through `ctx`; a plugin never imports the
 * core's internals, another plugin, or the addon.
 */
import type { ZodType } from 'zod';
import type { Logger } from './log.ts';

/** What a source hands to the core: one image to score under one rule. */
export interface JobRequest {
  /** Same key → same job: a repeat submit is recognised and not scored again. */
  dedupeKey: string;
  /** The image, as a local file path (sources that fetch remote bytes spool them to a file first). */
  image: { path: string };
  /** A rule name from the config (defaults to the source instance's configured rule). */
  rule?: string;
  /** Free-form details kept with the job and passed to actions (e.g. the original relative path). */
  meta?: Record<string, unknown>;
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
  /** Resolve a path from this plugin's options the way the config's own paths are (relative to the config file). */
  resolvePath(p: string): string;
  /** Aborted when the daemon stops intake. */
  readonly signal: AbortSignal;
}

export interface SourceInstance {
  start(): Promise<void>;
  /** Stop intake and release resources; jobs already submitted are the core's. */
  stop(): Promise<void>;
}

export interface SourcePlugin<C = unknown> {
  /** The type name used in config (`sources[].type`). */
  readonly name: string;
  /** Validates this plugin's `options` block. */
  readonly configSchema: ZodType<C>;
  create(ctx: PluginContext, config: C): SourceInstance | Promise<SourceInstance>;
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
