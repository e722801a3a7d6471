/**
 * @bench-scenario s3-polling
 *
 * What watching a big bucket costs the S3 source, per poll and per key, on a real S3 server (Ceph RGW from Debian,
 * started here as the tests start it: test/fixtures/rgw.ts) holding 10,000 then 100,000 keys that are all already
 * journalled (the steady state: nothing new). `isKnown` is a real journal's (SQLite, one row per key). Side by side
 * in the same run:
 *
 *   full listing     the baseline: every poll lists the whole prefix (ListObjectsV2, 1,000 keys a page) and looks
 *                    each key up in the journal — the default mode, and what a sweep costs in the others
 *   startAfter       key-ordered writers, 4 shards: a poll lists only the keys after each shard's last one
 *   events           bucket notifications: per event, the one key is listed and looked up (the source's handler,
 *                    called directly with 100 records for keys already journalled)
 *
 * CPU is this process's (user + system: matchd's own work, not the server's); wall time includes the server.
 *
 *   node --import tsx bench/s3-polling.ts [--json] [--keys 10000,100000] [--rounds 3]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Journal } from '../src/core/journal.ts';
import { S3ConfigSchema, S3Source } from '../src/plugins/s3/index.ts';
import { fakeContext } from '../test/fixtures/plugin-context.ts';
import { TestRgw } from '../test/fixtures/rgw.ts';
import { type ScenarioResult, describeMachine, emitResult, intList, machineInfo, markdownTable, median, progress, runWhenMain, textTable } from './lib.ts';

const SHARDS = ['s0/', 's1/', 's2/', 's3/'];
const EVENTS = 100;

interface Row {
  keys: number;
  mode: 'full listing' | 'startAfter' | 'events';
  /** Per poll (per batch of EVENTS events for `events`): medians over the rounds. */
  wallMs: number;
  cpuMs: number;
  listCalls: number;
  listed: number;
  /** CPU per key in the bucket (full listing), per event (events); undefined for startAfter. */
  cpuUsPerUnit: number | undefined;
}

async function measure(rounds: number, once: () => Promise<void>, counters: () => { listCalls: number; listed: number }) {
  const walls: number[] = [];
  const cpus: number[] = [];
  const calls: number[] = [];
  const listed: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = counters();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await once();
    walls.push(performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    cpus.push((cpu.user + cpu.system) / 1000);
    const c1 = counters();
    calls.push(c1.listCalls - c0.listCalls);
    listed.push(c1.listed - c0.listed);
  }
  return { wallMs: median(walls), cpuMs: median(cpus), listCalls: median(calls), listed: median(listed) };
}

