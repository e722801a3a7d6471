/**
 * @bench-scenario overhead
 *
 * Engine overhead: matchd's native engine vs onnxruntime-node, in one benchmark run, same models, same input
 * values, same session settings.
 *
 *   (a) per-run wall time on trivial models (Identity and Add+1) with a 32×3×224×224 float32 input and output
 *       — target: ours/onnxruntime-node (median) ≤ 1.0×;
 *   (b) the longest event-loop stall seen by a 1 ms interval timer while one ~200 ms inference runs
 *       — target: ours < 10 ms.
 *
 * Usage (from the repo root, after `npm run bench:setup`):
 *   node --import tsx bench/overhead.ts [--json] [--iterations 30] [--rounds 10] [--warmup 3] [--threads 1,0]
 *        [--models identity,add] [--batch 32] [--stall-runs 5] [--stall-ms 200] [--slow-size 512]
 *        [--slow-repeats N] [--spinning] [--only a|b]
 *
 * `--threads 1,0`: intra-op thread counts to test; 0 = ORT's default (one per physical core), for both engines.
 * `--json` prints one JSON object (ScenarioResult) on stdout; progress always goes to stderr.
 *
 * Why two processes: matchd's addon and onnxruntime-node each need their own `libonnxruntime.so.1` (ORT 1.29.0
 * with VERS_1.29.0 symbols, ORT 1.30.0 with VERS_1.30.0). Both carry the same soname, so the dynamic linker
 * reuses whichever was loaded first and the second addon fails to load, in either order. This program is the
 * coordinator: it builds the models and starts one child per engine (overhead/engine-child.ts, over the IPC protocol of
 * child-process.ts), sends them the same commands, rounds interleaved, and collects the timings, which the children
 * take themselves (the IPC is outside every timed region). Each child fills its input from the same seed, so both
 * engines see identical input bytes; within a child, every variant reads the same input buffer in place.
 *
 * Files: overhead/types.ts (options, rows, requests), overhead/engine-child.ts (one engine, timing its runs),
 * overhead/measure.ts ((a) and (b) from the coordinator's side), overhead/report.ts (targets, table, markdown).
 */
import { parseArgs } from 'node:util';
import { emitResult, importBaseline, machineInfo, progress, runWhenMain } from './lib.ts';
import { engineVersion, perRun, ratioRows, stall, startEngines } from './overhead/measure.ts';
import { renderMarkdown, renderText, targets } from './overhead/report.ts';
import type { OverheadOptions, OverheadResult } from './overhead/types.ts';

export type { OverheadOptions, OverheadResult } from './overhead/types.ts';


