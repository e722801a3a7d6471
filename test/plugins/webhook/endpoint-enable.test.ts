// An endpoint disabled by a 410 Gone is re-enabled with `matchd endpoint enable` — by name or by URL — while the
// daemon runs, and the next callback to it is sent; `matchd endpoint list` shows what is disabled.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, afterEach, describe, test } from 'node:test';
import type { Daemon } from '../../../src/core/daemon.ts';
import { waitFor } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { repoRoot } from '../../fixtures/packages.ts';
import { ENDPOINT_SECRET, type Receiver, postJob, receiver, red, startDaemon, stopDaemons, webhookWorkspace } from '../../fixtures/webhook.ts';

const exec = promisify(execFile);
async function matchd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { cwd: repoRoot });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
const callbackOf = (d: Daemon, jobId: string) => d.journalForTools.actionsOf(Number(jobId)).find((a) => a.kind === 'callback');

describe('webhook: re-enabling an endpoint disabled by 410', () => {
  const receivers: Receiver[] = [];
  afterEach(async () => {
    await stopDaemons();
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(cleanupTmpDirs);

  test('endpoint list / enable, by name and by URL, take effect in the running daemon', { timeout: 60_000 }, async () => {
    const named = await receiver([{ status: 410 }, { status: 200 }]);
    const byUrl = await receiver([{ status: 410 }, { status: 200 }]);
    receivers.push(named, byUrl);
    const ws = webhookWorkspace({
      callbacks: { endpoints: { crm: { url: named.url, secret: ENDPOINT_SECRET } } },
      actions: { default: [{ callback: { endpoint: 'crm' } }] },
    });
    const { daemon, base } = await startDaemon(ws);
    const job = async (extra: Record<string, unknown> = {}) => {
      const r = await postJob(base, { image: red().toString('base64'), ...extra });
      assert.equal(r.status, 202, JSON.stringify(r.json));
      return r.json.jobId as string;
    };
    const settled = (id: string, state: string) => waitFor(() => callbackOf(daemon, id)?.state === state, `job ${id}'s callback ${state}`);

    const first = await job({ callbackUrl: byUrl.url });
    await waitFor(() => daemon.journalForTools.actionsOf(Number(first)).filter((a) => a.kind === 'callback').every((a) => a.state === 'dead'), 'both 410s');
    const list = await matchd('endpoint', 'list', '--config', ws.configFile);
    assert.equal(list.code, 0, list.stderr);
    // A named endpoint's state is the core's (any source may call it); a request's own URL is its source's.
    assert.match(list.stdout, /^core:callbacks\tendpoint crm\tdisabled \S+ \(410 Gone for job \d+\)$/m);
    assert.match(list.stdout, new RegExp(`^api\\turl ${byUrl.url.replace(/[.]/g, '\\.')}\\t`, 'm'));

    const stillOff = await job();
    await settled(stillOff, 'dead');
    assert.equal(named.received.length, 1, 'nothing is sent to a disabled endpoint');

    const on = await matchd('endpoint', 'enable', 'crm', '--config', ws.configFile);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /re-enabled endpoint crm \(source core:callbacks\).*matchd replay --since/);
    const after = await job();
    await settled(after, 'done');
    assert.equal(named.received.length, 2, 'the next callback was sent, without a restart');

    assert.equal((await matchd('endpoint', 'enable', byUrl.url, '--config', ws.configFile)).code, 0);
    const viaUrl = await job({ callbackUrl: byUrl.url });
    await waitFor(() => byUrl.received.length === 2, 'a callback to the re-enabled URL');
    void viaUrl;

    const again = await matchd('endpoint', 'enable', 'crm', '--config', ws.configFile);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /endpoint crm is not disabled; disabled: none/);
    assert.match((await matchd('endpoint', 'list', '--config', ws.configFile)).stdout, /no callback endpoint is disabled/);
  });
});
