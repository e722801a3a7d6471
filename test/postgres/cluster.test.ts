// Three daemons on one PostgreSQL journal — one intake (the folder source), two workers (model, batches, actions) —
// with 1,000 files, and a worker killed with -9 twice while it holds leases. Every job must be scored once, every
// file must end in exactly one output folder with its sidecar, every callback must arrive (receivers dedupe on
// webhook-id): 0 lost, 0 duplicated outputs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { clusterWorkspace, exited, startNode, type Node } from '../fixtures/cluster.ts';
import { colourImage, listFiles, waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { startPostgres, type PgServer } from '../fixtures/postgres.ts';
import { ENDPOINT_SECRET, receiver, type Receiver } from '../fixtures/webhook.ts';

const COLOURS: [number, number, number][] = [[220, 20, 20], [20, 40, 220], [20, 160, 40], [240, 220, 30], [10, 10, 10]];
const TOTAL = 1000;

let server: PgServer;
let rx: Receiver;
const nodes: Node[] = [];

/** Output images (sidecars excluded) by name → the folders holding one. */
function placements(sorted: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const f of listFiles(sorted).filter((f) => !f.endsWith('.json'))) m.set(path.basename(f), [...(m.get(path.basename(f)) ?? []), path.dirname(f)]);
  return m;
}

describe('postgres: one intake and two workers', () => {
  before(async () => {
    server = await startPostgres();
    rx = await receiver([{ status: 200 }]);
  });
  after(async () => {
    for (const n of nodes) if (n.exitCode === null && n.signalCode === null) n.kill('SIGKILL');
    await rx?.close();
    server?.destroy();
    cleanupTmpDirs();
  });

  test('1,000 jobs, a worker killed with -9 twice mid-batch: all scored, each file in one folder, every callback sent', { timeout: 600_000 }, async () => {
    const url = await server.createDatabase('cluster');
    const ws = clusterWorkspace(url, {
      callbacks: { endpoints: { rec: { url: rx.url, secret: ENDPOINT_SECRET } } },
      rules: {
        colours: {
          texts: ['a red product'],
          actions: {
            default: [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }, { callback: { endpoint: 'rec' } }],
            error: [{ move: { to: 'sorted/error' } }, { sidecar: {} }, { callback: { endpoint: 'rec' } }],
          },
        },
      },
    });
    const names: string[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const name = `img-${String(i).padStart(4, '0')}.png`;
      await colourImage(path.join(ws.inbox, name), COLOURS[i % COLOURS.length]!, [16, 12]);
      names.push(name);
    }
    const leasesOf = async (node: string) =>
      (await server.sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM jobs WHERE state = 'running' AND lease_owner LIKE $1`, [`${node}/%`]))[0]!.n;

    const intake = startNode(ws, 'intake', 'intake');
    await intake.ready; // the journal is migrated once, by the first node
    let w1 = startNode(ws, 'worker', 'w1');
    let w2 = startNode(ws, 'worker', 'w2');
    nodes.push(intake, w1, w2);
    await Promise.all([w1.ready, w2.ready]);

    const kills: { node: string; leasesHeld: number; sortedBefore: number }[] = [];
    for (const [at, node] of [[150, 'w1'], [550, 'w2']] as const) {
      await waitFor(() => placements(ws.sorted).size >= at, `${at} files sorted`, 240_000, 20);
      // mid-batch: kill it while it holds leases on jobs it is scoring
      const held = await waitFor(async () => (await leasesOf(node)) || 0, `${node} holding leases`, 60_000, 5);
      const victim = node === 'w1' ? w1 : w2;
      victim.kill('SIGKILL');
      assert.equal((await exited(victim)).signal, 'SIGKILL');
      kills.push({ node, leasesHeld: held, sortedBefore: placements(ws.sorted).size });
      const again = startNode(ws, 'worker', node); // restarted at once: the dead process's name is taken over
      nodes.push(again);
      await again.ready;
      if (node === 'w1') w1 = again;
      else w2 = again;
    }

    await waitFor(() => placements(ws.sorted).size === TOTAL && listFiles(ws.inbox).length === 0, 'every file sorted', 300_000, 100);
    await waitFor(async () => (await server.sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM outbox WHERE state != 'done'`))[0]!.n === 0, 'every action done', 120_000, 100);
    const health = (await (await fetch(`${intake.admin()}/healthz`)).json()) as { role: string; journal: { backend: string; nodes: { name: string; alive: boolean; role: string }[] } };
    for (const n of [intake, w1, w2]) n.kill('SIGTERM');
    for (const n of [intake, w1, w2]) assert.deepEqual(await exited(n), { code: 0, signal: null });

    // every job scored once
    const states = await server.sql<{ state: string; n: number }>(url, `SELECT state, count(*)::int AS n FROM jobs GROUP BY state`);
    assert.deepEqual(states, [{ state: 'done', n: TOTAL }]);
    const retried = (await server.sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM jobs WHERE attempts > 1`))[0]!.n;
    assert.ok(retried >= 1, 'the kills interrupted scoring (some jobs leased twice)');
    // every file in exactly one output folder, with one sidecar, none left behind
    const placed = placements(ws.sorted);
    assert.deepEqual([...placed.keys()].sort(), names, 'none lost');
    for (const [name, folders] of placed) assert.equal(folders.length, 1, `${name} is in ${folders.join(', ')}`);
    const all = listFiles(ws.sorted);
    assert.equal(all.filter((f) => f.endsWith('.json')).length, TOTAL, 'one sidecar per image');
    for (const [name, [folder]] of placed) {
      const side = JSON.parse(fs.readFileSync(path.join(ws.sorted, folder!, `${name}.json`), 'utf8'));
      assert.equal(side.outcome, folder, `${name}: its sidecar says where it is`);
    }
    assert.ok(!fs.readdirSync(ws.sorted, { recursive: true }).some((f) => String(f).endsWith('.tmp')), 'no temp files');
    // every callback sent; a receiver that dedupes on webhook-id sees each job once
    const ids = new Set(rx.received.map((r) => String(r.headers['webhook-id'])));
    assert.equal(ids.size, TOTAL, `distinct webhook-ids (${rx.received.length} deliveries)`);
    const jobIds = new Set(rx.received.map((r) => String(JSON.parse(r.body).data.jobId)));
    const journalled = await server.sql<{ id: number }>(url, 'SELECT id::int AS id FROM jobs ORDER BY id');
    assert.deepEqual([...jobIds].map(Number).sort((a, b) => a - b), journalled.map((r) => r.id), 'one callback for each job');
    // the intake's /healthz names every node with its role
    assert.equal(health.role, 'intake');
    assert.equal(health.journal.backend, 'postgres');
    assert.deepEqual(health.journal.nodes.map((n) => [n.name, n.role, n.alive]), [['intake', 'intake', true], ['w1', 'worker', true], ['w2', 'worker', true]]);
    process.stdout.write(`# kills: ${JSON.stringify(kills)}; jobs leased more than once: ${retried}; callback deliveries: ${rx.received.length}\n`);
  });
});
