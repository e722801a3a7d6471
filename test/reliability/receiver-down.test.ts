// A callback receiver down for an hour (connection refused; on the daemon's clock): 20 results wait in the outbox
// through the Svix schedule (now, 5 s, 5 min, 30 min...), none is dead-lettered, and once the receiver is back each
// is delivered exactly once at its next attempt, signed, with its own stable webhook-id.
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { Daemon } from '../../src/core/daemon.ts';
import { waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { CALLBACK_SECRET, type Receiver, fakeClock, freePort, postJob, receiver, red, startDaemon, stopDaemons, webhookWorkspace } from '../fixtures/webhook.ts';

const callbacks = (d: Daemon, ids: string[]) => ids.map((id) => d.journalForTools.actionsOf(Number(id)).find((a) => a.kind === 'callback')!);

describe('reliability: callback receiver down', () => {
  let rx: Receiver | undefined;
  afterEach(async () => {
    await stopDaemons();
    await rx?.close();
  });
  after(cleanupTmpDirs);

  test('down for an hour: every callback retried on schedule, then delivered exactly once', { timeout: 90_000 }, async () => {
    const clock = fakeClock();
    const port = await freePort();
    const { daemon, base } = await startDaemon(webhookWorkspace({ options: { rateLimit: { perSecond: 100, burst: 100 } } }), clock);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await postJob(base, { image: red().toString('base64'), callbackUrl: `http://127.0.0.1:${port}/hook` });
      assert.equal(r.status, 202);
      ids.push(r.json.jobId);
    }
    await waitFor(() => callbacks(daemon, ids).every((a) => a?.attempts === 1), 'the first attempt of each (refused)', 30_000);
    // The schedule while it is down: 5 s, then 5 min, then 30 min (each ±10 %): 1 h in all on the daemon's clock.
    for (const [n, step] of [[2, 6_000], [3, 330_000], [4, 1_980_000]] as const) {
      clock.advance(step);
      daemon.kickActions();
      await waitFor(() => callbacks(daemon, ids).every((a) => a.attempts === n), `attempt ${n} of each`, 30_000);
    }
    clock.advance(3600_000 - 6_000 - 330_000 - 1_980_000); // an hour since the first attempt
    assert.ok(callbacks(daemon, ids).every((a) => a.state === 'pending'), 'nothing dead-lettered while it was down');

    rx = await receiver([{ status: 200 }], port);
    clock.advance(2 * 3600_000 + 720_000); // the next step (2 h ± 10 %)
    daemon.kickActions();
    await waitFor(() => callbacks(daemon, ids).every((a) => a.state === 'done'), 'all delivered after it came back', 30_000);
    assert.equal(rx.received.length, 20, 'each exactly once');
    assert.equal(new Set(rx.received.map((m) => m.headers['webhook-id'])).size, 20);
    for (const m of rx.received) new Webhook(CALLBACK_SECRET).verify(m.body, m.headers as Record<string, string>);
    assert.ok(callbacks(daemon, ids).every((a) => a.attempts === 5), 'delivered at the 5th attempt');
  });
});
