// The folder source with each image's own texts and meta, end to end in a real daemon (demo model): companions and
// manifests read from real files, results in sidecars, the journal and signed callbacks received on 127.0.0.1 and
// verified with the `standardwebhooks` package; every bad companion a per-item error with its code, nothing lost.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../../../src/core/config.ts';
import { Daemon } from '../../../src/core/daemon.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { builtinRegistry } from '../../../src/plugins/index.ts';
import { listFiles, waitFor, workspace, type Workspace } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../../fixtures/models.ts';
import { ENDPOINT_SECRET, receiver, red, type Receiver } from '../../fixtures/webhook.ts';

const running: Daemon[] = [];
const receivers: Receiver[] = [];
async function start(ws: Workspace): Promise<Daemon> {
  const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
  running.push(d);
  return d;
}

const folder = (companions: object = {}) => ({
  type: 'folder', name: 'inbox', rule: 'colours', options: { paths: ['inbox'], stabilityMs: 200, minAgeMs: 100, rescanMs: 1000, companions },
});
const sorted = [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }];
const toError = [{ move: { to: 'sorted/error' } }, { sidecar: {} }];
const sidecar = (ws: Workspace, band: string, file: string) => JSON.parse(fs.readFileSync(path.join(ws.sorted, band, `${file}.json`), 'utf8'));
const put = (ws: Workspace, name: string, content: string | Buffer) => fs.writeFileSync(path.join(ws.inbox, name), content);
/** True once every one of these sidecars is written (the last action after the move). */
const written = (ws: Workspace, ...files: string[]) => files.every((f) => fs.existsSync(path.join(ws.sorted, `${f}.json`)));

