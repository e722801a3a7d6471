/**
 * Rewrite the sections of BENCHMARKS.md that belong to benchmark scenarios, from their `--json` results.
 *
 * Each scenario owns the text between `<!-- bench:<scenario>:begin -->` and `<!-- bench:<scenario>:end -->`;
 * everything outside the markers is left as it is. A scenario without a section yet gets one appended.
 *
 *   node --import tsx bench/update-benchmarks.ts results.json [more.json ...]
 *   node --import tsx bench/overhead.ts --json | node --import tsx bench/update-benchmarks.ts -
 *   npm run bench -- --write            # run every scenario, then this
 *
 * Each input is one ScenarioResult object or an array of them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type ScenarioResult, isMain, repoRoot } from './lib.ts';

export const benchmarksFile = path.join(repoRoot, 'BENCHMARKS.md');

const HEADER = `# Benchmarks

Measured numbers for matchd, each section written by \`bench/update-benchmarks.ts\` from a real run of the
scenario it names (\`bench/<scenario>.ts\`). Baselines (onnxruntime-node, …) live in \`bench/package.json\`,
outside the project's own install.

\`\`\`sh
npm run bench:setup            # once: installs the baselines into bench/node_modules (ONNXRUNTIME_NODE_INSTALL=skip)
npm run bench                  # every scenario, tables on stdout
npm run bench -- --write       # the same, and rewrite the sections below
\`\`\`

Text outside the \`<!-- bench:… -->\` markers is not touched by the script.
`;

const begin = (name: string) => `<!-- bench:${name}:begin -->`;
const end = (name: string) => `<!-- bench:${name}:end -->`;

/** Return `doc` with each result's section replaced (or appended). */
export function renderBenchmarks(doc: string, results: readonly ScenarioResult[]): string {
  let out = doc;
  for (const r of results) {
    if (!/^[a-z0-9-]+$/.test(r.scenario)) throw new Error(`bad scenario name '${r.scenario}'`);
    const section = `${begin(r.scenario)}\n${r.markdown.trim()}\n${end(r.scenario)}`;
    const a = out.indexOf(begin(r.scenario));
    const b = out.indexOf(end(r.scenario));
    if (a >= 0 && b > a) {
      out = out.slice(0, a) + section + out.slice(b + end(r.scenario).length);
    } else if (a >= 0 || b >= 0) {
      throw new Error(`BENCHMARKS.md: the markers of section '${r.scenario}' are unbalanced; fix them by hand`);
    } else {
      out = `${out.trimEnd()}\n\n${section}\n`;
    }
  }
  return out.endsWith('\n') ? out : `${out}\n`;
}

/** Rewrite BENCHMARKS.md (created with a header if missing) with these results. */
export function updateBenchmarks(results: readonly ScenarioResult[], file = benchmarksFile): void {
  const doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : HEADER;
  fs.writeFileSync(file, renderBenchmarks(doc, results));
}

function parseResults(text: string, from: string): ScenarioResult[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${from}: not JSON (${(err as Error).message})`);
  }
  const list = Array.isArray(v) ? v : [v];
  for (const r of list) {
    const ok = r && typeof r === 'object' && typeof r.scenario === 'string' && typeof r.markdown === 'string';
    if (!ok) throw new Error(`${from}: expected a scenario result with 'scenario' and 'markdown'`);
  }
  return list as ScenarioResult[];
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  let file = benchmarksFile;
  const f = args.indexOf('--file');
  if (f >= 0) {
    file = path.resolve(args[f + 1] ?? '');
    args.splice(f, 2);
  }
  if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
    process.stderr.write('usage: node --import tsx bench/update-benchmarks.ts [--file BENCHMARKS.md] <result.json | -> ...\n');
    process.exit(args.length === 0 ? 1 : 0);
  }
  try {
    const results = args.flatMap((a) => parseResults(fs.readFileSync(a === '-' ? 0 : a, 'utf8'), a === '-' ? 'stdin' : a));
    updateBenchmarks(results, file);
    process.stderr.write(`updated ${path.relative(process.cwd(), file)}: ${results.map((r) => r.scenario).join(', ')}\n`);
  } catch (err) {
    process.stderr.write(`update-benchmarks: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
