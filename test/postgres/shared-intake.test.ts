// Nodes sharing a PostgreSQL journal, in this process: two intake nodes polling the same S3 bucket (the tests' real
// Ceph RGW) score each object once, the S3 actions running on a worker that never polls; and the database restarted
// mid-run: every node degrades (/healthz 503, MATCHD_JOURNAL_UNREACHABLE), reconnects by itself, nothing is lost.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Daemon } from '../../src/core/daemon.ts';
import { clusterWorkspace, startInProcess } from '../fixtures/cluster.ts';
import { colourImage, listFiles, waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { startPostgres, type PgServer } from '../fixtures/postgres.ts';
import { TestRgw } from '../fixtures/rgw.ts';
import { TestBucket, colourBytes } from '../fixtures/s3.ts';

let server: PgServer;
const running: Daemon[] = [];
let rgw: TestRgw | undefined;

const count = async (url: string, sql: string) => (await server.sql<{ n: number }>(url, sql))[0]!.n;

describe('postgres: nodes sharing intake, and a database restart', () => {
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    for (const d of running) await d.stop().catch(() => {});
    await rgw?.stop();
    server?.destroy();
    cleanupTmpDirs();
  });

  test('two intake nodes polling one bucket: each object journalled and scored once; tags and copies made by the worker', { timeout: 180_000 }, async () => {
    rgw = await TestRgw.start([]);
    const bucket = await TestBucket.create(rgw);
    const url = await server.createDatabase('s3two');
    const ws = clusterWorkspace(url, {
      sources: [{ type: 's3', name: 's3in', rule: 'colours', options: bucket.options({ pollIntervalMs: 50 }) }],
      rules: { colours: { texts: ['a red product'], actions: { default: [{ tag: {} }, { s3copy: { prefix: 'sorted/{band}/' } }], error: [{ tag: {} }] } } },
    });
    const worker = await startInProcess(ws, 'worker', 'w1');
    running.push(worker);
    const i1 = await startInProcess(ws, 'intake', 'i1');
    const i2 = await startInProcess(ws, 'intake', 'i2');
    running.push(i1, i2);
    const N = 30;
    const red = await colourBytes([220, 20, 20]);
    for (let i = 0; i < N; i++) await bucket.put(`incoming/o-${String(i).padStart(2, '0')}.png`, red);
    await waitFor(async () => (await count(url, `SELECT count(*)::int AS n FROM jobs WHERE state = 'done'`)) === N
      && (await count(url, `SELECT count(*)::int AS n FROM outbox WHERE state != 'done'`)) === 0, 'every object scored and acted on', 120_000, 100);
    // a few more polls by both: nothing new
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await count(url, 'SELECT count(*)::int AS n FROM jobs'), N, 'each object journalled once');
    assert.equal(await count(url, `SELECT count(*)::int AS n FROM outbox WHERE kind = 'tag'`), N, 'one tag action per object');
    for (let i = 0; i < N; i++) {
      const name = `o-${String(i).padStart(2, '0')}.png`;
      assert.equal((await bucket.tags(`incoming/${name}`))['matchd-band'], 'adopt', name);
      assert.ok(await bucket.exists(`sorted/adopt/${name}`), `sorted/adopt/${name}`);
    }
    // both intake nodes polled (and raced): each submitted some; their spools are empty (scored copies deleted by
    // the worker, the loser's duplicate download by the core)
    const bySource = await server.sql<{ n: number }>(url, `SELECT count(DISTINCT image_path)::int AS n FROM jobs`);
    assert.equal(bySource[0]!.n, N);
    const spool = path.join(ws.root, 'spool');
    await waitFor(() => listFiles(spool).length === 0, 'the spools empty', 10_000);
    for (const node of ['i1', 'i2']) assert.ok(fs.existsSync(path.join(spool, node, 's3in')), `${node} spools under its own name`);
    assert.equal((worker.health().sources as Record<string, unknown>).s3in !== undefined, true, 'the worker has the source (for its actions)');
    // the two nodes' submits: N accepted between them; a duplicate is an object both downloaded in the same poll
    const submits = async (d: Daemon, result: string) =>
      (await d.metrics.submits.get()).values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
    assert.equal((await submits(i1, 'accepted')) + (await submits(i2, 'accepted')), N);
    process.stdout.write(`# accepted i1=${await submits(i1, 'accepted')} i2=${await submits(i2, 'accepted')}; duplicates ${(await submits(i1, 'duplicate')) + (await submits(i2, 'duplicate'))}\n`);
    for (const d of [i1, i2, worker]) await d.stop();
  });

  test('the database restarted mid-run: nodes degrade, reconnect, and every file is sorted once', { timeout: 180_000 }, async () => {
    const url = await server.createDatabase('restart');
    const ws = clusterWorkspace(url);
    const intake = await startInProcess(ws, 'intake', 'in');
    const worker = await startInProcess(ws, 'worker', 'wk');
    running.push(intake, worker);
    const colours: [number, number, number][] = [[220, 20, 20], [20, 40, 220], [20, 160, 40]];
    const names: string[] = [];
    for (let i = 0; i < 60; i++) {
      names.push(`a-${i}.png`);
      await colourImage(path.join(ws.inbox, `a-${i}.png`), colours[i % 3]!, [16, 12]);
    }
    await waitFor(() => listFiles(ws.sorted).length >= 20, 'some files sorted', 60_000, 10);
    server.stop('fast');
    // more files arrive while the database is down
    for (let i = 0; i < 30; i++) {
      names.push(`b-${i}.png`);
      await colourImage(path.join(ws.inbox, `b-${i}.png`), colours[i % 3]!, [16, 12]);
    }
    for (const d of [intake, worker]) {
      const h = await waitFor(() => {
        const v = d.health();
        return v.status === 'down' && (v.journal as { code?: string }).code === 'MATCHD_JOURNAL_UNREACHABLE' ? v : undefined;
      }, 'the node degraded', 15_000, 20);
      assert.equal(h.status, 'down');
    }
    await new Promise((r) => setTimeout(r, 1500));
    server.start();
    for (const d of [intake, worker]) await waitFor(() => d.health().status === 'ok', 'the node back', 30_000, 50);
    await waitFor(() => listFiles(ws.sorted).filter((f) => !f.endsWith('.json')).length === names.length && listFiles(ws.inbox).length === 0, 'every file sorted', 120_000, 50);
    await waitFor(async () => (await count(url, `SELECT count(*)::int AS n FROM outbox WHERE state != 'done'`)) === 0, 'every action done', 60_000, 50);
    const placed = listFiles(ws.sorted).filter((f) => !f.endsWith('.json')).map((f) => path.basename(f)).sort();
    assert.deepEqual(placed, [...names].sort(), 'each file once, none lost');
    assert.equal(listFiles(ws.sorted).filter((f) => f.endsWith('.json')).length, names.length);
    assert.equal(await count(url, 'SELECT count(*)::int AS n FROM jobs'), names.length);
    for (const d of [intake, worker]) await d.stop();
  });
});
