// Every `sh` and `js` block of README.md runs as written, in README order, in a copy of the checkout as a new user
// has it after `npm install` — each in its own network namespace with only loopback (so the daemons the snippets
// start use their documented ports without meeting anything else on this machine, and nothing can reach the
// network), with HOME and TMPDIR of its own. A block exits 0, and where it claims a result the test checks it.
// A few blocks cannot run here; `<!-- snippet: skip — why -->` right before a block marks one, and SKIPPED below is
// that list: adding a skip means changing this test. `<!-- snippet: driver NAME — why -->` hands a block (a server)
// to the driver of that name here. `yaml` and `json` blocks must parse.
// Needs root or unprivileged user namespaces, iproute2 and curl (.ci/run installs them when missing).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { parse as parseYaml } from 'yaml';
import { waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

interface Snippet {
  line: number;
  lang: string;
  code: string;
  mark?: { kind: 'skip' | 'driver'; name?: string; reason: string };
}

/** The blocks that do not run here, by the start of their reason, in README order. */
const SKIPPED = [
  'the set-up itself',
  'needs root and a running systemd',
  'installs into another project',
  'downloads GME-Qwen2-VL-2B',
  'needs models/gme-2b',
  'downloads CLIP ViT-B/32',
  'downloads SigLIP',
  'needs models/clip-b32',
  'fetches the CUDA provider',
  'needs a PostgreSQL server and three hosts',
];

/** Fenced blocks with the mark on the line before them, if any. */
function readSnippets(text: string): Snippet[] {
  const lines = text.split('\n');
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `README.md:${i + 1}: an unclosed code block`);
    const m = /^<!-- snippet: (skip|driver (\S+)) — (.+) -->$/.exec(lines[i - 1] ?? '');
    assert.ok(m || !(lines[i - 1] ?? '').startsWith('<!-- snippet'), `README.md:${i}: a malformed snippet mark`);
    out.push({
      line: i + 1, lang: open[1]!, code: lines.slice(i + 1, end).join('\n') + '\n',
      ...(m ? { mark: { kind: m[2] ? 'driver' : 'skip', ...(m[2] ? { name: m[2] } : {}), reason: m[3]! } } : {}),
    } as Snippet);
    i = end;
  }
  return out;
}

let clone = '';
let home = '';
let tmp = '';

/**
 * A copy of the checkout as `npm install` leaves it: the tracked files (tests and benchmarks aside) and the build
 * outputs. The sources are needed: npx runs a local package's `prepare` (the build) the first time it runs its bin.
 */
function makeClone(): void {
  const root = tmpDir('matchd-readme-');
  clone = path.join(root, 'matchd');
  home = path.join(root, 'home');
  tmp = path.join(root, 'tmp');
  for (const d of [clone, home, tmp]) fs.mkdirSync(d, { recursive: true });
  const tracked = spawnSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
  for (const f of tracked.filter((f) => !/^(test|bench)\//.test(f) && fs.existsSync(path.join(repoRoot, f)))) {
    fs.mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, f), path.join(clone, f));
  }
  fs.cpSync(path.join(repoRoot, 'dist'), path.join(clone, 'dist'), { recursive: true });
  for (const d of ['node_modules', 'build', 'deps']) fs.symlinkSync(path.join(repoRoot, d), path.join(clone, d));
}

/** A user's shell: none of the npm_* variables `npm test` sets (npx would resolve against this checkout with them). */
const env = () => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$|NODE_OPTIONS$|MATCHD_)/i.test(k))),
  HOME: home, TMPDIR: tmp, npm_config_update_notifier: 'false',
});

