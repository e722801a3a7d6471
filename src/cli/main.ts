/** The `matchd` command: dispatch to subcommands; every failure printed with its code. */
import { report } from './args.ts';
import { calibrateCommand, calibrateUsage } from './calibrate.ts';
import { modelCommand, modelUsage } from './model.ts';
import { endpointCommand, endpointUsage } from './endpoint.ts';
import { journalCommand, journalUsage } from './journal.ts';
import { replayCommand, replayUsage } from './replay.ts';
import { runCommand, runUsage, validateCommand } from './run.ts';
import { scoreCommand, scoreUsage } from './score.ts';

const usage = `matchd — local image–text matching

${runUsage}
${scoreUsage}
${replayUsage}
${modelUsage}
${journalUsage}
${endpointUsage}
${calibrateUsage}
matchd help`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'score':
      return scoreCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'validate':
      return validateCommand(rest);
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
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage + '\n');
      return 0;
    default:
      process.stderr.write(`matchd: unknown command '${command}'\n${usage}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The daemon has closed everything it owns; don't let a stray handle keep a stopped process alive.
    if (process.argv[2] === 'run') setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
