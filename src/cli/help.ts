/** Per-command help: `matchd help COMMAND`, `matchd COMMAND --help`: its usage, then examples that run as shown. */
import { calibrateUsage } from './calibrate.ts';
import { endpointUsage } from './endpoint.ts';
import { initUsage } from './init.ts';
import { journalUsage } from './journal.ts';
import { modelUsage } from './model.ts';
import { replayUsage } from './replay.ts';
import { runUsage } from './run.ts';
import { scoreUsage } from './score.ts';
import { validateUsage } from './validate.ts';
import { versionUsage } from './version.ts';

interface Help {
  usage: string;
  examples: string[];
  more?: string;
}

const HELP: Record<string, Help> = {
  score: {
    usage: scoreUsage,
    examples: [
      'matchd score samples/red.jpg "a red object" "a blue object"',
      'matchd score photo.jpg "a red dress" "a blue dress" --json --model models/clip-b32',
      'matchd score --dir photos --texts texts.txt > scores.jsonl      # each image against its own texts, else these',
    ],
    more: 'One IMAGE, then texts. To score several images use --dir (a TEXT that is an image file is refused).',
  },
  run: {
    usage: runUsage,
    examples: [
      'matchd init ~/sorting && matchd run --config ~/sorting/matchd.yaml',
      'matchd run --config /etc/matchd/matchd.yaml      # under systemd: deploy/matchd.service (Type=notify)',
      'matchd run --config config/cluster.yaml --role worker --node gpu-1   # one of several nodes on journal.url',
    ],
    more: 'SIGTERM or Ctrl-C drains: intake stops, work in flight finishes or stays journalled, exit 0. --debug prints stacks.',
  },
  validate: {
    usage: validateUsage,
    examples: ['matchd validate ~/sorting/matchd.yaml'],
    more: 'Exit 0 and the resolved paths when `run` would start; exit 1 listing every problem otherwise.',
  },
  init: {
    usage: initUsage,
    examples: ['matchd init ~/sorting --text "a red product" --text "a red dress"', 'matchd init . --model models/clip-b32'],
  },
  replay: {
    usage: replayUsage,
    examples: ['matchd replay 17 --config ~/sorting/matchd.yaml', 'matchd replay --since 2h --config ~/sorting/matchd.yaml'],
    more: 'Exit 1 when nothing was re-queued (no such job, no callbacks), saying which journal was looked at.',
  },
  model: {
    usage: modelUsage,
    examples: [
      'matchd model import downloads/clip-vit-base-patch32 --out models/clip-b32',
      'matchd model inspect models/clip-b32',
      'matchd model quantize models/clip-b32 --out models/clip-b32-int8',
    ],
  },
  journal: {
    usage: journalUsage,
    examples: ['matchd journal check --config ~/sorting/matchd.yaml', 'matchd journal recover --config ~/sorting/matchd.yaml'],
  },
  endpoint: {
    usage: endpointUsage,
    examples: ['matchd endpoint list --config config/callbacks.yaml', 'matchd endpoint enable crm --config my.yaml'],
  },
  calibrate: {
    usage: calibrateUsage,
    examples: [
      'matchd calibrate labels.csv --config ~/sorting/matchd.yaml --out calibration/',
      'matchd calibrate --from-journal --config ~/sorting/matchd.yaml --write',
    ],
    more: 'Labelled pairs in, thresholds out: ROC AUC, precision/recall per threshold, proposed bands with confidence intervals.',
  },
  version: { usage: versionUsage, examples: ['matchd --version'] },
};

/** The help text of a command, or undefined when it has none of its own. */
export function commandHelp(command: string): string | undefined {
  const h = HELP[command];
  if (!h) return undefined;
  return [h.usage, ...(h.more ? ['', h.more] : []), '', 'Examples:', ...h.examples.map((e) => `  ${e}`), '', 'Every command: --debug prints the stack of an error; matchd --version.'].join('\n');
}

/** Whether argv asks for help (before a `--` that ends the options). */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
