// Under systemd (Type=notify) `matchd run` says READY=1 once its sources run and STOPPING=1 when SIGTERM starts the
// drain: datagrams on the unix socket named by $NOTIFY_SOCKET (a path, or @name in the abstract namespace), sent by
// the daemon's own process as NotifyAccess=main requires. The receiving end here is a real AF_UNIX datagram socket
// (Python's; Node has none), the daemon a real `matchd run`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { notifyReceiver } from '../fixtures/notify-socket.ts';
import { repoRoot } from '../fixtures/packages.ts';

function runDaemon(notifySocket: string | undefined): { child: ChildProcess; log: () => string; exited: Promise<number | null> } {
  const ws = workspace();
  let out = '';
  const env: NodeJS.ProcessEnv = { ...process.env, MATCHD_LOG_LEVEL: 'info' };
  if (notifySocket !== undefined) env.NOTIFY_SOCKET = notifySocket;
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', ws.configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, log: () => out, exited };
}

describe('service: sd_notify readiness and stopping', () => {
  after(cleanupTmpDirs);

  for (const kind of ['a socket path', 'an abstract socket (@name)']) {
    test(`${kind}: READY=1 after the sources started, STOPPING=1 when SIGTERM starts the drain, exit 0`, async () => {
      const addr = kind.startsWith('an abstract') ? `@matchd-test-${process.pid}-${Date.now()}` : path.join(tmpDir('matchd-notify-'), 'notify.sock');
      const rx = await notifyReceiver(addr);
      const d = runDaemon(addr);
      try {
        const ready = await waitFor(() => rx.got.find((r) => r.msg.startsWith('READY=1')), `READY=1 (log: ${d.log()})`, 60_000);
        assert.match(ready.msg, /^READY=1\nSTATUS=running: 1 source\(s\), model demo-colours\nMAINPID=\d+$/);
        assert.equal(Number(/MAINPID=(\d+)/.exec(ready.msg)![1]), d.child.pid, 'sent by the daemon process itself');
        // Ready only once the sources run: the log's 'source started' was written before the datagram arrived.
        const logged = (msg: string) => waitFor(() => d.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.msg === msg), msg);
        assert.ok(Date.parse((await logged('source started')).time) <= ready.at, 'source started before READY=1');
        assert.ok(Date.parse((await logged('matchd running')).time) <= ready.at);
        d.child.kill('SIGTERM');
        assert.equal(await d.exited, 0, d.log());
        const stopping = await waitFor(() => rx.got.find((r) => r.msg.startsWith('STOPPING=1')), 'STOPPING=1');
        assert.match(stopping.msg, /^STOPPING=1\nSTATUS=draining \(SIGTERM\)/);
        assert.deepEqual(rx.got.map((r) => r.msg.split('\n')[0]), ['READY=1', 'STOPPING=1']);
      } finally {
        d.child.kill('SIGKILL');
        rx.close();
      }
    });
  }

  test('a NOTIFY_SOCKET nobody listens on: a warning in the log, the daemon runs and stops normally', async () => {
    const d = runDaemon(path.join(tmpDir('matchd-notify-'), 'nobody.sock'));
    try {
      await waitFor(() => /"msg":"could not notify the service manager"/.test(d.log()), `the warning (log: ${d.log()})`, 60_000);
      assert.match(d.log(), /"state":"READY=1".*"err":"sendto .*nobody\.sock: (No such file or directory|Connection refused)"/);
      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0, d.log());
    } finally {
      d.child.kill('SIGKILL');
    }
  });
});
