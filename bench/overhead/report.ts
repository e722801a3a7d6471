/** The overhead scenario's targets, text table and BENCHMARKS.md section. */
import { describeMachine, markdownTable, ms, ratio, textTable } from '../lib.ts';
import { notesBlock, rerunCommand, sectionHead, targetBullets } from '../report.ts';
import { threadLabel, type ImplName, type OverheadResult, type RatioRow, type Target } from './types.ts';

const IMPL_LABEL: Record<ImplName, string> = {
  ours: 'ours',
  'ours-prealloc': 'ours, preallocated output',
  'onnxruntime-node': 'onnxruntime-node',
  'onnxruntime-node-prealloc': 'onnxruntime-node, preallocated output',
};

export function targets(ratios: RatioRow[], st: OverheadResult['stall']): Target[] {
  const out: Target[] = [];
  for (const r of ratios) {
    if (r.target === null) continue;
    out.push({
      id: 'a',
      what: `${r.model}, intraOpThreads=${threadLabel(r.threads)}`,
      value: r.ratio,
      target: '≤ 1.0×',
      met: r.met!,
      line:
        `(a) ${r.model}, intraOpThreads=${threadLabel(r.threads)}: ours/baseline = ${r.ratio.toFixed(2)} ` +
        `(target ≤ 1.0×): ${r.met ? 'met' : 'NOT met'}`,
    });
  }
  if (st) {
    const ours = st.rows.filter((r) => r.impl === 'ours');
    const worst = Math.max(...ours.map((r) => r.maxGap));
    const base = st.rows.filter((r) => r.impl === 'onnxruntime-node');
    const baseWorst = Math.max(...base.map((r) => r.maxGap));
    out.push({
      id: 'b',
      what: 'longest event-loop stall during a ~200 ms inference (ours, all thread settings)',
      value: worst,
      target: '< 10 ms',
      met: worst < 10,
      line:
        `(b) longest event-loop stall, ours = ${ms(worst)} ms (target < 10 ms): ${worst < 10 ? 'met' : 'NOT met'}` +
        ` — onnxruntime-node: ${ms(baseWorst)} ms`,
    });
  }
  return out;
}

export function renderText(r: Omit<OverheadResult, 'table' | 'markdown'>): string {
  const parts: string[] = [];
  parts.push(`overhead: ours (ONNX Runtime ${r.versions.ours}) vs onnxruntime-node ${r.versions.onnxruntimeNode}`);
  parts.push(`machine: ${describeMachine(r.machine)}`);
  if (r.perRun.length) {
    parts.push('');
    parts.push(
      `(a) per-run wall time, input and output ${r.inputShape.join('×')} float32, ` +
        `${r.options.rounds} rounds × ${r.options.iterations} runs (after ${r.options.warmup} warm-up runs per round), ms`,
    );
    parts.push(
      textTable(
        ['model', 'threads', 'engine', 'min', 'median', 'max'],
        r.perRun.map((p) => [p.model, threadLabel(p.threads), IMPL_LABEL[p.impl], ms(p.stats.min), ms(p.stats.median), ms(p.stats.max)]),
      ),
    );
    parts.push('');
    parts.push(
      textTable(
        ['model', 'threads', 'outputs', 'ours/baseline (median)', 'per-round range', 'target'],
        r.ratios.map((x) => [
          x.model, threadLabel(x.threads), x.outputs, ratio(x.ratio),
          `${x.roundRange[0].toFixed(2)}–${x.roundRange[1].toFixed(2)}`, x.target === null ? '(info)' : `≤ ${x.target.toFixed(1)}×`,
        ]),
      ),
    );
  }
  if (r.stall) {
    parts.push('');
    parts.push(
      `(b) event-loop stall: largest gap between ticks of a 1 ms setInterval while one inference runs ` +
        `(slowModel ${r.stall.size}×${r.stall.size}, a chain of MatMuls), ${r.options.stallRuns} runs each, ms`,
    );
    parts.push(
      textTable(
        ['engine', 'threads', 'MatMuls', 'inference (median)', 'max stall (worst run)', 'max stall (median run)', 'ticks during run'],
        r.stall.rows.map((s) => [
          s.impl, threadLabel(s.threads), s.repeats === null ? '–' : String(s.repeats), ms(s.inference.median),
          ms(s.maxGap), ms(s.medianMaxGap), String(s.medianTicks),
        ]),
      ),
    );
  }
  parts.push('');
  for (const t of r.targets) parts.push(t.line);
  return parts.join('\n');
}

