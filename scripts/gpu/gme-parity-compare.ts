/**
 * The comparison step of scripts/gpu/gme-parity.ts: every matchd embedding set (DIR/emb-TAG.npy + .json) against the
 * reference (DIR/ref.npy), float16 packages against the float32 one on CPU, and the throughput figures (matchd's and,
 * where gme-parity.sh timed it, transformers' in DIR/hf-timing-*.json), into OUT/gme-parity.json and .md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readNpy } from './npy.ts';

/** GME-Qwen2-VL-2B's score range: score = (cos − lo) / (hi − lo), here unclamped. */
const RANGE: [number, number] = [0.1, 0.5];
const COS_TARGET = 0.9999;
const SCORE_TARGET = 0.005;

interface Emb {
  tag: string;
  requested: string;
  provider?: string;
  weights?: string;
  package: string;
  loadSeconds?: number;
  error?: { code: string; message: string };
  throughput?: {
    runs: number;
    image256: { oneSeconds: number; batch: number; batchSeconds: number };
    image1280: { oneSeconds: number; batch: number; batchSeconds: number };
    queries: { count: number; batchSeconds: number };
  };
  rows?: Float32Array[];
}

interface Items { pixels: string; images: string[]; texts: string[] }

function cos(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function rowsOf(file: string): Float32Array[] {
  const { data, shape } = readNpy(file);
  if (!(data instanceof Float32Array) || shape.length !== 2) throw new Error(`${file}: expected float32 [rows, hidden]`);
  return Array.from({ length: shape[0]! }, (_, i) => data.slice(i * shape[1]!, (i + 1) * shape[1]!));
}

const f = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const perSec = (n: number, s: number | undefined) => (s ? f(n / s, 1) : '–');

/** Image·text score matrix (images first in `rows`, then texts). */
function scores(rows: Float32Array[], nImages: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < nImages; i++) for (let t = nImages; t < rows.length; t++) out.push((cos(rows[i]!, rows[t]!) - RANGE[0]) / (RANGE[1] - RANGE[0]));
  return out;
}

