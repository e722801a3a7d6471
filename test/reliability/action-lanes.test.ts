// A callback receiver that accepts connections and never answers must not hold up anyone else's actions: with
// every slot of the callback lane hanging on it, a file dropped into a folder source is still moved and gets its
// sidecar — before a single callback has finished or timed out. (Before lanes, the runner waited for the whole
// batch, so the sidecar waited for the callbacks' timeout.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { colourImage, waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { ENDPOINT_SECRET, postJob, red, startDaemon, stopDaemons, webhookOptions } from '../fixtures/webhook.ts';

describe('reliability: action lanes', () => {
  let hanging: http.Server | undefined;
  afterEach(async () => {
    await stopDaemons();
    hanging?.closeAllConnections();
    await new Promise<void>((r) => (hanging ? hanging.close(() => r()) : r()));
  });
  after(cleanupTmpDirs);

  test('callbacks hanging on a dead receiver do not delay another job\'s move and sidecar', { timeout: 90_000 }, async () => {
    let requests = 0;
    let open = 0;
    hanging = http.createServer(() => void requests++); // reads the request, never answers
    hanging.on('connection', (s) => {
      open++;
      s.on('close', () => open--);
    });
    await new Promise<void>((r) => hanging!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hook`;

    const ws = workspace({
      shutdown: { timeoutMs: 500 },
      callbacks: { timeoutMs: 45_000, endpoints: { stuck: { url, secret: ENDPOINT_SECRET } } },
      rules: {
        hooks: { texts: ['a red product'], actions: { default: [{ callback: { endpoint: 'stuck' } }] } },
        colours: { texts: ['a red product'], actions: { default: [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }] } },
      },
      sources: [
        { type: 'webhook', name: 'api', rule: 'hooks', options: webhookOptions() },
        { type: 'folder', name: 'inbox', rule: 'colours', options: { paths: ['inbox'], stabilityMs: 200, minAgeMs: 100 } },
      ],
    });
    const { daemon, base } = await startDaemon(ws);
    for (let i = 0; i < 8; i++) assert.equal((await postJob(base, { image: red().toString('base64') })).status, 202);
    await waitFor(() => requests >= 1, 'a callback to hang on the receiver', 20_000);

    const droppedAt = Date.now();
    await colourImage(path.join(ws.inbox, 'other-job.png'), [220, 20, 20]);
    const sidecar = path.join(ws.sorted, 'adopt', 'other-job.png.json');
    await waitFor(() => fs.existsSync(sidecar), 'the other job\'s sidecar', 30_000);
    const delay = Date.now() - droppedAt;

    const callbacks = [...Array(8).keys()].flatMap((i) => daemon.journalForTools.actionsOf(i + 1)).filter((a) => a.kind === 'callback');
    assert.ok(callbacks.every((a) => a.state === 'pending' && a.attempts === 0), 'no callback has finished or timed out yet');
    assert.equal(open, requests, 'every callback request is still hanging on its connection');
    assert.equal(requests, 4, 'the callback lane runs 4 at once; the other callbacks wait in it');
    console.log(`# sidecar written ${delay} ms after the file was dropped, with ${requests} callbacks hanging`);
  });
});