export async function main(argv = process.argv.slice(2)): Promise<ScenarioResult> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, keys: { type: 'string', default: '10000,100000' }, rounds: { type: 'string', default: '3' } } });
  const sizes = intList('--keys', values.keys!, 1).sort((a, b) => a - b);
  const rounds = Number(values.rounds);
  const work = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'matchd-bench-s3-'));
  progress('s3-polling: starting Ceph RGW');
  const rgw = await TestRgw.start(['bench']);
  const client = rgw.client();
  const journal = new Journal(path.join(work, 'journal.db'));
  const rows: Row[] = [];
  try {
    const etag = 'c4ca4238a0b923820dcc509a6f75849b'; // MD5 of the one-byte body "1"
    let have = 0;
    let lastModified = 0;
    for (const n of sizes) {
      progress(`s3-polling: uploading keys ${have}..${n - 1}`);
      const t0 = performance.now();
      let next = have;
      await Promise.all(Array.from({ length: 64 }, async () => {
        for (let i = next++; i < n; i = next++) {
          const key = `incoming/${SHARDS[i % SHARDS.length]}${String(i).padStart(8, '0')}.png`;
          await client.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: '1' }));
          journal.enqueue({ dedupeKey: `s3:bench/${key}@${etag}`, source: 's3b', rule: 'r', imagePath: key });
        }
      }));
      have = n;
      lastModified = Date.now();
      progress(`s3-polling: ${n} keys in the bucket and the journal (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

      const source = (options: Record<string, unknown>) => {
        const base = fakeContext({ name: 's3b', baseDir: work });
        const ctx = { ...base, isKnown: (k: string) => journal.isKnown(k) };
        // Everything listed was journalled by earlier polls: the watermark is past it.
        ctx.state.set('cursor', lastModified + 1000);
        return new S3Source(ctx, S3ConfigSchema.parse(rgw.sourceOptions({ bucket: 'bench', minAgeMs: 0, include: [], ...options })));
      };
      const counters = (s: S3Source) => () => ({ listCalls: s.stats.listCalls, listed: s.stats.listed });

      const full = source({});
      await full.poll(); // warm: connections, the SDK's first-request set-up
      const f = await measure(rounds, async () => void (await full.poll()), counters(full));
      rows.push({ keys: n, mode: 'full listing', ...f, cpuUsPerUnit: (f.cpuMs * 1000) / n });
      progress(`s3-polling: ${n} keys, full listing: ${f.wallMs.toFixed(0)} ms, ${f.cpuMs.toFixed(0)} ms CPU, ${f.listCalls} LIST calls`);

      const inc = source({ startAfter: true, shards: SHARDS, sweepIntervalMs: 3_600_000 });
      await inc.poll(); // the first poll is a sweep; it sets each shard's startAfter key
      const a = await measure(rounds, async () => void (await inc.poll()), counters(inc));
      rows.push({ keys: n, mode: 'startAfter', ...a, cpuUsPerUnit: undefined });

      const ev = source({ sweepIntervalMs: 3_600_000 });
      const records = Array.from({ length: EVENTS }, (_, k) => {
        const i = Math.floor((k * n) / EVENTS);
        return { bucket: 'bench', key: `incoming/${SHARDS[i % SHARDS.length]}${String(i).padStart(8, '0')}.png`, created: true };
      });
      // The handler the HTTP and SQS feeds call; it resolves once every named key is handled.
      const handle = (ev as unknown as { onEvents(e: typeof records): Promise<void> }).onEvents.bind(ev);
      await handle(records.slice(0, 4));
      const e = await measure(rounds, () => handle(records), counters(ev));
      rows.push({ keys: n, mode: 'events', ...e, cpuUsPerUnit: (e.cpuMs * 1000) / EVENTS });
      for (const s of [full, inc, ev]) await s.stop();
    }
  } finally {
    client.destroy();
    journal.close();
    await rgw.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }

  const header = ['keys', 'mode', 'wall ms / poll', 'CPU ms / poll', 'LIST calls / poll', 'keys listed / poll', 'CPU µs / key or event'];
  const cells = rows.map((r) => [
    r.keys.toLocaleString('en-US'), r.mode === 'events' ? `events (${EVENTS} per batch)` : r.mode, r.wallMs.toFixed(1), r.cpuMs.toFixed(1), String(r.listCalls),
    r.listed.toLocaleString('en-US'), r.cpuUsPerUnit === undefined ? '–' : r.cpuUsPerUnit.toFixed(1),
  ]);
  const big = rows.filter((r) => r.keys === sizes.at(-1));
  const fullBig = big.find((r) => r.mode === 'full listing')!;
  const incBig = big.find((r) => r.mode === 'startAfter')!;
  const evBig = big.find((r) => r.mode === 'events')!;
  const m = machineInfo();
  const notes = [
    `- Machine: ${describeMachine(m)}; Ceph RGW (radosgw, memstore) on loopback, same machine`,
    `- Keys: ${sizes.map((s) => s.toLocaleString('en-US')).join(' then ')} one-byte objects under incoming/s0..s3/, all journalled; medians of ${rounds} polls`,
    `- Reproduce: \`node --import tsx bench/s3-polling.ts\` (\`--keys ${values.keys} --rounds ${values.rounds}\`)`,
    '',
    `At ${fullBig.keys.toLocaleString('en-US')} keys a full listing costs ${fullBig.cpuMs.toFixed(0)} ms CPU and ${fullBig.listCalls} LIST calls per poll ` +
      `(${fullBig.cpuUsPerUnit!.toFixed(1)} µs CPU per key); a startAfter poll with nothing new ${incBig.cpuMs.toFixed(1)} ms and ${incBig.listCalls} calls ` +
      `(${(fullBig.cpuMs / Math.max(incBig.cpuMs, 0.001)).toFixed(0)}× less CPU); an event ${evBig.cpuUsPerUnit!.toFixed(0)} µs CPU and one LIST call, whatever the bucket's size.`,
  ];
  const result: ScenarioResult & { rows: Row[] } = {
    scenario: 's3-polling', date: new Date().toISOString(), machine: m, rows, allTargetsMet: true,
    table: [textTable(header, cells), '', ...notes].join('\n'),
    markdown: [`- Date: ${new Date().toISOString().slice(0, 10)}`, ...notes.slice(0, 3), '', markdownTable(header, cells), '', notes[4]!].join('\n'),
  };
  emitResult(result, values.json!);
  return result;
}

runWhenMain(import.meta.url, 's3-polling', main);
