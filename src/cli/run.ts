/** `matchd run [--config FILE]`: the daemon in the foreground, until SIGTERM or SIGINT. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.ts';
import { Daemon } from '../core/daemon.ts';
import { MatchdError, isMatchdError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { serviceNotifier } from '../core/sd-notify.ts';
import { routeProcessWarnings } from '../core/warnings.ts';
import { builtinRegistry } from '../plugins/index.ts';
import { packageRoot, report } from './args.ts';

export const runUsage = `matchd run [--config FILE]     run the daemon (default config: config/default.yaml)`;

const defaultConfig = () => path.join(packageRoot, 'config', 'default.yaml');

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = path.resolve(values.config ?? defaultConfig());
  const config = loadConfig(file);
  const log = createLogger({ level: config.log.level });
  // Node's warnings (a dependency's deprecation notice...) become log lines, not text in the middle of the JSON.
  routeProcessWarnings(log);
  // Under systemd (Type=notify) the service manager hears READY=1 once the sources run, STOPPING=1 when draining.
  const notify = serviceNotifier(log);
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
    daemon = await Daemon.start(config, { baseDir: path.dirname(file), registry: builtinRegistry(), logger: log });
  } catch (err) {
    // Every start-up failure is `matchd: CODE: message`; one without a code is unexpected (a bug), never a bare stack.
    throw isMatchdError(err) ? err : new MatchdError('MATCHD_INTERNAL', `start-up failed: ${(err as Error)?.message ?? String(err)}`);
  }
  const model = (daemon.health().model as { name?: string } | null)?.name ?? path.basename(config.model.dir);
  notify(`READY=1\nSTATUS=running: ${config.sources.length} source(s), model ${model}\nMAINPID=${process.pid}`);
  const sig = await stopRequested;
  notify(`STOPPING=1\nSTATUS=draining (${sig}): intake stopped, finishing work in flight`);
  try {
    await daemon.stop(sig);
    return 0;
  } catch (err) {
    return report(err);
  }
}
