/**
 * The parts every scenario's BENCHMARKS.md section shares, rendered one way: the heading with date, machine and the
 * facts of the run, the reproduce block, and the target bullets. A scenario adds its own tables and notes after.
 */
import { describeMachine, type MachineInfo } from './lib.ts';

export interface SectionHead {
  /** The heading's text, without `## `. */
  title: string;
  /** ISO date-time of the run (only the date is shown). */
  date: string;
  machine: MachineInfo;
  /** More `- ` bullets after Date and Machine (model, versions, settings...). */
  facts?: readonly string[];
  /** `- Reproduce (label):` and a sh block of the commands, then `after` lines. */
  reproduce: { label?: string; commands: readonly string[]; after?: readonly string[] };
}

/** The section's first lines, ending with the reproduce block (no trailing blank line). */
export function sectionHead(h: SectionHead): string[] {
  return [
    `## ${h.title}`,
    '',
    `- Date: ${h.date.slice(0, 10)}`,
    `- Machine: ${describeMachine(h.machine)}`,
    ...(h.facts ?? []).map((f) => `- ${f}`),
    `- Reproduce${h.reproduce.label ? ` (${h.reproduce.label})` : ''}:`,
    '',
    '  ```sh',
    ...h.reproduce.commands.map((c) => `  ${c}`),
    '  ```',
    ...(h.reproduce.after ?? []),
  ];
}

/** `node --import tsx bench/FILE` with this run's arguments (less --json): the command that made the figures. */
export function rerunCommand(file: string, argv: readonly string[]): string {
  const args = argv.filter((a) => a !== '--json').join(' ');
  return `node --import tsx bench/${file}${args ? ` ${args}` : ''}`;
}

/** One bullet a target: ✅ met, ❌ not met, ℹ️ information only (met: null). */
export function targetBullets(targets: readonly { met: boolean | null; line: string }[]): string[] {
  return targets.map((t) => `- ${t.met === null ? 'ℹ️' : t.met ? '✅' : '❌'} ${t.line}`);
}

/** `### Notes` and a bullet a note; nothing when there are none. */
export function notesBlock(notes: readonly string[]): string[] {
  return notes.length ? ['', '### Notes', '', ...notes.map((n) => `- ${n}`)] : [];
}
