/** Small helpers shared by the PostgreSQL journal's modules. */
import type { PgBridge, QueryResult } from './bridge.ts';

/** `?` placeholders (the SQLite journal's style) to PostgreSQL's `$1, $2, ...`; our statements hold no literal `?`. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** A connection string as it may be shown in logs and errors: the password left out. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'journal.url (not a URL)';
  }
}

/** Statements of one transaction, on the connection the bridge pinned for it. */
export type TxQuery = <R = Record<string, unknown>>(sql: string, params?: unknown[]) => QueryResult<R>;

/** Run `fn` in a transaction: committed when it returns, rolled back when it throws. */
export function inTransaction<T>(b: PgBridge, fn: (q: TxQuery) => T): T {
  b.begin();
  let result: T;
  try {
    result = fn((sql, params) => b.query(sql, params, true));
  } catch (err) {
    try {
      b.rollback();
    } catch {
      /* the connection is gone; the server rolls back by itself */
    }
    throw err;
  }
  b.commit();
  return result;
}

/** Database time (ms), for comparisons against leases, claims and heartbeats. */
export const NOW = 'matchd_now_ms()';

/** SQL: the node holding `owner` is alive (heartbeat within `$deadMs`, not stopped). `deadParam` is its placeholder. */
export function aliveOwner(ownerExpr: string, deadParam: string): string {
  return `EXISTS (SELECT 1 FROM nodes n WHERE n.owner = ${ownerExpr} AND n.stopped_at IS NULL AND n.seen_at >= ${NOW} - ${deadParam})`;
}
