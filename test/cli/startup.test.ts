// Start-up validates everything before it creates anything: a missing model folder, a missing watched folder, an
// admin port or a webhook port already in use each stop `matchd run` with `matchd: CODE: message` naming the config
// key to change — no stack trace, no journal file, no admin endpoint opened.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot } from '../fixtures/packages.ts';
import { TOKEN } from '../fixtures/webhook.ts';

function setup(edit: (c: any) => void = () => {}): { root: string; config: string } {
  const root = tmpDir('matchd-startup-');
  fs.mkdirSync(path.join(root, 'inbox'));
  const c: any = {
    model: { dir: demoDir }, journal: { path: 'var/matchd.db' }, admin: { host: '127.0.0.1', port: 0 }, log: { level: 'info' },
    rules: { colours: { texts: ['red'], actions: { default: [{ move: { to: 'sorted/{band}' } }] } } },
    sources: [{ type: 'folder', name: 'inbox', rule: 'colours', options: { paths: ['inbox'] } }],
  };
  edit(c);
  const config = path.join(root, 'matchd.yaml');
  fs.writeFileSync(config, stringify(c));
  return { root, config };
}

function run(config: string) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', config], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A listening socket on 127.0.0.1 (the port someone else holds). */
async function occupy(): Promise<{ port: number; close: () => void }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as net.AddressInfo).port, close: () => s.close() };
}

function assertNothingCreated(root: string, r: ReturnType<typeof run>): void {
  assert.ok(!fs.existsSync(path.join(root, 'var')), 'no journal folder or file was created');
  assert.doesNotMatch(r.stdout, /admin endpoint listening/, 'the admin port was never opened');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('cli: start-up checks', () => {
  after(cleanupTmpDirs);

  test('a missing model folder: MATCHD_MODEL_INVALID naming model.dir; nothing created', () => {
    const { root, config } = setup((c) => (c.model.dir = 'no/such/model'));
    const r = run(config);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^matchd: MATCHD_MODEL_INVALID: model\.dir: model package .*no\/such\/model is invalid:\n\s+- model\.yaml: not found\nSet model\.dir \(now "no\/such\/model"\) to a model package folder/m);
    assertNothingCreated(root, r);
  });

  test('a missing watched folder: MATCHD_CONFIG_INVALID naming sources.0.options.paths.1; nothing created', () => {
    const { root, config } = setup((c) => (c.sources[0].options.paths = ['inbox', 'missing-folder']));
    const r = run(config);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^matchd: MATCHD_CONFIG_INVALID: sources\.0\.options\.paths\.1: path '.*missing-folder' does not exist; create it, fix the path, or set create: true/m);
    assertNothingCreated(root, r);
  });

  test('the admin port in use: MATCHD_PORT_IN_USE naming admin.port, not an EADDRINUSE stack; nothing created', async () => {
    const held = await occupy();
    try {
      const { root, config } = setup((c) => (c.admin.port = held.port));
      const r = run(config);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^matchd: MATCHD_PORT_IN_USE: admin\\.port: 127\\.0\\.0\\.1:${held.port} is already in use.*change admin\\.port`, 'm'));
      assertNothingCreated(root, r);
    } finally {
      held.close();
    }
  });

  test('a webhook port in use: MATCHD_PORT_IN_USE naming sources.0.options.port; nothing created', async () => {
    const held = await occupy();
    try {
      const { root, config } = setup((c) => {
        c.rules.colours.actions = {};
        c.sources = [{ type: 'webhook', name: 'api', rule: 'colours', options: { port: held.port, auth: { tokens: [{ name: 'a', token: TOKEN }] } } }];
      });
      const r = run(config);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^matchd: MATCHD_PORT_IN_USE: sources\\.0\\.options\\.port: 127\\.0\\.0\\.1:${held.port} is already in use`, 'm'));
      assertNothingCreated(root, r);
    } finally {
      held.close();
    }
  });
});
