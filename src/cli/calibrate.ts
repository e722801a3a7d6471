/**
 * `matchd calibrate`: choose a rule's bands from labelled examples. Reads the examples (calibrate-inputs.ts), scores
 * them through the library (batched, cached, with a progress bar), analyses them (core/calibrate/), prints the summary
 * and the YAML, writes the report folder (HTML with inline charts, PNG charts, JSON), and with --write puts the bands
 * into the config file, comments kept.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { analyse } from '../core/calibrate/analyse.ts';
import { snippet, writeIntoConfig } from '../core/calibrate/config-write.ts';
import { writeReport, summary, type ReportInput } from '../core/calibrate/report.ts';
import { scoreExamples, type Problem } from '../core/calibrate/score.ts';
import { loadConfig, resolveFrom, type Config, type Rule } from '../core/config.ts';
import { MatchdError } from '../core/errors.ts';
import { Matcher } from '../core/matcher.ts';
import type { Bands } from '../core/model/manifest.ts';
import { readPackage } from '../core/model/package.ts';
import { UsageError, defaultModelDir, positiveInt } from './args.ts';
import { readJournalLabels, readLabelledDir, readPairsFile, type Inputs } from './calibrate-inputs.ts';
import { readTextsFile } from './score.ts';

export const calibrateUsage = `matchd calibrate FILE | --from-journal | --dir DIR --texts FILE   [--config FILE [--rule NAME] | --model DIR]
  FILE                 labelled pairs: CSV with the columns image,text,label (other columns ignored; the web page's
                       /labels.csv is one) or JSON Lines {"image","text" or "texts","label"}; images relative to FILE
  --from-journal       the review decisions of the web page, from the --config's journal
  --dir DIR            a folder tree DIR/<label>/... of images, each scored against every text of --texts FILE
                       labels: match / no-match (yes/no, true/false, 1/0) or a band of the rule (its best band = match)
  --config FILE        the rule (--rule NAME; default: the config's only rule) and its model; --write needs it
  --model DIR          a model package instead (default: the demo), with its own bands
  --adopt-precision P  precision wanted in the top band (default 0.95)
  --reject-recall R    share of the matches kept out of the bottom band (default 0.95)
  --on cosine|score    what the thresholds compare (default: what the rule's bands compare)
  --out DIR            the report: report.html, histogram.png, precision-recall.png, roc.png, calibration.json
                       (default: ./calibration)
  --write              put the proposed bands (and range) into the --config file's rule, comments kept
  --bootstrap N        resamples for the 95 % intervals (default 1000; 0: none)   --seed N (default 1)
  --min-per-class N    fewer examples of a class than this is a warning (default 30)
  --json               the numbers as JSON on stdout instead of the summary`;

function fraction(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new UsageError(`Expected a number between 0 and 1 (exclusive) for --${name} but received ${JSON.stringify(v)}`);
  return n;
}

function progress(done: number, total: number, failed: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  process.stderr.write(`\rscoring [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} images${failed ? ` (${failed} failed)` : ''}`);
  if (done === total) process.stderr.write('\n');
}

interface Target {
  ruleName: string;
  rule: Pick<Rule, 'match' | 'range' | 'bands'>;
  modelDir: string;
  config?: { file: string; config: Config };
}

/** The rule calibrated and its model: from --config (and --rule), or a model package's own bands. */
function target(values: { config?: string; rule?: string; model?: string }): Target {
  if (values.config) {
    if (values.model) throw new UsageError('give --config or --model, not both (the config names its model)');
    const file = path.resolve(values.config);
    const config = loadConfig(file);
    const names = Object.keys(config.rules);
    const ruleName = values.rule ?? (names.length === 1 ? names[0]! : undefined);
    if (!ruleName) throw new UsageError(`--rule: the config has ${names.length} rules (${names.join(', ')}); name the one to calibrate`);
    const rule = config.rules[ruleName];
    if (!rule) throw new UsageError(`--rule: no rule '${ruleName}' in ${file} (rules: ${names.join(', ')})`);
    return { ruleName, rule, modelDir: resolveFrom(file, config.model.dir), config: { file, config } };
  }
  if (values.rule) throw new UsageError('--rule goes with --config');
  const modelDir = path.resolve(values.model ?? defaultModelDir);
  return { ruleName: 'my-rule', rule: { match: 'best' }, modelDir };
}

