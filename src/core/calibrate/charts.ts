/**
 * The calibration charts as standalone SVG (inline in the HTML report, rasterised to PNG by report.ts): the values
 * per label as overlaid histograms with the proposed thresholds and the review zone drawn in, the precision–recall
 * curve with the adopt point, and the ROC curve with its AUC. Hand-written SVG: no chart library, no fonts fetched.
 */
import { histogram, type Labelled, type Point } from './stats.ts';

const W = 760;
const H = 380;
const M = { left: 64, right: 24, top: 44, bottom: 56 };
const FONT = 'DejaVu Sans, Verdana, Arial, sans-serif';
const GREEN = '#1f7a3f';
const RED = '#b3261e';
const AMBER = '#a86400';

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Round tick values across [lo, hi]. */
function ticks(lo: number, hi: number, n = 6): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => span / s <= n) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

interface Frame {
  x(v: number): number;
  y(v: number): number;
  svg: string[];
}

function frame(title: string, xLabel: string, yLabel: string, x: [number, number], y: [number, number], fmtX: (v: number) => string, fmtY: (v: number) => string): Frame {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const fx = (v: number) => M.left + ((v - x[0]) / (x[1] - x[0] || 1)) * pw;
  const fy = (v: number) => M.top + ph - ((v - y[0]) / (y[1] - y[0] || 1)) * ph;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="24" font-size="15" font-weight="bold" fill="#1d2330">${esc(title)}</text>`,
  ];
  for (const t of ticks(x[0], x[1])) {
    svg.push(`<line x1="${fx(t)}" y1="${M.top}" x2="${fx(t)}" y2="${M.top + ph}" stroke="#eceef2"/>`);
    svg.push(`<text x="${fx(t)}" y="${M.top + ph + 18}" text-anchor="middle" fill="#5d6678">${fmtX(t)}</text>`);
  }
  for (const t of ticks(y[0], y[1], 5)) {
    svg.push(`<line x1="${M.left}" y1="${fy(t)}" x2="${M.left + pw}" y2="${fy(t)}" stroke="#eceef2"/>`);
    svg.push(`<text x="${M.left - 8}" y="${fy(t) + 4}" text-anchor="end" fill="#5d6678">${fmtY(t)}</text>`);
  }
  svg.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#9aa3b2"/>`);
  svg.push(`<text x="${M.left + pw / 2}" y="${H - 14}" text-anchor="middle" fill="#1d2330">${esc(xLabel)}</text>`);
  svg.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#1d2330">${esc(yLabel)}</text>`);
  return { x: fx, y: fy, svg };
}

const f2 = (v: number) => v.toFixed(2);
const pct = (v: number) => `${Math.round(v * 100)}%`;

export interface HistogramChart {
  values: readonly Labelled[];
  /** What the values are: 'cosine' or 'score'. */
  on: string;
  adopt: number | null;
  reject: number;
  names: { top: string; review: string; bottom: string };
}

