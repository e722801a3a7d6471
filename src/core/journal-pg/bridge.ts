/**
 * Synchronous calls into PostgreSQL. The journal's contract is synchronous on every backend — a source's `submit`
 * returns once the job is durable, the runner records an action before it moves on — and SQLite keeps it by doing
 * its durable writes (fsync included) on the main thread. The PostgreSQL backend keeps the same contract: the `pg`
 * pool lives in a driver thread (thread.mjs), and each call posts its statement there and waits on a shared word
 * (Atomics.wait) for the reply, so the caller sees a plain return value or a thrown error, exactly as with SQLite.
 * A call blocks the event loop for one round trip, as an SQLite commit blocks it for one fsync; what the daemon
 * does per job is a handful of such calls (BENCHMARKS.md counts them).
 *
 * Faults: while the database is unreachable the thread says so in a shared flag and every call fails at once with
 * a coded error (fault `unreachable`, see journal-health.ts) instead of waiting for a timeout each time; the
 * thread reconnects with back-off by itself. A call that gets no reply within `callTimeoutMs` fails the same way.
 */
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { JournalFault } from '../journal-health.ts';

export interface BridgeOptions {
  url: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** The longest the main thread waits for one reply. */
  callTimeoutMs: number;
  /** LISTEN channels whose notifications come back through `onEvent`. */
  channels: string[];
  onEvent: (e: { type: string; channel?: string; payload?: string }) => void;
  applicationName: string;
}

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** A failed journal call, with the fault it means for JournalHealth (undefined: a problem with the statement itself). */
export class PgCallError extends Error {
  readonly code: string | undefined;
  readonly fault: JournalFault | undefined;
  constructor(message: string, code: string | undefined, fault: JournalFault | undefined) {
    super(message);
    this.name = 'PgCallError';
    this.code = code;
    this.fault = fault;
  }
}

/** The fault a PostgreSQL error means: connection class → unreachable, disk full → full, data corruption → corrupt. */
function faultOf(code: string | undefined, connection: boolean): JournalFault | undefined {
  if (connection) return 'unreachable';
  if (code === '53100') return 'full';
  if (code === 'XX001' || code === 'XX002') return 'corrupt';
  if (code?.startsWith('58') || code === '53200') return 'io';
  return undefined;
}

type Reply = { id: number; ok: true; rows: unknown[]; rowCount: number } | { id: number; ok: false; error: { message: string; code?: string; connection: boolean } };

export class PgBridge {
  private readonly worker: Worker;
  private readonly rpc: MessagePort;
  private readonly events: MessagePort;
  private readonly flags: Int32Array;
  private nextId = 1;
  private lastError = '';
  private closed = false;
  /** Round trips made (BENCHMARKS.md counts them per job). */
  calls = 0;

  constructor(private readonly opts: BridgeOptions) {
    const shared = new SharedArrayBuffer(8);
    this.flags = new Int32Array(shared);
    Atomics.store(this.flags, 1, 1); // the first call finds out whether the database answers
    const rpc = new MessageChannel();
    const events = new MessageChannel();
    this.rpc = rpc.port1;
    this.events = events.port1;
    this.worker = new Worker(new URL('./thread.mjs', import.meta.url), {
      workerData: {
        url: opts.url, rpc: rpc.port2, events: events.port2, shared, channels: opts.channels, applicationName: opts.applicationName,
        connectTimeoutMs: opts.connectTimeoutMs, statementTimeoutMs: opts.statementTimeoutMs,
      },
      transferList: [rpc.port2, events.port2],
      // Its own loader-free environment: thread.mjs is plain JavaScript.
      execArgv: [],
    });
    this.worker.unref();
    this.worker.on('error', (err) => {
      this.lastError = `the journal's driver thread failed: ${err.message}`;
      Atomics.store(this.flags, 1, 0);
    });
    this.events.on('message', (e: { type: string; channel?: string; payload?: string }) => opts.onEvent(e));
    this.events.unref();
  }

  /** True while the database answers (false from a failed call until the thread has reconnected). */
  get up(): boolean {
    return !this.closed && Atomics.load(this.flags, 1) === 1;
  }

  query<R = Record<string, unknown>>(sql: string, params: unknown[] = [], tx = false): QueryResult<R> {
    return this.call({ op: 'query', sql, params, tx }) as QueryResult<R>;
  }

  begin(): void {
    this.call({ op: 'begin' });
  }

  commit(): void {
    this.call({ op: 'commit' });
  }

  rollback(): void {
    this.call({ op: 'rollback' });
  }

  close(): void {
    if (this.closed) return;
    try {
      this.call({ op: 'close' }, true);
    } catch {
      /* the thread is going anyway */
    }
    this.closed = true;
    void this.worker.terminate();
    this.rpc.close();
    this.events.close();
  }

  private call(message: Record<string, unknown>, closing = false): QueryResult<unknown> {
    if (this.closed) throw new PgCallError('the journal is closed', undefined, 'unreachable');
    if (!closing && Atomics.load(this.flags, 1) === 0) {
      throw new PgCallError(`PostgreSQL is unreachable (${this.lastError || 'reconnecting'})`, 'MATCHD_PG_DOWN', 'unreachable');
    }
    const id = this.nextId++;
    this.calls++;
    Atomics.store(this.flags, 0, 0);
    this.rpc.postMessage({ ...message, id });
    const deadline = Date.now() + this.opts.callTimeoutMs;
    for (;;) {
      // Read before waiting: a reply posted before the word was reset is already on the port.
      Atomics.store(this.flags, 0, 0);
      const got = receiveMessageOnPort(this.rpc);
      if (got) {
        const r = got.message as Reply;
        if (r.id !== id) continue; // the late reply of a call that timed out
        if (r.ok) return { rows: r.rows, rowCount: r.rowCount };
        const fault = faultOf(r.error.code, r.error.connection);
        if (fault === 'unreachable') this.lastError = r.error.message;
        throw new PgCallError(r.error.message, r.error.code, fault);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.lastError = `no answer within ${this.opts.callTimeoutMs} ms`;
        Atomics.store(this.flags, 1, 0);
        this.worker.postMessage({ type: 'timed-out' });
        throw new PgCallError(`PostgreSQL did not answer within ${this.opts.callTimeoutMs} ms`, 'ETIMEDOUT', 'unreachable');
      }
      Atomics.wait(this.flags, 0, 0, left);
    }
  }
}
