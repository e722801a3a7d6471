/**
 * Daemon configuration: YAML with ${ENV} interpolation, validated once at start-up against one zod schema
 * (also published as config/config.schema.json), every problem listed with its path, then frozen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { z, type ZodType } from 'zod';
import { CallbackActionSchema, CallbacksConfigSchema } from './callbacks/config.ts';
import { parseWithEnv } from './env-coerce.ts';
import { MatchdError } from './errors.ts';
import { problemsError, zodProblems } from './problems.ts';
import { nonNegInt, positiveInt } from './config-fields.ts';
import { DEFAULT_ITEM_LIMITS } from './item.ts';
import { BandsSchema } from './model/manifest.ts';
import { UiConfigSchema, uiProblems } from './ui-config.ts';

/** Path templates may use {band}, {rule}, {source}, {outcome}. */
const template = z.string().min(1);

/** The core's action kinds and their options. Plugins add kinds (e.g. `tag`), checked at start-up. */
export const CORE_ACTIONS = {
  move: z.strictObject({ to: template }),
  copy: z.strictObject({ to: template }),
  sidecar: z.strictObject({ to: template.optional().describe('folder; default: next to the moved/copied file, else next to the source') }),
  log: z.strictObject({ level: z.enum(['info', 'warn', 'error']).default('info') }),
  /** A signed Standard Webhooks POST to a named endpoint from the top-level `callbacks.endpoints`. */
  callback: CallbackActionSchema,
} as const;

/** One action: `{ <kind>: <options> }`, e.g. `{ move: { to: sorted/{band} } }` or `{ sidecar: {} }`. */
export const ActionSchema = z
  .record(z.string(), z.unknown())
  .superRefine((o, ctx) => {
    const keys = Object.keys(o);
    if (keys.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `an action is one kind with its options, like { move: { to: ... } }; got ${keys.length ? keys.join(', ') : 'nothing'}` });
      return;
    }
    const kind = keys[0]!;
    const schema = CORE_ACTIONS[kind as keyof typeof CORE_ACTIONS];
    if (!schema) return; // a plugin's kind: checked against the plugin when sources are checked
    const r = schema.safeParse(o[kind] ?? {});
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: [kind, ...i.path], message: i.message });
  })
  .transform((o) => {
    const [kind, options] = Object.entries(o)[0]!;
    const schema = CORE_ACTIONS[kind as keyof typeof CORE_ACTIONS];
    return { kind, options: (schema ? schema.parse(options ?? {}) : (options ?? {})) as Record<string, unknown> };
  });

/** `texts: per-item`: the rule has no texts of its own; every job must bring its own (else MATCHD_TEXTS_REQUIRED). */
export const PER_ITEM = 'per-item';

export const RuleSchema = z.strictObject({
  /** The texts a job without its own is scored against, or `per-item`. A job's own texts always replace these. */
  texts: z.union([
    z.literal(PER_ITEM),
    z.array(z.string().trim().min(1, 'empty text'), { error: "texts must be a list of texts, or 'per-item'" }).min(1, "a rule needs at least one text (or texts: per-item)"),
  ]),
  /** best: the best-matching text decides the band; all: the worst one does (every text must match). */
  match: z.enum(['best', 'all']).default('best'),
  bands: BandsSchema.optional().describe("override the model's bands for this rule"),
  range: z.tuple([z.number(), z.number()]).refine(([lo, hi]) => hi > lo, 'range must be [lo, hi] with hi > lo').optional()
    .describe("override the model's score mapping for this rule: linear, 0 at lo and 1 at hi (cosines), clamped"),
  /** Actions per band name, plus `error` (image could not be scored) and `default` (any band without its own list). */
  actions: z.record(z.string(), z.array(ActionSchema)).default({}),
});
export type Rule = z.output<typeof RuleSchema>;