/** Overlaid histograms of the values of matches and non-matches, thresholds and the review zone drawn in. */
export function histogramSvg(c: HistogramChart): string {
  const vs = c.values.map((v) => v.value);
  const marks = [c.reject, ...(c.adopt !== null ? [c.adopt] : [])];
  let lo = Math.min(...vs, ...marks);
  let hi = Math.max(...vs, ...marks);
  const pad = (hi - lo) * 0.05 || 0.05;
  lo -= pad;
  hi += pad;
  const bins = 40;
  const h = histogram(c.values, lo, hi, bins);
  const top = Math.max(1, ...h.match, ...h.noMatch);
  const f = frame(`${c.on} by label, with the proposed bands`, c.on, 'examples', [lo, hi], [0, top * 1.1], f2, (v) => String(Math.round(v)));
  const y0 = f.y(0);
  // The review zone, then the bars (non-matches under matches), then the threshold lines on top.
  if (c.adopt !== null && c.adopt > c.reject) {
    f.svg.push(`<rect x="${f.x(c.reject)}" y="${M.top}" width="${f.x(c.adopt) - f.x(c.reject)}" height="${y0 - M.top}" fill="${AMBER}" fill-opacity="0.10"/>`);
    f.svg.push(`<text x="${(f.x(c.reject) + f.x(c.adopt)) / 2}" y="${M.top + 14}" text-anchor="middle" fill="${AMBER}">${esc(c.names.review)}</text>`);
  }
  for (const [counts, colour] of [[h.noMatch, RED], [h.match, GREEN]] as const) {
    counts.forEach((n, i) => {
      if (!n) return;
      const x0 = f.x(h.edges[i]!);
      const x1 = f.x(h.edges[i + 1]!);
      f.svg.push(`<rect x="${x0 + 0.5}" y="${f.y(n)}" width="${Math.max(0.5, x1 - x0 - 1)}" height="${y0 - f.y(n)}" fill="${colour}" fill-opacity="0.55"/>`);
    });
  }
  const line = (v: number, colour: string, label: string, anchor: 'start' | 'end') => {
    f.svg.push(`<line x1="${f.x(v)}" y1="${M.top}" x2="${f.x(v)}" y2="${y0}" stroke="${colour}" stroke-width="2" stroke-dasharray="6 4"/>`);
    f.svg.push(`<text x="${f.x(v) + (anchor === 'start' ? 6 : -6)}" y="${M.top + 30}" text-anchor="${anchor}" fill="${colour}" font-weight="bold">${esc(label)}</text>`);
  };
  line(c.reject, RED, `${c.names.bottom} below ${c.reject}`, 'end');
  if (c.adopt !== null) line(c.adopt, GREEN, `${c.names.top} from ${c.adopt}`, 'start');
  const lx = W - M.right - 150;
  f.svg.push(`<rect x="${lx}" y="${M.top + 44}" width="12" height="12" fill="${GREEN}" fill-opacity="0.55"/><text x="${lx + 18}" y="${M.top + 54}">match (${c.values.filter((v) => v.match).length})</text>`);
  f.svg.push(`<rect x="${lx}" y="${M.top + 62}" width="12" height="12" fill="${RED}" fill-opacity="0.55"/><text x="${lx + 18}" y="${M.top + 72}">no match (${c.values.filter((v) => !v.match).length})</text>`);
  f.svg.push('</svg>');
  return f.svg.join('\n');
}

/** Precision against recall over every threshold; the adopt point and the precision asked for marked. */
export function prSvg(points: readonly Point[], target: number, adopt: Point | undefined, adoptThreshold: number | null, topName: string): string {
  const f = frame('Precision–recall', `recall (matches at or above the threshold)`, 'precision', [0, 1], [0, 1.02], pct, pct);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${f.x(p.recall).toFixed(1)},${f.y(p.precision).toFixed(1)}`).join(' ');
  f.svg.push(`<line x1="${f.x(0)}" y1="${f.y(target)}" x2="${f.x(1)}" y2="${f.y(target)}" stroke="${GREEN}" stroke-dasharray="4 4"/>`);
  f.svg.push(`<text x="${f.x(0) + 6}" y="${f.y(target) - 6}" fill="${GREEN}">precision asked for the ${esc(topName)} band: ${pct(target)}</text>`);
  f.svg.push(`<path d="${path}" fill="none" stroke="#2a5bd7" stroke-width="2"/>`);
  if (adopt) {
    f.svg.push(`<circle cx="${f.x(adopt.recall)}" cy="${f.y(adopt.precision)}" r="5" fill="${GREEN}"/>`);
    // Below the target line, where the curve (at or above it here) leaves room.
    f.svg.push(`<text x="${Math.max(f.x(adopt.recall) - 8, M.left + 330)}" y="${f.y(target) + 22}" text-anchor="end" fill="${GREEN}">${esc(topName)} from ${adoptThreshold}: precision ${pct(adopt.precision)}, recall ${pct(adopt.recall)}</text>`);
  }
  f.svg.push('</svg>');
  return f.svg.join('\n');
}

/** True-positive rate against false-positive rate, the chance diagonal, and the AUC. */
export function rocSvg(points: readonly Point[], negatives: number, auc: number): string {
  const f = frame(`ROC — AUC ${auc.toFixed(3)}`, 'false-positive rate (non-matches at or above)', 'true-positive rate (recall)', [0, 1], [0, 1.02], pct, pct);
  const pts = [{ fpr: 0, tpr: 0 }, ...points.map((p) => ({ fpr: negatives ? p.fp / negatives : 0, tpr: p.recall }))];
  f.svg.push(`<line x1="${f.x(0)}" y1="${f.y(0)}" x2="${f.x(1)}" y2="${f.y(1)}" stroke="#9aa3b2" stroke-dasharray="4 4"/>`);
  f.svg.push(`<path d="${pts.map((p, i) => `${i ? 'L' : 'M'}${f.x(p.fpr).toFixed(1)},${f.y(p.tpr).toFixed(1)}`).join(' ')}" fill="none" stroke="#2a5bd7" stroke-width="2"/>`);
  f.svg.push('</svg>');
  return f.svg.join('\n');
}
