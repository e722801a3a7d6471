// Actions never overwrite, survive being re-run after a crash at any step, and work across devices.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileActions, PermanentActionError, type ActionContext } from '../../src/core/actions/file-actions.ts';
import { silentLogger } from '../../src/core/log.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

function ctx(location: string, jobId = 7) {
  const remembered: Record<string, unknown>[] = [];
  const c: ActionContext = {
    jobId, location, remember: (p) => remembered.push(p), log: silentLogger(), attempt: 1, now: Date.now,
    job: { source: 's', rule: 'r', imagePath: location, meta: {}, origin: {}, outcome: 'adopt', result: null, createdAt: 0 },
  };
  return { c, remembered };
}

function setup(name = 'photo.jpg', content = 'image-bytes') {
  const root = tmpDir();
  const src = path.join(root, 'inbox', name);
  fs.mkdirSync(path.dirname(src), { recursive: true });
  fs.writeFileSync(src, content);
  return { root, src, out: path.join(root, 'out', 'adopt') };
}

describe('daemon: actions', () => {
  after(cleanupTmpDirs);

  test('move: the file ends in the folder, the decided name is remembered first', async () => {
    const { src, out } = setup();
    const { c, remembered } = ctx(src);
    const r = await fileActions.move({ src, dir: out }, c);
    assert.equal(r.location, path.join(out, 'photo.jpg'));
    assert.ok(!fs.existsSync(src));
    assert.equal(fs.readFileSync(r.location!, 'utf8'), 'image-bytes');
    assert.deepEqual(remembered, [{ src, dir: out, dest: r.location }]);
  });

  test('move never overwrites: a name collision gets a unique name', async () => {
    const { src, out } = setup();
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'photo.jpg'), 'someone else');
    const r = await fileActions.move({ src, dir: out }, ctx(src, 42).c);
    assert.equal(r.location, path.join(out, 'photo-42.jpg'));
    assert.equal(fs.readFileSync(path.join(out, 'photo.jpg'), 'utf8'), 'someone else');
    assert.equal(fs.readFileSync(r.location!, 'utf8'), 'image-bytes');
  });

  test('re-running a move after a crash between link and unlink finishes it, one output', async () => {
    const { src, out } = setup();
    const dest = path.join(out, 'photo.jpg');
    fs.mkdirSync(out, { recursive: true });
    fs.linkSync(src, dest); // the crash happened here
    const r = await fileActions.move({ src, dir: out, dest }, ctx(src).c);
    assert.equal(r.location, dest);
    assert.ok(!fs.existsSync(src));
    assert.deepEqual(fs.readdirSync(out), ['photo.jpg']);
  });

  test('re-running a finished move is a no-op; a vanished file with no output is a permanent failure', async () => {
    const { src, out } = setup();
    const first = await fileActions.move({ src, dir: out }, ctx(src).c);
    const again = await fileActions.move({ src, dir: out, dest: first.location }, ctx(src).c);
    assert.equal(again.location, first.location);
    assert.deepEqual(fs.readdirSync(out), ['photo.jpg']);
    const other = setup('gone.jpg');
    fs.rmSync(other.src);
    await assert.rejects(fileActions.move({ src: other.src, dir: other.out }, ctx(other.src).c), (e) => e instanceof PermanentActionError && e.code === 'MATCHD_ACTION_FAILED');
  });

  test('a planned name taken by a different file meanwhile → a new unique name, nothing overwritten', async () => {
    const { src, out } = setup();
    const dest = path.join(out, 'photo.jpg');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(dest, 'intruder');
    const { c, remembered } = ctx(src, 9);
    const r = await fileActions.move({ src, dir: out, dest }, c);
    assert.equal(r.location, path.join(out, 'photo-9.jpg'));
    assert.equal(fs.readFileSync(dest, 'utf8'), 'intruder');
    assert.equal(remembered.at(-1)!.dest, r.location);
  });

  test('move across devices: fsynced copy, then the source is removed, no temp file left', async (t) => {
    const { src } = setup('far.jpg', 'x'.repeat(100_000));
    // A real second filesystem (tmpfs /dev/shm) when there is one; otherwise link() is made to fail with EXDEV,
    // which is exactly what sends a move down the copy path.
    const realSecondFs = fs.statSync('/dev/shm', { throwIfNoEntry: false })?.dev !== undefined &&
      fs.statSync('/dev/shm').dev !== fs.statSync(src).dev;
    const out = realSecondFs ? fs.mkdtempSync('/dev/shm/matchd-test-') : path.join(tmpDir(), 'other-device');
    if (!realSecondFs) {
      const realLink = fsp.link;
      t.mock.method(fsp, 'link', async (from: string, to: string) => {
        if (from === src) throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
        return realLink(from, to);
      });
    }
    try {
      const r = await fileActions.move({ src, dir: out }, ctx(src).c);
      assert.ok(!fs.existsSync(src));
      assert.equal(fs.readFileSync(r.location!, 'utf8').length, 100_000);
      assert.deepEqual(fs.readdirSync(out), ['far.jpg'], 'no temp file left behind');
    } finally {
      if (realSecondFs) fs.rmSync(out, { recursive: true, force: true });
    }
  });

  test('copy keeps the source; re-running it does not duplicate', async () => {
    const { src, out } = setup();
    const r = await fileActions.copy({ src, dir: out }, ctx(src).c);
    const again = await fileActions.copy({ src, dir: out, dest: r.location }, ctx(src).c);
    assert.equal(again.location, r.location);
    assert.ok(fs.existsSync(src));
    assert.deepEqual(fs.readdirSync(out), ['photo.jpg']);
  });

  test('sidecar: <file>.json next to the file (or in its own folder), valid JSON, replaced atomically', async () => {
    const { src, root } = setup();
    const doc = { outcome: 'adopt', results: [{ text: 'a', cosine: 0.5 }] };
    await fileActions.sidecar({ doc }, ctx(src).c);
    await fileActions.sidecar({ doc }, ctx(src).c);
    assert.deepEqual(JSON.parse(fs.readFileSync(`${src}.json`, 'utf8')), doc);
    assert.deepEqual(fs.readdirSync(path.dirname(src)).sort(), ['photo.jpg', 'photo.jpg.json']);
    const elsewhere = path.join(root, 'sidecars');
    await fileActions.sidecar({ doc, dir: elsewhere }, ctx(src).c);
    assert.ok(fs.existsSync(path.join(elsewhere, 'photo.jpg.json')));
  });
});
