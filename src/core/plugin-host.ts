/**
 * The sources' host. `loadSources` resolves every source's plugin and parses its options once, every problem listed
 * (what `matchd validate` and start-up report); the options are frozen, so neither a plugin nor the core can change
 * them after the checks passed. `PluginHost` then creates each instance with its context, starts it within
 * `startup.pluginTimeoutMs` (like fastify's `pluginTimeout`: a source whose start never settles fails the start-up,
 * naming it, instead of hanging it), finds the source that carries out a job's plugin action, and stops the sources in
 * reverse order of their start.
 */
import { CORE_ACTIONS, parseSourceOptions, sourceName, type Config } from './config.ts';
import { MatchdError } from './errors.ts';
import type { Logger } from './log.ts';
import type { ActionHandler } from './actions/contract.ts';
import { problemsError, zodProblems } from './problems.ts';
import type { HealthState, PluginContext, SourceInstance, SourcePlugin } from './plugin.ts';
import type { PluginRegistry } from './registry.ts';

/** One configured source with its plugin and its parsed, frozen options. */
export interface LoadedSource {
  index: number;
  name: string;
  type: string;
  rule: string;
  plugin: SourcePlugin;
  /** Parsed by the plugin's schema, deep-frozen. */
  options: unknown;
}

export interface SourceHealth {
  state: HealthState;
  detail?: string;
}

interface SourceEntry {
  source: LoadedSource;
  instance: SourceInstance;
  health: SourceHealth;
  /** Intake running (a worker creates its sources for their actions only). */
  started: boolean;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Every source's plugin and options, parsed once; the rules' plugin actions checked against the plugin of each source
 * that uses them. All problems listed in one MATCHD_CONFIG_INVALID.
 */
export async function loadSources(config: Config, registry: PluginRegistry, baseDir: string): Promise<LoadedSource[]> {
  const problems: string[] = [];
  const loaded: LoadedSource[] = [];
  for (const [i, s] of config.sources.entries()) {
    try {
      const plugin = await registry.resolve(s.type, baseDir);
      const parsed = parseSourceOptions(plugin.configSchema, config, i);
      if (!parsed.success) problems.push(...zodProblems(parsed.error as never, `sources.${i}.options`));
      else loaded.push({ index: i, name: sourceName(s, i), type: s.type, rule: s.rule, plugin, options: deepFreeze(parsed.data) });
      // A rule's plugin actions must be ones this source's plugin carries out, with valid options.
      const rule = config.rules[s.rule];
      for (const [band, list] of Object.entries(rule?.actions ?? {})) {
        list.forEach((a, k) => {
          if (a.kind in CORE_ACTIONS) return;
          const schema = plugin.actionSchemas?.[a.kind];
          const at = `rules.${s.rule}.actions.${band}.${k}.${a.kind}`;
          if (!schema) {
            problems.push(`${at}: unknown action for source '${sourceName(s, i)}' (${s.type}); it can use ${[...Object.keys(CORE_ACTIONS), ...Object.keys(plugin.actionSchemas ?? {})].join(', ')}`);
            return;
          }
          const r = schema.safeParse(a.options);
          if (!r.success) problems.push(...zodProblems(r.error as never, at));
        });
      }
    } catch (err) {
      problems.push(`sources.${i}.type: ${(err as Error).message}`);
    }
  }
  if (problems.length) {
    throw problemsError('MATCHD_CONFIG_INVALID', 'invalid sources', problems);
  }
  return loaded;
}

/** Validate every source's options with its plugin's schema; all problems listed (MATCHD_CONFIG_INVALID). */
export async function checkSources(config: Config, registry: PluginRegistry, baseDir: string): Promise<void> {
  await loadSources(config, registry, baseDir);
}

export interface PluginHostOptions {
  log: Logger;
  /** Most time one source's create + start may take (startup.pluginTimeoutMs). */
  startTimeoutMs: number;
  /** The context a source's instance gets; `setHealth` records what it reports for /healthz. */
  context(source: LoadedSource, setHealth: (h: SourceHealth) => void): PluginContext;
}

export class PluginHost {
  private readonly entries: SourceEntry[] = [];

  constructor(private readonly o: PluginHostOptions) {}

  /**
   * Create every source in config order and, with `start`, start its intake (a worker creates its sources only for
   * the actions they carry out). The first that fails or outlasts the timeout throws MATCHD_PLUGIN; the ones created
   * before it are stopped by `stop()`.
   */
  async startAll(sources: LoadedSource[], start: boolean): Promise<void> {
    for (const source of sources) {
      const entry: SourceEntry = { source, instance: undefined as never, health: { state: 'ok' }, started: false };
      const what = `source '${source.name}' (${source.type})`;
      let late = false;
      const run = async () => {
        entry.instance = await source.plugin.create(this.o.context(source, (h) => (entry.health = h)), source.options as never);
        if (late) return;
        this.entries.push(entry);
        if (start) {
          entry.started = true;
          await entry.instance.start();
        }
      };
      const ms = this.o.startTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
      try {
        if ((await Promise.race([run(), timeout])) === 'timeout') {
          late = true;
          throw new MatchdError('MATCHD_PLUGIN', `${what} did not start within ${ms} ms (startup.pluginTimeoutMs)`);
        }
      } catch (err) {
        if (late) throw err;
        throw new MatchdError('MATCHD_PLUGIN', `${what} failed to start: ${(err as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      if (start) this.o.log.info({ source: source.name, type: source.type }, 'source started');
    }
  }

  /** How many sources were created. */
  get count(): number {
    return this.entries.length;
  }

  /** A plugin action is carried out by the source that submitted the job. */
  action(kind: string, source: string | undefined): ActionHandler | undefined {
    return this.entries.find((e) => e.source.name === source)?.instance?.actions?.[kind];
  }

  /** Each source's last reported health, by name (/healthz). */
  health(): Record<string, SourceHealth> {
    return Object.fromEntries(this.entries.map((e) => [e.source.name, e.health]));
  }

  get degraded(): boolean {
    return this.entries.some((e) => e.health.state !== 'ok');
  }

  /** Stop the started sources, last started first; one that fails to stop is logged and the others still stop. */
  async stop(): Promise<void> {
    for (const e of [...this.entries].reverse()) {
      if (!e.started) continue;
      try {
        await e.instance.stop();
      } catch (err) {
        this.o.log.error({ source: e.source.name, err }, 'source failed to stop cleanly');
      }
    }
  }
}
