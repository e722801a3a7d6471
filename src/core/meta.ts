/**
 * Limits for a job's `meta` (free-form JSON a source keeps with the job, copied into its result and sidecar). Every
 * source checks what a client sends at its edge with `metaProblem` (400 / an error item), and the daemon refuses a
 * submit that breaks them: a deeply nested value overflows the stack in JSON.stringify, and one that only just fits
 * at intake may no longer fit once wrapped into the result document — a job that could never be recorded.
 */
export const META_LIMITS = {
  /** Nesting levels of objects/arrays (the top-level object is level 1). */
  maxDepth: 16,
  /** Size as JSON, UTF-8. */
  maxBytes: 16 * 1024,
} as const;

/** The daemon's backstop for a whole job's meta: room for a source to wrap a client's meta in a few fields of its own. */
export const JOB_META_LIMITS = { maxDepth: META_LIMITS.maxDepth + 4, maxBytes: META_LIMITS.maxBytes + 4 * 1024 } as const;

/** Why `meta` breaks the limits (naming where), or null when it is fine. Iterative: safe on any depth, and on cycles. */
export function metaProblem(meta: unknown, limits: { maxDepth: number; maxBytes: number } = META_LIMITS, name = 'meta'): string | null {
  if (meta === undefined) return null;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return `${name} must be a JSON object`;
  const stack: [unknown, number, string][] = [[meta, 1, name]];
  while (stack.length) {
    const [v, depth, at] = stack.pop()!;
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') return `${at} is a ${typeof v}; meta holds JSON values only`;
      continue;
    }
    if (depth > limits.maxDepth) return `${name} is nested more than ${limits.maxDepth} levels deep (at ${at.slice(0, 120)}${at.length > 120 ? '…' : ''})`;
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as Record<string, unknown>);
    for (const [k, x] of entries) stack.push([x, depth + 1, Array.isArray(v) ? `${at}[${k}]` : `${at}.${k}`]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(meta), 'utf8');
  if (bytes > limits.maxBytes) return `${name} is ${bytes} bytes as JSON, over the ${limits.maxBytes}-byte limit`;
  return null;
}