/** Run a command in a fresh network namespace with loopback up: as root, or as root of a new user namespace. */
function isolated(args: string[], timeout = 180_000) {
  const flags = process.getuid?.() === 0 ? ['--net'] : ['--user', '--map-root-user', '--net'];
  const r = spawnSync('unshare', [...flags, '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'snippet', ...args], { cwd: clone, env: env(), encoding: 'utf8', timeout });
  if (r.error) throw new Error(`unshare: ${r.error.message} (needs root or user namespaces, and iproute2)`);
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** What a block claims, checked after it ran (by a line the block contains). */
const CLAIMS: { contains: string; check(out: string): void }[] = [
  {
    contains: 'npm start &',
    check: () => {
      for (const f of ['adopt/red.jpg', 'adopt/red.jpg.json', 'adopt/red.txt', 'adopt/red.json', 'reject/blue.png', 'reject/blue.png.json']) {
        assert.ok(fs.existsSync(path.join(clone, 'sorted', f)), `sorted/${f}`);
      }
      assert.deepEqual(fs.readdirSync(path.join(clone, 'inbox')), []);
    },
  },
  {
    contains: 'npx matchd init ~/sorting',
    check: (out) => {
      assert.ok(fs.existsSync(path.join(home, 'sorting', 'matchd.yaml')) && fs.existsSync(path.join(home, 'sorting', 'inbox')));
      assert.match(out, new RegExp(`${path.join(home, 'sorting', 'matchd.yaml').replace(/[.]/g, '\\.')}: OK\n`));
    },
  },
  { contains: 'npx matchd score samples/red.jpg "a red object" "a blue object"', check: (out) => assert.match(out, /a red object\s+0\.857\s+0\.857\s+adopt/) },
  {
    contains: 'node scripts/receive-callbacks.mjs &',
    check: (out) => {
      const msg = JSON.parse(out.split('\n').find((l) => l.includes('"match.completed"'))!);
      assert.equal(msg.data.outcome, 'adopt');
      assert.deepEqual(msg.data.meta, JSON.parse(fs.readFileSync(path.join(clone, 'samples', 'red.json'), 'utf8')).meta);
    },
  },
  {
    contains: 'config/webhook.yaml > webhook.log &',
    check: (out) => {
      assert.match(out, /"jobId":"1","state":"queued"/, 'the upload was accepted');
      assert.match(out, /"state":"done".*"result":/, 'a result inline or by polling');
      assert.match(out, /"results":\[\{"text":"a blue dress",.*"band":"reject".*\{"text":"a red dress",.*"band":"adopt"/, '/v1/score in text order');
    },
  },
  { contains: "import { Matcher } from 'matchd';", check: (out) => assert.match(out, /\[ 'adopt', 'MATCHD_IMAGE_DECODE' \]/) },
  { contains: "import { InferenceSession } from 'matchd';", check: (out) => assert.match(out, /\[ 8, 11 \]/) },
];

/** Servers: started here, driven, stopped. */
const DRIVERS: Record<string, (file: string) => Promise<void>> = {
  async 'callback-receiver'(file) {
    const secret = 'whsec_' + Buffer.from('a test secret for the README receiver').toString('base64');
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    const child = spawn(process.execPath, [file], { cwd: clone, env: { ...env(), MATCHD_CALLBACK_SECRET: secret, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      const post = async (id: string, body: string, key = secret) => {
        const at = new Date();
        const headers = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(key).sign(id, at, body) };
        return (await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers, body })).status;
      };
      const body = JSON.stringify({ type: 'match.completed', timestamp: new Date().toISOString(), data: { jobId: '7', outcome: 'adopt', decidedBy: 'a red product' } });
      const first = await waitFor(async () => post('msg_1', body).catch(() => 0), `the receiver listening (output: ${out})`);
      assert.equal(first, 204);
      assert.equal(await post('msg_1', body), 204, 'a repeated delivery is acknowledged');
      assert.equal(await post('msg_2', body, 'whsec_' + Buffer.from('someone else').toString('base64')), 400, 'a forged one is refused');
      await waitFor(() => out.includes('\n') || undefined, 'handled');
      assert.equal(out, 'match.completed 7 adopt a red product\n', 'handled once, the forged one not at all');
    } finally {
      child.kill();
    }
  },
};

describe('README: every snippet runs as written', () => {
  const snippets = readSnippets(fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));
  before(makeClone);
  after(cleanupTmpDirs);

  test('the blocks: sh and js only (no ts: plain Node runs them), and the skip list is exactly SKIPPED', () => {
    assert.deepEqual(snippets.filter((s) => ['ts', 'typescript', 'javascript', 'bash', 'shell', ''].includes(s.lang)).map((s) => s.line), [], 'use sh or js (and a language on every block)');
    const skipped = snippets.filter((s) => s.mark?.kind === 'skip').map((s) => s.mark!.reason);
    assert.equal(skipped.length, SKIPPED.length, skipped.join('\n'));
    skipped.forEach((r, i) => assert.ok(r.startsWith(SKIPPED[i]!), `skip ${i}: "${r}" should start with "${SKIPPED[i]}"`));
    for (const s of snippets.filter((x) => x.mark?.kind === 'driver')) assert.ok(DRIVERS[s.mark!.name!], `a driver for ${s.mark!.name}`);
    assert.ok(snippets.filter((s) => (s.lang === 'sh' || s.lang === 'js') && !s.mark).length >= 10, 'most blocks run');
  });

  test('yaml and json blocks parse', () => {
    for (const s of snippets.filter((x) => x.lang === 'yaml')) assert.doesNotThrow(() => parseYaml(s.code), `README.md:${s.line}`);
    for (const s of snippets.filter((x) => x.lang === 'json')) assert.doesNotThrow(() => JSON.parse(s.code), `README.md:${s.line}`);
  });

  for (const s of snippets.filter((x) => (x.lang === 'sh' || x.lang === 'js') && x.mark?.kind !== 'skip')) {
    test(`README.md:${s.line} (${s.lang}${s.mark ? `, driver ${s.mark.name}` : ''}): ${s.code.split('\n')[0]!.slice(0, 70)}`, async () => {
      const file = path.join(clone, `.snippet-${s.line}.${s.lang === 'sh' ? 'sh' : 'mjs'}`);
      fs.writeFileSync(file, s.code);
      if (s.mark?.kind === 'driver') return DRIVERS[s.mark.name!]!(file);
      const r = s.lang === 'sh' ? isolated(['bash', '-e', '-o', 'pipefail', file]) : isolated([process.execPath, file]);
      assert.equal(r.code, 0, `README.md:${s.line} exited ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      for (const c of CLAIMS.filter((c) => s.code.includes(c.contains))) c.check(r.stdout);
    });
  }

  test('every claim above met a block (a changed README keeps its checks)', () => {
    for (const c of CLAIMS) assert.ok(snippets.some((s) => s.code.includes(c.contains)), c.contains);
  });
});