export async function calibrateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' }, rule: { type: 'string' }, model: { type: 'string' },
      'from-journal': { type: 'boolean', default: false }, dir: { type: 'string' }, texts: { type: 'string' },
      'adopt-precision': { type: 'string' }, 'reject-recall': { type: 'string' }, on: { type: 'string' },
      out: { type: 'string' }, write: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
      bootstrap: { type: 'string' }, seed: { type: 'string' }, 'min-per-class': { type: 'string' },
    },
  });
  const sources = [positionals.length > 0, values['from-journal'], values.dir !== undefined].filter(Boolean).length;
  if (sources !== 1 || positionals.length > 1) throw new UsageError(`give one of FILE, --from-journal or --dir DIR\n${calibrateUsage}`);
  if (values.dir !== undefined && !values.texts) throw new UsageError('--dir needs --texts FILE (the texts each image is scored against)');
  if (values.texts && values.dir === undefined) throw new UsageError('--texts goes with --dir');
  if (values.on !== undefined && values.on !== 'cosine' && values.on !== 'score') throw new UsageError(`Expected cosine or score for --on but received ${JSON.stringify(values.on)}`);
  if ((values.write || values['from-journal']) && !values.config) throw new UsageError(`${values.write ? '--write' : '--from-journal'} needs --config FILE`);
  const adoptPrecision = fraction('adopt-precision', values['adopt-precision'], 0.95);
  const rejectRecall = fraction('reject-recall', values['reject-recall'], 0.95);
  const rounds = values.bootstrap === '0' ? 0 : (positiveInt('bootstrap', values.bootstrap) ?? 1000);
  const seed = positiveInt('seed', values.seed) ?? 1;
  const minPerClass = positiveInt('min-per-class', values['min-per-class']) ?? 30;

  const t = target(values);
  const manifest = readPackage(t.modelDir).manifest;
  const bands: Bands = t.rule.bands ?? manifest.bands;
  const bandNames = bands.list.map((b) => b.name);
  let inputs: Inputs;
  let from: string;
  if (values['from-journal']) {
    const c = t.config!;
    const journal = resolveFrom(c.file, c.config.journal.path);
    inputs = readJournalLabels(journal, t.ruleName, (r) => (c.config.rules[r] ? (c.config.rules[r]!.bands ?? manifest.bands).list.map((b) => b.name) : undefined));
    from = `the review decisions in ${journal}`;
  } else if (values.dir !== undefined) {
    inputs = readLabelledDir(values.dir, readTextsFile(values.texts!), bandNames);
    from = `${values.dir} with the texts of ${values.texts}`;
  } else {
    inputs = readPairsFile(positionals[0]!, bandNames);
    from = positionals[0]!;
  }
  const report = (p: Problem) => process.stderr.write(`matchd: ${p.where}: ${p.code ? `${p.code}: ` : ''}${p.message}\n`);
  inputs.problems.forEach(report);

  const matcher = await Matcher.open(t.modelDir, t.config ? {
    engine: { provider: t.config.config.model.provider, intraOpThreads: t.config.config.model.intraOpThreads }, maxBatch: t.config.config.model.maxBatch,
    limits: { maxPixels: t.config.config.model.maxPixels, maxBytes: t.config.config.model.maxBytes },
  } : {});
  let scoredRun;
  try {
    const mapping = t.rule.range ? { mapping: 'linear' as const, range: t.rule.range } : matcher.scoreMapping;
    scoredRun = await scoreExamples(matcher, inputs.examples, { match: t.rule.match ?? 'best', mapping, progress });
  } finally {
    matcher.close();
  }
  scoredRun.problems.forEach(report);
  const problems = [...inputs.problems, ...scoredRun.problems];
  const on = (values.on ?? bands.on) as 'cosine' | 'score';
  const labelled = scoredRun.scored.map((s) => ({ value: on === 'cosine' ? s.cosine : s.score, match: s.match }));
  const counts = { match: labelled.filter((l) => l.match).length, noMatch: labelled.filter((l) => !l.match).length };
  if (!counts.match || !counts.noMatch) {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `calibration needs both classes: ${counts.match} match and ${counts.noMatch} no-match example(s) could be scored (${problems.length} left out; see above)`);
  }
  const linear = t.rule.range !== undefined || manifest.score.mapping !== 'sigmoid';
  const calibration = analyse(labelled, { adoptPrecision, rejectRecall, on, bands, proposeRange: linear && on === 'cosine', rounds, seed, minPerClass });
  const note = `calibrated by matchd calibrate ${new Date().toISOString().slice(0, 10)}: ${counts.match} match / ${counts.noMatch} no-match, AUC ${calibration.auc.toFixed(3)}, precision ≥ ${adoptPrecision}, recall ≥ ${rejectRecall}`;
  const yaml = snippet(t.ruleName, calibration.proposal, note);
  const input: ReportInput = {
    calibration, values: labelled, snippet: yaml, problems,
    subject: { rule: t.ruleName, model: `${manifest.name} ${manifest.version}`, inputs: from },
  };
  const files = await writeReport(path.resolve(values.out ?? 'calibration'), input);

  if (values.json) {
    const { curve: _curve, ...numbers } = calibration;
    process.stdout.write(JSON.stringify({ ...numbers, files, problems: problems.length }, null, 2) + '\n');
  } else {
    process.stdout.write(summary(input));
    for (const w of calibration.warnings) process.stdout.write(`warning: ${w}\n`);
    process.stdout.write(`\n${values.write ? '' : `# paste under rules: in your config (or run again with --write --config FILE)\n`}${yaml}\nreport: ${files.map((f) => (path.relative(process.cwd(), f).startsWith('..') ? f : path.relative(process.cwd(), f))).join(', ')}\n`);
  }
  if (problems.length) process.stderr.write(`matchd: ${problems.length} input(s) left out (listed above)\n`);
  if (values.write) {
    writeIntoConfig(t.config!.file, t.ruleName, calibration.proposal, note);
    process.stderr.write(`matchd: wrote rules.${t.ruleName}.bands${calibration.proposal.range ? ' and range' : ''} into ${t.config!.file}\n`);
  }
  return 0;
}
