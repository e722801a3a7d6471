/**
 * `matchd validate [FILE]`: everything `matchd run` checks before it starts, in one pass — the config, each source's
 * options, the model package, action lists keyed by bands that exist, the journal file, the watched folders — with
 * every problem listed at once, then the resolved absolute paths, so a relative path that points somewhere unexpected
 * is visible before anything runs. A port in use is a warning here (the daemon being validated may be the one
 * holding it); `run` refuses it.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, sourceName, type Config } from '../core/config.ts';
import { checkSources } from '../core/daemon.ts';
import { MatchdError, isMatchdError } from '../core/errors.ts';
import { ruleTexts } from '../core/intake.ts';
import { checkStartup, type StartupProblem, type StartupReport } from '../core/preflight.ts';
import { builtinRegistry } from '../plugins/index.ts';
import { UsageError, packageRoot } from './args.ts';

export const validateUsage = `matchd validate [FILE]          check a config as \`run\` would — all problems at once — and print the paths it resolves`;

/** Where each path of the config points, as lines (the summary `validate` prints). */
export function describeConfig(config: Config, file: string, r: StartupReport): string[] {
  const baseDir = path.dirname(file);
  const abs = (p: string) => path.resolve(baseDir, p);
  const journal = abs(config.journal.path);
  const lines = [
    `model    ${abs(config.model.dir)}${r.pkg ? ` — ${r.pkg.manifest.name} (${config.model.provider}); bands ${r.pkg.manifest.bands.list.map((b) => b.name).join(', ')}` : ''}`,
    `journal  ${journal}${r.journal === 'missing' ? ' (created at the first start)' : r.journal === 'sqlite' ? ' (exists)' : ''}; spool folders under ${path.join(path.dirname(journal), 'spool')}`,
    `admin    ${config.admin.enabled ? `http://${config.admin.host}:${config.admin.port} (/metrics, /healthz)` : 'off'}`,
  ];
  for (const [i, s] of config.sources.entries()) {
    const o = s.options as { paths?: unknown; host?: unknown; port?: unknown; bucket?: unknown; prefix?: unknown };
    const where = Array.isArray(o.paths)
      ? `watches ${o.paths.map((p) => abs(String(p))).join(', ')}`
      : o.port !== undefined
        ? `listens on ${String(o.host ?? '127.0.0.1')}:${String(o.port)}`
        : o.bucket !== undefined
          ? `polls s3://${String(o.bucket)}/${String(o.prefix ?? '')}`
          : '';
    lines.push(`source   ${sourceName(s, i)} (${s.type}) → rule ${s.rule}${where ? `; ${where}` : ''}`);
  }
  for (const [name, rule] of Object.entries(config.rules)) {
    const texts = ruleTexts(rule);
    lines.push(`rule     ${name}: ${texts ? `${texts.length} text(s)` : 'per-item texts'}, match ${rule.match}`);
    for (const [outcome, list] of Object.entries(rule.actions)) {
      const steps = list.map((a) => {
        const to = (a.options as { to?: unknown }).to;
        return typeof to === 'string' ? `${a.kind} → ${abs(to)}` : a.kind;
      });
      lines.push(`           ${outcome}: ${steps.join(', ') || '(nothing)'}`);
    }
  }
  return lines;
}

/** Things that are allowed but are probably not what was meant. */
function warningsOf(config: Config, r: StartupReport): string[] {
  const warnings: string[] = [];
  for (const [name, rule] of Object.entries(config.rules)) {
    const keys = Object.keys(rule.actions);
    if (!keys.length || 'default' in rule.actions) continue;
    const bands = rule.bands?.list.map((b) => b.name) ?? r.pkg?.manifest.bands.list.map((b) => b.name) ?? [];
    const without = bands.filter((b) => !keys.includes(b));
    if (without.length) warnings.push(`rules.${name}: no actions for ${without.join(', ')} (and no default list): jobs with that outcome are only recorded in the journal; a watched file stays where it is`);
  }
  return warnings;
}

export async function validateCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length > 1) throw new UsageError('validate takes one config file');
  const file = path.resolve(positionals[0] ?? path.join(packageRoot, 'config', 'default.yaml'));
  const config = loadConfig(file); // a config that does not parse stops here, every schema problem listed
  const baseDir = path.dirname(file);
  const registry = builtinRegistry();

  const problems: StartupProblem[] = [];
  try {
    await checkSources(config, registry, baseDir);
  } catch (err) {
    if (!isMatchdError(err)) throw err;
    const listed = (err.details?.problems as string[] | undefined) ?? [err.message];
    problems.push(...listed.map((message) => ({ code: err.code, message })));
  }
  const report = await checkStartup(config, baseDir, registry);
  // A port in use: fine while the daemon being validated is the one that holds it; `run` refuses it.
  const ports = report.problems.filter((p) => p.code === 'MATCHD_PORT_IN_USE');
  problems.push(...report.problems.filter((p) => p.code !== 'MATCHD_PORT_IN_USE'));
  const warnings = [...ports.map((p) => `${p.message} — \`matchd run\` would refuse to start now`), ...warningsOf(config, report)];

  const out = (s: string) => process.stdout.write(s + '\n');
  for (const w of warnings) process.stderr.write(`matchd: warning: ${w}\n`);
  if (problems.length) {
    const codes = new Set(problems.map((p) => p.code));
    const code = codes.size === 1 ? problems[0]!.code : 'MATCHD_CONFIG_INVALID';
    const list = problems.map((p) => `  - ${codes.size === 1 ? '' : `${p.code}: `}${p.message.replace(/\n/g, '\n    ')}`);
    throw new MatchdError(code, `${file}: ${problems.length} problem(s); \`matchd run\` would not start:\n${list.join('\n')}`, { problems });
  }
  out(`${file}: OK`);
  for (const l of describeConfig(config, file, report)) out(`  ${l}`);
  return 0;
}