export const SourceSchema = z.strictObject({
  type: z.string().min(1).describe('a built-in plugin name (folder) or a module path / package name'),
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -').optional(),
  rule: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

export const ConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  model: z.strictObject({
    dir: z.string().min(1).default('models/demo'),
    provider: z.enum(['cpu', 'cuda']).default('cpu'),
    fallbackToCpu: z.boolean().default(false),
    intraOpThreads: nonNegInt.default(0),
    maxBatch: positiveInt.max(1024).default(16),
    maxDelayMs: nonNegInt.max(60_000).default(20),
    decodeConcurrency: positiveInt.max(256).default(2).describe('images decoded at once between engine runs (during a run: only on the cores ORT leaves free); each takes a libuv pool thread, so keep UV_THREADPOOL_SIZE (default 4) at least decodeConcurrency + batchesInFlight'),
    batchesInFlight: positiveInt.max(16).default(1).describe('engine batches running at once; 1 suits CPU (ORT already uses every core), 2 can help on GPU'),
    decodeAhead: positiveInt.max(65_536).optional()
      .describe('jobs leased into the pipeline at once (decoding, or decoded and waiting for a batch); default 2 × maxBatch'),
    queueSize: positiveInt.default(1000).describe('most jobs waiting; beyond it submit reports backpressure'),
    maxPixels: positiveInt.default(50_000_000),
    maxBytes: positiveInt.default(50 * 1024 * 1024),
  }).prefault({}),
  journal: z.strictObject({
    path: z.string().min(1).default('var/matchd.db'),
    url: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'expected a postgres://user@host:port/database URL')
      .optional().describe('a PostgreSQL journal shared by several matchd nodes (then `path` is not used)'),
    node: z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/, 'letters, digits, _ . and -, at most 63').optional()
      .describe("this node's name on a PostgreSQL journal, unique among running nodes (default: the host name)"),
    nodeTimeoutMs: positiveInt.min(2_000).default(10_000).describe('a node silent this long is dead: its leases and claims go to other nodes'),
    spoolDir: z.string().min(1).optional()
      .describe("uploads and downloads waiting to be scored (default: spool/ beside journal.path); with several nodes, storage every node mounts at the same path"),
    leaseMs: positiveInt.default(120_000),
    maxAttempts: positiveInt.default(3).describe('a job whose scoring crashed this often is failed'),
    retainDays: positiveInt.default(30),
  }).prefault({}),
  /** all: sources, model and actions in this process; intake: sources only; worker: model, batches and actions. */
  role: z.enum(['all', 'intake', 'worker']).default('all'),
  admin: z.strictObject({
    enabled: z.boolean().default(true),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(9464),
  }).prefault({}),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
  startup: z.strictObject({
    pluginTimeoutMs: positiveInt.default(30_000).describe("most time one source's create and start may take; beyond it the start-up fails naming the source"),
  }).prefault({}),
  shutdown: z.strictObject({ timeoutMs: positiveInt.default(10_000) }).prefault({}),
  /** Limits on a job's own texts and meta, for every source (webhook intake answers 400; files and objects fail per item). */
  items: z.strictObject({
    maxTexts: positiveInt.default(DEFAULT_ITEM_LIMITS.maxTexts).describe('most texts one job may bring'),
    maxTextChars: positiveInt.default(DEFAULT_ITEM_LIMITS.maxTextChars).describe('most characters per text (longer than the model takes is truncated and flagged)'),
    meta: z.strictObject({
      maxDepth: positiveInt.default(DEFAULT_ITEM_LIMITS.meta.maxDepth).describe('the meta object itself is level 1'),
      maxBytes: positiveInt.default(DEFAULT_ITEM_LIMITS.meta.maxBytes).describe('as UTF-8 JSON'),
    }).prefault({}),
  }).prefault({}),
  /** Named callback endpoints, each with its own secret, for any rule's `callback: { endpoint: NAME }`. */
  callbacks: CallbacksConfigSchema.prefault({}),
  /** The web page: jobs, review queue, try-it, labels export (ui-config.ts). */
  ui: UiConfigSchema,
  rules: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), RuleSchema).refine((r) => Object.keys(r).length > 0, 'at least one rule is required'),
  sources: z.array(SourceSchema).default([]),
});

/** The name a source instance goes by: its `name`, else `<type>-<index>`. */
export function sourceName(s: { type: string; name?: string | undefined }, index: number): string {
  return s.name ?? `${s.type}-${index}`;
}

/**
 * Checks across sections (a source's rule exists, names unique). Run on the raw input too, so these problems
 * are listed together with the schema's even when other parts are invalid.
 */
function crossCheck(raw: unknown): string[] {
  const c = raw as { rules?: unknown; sources?: unknown; callbacks?: { endpoints?: unknown } };
  if (!c || typeof c !== 'object') return [];
  const problems = endpointProblems(c);
  if (!Array.isArray(c.sources)) return problems;
  const rules = c.rules && typeof c.rules === 'object' ? Object.keys(c.rules) : [];
  const names = new Set<string>();
  c.sources.forEach((s: { type?: unknown; name?: unknown; rule?: unknown }, i) => {
    if (!s || typeof s !== 'object') return;
    if (typeof s.rule === 'string' && !rules.includes(s.rule)) {
      problems.push(`sources.${i}.rule: unknown rule '${s.rule}' (rules: ${rules.join(', ') || 'none'})`);
    }
    const name = typeof s.name === 'string' ? s.name : `${String(s.type)}-${i}`;
    if (names.has(name)) problems.push(`sources.${i}.name: duplicate source name '${name}'`);
    names.add(name);
  });
  return problems;
}

