/** The `matchd` command: dispatch to subcommands; every failure printed with its code. */
import { report } from './args.ts';
import { calibrateCommand, calibrateUsage } from './calibrate.ts';
import { modelCommand, modelUsage } from './model.ts';
import { endpointCommand, endpointUsage } from './endpoint.ts';
import { commandHelp, wantsHelp } from './help.ts';
import { initCommand, initUsage } from './init.ts';
import { journalCommand, journalUsage } from './journal.ts';
import { replayCommand, replayUsage } from './replay.ts';
import { runCommand, runUsage } from './run.ts';
import { scoreCommand, scoreUsage } from './score.ts';
import { validateCommand, validateUsage } from './validate.ts';
import { versionCommand, versionUsage } from './version.ts';

const usage = `matchd — local image–text matching

${initUsage}
${runUsage}
${validateUsage}
${scoreUsage}
${replayUsage}
${modelUsage}
${journalUsage}
${endpointUsage}
${calibrateUsage}
${versionUsage}
matchd help [COMMAND]           this text, or a command's usage with examples (also: matchd COMMAND --help)
Any command: --debug prints the stack trace of an error (or MATCHD_DEBUG=1).`;

async function main(command: string | undefined, rest: string[]): Promise<number> {
  if (command && command !== 'help' && wantsHelp(rest)) {
    process.stdout.write((commandHelp(command) ?? usage) + '\n');
    return 0;
  }
  switch (command) {
    case 'score':
      return scoreCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'validate':
      return validateCommand(rest);
    case 'init':
      return initCommand(rest);
    case 'replay':
      return replayCommand(rest);
    case 'model':
      return modelCommand(rest);
    case 'journal':
      return journalCommand(rest);
    case 'endpoint':
      return endpointCommand(rest);
    case 'calibrate':
      return calibrateCommand(rest);
    case 'version':
    case '--version':
    case '-V':
      return versionCommand();
    case undefined:
    case 'help':
    case '--help':
    case '-h': {
      const topic = command === 'help' ? rest[0] : undefined;
      const text = topic ? commandHelp(topic) : usage;
      if (!text) {
        process.stderr.write(`matchd: MATCHD_USAGE: no help for '${topic}': not a command\n${usage}\n`);
        return 2;
      }
      process.stdout.write(text + '\n');
      return 0;
    }
    default:
      process.stderr.write(`matchd: MATCHD_USAGE: unknown command '${command}'\n${usage}\n`);
      return 2;
  }
}

// --debug anywhere (or MATCHD_DEBUG=1): errors print their stack after the one-line message.
const argv = process.argv.slice(2);
const debug = argv.includes('--debug') || process.env.MATCHD_DEBUG === '1';
const [command, ...rest] = argv.filter((a) => a !== '--debug');

main(command, rest).then(
  (code) => {
    process.exitCode = code;
    // The daemon has closed everything it owns; don't let a stray handle keep a stopped process alive.
    if (command === 'run') setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.exitCode = report(err, { command, debug });
  },
);
