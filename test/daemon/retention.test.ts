// journal.retainDays is applied on a schedule: once finished jobs are older than that (on the daemon's clock), they
// and their dedupe keys are pruned while the daemon runs; a job with an action still pending is kept.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { silentLogger } from '../../src/core/log.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { colourImage, waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { fakeClock } from '../fixtures/webhook.ts';

describe('daemon: retention', () => {
  after(cleanupTmpDirs);

  test('finished jobs past retainDays are pruned on schedule; one with a pending action is kept', { timeout: 60_000 }, async () => {
    const ws = workspace({
      rules: {
        colours: {
          texts: ['a red product'],
          actions: { default: [{ move: { to: 'sorted/{band}' } }], error: [{ move: { to: 'blocked/errors' } }] },
        },
      },
    });
    fs.writeFileSync(path.join(ws.root, 'blocked'), 'a file where a folder should be'); // the error move keeps failing
    const clock = fakeClock();
    const daemon = await Daemon.start(loadConfig(ws.configFile), {
      baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger(), now: clock.now, pruneEveryMs: 200,
    });
    try {
      const j = daemon.journalForTools;
      for (let i = 0; i < 3; i++) await colourImage(path.join(ws.inbox, `r-${i}.png`), [220, 20, 20]);
      fs.writeFileSync(path.join(ws.inbox, 'broken.png'), 'not an image');
      await waitFor(() => j.counts().done === 3 && j.counts().failed === 1 && j.pendingActionCount() === 1, '3 done, 1 failed with its move pending');
      const doneKeys = [1, 2, 3, 4].map((id) => j.get(id)!).filter((job) => job.state === 'done').map((job) => job.dedupeKey);
      assert.equal(doneKeys.length, 3);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(j.counts().done, 3, 'nothing is pruned before retainDays');

      clock.advance(31 * 86_400_000);
      await waitFor(() => j.counts().done === 0, 'the finished jobs pruned', 10_000);
      const c = j.counts();
      assert.equal(c.failed, 1, 'the job whose action is pending is kept');
      assert.equal(c.outboxPending, 1);
      for (const k of doneKeys) assert.equal(j.isKnown(k), false, `${k}: its dedupe key is forgotten too`);
    } finally {
      await daemon.stop();
    }
  });
});
