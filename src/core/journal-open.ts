/**
 * Opening the journal a config names, for the daemon: the SQLite file (under its exclusive lock: one daemon per
 * file) or the PostgreSQL database shared by several nodes (registered there under this node's name), and the node's heartbeat there.
 */
import os from 'node:os';
import path from 'node:path';
import type { Config, Role } from './config.ts';
import type { JournalApi } from './journal-api.ts';
import type { JournalHealth } from './journal-health.ts';
import { JournalLock } from './journal-lock.ts';
import { PgJournal } from './journal-pg/journal.ts';
import { Journal } from './journal.ts';

export interface OpenedJournal {
  journal: JournalApi;
  /** The SQLite file (JournalHealth checks its disk's free space), or undefined on PostgreSQL. */
  file?: string;
  /** The PostgreSQL journal (heartbeats, the node registry), or undefined on SQLite. */
  pg?: PgJournal;
  /** What to call the journal in logs: its file, or its URL without the password. */
  where: string;
  release(): void;
}

export interface OpenJournalOptions {
  baseDir: string;
  role: Role;
  node?: string;
  now: () => number;
  onQueued?: () => void;
  onReconnected?: () => void;
}

/** This node's name on a shared journal: `--node`, else journal.node, else the host name. */
export function nodeName(config: Config, override?: string): string {
  return override ?? config.journal.node ?? os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63);
}

export function openJournal(config: Config, o: OpenJournalOptions): OpenedJournal {
  const c = config.journal;
  if (c.url) {
    const pg = new PgJournal({
      url: c.url, now: o.now, node: { name: nodeName(config, o.node), role: o.role }, leaseMs: c.leaseMs, nodeTimeoutMs: c.nodeTimeoutMs,
      ...(o.onQueued ? { onQueued: o.onQueued } : {}), ...(o.onReconnected ? { onReconnected: o.onReconnected } : {}),
    });
    return { journal: pg, pg, where: pg.where, release: () => {} };
  }
  const file = path.resolve(o.baseDir, c.path);
  const lock = JournalLock.acquire(file);
  try {
    return { journal: new Journal(file, o.now), file, where: file, release: () => lock.release() };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/**
 * Liveness on a shared journal: a node silent for journal.nodeTimeoutMs is dead, and its leases and claims go to the
 * others; so beat every second while the journal answers. `onTakenOver`: another process now uses this node's name.
 */
export function heartbeat(pg: PgJournal, health: Pick<JournalHealth, 'ok' | 'run'>, onTakenOver: () => void): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (!health.ok) return;
    if (health.run('heartbeat', () => pg.heartbeat(), true) === false) onTakenOver();
  }, 1000);
  timer.unref();
  return timer;
}
