// `matchd init DIR` makes a set-up that works where it is written (the README's two-line recipe), and `matchd
// validate` finds in one pass everything `matchd run` would trip over — a misspelt band in `actions`, a watched
// folder that is not there, a missing model — and prints the absolute paths the config resolves to.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { listFiles, waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot, samplesDir } from '../fixtures/packages.ts';

const cli = path.join(repoRoot, 'bin', 'matchd.mjs');

function matchd(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** init's config with the admin port moved off 9464 (tests run beside other daemons). */
function initAt(dir: string, cwd: string, ...extra: string[]) {
  const r = matchd(['init', dir, ...extra], cwd);
  assert.equal(r.code, 0, r.stderr);
  const file = path.join(cwd, dir, 'matchd.yaml');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/port: 9464 /, 'port: 0    '));
  return { r, file };
}

describe('cli: init and validate', () => {
  after(cleanupTmpDirs);

  test('init DIR, validate, run: an image dropped into DIR/inbox is sorted into DIR/sorted with its sidecar', async () => {
    const cwd = tmpDir('matchd-init-');
    const { r, file } = initAt('job', cwd, '--text', 'a red product', '--text', 'a green product');
    const dir = path.join(cwd, 'job');
    assert.match(r.stdout, new RegExp(`^wrote ${file.replace(/[.]/g, '\\.')}\n`));
    assert.match(r.stdout, /next:\n {2}matchd validate job\/matchd\.yaml\n {2}matchd run --config job\/matchd\.yaml\n$/);
    assert.ok(fs.statSync(path.join(dir, 'inbox')).isDirectory());
    const config = parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(config.rules.main.texts, ['a red product', 'a green product']);
    assert.equal(config.model.dir, demoDir, 'the model by its absolute path: the config works wherever it is');

    // validate, from another folder: OK, and every path absolute.
    const v = matchd(['validate', file], repoRoot);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, new RegExp(`^${file.replace(/[.]/g, '\\.')}: OK\n`));
    assert.ok(v.stdout.includes(`model    ${demoDir} — demo-colours (cpu); bands adopt, review, improve, reject`), v.stdout);
    assert.ok(v.stdout.includes(`journal  ${path.join(dir, 'var', 'matchd.db')} (created at the first start)`), v.stdout);
    assert.ok(v.stdout.includes(`source   inbox (folder) → rule main; watches ${path.join(dir, 'inbox')}`), v.stdout);
    assert.ok(v.stdout.includes(`default: move → ${path.join(dir, 'sorted', '{band}')}, sidecar`), v.stdout);
    assert.ok(!fs.existsSync(path.join(dir, 'var')), 'validate creates nothing');

    // run, from yet another folder: the relative paths resolve against the config's folder.
    fs.copyFileSync(path.join(samplesDir, 'red.jpg'), path.join(dir, 'inbox', 'red.jpg'));
    const child = spawn(process.execPath, [cli, 'run', '--config', file], { cwd: tmpDir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => fs.existsSync(path.join(dir, 'sorted', 'adopt', 'red.jpg.json')), `red.jpg sorted (log: ${log})`, 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, log);
    assert.deepEqual(listFiles(path.join(dir, 'sorted')), ['adopt/red.jpg', 'adopt/red.jpg.json']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'inbox')), []);
  });

  test('init refuses to overwrite a matchd.yaml (--force replaces it) and refuses a bad model before writing', () => {
    const cwd = tmpDir('matchd-init-');
    initAt('.', cwd);
    const again = matchd(['init', '.'], cwd);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^matchd: MATCHD_PATH_INVALID: .*matchd\.yaml exists; left as it is \(--force replaces it\)/);
    assert.equal(matchd(['init', '.', '--force', '--text', 'blue'], cwd).code, 0);
    assert.deepEqual(parse(fs.readFileSync(path.join(cwd, 'matchd.yaml'), 'utf8')).rules.main.texts, ['blue']);
    const bad = matchd(['init', 'other', '--model', 'no/such/model'], cwd);
    assert.match(bad.stderr, /^matchd: MATCHD_MODEL_INVALID: /);
    assert.ok(!fs.existsSync(path.join(cwd, 'other')), 'nothing written');
  });

  test('validate lists every problem in one pass: a misspelt band, a missing folder, a missing model; run refuses them too', () => {
    const cwd = tmpDir('matchd-validate-');
    const { file } = initAt('.', cwd);
    const c = parse(fs.readFileSync(file, 'utf8'));
    c.rules.main.actions = { adpot: [{ move: { to: 'sorted/adopt' } }], error: [{ move: { to: 'sorted/error' } }] };
    c.sources[0].options.paths = ['inbox', 'incoming'];
    fs.writeFileSync(file, stringify(c));
    const v = matchd(['validate', file], cwd);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /^matchd: MATCHD_CONFIG_INVALID: .*matchd\.yaml: 2 problem\(s\); `matchd run` would not start:\n/m);
    assert.match(v.stderr, /- rules\.main\.actions\.adpot: no band is named 'adpot'; an action list is keyed by a band \(adopt, review, improve, reject, from the model package\), error or default/);
    assert.match(v.stderr, /- sources\.0\.options\.paths\.1: path '.*incoming' does not exist/);
    assert.match(v.stderr, /warning: rules\.main: no actions for adopt, review, improve, reject \(and no default list\)/);

    // A missing model as well: listed with its code beside the folder, still one run (the band names come from the
    // model package, so they wait for one that opens).
    c.model.dir = 'no/such/model';
    fs.writeFileSync(file, stringify(c));
    const more = matchd(['validate', file], cwd);
    assert.equal(more.code, 1);
    assert.match(more.stderr, /2 problem\(s\)/);
    assert.match(more.stderr, /- MATCHD_MODEL_INVALID: model\.dir: /);
    assert.match(more.stderr, /- MATCHD_CONFIG_INVALID: sources\.0\.options\.paths\.1/);

    // run refuses the misspelt band (it used to start, and the files stayed in the inbox); nothing is created.
    c.model.dir = demoDir;
    c.sources[0].options.paths = ['inbox'];
    fs.writeFileSync(file, stringify(c));
    const run = matchd(['run', '--config', file], cwd);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^matchd: MATCHD_CONFIG_INVALID: rules\.main\.actions\.adpot: no band is named 'adpot'/m);
    assert.ok(!fs.existsSync(path.join(cwd, 'var')), 'no journal created');
  });

  test('validate: a rule with its own bands is checked against those; a port in use is a warning, not a failure', async () => {
    const cwd = tmpDir('matchd-validate-');
    const { file } = initAt('.', cwd);
    const held = net.createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
    try {
      const c = parse(fs.readFileSync(file, 'utf8'));
      c.admin.port = (held.address() as net.AddressInfo).port;
      c.rules.main.bands = { on: 'cosine', list: [{ name: 'hit', min: 0.5 }, { name: 'miss' }] };
      c.rules.main.actions = { hit: [{ move: { to: 'sorted/hit' } }], miss: [{ move: { to: 'sorted/miss' } }] };
      fs.writeFileSync(file, stringify(c));
      const ok = matchd(['validate', file], cwd);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stderr, /^matchd: warning: admin\.port: 127\.0\.0\.1:\d+ is already in use .* — `matchd run` would refuse to start now$/m);
      c.rules.main.actions = { adopt: [{ move: { to: 'sorted/adopt' } }], default: [] };
      fs.writeFileSync(file, stringify(c));
      const bad = matchd(['validate', file], cwd);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /rules\.main\.actions\.adopt: no band is named 'adopt'; an action list is keyed by a band \(hit, miss, from the rule\)/);
    } finally {
      held.close();
    }
  });
});
