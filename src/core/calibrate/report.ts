/**
 * What `matchd calibrate` leaves behind: a self-contained HTML report (inline SVG charts, the tables, the warnings
 * and the YAML to paste; nothing fetched), the charts as PNG files (the SVG rasterised by sharp — no browser), and the
 * numbers as JSON. Also the plain-text summary printed on the terminal.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Calibration } from './analyse.ts';
import { histogramSvg, prSvg, rocSvg } from './charts.ts';
import type { Labelled, Point } from './stats.ts';

export interface ReportInput {
  calibration: Calibration;
  values: readonly Labelled[];
  /** The rule (or model) calibrated, the model, the inputs: for the report's heading. */
  subject: { rule: string; model: string; inputs: string };
  snippet: string;
  problems: { where: string; message: string; code?: string }[];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
const n3 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '–');

/** About a dozen rows of the precision / recall table: evenly spread thresholds plus the two proposed ones. */
export function tableRows(c: Calibration, rows = 12): Point[] {
  const curve = c.curve;
  if (curve.length <= rows) return curve;
  const picked = new Set<Point>();
  for (let i = 0; i < rows; i++) picked.add(curve[Math.round((i * (curve.length - 1)) / (rows - 1))]!);
  for (const t of [c.thresholds.adopt, c.thresholds.reject]) {
    if (t === null) continue;
    const p = curve.filter((x) => x.threshold >= t).at(-1);
    if (p) picked.add(p);
  }
  return [...picked].sort((a, b) => b.threshold - a.threshold);
}

export function charts(r: ReportInput): { name: string; svg: string }[] {
  const c = r.calibration;
  const names = c.proposal.bands.list;
  return [
    { name: 'histogram', svg: histogramSvg({ values: r.values, on: c.on, adopt: c.thresholds.adopt, reject: c.thresholds.reject, names: { top: names[0]!.name, review: names.length > 2 ? names[1]!.name : 'review', bottom: names.at(-1)!.name } }) },
    { name: 'precision-recall', svg: prSvg(c.curve, c.targets.adoptPrecision, c.adoptPoint, c.thresholds.adopt, names[0]!.name) },
    { name: 'roc', svg: rocSvg(c.curve, c.n.noMatch, c.auc) },
  ];
}

/** The terminal summary. */
export function summary(r: ReportInput): string {
  const c = r.calibration;
  const t = c.thresholds;
  const b = c.bootstrap;
  const ci = (i: { low: number; high: number } | null | undefined) => (i ? ` (95 % interval ${n3(i.low)}–${n3(i.high)})` : '');
  const names = c.proposal.bands.list.map((x) => x.name);
  const lines = [
    `calibrated ${r.subject.rule} (${r.subject.model}) on ${c.n.match} match and ${c.n.noMatch} no-match example(s), thresholds on the ${c.on}`,
    `ROC AUC ${c.auc.toFixed(3)}${ci(b?.auc)}`,
    t.adopt === null
      ? `${names[0]}: no threshold reaches ${pct(c.targets.adoptPrecision)} precision`
      : `${names[0]} from ${t.adopt}${ci(b?.adopt)}: precision ${pct(t.adoptPrecision!)}, recall ${pct(t.adoptRecall!)} (asked: precision ≥ ${pct(c.targets.adoptPrecision)})`,
    `${names.at(-1)} below ${t.reject}${ci(b?.reject)}: ${pct(t.rejectRecall)} of matches stay above it (asked: ≥ ${pct(c.targets.rejectRecall)})`,
    names.length > 2 ? `${names[1]}: ${t.reject} ≤ ${c.on} < ${t.adopt}` : 'no review zone: one threshold meets both targets',
    `shares of the examples: ${names[0]} ${pct(c.shares.all[0])}, ${names.length > 2 ? `${names[1]} ${pct(c.shares.all[1])}, ` : ''}${names.at(-1)} ${pct(c.shares.all[2])}`,
    '',
    `threshold  precision  recall  F1`,
    ...tableRows(c).map((p) => `${p.threshold.toFixed(4).padStart(9)}  ${pct(p.precision).padStart(9)}  ${pct(p.recall).padStart(6)}  ${p.f1.toFixed(3)}`),
  ];
  return lines.join('\n') + '\n';
}

