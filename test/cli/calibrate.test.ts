// `matchd calibrate` as a user runs it, on the demo model with sets whose truth is known: colour words that separate
// perfectly (AUC 1, thresholds between the classes), a noisy red-share set whose thresholds and AUC are known
// analytically, a folder tree, the review decisions in a journal; --write into a commented config (comments kept,
// validated, refused for a config that is already invalid); and bad files, reported per line or refused clearly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { parse } from 'yaml';
import { loadConfig } from '../../src/core/config.ts';
import { redCosine, redShareImage, solidImage, writePairs } from '../fixtures/calibrate.ts';
import { waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot } from '../fixtures/packages.ts';
import { jobsIn, startDaemon, stopDaemons } from '../fixtures/ui.ts';

function calibrate(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'calibrate', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** 12 images of each colour; matches: each with its own colour word; non-matches: each with another's. */
async function colourSet(dir: string): Promise<string> {
  const rows: { image: string; text: string; label: string }[] = [];
  const colours = ['red', 'blue', 'green'] as const;
  for (const [ci, c] of colours.entries()) {
    for (let i = 0; i < 12; i++) {
      const image = path.join(dir, `${c}-${i}.png`);
      await solidImage(image, c, i);
      rows.push({ image, text: `a ${c} object`, label: 'match' });
      rows.push({ image, text: `a ${colours[(ci + 1) % 3]} object`, label: 'no-match' });
    }
  }
  const file = path.join(dir, 'pairs.csv');
  writePairs(file, rows);
  return file;
}

describe('matchd calibrate', () => {
  after(async () => {
    await stopDaemons();
    cleanupTmpDirs();
  });

  test('colour words that separate perfectly: AUC 1.000, the thresholds between the classes, an HTML report and PNG charts', async () => {
    const dir = tmpDir('matchd-cal-');
    const pairs = await colourSet(dir);
    const out = path.join(dir, 'report');
    const r = calibrate(pairs, '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^calibrated my-rule \(demo-colours 1\) on 36 match and 36 no-match example\(s\), thresholds on the cosine$/m);
    assert.match(r.stdout, /^ROC AUC 1\.000 \(95 % interval 1\.000–1\.000\)$/m);
    const c = JSON.parse(fs.readFileSync(path.join(out, 'calibration.json'), 'utf8'));
    assert.equal(c.auc, 1);
    assert.deepEqual(c.shares.match, [1, 0, 0], 'every match in the top band');
    assert.deepEqual(c.shares.noMatch, [0, 0, 1], 'every non-match in the bottom band');
    const yaml = parse(r.stdout.slice(r.stdout.indexOf('\nrules:\n'), r.stdout.indexOf('\nreport:')));
    assert.equal(yaml.rules['my-rule'].bands.list[0].min, c.thresholds.adopt);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /<th>ROC AUC<\/th><td>1\.000<\/td>/);
    assert.equal((html.match(/<svg /g) ?? []).length, 3, 'three charts inline');
    assert.doesNotMatch(html, /(src|href)="https?:/, 'nothing fetched');
    for (const name of ['histogram', 'precision-recall', 'roc']) {
      const m = await sharp(path.join(out, `${name}.png`)).metadata();
      assert.deepEqual([m.format, m.width, m.height], ['png', 1520, 760], name);
    }
  });

  test('a noisy set with known overlap: thresholds and AUC within a tolerance of the analytic ones', async () => {
    // Red share p: matches evenly over [0.30, 0.60], non-matches over [0.10, 0.40] (300 each). For a threshold t in
    // the overlap, precision = (0.6 − t) / (1 − 2t): 0.95 at t = 0.3889; 95 % of matches are above 0.315; AUC = 1 −
    // 0.1² / 2 / 0.3² = 0.9444. The demo's cosine is f(p) = p / √(p² + (1 − p)²), monotone, so the thresholds on the
    // cosine are f(0.3889) and f(0.315).
    const dir = tmpDir('matchd-cal-');
    const rows: { image: string; text: string; label: string }[] = [];
    for (let i = 0; i < 300; i++) {
      for (const [label, lo] of [['match', 0.3], ['no-match', 0.1]] as const) {
        const image = path.join(dir, `${label}-${i}.png`);
        await redShareImage(image, lo + (0.3 * (i + 0.5)) / 300);
        rows.push({ image, text: 'red', label });
      }
    }
    writePairs(path.join(dir, 'noisy.csv'), rows);
    const r = calibrate(path.join(dir, 'noisy.csv'), '--out', path.join(dir, 'out'), '--json', '--bootstrap', '300');
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    const adopt = redCosine(0.35 / 0.9);
    const reject = redCosine(0.6 - 0.95 * 0.3);
    assert.ok(Math.abs(c.thresholds.adopt - adopt) < 0.012, `adopt ${c.thresholds.adopt} vs ${adopt.toFixed(4)}`);
    assert.ok(Math.abs(c.thresholds.reject - reject) < 0.012, `reject ${c.thresholds.reject} vs ${reject.toFixed(4)}`);
    assert.ok(Math.abs(c.auc - (1 - 0.005 / 0.09)) < 0.01, `AUC ${c.auc}`);
    assert.ok(c.bootstrap.adopt.low <= adopt + 0.005 && c.bootstrap.adopt.high >= adopt - 0.005, JSON.stringify(c.bootstrap.adopt));
    assert.ok(Math.abs(c.shares.match[2] - 0.05) < 0.01, 'about 5 % of matches below reject');
    assert.deepEqual(c.proposal.bands.list.map((b: { name: string }) => b.name), ['adopt', 'review', 'reject']);
    assert.deepEqual(c.warnings, ['the proposal has no place for band(s) improve (calibration finds two boundaries); their jobs would go to adopt / review / reject']);
  });

  test('--dir DIR/<label>/ with a texts file; an unknown label folder and a stray file are reported, not fatal', async () => {
    const dir = tmpDir('matchd-cal-');
    for (const [label, colour] of [['match', 'red'], ['no-match', 'blue'], ['maybe', 'green']] as const) {
      fs.mkdirSync(path.join(dir, label, 'sub'), { recursive: true });
      for (let i = 0; i < 5; i++) await solidImage(path.join(dir, label, i % 2 ? 'sub' : '', `${i}.png`), colour, i);
    }
    fs.writeFileSync(path.join(dir, 'stray.png'), 'x');
    fs.writeFileSync(path.join(dir, 'match', 'notes.txt'), 'x');
    const texts = path.join(tmpDir('matchd-cal-'), 'texts.txt');
    fs.writeFileSync(texts, '# the rule\'s texts\na red object\na crimson thing\n');
    const r = calibrate('--dir', dir, '--texts', texts, '--out', path.join(dir, '..', 'out'), '--bootstrap', '0');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /on 5 match and 5 no-match example\(s\)/);
    assert.match(r.stdout, /^ROC AUC 1\.000$/m);
    assert.match(r.stderr, /maybe: unknown label "maybe" \(expected match, no-match, or a band: adopt, review, improve, reject\); the folder is left out/);
    assert.match(r.stderr, /stray\.png: not in a label folder/);
    assert.match(r.stderr, /notes\.txt: skipped: not an image extension/);
    assert.match(r.stdout, /warning: only 5 match example\(s\) \(at least 30 recommended\)/);
  });

  test('--from-journal: the review decisions made on the web page, each image where it is now', async () => {
    const ws = workspace({ rules: { colours: { texts: ['a red product'], actions: { default: [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }] } } } });
    const d = await startDaemon(ws);
    // Red shares 0.28–0.33 score 0.31–0.38 against "a red product" (0.8575 · f(p): "a" and "product" are no colour):
    // all in the review band.
    const shares = [0.28, 0.29, 0.3, 0.31, 0.32, 0.33];
    for (const [i, p] of shares.entries()) await redShareImage(path.join(ws.inbox, `p${i}.png`), p);
    await waitFor(() => jobsIn(d, 'review').length === shares.length && d.journalForTools.counts().outboxPending === 0, 'all six in review, their files moved');
    const ids = jobsIn(d, 'review');
    const byShare = ids.map((id) => ({ id, p: Number(/p(\d)/.exec(d.journalForTools.get(id)!.imagePath)![1]) }));
    for (const { id, p } of byShare) assert.ok(d.review(id, { decision: p >= 3 ? 'approve' : 'reject' }, 'alice').ok);
    await waitFor(() => fs.readdirSync(path.join(ws.sorted, 'review')).length === 0, 'every decided file moved');
    await stopDaemons();
    const r = calibrate('--from-journal', '--config', ws.configFile, '--out', path.join(ws.root, 'cal'), '--json', '--bootstrap', '100', '--min-per-class', '3');
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    assert.deepEqual(c.n, { match: 3, noMatch: 3 });
    assert.equal(c.auc, 1);
    assert.deepEqual([c.shares.match[0], c.shares.noMatch[0], c.shares.noMatch[2]], [1, 0, 1], 'the approved above, the rejected below');
    assert.ok(c.thresholds.adopt > 0.8575 * redCosine(0.3) && c.thresholds.adopt <= 0.8575 * redCosine(0.31) + 0.001, JSON.stringify(c.thresholds));
    assert.equal(c.problems, 0, 'every decided image found where its label says');
  });

  test('--write into a commented config: the bands are replaced, every comment kept, the result validates; twice is the same', async () => {
    const dir = tmpDir('matchd-cal-');
    const pairs = await colourSet(dir);
    const cfg = path.join(dir, 'matchd.yaml');
    const original = `# My matchd config: keep this comment.
model:
  dir: ${demoDir}   # the demo model
journal: { path: var/j.db }
rules:
  # the only rule
  colours:
    texts: [a red object]   # what we look for
    match: best
    actions:
      default: [{ move: { to: "sorted/{band}" } }]   # every band
`;
    fs.writeFileSync(cfg, original);
    const r = calibrate(pairs, '--config', cfg, '--write', '--out', path.join(dir, 'out'), '--bootstrap', '0');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote rules\.colours\.bands and range into /);
    const written = fs.readFileSync(cfg, 'utf8');
    for (const comment of ['# My matchd config: keep this comment.', '# the demo model', '# the only rule', '# what we look for', '# every band']) {
      assert.ok(written.includes(comment), `kept: ${comment}\n${written}`);
    }
    assert.match(written, /# calibrated by matchd calibrate \d{4}-\d\d-\d\d: 36 match \/ 36 no-match, AUC 1\.000/);
    const c = loadConfig(cfg);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'calibration.json'), 'utf8'));
    assert.deepEqual(c.rules.colours!.bands, json.proposal.bands);
    assert.deepEqual(c.rules.colours!.range, json.proposal.range);
    assert.equal(c.rules.colours!.match, 'best');
    const validate = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'validate', cfg], { encoding: 'utf8' });
    assert.equal(validate.status, 0, validate.stderr);
    const again = calibrate(pairs, '--config', cfg, '--write', '--out', path.join(dir, 'out'), '--bootstrap', '0');
    assert.equal(again.code, 0, again.stderr);
    const twice = fs.readFileSync(cfg, 'utf8');
    assert.equal((twice.match(/^ {4}bands:/gm) ?? []).length, 1);
    assert.deepEqual(loadConfig(cfg).rules.colours, c.rules.colours);

    // A config that is invalid as it is: nothing written.
    const broken = original.replace('match: best', 'match: sometimes');
    fs.writeFileSync(cfg, broken);
    const refused = calibrate(pairs, '--config', cfg, '--write', '--out', path.join(dir, 'out'), '--bootstrap', '0');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^matchd: MATCHD_CONFIG_INVALID: .*rules\.colours\.match/ms);
    assert.equal(fs.readFileSync(cfg, 'utf8'), broken);
  });

  test('bad files: per-line problems with line numbers are not fatal; a file that is not CSV / JSON Lines is refused', async () => {
    const dir = tmpDir('matchd-cal-');
    for (let i = 0; i < 4; i++) {
      await solidImage(path.join(dir, `r${i}.png`), 'red', i);
      await solidImage(path.join(dir, `b${i}.png`), 'blue', i);
    }
    const lines = [
      ...[0, 1, 2, 3].map((i) => JSON.stringify({ image: `r${i}.png`, text: 'a red object', label: 'yes' })),
      ...[0, 1, 2, 3].map((i) => JSON.stringify({ image: `b${i}.png`, text: 'a red object', label: 'reject' })),
      '{"image": "r0.png", "text": "a red object", "label": "perhaps"}',
      '{not json',
      JSON.stringify({ image: 'gone.png', text: 'a red object', label: 'match' }),
      JSON.stringify({ image: 'r1.png', label: 'match' }),
    ];
    fs.writeFileSync(path.join(dir, 'pairs.jsonl'), lines.join('\n') + '\n');
    const r = calibrate(path.join(dir, 'pairs.jsonl'), '--out', path.join(dir, 'out'), '--bootstrap', '0');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /on 4 match and 4 no-match example\(s\)/);
    assert.match(r.stderr, /pairs\.jsonl line 9: unknown label "perhaps"/);
    assert.match(r.stderr, /pairs\.jsonl line 10: not JSON/);
    assert.match(r.stderr, /pairs\.jsonl line 11: MATCHD_IMAGE_DECODE: image ".*gone\.png": cannot open: file not found/);
    assert.match(r.stderr, /pairs\.jsonl line 12: no text/);
    assert.match(r.stderr, /matchd: 4 input\(s\) left out/);

    const png = path.join(dir, 'labels.csv');
    fs.copyFileSync(path.join(dir, 'r0.png'), png);
    const binary = calibrate(png);
    assert.equal(binary.code, 1);
    assert.match(binary.stderr, /^matchd: MATCHD_CALIBRATE_INPUT: .*labels\.csv is not CSV or JSON Lines: it holds binary data$/m);
    const cols = path.join(dir, 'cols.csv');
    fs.writeFileSync(cols, 'file,caption,verdict\nr0.png,a red object,match\n');
    const noCols = calibrate(cols);
    assert.equal(noCols.code, 1);
    assert.match(noCols.stderr, /MATCHD_CALIBRATE_INPUT: .*cols\.csv is not a labelled pairs file: its first line must name the columns image, text and label \(missing: image, text, label/);
    const one = path.join(dir, 'one.csv');
    fs.writeFileSync(one, 'image,text,label\nr0.png,a red object,match\nr1.png,a red object,match\n');
    const oneClass = calibrate(one, '--out', path.join(dir, 'out'));
    assert.equal(oneClass.code, 1);
    assert.match(oneClass.stderr, /MATCHD_CALIBRATE_INPUT: calibration needs both classes: 2 match and 0 no-match/);
    assert.equal(calibrate().code, 2);
    assert.match(calibrate(one, '--adopt-precision', '1.5').stderr, /Expected a number between 0 and 1 \(exclusive\) for --adopt-precision but received "1\.5"/);
    assert.match(calibrate(one, '--write').stderr, /--write needs --config FILE/);
  });
});
