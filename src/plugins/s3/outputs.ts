/**
 * Where the S3 actions put their outputs, and the rule for outputs of superseded results: a copy or sidecar under a
 * per-band prefix (`sorted/{band}/`) belongs to the object's current result. When a newer version of the object (or
 * a person's review) lands it in another band, the output that an earlier result left in the old band is removed —
 * only if it says it was made from this object (metadata `matchd-source: <bucket>/<key>`, written with every copy
 * and sidecar). With `deleteSource` (a move) the copies are the objects themselves and are never removed.
 */
import { TEXTS_SUFFIX } from './item-texts.ts';

/** User metadata on every copy and sidecar: the object it was made from (`<bucket>/<key>`, URI-encoded). */
export const OUTPUT_OF = 'matchd-source';

export interface ResultDoc {
  outcome?: string;
  rule?: string;
  source?: string;
  decidedBy?: string;
  results?: { text: string; cosine: number; score: number; band: string }[];
}

/** What HeadObject says about an object (content headers as CopyObject takes them back). */
export interface Head {
  etag: string;
  size: number;
  metadata: Record<string, string>;
  versionId?: string;
  headers: Record<string, string>;
}

/** {band}, {outcome}, {rule}, {source}, {score} (2 decimals), {cosine} (4 decimals) from the result document. */
export function fill(template: string, doc: ResultDoc): string {
  const decided = doc.results?.find((r) => r.text === doc.decidedBy) ?? doc.results?.[0];
  const vars: Record<string, string> = {
    band: doc.outcome ?? '', outcome: doc.outcome ?? '', rule: doc.rule ?? '', source: doc.source ?? '',
    score: decided ? decided.score.toFixed(2) : '', cosine: decided ? decided.cosine.toFixed(4) : '',
  };
  return template.replace(/\{(band|outcome|rule|source|score|cosine)\}/g, (_, k: string) => vars[k]!);
}

export function joinKey(prefix: string, rest: string): string {
  if (!prefix) return rest;
  return prefix.endsWith('/') ? `${prefix}${rest}` : `${prefix}/${rest}`;
}

const decode = (v: string | undefined) => {
  try {
    return v === undefined ? undefined : decodeURIComponent(v);
  } catch {
    return undefined;
  }
};

/**
 * The outputs made for `source` under `template` in the bands it is no longer in: for each band an output has gone
 * to (`bands`), the same name with that band, when it exists and carries this object's marker; with its texts
 * companion when a copy has one.
 */
export async function outputsInOtherBands(
  template: string, rest: string, doc: ResultDoc, bands: readonly string[], source: string, head: (key: string) => Promise<Head | undefined>,
): Promise<{ key: string; companion?: string }[]> {
  if (!/\{(band|outcome)\}/.test(template)) return [];
  const seen = new Set([joinKey(fill(template, doc), rest)]);
  const out: { key: string; companion?: string }[] = [];
  for (const band of bands) {
    const key = joinKey(fill(template, { ...doc, outcome: band }), rest);
    if (seen.has(key)) continue;
    seen.add(key);
    const h = await head(key);
    if (!h || decode(h.metadata[OUTPUT_OF]) !== source) continue;
    const companion = key.endsWith('.matchd.json') ? undefined : key + TEXTS_SUFFIX;
    out.push({ key, ...(companion && (await head(companion)) ? { companion } : {}) });
  }
  return out;
}
