/**
 * Start-up checks, all before matchd creates anything (journal file, spool folders, listening sockets): the config's
 * sources and their options, the model package, what sits at the journal path, the admin port, and each source's
 * own checks (folders exist, ports free). Each failure is a coded error whose message names the config key to change.
 */
import path from 'node:path';
import { sourceName, parseSourceOptions, type Config, type Role } from './config.ts';
import { MatchdError, isMatchdError, type ErrorCode } from './errors.ts';
import { inspectJournalFile } from './journal-file.ts';
import { readPackage } from './model/package.ts';
import type { PreflightProblem } from './plugin.ts';
import { portInUseMessage, probePort } from './port-check.ts';
import type { PluginRegistry } from './registry.ts';
import { uiListener } from './ui-config.ts';

function fail(code: ErrorCode, problems: string[]): MatchdError {
  return new MatchdError(code, problems.length === 1 ? problems[0]! : `start-up checks failed:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { problems });
}

/**
 * Throws the first failing group's error (config, model, journal, ports), every problem of that group listed. What a
 * node does not run is not checked: an intake node loads no model, a worker listens on no source's port.
 */
export async function preflight(config: Config, baseDir: string, registry: PluginRegistry, role: Role = 'all'): Promise<void> {
  const resolve = (p: string) => path.resolve(baseDir, p);

  const modelDir = resolve(config.model.dir);
  try {
    if (role !== 'intake') readPackage(modelDir);
  } catch (err) {
    if (!isMatchdError(err)) throw err;
    throw new MatchdError(err.code, `model.dir: ${err.message}\nSet model.dir (now ${JSON.stringify(config.model.dir)}) to a model package folder.`, err.details);
  }

  // throws MATCHD_JOURNAL_INVALID / MATCHD_JOURNAL naming journal.path (a PostgreSQL journal is checked as it opens)
  if (!config.journal.url) inspectJournalFile(resolve(config.journal.path));

  const byCode = new Map<ErrorCode, string[]>();
  const add = (code: ErrorCode, message: string) => byCode.set(code, [...(byCode.get(code) ?? []), message]);
  if (config.admin.enabled) {
    const p = await probePort(config.admin.host, config.admin.port);
    if (p === 'in-use') add('MATCHD_PORT_IN_USE', portInUseMessage('admin.port', config.admin.host, config.admin.port));
    else if (p) add('MATCHD_CONFIG_INVALID', `admin.host: cannot listen on ${config.admin.host}:${config.admin.port} (${p}); change admin.host`);
  }
  const ui = role === 'intake' ? undefined : uiListener(config);
  if (ui && !ui.shared) {
    const p = await probePort(ui.host, ui.port);
    if (p === 'in-use') add('MATCHD_PORT_IN_USE', portInUseMessage('ui.port', ui.host, ui.port));
    else if (p) add('MATCHD_CONFIG_INVALID', `ui.host: cannot listen on ${ui.host}:${ui.port} (${p}); change ui.host`);
  }
  for (const [i, s] of role === 'worker' ? [] : config.sources.entries()) {
    const plugin = await registry.resolve(s.type, baseDir);
    if (!plugin.preflight) continue;
    const parsed = parseSourceOptions(plugin.configSchema, config, i);
    if (!parsed.success) continue; // checkSources has reported it
    const problems: PreflightProblem[] = await plugin.preflight(parsed.data, { resolvePath: resolve, name: sourceName(s, i) });
    for (const p of problems) add(p.code ?? 'MATCHD_CONFIG_INVALID', `sources.${i}.options.${p.key}: ${p.message}`);
  }
  for (const code of ['MATCHD_CONFIG_INVALID', 'MATCHD_PORT_IN_USE'] as const) {
    const list = byCode.get(code);
    if (list?.length) throw fail(code, list);
  }
}
