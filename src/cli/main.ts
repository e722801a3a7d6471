/** The `matchd` command: dispatch to subcommands; every failure printed with its code. */
import { report } from './args.ts';
import { scoreCommand, scoreUsage } from './score.ts';

const usage = `matchd — local image–text matching

${scoreUsage}
matchd help`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'score':
      return scoreCommand(rest);
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
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
