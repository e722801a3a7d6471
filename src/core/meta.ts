/**
 * The limits on an item's `meta`: a JSON object (never an array or a scalar), at most `maxDepth` levels deep (the
 * object itself is level 1) and at most `maxBytes` as UTF-8 JSON. Checked once where meta enters (webhook intake,
 * companion files, S3 metadata, the core's submit); everything inside trusts it.
 */

export interface MetaLimits {
  maxDepth: number;
  maxBytes: number;
}

export const DEFAULT_META_LIMITS: MetaLimits = { maxDepth: 8, maxBytes: 16 * 1024 };

/** Problems with `value` as an item's meta (empty when it is fine). */
export function checkMeta(value: unknown, limits: MetaLimits): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [`meta must be a JSON object; got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`];
  }
  const problems: string[] = [];
  // Iterative, and it stops at the first level past the limit: a hostile, very deep value costs no stack.
  let level: unknown[] = [value];
  let depth = 0;
  while (level.length > 0) {
    depth++;
    if (depth > limits.maxDepth) {
      problems.push(`meta is nested more than ${limits.maxDepth} levels deep`);
      break;
    }
    const next: unknown[] = [];
    for (const v of level) for (const child of Object.values(v as object)) if (child !== null && typeof child === 'object') next.push(child);
    level = next;
  }
  if (problems.length === 0) {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      return [`meta is not JSON: ${(err as Error).message}`];
    }
    const bytes = Buffer.byteLength(json ?? '', 'utf8');
    if (bytes > limits.maxBytes) problems.push(`meta is ${bytes} bytes as JSON; at most ${limits.maxBytes}`);
  }
  return problems;
}