export function renderMarkdown(r: Omit<OverheadResult, 'table' | 'markdown'>, argv: string[]): string {
  const L = sectionHead({
    title: 'Engine overhead vs onnxruntime-node (`bench/overhead.ts`)',
    date: r.date,
    machine: r.machine,
    facts: [
      `ONNX Runtime: ours ${r.versions.ours} (matchd addon, \`addon().versions()\`); ` +
        `baseline onnxruntime-node ${r.versions.onnxruntimeNode} (its bundled ORT has the same version)`,
      `Session settings, identical for both: sequential execution, graph optimisation \`all\`, CPU arena and memory ` +
        `pattern on, thread-pool spinning ${r.options.spinning ? 'on' : 'off'}; intra-op threads as in each row ` +
        `(\`default\` = ORT's default, one per physical core).`,
    ],
    reproduce: {
      commands: [
        `npm run bench:setup && ${rerunCommand('overhead.ts', argv)}`,
        'npm run bench -- --write   # every scenario, and rewrite these sections of BENCHMARKS.md',
      ],
    },
  });
  L.push('');
  L.push('### Targets');
  L.push('');
  L.push(...targetBullets(r.targets));
  if (r.perRun.length) {
    L.push('');
    L.push(`### (a) Per-run cost, trivial models, input and output ${r.inputShape.join('×')} float32`);
    L.push('');
    L.push(
      `Wall time of one awaited \`run()\` in ms: ${r.options.rounds} rounds × ${r.options.iterations} runs per variant ` +
        `(${r.options.warmup} warm-up runs before each round; variants interleaved, order rotated each round). ` +
        `Within each engine every variant reads one input \`Float32Array\` in place; the two engines' inputs hold ` +
        `identical values (same seed). "engine-allocated" outputs: each engine ` +
        `allocates the output (ours hands ORT's buffer to JS without a copy); "preallocated": the caller passes the ` +
        `output buffer and ORT writes into it.`,
    );
    L.push('');
    L.push(
      markdownTable(
        ['model', 'intra-op threads', 'engine', 'min', 'median', 'max'],
        r.perRun.map((p) => [
          p.model === 'identity' ? 'Identity' : 'Add (x + 1)', threadLabel(p.threads), IMPL_LABEL[p.impl],
          ms(p.stats.min), ms(p.stats.median), ms(p.stats.max),
        ]),
      ),
    );
    L.push('');
    L.push('Ratio of medians, ours / onnxruntime-node (lower is better; the per-round range shows the noise):');
    L.push('');
    L.push(
      markdownTable(
        ['model', 'intra-op threads', 'outputs', 'ours / baseline', 'per-round range', 'target', 'met'],
        r.ratios.map((x) => [
          x.model === 'identity' ? 'Identity' : 'Add (x + 1)', threadLabel(x.threads), x.outputs, ratio(x.ratio),
          `${x.roundRange[0].toFixed(2)}–${x.roundRange[1].toFixed(2)}`,
          x.target === null ? '(info)' : `≤ ${x.target.toFixed(1)}×`,
          x.met === null ? '' : x.met ? 'met' : '**NOT met**',
        ]),
      ),
    );
  }
  if (r.stall) {
    const s = r.stall;
    L.push('');
    L.push('### (b) Event-loop stall during a ~200 ms inference');
    L.push('');
    L.push(
      `A \`setInterval(…, 1)\` timer records the largest gap between consecutive ticks while one inference of ` +
        `\`slowModel\` (${s.size}×${s.size} input, a chain of MatMuls with one weight) is awaited; ` +
        (r.options.slowRepeats === null
          ? `the chain length is calibrated per thread setting so that our run takes ≈ ${r.options.stallMs} ms. `
          : '') +
        `${r.options.stallRuns} runs per row, times in ms. The busy-loop row blocks the main thread for as long as ` +
        'our first inference row took; the control row is the same timer over the same window with nothing ' +
        'running, i.e. what this machine does to a 1 ms timer on its own.',
    );
    L.push('');
    L.push(
      markdownTable(
        ['engine', 'intra-op threads', 'MatMuls', 'inference (median)', 'max stall, worst run', 'max stall, median run', 'timer ticks during the run'],
        s.rows.map((x) => [
          x.impl, threadLabel(x.threads), x.repeats === null ? '–' : String(x.repeats), ms(x.inference.median),
          ms(x.maxGap), ms(x.medianMaxGap), String(x.medianTicks),
        ]),
      ),
    );
  }
  L.push(...notesBlock(r.notes));
  return L.join('\n');
}

