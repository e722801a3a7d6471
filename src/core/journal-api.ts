/**
 * The journal interface every backend implements: SQLite (`journal.ts`, the embedded default, one process) and
 * PostgreSQL (`journal-pg/`, several daemons sharing the work). It is the SQLite journal's public surface, derived
 * from its class, so a call added there is part of the interface at once and the PostgreSQL backend fails the
 * type check until it has the same call (with its own SQL). Calls are synchronous on both backends: a source's
 * `submit` returns once the job is durable (see journal-pg/bridge.ts for how PostgreSQL keeps that promise).
 */
import type { Journal } from './journal.ts';

export type { JournalBackend } from './journal-types.ts';

/** What the daemon, the action runner, retention and the web page use of a journal. */
export type JournalApi = Omit<Journal, 'sql' | 'file'>;

/** One daemon process as the shared journal knows it (PostgreSQL only; /healthz lists them). */
export interface NodeView {
  name: string;
  role: string;
  host: string;
  pid: number;
  alive: boolean;
  startedAt: number;
  seenAt: number;
  /** Jobs this node holds a lease on now, and actions it has claimed. */
  leases: number;
  claims: number;
}
