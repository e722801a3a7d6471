/**
 * One worker node for bench/cluster-scale.ts (not a scenario): `matchd run --role worker` with the engine stand-in
 * (fixed latency per batch). On SIGTERM it stops and prints the journal round trips it made as one JSON line.
 *
 *   node --import tsx bench/cluster-node.ts CONFIG NODE LATENCY_MS
 */
import path from 'node:path';
import { loadConfig } from '../src/core/config.ts';
import { Daemon } from '../src/core/daemon.ts';
import type { PgJournal } from '../src/core/journal-pg/journal.ts';
import { silentLogger } from '../src/core/log.ts';
import { builtinRegistry } from '../src/plugins/index.ts';
import { useStandInEngine } from './stand-in-engine.ts';

const [configFile, node, latency] = process.argv.slice(2) as [string, string, string];
useStandInEngine(Number(latency));
const daemon = await Daemon.start(loadConfig(configFile), { baseDir: path.dirname(configFile), registry: builtinRegistry(), logger: silentLogger(), role: 'worker', node });
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => {
  const calls = (daemon.journalApi as PgJournal).bridge.calls;
  void daemon.stop().then(() => {
    process.stdout.write(`${JSON.stringify({ calls })}\n`);
    process.exit(0);
  });
});
