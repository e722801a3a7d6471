// Replay protection for signed intake: the same signed request sent again (within the signature's 5-minute
// tolerance) — once, ten times at once, with an extra unsigned Idempotency-Key, or after a restart — answers with the
// original job (`duplicate: true`, `Idempotent-Replayed`), never a second job. The webhook-id lives in the journal
// as the job's dedupe key. A new message with another webhook-id is a new job; a stale one is 401.
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { SIGNING_SECRET, red, startDaemon, stopDaemons, webhookWorkspace } from '../../fixtures/webhook.ts';

function signedHeaders(id: string, body: string, at = new Date()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(SIGNING_SECRET).sign(id, at, body),
  };
}

async function post(base: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers, body });
  return { status: res.status, json: (await res.json()) as any, replayed: res.headers.get('idempotent-replayed') };
}

describe('webhook intake: replayed signed requests', () => {
  afterEach(stopDaemons);
  after(cleanupTmpDirs);

  test('a replay — once, ten at once, with a new Idempotency-Key, after a restart — answers with the original job', async () => {
    const ws = webhookWorkspace();
    let { daemon, base } = await startDaemon(ws);
    const body = JSON.stringify({ image: red().toString('base64') });
    const headers = signedHeaders('msg_order_4711', body);

    const first = await post(base, body, headers);
    assert.equal(first.status, 202, JSON.stringify(first.json));
    const id = first.json.jobId;

    const again = await post(base, body, headers);
    assert.ok([200, 202].includes(again.status));
    assert.equal(again.json.jobId, id);
    assert.equal(again.json.duplicate, true);
    assert.equal(again.replayed, 'true');

    const burst = await Promise.all(Array.from({ length: 10 }, () => post(base, body, headers)));
    assert.deepEqual([...new Set(burst.map((r) => r.json.jobId))], [id], 'ten concurrent replays: the same job');

    const withKey = await post(base, body, { ...headers, 'idempotency-key': 'attacker-chosen-key' });
    assert.equal(withKey.json.jobId, id, 'an unsigned Idempotency-Key does not make a replay new');

    const other = await post(base, body, signedHeaders('msg_order_4712', body));
    assert.equal(other.status, 202);
    assert.notEqual(other.json.jobId, id, 'a new webhook-id is a new message');

    const c = daemon.journalForTools.counts();
    assert.equal(c.queued + c.running + c.done + c.failed, 2, 'two jobs in all');

    await stopDaemons();
    ({ daemon, base } = await startDaemon(ws));
    const afterRestart = await post(base, body, headers);
    assert.equal(afterRestart.json.jobId, id, 'remembered across a restart (the webhook-id is in the journal)');
    assert.equal(afterRestart.json.state, 'done');
    assert.equal(afterRestart.status, 200, 'a replay of a finished job gets its result');

    const stale = await post(base, body, signedHeaders('msg_order_4713', body, new Date(Date.now() - 6 * 60_000)));
    assert.equal(stale.status, 401, 'outside the tolerance window the signature itself is refused');
  });
});