function parseOptions(argv: string[]): OverheadOptions & { json: boolean } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      iterations: { type: 'string', default: '30' },
      rounds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      threads: { type: 'string', default: '1,0' },
      models: { type: 'string', default: 'identity,add' },
      batch: { type: 'string', default: '32' },
      'stall-runs': { type: 'string', default: '5' },
      'stall-ms': { type: 'string', default: '200' },
      'slow-size': { type: 'string', default: '512' },
      'slow-repeats': { type: 'string' },
      spinning: { type: 'boolean', default: false },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --import tsx bench/overhead.ts [--json] [--iterations 30] [--rounds 10] [--warmup 3]\n' +
        '         [--threads 1,0] [--models identity,add] [--batch 32] [--stall-runs 5] [--stall-ms 200]\n' +
        '         [--slow-size 512] [--slow-repeats N] [--spinning] [--only a|b]\n',
    );
    process.exit(0);
  }
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  const models = values.models.split(',').map((m) => m.trim());
  for (const m of models) if (m !== 'identity' && m !== 'add') throw new Error(`--models: unknown model '${m}' (identity, add)`);
  if (values.only !== undefined && values.only !== 'a' && values.only !== 'b') throw new Error(`--only must be 'a' or 'b'`);
  return {
    json: values.json,
    iterations: int('iterations', values.iterations, 1),
    rounds: int('rounds', values.rounds, 1),
    warmup: int('warmup', values.warmup, 0),
    threads: values.threads.split(',').map((t) => int('threads', t.trim(), 0)),
    models: models as ('identity' | 'add')[],
    batch: int('batch', values.batch, 1),
    stallRuns: int('stall-runs', values['stall-runs'], 1),
    stallMs: int('stall-ms', values['stall-ms'], 1),
    slowSize: int('slow-size', values['slow-size'], 1),
    slowRepeats: values['slow-repeats'] === undefined ? null : int('slow-repeats', values['slow-repeats'], 1),
    spinning: values.spinning,
    only: (values.only as 'a' | 'b' | undefined) ?? null,
  };
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<OverheadResult> {
  const { json, ...o } = parseOptions(argv);
  // Fail early, with the fix, when the baseline is not installed.
  await importBaseline<unknown>('onnxruntime-node').catch((err: Error) => {
    if (/bench:setup/.test(err.message)) throw err;
    // installed but not loadable here: the child will report it
  });
  const { tmpDir } = await import('../test/fixtures/models.ts');
  const w = startEngines();
  try {
    const versions = { ours: await engineVersion(w.ours), onnxruntimeNode: await engineVersion(w['onnxruntime-node']) };
    progress(`overhead: ours (ORT ${versions.ours}) vs onnxruntime-node ${versions.onnxruntimeNode}, one child process each`);
    const dir = tmpDir('matchd-bench-');
    const a = o.only === 'b' ? null : await perRun(w, o, dir);
    const perRunRows = a?.rows ?? [];
    const ratios = ratioRows(perRunRows);
    const st = o.only === 'a' ? null : await stall(w, o);
    const notes = [
      'The two engines run in two child processes of one benchmark run (see the header of `bench/overhead.ts`): ' +
        "matchd's addon (ORT 1.29.0) and onnxruntime-node (ORT 1.30.0) each bring a `libonnxruntime.so.1` with " +
        'the same soname, and whichever loads second fails with `version VERS_1.x.0 not found`. Commands are ' +
        'interleaved between the two; each child times its own runs; both fill their input from the same seed.',
      "onnxruntime-node's `InferenceSession.run()` returns a promise but is not asynchronous: it defers with " +
        '`setImmediate` and then calls the native `run` synchronously on the main thread, so its row in (b) is ' +
        'what a synchronous run looks like; there is no separate synchronous API to test. The busy-loop row is a ' +
        'synchronous stand-in of the same length as our single-thread inference, for reference.',
      "Ours queues the run on libuv's thread pool (`Napi::AsyncWorker`) and resolves on the event loop; with " +
        "more than one intra-op thread ORT's own pool threads run beside it.",
    ];
    if (perRunRows.length > 0) {
      const mb = ((o.batch * 3 * 224 * 224 * 4) / 1e6).toFixed(1);
      notes.push(
        'Ours, engine-allocated outputs: the output ORT allocated is handed to JS as an external `ArrayBuffer` ' +
          `without a copy, and returns to ORT's arena only when V8 finalises it. At ${mb} MB per run V8 answers the ` +
          'external-memory pressure with a full mark-compact every few runs (seen with `--trace-gc`), which is ' +
          'where most of the max column comes from; min and median are the copy-free cost. A preallocated ' +
          'output avoids both the allocation and the GC.',
      );
      const ortPre = a?.preallocReturnsCallerBuffer['onnxruntime-node'];
      if (ortPre === false) {
        notes.push(
          'onnxruntime-node, preallocated output: ORT writes into the caller\'s tensor, but the result that ' +
            '`run()` returns is a new array (checked on every model), i.e. the binding still copies the output; ' +
            'so preallocating saves it nothing. Ours returns the caller\'s own tensor.',
        );
      }
    }
    const partial = {
      scenario: 'overhead' as const,
      date: new Date().toISOString(),
      machine: machineInfo(),
      versions,
      options: o,
      inputShape: [o.batch, 3, 224, 224],
      perRun: perRunRows,
      ratios,
      stall: st,
      targets: targets(ratios, st),
      notes,
      allTargetsMet: false,
    };
    partial.allTargetsMet = partial.targets.every((t) => t.met);
    const result: OverheadResult = { ...partial, table: renderText(partial), markdown: renderMarkdown(partial, argv) };
    emitResult(result, json);
    return result;
  } finally {
    w.ours.stop();
    w['onnxruntime-node'].stop();
  }
}

runWhenMain(import.meta.url, 'overhead', main);