describe('folder: per-item texts, meta and callbacks', () => {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(cleanupTmpDirs);

  test('photo.jpg + photo.txt + photo.json: scored against photo.txt, meta echoed in the sidecar, the journal and a signed callback; companions move along', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const ws = workspace({
      callbacks: { endpoints: { shop: { url: rx.url, secret: ENDPOINT_SECRET } } },
      rules: { colours: { texts: ['a red product'], actions: { default: [...sorted, { callback: { endpoint: 'shop' } }] } } },
      sources: [folder()],
    });
    const d = await start(ws);
    const meta = { sku: 'RED-1', tags: ['summer'], nested: { a: 1 } };
    put(ws, 'photo.txt', '# my titles\na blue object\na red object\n');
    put(ws, 'photo.json', JSON.stringify({ meta }));
    put(ws, 'photo.jpg', red());
    put(ws, 'plain.jpg', red());
    await waitFor(() => rx.received.length === 2 && listFiles(ws.inbox).length === 0, 'both callbacks, inbox empty');

    const side = sidecar(ws, 'adopt', 'photo.jpg');
    assert.deepEqual(side.results.map((r: { text: string }) => r.text), ['a blue object', 'a red object'], 'the texts of photo.txt, in order');
    assert.equal(side.results[1].band, 'adopt');
    assert.equal(side.results[0].band, 'reject');
    assert.equal(side.decidedBy, 'a red object');
    assert.equal(side.textsFrom, 'item');
    assert.deepEqual(side.meta, meta);
    assert.equal(side.origin.relativePath, 'photo.jpg');
    assert.deepEqual(listFiles(path.join(ws.sorted, 'adopt')), ['photo.jpg', 'photo.jpg.json', 'photo.json', 'photo.txt', 'plain.jpg', 'plain.jpg.json']);
    assert.equal(fs.readFileSync(path.join(ws.sorted, 'adopt', 'photo.txt'), 'utf8'), '# my titles\na blue object\na red object\n');

    const plain = sidecar(ws, 'adopt', 'plain.jpg');
    assert.equal(plain.textsFrom, 'rule');
    assert.deepEqual(plain.results.map((r: { text: string }) => r.text), ['a red product']);
    assert.deepEqual(plain.meta, {});

    const job = d.journalForTools.get(side.jobId)!;
    assert.deepEqual(job.texts, ['a blue object', 'a red object']);
    assert.deepEqual(job.meta, meta);

    const wh = new Webhook(ENDPOINT_SECRET);
    const bodies = rx.received.map((m) => wh.verify(m.body, m.headers as Record<string, string>) as any);
    const photo = bodies.find((b) => b.data.origin.relativePath === 'photo.jpg');
    assert.equal(photo.type, 'match.completed');
    assert.equal(photo.data.source, 'inbox');
    assert.deepEqual(photo.data.meta, meta);
    assert.deepEqual(photo.data.results.map((r: { text: string }) => r.text), ['a blue object', 'a red object']);
    assert.equal(photo.data.textsFrom, 'item');
    assert.equal(bodies.find((b) => b.data.origin.relativePath === 'plain.jpg').data.results[0].text, 'a red product');

    // `matchd replay` works for a folder job's callback as for any: same webhook-id and body, a fresh signature.
    const first = rx.received.find((m) => m.body.includes('"photo.jpg"'))!;
    assert.equal(d.journalForTools.replay('callback', { jobId: side.jobId }), 1);
    d.kickActions();
    await waitFor(() => rx.received.length === 3, 'the replayed callback');
    const again = rx.received[2]!;
    assert.equal(again.headers['webhook-id'], first.headers['webhook-id']);
    assert.equal(again.body, first.body);
    wh.verify(again.body, again.headers as Record<string, string>);
  });

  test('texts: per-item: an image without texts fails with MATCHD_TEXTS_REQUIRED after waitMs; one whose photo.txt comes later waits for it', async () => {
    const ws = workspace({ rules: { colours: { texts: 'per-item', actions: { default: sorted, error: toError } } }, sources: [folder({ waitMs: 2500 })] });
    await start(ws);
    put(ws, 'lonely.jpg', red());
    put(ws, 'late.jpg', red());
    await new Promise((r) => setTimeout(r, 1000)); // both images stable long since
    put(ws, 'late.txt', 'a red object\n');
    await waitFor(() => written(ws, 'adopt/late.jpg', 'error/lonely.jpg'), 'both handled', 15_000);
    assert.deepEqual(sidecar(ws, 'adopt', 'late.jpg').results.map((r: { text: string }) => r.text), ['a red object']);
    const lonely = sidecar(ws, 'error', 'lonely.jpg');
    assert.equal(lonely.outcome, 'error');
    assert.equal(lonely.error.code, 'MATCHD_TEXTS_REQUIRED');
    assert.match(lonely.error.message, /rule 'colours' scores only per-item texts/);
  });

  test('bad companions are per-item errors with their codes; their companions go along to error; nothing lost, the source stays healthy', async () => {
    const ws = workspace({ rules: { colours: { texts: ['a red product'], actions: { default: sorted, error: toError } } }, sources: [folder()] });
    const d = await start(ws);
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { deep };
    const cases: [string, string, string | Buffer, string][] = [
      ['nonutf8', 'txt', Buffer.from([0x61, 0x0a, 0xff, 0xfe, 0x0a]), 'MATCHD_COMPANION_INVALID'],
      ['blank', 'txt', '   \n\n# nothing\n', 'MATCHD_TEXT_INVALID'],
      ['spaces', 'json', JSON.stringify({ texts: ['a red object', '   '] }), 'MATCHD_TEXT_INVALID'],
      ['many', 'txt', Array.from({ length: 10_000 }, (_, i) => `a red object ${i}`).join('\n'), 'MATCHD_TEXT_INVALID'],
      ['huge', 'txt', 'red '.repeat(262_144), 'MATCHD_TEXT_INVALID'],
      ['malformed', 'json', '{"texts": ["a red object",', 'MATCHD_COMPANION_INVALID'],
      ['deep', 'json', JSON.stringify({ texts: ['a red object'], meta: deep }), 'MATCHD_META_INVALID'],
      ['large', 'json', JSON.stringify({ meta: { blob: 'x'.repeat(100_000) } }), 'MATCHD_META_INVALID'],
    ];
    for (const [name, ext, content] of cases) put(ws, `${name}.${ext}`, content);
    for (const [name] of cases) put(ws, `${name}.jpg`, red());
    put(ws, 'good.txt', 'a red object\n');
    put(ws, 'good.jpg', red());
    await waitFor(() => written(ws, 'adopt/good.jpg', ...cases.map(([name]) => `error/${name}.jpg`)), 'every image handled', 20_000);
    assert.deepEqual(listFiles(ws.inbox), [], 'every companion went along with its image');
    for (const [name, ext, , code] of cases) {
      const side = sidecar(ws, 'error', `${name}.jpg`);
      assert.equal(side.error.code, code, `${name}: ${side.error.message}`);
      assert.ok(fs.existsSync(path.join(ws.sorted, 'error', `${name}.${ext}`)), `${name}.${ext} moved with its image`);
    }
    assert.match(sidecar(ws, 'error', 'nonutf8.jpg').error.message, /nonutf8\.txt: invalid UTF-8 \(around line 2\)/);
    assert.match(sidecar(ws, 'error', 'many.jpg').error.message, /10000 texts; at most 64 per item/);
    assert.match(sidecar(ws, 'error', 'huge.jpg').error.message, /text 0: \d+ characters; at most 2000/);
    assert.match(sidecar(ws, 'error', 'deep.jpg').error.message, /nested more than 16 levels deep/);
    assert.equal(sidecar(ws, 'adopt', 'good.jpg').results[0].text, 'a red object');
    assert.equal(d.health().status, 'ok');
  });

  test('a manifest: repeated CSV rows give one image several texts, other columns its meta; files it names that are not there are reported, not fatal', async () => {
    const ws = workspace({ rules: { colours: { texts: ['a red product'], actions: { default: sorted, error: toError } } }, sources: [folder()] });
    const d = await start(ws);
    put(ws, 'matchd-manifest.csv', 'file,text,sku\nred1.jpg,a blue object,R1\nred1.jpg,a red object,\nghost.jpg,a red object,G\n');
    await new Promise((r) => setTimeout(r, 400));
    put(ws, 'red1.jpg', red());
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'adopt', 'red1.jpg.json')), 'red1 scored');
    const side = sidecar(ws, 'adopt', 'red1.jpg');
    assert.deepEqual(side.results.map((r: { text: string }) => r.text), ['a blue object', 'a red object']);
    assert.deepEqual(side.meta, { sku: 'R1' });
    assert.deepEqual(listFiles(ws.inbox), ['matchd-manifest.csv'], 'the manifest stays, and is no job');
    const problems = d.journalForTools.pluginGet('inbox', 'manifestProblems') as { problems: string[] }[];
    assert.match(problems[0]!.problems.join('\n'), /names 1 file\(s\) that are not in .*: ghost\.jpg \(line 4\)/);
    assert.equal(d.health().status, 'ok');
  });

  test('a JSON Lines manifest in the root serves a sub-folder (recursive), photo.json meta wins over the manifest\'s', async () => {
    const ws = workspace({
      rules: { colours: { texts: ['a red product'], actions: { default: sorted } } },
      sources: [{ ...folder(), options: { ...folder().options, recursive: true } }],
    });
    await start(ws);
    fs.mkdirSync(path.join(ws.inbox, 'shop'));
    put(ws, 'matchd-manifest.jsonl', '{"file":"shop/a.jpg","texts":["a red object","a green object"],"meta":{"from":"manifest"}}\n');
    put(ws, 'shop/a.json', JSON.stringify({ meta: { from: 'photo.json' } }));
    put(ws, 'shop/a.jpg', red());
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'adopt', 'a.jpg.json')), 'a.jpg scored');
    const side = sidecar(ws, 'adopt', 'a.jpg');
    assert.deepEqual(side.results.map((r: { text: string }) => r.text), ['a red object', 'a green object']);
    assert.deepEqual(side.meta, { from: 'photo.json' });
  });

  test('a companion still being written when waitMs runs out: MATCHD_COMPANION_INVALID, image and companion kept together', async () => {
    const ws = workspace({ rules: { colours: { texts: ['a red product'], actions: { default: sorted, error: toError } } }, sources: [folder({ waitMs: 1200 })] });
    await start(ws);
    const txt = path.join(ws.inbox, 'slow.txt');
    fs.writeFileSync(txt, 'a red object\n');
    put(ws, 'slow.jpg', red());
    const writer = setInterval(() => fs.appendFileSync(txt, 'a red object\n'), 50);
    try {
      await waitFor(() => fs.existsSync(path.join(ws.sorted, 'error', 'slow.jpg.json')), 'the error', 15_000);
    } finally {
      clearInterval(writer);
    }
    const side = sidecar(ws, 'error', 'slow.jpg');
    assert.equal(side.error.code, 'MATCHD_COMPANION_INVALID');
    assert.match(side.error.message, /slow\.txt still being written after 1200 ms/);
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'error', 'slow.txt')), 'the companion moved along');
  });
});
