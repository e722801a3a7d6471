/**
 * Shared helpers for the bench/ scenario programs: the machine description, timing statistics,
 * text/markdown tables, and loading baselines from bench/node_modules.
 * Not a scenario itself (run-all.ts skips it).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(benchDir, '..');

/** What every scenario's `--json` output has at its top level. */
export interface ScenarioResult {
  /** Name of the scenario: the BENCHMARKS.md section it owns is `<!-- bench:<scenario>:begin/end -->`. */
  scenario: string;
  /** ISO date-time the run finished. */
  date: string;
  machine: MachineInfo;
  /** The plain-text tables and target lines, as printed without `--json`. */
  table: string;
  /** The BENCHMARKS.md section body (between the markers), already rendered. */
  markdown: string;
  /** True when every target of the scenario was met. */
  allTargetsMet: boolean;
}

export interface MachineInfo {
  cpu: string;
  /** Logical CPUs visible to this process. */
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  kernel: string;
}

export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // not Linux: os.cpus() is good enough
  }
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return {
    cpu,
    cores,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
  };
}

export function describeMachine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} logical cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform} (kernel ${m.kernel})`;
}

export interface Stats {
  n: number;
  min: number;
  median: number;
  mean: number;
  max: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function stats(xs: readonly number[]): Stats {
  if (xs.length === 0) return { n: 0, min: NaN, median: NaN, mean: NaN, max: NaN };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of xs) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return { n: xs.length, min, median: median(xs), mean: sum / xs.length, max };
}

/** Milliseconds with a precision that suits the size. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

export function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : '–';
}

/** A fixed-width text table (numbers right-aligned). */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+0-9.,×–%≤<> ]+$|^–$/.test(r[i] ?? '')));
  const line = (cells: readonly string[], pad = true) =>
    cells
      .map((c, i) => (pad && numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header, false), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(r))].join('\n');
}

/** A GitHub markdown table (numeric columns right-aligned). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+0-9.,×–%≤<> ]+$|^–$/.test(r[i] ?? '')));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/**
 * Load a baseline package installed by `npm run bench:setup` into bench/node_modules.
 * Imported dynamically so that the project typechecks and runs without the bench install.
 */
export async function importBaseline<T>(name: string): Promise<{ module: T; version: string }> {
  const require = createRequire(path.join(benchDir, 'package.json'));
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    throw new Error(`${name} is not installed in bench/node_modules. Run \`npm run bench:setup\` from the repo root first.`);
  }
  let version = 'unknown';
  try {
    const pkgJson = require.resolve(`${name}/package.json`);
    version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  } catch {
    // exports map hides package.json: leave 'unknown'
  }
  const mod = (await import(pathToFileURL(entry).href)) as T & { default?: T };
  // CommonJS packages come in as { default: module.exports, ...named }
  return { module: (mod.default ?? mod) as T, version };
}

/** True when this module is the program node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return fs.realpathSync(fileURLToPath(importMetaUrl)) === fs.realpathSync(path.resolve(argv1));
  } catch {
    return false;
  }
}

export const sleep = (msec: number) => new Promise<void>((resolve) => setTimeout(resolve, msec));

/** Progress lines go to stderr so that `--json` stdout stays parseable. */
export function progress(msg: string): void {
  process.stderr.write(`${msg}\n`);
}
