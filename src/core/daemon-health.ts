/** What /healthz says of a daemon: its status, the journal's state and counts, the model, the queue, the sources. */
import type { Health } from './admin.ts';
import type { Role } from './config.ts';
import type { JournalApi } from './journal-api.ts';
import type { JournalHealth } from './journal-health.ts';
import type { PgJournal } from './journal-pg/journal.ts';
import type { Matcher } from './matcher.ts';
import type { PluginHost } from './plugin-host.ts';

export interface HealthParts {
  role: Role;
  stopping: boolean;
  journal: JournalApi | undefined;
  journalHealth: JournalHealth | undefined;
  /** On a shared journal: the database, and this node's name there. */
  pg?: { journal: PgJournal; node: string } | undefined;
  matcher: Matcher | undefined;
  sources: PluginHost;
}

export function daemonHealth(p: HealthParts): Health {
  const jh = p.journalHealth?.view() ?? { ok: false };
  const journalOk = jh.ok && (p.journal?.ping() ?? false);
  const run = <T>(what: string, f: () => T) => (journalOk ? p.journalHealth!.run(what, f, undefined) : undefined);
  const counts = run('count for /healthz', () => p.journal!.counts());
  const status = !journalOk || p.stopping ? 'down' : p.sources.degraded ? 'degraded' : 'ok';
  const pg = p.pg;
  // On a shared journal: every node with its role, liveness and the leases and claims it holds, from the database.
  const nodes = pg ? run('list nodes for /healthz', () => pg.journal.nodes()) : undefined;
  const m = p.matcher;
  return {
    status,
    role: p.role,
    ...(pg ? { node: pg.node } : {}),
    model: m ? { name: m.manifest.name, version: m.manifest.version, provider: m.provider } : null,
    journal: { ...jh, ok: journalOk, backend: p.journal?.backend ?? null, ...(pg ? { where: pg.journal.where } : {}), ...counts, ...(nodes ? { nodes } : {}) },
    queue: m ? { batching: m.pipeline.stats.queued, batchesRunning: m.pipeline.stats.running } : { batching: 0, batchesRunning: 0 },
    sources: p.sources.health(),
  };
}
