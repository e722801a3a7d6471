/**
 * The scoring loop of a node that works (roles all and worker): lease queued jobs while the pipeline has room, score
 * each image against its rule's texts (or its own), and record the result with its actions in one journal write.
 * Leases left by a dead process are taken back at start and every second after; a job tried `maxAttempts` times is
 * failed rather than retried forever (a poison image must not crash the daemon in a loop).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Config, Rule } from './config.ts';
import { MatchdError, isMatchdError, type ErrorCode } from './errors.ts';
import type { JournalApi } from './journal-api.ts';
import type { JournalHealth } from './journal-health.ts';
import type { Job } from './journal.ts';
import type { Logger } from './log.ts';
import type { ImageEmbedding, Matcher, TextEmbedding } from './matcher.ts';
import type { Metrics } from './metrics.ts';
import { decide, planActions, resultDocument, shownPath, type ScoredOutcome } from './router.ts';
import { scoreTexts } from './scoring.ts';
import type { JobTexts } from './texts.ts';

export interface ScorerOptions {
  config: Config;
  baseDir: string;
  journal: JournalApi;
  health: JournalHealth;
  matcher: Matcher;
  texts: JobTexts;
  metrics: Metrics;
  log: Logger;
  /** On a shared journal: this node's name (for MATCHD_IMAGE_UNREACHABLE); its image paths are checked first. */
  sharedNode?: string;
  /** A job's result and actions were recorded. */
  onRecorded(job: Job, rule: Rule, o: ScoredOutcome): void;
}

export class Scorer {
  private timer: NodeJS.Timeout | undefined;
  private queued = false;
  private stopped = false;
  private depthAt = 0;

  constructor(private readonly o: ScorerOptions) {}

  /** Take back the leases a previous process left, then lease now and every second. */
  start(): void {
    this.recover(true);
    this.timer = setInterval(() => {
      if (!this.o.health.ok) return;
      this.recover(false);
      this.pump();
    }, 1000);
    this.pump();
  }

  /** No more leasing (what is in the pipeline finishes). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private recover(startup: boolean): void {
    const { requeued, abandoned } = this.o.health.run('recover leases', () => this.o.journal.recover(this.o.config.journal.maxAttempts, startup), { requeued: 0, abandoned: [] });
    for (const job of abandoned) {
      this.fail(job, new MatchdError('MATCHD_INTERNAL', startup ? `scoring this image was interrupted ${job.attempts} times; giving up` : `scoring timed out ${job.attempts} times; giving up`));
    }
    if (!requeued) return;
    if (startup) this.o.log.info({ requeued }, 're-queued jobs left running by a previous process');
    else this.o.log.warn({ requeued }, 're-queued jobs whose lease expired');
  }

  /** Move queued jobs into the pipeline while it has room (coalesced to once per tick). */
  pump(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      if (this.stopped || !this.o.health.ok) return;
      const { journal, health, matcher, metrics } = this.o;
      const jobs = health.run('lease jobs', () => journal.lease(matcher.pipeline.room, this.o.config.journal.leaseMs), []);
      const now = Date.now();
      const asError = (err: unknown) => ({ ok: false as const, error: isMatchdError(err) ? err : new MatchdError('MATCHD_INTERNAL', String(err)) });
      for (const job of jobs) {
        metrics.queueSeconds.observe((now - job.createdAt) / 1000);
        if (job.extra.failed) {
          this.fail(job, new MatchdError(job.extra.failed.code as ErrorCode, job.extra.failed.message));
          continue;
        }
        if (this.o.sharedNode !== undefined && !fs.existsSync(job.imagePath)) {
          this.fail(job, new MatchdError('MATCHD_IMAGE_UNREACHABLE', `node ${this.o.sharedNode} (${os.hostname()}) cannot see ${job.imagePath}, journalled by source '${job.source}': on several machines, watched folders and journal.spoolDir must be on storage every worker mounts at the same path`));
          continue;
        }
        // The job's own texts are embedded alongside its image (batched with every other caller's, cached).
        Promise.all([
          matcher.pipeline.embedImage(job.imagePath),
          this.o.texts.of(job).then((list) => ({ ok: true as const, list }), asError),
        ]).then(
          ([embedding, t]) => this.finish(job, embedding.ok && !t.ok ? t : embedding, t.ok ? t.list : []),
          (err: unknown) => this.finish(job, asError(err), []),
        );
      }
      // On a shared journal the count is a round trip: once a second is enough for a gauge.
      if (this.o.sharedNode === undefined || now - this.depthAt >= 1000) {
        this.depthAt = now;
        metrics.queueDepth.set(health.run('count queued jobs', () => journal.queuedCount(), 0));
      }
    });
  }

  private finish(job: Job, embedding: ImageEmbedding, texts: TextEmbedding[]): void {
    try {
      if (!embedding.ok) {
        this.fail(job, embedding.error);
        return;
      }
      const rule = this.o.config.rules[job.rule] as Rule;
      const m = this.o.matcher;
      const results = scoreTexts(embedding.vector, texts, rule.range ?? m.scoreMapping, rule.bands ?? m.bands);
      this.record(job, rule, decide(rule, results));
    } catch (err) {
      this.o.log.error({ err, jobId: job.id }, 'could not record a result; the job stays journalled and is retried after its lease');
    } finally {
      this.pump();
    }
  }

  /** A job that cannot be scored goes to the rule's `error` outcome, with its code and message. */
  fail(job: Job, error: MatchdError): void {
    const rule = this.o.config.rules[job.rule];
    this.o.metrics.errors.inc({ code: error.code });
    // Errors name the image file; for an item whose file is a download (an S3 object), name the item instead.
    const shown = shownPath(job);
    const message = shown === job.imagePath ? error.message : error.message.split(job.imagePath).join(shown);
    this.o.log.warn({ jobId: job.id, file: shown, code: error.code, err: message }, 'image could not be scored');
    const outcome: ScoredOutcome = { outcome: 'error', error: { code: error.code, message } };
    if (!rule) {
      this.o.health.run('record a failure', () => this.o.journal.complete(job.id, 'error', outcome, [], true), undefined);
      return;
    }
    this.record(job, rule, outcome, true);
  }

  private record(job: Job, rule: Rule, o: ScoredOutcome, failed = false): void {
    const m = this.o.matcher;
    const doc = resultDocument(job, o, { name: m.manifest.name, version: m.manifest.version, provider: m.provider });
    // Not recorded (the journal is paused): the job keeps its lease and is scored again once that expires.
    const recorded = this.o.health.run('record a result', () => {
      this.o.journal.complete(job.id, o.outcome, doc, planActions(rule, job, o, doc, this.o.baseDir), failed);
      return true;
    }, false);
    if (!recorded) return;
    this.o.metrics.jobs.inc({ outcome: o.outcome });
    this.o.onRecorded(job, rule, o);
  }
}
