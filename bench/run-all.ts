/**
 * `npm run bench`: run every benchmark scenario in bench/ (each a file whose header says `@bench-scenario`),
 * one after another, each in its own child process, and print their tables.
 *
 *   node --import tsx bench/run-all.ts [--write] [--json] [--strict] [--only overhead,...] [scenario args...]
 *
 *   --write    rewrite the scenarios' sections of BENCHMARKS.md with the results (bench/update-benchmarks.ts)
 *   --json     print the results as one JSON array instead of the tables
 *   --strict   exit 1 when a target is not met (by default only a failed scenario does)
 *   --only     run only these scenarios (comma-separated names)
 *   anything else is passed to every scenario (e.g. --iterations 10)
 */
import fs from 'node:fs';
import path from 'node:path';
import { type ScenarioResult, benchDir, progress, repoRoot, runJsonChild } from './lib.ts';
import { updateBenchmarks } from './update-benchmarks.ts';

/** bench/*.ts files that declare themselves scenarios, by name. */
export function scenarios(): { name: string; file: string }[] {
  return fs
    .readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .flatMap((f) => {
      const file = path.join(benchDir, f);
      const m = /^\s*\*?\s*@bench-scenario\s+([a-z0-9-]+)\s*$/m.exec(fs.readFileSync(file, 'utf8').slice(0, 2000));
      return m ? [{ name: m[1]!, file }] : [];
    });
}

function runScenario(file: string, args: string[]): Promise<ScenarioResult> {
  return runJsonChild<ScenarioResult>(file, ['--json', ...args]); // progress streams through stderr
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const take = (flag: string): boolean => {
    const i = args.indexOf(flag);
    if (i < 0) return false;
    args.splice(i, 1);
    return true;
  };
  const write = take('--write');
  const json = take('--json');
  const strict = take('--strict');
  let only: string[] | null = null;
  const o = args.indexOf('--only');
  if (o >= 0) {
    only = (args[o + 1] ?? '').split(',').filter(Boolean);
    args.splice(o, 2);
  }
  const all = scenarios();
  const chosen = only ? all.filter((s) => only.includes(s.name)) : all;
  if (only) {
    const unknown = only.filter((n) => !all.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`);
  }
  const results: ScenarioResult[] = [];
  let failed = 0;
  for (const s of chosen) {
    progress(`== ${s.name} (${path.relative(repoRoot, s.file)})`);
    try {
      const r = await runScenario(s.file, args);
      results.push(r);
      if (!json) process.stdout.write(`\n== ${s.name}\n${r.table}\n`);
    } catch (err) {
      failed++;
      progress(`bench: ${(err as Error).message}`);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  if (write && results.length > 0) {
    updateBenchmarks(results);
    progress(`bench: wrote ${results.map((r) => r.scenario).join(', ')} to BENCHMARKS.md`);
  }
  const missed = results.filter((r) => !r.allTargetsMet).map((r) => r.scenario);
  if (missed.length) progress(`bench: targets not met in: ${missed.join(', ')}`);
  return failed > 0 || (strict && missed.length > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    progress(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
