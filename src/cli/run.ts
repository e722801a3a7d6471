/** `matchd run [--config FILE]` and `matchd validate [FILE]`. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, roleProblems } from '../core/config.ts';
import { Daemon, checkSources } from '../core/daemon.ts';
import { MatchdError, isMatchdError } from '../core/errors.ts';
import { readPackage } from '../core/model/package.ts';
import { builtinRegistry } from '../plugins/index.ts';
import { UsageError, packageRoot, report } from './args.ts';

export const runUsage = `matchd run [--config FILE] [--role all|intake|worker] [--node NAME]
                                run the daemon (default config: config/default.yaml); --role and --node
                                override the config's role and journal.node (several nodes: journal.url)
matchd validate [FILE]          check a config (and its sources and model package) without starting`;

const defaultConfig = () => path.join(packageRoot, 'config', 'default.yaml');

export async function validateCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length > 1) throw new UsageError('validate takes one config file');
  const file = path.resolve(positionals[0] ?? defaultConfig());
  const config = loadConfig(file);
  const baseDir = path.dirname(file);
  await checkSources(config, builtinRegistry(), baseDir);
  const pkg = readPackage(path.resolve(baseDir, config.model.dir));
  process.stdout.write(
    `${file}: OK — model ${pkg.manifest.name} (${config.model.provider}), ${Object.keys(config.rules).length} rule(s), ${config.sources.length} source(s)\n`,
  );
  return 0;
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, role: { type: 'string' }, node: { type: 'string' } } });
  const file = path.resolve(values.config ?? defaultConfig());
  const role = values.role;
  if (role !== undefined && role !== 'all' && role !== 'intake' && role !== 'worker') throw new UsageError(`--role must be all, intake or worker; got '${role}'`);
  if (values.node !== undefined && !/^[A-Za-z0-9_.-]{1,63}$/.test(values.node)) throw new UsageError(`--node: letters, digits, _ . and -, at most 63; got '${values.node}'`);
  const config = loadConfig(file);
  const problems = role ? roleProblems(role, config.journal.url) : [];
  if (problems.length) throw new MatchdError('MATCHD_CONFIG_INVALID', `--role ${role}: ${problems.join('; ')}`);
  // Signals are handled from the first moment: one arriving during start-up stops the daemon once it is up.
  let signals = 0;
  let onStop: (sig: NodeJS.Signals) => void = () => {};
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (onStop = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      process.stderr.write(`matchd: second ${sig}: exiting now; unfinished jobs stay journalled\n`);
      process.exit(1);
    }
    onStop(sig);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(config, { baseDir: path.dirname(file), registry: builtinRegistry(), ...(role ? { role } : {}), ...(values.node ? { node: values.node } : {}) });
  } catch (err) {
    // Every start-up failure is `matchd: CODE: message`; one without a code is unexpected (a bug), never a bare stack.
    throw isMatchdError(err) ? err : new MatchdError('MATCHD_INTERNAL', `start-up failed: ${(err as Error)?.message ?? String(err)}`);
  }
  const sig = await stopRequested;
  try {
    await daemon.stop(sig);
    return 0;
  } catch (err) {
    return report(err);
  }
}
