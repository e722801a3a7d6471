/**
 * The cost of one engine run on prepared tensors, in CPU and kernel terms rather than wall time (issue 21): matchd's
 * addon vs onnxruntime-node on bench/models/clip-b32-random's image tower, the same intra-op threads, spinning off.
 * CPU time (user, system), minor page faults and context switches per run come from the process's own counters
 * (`process.resourceUsage()`), so another process's load on the machine changes the wall time but hardly these.
 * Children alternate (ours, naive, ours, …) so both see the same machine.
 *
 *   node --import tsx bench/engine-run-cost.ts [--only ours,naive,ours-nocache] [--threads 1] [--batch 8] [--runs 12] [--rounds 2]
 *
 * 'ours-nocache' is matchd with its graph cache off (MATCHD_GRAPH_CACHE=off): the model optimised at load, as
 * onnxruntime-node does. 'ours-ort' (or 'ours-ort-nocache') runs matchd's addon on another ONNX Runtime build through
 * a shim (`--shim <dir>/libonnxruntime.so.1 --ort-lib <onnxruntime-node>/bin/napi-v6/linux/x64/libonnxruntime.so.1`;
 * the shim exports OrtGetApiBase@VERS_1.29.0 and forwards to that library: BENCHMARKS.md, end to end, has its source). Run under `perf record -g` for where the kernel time goes (BENCHMARKS.md, end to end).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchModelDir, ensureBenchModel } from './build-model.ts';
import { pixelBatch } from './compute.ts';
import { importBaseline, runJsonChild } from './lib.ts';

interface Cost { impl: string; threads: number; batch: number; runs: number; wallMs: number; userMs: number; sysMs: number; minorFaults: number; volCs: number; involCs: number }

async function measure(run: () => Promise<unknown>, runs: number): Promise<Omit<Cost, 'impl' | 'threads' | 'batch'>> {
  for (let i = 0; i < 2; i++) await run(); // warm-up
  const walls: number[] = [];
  const r0 = process.resourceUsage();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    walls.push(performance.now() - t0);
  }
  const r1 = process.resourceUsage();
  walls.sort((a, b) => a - b);
  return {
    runs, wallMs: walls[walls.length >> 1]!, userMs: (r1.userCPUTime - r0.userCPUTime) / 1000 / runs, sysMs: (r1.systemCPUTime - r0.systemCPUTime) / 1000 / runs,
    minorFaults: (r1.minorPageFault - r0.minorPageFault) / runs, volCs: (r1.voluntaryContextSwitches - r0.voluntaryContextSwitches) / runs,
    involCs: (r1.involuntaryContextSwitches - r0.involuntaryContextSwitches) / runs,
  };
}

async function child(impl: string, threads: number, batch: number, runs: number): Promise<Cost> {
  const model = path.join(benchModelDir('clip-b32-random'), 'image.onnx');
  const data = pixelBatch(batch);
  if (impl === 'naive') {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const { module: ort } = await importBaseline<any>('onnxruntime-node');
    const s = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads, extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    const feeds = { pixel_values: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
    return { impl, threads, batch, ...(await measure(() => s.run(feeds), runs)) };
  }
  const { InferenceSession } = await import('../src/core/engine.ts');
  const s = await InferenceSession.open(model, { intraOpThreads: threads });
  const feeds = { pixel_values: { type: 'float32' as const, dims: [batch, 3, 224, 224], data } };
  const fetch = { image_embeds: { type: 'float32' as const, dims: [batch, 512], data: new Float32Array(batch * 512) } };
  const cost = await measure(() => s.run(feeds, fetch), runs);
  s.dispose();
  return { impl, threads, batch, ...cost };
}

async function main() {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', default: 'ours,naive' }, threads: { type: 'string', default: '1' }, batch: { type: 'string', default: '8' },
      runs: { type: 'string', default: '12' }, rounds: { type: 'string', default: '2' }, child: { type: 'string' },
      shim: { type: 'string' }, 'ort-lib': { type: 'string' },
    },
  });
  const threads = Number(values.threads);
  const batch = Number(values.batch);
  const runs = Number(values.runs);
  if (values.child) {
    process.stdout.write(JSON.stringify(await child(values.child, threads, batch, runs)));
    return;
  }
  ensureBenchModel('clip-b32-random');
  const self = fileURLToPath(import.meta.url);
  console.log(`| round | engine | threads | batch | runs | wall ms/run (median) | user ms/run | sys ms/run | minor faults/run | vol cs/run | invol cs/run |`);
  console.log(`| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (let r = 1; r <= Number(values.rounds); r++) {
    for (const impl of values.only.split(',')) {
      const env: NodeJS.ProcessEnv = {};
      if (impl.includes('-nocache')) env.MATCHD_GRAPH_CACHE = 'off';
      const ort = /-ort(\d*)/.exec(impl);
      if (ort) {
        const lib = (values['ort-lib'] ?? '').split(',')[Number(ort[1] || 1) - 1];
        if (!values.shim || !lib) throw new Error(`${impl}: give --shim and --ort-lib (a list: -ort2 takes the second)`);
        Object.assign(env, { LD_PRELOAD: values.shim, ORT_SHIM_TARGET: lib });
      }
      const c = await runJsonChild<Cost>(self, ['--child', impl.startsWith('ours') ? 'ours' : impl, '--threads', String(threads), '--batch', String(batch), '--runs', String(runs)], env);
      const f = (x: number, d = 1) => x.toFixed(d);
      console.log(`| ${r} | ${impl} | ${threads} | ${batch} | ${runs} | ${f(c.wallMs)} | ${f(c.userMs)} | ${f(c.sysMs)} | ${f(c.minorFaults, 0)} | ${f(c.volCs)} | ${f(c.involCs)} |`);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
