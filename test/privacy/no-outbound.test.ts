// "Fully local, no telemetry": the CLI and the daemon, through model load, scoring and shutdown, inside a network
// namespace that has only loopback, a counted dead-end default route and a DNS stub that records every query.
// Fails on any DNS query, any packet towards a non-loopback address, and any file left in HOME or TMPDIR.
// Needs root (or unprivileged user namespaces) and iproute2; .ci/run installs iproute2 when it is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot } from '../fixtures/packages.ts';

/** Long enough for ONNX Runtime's telemetry uploader, which first fired ~9 s after model load when it was on. */
const HOLD_MS = 15_000;

// out0's far end is never read: whatever is routed there (ARP / neighbour solicitations included) is only counted.
// No IPv6 address sits on out0 itself, so the kernel sends no MLD or DAD of its own and the counter starts quiet.
const SETUP = `set -e
ip link set lo up
ip link add out0 type veth peer name sink0
for d in out0 sink0; do ip link set $d addrgenmode none multicast off; ip link set $d up; done
ip addr add 198.18.0.1/15 dev out0
ip -6 addr add 2001:db8::1/128 dev lo
ip route add default dev out0
ip -6 route add default dev out0 src 2001:db8::1
mount --bind "$1/resolv.conf" /etc/resolv.conf
shift
exec "$@"`;

function writeWorkspace(root: string): void {
  const work = path.join(root, 'work');
  fs.mkdirSync(path.join(work, 'inbox'), { recursive: true });
  fs.writeFileSync(path.join(root, 'resolv.conf'), 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n');
  const config = {
    model: { dir: demoDir, maxBatch: 8, maxDelayMs: 10 },
    journal: { path: 'var/journal.db' },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
    rules: {
      colours: {
        texts: ['a red product', 'a blue product'],
        actions: { default: [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }], error: [{ move: { to: 'sorted/error' } }, { sidecar: {} }] },
      },
    },
    sources: [{ type: 'folder', name: 'inbox', rule: 'colours', options: { paths: ['inbox'], stabilityMs: 200, minAgeMs: 100 } }],
  };
  fs.writeFileSync(path.join(work, 'matchd.yaml'), stringify(config));
}

/** Run the inside script in a fresh network + mount namespace: as root, or else as root of a new user namespace. */
function runIsolated(root: string): { report: any; how: string } {
  const inner = [process.execPath, '--import', 'tsx', path.join(repoRoot, 'test', 'privacy', 'netns-inside.ts'), root, repoRoot, String(HOLD_MS)];
  const attempts = process.getuid?.() === 0 ? [['--net', '--mount']] : [];
  attempts.push(['--user', '--map-root-user', '--net', '--mount']);
  const failures: string[] = [];
  for (const flags of attempts) {
    const r = spawnSync('unshare', [...flags, '--', 'sh', '-c', SETUP, 'setup', root, ...inner], { encoding: 'utf8', cwd: repoRoot, timeout: 180_000 });
    const last = r.stdout?.trim().split('\n').pop() ?? '';
    if (last.startsWith('{')) return { report: JSON.parse(last), how: `unshare ${flags.join(' ')}` };
    failures.push(`unshare ${flags.join(' ')}: ${r.error?.message ?? `exit ${r.status}`}\n${r.stderr}`);
  }
  throw new Error(`could not make an isolated network namespace (needs root or user namespaces, and iproute2):\n${failures.join('\n')}`);
}

describe('privacy: no outbound traffic', () => {
  after(cleanupTmpDirs);

  test('CLI and daemon: no DNS query, no packet off loopback, nothing left in HOME or TMPDIR', () => {
    const root = tmpDir('matchd-netns-');
    writeWorkspace(root);
    const { report } = runIsolated(root);
    assert.equal(report.harnessError, undefined, report.harnessError);
    assert.equal(report.cli.code, 0, report.cli.stderr);
    assert.ok(report.cli.scored, 'the CLI printed two results');
    assert.equal(report.daemonScored, 2, `the daemon scored both files\n${report.daemon.stderr}`);
    assert.equal(report.daemon.code, 0, report.daemon.stderr);
    assert.deepEqual(report.dnsQueries, [], 'DNS queries were made');
    assert.equal(report.txPackets, 0, 'packets were sent towards a non-loopback address');
    assert.deepEqual(report.home, [], 'files were written under HOME');
    // The CLI runs compiled JavaScript (dist/): no transpile cache, nothing at all in TMPDIR.
    assert.deepEqual(report.tmp, [], 'files were left in TMPDIR');
    assert.ok(!report.work.some((f: string) => f.endsWith('.ses') || f.includes('mat-debug')), `stray files in the working folder: ${report.work}`);
  });

  test('the harness sees traffic when there is some (a deliberate lookup and connect are caught)', () => {
    const root = tmpDir('matchd-netns-');
    fs.writeFileSync(path.join(root, 'resolv.conf'), 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n');
    const probe = `
      const dns = require('node:dns'); const net = require('node:net'); const dgram = require('node:dgram');
      const queries = [];
      const stub = dgram.createSocket('udp4');
      stub.on('message', (m, r) => { queries.push(m.length); const o = Buffer.from(m); o.writeUInt16BE(0x8183, 2); stub.send(o, r.port, r.address); });
      stub.bind(53, '127.0.0.1', () => dns.lookup('telemetry.example.com', () => {
        const s = net.connect(443, '203.0.113.7'); s.on('error', () => {}); setTimeout(() => {
          const tx = JSON.parse(require('node:child_process').execFileSync('ip', ['-s', '-j', 'link', 'show', 'out0'], { encoding: 'utf8' }))[0].stats64.tx.packets;
          console.log(JSON.stringify({ queries: queries.length, tx })); process.exit(0);
        }, 1500);
      }));`;
    const flags = process.getuid?.() === 0 ? ['--net', '--mount'] : ['--user', '--map-root-user', '--net', '--mount'];
    const r = spawnSync('unshare', [...flags, '--', 'sh', '-c', SETUP, 'setup', root, process.execPath, '-e', probe], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(seen.queries >= 1, 'the DNS stub recorded the lookup');
    assert.ok(seen.tx >= 1, 'the connect to a non-loopback address was counted on out0');
  });
});
