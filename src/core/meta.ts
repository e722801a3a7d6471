/**
 * The limits on an item's `meta` (free-form JSON a sender keeps with a job, echoed in its result, sidecar and
 * callbacks): a JSON object (never an array or a scalar), at most `maxDepth` levels deep (the object itself is level
 * 1) and at most `maxBytes` as UTF-8 JSON. Checked once where meta enters (webhook intake, companion files, S3
 * metadata, the core's submit for every source); everything inside trusts it. Without the depth limit a deeply nested
 * value overflows the stack in JSON.stringify — a job that could never be recorded.
 */

export interface MetaLimits {
  maxDepth: number;
  maxBytes: number;
}

export const DEFAULT_META_LIMITS: MetaLimits = { maxDepth: 16, maxBytes: 16 * 1024 };

/**
 * Problems with `value` as an item's meta, naming where (empty when it is fine). Iterative and stopping at the first
 * level past the limit: safe on any depth and on cycles.
 */
export function checkMeta(value: unknown, limits: MetaLimits, name = 'meta'): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [`${name} must be a JSON object; got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`];
  }
  const stack: [unknown, number, string][] = [[value, 1, name]];
  while (stack.length) {
    const [v, depth, at] = stack.pop()!;
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') return [`${at} is a ${typeof v}; meta holds JSON values only`];
      continue;
    }
    if (depth > limits.maxDepth) return [`${name} is nested more than ${limits.maxDepth} levels deep (at ${at.slice(0, 120)}${at.length > 120 ? '…' : ''})`];
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as Record<string, unknown>);
    for (const [k, x] of entries) stack.push([x, depth + 1, Array.isArray(v) ? `${at}[${k}]` : `${at}.${k}`]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  return bytes > limits.maxBytes ? [`${name} is ${bytes} bytes as JSON, over the ${limits.maxBytes}-byte limit`] : [];
}
