/**
 * Where the time goes in bench/end-to-end.ts's children (issue 21): each mode of a child (matchd or naive) profiled
 * on its own, from outside the child, without changing what it runs.
 *
 * For every child the script reads its progress lines (one per mode) and, at each, (1) stops the `perf record` of
 * the mode that just ended and attaches a new one to the child (software clock, no hardware counters needed),
 * (2) snapshots /proc/<pid>/task/* (CPU time and context switches per thread) and /proc/stat (the whole machine).
 * Per mode it prints: wall time, the child's CPU time as cores used, CPU by library (perf report --sort dso: ONNX
 * Runtime, libvips/sharp, node, kernel), voluntary and involuntary context switches, and the other processes' share
 * of the machine. Children run alternately (matchd, naive, matchd, …) so that both see the same noise.
 *
 *   node --import tsx bench/end-to-end-profile.ts [--only ours,naive] [--threads 2] [--rounds 2] [--out DIR]
 *        [--env-ours K=V] ... any other option goes to the end-to-end children (e.g. --batched-images 64)
 *
 * `--only ours,ours+env,naive --env-ours K=V`: 'ours+env' is matchd's child with that environment, e.g.
 * `LD_PRELOAD=<shim>/libonnxruntime.so.1 ORT_SHIM_TARGET=<onnxruntime-node's libonnxruntime.so.1>` to run matchd's
 * addon on onnxruntime-node's ONNX Runtime build (see the end-to-end notes in BENCHMARKS.md for the shim), to tell
 * the engine's version from the rest of the process. Needs `perf`
 * (Debian linux-perf) and root or perf_event_paranoid ≤ 1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureJpegs, nodeArgs, repoRoot } from './lib.ts';

interface Snap { t: number; cpu: number; vol: number; invol: number; threads: number; statBusy: number; statTotal: number }

const TICK = 100; // USER_HZ

/** Context switches per thread, last seen: a thread that has ended keeps its counts, so the sums never go down. */
const seen = new Map<string, { vol: number; invol: number }>();

function snap(pid: number): Snap {
  // CPU from the process's own line (it keeps the time of threads that have ended); switches summed over threads.
  const pstat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const pf = pstat.slice(pstat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(pf[11]) + Number(pf[12])) / TICK;
  let threads = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      seen.set(`${pid}/${tid}`, {
        vol: Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
        invol: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
      });
      threads++;
    } catch {
      // the thread ended between readdir and read
    }
  }
  let vol = 0;
  let invol = 0;
  for (const [key, c] of seen) {
    if (!key.startsWith(`${pid}/`)) continue;
    vol += c.vol;
    invol += c.invol;
  }
  const s = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = s.reduce((a, b) => a + b, 0);
  return { t: performance.now(), cpu, vol, invol, threads, statBusy: (total - s[3]! - s[4]!) / TICK, statTotal: total / TICK };
}

function dsoShares(file: string): Record<string, number> {
  const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--sort', 'dso', '--percent-limit', '0.5'], { encoding: 'utf8' });
  const out: Record<string, number> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\S.*)$/.exec(line);
    if (!m) continue;
    const name = m[2]!.trim();
    const key = /onnxruntime/.test(name) ? 'ORT' : /vips|sharp/.test(name) ? 'vips/sharp' : /kernel/.test(name) ? 'kernel'
      : /^node$|\[JIT\]|perf-\d+\.map/.test(name) ? 'node/JS' : /libc|libm|libstdc|ld-linux/.test(name) ? 'libc/libstdc++' : 'other';
    out[key] = (out[key] ?? 0) + Number(m[1]);
  }
  return out;
}

interface ModeProfile { impl: string; mode: string; wall: number; cores: number; vol: number; invol: number; threads: number; others: number; dso: Record<string, number> }

interface ChildModes { modes: { mode: string; throughput: { median: number }; batchSizes?: { median: number; min: number } }[]; compute?: { batch: number; throughput: number }[] }