export function compare(work: string, out: string, referenceLabel: string): number {
  const items = JSON.parse(fs.readFileSync(path.join(work, 'items.json'), 'utf8')) as Items;
  const nImages = items.images.length;
  const names = [...items.images.map((p) => `image ${path.basename(p)}`), ...items.texts.map((t) => `text ${JSON.stringify(t.length > 30 ? `${t.slice(0, 30)}…` : t)}`)];
  const refFile = path.join(work, 'ref.npy');
  const ref = fs.existsSync(refFile) ? rowsOf(refFile) : null;
  const embs: Emb[] = fs.readdirSync(work).filter((n) => /^emb-.+\.json$/.test(n)).sort().map((n) => {
    const e = JSON.parse(fs.readFileSync(path.join(work, n), 'utf8')) as Emb;
    const npy = path.join(work, n.replace(/\.json$/, '.npy'));
    if (!e.error && fs.existsSync(npy)) e.rows = rowsOf(npy);
    return e;
  });
  const hf = fs.readdirSync(work).filter((n) => /^hf-timing-.+\.json$/.test(n)).sort()
    .map((n) => ({ name: n, ...(JSON.parse(fs.readFileSync(path.join(work, n), 'utf8')) as { transformers: string; torch: string; device: string; dtype: string; inputs: { inputs: string; rows: number; seconds: number[] }[] }) }));

  const comparable = (e: Emb) => !!(e.rows && ref && e.rows.length === ref.length && e.rows[0]!.length === ref[0]!.length);
  const base = embs.find((e) => e.tag === 'cpu-f32' && comparable(e)) ?? embs.find((e) => e.weights === 'float32' && comparable(e));
  const targets: { line: string; met: boolean }[] = [];
  const rows: string[][] = [];
  const perItem: Record<string, number[]> = {};
  for (const e of embs) {
    const t = e.throughput;
    let vsRef = '–', vsBase = '–';
    if (comparable(e)) {
      const c = e.rows!.map((r, i) => cos(r, ref![i]!));
      perItem[e.tag] = c;
      const min = Math.min(...c);
      vsRef = f(min, 7);
      if (e.weights === 'float32') {
        const met = min >= COS_TARGET;
        targets.push({ met, line: `${e.tag} (${e.provider}, float32) vs ${referenceLabel}: min cosine ${f(min, 7)} over ${c.length} items (target ≥ ${COS_TARGET}): ${met ? 'met' : 'NOT met'}` });
      }
      if (e.weights === 'float16' && base) {
        const a = scores(e.rows!, nImages), b = scores(base.rows!, nImages);
        const d = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
        vsBase = f(d, 5);
        const met = d < SCORE_TARGET;
        targets.push({ met, line: `${e.tag} (${e.provider}, float16) vs ${base.tag} (float32): max |Δscore| ${f(d, 5)} over ${a.length} image·text pairs (score = (cos − 0.1) / 0.4, unclamped; target < ${SCORE_TARGET}): ${met ? 'met' : 'NOT met'}` });
      }
    }
    rows.push([
      e.tag, e.requested, e.error ? `did not start: ${e.error.code}` : String(e.provider), e.weights ?? '–', f(e.loadSeconds),
      vsRef, vsBase,
      perSec(1, t?.image256.oneSeconds), t ? perSec(t.image256.batch, t.image256.batchSeconds) : '–',
      perSec(1, t?.image1280.oneSeconds), t ? perSec(t.image1280.batch, t.image1280.batchSeconds) : '–',
      t ? perSec(t.queries.count, t.queries.batchSeconds) : '–',
    ]);
    if (e.requested === 'cuda' && e.error) targets.push({ met: false, line: `${e.tag}: CUDA did not start: ${e.error.code} ${e.error.message.split('\n')[0]}` });
    if (e.requested === 'cuda' && !e.error && e.provider !== 'cuda') targets.push({ met: false, line: `${e.tag}: asked for cuda, ran on ${e.provider}` });
  }
  let spread = '';
  if (ref) {
    const pair: number[] = [];
    for (let i = 0; i < ref.length; i++) for (let j = i + 1; j < ref.length; j++) pair.push(cos(ref[i]!, ref[j]!));
    const s = scores(ref, nImages);
    spread = `Reference embeddings of different items have pairwise cosines ${f(Math.min(...pair), 3)}…${f(Math.max(...pair), 3)} ` +
      `(so a cosine of ${COS_TARGET} with the reference is not a given); image·text scores span ${f(Math.min(...s), 3)}…${f(Math.max(...s), 3)}.`;
  } else {
    targets.push({ met: false, line: `no reference embeddings (${refFile} missing): parity not checked` });
  }
  const header = ['tag', 'asked', 'provider', 'weights', 'load s', `min cos vs reference`, 'max |Δscore| vs float32', '256-token images/s (one)',
    '(batch 8)', '1280-token images/s (one)', '(batch 3)', 'queries/s (16)'];
  const md = (h: string[], rs: string[][]) => [`| ${h.join(' | ')} |`, `|${h.map(() => ' --- ').join('|')}|`, ...rs.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const hfRows = hf.map((h) => [h.name.replace(/^hf-timing-|\.json$/g, ''),
    `${h.transformers.startsWith('stand-in') ? h.transformers : `transformers ${h.transformers}`}, torch ${h.torch}`, h.device, h.dtype,
    ...h.inputs.map((i) => {
      const s = [...i.seconds].sort((a, b) => a - b)[i.seconds.length >> 1]!;
      return `${path.basename(i.inputs)}: ${f(i.rows / s, 1)} rows/s`;
    })].map(String));
  const itemLines = Object.entries(perItem).map(([tag, c]) => `- ${tag}: ${c.map((x, i) => `${names[i]} ${f(x, 7)}`).join(', ')}`);
  const all = targets.every((t) => t.met) && targets.length > 0;
  const summary = [
    `# GME parity: matchd vs ${referenceLabel}`,
    '',
    `Pixels for the reference: ${items.pixels === 'pillow' ? 'tools/gme/preprocess_reference.py (Pillow + numpy, independent of matchd)' : "matchd's own preprocessing (no Pillow/numpy on this Python; preprocessing parity is covered on CPU by test/gme/preprocess.test.ts)"}; prompts: plain strings tokenised with \`tokenizers\`.`,
    '',
    '## Targets',
    '',
    ...targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.line}`),
    '',
    '## Per package and provider',
    '',
    md(header, rows),
    '',
    spread,
    '',
    ...(hfRows.length ? ['## Reference timing (same inputs)', '', md(['run', 'versions', 'device', 'dtype', 'inputs…'], hfRows), ''] : []),
    '## Cosine per item',
    '',
    ...itemLines,
    '',
  ].join('\n');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'gme-parity.md'), summary);
  fs.writeFileSync(path.join(out, 'gme-parity.json'), JSON.stringify({
    reference: referenceLabel, pixels: items.pixels, items: names, targets, allTargetsMet: all,
    engines: embs.map(({ rows: _r, ...e }) => ({ ...e, cosVsReference: perItem[e.tag] ?? null })), hf,
  }, null, 1));
  process.stdout.write(summary);
  return all ? 0 : 1;
}
