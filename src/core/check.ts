/**
 * Edge validation helpers: each check names the option and what it received, and problems are
 * collected so a caller sees every one at once ("Expected a positive integer for maxBatch but received -3").
 */
import type { ErrorCode } from './errors.ts';
import { problemsError } from './problems.ts';

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export class Checker {
  readonly problems: string[] = [];

  /** An integer in [min, max]; `undefined` → `fallback`. */
  int(name: string, value: unknown, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const what = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`;
      this.problems.push(`Expected ${what}${max < Number.MAX_SAFE_INTEGER ? ` <= ${max}` : ''} for ${name} but received ${show(value)}`);
      return fallback;
    }
    return value;
  }

  bool(name: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.problems.push(`Expected true or false for ${name} but received ${show(value)}`);
      return fallback;
    }
    return value;
  }

  oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !allowed.includes(value as T)) {
      this.problems.push(`Expected one of ${allowed.map((a) => `'${a}'`).join(', ')} for ${name} but received ${show(value)}`);
      return fallback;
    }
    return value as T;
  }

  /** Reject keys the caller did not mean (typos are bugs, not defaults). */
  known(name: string, value: object, keys: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.problems.push(`Unknown option ${name}.${key} (known: ${keys.join(', ')})`);
    }
  }

  /** Throw one error listing every problem, if any. */
  done(code: ErrorCode, what: string): void {
    if (this.problems.length === 0) return;
    throw problemsError(code, what, this.problems);
  }
}
