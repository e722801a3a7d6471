/**
 * Shared helpers for the bench/ scenario programs: the machine description, timing statistics,
 * text/markdown tables, and loading baselines from bench/node_modules.
 * Not a scenario itself (run-all.ts skips it).
 */
import { spawn } from 'node:child_process';
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

/** Arguments for `node` to run a bench .ts file with the loader flags this process has (tsx). */
export function nodeArgs(file: string, args: readonly string[]): string[] {
  const execArgv = process.execArgv.length > 0 ? process.execArgv : ['--import', 'tsx'];
  return [...execArgv, file, ...args];
}

/**
 * Start `node --import tsx <file> ...args` as a child (its stderr streams through ours), wait for it and parse the
 * JSON it prints on stdout (one-shot; bench/child-process.ts is the long-lived kind). Used to keep each engine in its own process (matchd's addon and onnxruntime-node each
 * bring a `libonnxruntime.so.1`; they cannot share a process).
 */
export function runJsonChild<T>(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs(file, args), {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const out = Buffer.concat(chunks).toString('utf8');
      if (code !== 0) {
        reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`));
        return;
      }
      try {
        resolve(JSON.parse(out) as T);
      } catch (err) {
        reject(new Error(`${path.basename(file)} ${args.join(' ')}: unreadable JSON (${(err as Error).message})`));
      }
    });
  });
}

/**
 * `count` distinct JPEG files of width × height (smooth colour fields with some noise and shapes, quality 85,
 * roughly what a camera picture costs to decode), generated once from a fixed seed into a temp folder and reused.
 */
export async function ensureJpegs(count: number, width = 1024, height = 768): Promise<string[]> {
  const dir = path.join(os.tmpdir(), `matchd-bench-jpeg-${width}x${height}`);
  fs.mkdirSync(dir, { recursive: true });
  const files = Array.from({ length: count }, (_, i) => path.join(dir, `img-${String(i).padStart(4, '0')}.jpg`));
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return files;
  const { default: sharp } = await import('sharp');
  let s = 12345;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  for (const [i, f] of files.entries()) {
    const px = Buffer.alloc(width * height * 3);
    const c0 = [rnd() * 255, rnd() * 255, rnd() * 255];
    const c1 = [rnd() * 255, rnd() * 255, rnd() * 255];
    const cx = rnd() * width;
    const cy = rnd() * height;
    const r = (0.1 + rnd() * 0.3) * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const t = (x + y) / (width + height);
        const inDisc = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
        for (let c = 0; c < 3; c++) {
          const base = inDisc ? 255 - c0[c]! : c0[c]! * (1 - t) + c1[c]! * t;
          px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, base + (rnd() - 0.5) * 24));
        }
      }
    }
    if (!fs.existsSync(f)) await sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toFile(f);
    if (i % 16 === 15) progress(`  generated ${i + 1}/${count} JPEGs (${width}×${height}) in ${dir}`);
  }
  return files;
}

/** Event-loop delay percentiles from `perf_hooks.monitorEventLoopDelay`, in ms. */
export function loopDelay(h: { percentile(p: number): number; max: number; mean: number; count?: number }): {
  p50: number; p99: number; max: number; mean: number;
} {
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, mean: h.mean / 1e6 };
}

/** Parse "2,1" into integers ≥ min. */
export function intList(name: string, v: string, min = 0): number[] {
  return v.split(',').map((t) => {
    const n = Number(t.trim());
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected integers ≥ ${min}, got '${v}'`);
    return n;
  });
}

/** Print a scenario's result: JSON for run-all/update-benchmarks, else its table. */
export function emitResult(result: { table: string }, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${result.table}\n`);
}

/** Run a scenario's `main` when the file is executed directly; the message alone on failure (BENCH_DEBUG=1: the stack). */
export function runWhenMain(metaUrl: string, name: string, main: () => Promise<unknown>): void {
  if (!isMain(metaUrl)) return;
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      progress(`${name}: ${err instanceof Error ? (process.env.BENCH_DEBUG ? err.stack : err.message) : String(err)}`);
      process.exit(1);
    },
  );
}

/**
 * How much of the machine other processes used over an interval: (all CPUs' busy time from /proc/stat − this
 * process's own CPU time) / (all CPUs × the interval). On a shared machine a round with a high share measured the
 * neighbours as much as the code; scenarios record it per round and can redo such rounds. null where /proc/stat is
 * missing (not Linux).
 */
export function othersProbe(): () => number | null {
  const read = (): { busy: number; total: number } | null => {
    try {
      const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const total = f.reduce((a, b) => a + b, 0);
      return { busy: total - f[3]! - f[4]!, total }; // idle and iowait are not busy
    } catch {
      return null;
    }
  };
  const hz = 100; // USER_HZ: /proc/stat counts in 1/100 s on Linux
  const s0 = read();
  const c0 = process.cpuUsage();
  return () => {
    const s1 = read();
    if (!s0 || !s1 || s1.total === s0.total) return null;
    const own = process.cpuUsage(c0);
    const ownTicks = ((own.user + own.system) / 1e6) * hz;
    return Math.max(0, Math.min(1, (s1.busy - s0.busy - ownTicks) / (s1.total - s0.total)));
  };
}
