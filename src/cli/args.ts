/** Small shared CLI helpers: usage errors, coded failures, and where the package lives. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MatchdError } from '../core/errors.ts';

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const defaultModelDir = path.join(packageRoot, 'models', 'demo');

/** A mistake in how the command was called: `matchd: MATCHD_USAGE: ...`, exit code 2. */
export class UsageError extends Error {}

export interface ReportOptions {
  /** The subcommand, for the "how to get its usage" hint. */
  command?: string;
  /** `--debug` (or MATCHD_DEBUG=1): print the stack after the line. */
  debug?: boolean;
}

/** File-system failures Node throws with a path: the user named something that is not there or not readable. */
const PATH_ERRNOS = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENAMETOOLONG']);

function errnoReason(code: string): string {
  return { ENOENT: 'no such file or folder', ENOTDIR: 'a part of the path is not a folder', EISDIR: 'is a folder, not a file', EACCES: 'permission denied', EPERM: 'operation not permitted' }[code] ?? code;
}

/**
 * Print an error the way every command does — one line `matchd: CODE: message` (a problem list may follow) — and
 * return the exit code: 2 for usage errors, 1 otherwise. Stacks only with --debug.
 */
export function report(err: unknown, o: ReportOptions = {}): number {
  const e = err as (Error & { code?: unknown; path?: unknown; syscall?: unknown }) | undefined;
  const write = (line: string) => process.stderr.write(`matchd: ${line}\n`);
  const stack = () => {
    if (o.debug && e?.stack) process.stderr.write(e.stack + '\n');
  };
  if (err instanceof UsageError || String(e?.code).startsWith('ERR_PARSE_ARGS')) {
    write(`MATCHD_USAGE: ${e!.message}`);
    process.stderr.write(`Run 'matchd help${o.command ? ` ${o.command}` : ''}' for usage.\n`);
    stack();
    return 2;
  }
  if (err instanceof MatchdError) {
    write(`${err.code}: ${err.message}`);
    stack();
    return 1;
  }
  if (typeof e?.code === 'string' && PATH_ERRNOS.has(e.code) && typeof e.path === 'string') {
    write(`MATCHD_PATH_INVALID: ${e.path}: ${errnoReason(e.code)} (${e.syscall ?? 'access'})`);
    stack();
    return 1;
  }
  write(`MATCHD_INTERNAL: ${e?.message ?? String(err)} (an unexpected failure: please report it${o.debug ? '' : '; --debug prints the stack'})`);
  stack();
  return 1;
}

/** Parse a positive integer option or throw a UsageError naming it. */
export function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`Expected a positive integer for --${name} but received ${JSON.stringify(value)}`);
  return n;
}
