// Folder source filters: glob syntax, default ignores, extension allow-list.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PathFilter, globToRegExp } from '../../../src/plugins/folder/filter.ts';

describe('folder source: filters', () => {
  test('globs: * ? ** [..] [!..] {a,b} and escapes', () => {
    const m = (glob: string, s: string) => globToRegExp(glob).test(s);
    assert.ok(m('*.tmp', 'x.tmp') && !m('*.tmp', 'x.tmp.jpg') && !m('*.tmp', 'a/x.tmp'));
    assert.ok(m('img?.jpg', 'img1.jpg') && !m('img?.jpg', 'img12.jpg'));
    assert.ok(m('raw/**', 'raw/a/b.jpg') && m('**/cache', 'cache') && m('**/cache', 'a/b/cache') && !m('**/cache', 'xcache'));
    assert.ok(m('a/**/b.jpg', 'a/b.jpg') && m('a/**/b.jpg', 'a/x/y/b.jpg'));
    assert.ok(m('[ab]*.jpg', 'a1.jpg') && !m('[ab]*.jpg', 'c1.jpg') && m('[!ab]*.jpg', 'c1.jpg') && !m('[!ab]*.jpg', 'a1.jpg'));
    assert.ok(m('*.{raw,cr2}', 'x.CR2') && m('*.{raw,cr2}', 'x.raw') && !m('*.{raw,cr2}', 'x.jpg'));
    assert.ok(m('~$*', '~$x.jpg') && m('a+b(1).jpg', 'a+b(1).jpg') && m('\\*.jpg', '*.jpg') && !m('\\*.jpg', 'x.jpg'));
    assert.ok(m('[unclosed', '[unclosed') && m('{unclosed', '{unclosed'));
  });

  test('default ignores cover dotfiles, partial downloads, lock files and @eaDir at any depth', () => {
    const f = new PathFilter({ extensions: [] });
    for (const rel of ['.hidden.jpg', 'x.tmp', 'x.part', 'x.crdownload', 'X.TMP', '~$x.jpg', '@eaDir/x.jpg', 'a/@eaDir/b/x.jpg', '.git/x.jpg', 'a/.cache/x.jpg']) {
      assert.ok(f.ignores(rel), rel);
      assert.ok(!f.acceptsFile(rel), rel);
    }
    for (const rel of ['x.jpg', 'a/b/x.jpg', 'eaDir/x.jpg', 'notes.txt', 'x.part.jpg']) assert.ok(f.acceptsFile(rel), rel);
    assert.ok(!f.ignores(''), 'the root itself is never ignored');
  });

  test('custom globs: name globs match any segment, path globs match from the root', () => {
    const f = new PathFilter({ ignore: ['skip-*', 'raw/**', '/drafts/', 'a/b'] });
    assert.ok(f.ignores('skip-me.jpg') && f.ignores('x/skip-dir/y.jpg'));
    assert.ok(f.ignores('raw/y.jpg') && !f.ignores('x/raw/y.jpg'));
    assert.ok(f.ignores('drafts') && f.ignores('drafts/y.jpg') && !f.ignores('x/drafts/y.jpg'));
    assert.ok(f.ignores('a/b/c.jpg') && !f.ignores('a/c.jpg'));
  });

  test('extensions: case-insensitive, dot optional, [] means every file', () => {
    const d = new PathFilter();
    assert.ok(d.acceptsFile('a.JPG') && d.acceptsFile('b.heic') && d.acceptsFile('c.tiff'));
    assert.ok(!d.acceptsFile('notes.txt') && !d.acceptsFile('noext') && !d.acceptsFile('a.jpg.txt'));
    const png = new PathFilter({ extensions: ['.PNG'] });
    assert.ok(png.acceptsFile('x.png') && !png.acceptsFile('x.jpg'));
    const all = new PathFilter({ extensions: [] });
    assert.ok(all.acceptsFile('notes.txt') && all.acceptsFile('noext'));
  });
});
