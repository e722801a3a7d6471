/** Small shared CLI helpers: usage errors, coded failures, and where the package lives. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MatchdError } from '../core/errors.ts';

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const defaultModelDir = path.join(packageRoot, 'models', 'demo');

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** Print an error the way every command does: `matchd: CODE: message`. Returns the exit code. */
export function report(err: unknown): number {
  if (err instanceof UsageError || String((err as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`matchd: ${(err as Error).message}\nRun 'matchd help' for usage.\n`);
    return 2;
  }
  if (err instanceof MatchdError) {
    process.stderr.write(`matchd: ${err.code}: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`matchd: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

/** Parse a positive integer option or throw a UsageError naming it. */
export function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`Expected a positive integer for --${name} but received ${JSON.stringify(value)}`);
  return n;
}
