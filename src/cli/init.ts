/**
 * `matchd init [DIR]`: a working set-up in a folder of the user's choosing — DIR/matchd.yaml, commented, whose paths
 * work from there (the journal, the watched inbox and the sorted output inside DIR; the model package by its
 * absolute path), and DIR/inbox. A copy of config/default.yaml elsewhere would not work: its relative paths point
 * into the matchd checkout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { readPackage } from '../core/model/package.ts';
import { UsageError, defaultModelDir, packageRoot } from './args.ts';

export const initUsage = `matchd init [DIR] [--text T]... [--model PACKAGE] [--force]
                                write DIR/matchd.yaml (a commented config whose paths work there) and DIR/inbox`;

const q = (s: string) => JSON.stringify(s); // a YAML double-quoted scalar

/** The config text for a set-up in `dir`. */
export function initConfig(o: { modelDir: string; modelName: string; texts: string[] }): string {
  return `# matchd configuration written by \`matchd init\`. Paths are relative to this file's folder.
# Check it with \`matchd validate matchd.yaml\`, run it with \`matchd run --config matchd.yaml\`.
# Every option: the README's Configuration section; schema for editors: $schema below.
$schema: ${q(path.join(packageRoot, 'config', 'config.schema.json'))}

model:
  dir: ${q(o.modelDir)}   # ${o.modelName}; another package: \`matchd model import\`, then change this
  provider: cpu          # cpu | cuda

journal:
  path: var/matchd.db    # the one state file: jobs, results, pending actions (spool folders go beside it)

admin:
  host: 127.0.0.1        # /metrics and /healthz
  port: 9464             # change it when another matchd runs on this machine

rules:
  main:
    texts:               # what every image is checked against (an image may bring its own: photo.txt next to photo.jpg)
${o.texts.map((t) => `      - ${q(t)}`).join('\n')}
    match: best          # best: the best-matching text decides the band; all: the worst one does
    actions:             # per band (the model's: see \`matchd validate\`), plus error and default
      default:
        - move: { to: "sorted/{band}" }
        - sidecar: {}    # <file>.json next to it: scores per text, the deciding text, the model
      error:             # unreadable or non-image files
        - move: { to: "sorted/error" }
        - sidecar: {}

sources:
  - type: folder
    name: inbox
    rule: main
    options:
      paths: [inbox]
      recursive: false
      stabilityMs: 1000  # a file must stop changing for this long before it is read
      minAgeMs: 500
`;
}

export async function initCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { text: { type: 'string', multiple: true }, model: { type: 'string' }, force: { type: 'boolean', default: false } },
  });
  if (positionals.length > 1) throw new UsageError('init takes one folder');
  const dir = path.resolve(positionals[0] ?? '.');
  const file = path.join(dir, 'matchd.yaml');
  if (fs.existsSync(file) && !values.force) {
    throw new MatchdError('MATCHD_PATH_INVALID', `${file} exists; left as it is (--force replaces it)`);
  }
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new MatchdError('MATCHD_PATH_INVALID', `${dir} is not a folder`);
  const modelDir = path.resolve(values.model ?? defaultModelDir);
  const pkg = readPackage(modelDir); // MATCHD_MODEL_INVALID listing what is wrong, before anything is written
  const texts = values.text?.length ? values.text : ['a red product'];
  for (const t of texts) if (!t.trim()) throw new UsageError('--text: empty text');

  fs.mkdirSync(path.join(dir, 'inbox'), { recursive: true });
  fs.writeFileSync(file, initConfig({ modelDir, modelName: `${pkg.manifest.name}${modelDir === defaultModelDir ? ', the built-in demo: colour words only' : ''}`, texts }));
  const out = (s: string) => process.stdout.write(s + '\n');
  const shown = path.relative(process.cwd(), file) || file;
  out(`wrote ${file}`);
  out(`  watches ${path.join(dir, 'inbox')}; sorts into ${path.join(dir, 'sorted')}/<band> with a JSON sidecar; journal ${path.join(dir, 'var', 'matchd.db')}`);
  out(`  texts: ${texts.map((t) => JSON.stringify(t)).join(', ')} (edit rules.main.texts to change them)`);
  out('next:');
  out(`  matchd validate ${shown}`);
  out(`  matchd run --config ${shown}`);
  return 0;
}
