/**
 * Runs inside a network namespace made by no-outbound.test.ts: only loopback works, `out0` (a veth whose far end
 * nothing reads) is the default route for IPv4 and IPv6, and /etc/resolv.conf points at a DNS stub on 127.0.0.1:53
 * that this script serves and that records every query. Any packet for a non-loopback address — an ARP or
 * neighbour solicitation for it, a DNS query to a hard-coded server, a TCP SYN — goes out `out0` and is counted.
 *
 * It runs the CLI and the daemon as a user would (model load, scoring, shutdown), with HOME, TMPDIR and the
 * working folder set to empty folders of its own, and prints one JSON report on its last stdout line.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const [workRoot, repoRoot, holdMsArg] = process.argv.slice(2) as [string, string, string];
const holdMs = Number(holdMsArg);
const cli = path.join(repoRoot, 'bin', 'matchd.mjs');
const home = path.join(workRoot, 'home');
const tmp = path.join(workRoot, 'tmp');
const work = path.join(workRoot, 'work');
const queries: string[] = [];

/** The first question's name of a DNS message. */
function qname(msg: Buffer): string {
  const labels: string[] = [];
  for (let i = 12; i < msg.length && msg[i] !== 0; i += msg[i]! + 1) labels.push(msg.subarray(i + 1, i + 1 + msg[i]!).toString('latin1'));
  return labels.join('.');
}

/** NXDOMAIN for the message's question (the header's id and question copied back). */
function nxdomain(msg: Buffer): Buffer {
  let end = 12;
  while (end < msg.length && msg[end] !== 0) end += msg[end]! + 1;
  end = Math.min(msg.length, end + 5); // the root label, QTYPE, QCLASS
  const out = Buffer.from(msg.subarray(0, end));
  out.writeUInt16BE(0x8183, 2); // response, recursion desired + available, rcode 3
  out.writeUInt16BE(1, 4);
  out.fill(0, 6, 12);
  return out;
}

async function dnsStub(): Promise<() => void> {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    queries.push(`udp ${qname(msg)}`);
    udp.send(nxdomain(msg), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp.bind(53, '127.0.0.1', resolve));
  const tcp = net.createServer((sock) => {
    sock.once('data', (buf) => {
      const msg = buf.subarray(2);
      queries.push(`tcp ${qname(msg)}`);
      const reply = nxdomain(msg);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(reply.length);
      sock.end(Buffer.concat([len, reply]));
    });
  });
  await new Promise<void>((resolve) => tcp.listen(53, '127.0.0.1', resolve));
  return () => {
    udp.close();
    tcp.close();
  };
}

function txPackets(): number {
  const out = spawnSync('ip', ['-s', '-j', 'link', 'show', 'out0'], { encoding: 'utf8' });
  return JSON.parse(out.stdout)[0].stats64.tx.packets as number;
}

/** The user's environment, with ONNX Runtime's telemetry switch deliberately set to "on". */
const env = { ...process.env, HOME: home, TMPDIR: tmp, ORT_DISABLE_TELEMETRY: '0', MATCHD_LOG_LEVEL: 'warn' };

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function main(): Promise<void> {
  for (const d of [home, tmp, work]) fs.mkdirSync(d, { recursive: true });
  const stopDns = await dnsStub();
  const txBefore = txPackets();
  const report: Record<string, unknown> = {};

  // 1. The CLI: load, score, exit.
  const score = spawnSync(process.execPath, [cli, 'score', path.join(repoRoot, 'samples', 'red.jpg'), 'a red object', 'a blue object', '--json'], {
    cwd: work, env, encoding: 'utf8', timeout: 60_000,
  });
  report.cli = { code: score.status, stderr: score.stderr.slice(-2000), scored: score.status === 0 && JSON.parse(score.stdout).results.length === 2 };

  // 2. The daemon: start, score dropped files, stay up past ONNX Runtime's telemetry timer, drain on SIGTERM.
  const daemon = spawn(process.execPath, [cli, 'run', '--config', path.join(work, 'matchd.yaml')], { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonErr = '';
  daemon.stderr!.on('data', (b) => (daemonErr += b));
  const daemonExit = exited(daemon);
  const samples = ['red.jpg', 'blue.png'];
  for (const f of samples) fs.copyFileSync(path.join(repoRoot, 'samples', f), path.join(work, 'inbox', f));
  const deadline = Date.now() + 60_000;
  const sidecars = () => (fs.existsSync(path.join(work, 'sorted')) ? (fs.readdirSync(path.join(work, 'sorted'), { recursive: true }) as string[]).filter((f) => f.endsWith('.json')) : []);
  while (sidecars().length < samples.length && Date.now() < deadline && daemon.exitCode === null) await sleep(100);
  report.daemonScored = sidecars().length;
  await sleep(holdMs);
  daemon.kill('SIGTERM');
  report.daemon = { code: await daemonExit, stderr: daemonErr.slice(-2000) };

  await sleep(500); // anything sent on the way out has left by now
  stopDns();
  report.dnsQueries = queries;
  report.txPackets = txPackets() - txBefore;
  report.home = fs.readdirSync(home, { recursive: true });
  report.tmp = fs.readdirSync(tmp);
  report.work = (fs.readdirSync(work, { recursive: true }) as string[]).sort();
  console.log(JSON.stringify(report));
}

main().catch((err) => {
  console.log(JSON.stringify({ harnessError: String(err?.stack ?? err) }));
  process.exitCode = 1;
});
