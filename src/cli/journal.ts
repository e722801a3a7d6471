/** `matchd journal check | recover | init [--config FILE]`: inspect, salvage or start the journal a config names. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { inspectJournalFile } from '../core/journal-file.ts';
import { checkJournal, recoverJournal } from '../core/journal-recover.ts';
import { Journal } from '../core/journal.ts';
import { UsageError, packageRoot } from './args.ts';
import { journalPath } from './replay.ts';

export const journalUsage = `matchd journal check [--config FILE]     full integrity check of the journal (reads only); exit 1 when damaged
matchd journal recover [--config FILE]   salvage a damaged journal into a new one (stop matchd first; the old file is kept)
matchd journal init [--config FILE]      create the journal, or initialise an existing empty (0-byte) file`;

export async function journalCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
  const [sub, ...extra] = positionals;
  if (!sub || extra.length || !['check', 'recover', 'init'].includes(sub)) throw new UsageError(`journal takes one of check, recover, init\n${journalUsage}`);
  const config = path.resolve(values.config ?? path.join(packageRoot, 'config', 'default.yaml'));
  const file = journalPath(config);
  const out = (s: string) => process.stdout.write(s + '\n');

  if (sub === 'init') {
    const before = inspectJournalFile(file, { init: true });
    new Journal(file, Date.now, { init: true }).close();
    out(before === 'sqlite' ? `${file} is already a matchd journal; left as it is` : `${file}: new, empty journal ${before === 'empty' ? 'written into the empty file' : 'created'}`);
    return 0;
  }

  const report = checkJournal(file);
  const counts = Object.entries(report.tables).map(([t, v]) => `${t} ${'rows' in v ? v.rows : `unreadable (${v.error})`}`).join(', ');
  if (sub === 'check') {
    out(`${file}: ${report.ok ? 'ok' : 'DAMAGED'} — ${counts}`);
    for (const p of report.problems) out(`  ${p}`);
    if (report.ok) return 0;
    throw new MatchdError('MATCHD_JOURNAL_CORRUPT', `${file} is damaged (${report.problems.length} problem(s) listed above); stop matchd and run \`matchd journal recover --config ${config}\``);
  }

  if (report.ok) {
    out(`${file}: ok — ${counts}; nothing to recover`);
    return 0;
  }
  const r = recoverJournal(file);
  out(`${file}: recovered into a new journal; the damaged file is kept as ${r.keptAs}`);
  for (const [t, s] of Object.entries(r.tables)) {
    const gaps = s.gaps.map(([a, b]) => (b >= Number.MAX_SAFE_INTEGER ? `${a}…` : a === b ? `${a}` : `${a}–${b}`)).join(', ');
    out(`  ${t}: ${s.read - s.dropped} row(s) kept${s.dropped ? `, ${s.dropped} dropped (their job was lost)` : ''}${gaps ? `; unreadable rowids: ${gaps}` : ''}`);
  }
  out('start matchd again: jobs left running are re-queued and pending actions run');
  return 0;
}
