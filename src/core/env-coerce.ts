/**
 * `${VAR}` fills strings, but a schema may expect a number or a boolean there (`queueSize: ${QSIZE:-500}`). After
 * interpolation, values that came from the environment are coerced exactly where validation says a number or a
 * boolean was expected and a string was found — nowhere else, so a numeric-looking secret stays a string.
 */
import type { ZodType } from 'zod';

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** `a.b.0.c` for a path. */
export const pathKey = (path: readonly PropertyKey[]): string => path.map(String).join('.');

function coerce(value: string, expected: string): unknown {
  const v = value.trim();
  if ((expected === 'number' || expected === 'int' || expected === 'bigint') && NUMBER.test(v)) return Number(v);
  if (expected === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  return undefined;
}

/**
 * Parse `value` with `schema`, coercing environment-filled strings (`filled`: path keys relative to `value`) where a
 * number or boolean is expected. Returns zod's result for the coerced value (problems stay for everything else).
 */
export function parseWithEnv<T>(schema: ZodType<T>, value: unknown, filled: ReadonlySet<string>): ReturnType<ZodType<T>['safeParse']> {
  let current = value;
  for (let round = 0; ; round++) {
    const r = schema.safeParse(current);
    if (r.success || round >= 8 || filled.size === 0) return r;
    let changed = false;
    for (const issue of r.error.issues) {
      const expected = (issue as { expected?: string }).expected;
      if (issue.code !== 'invalid_type' || !expected || !filled.has(pathKey(issue.path))) continue;
      if (!changed) current = structuredClone(current);
      const parent = issue.path.slice(0, -1).reduce<any>((o, k) => o?.[k as never], current);
      const key = issue.path[issue.path.length - 1];
      if (parent == null || key === undefined || typeof parent[key] !== 'string') continue;
      const next = coerce(parent[key], expected);
      if (next === undefined) continue;
      parent[key] = next;
      changed = true;
    }
    if (!changed) return r;
  }
}