async function profileChild(
  impl: string, threads: number, list: string, passThrough: string[], out: string, env: NodeJS.ProcessEnv,
): Promise<{ profiles: ModeProfile[]; result: ChildModes }> {
  fs.mkdirSync(out, { recursive: true });
  const self = path.join(path.dirname(fileURLToPath(import.meta.url)), 'end-to-end.ts');
  const childImpl = impl === 'ours+env' ? 'ours' : impl;
  const child = spawn(process.execPath, nodeArgs(self, [...passThrough, '--child', childImpl, '--files', list, '--threads', String(threads), '--rounds', '1']), {
    cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => stdout.push(d));
  const pid = child.pid!;
  const profiles: ModeProfile[] = [];
  let current: { mode: string; s0: Snap; perf: ChildProcess; file: string } | null = null;
  let last: Snap | null = null;
  const poll = setInterval(() => {
    try {
      const s = snap(pid);
      if (s.threads > 1) last = s; // an exiting process is down to its main thread: keep the sample before
    } catch {
      // exiting
    }
  }, 50);
  const stopPerf = (p: ChildProcess) => new Promise<void>((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGINT');
  });
  const close = async (s1: Snap) => {
    if (!current) return;
    const c = current;
    current = null;
    await stopPerf(c.perf);
    const wall = (s1.t - c.s0.t) / 1000;
    const machine = s1.statTotal - c.s0.statTotal;
    profiles.push({
      impl, mode: c.mode, wall, cores: (s1.cpu - c.s0.cpu) / wall, vol: s1.vol - c.s0.vol, invol: s1.invol - c.s0.invol, threads: s1.threads,
      others: machine > 0 ? Math.max(0, (s1.statBusy - c.s0.statBusy - (s1.cpu - c.s0.cpu)) / machine) : 0, dso: dsoShares(c.file),
    });
  };
  let n = 0;
  let chain = Promise.resolve();
  let buf = '';
  child.stderr!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.startsWith('end-to-end: ')) {
        process.stderr.write(`  [${impl}] ${line}\n`);
        continue;
      }
      const mode = line.slice('end-to-end: '.length);
      chain = chain.then(async () => {
        let s: Snap;
        try {
          s = snap(pid);
        } catch {
          return;
        }
        await close(s);
        const file = path.join(out, `${impl}-${threads}t-${String(++n).padStart(2, '0')}.perf.data`);
        const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '499', '-p', String(pid), '-o', file], { stdio: 'ignore' });
        current = { mode, s0: s, perf, file };
        process.stderr.write(`  [${impl}] ${mode}\n`);
      });
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearInterval(poll);
  await chain;
  if (last) await close(last); // the last mode ends with the process: its last /proc sample (≤ 50 ms before)
  if (code !== 0) throw new Error(`${impl} child failed (exit ${code})`);
  return { profiles, result: JSON.parse(Buffer.concat(stdout).toString('utf8')) as ChildModes };
}

const fmt = (x: number, d = 1) => x.toFixed(d);

async function main() {
  const argv = process.argv.slice(2);
  const take = (name: string, def: string) => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return def;
    const v = argv[i + 1]!;
    argv.splice(i, 2);
    return v;
  };
  const envOurs: NodeJS.ProcessEnv = {};
  for (let i; (i = argv.indexOf('--env-ours')) >= 0;) {
    const [k, ...v] = argv[i + 1]!.split('=');
    envOurs[k!] = v.join('=');
    argv.splice(i, 2);
  }
  const only = take('only', 'ours,naive').split(',');
  const threads = take('threads', '2').split(',').map(Number);
  const rounds = Number(take('rounds', '2'));
  const out = take('out', fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-e2e-profile-')));
  fs.mkdirSync(out, { recursive: true });
  const files = await ensureJpegs(64, 1024, 768);
  const list = path.join(path.dirname(files[0]!), 'list.json');
  fs.writeFileSync(list, JSON.stringify(files));
  process.stderr.write(`load before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; perf data in ${out}\n`);
  const all: (ModeProfile & { threadsSetting: number; round: number })[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const t of threads) {
      for (const impl of only) {
        const env = impl === 'ours+env' ? envOurs : {};
        const { profiles, result } = await profileChild(impl, t, list, argv, path.join(out, `r${r + 1}`), env);
        for (const p of profiles) all.push({ ...p, threadsSetting: t, round: r + 1 });
        const modes = result.modes.map((m) => `${m.mode}: ${fmt(m.throughput.median)}${m.batchSizes ? ` (batches median ${m.batchSizes.median}, min ${m.batchSizes.min})` : ''}`);
        const compute = (result.compute ?? []).map((c) => `compute bound batch ${c.batch}: ${fmt(c.throughput)}`);
        console.log(`round ${r + 1}, ${impl}, ${t} threads, images/s: ${[...compute, ...modes].join('; ')}`);
      }
    }
  }
  const keys = ['ORT', 'vips/sharp', 'node/JS', 'libc/libstdc++', 'kernel', 'other'];
  console.log(`load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`| round | pipeline | threads | mode | wall s | cores used | ${keys.map((k) => `${k} %`).join(' | ')} | ctx sw vol/s | invol/s | others' share |`);
  console.log(`| ---: | --- | ---: | --- | ---: | ---: | ${keys.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`);
  for (const p of all) {
    console.log(`| ${p.round} | ${p.impl} | ${p.threadsSetting} | ${p.mode.replace(/, \d+ threads$/, '')} | ${fmt(p.wall, 2)} | ${fmt(p.cores, 2)} | ${keys.map((k) => fmt(p.dso[k] ?? 0)).join(' | ')} | ${fmt(p.vol / p.wall, 0)} | ${fmt(p.invol / p.wall, 0)} | ${fmt(p.others * 100, 0)} % |`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  fs.mkdirSync(os.tmpdir(), { recursive: true });
  await main();
}
