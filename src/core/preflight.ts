/**
 * Start-up checks, all before matchd creates anything (journal file, spool folders, listening sockets): the config's
 * sources and their options, the model package, the rules' action lists against the bands they can produce, what sits
 * at the journal path, the admin port, and each source's own checks (folders exist, ports free). Each failure is a
 * coded problem whose message names the config key to change.
 *
 * `checkStartup` collects every problem in one pass (`matchd validate` prints them all); `preflight` is what `run`
 * does with them: throw the first group's (model, journal, config, ports), every problem of that group listed.
 */
import path from 'node:path';
import { sourceName, parseSourceOptions, type Config } from './config.ts';
import { MatchdError, isMatchdError, type ErrorCode } from './errors.ts';
import { inspectJournalFile, type JournalFileKind } from './journal-file.ts';
import { readPackage, type ModelPackage } from './model/package.ts';
import type { PreflightProblem } from './plugin.ts';
import { portInUseMessage, probePort } from './port-check.ts';
import type { PluginRegistry } from './registry.ts';
import { uiListener } from './ui-config.ts';

export interface StartupProblem {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export interface StartupReport {
  /** Everything that stops `run`, in the order it would report them. */
  problems: StartupProblem[];
  /** The model package, when it opened. */
  pkg?: ModelPackage;
  /** What sits at journal.path now, when that could be read. */
  journal?: JournalFileKind;
}

/** Outcome names an action list may use besides a band's. */
const NON_BAND_OUTCOMES = ['error', 'default'];

/**
 * Action lists keyed by a name no band has (a typo such as `adpot:`) would never run: the file would stay where it is.
 * The bands are the rule's own, else the model package's.
 */
export function unknownOutcomeProblems(config: Config, modelBands: string[] | undefined): string[] {
  const problems: string[] = [];
  for (const [name, rule] of Object.entries(config.rules)) {
    const bands = rule.bands?.list.map((b) => b.name) ?? modelBands;
    if (!bands) continue; // the model did not open; that is reported on its own
    for (const key of Object.keys(rule.actions)) {
      if (bands.includes(key) || NON_BAND_OUTCOMES.includes(key)) continue;
      problems.push(
        `rules.${name}.actions.${key}: no band is named '${key}'; an action list is keyed by a band (${bands.join(', ')}` +
          `${rule.bands ? ', from the rule' : ', from the model package'}), error or default`,
      );
    }
  }
  return problems;
}

/** Every start-up problem, in one pass. `ports: false` skips the listen checks (validate reports those apart). */
export async function checkStartup(config: Config, baseDir: string, registry: PluginRegistry, o: { ports?: boolean } = {}): Promise<StartupReport> {
  const resolve = (p: string) => path.resolve(baseDir, p);
  const problems: StartupProblem[] = [];
  const add = (code: ErrorCode, message: string, details?: Record<string, unknown>) => problems.push({ code, message, ...(details ? { details } : {}) });
  const report: StartupReport = { problems };

  try {
    report.pkg = readPackage(resolve(config.model.dir));
  } catch (err) {
    if (!isMatchdError(err)) throw err;
    add(err.code, `model.dir: ${err.message}\nSet model.dir (now ${JSON.stringify(config.model.dir)}) to a model package folder.`, err.details);
  }

  try {
    report.journal = inspectJournalFile(resolve(config.journal.path)); // MATCHD_JOURNAL_INVALID / MATCHD_JOURNAL naming journal.path
  } catch (err) {
    if (!isMatchdError(err)) throw err;
    add(err.code, err.message, err.details);
  }

  for (const p of unknownOutcomeProblems(config, report.pkg?.manifest.bands.list.map((b) => b.name))) add('MATCHD_CONFIG_INVALID', p);

  if (config.admin.enabled && o.ports !== false) {
    const p = await probePort(config.admin.host, config.admin.port);
    if (p === 'in-use') add('MATCHD_PORT_IN_USE', portInUseMessage('admin.port', config.admin.host, config.admin.port));
    else if (p) add('MATCHD_CONFIG_INVALID', `admin.host: cannot listen on ${config.admin.host}:${config.admin.port} (${p}); change admin.host`);
  }
  const ui = uiListener(config);
  if (ui && !ui.shared) {
    const p = await probePort(ui.host, ui.port);
    if (p === 'in-use') add('MATCHD_PORT_IN_USE', portInUseMessage('ui.port', ui.host, ui.port));
    else if (p) add('MATCHD_CONFIG_INVALID', `ui.host: cannot listen on ${ui.host}:${ui.port} (${p}); change ui.host`);
  }
  for (const [i, s] of config.sources.entries()) {
    let plugin;
    try {
      plugin = await registry.resolve(s.type, baseDir);
    } catch {
      continue; // checkSources reports an unknown type
    }
    if (!plugin.preflight) continue;
    const parsed = parseSourceOptions(plugin.configSchema, config, i);
    if (!parsed.success) continue; // checkSources reports it
    const found: PreflightProblem[] = await plugin.preflight(parsed.data, { resolvePath: resolve, name: sourceName(s, i) });
    for (const p of found) {
      if (p.code === 'MATCHD_PORT_IN_USE' && o.ports === false) continue;
      add(p.code ?? 'MATCHD_CONFIG_INVALID', `sources.${i}.options.${p.key}: ${p.message}`);
    }
  }
  return report;
}

function fail(code: ErrorCode, problems: string[]): MatchdError {
  return new MatchdError(code, problems.length === 1 ? problems[0]! : `start-up checks failed:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { problems });
}

/** Throws the first failing group's error (model, journal, config, ports), every problem of that group listed. */
export async function preflight(config: Config, baseDir: string, registry: PluginRegistry): Promise<void> {
  const { problems } = await checkStartup(config, baseDir, registry);
  const of = (codes: ErrorCode[]) => problems.filter((p) => codes.includes(p.code));
  const model = of(['MATCHD_MODEL_INVALID', 'MATCHD_MODEL_LOAD'])[0];
  if (model) throw new MatchdError(model.code, model.message, model.details);
  const journal = of(['MATCHD_JOURNAL', 'MATCHD_JOURNAL_INVALID', 'MATCHD_JOURNAL_CORRUPT'])[0];
  if (journal) throw new MatchdError(journal.code, journal.message, journal.details);
  for (const code of ['MATCHD_CONFIG_INVALID', 'MATCHD_PORT_IN_USE'] as const) {
    const list = of([code]);
    if (list.length) throw fail(code, list.map((p) => p.message));
  }
  if (problems.length) throw fail(problems[0]!.code, problems.map((p) => p.message));
}
