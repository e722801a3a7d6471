// Folder source config: defaults, errors that name the field, unusable roots refused at start().
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { assertPlugin } from '../../../src/core/plugin.ts';
import { DEFAULT_EXTENSIONS, DEFAULT_IGNORE, FolderConfigSchema, folderPlugin } from '../../../src/plugins/folder/index.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { fakeContext } from '../../fixtures/plugin-context.ts';

/** The problems of an invalid options block, as `path: message` lines. */
function problems(options: unknown): string[] {
  const r = FolderConfigSchema.safeParse(options);
  assert.ok(!r.success, `expected ${JSON.stringify(options)} to be refused`);
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('folder source: config', () => {
  after(cleanupTmpDirs);

  test('is a valid plugin named folder', () => {
    assertPlugin(folderPlugin, 'test');
    assert.equal(folderPlugin.name, 'folder');
  });

  test('defaults are applied', () => {
    const c = FolderConfigSchema.parse({ paths: ['in'] });
    assert.deepEqual(c, {
      paths: ['in'],
      recursive: false,
      create: false,
      ignore: [],
      extensions: [...DEFAULT_EXTENSIONS],
      stabilityMs: 1000,
      minAgeMs: 500,
      usePolling: false,
      pollIntervalMs: 1000,
      rescanMs: 30_000,
      companions: { enabled: true, waitMs: 10_000, manifests: ['matchd-manifest.csv', 'matchd-manifest.jsonl'], maxBytes: 4 * 1024 * 1024 },
    });
    assert.deepEqual(DEFAULT_IGNORE, ['.*', '*.tmp', '*.part', '*.crdownload', '~$*', '@eaDir']);
    assert.equal(FolderConfigSchema.parse({ paths: ['in'], rule: 'r', extensions: [] }).rule, 'r');
  });

  test('errors name the field', () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'paths'],
      [{ paths: [] }, 'paths'],
      [{ paths: [''] }, 'paths'],
      [{ paths: 'in' }, 'paths'],
      [{ paths: ['in'], recursive: 'yes' }, 'recursive'],
      [{ paths: ['in'], stabilityMs: -1 }, 'stabilityMs'],
      [{ paths: ['in'], minAgeMs: 1.5 }, 'minAgeMs'],
      [{ paths: ['in'], rescanMs: '30s' }, 'rescanMs'],
      [{ paths: ['in'], pollIntervalMs: 0 }, 'pollIntervalMs'],
      [{ paths: ['in'], usePolling: 1 }, 'usePolling'],
      [{ paths: ['in'], extensions: ['*.jpg'] }, 'extensions'],
      [{ paths: ['in'], ignore: [''] }, 'ignore'],
      [{ paths: ['in'], rule: '' }, 'rule'],
      [{ paths: ['in'], awaitWriteFinish: true }, 'awaitWriteFinish'],
    ];
    for (const [options, field] of cases) {
      const p = problems(options);
      assert.ok(p.some((line) => line.includes(field)), `${JSON.stringify(options)} → ${JSON.stringify(p)} should name ${field}`);
    }
    assert.ok(problems(null).length > 0);
  });

  test('start() refuses a missing root, naming it', async () => {
    const dir = tmpDir('matchd-folder-');
    const missing = path.join(dir, 'nope');
    const src = await folderPlugin.create(fakeContext(), FolderConfigSchema.parse({ paths: [dir, missing] }));
    await assert.rejects(src.start(), (e: Error) => e.message.includes(missing) && /does not exist/.test(e.message));
    await src.stop();
  });

  test('create: true makes a missing root (nested) and watches it', async () => {
    const dir = tmpDir('matchd-folder-');
    const missing = path.join(dir, 'a', 'inbox');
    const src = await folderPlugin.create(fakeContext(), FolderConfigSchema.parse({ paths: [missing], create: true }));
    await src.start();
    assert.ok(statSync(missing).isDirectory());
    await src.stop();
  });

  test('start() refuses a root that is a file; relative roots resolve through ctx.resolvePath', async () => {
    const dir = tmpDir('matchd-folder-');
    writeFileSync(path.join(dir, 'file.jpg'), 'x');
    const src = await folderPlugin.create(fakeContext({ baseDir: dir }), FolderConfigSchema.parse({ paths: ['file.jpg'] }));
    await assert.rejects(src.start(), (e: Error) => e.message.includes(path.join(dir, 'file.jpg')) && /not a directory/.test(e.message));
    await src.stop();
  });
});
