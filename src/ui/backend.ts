/**
 * What the web page may use of the daemon: the journal's read queries, the review decision, scoring one image now
 * (the same pipeline and limits as POST /v1/score), and the config. It never sees the engine or the matcher.
 */
import type { Config } from '../core/config.ts';
import type { DecideResult } from '../core/journal-review.ts';
import type { Journal } from '../core/journal.ts';
import type { Logger } from '../core/log.ts';
import type { Bands } from '../core/model/manifest.ts';
import type { ScoreRequest, ScoreResult } from '../core/plugin.ts';
import type { Decision } from '../core/review.ts';

export interface UiBackend {
  readonly config: Config;
  readonly log: Logger;
  /** Where the try-it page spools uploads (deleted after scoring). */
  readonly spoolDir: string;
  model(): { name: string; version: string; provider: string };
  /** A rule's bands (its own, else the model's). */
  bands(rule: string): Bands;
  /** A read through the journal's health guard (a fault throws a coded error, and pauses the daemon as usual). */
  read<T>(what: string, fn: (journal: Journal) => T): T;
  decide(jobId: number, decision: Decision, reviewer: string): DecideResult;
  score(rule: string, req: ScoreRequest): Promise<ScoreResult>;
}
