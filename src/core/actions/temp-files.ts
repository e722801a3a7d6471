/**
 * The temp files of crash-safe writes (`.<name>.<pid>.<ms>.tmp` beside the target). A failed write removes its own;
 * a process killed mid-write leaves one behind, so stale ones — from a process that is gone, or from before this
 * process started (a reused pid) — are swept when matchd starts (every folder its rules write to) and the first time
 * it writes into any other folder. A live process's temp file is never touched.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';

const TEMP = /^\..+\.(\d+)\.(\d+)\.tmp$/;
const startedAt = Date.now() - Math.round(process.uptime() * 1000);
const swept = new Map<string, Promise<string[]>>();

/** The temp name for writing `file` (same folder, so the final rename/link stays on one filesystem). */
export function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True for a temp file no running writer owns. */
export function isStaleTemp(name: string): boolean {
  const m = TEMP.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  const at = Number(m[2]);
  if (pid === process.pid) return at < startedAt;
  return !alive(pid);
}

/** Remove the stale temp files in `dir` (not recursive); returns the names removed. A missing folder is fine. */
export async function sweepStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const stale = names.filter(isStaleTemp);
  await Promise.all(stale.map((n) => fsp.rm(path.join(dir, n), { force: true })));
  return stale;
}

/** Sweep `dir` once per process (before the first temp file this process writes there). */
export function sweepOnce(dir: string): Promise<string[]> {
  let p = swept.get(dir);
  if (!p) {
    p = sweepStaleTemps(dir).catch(() => []);
    swept.set(dir, p);
  }
  return p;
}

/**
 * Every folder the rules' move/copy/sidecar actions can write to, placeholders filled with every rule, source and
 * outcome (`bandsOf(rule)` plus `error`).
 */
export function outputDirs(config: Config, baseDir: string, bandsOf: (rule: string) => string[]): string[] {
  const dirs = new Set<string>();
  const sources = (rule: string) => config.sources.map((s, i) => ({ rule: s.rule, name: s.name ?? `${s.type}-${i}` })).filter((s) => s.rule === rule).map((s) => s.name);
  for (const [ruleName, rule] of Object.entries(config.rules)) {
    const outcomes = new Set([...bandsOf(ruleName), 'error', ...Object.keys(rule.actions).filter((k) => k !== 'default')]);
    for (const list of Object.values(rule.actions)) {
      for (const a of list) {
        const to = a.options.to;
        if (typeof to !== 'string' || !['move', 'copy', 'sidecar'].includes(a.kind)) continue;
        for (const outcome of outcomes) {
          for (const source of sources(ruleName).length ? sources(ruleName) : ['']) {
            const vars: Record<string, string> = { band: outcome, outcome, rule: ruleName, source };
            dirs.add(path.resolve(baseDir, to.replace(/\{(band|outcome|rule|source)\}/g, (_, k: string) => vars[k]!)));
          }
        }
      }
    }
  }
  return [...dirs];
}
