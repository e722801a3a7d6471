// The PostgreSQL journal's driver thread (plain JavaScript: it needs no TypeScript loader in a worker). It owns the
// `pg` pool and the LISTEN connection; the main thread calls it synchronously through bridge.ts. Each reply is
// posted on the RPC port and then signalled through the shared Int32Array, which the main thread waits on.
//   shared[0]  reply ready (the main thread waits while it is 0)
//   shared[1]  1 while the database answers, 0 while it is unreachable (the main thread fails fast on 0)
// When a call fails for want of a connection the thread marks the database down and reconnects with back-off
// (100 ms doubling to 5 s); the first query that works marks it up again.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';

// BIGINT ids and millisecond times fit in a double; the journal's callers expect numbers, as SQLite gives them.
pg.types.setTypeParser(20, (v) => Number(v));

const { url, rpc, events, shared, connectTimeoutMs, statementTimeoutMs, channels, applicationName } = workerData;
const flags = new Int32Array(shared);

const poolConfig = {
  connectionString: url,
  max: 2,
  idleTimeoutMillis: 60_000,
  connectionTimeoutMillis: connectTimeoutMs,
  keepAlive: true,
  statement_timeout: statementTimeoutMs,
  application_name: applicationName,
};
const pool = new pg.Pool(poolConfig);
// An idle client that loses its connection emits here; the next call finds out and reconnects.
pool.on('error', () => {});

/** The client of the open transaction (a transaction's statements must share one connection). */
let txClient = null;
let closed = false;
let reconnecting = false;

function reply(message) {
  rpc.postMessage(message);
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
}

/** SQLSTATE classes and socket errors that mean "no usable connection" rather than a problem with the statement. */
function isConnectionError(err) {
  const code = String(err?.code ?? '');
  if (/^(08|57P0[1-3]|53300|57014)/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(String(err?.message ?? ''));
}

function describe(err) {
  return { message: String(err?.message ?? err), code: err?.code === undefined ? undefined : String(err.code), connection: isConnectionError(err) };
}

function markDown() {
  Atomics.store(flags, 1, 0);
  if (reconnecting || closed) return;
  reconnecting = true;
  void (async () => {
    let delay = 100;
    while (!closed) {
      await new Promise((r) => setTimeout(r, delay));
      try {
        await pool.query('SELECT 1');
        Atomics.store(flags, 1, 1);
        events.postMessage({ type: 'up' });
        break;
      } catch {
        delay = Math.min(delay * 2, 5_000);
      }
    }
    reconnecting = false;
  })();
}

/** Statements with parameters are prepared once per connection, by name (a hash of their text): no parse per call. */
const names = new Map();
function statement(sql, params) {
  if (!params?.length) return sql; // multi-statement scripts (migrations) go by the simple protocol
  let name = names.get(sql);
  if (!name) {
    let h = 0x811c9dc5;
    for (let i = 0; i < sql.length; i++) h = Math.imul(h ^ sql.charCodeAt(i), 0x01000193) >>> 0;
    name = `matchd_${h.toString(36)}_${sql.length}`;
    names.set(sql, name);
  }
  return { name, text: sql, values: params };
}

async function run(m) {
  switch (m.op) {
    case 'query': {
      const q = statement(m.sql, m.params);
      const r = m.tx ? await txClient.query(q, q === m.sql ? m.params : undefined) : await pool.query(q, q === m.sql ? m.params : undefined);
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    }
    case 'begin': {
      txClient = await pool.connect();
      try {
        await txClient.query('BEGIN');
      } catch (err) {
        txClient.release(true);
        txClient = null;
        throw err;
      }
      return { rows: [], rowCount: 0 };
    }
    case 'commit':
    case 'rollback': {
      const c = txClient;
      txClient = null;
      if (!c) return { rows: [], rowCount: 0 };
      try {
        await c.query(m.op === 'commit' ? 'COMMIT' : 'ROLLBACK');
        c.release();
      } catch (err) {
        c.release(true);
        throw err;
      }
      return { rows: [], rowCount: 0 };
    }
    case 'close': {
      closed = true;
      if (txClient) txClient.release(true);
      await listener?.end().catch(() => {});
      await pool.end().catch(() => {});
      return { rows: [], rowCount: 0 };
    }
    default:
      throw new Error(`unknown journal call ${m.op}`);
  }
}

// Calls run one after another, in the order sent (a call the main thread stopped waiting for may still be running).
let chain = Promise.resolve();
rpc.on('message', (m) => {
  chain = chain.then(async () => {
    try {
      const r = await run(m);
      if (m.op === 'query' || m.op === 'begin' || m.op === 'commit') {
        if (Atomics.load(flags, 1) === 0 && !reconnecting) Atomics.store(flags, 1, 1);
      }
      reply({ id: m.id, ok: true, ...r });
    } catch (err) {
      const e = describe(err);
      if (e.connection) {
        if (txClient) {
          txClient.release(true);
          txClient = null;
        }
        markDown();
      }
      reply({ id: m.id, ok: false, error: e });
    }
  });
});

// LISTEN on its own connection: notifications (e.g. "jobs queued") reach the main thread as events, whenever it is
// free; a lost connection is re-established with the same back-off.
let listener = null;
async function listen() {
  let delay = 100;
  while (!closed && channels.length) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs, keepAlive: true, application_name: applicationName });
    try {
      await c.connect();
      for (const ch of channels) await c.query(`LISTEN ${ch}`);
      listener = c;
      delay = 100;
      await new Promise((resolve) => {
        c.on('notification', (n) => events.postMessage({ type: 'notify', channel: n.channel, payload: n.payload }));
        c.on('error', resolve);
        c.on('end', resolve);
      });
      events.postMessage({ type: 'listen-lost' });
    } catch {
      /* retried below */
    }
    listener = null;
    await c.end().catch(() => {});
    if (closed) break;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5_000);
  }
}
void listen();

// The main thread gave up waiting for a reply: treat the connection as lost until a fresh query works.
parentPort.on('message', (m) => {
  if (m?.type === 'timed-out') markDown();
});
parentPort.unref?.();
