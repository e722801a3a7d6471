// deploy/matchd.service: `systemd-analyze verify` accepts it (no warning either); it has what running matchd as a
// service needs (Type=notify, a dedicated user, ProtectSystem=strict with the set-up folder writable,
// Restart=on-failure, SIGTERM, a stop timeout above the drain's); and its ExecStart, pointed at a set-up made by
// `matchd init` as the README says, runs: READY=1, an image sorted, SIGTERM → STOPPING=1 and exit 0 in time.
// Needs systemd-analyze (Debian's `systemd` package; .ci/run installs it when missing).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { notifyReceiver } from '../fixtures/notify-socket.ts';
import { repoRoot, samplesDir } from '../fixtures/packages.ts';

const UNIT = path.join(repoRoot, 'deploy', 'matchd.service');

/** `[Service]` etc. as key → values (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1]!;
    else {
      const i = line.indexOf('=');
      const key = `${section}.${line.slice(0, i)}`;
      keys.set(key, [...(keys.get(key) ?? []), line.slice(i + 1)]);
    }
  }
  return keys;
}

function seconds(v: string): number {
  const m = /^(\d+)(s|min)?$/.exec(v);
  assert.ok(m, `a time span: ${v}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
}

/** The unit with its paths pointed at this checkout, this Node and `setup` (what an installer would edit). */
function localised(setup: string): string {
  return fs.readFileSync(UNIT, 'utf8').replaceAll('/usr/bin/node', process.execPath).replaceAll('/opt/matchd', repoRoot).replaceAll('/srv/matchd', setup);
}

function verify(file: string) {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze is needed for this test (Debian: apt-get install systemd; .ci/run installs it): ${r.error.message}`);
  return r;
}

describe('service: deploy/matchd.service', () => {
  after(cleanupTmpDirs);

  test('systemd-analyze verify: accepted without a warning (and a broken copy is not)', () => {
    const dir = tmpDir('matchd-unit-');
    const file = path.join(dir, 'matchd.service');
    fs.writeFileSync(file, localised('/srv/matchd'));
    const r = verify(file);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warnings');
    // The check can fail: a misspelt key and a node that is not there are both reported.
    fs.writeFileSync(file, localised('/srv/matchd').replace('KillSignal=', 'KilSignal=').replace(process.execPath, '/nonexistent/node'));
    const bad = verify(file);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /Unknown key 'KilSignal'/);
    assert.match(bad.stderr, /\/nonexistent\/node is not executable/);
  });

  test('what a service needs: notify, a dedicated user, read-only system but the set-up folder, restarts, a stop timeout above the drain', () => {
    const u = parseUnit(fs.readFileSync(UNIT, 'utf8'));
    const one = (k: string) => {
      const v = u.get(k);
      assert.equal(v?.length, 1, k);
      return v![0]!;
    };
    assert.equal(one('Service.Type'), 'notify');
    assert.equal(one('Service.NotifyAccess'), 'main');
    assert.equal(one('Service.User'), 'matchd');
    assert.equal(one('Service.ProtectSystem'), 'strict');
    assert.deepEqual(one('Service.ReadWritePaths').split(/\s+/), ['/srv/matchd']);
    assert.equal(one('Service.Restart'), 'on-failure');
    assert.equal(one('Service.KillSignal'), 'SIGTERM');
    assert.match(one('Service.ExecStart'), /^\/usr\/bin\/node \/opt\/matchd\/bin\/matchd\.mjs run --config \/srv\/matchd\/matchd\.yaml$/);
    assert.equal(one('Install.WantedBy'), 'multi-user.target');
    // The drain of a set-up made by `matchd init` (shutdown.timeoutMs: the default) ends well before systemd's SIGKILL.
    const setup = tmpDir('matchd-unit-');
    assert.equal(spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'init', setup]).status, 0);
    const drainS = loadConfig(path.join(setup, 'matchd.yaml')).shutdown.timeoutMs / 1000;
    assert.ok(seconds(one('Service.TimeoutStopSec')) >= drainS + 10, `TimeoutStopSec ${one('Service.TimeoutStopSec')} vs a ${drainS} s drain`);
  });

  test('its ExecStart on a `matchd init` set-up: READY=1, an image sorted, KillSignal → STOPPING=1 and exit 0 within TimeoutStopSec', async () => {
    const setup = tmpDir('matchd-unit-');
    assert.equal(spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'init', setup]).status, 0);
    const config = path.join(setup, 'matchd.yaml');
    fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace(/port: 9464 /, 'port: 0    ')); // beside other daemons
    const u = parseUnit(localised(setup));
    const [cmd, ...args] = u.get('Service.ExecStart')![0]!.split(' ');
    const socket = `@matchd-unit-${process.pid}-${Date.now()}`;
    const rx = await notifyReceiver(socket);
    let log = '';
    const child = spawn(cmd!, args, { env: { ...process.env, NOTIFY_SOCKET: socket }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => rx.got.some((r) => r.msg.startsWith('READY=1')), `READY=1 (log: ${log})`, 60_000);
      fs.copyFileSync(path.join(samplesDir, 'blue.png'), path.join(setup, 'inbox', 'blue.png'));
      await waitFor(() => fs.existsSync(path.join(setup, 'sorted', 'reject', 'blue.png.json')), `blue.png sorted (log: ${log})`, 30_000);
      const signal = u.get('Service.KillSignal')![0] as NodeJS.Signals;
      const sent = Date.now();
      child.kill(signal);
      assert.equal(await exited, 0, log);
      assert.ok(Date.now() - sent < seconds(u.get('Service.TimeoutStopSec')![0]!) * 1000, 'stopped before systemd would SIGKILL');
      await waitFor(() => rx.got.some((r) => r.msg.startsWith('STOPPING=1')), 'STOPPING=1');
    } finally {
      child.kill('SIGKILL');
      rx.close();
    }
  });
});
