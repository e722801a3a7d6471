// What the daemon logs at the default level while it works: one info line per job (source, file → band, the deciding
// text, its score, ms), a periodic one-line summary while busy, and one warning per rule and outcome that no action
// list matches (the file then stays in the inbox).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { createLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { colourImage, listFiles, waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';

type Line = Record<string, any>;

describe('daemon: activity in the log', () => {
  after(cleanupTmpDirs);

  test('a line per job, a summary while busy, one warning for an outcome without actions', async () => {
    const ws = workspace({
      rules: {
        colours: {
          texts: ['a red product'],
          // adopt and error only, no default: a blue image ends `reject`, which nothing handles.
          actions: { adopt: [{ move: { to: 'sorted/adopt' } }], error: [{ move: { to: 'sorted/error' } }] },
        },
      },
    });
    const lines: Line[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger, summaryEveryMs: 300 });
    try {
      await colourImage(path.join(ws.inbox, 'red.png'), [220, 20, 20]);
      await colourImage(path.join(ws.inbox, 'blue-1.png'), [20, 20, 220]);
      await colourImage(path.join(ws.inbox, 'blue-2.png'), [20, 30, 210]);
      await waitFor(() => listFiles(ws.sorted).length === 1 && lines.filter((l) => l.outcome && l.jobId && 'ms' in l).length === 3, 'three jobs logged');
      await waitFor(() => lines.some((l) => typeof l.jobsPerSec === 'number' && l.jobs > 0), 'a summary line');
    } finally {
      await d.stop();
    }
    const jobLines = lines.filter((l) => l.level === 30 && l.jobId && 'ms' in l);
    const red = jobLines.find((l) => l.file.endsWith('red.png'))!;
    assert.equal(red.source, 'inbox');
    assert.equal(red.outcome, 'adopt');
    assert.equal(red.decidedBy, 'a red product');
    assert.ok(red.score > 0.4 && red.ms >= 0, JSON.stringify(red));
    assert.match(red.msg, /^red\.png → adopt \("a red product": 0\.\d{3}\) in \d+ ms$/);
    assert.deepEqual(jobLines.map((l) => l.outcome).sort(), ['adopt', 'reject', 'reject']);

    const warnings = lines.filter((l) => l.level === 40 && l.outcome === 'reject');
    assert.equal(warnings.length, 1, 'warned once for rule colours / reject, not per job');
    assert.match(warnings[0]!.msg, /^no action for outcome 'reject' in rule 'colours' \(it has actions for adopt, error; no default\)/);
    assert.deepEqual(listFiles(ws.inbox).sort(), ['blue-1.png', 'blue-2.png'], 'the unmatched files stayed: what the warning says');

    const summaries = lines.filter((l) => typeof l.jobsPerSec === 'number');
    assert.ok(summaries.some((s) => s.jobs >= 1 && typeof s.queued === 'number' && /^last \d+ s: \d+ job\(s\) \(\d+\.\d\/s\); \d+ queued$/.test(s.msg)), JSON.stringify(summaries));
    assert.equal(summaries.reduce((n, s) => n + s.jobs, 0), 3, 'every job counted in exactly one summary');
  });
});