/** Every `callback: { endpoint: NAME }` in a rule names an endpoint of the top-level `callbacks.endpoints`. */
function endpointProblems(c: { rules?: unknown; callbacks?: { endpoints?: unknown } }): string[] {
  const endpoints = c.callbacks?.endpoints && typeof c.callbacks.endpoints === 'object' ? Object.keys(c.callbacks.endpoints) : [];
  const problems: string[] = [];
  if (!c.rules || typeof c.rules !== 'object') return problems;
  for (const [name, rule] of Object.entries(c.rules as Record<string, { actions?: unknown }>)) {
    if (!rule?.actions || typeof rule.actions !== 'object') continue;
    for (const [band, list] of Object.entries(rule.actions as Record<string, unknown>)) {
      if (!Array.isArray(list)) continue;
      list.forEach((a: { callback?: { endpoint?: unknown } }, i) => {
        const ep = a?.callback?.endpoint;
        if (typeof ep === 'string' && !endpoints.includes(ep)) {
          problems.push(`rules.${name}.actions.${band}.${i}.callback.endpoint: unknown endpoint '${ep}' (callbacks.endpoints: ${endpoints.join(', ') || 'none'})`);
        }
      });
    }
  }
  return problems;
}

export type Config = z.output<typeof ConfigSchema>;
export type Role = Config['role'];

/** intake and worker nodes share their work through a PostgreSQL journal; an SQLite file has one daemon. */
export function roleProblems(role: Role, url: string | undefined): string[] {
  return role !== 'all' && !url ? [`role: '${role}' shares the work with other nodes through a PostgreSQL journal; set journal.url (an SQLite journal has one daemon, role all)`] : [];
}

/**
 * Replace ${VAR} (and ${VAR:-default}) in every string; unset variables are listed as problems. The paths of the
 * strings that were filled go into `filled` (where a number or boolean is expected, they are coerced later).
 */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, problems: string[], at = '', filled?: Set<string>): unknown {
  if (typeof value === 'string') {
    if (filled && /\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}/.test(value)) filled.add(at);
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, def?: string) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      problems.push(`${at || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, at ? `${at}.${i}` : String(i), filled));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, problems, at ? `${at}.${k}` : k, filled)]));
  }
  return value;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

function configError(file: string, problems: string[]): MatchdError {
  return problemsError('MATCHD_CONFIG_INVALID', `${file} is invalid`, problems, { file });
}

/** Parse + interpolate + validate a config text. Relative paths stay relative to `baseDir` (resolved by the daemon). */
export function parseConfig(text: string, file = 'config', env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw configError(file, [`YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const problems: string[] = [];
  const filled = new Set<string>();
  const interpolated = interpolate(raw ?? {}, env, problems, '', filled);
  const parsed = parseWithEnv(ConfigSchema, interpolated, filled);
  if (!parsed.success) {
    problems.push(...zodProblems(parsed.error));
  }
  problems.push(...crossCheck(interpolated));
  if (parsed.success) problems.push(...uiProblems(parsed.data), ...roleProblems(parsed.data.role, parsed.data.journal.url));
  if (problems.length || !parsed.success) throw configError(file, problems);
  const config = deepFreeze(parsed.data);
  envFilled.set(config, filled);
  return config;
}

/** Per parsed config, the paths ${VAR} filled (plugin options are validated later, by their plugin's schema). */
const envFilled = new WeakMap<Config, Set<string>>();

/**
 * Validate source `index`'s options with its plugin's schema, coercing ${VAR}-filled values where the schema
 * expects a number or boolean (as parseConfig does for the core's own keys).
 */
export function parseSourceOptions<T>(schema: ZodType<T>, config: Config, index: number): ReturnType<ZodType<T>['safeParse']> {
  const prefix = `sources.${index}.options.`;
  const filled = new Set([...(envFilled.get(config) ?? [])].filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length)));
  return parseWithEnv(schema, config.sources[index]!.options, filled);
}

/** Read and validate a config file. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'ENOENT, no such file (`matchd init DIR` writes one)' : code === 'EISDIR' ? 'EISDIR, a folder, not a config file' : code ?? (err as Error).message;
    throw configError(file, [`cannot read: ${why}`]);
  }
  return parseConfig(text, file, env);
}

/** Resolve a path from the config relative to the config file's folder. */
export function resolveFrom(configFile: string, p: string): string {
  return path.resolve(path.dirname(path.resolve(configFile)), p);
}

/** The JSON Schema published as config/config.schema.json (for editors). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://matchd.local/schemas/config.schema.json',
    title: 'matchd daemon configuration',
  };
}