/** The HTML report: one file, charts inline, nothing to fetch. */
export function reportHtml(r: ReportInput, svgs: { name: string; svg: string }[], generated: Date): string {
  const c = r.calibration;
  const b = c.bootstrap;
  const names = c.proposal.bands.list.map((x) => x.name);
  const shareRow = (label: string, s: [number, number, number]) => `<tr><th>${esc(label)}</th><td>${pct(s[0])}</td>${names.length > 2 ? `<td>${pct(s[1])}</td>` : ''}<td>${pct(s[2])}</td></tr>`;
  const ci = (i: { low: number; high: number } | null | undefined) => (i ? `${n3(i.low)} – ${n3(i.high)}` : '–');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>matchd calibrate — ${esc(r.subject.rule)}</title>
<style>
body { font: 14px/1.5 system-ui, "DejaVu Sans", sans-serif; color: #1d2330; max-width: 980px; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; } th, td { padding: .2rem .8rem; text-align: right; border-bottom: 1px solid #e3e6ec; }
th:first-child { text-align: left; } .warn { background: #fff4e0; border: 1px solid #f0cf8c; padding: .6rem .9rem; border-radius: 6px; }
pre { background: #f3f4f7; padding: .8rem; border-radius: 6px; overflow: auto; } svg { max-width: 100%; height: auto; }
</style></head><body>
<h1>Calibration of rule ${esc(r.subject.rule)}</h1>
<p>Model ${esc(r.subject.model)} · ${c.n.match} match and ${c.n.noMatch} no-match examples from ${esc(r.subject.inputs)} · thresholds on the ${c.on} · ${generated.toISOString()}</p>
${c.warnings.length ? `<div class="warn"><strong>Read first</strong><ul>${c.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>` : ''}
<h2>Proposed bands</h2>
<table><tr><th></th><th>value</th><th>95 % interval (bootstrap, ${b?.rounds ?? 0} rounds)</th></tr>
<tr><th>ROC AUC</th><td>${c.auc.toFixed(3)}</td><td>${ci(b?.auc)}</td></tr>
<tr><th>${esc(names[0]!)} from (precision ≥ ${pct(c.targets.adoptPrecision)})</th><td>${n3(c.thresholds.adopt)}</td><td>${ci(b?.adopt)}</td></tr>
<tr><th>${esc(names.at(-1)!)} below (recall ≥ ${pct(c.targets.rejectRecall)})</th><td>${n3(c.thresholds.reject)}</td><td>${ci(b?.reject)}</td></tr></table>
<table><tr><th>share of</th><th>${esc(names[0]!)}</th>${names.length > 2 ? `<th>${esc(names[1]!)}</th>` : ''}<th>${esc(names.at(-1)!)}</th></tr>
${shareRow('all examples', c.shares.all)}${shareRow('matches', c.shares.match)}${shareRow('non-matches', c.shares.noMatch)}</table>
<h2>For the config</h2>
<pre>${esc(r.snippet)}</pre>
<h2>Charts</h2>
${svgs.map((s) => `<figure>${s.svg}</figure>`).join('\n')}
<h2>Precision and recall by threshold</h2>
<table><tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>matches ≥</th><th>non-matches ≥</th></tr>
${tableRows(c, 40).map((p) => `<tr><td>${p.threshold.toFixed(4)}</td><td>${pct(p.precision)}</td><td>${pct(p.recall)}</td><td>${p.f1.toFixed(3)}</td><td>${p.tp}</td><td>${p.fp}</td></tr>`).join('\n')}</table>
${r.problems.length ? `<h2>Left out (${r.problems.length})</h2><ul>${r.problems.slice(0, 500).map((p) => `<li>${esc(p.where)}: ${p.code ? `${esc(p.code)}: ` : ''}${esc(p.message)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}

/** Write report.html, the charts as PNG and calibration.json into `dir`; returns the files written. */
export async function writeReport(dir: string, r: ReportInput, generated = new Date()): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const svgs = charts(r);
  const files: string[] = [];
  const html = path.join(dir, 'report.html');
  fs.writeFileSync(html, reportHtml(r, svgs, generated));
  files.push(html);
  for (const s of svgs) {
    const png = path.join(dir, `${s.name}.png`);
    // density 144: twice the SVG's pixel size, sharp on high-resolution screens and in the README.
    await sharp(Buffer.from(s.svg), { density: 144 }).png({ compressionLevel: 9, palette: true, colours: 64 }).toFile(png);
    files.push(png);
  }
  const json = path.join(dir, 'calibration.json');
  const { curve, ...rest } = r.calibration;
  fs.writeFileSync(json, JSON.stringify({ subject: r.subject, ...rest, curve, problems: r.problems }, null, 2) + '\n');
  files.push(json);
  return files;
}
