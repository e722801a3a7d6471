// `matchd run` as a process: `npm start` passes SIGTERM on to the daemon (it used to leave it orphaned, holding its
// port), and Node process warnings — a plugin's, the AWS SDK's Node-version notice — come out as JSON log lines,
// never as free text in the middle of the log stream.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot } from '../fixtures/packages.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A port nothing listens on (for an S3 endpoint that refuses connections). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('cli: matchd run as a process', () => {
  after(cleanupTmpDirs);

  test('npm start, then SIGTERM to npm: the daemon drains and exits, nothing left running', async () => {
    // A checkout as the README has it: the package's own files, its start script, config/default.yaml (admin port
    // moved off 9464: tests run beside other daemons).
    const root = tmpDir('matchd-npmstart-');
    for (const f of ['bin', 'dist', 'node_modules', 'build', 'models']) fs.symlinkSync(path.join(repoRoot, f), path.join(root, f));
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
    fs.mkdirSync(path.join(root, 'config'));
    const config = fs.readFileSync(path.join(repoRoot, 'config', 'default.yaml'), 'utf8');
    assert.match(config, /port: 9464/);
    fs.writeFileSync(path.join(root, 'config', 'default.yaml'), config.replace('port: 9464', 'port: 0'));

    const npm = spawn('npm', ['start'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    npm.stdout.on('data', (d) => (out += d));
    npm.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    let daemonPids: number[] = [];
    try {
      await waitFor(() => out.includes('"msg":"matchd running"'), `the daemon running (output: ${out})`, 60_000);
      // npm's children: the daemon itself (the start script execs node), or a shell in between if it did not.
      const tree = (pid: number): number[] => {
        const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
        return kids.flatMap((k) => [k, ...tree(k)]);
      };
      daemonPids = tree(npm.pid!);
      assert.ok(daemonPids.length >= 1, 'npm started the daemon');
      npm.kill('SIGTERM'); // what a supervisor or `kill %1` sends: to npm only
      assert.equal(await exited, 0, out);
      await waitFor(() => daemonPids.every((p) => !alive(p)), `npm's children gone (still: ${daemonPids.filter(alive).join(', ')})`, 15_000);
      assert.match(out, /"reason":"SIGTERM","msg":"stopping: intake off"/, 'the daemon drained');
      assert.match(out, /"msg":"stopped"/);
    } finally {
      for (const p of [npm.pid!, ...daemonPids]) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  });

  test('process warnings (a plugin\'s, the AWS SDK\'s) are log lines: stdout is JSON only, stderr stays empty', async () => {
    const root = tmpDir('matchd-warnings-');
    const file = path.join(root, 'matchd.yaml');
    fs.writeFileSync(file, stringify({
      model: { dir: demoDir },
      journal: { path: 'var/matchd.db' },
      admin: { port: 0 },
      rules: { colours: { texts: ['a red product'] } },
      sources: [
        { type: path.join(repoRoot, 'test', 'fixtures', 'noisy-plugin.mjs'), name: 'noisy', rule: 'colours' },
        // A real S3 client (its SDK warns on Node < 22 when one is created); nothing listens at the endpoint.
        { type: 's3', name: 'bucket', rule: 'colours', options: {
          bucket: 'b', endpoint: `http://127.0.0.1:${await closedPort()}`, region: 'us-east-1', forcePathStyle: true,
          accessKeyId: 'test', secretAccessKey: 'test', pollIntervalMs: 60_000,
        } },
      ],
    }));
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stdout.includes('"msg":"matchd running"'), `running (stdout: ${stdout} stderr: ${stderr})`, 60_000);
      await waitFor(() => stdout.includes('MATCHD_TEST_WARNING'), 'the plugin\'s warning in the log');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l)); // every line is JSON
    const test = lines.find((l) => l.code === 'MATCHD_TEST_WARNING');
    assert.deepEqual({ level: test.level, warning: test.warning, msg: test.msg }, { level: 40, warning: 'MatchdTestWarning', msg: 'a test warning over two lines' });
    if (Number(process.versions.node.split('.')[0]) < 22) {
      const aws = lines.find((l) => /AWS SDK for JavaScript \(v3\)/.test(l.msg ?? ''));
      assert.ok(aws, 'the AWS SDK\'s Node-version notice, as a log line');
      assert.equal(aws.level, 40);
    }
    assert.equal(stderr, '', 'nothing printed outside the log');
  });
});
