/**
 * The daemon: sources submit jobs → journal (queued) → dynamic batcher → matcher → rule → outcome →
 * journal (done + outbox, one transaction) → action runner. SIGTERM drains: intake stops, in-flight batches
 * finish (or stay journalled for the next start), due actions run, everything closes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ActionRunner, type ActionHandler } from './actions/runner.ts';
import { ActivityLog } from './activity-log.ts';
import { fileActions } from './actions/file-actions.ts';
import { outputDirs, sweepStaleTemps } from './actions/temp-files.ts';
import { AdminServer, type Health } from './admin.ts';
import { endpointCallbacks, isEndpointCallback } from './callbacks/endpoints.ts';
import { CORE_ACTIONS, parseSourceOptions, sourceName, type Config, type Rule } from './config.ts';
import { MatchdError, isMatchdError, type ErrorCode } from './errors.ts';
import { admit, ruleTexts } from './intake.ts';
import { checkItem } from './item.ts';
import { JournalHealth } from './journal-health.ts';
import { preflight } from './preflight.ts';
import { Retention } from './retention.ts';
import { JobTexts } from './texts.ts';
import { Journal, type Job } from './journal.ts';
import { createLogger, type Logger } from './log.ts';
import { Matcher, type ImageEmbedding, type TextEmbedding } from './matcher.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import type { HealthState, JobRequest, JobView, PluginContext, ScoreRequest, ScoreResult, SourceInstance, SubmitResult } from './plugin.ts';
import type { PluginRegistry } from './registry.ts';
import { decide, planActions, resultDocument, type ScoredOutcome } from './router.ts';
import { scoreTexts } from './scoring.ts';
import { zodProblems } from './model/package.ts';
import { decide as decideInJournal, type DecideResult } from './journal-review.ts';
import { planReview, type Decision } from './review.ts';
import { uiListener } from './ui-config.ts';
import { threadPoolAdvice, threadPoolSize } from './thread-pool.ts';
import type { UiBackend } from '../ui/backend.ts';
import { startUi, type UiHandle } from '../ui/server.ts';

/** Where the core's callback action keeps its state (endpoints disabled after a 410), next to the plugins'. */
const CALLBACK_STATE = 'core:callbacks';

export interface DaemonOptions {
  /** Relative paths in the config resolve against this folder (the config file's). */
  baseDir: string;
  registry: PluginRegistry;
  logger?: Logger;
  /** The clock for the journal and retry schedules (tests pass a fake one). */
  now?: () => number;
  /** How often finished jobs past journal.retainDays are pruned (default hourly; tests pass less). */
  pruneEveryMs?: number;
  /** How often the one-line activity summary is logged while busy (default 10 s; tests pass less). */
  summaryEveryMs?: number;
}

interface SourceEntry {
  name: string;
  type: string;
  instance: SourceInstance;
  health: { state: HealthState; detail?: string };
}

/** Validate every source's options with its plugin's schema; all problems listed (MATCHD_CONFIG_INVALID). */
export async function checkSources(config: Config, registry: PluginRegistry, baseDir: string): Promise<void> {
  const problems: string[] = [];
  for (const [i, s] of config.sources.entries()) {
    try {
      const plugin = await registry.resolve(s.type, baseDir);
      const parsed = parseSourceOptions(plugin.configSchema, config, i);
      if (!parsed.success) problems.push(...zodProblems(parsed.error as never, `sources.${i}.options`));
      // A rule's plugin actions must be ones this source's plugin carries out, with valid options.
      const rule = config.rules[s.rule];
      for (const [band, list] of Object.entries(rule?.actions ?? {})) {
        list.forEach((a, k) => {
          if (a.kind in CORE_ACTIONS) return;
          const schema = plugin.actionSchemas?.[a.kind];
          const at = `rules.${s.rule}.actions.${band}.${k}.${a.kind}`;
          if (!schema) {
            problems.push(`${at}: unknown action for source '${sourceName(s, i)}' (${s.type}); it can use ${[...Object.keys(CORE_ACTIONS), ...Object.keys(plugin.actionSchemas ?? {})].join(', ')}`);
            return;
          }
          const r = schema.safeParse(a.options);
          if (!r.success) problems.push(...zodProblems(r.error as never, at));
        });
      }
    } catch (err) {
      problems.push(`sources.${i}.type: ${(err as Error).message}`);
    }
  }
  if (problems.length) {
    throw new MatchdError('MATCHD_CONFIG_INVALID', `invalid sources:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { problems });
  }
}

export class Daemon {
  readonly metrics: Metrics = createMetrics();
  readonly log: Logger;
  private journal!: Journal;
  private journalHealth!: JournalHealth;
  private retention: Retention | undefined;
  private activity: ActivityLog | undefined;
  private matcher!: Matcher;
  private runner!: ActionRunner;
  private admin: AdminServer | undefined;
  private ui: UiHandle | undefined;
  /** The web page's address once it listens (on the admin listener or its own). */
  uiUrl: string | undefined;
  private readonly sources: SourceEntry[] = [];
  private texts!: JobTexts;
  private readonly intake = new AbortController();
  private readonly jobWaiters = new Map<string, (() => void)[]>();
  private readonly now: () => number;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpQueued = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  adminAddress: { host: string; port: number } | undefined;

  private constructor(readonly config: Config, private readonly opts: DaemonOptions) {
    this.log = opts.logger ?? createLogger({ level: config.log.level });
    this.now = opts.now ?? Date.now;
  }

  /** Start everything in order; on any failure, what was started is stopped again and the error rethrown. */
  static async start(config: Config, opts: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(config, opts);
    try {
      await d.boot();
    } catch (err) {
      await d.stop('start-up failed').catch(() => {});
      throw err;
    }
    return d;
  }

  private resolve(p: string): string {
    return path.resolve(this.opts.baseDir, p);
  }

  private async boot(): Promise<void> {
    const c = this.config;
    await checkSources(c, this.opts.registry, this.opts.baseDir);
    await preflight(c, this.opts.baseDir, this.opts.registry); // everything checked before anything is created
    // The pipeline decodes jobs as they are leased (decodeConcurrency at once, decodeAhead at most), so the next
    // batch is ready while the current one infers.
    this.matcher = await Matcher.open(this.resolve(c.model.dir), {
      engine: { provider: c.model.provider, fallbackToCpu: c.model.fallbackToCpu, intraOpThreads: c.model.intraOpThreads, logger: this.log.child({ component: 'engine' }) },
      maxBatch: c.model.maxBatch,
      maxDelayMs: c.model.maxDelayMs,
      decodeConcurrency: c.model.decodeConcurrency,
      batchesInFlight: c.model.batchesInFlight,
      limits: { maxPixels: c.model.maxPixels, maxBytes: c.model.maxBytes },
      onBatch: (kind, size, ms) => {
        if (kind === 'text') this.metrics.textBatchSize.observe(size);
        if (kind !== 'image') return;
        this.metrics.batchSize.observe(size);
        this.metrics.computeSeconds.observe(ms / 1000);
      },
    });
    const poolAdvice = threadPoolAdvice(c.model.decodeConcurrency, c.model.batchesInFlight);
    if (poolAdvice) this.log.warn({ uvThreadpoolSize: threadPoolSize() }, poolAdvice);
    this.texts = await JobTexts.embed(c, this.matcher);
    // Temp files a killed process left in the rules' output folders (other folders are swept on first write).
    for (const dir of outputDirs(c, this.opts.baseDir, (r) => (c.rules[r]?.bands ?? this.matcher.bands).list.map((b) => b.name))) {
      const removed = await sweepStaleTemps(dir);
      if (removed.length) this.log.info({ dir, removed: removed.length }, 'removed stale temp files');
    }
    // The journal is created only once the model loaded and the texts embedded (nothing is created for a start that fails).
    this.journal = new Journal(this.resolve(c.journal.path), this.now);
    this.journalHealth = new JournalHealth({
      log: this.log.child({ component: 'journal' }),
      file: this.resolve(c.journal.path),
      probe: () => this.journal.probeWrite(),
      onRecovered: () => {
        this.pump();
        this.runner.kick();
      },
    });
    const callbackState = {
      get: <T>(key: string) => this.journalHealth.run('read callback state', () => this.journal.pluginGet(CALLBACK_STATE, key) as T | undefined, undefined),
      set: (key: string, value: unknown) => this.journalHealth.run('write callback state', () => this.journal.pluginSet(CALLBACK_STATE, key, value), undefined),
    };
    const core: Record<string, ActionHandler> = { ...fileActions, callback: endpointCallbacks(c.callbacks, callbackState, this.intake.signal) };
    this.runner = new ActionRunner(
      this.journal,
      // A `callback` to a configured endpoint is the core's; one to a request's own URL belongs to its source.
      (a, job) => (a.kind === 'callback' && !isEndpointCallback(a.payload) ? undefined : core[a.kind]) ?? this.sourceAction(a.kind, job?.source),
      this.log.child({ component: 'actions' }),
      this.metrics,
      { now: this.now, guard: this.journalHealth },
    );

    const { requeued, abandoned } = this.journalHealth.run('recover leases', () => this.journal.recover(c.journal.maxAttempts, true), { requeued: 0, abandoned: [] });
    if (requeued) this.log.info({ requeued }, 're-queued jobs left running by a previous process');
    for (const job of abandoned) this.fail(job, new MatchdError('MATCHD_INTERNAL', `scoring this image was interrupted ${job.attempts} times; giving up`));

    if (c.admin.enabled) {
      this.admin = new AdminServer(this.metrics, () => this.health());
      const addr = await this.admin.listen(c.admin.host, c.admin.port);
      this.adminAddress = { host: addr.address, port: addr.port };
      this.log.info({ admin: `http://${addr.address}:${addr.port}` }, 'admin endpoint listening');
    }

    this.pumpTimer = setInterval(() => {
      if (!this.journalHealth.ok) return;
      const { requeued: r, abandoned: a } = this.journalHealth.run('recover leases', () => this.journal.recover(c.journal.maxAttempts), { requeued: 0, abandoned: [] });
      for (const job of a) this.fail(job, new MatchdError('MATCHD_INTERNAL', `scoring timed out ${job.attempts} times; giving up`));
      if (r) this.log.warn({ requeued: r }, 're-queued jobs whose lease expired');
      this.pump();
    }, 1000);
    this.pump();

    for (const [i, s] of c.sources.entries()) {
      const name = sourceName(s, i);
      const plugin = await this.opts.registry.resolve(s.type, this.opts.baseDir);
      const parsed = parseSourceOptions(plugin.configSchema, c, i);
      if (!parsed.success) throw new MatchdError('MATCHD_CONFIG_INVALID', `sources.${i}.options: ${parsed.error.issues.map((x) => x.message).join('; ')}`);
      const options = parsed.data;
      const entry: SourceEntry = { name, type: s.type, instance: undefined as never, health: { state: 'ok' } };
      try {
        entry.instance = await plugin.create(this.context(name, s.rule, entry), options);
        this.sources.push(entry);
        await entry.instance.start();
      } catch (err) {
        throw new MatchdError('MATCHD_PLUGIN', `source '${name}' (${s.type}) failed to start: ${(err as Error).message}`);
      }
      this.log.info({ source: name, type: s.type }, 'source started');
    }
    this.runner.start(); // after the sources: some actions are carried out by the source that submitted the job
    // The web page (src/ui/) comes up last: everything it reads, decides and scores through exists by now.
    if (uiListener(c)) {
      this.ui = await startUi(this.uiBackend(), this.admin, this.adminAddress);
      this.uiUrl = this.ui.url;
      this.log.info({ ui: this.ui.url, login: c.ui.auth ? 'required' : 'none (loopback only)' }, 'web page listening');
    } else if (c.ui.enabled) {
      this.log.info('the web page is off: admin.enabled is false and ui.port is not set');
    }
    this.retention = new Retention(this.journal, this.journalHealth, this.log.child({ component: 'retention' }), c.journal.retainDays, this.opts.pruneEveryMs);
    this.retention.start();
    this.activity = new ActivityLog({
      log: this.log, now: this.now, everyMs: this.opts.summaryEveryMs,
      queued: () => this.journalHealth.run('count queued jobs', () => this.journal.queuedCount(), 0),
    });
    this.activity.start();
    this.log.info({ model: this.matcher.manifest.name, provider: this.matcher.provider, sources: this.sources.length }, 'matchd running');
  }

  private context(name: string, defaultRule: string, entry: SourceEntry): PluginContext {
    return {
      name,
      log: this.log.child({ source: name }),
      submit: (job) => this.submit(name, defaultRule, job),
      score: (req) => this.score(defaultRule, req),
      checkItem: (item) => checkItem(item, this.config.items),
      needsTexts: (rule) => {
        const r = this.config.rules[rule ?? defaultRule];
        return !!r && ruleTexts(r) === undefined;
      },
      isKnown: (key) => this.journalHealth.run('isKnown', () => this.journal.isKnown(key), false),
      state: {
        get: <T>(key: string) => this.journalHealth.run('read plugin state', () => this.journal.pluginGet(name, key) as T | undefined, undefined),
        set: (key, value) => this.journalHealth.run('write plugin state', () => this.journal.pluginSet(name, key, value), undefined),
      },
      setHealth: (state, detail) => {
        entry.health = { state, ...(detail ? { detail } : {}) };
      },
      resolvePath: (p) => this.resolve(p),
      getJob: (id) => this.jobView(id),
      findJob: (key) => {
        const job = this.journalHealth.runOrThrow('find job', () => this.journal.byDedupeKey(key));
        return job ? this.jobView(String(job.id)) : undefined;
      },
      waitForJob: (id, ms) => this.waitForJob(id, ms),
      spoolDir: this.spoolDir(name),
      signal: this.intake.signal,
    };
  }

  private spoolDir(source: string): string {
    const dir = path.join(path.dirname(this.resolve(this.config.journal.path)), 'spool', source);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** A job as sources may see it. */
  jobView(id: string): JobView | undefined {
    const n = Number(id);
    const job = Number.isSafeInteger(n) && n > 0 ? this.journalHealth.runOrThrow('read job', () => this.journal.get(n)) : undefined;
    if (!job) return undefined;
    return {
      id: String(job.id), state: job.state, source: job.source, rule: job.rule, outcome: job.outcome,
      result: (job.result as Record<string, unknown> | null) ?? null, meta: job.meta, origin: job.origin, texts: job.texts, createdAt: job.createdAt,
    };
  }

  private waitForJob(id: string, timeoutMs: number): Promise<JobView | undefined> {
    const now = this.jobView(id);
    if (!now || now.state === 'done' || now.state === 'failed' || timeoutMs <= 0) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiters = this.jobWaiters.get(id) ?? [];
      // jobView throws while the journal is paused: reject (the caller answers with the code), never throw in a timer.
      const settle = () => {
        try {
          resolve(this.jobView(id));
        } catch (err) {
          reject(err);
        }
      };
      const done = () => {
        clearTimeout(timer);
        settle();
      };
      const timer = setTimeout(() => {
        const list = this.jobWaiters.get(id)?.filter((w) => w !== done) ?? [];
        if (list.length) this.jobWaiters.set(id, list);
        else this.jobWaiters.delete(id);
        settle();
      }, timeoutMs);
      waiters.push(done);
      this.jobWaiters.set(id, waiters);
    });
  }

  /** A plugin action is carried out by the source that submitted the job. */
  private sourceAction(kind: string, source: string | undefined): ActionHandler | undefined {
    return this.sources.find((s) => s.name === source)?.instance?.actions?.[kind];
  }

  /** A source hands over a job: journalled durably before this returns, or refused with a reason. */
  submit(source: string, defaultRule: string, req: JobRequest): SubmitResult {
    const rule = req.rule ?? defaultRule;
    if (this.stopping) return { accepted: false, reason: 'stopping', message: 'matchd is shutting down' };
    if (!(rule in this.config.rules)) {
      this.metrics.submits.inc({ source, result: 'unknown_rule' });
      return { accepted: false, reason: 'unknown_rule', message: `unknown rule '${rule}'` };
    }
    const paused = (): SubmitResult => {
      this.metrics.submits.inc({ source, result: 'backpressure' });
      return { accepted: false, reason: 'backpressure', retryAfterMs: 5000, message: this.journalHealth.pausedMessage };
    };
    if (!this.journalHealth.ok) return paused();
    if (this.journalHealth.run('count queued jobs', () => this.journal.queuedCount(), Infinity) >= this.config.model.queueSize) {
      if (!this.journalHealth.ok) return paused();
      this.metrics.submits.inc({ source, result: 'backpressure' });
      return { accepted: false, reason: 'backpressure', retryAfterMs: 1000, message: `the queue is full (${this.config.model.queueSize} jobs)` };
    }
    const item = admit(this.config, rule, req);
    if (!item.ok) {
      this.metrics.submits.inc({ source, result: 'invalid' });
      return { accepted: false, reason: 'invalid', code: item.code, problems: item.problems, message: item.message };
    }
    const extra = {
      ...(req.actions?.length ? { actions: req.actions } : {}),
      ...(req.image.temporary ? { temporary: true } : {}),
      ...(item.failed ? { failed: item.failed } : {}),
      ...(req.companions?.length ? { companions: req.companions } : {}),
    };
    const entry = this.journalHealth.run('enqueue', () => this.journal.enqueue({
      dedupeKey: req.dedupeKey, source, rule, imagePath: req.image.path, meta: item.meta, origin: req.origin ?? {}, ...(item.texts ? { texts: item.texts } : {}), extra,
    }), null);
    if (!entry) return paused();
    const { jobId, duplicate } = entry;
    this.metrics.submits.inc({ source, result: duplicate ? 'duplicate' : 'accepted' });
    if (!duplicate) this.pump();
    return { accepted: true, jobId: String(jobId), duplicate };
  }

  /** Score one image now, not journalled and without actions (POST /v1/score): the same pipeline as jobs. */
  score(defaultRule: string, req: ScoreRequest): Promise<ScoreResult> {
    if (this.stopping) return Promise.resolve({ ok: false, reason: 'stopping', message: 'matchd is shutting down' });
    return this.texts.scoreNow(req.rule ?? defaultRule, req, this.journal.queuedCount()).then((r) => {
      if (!r.ok && r.reason === 'backpressure') this.metrics.submits.inc({ source: 'score', result: 'backpressure' });
      return r;
    });
  }

  /**
   * A person's decision on a job in a review band (the web page): journalled with its actions in one transaction —
   * the first decision per job wins — then carried out by the outbox like any result.
   */
  review(jobId: number, decision: Decision, reviewer: string): DecideResult {
    const r = this.journalHealth.runOrThrow('record a review decision', () => decideInJournal(this.journal, jobId, (job, actions) => {
      const rule = this.config.rules[job.rule];
      if (!rule) throw new MatchdError('MATCHD_REVIEW_INVALID', `job ${jobId}'s rule '${job.rule}' is no longer configured`);
      return planReview({ rule, bands: rule.bands ?? this.matcher.bands, job, actions, decision, reviewer, at: this.now(), baseDir: this.opts.baseDir });
    }, this.now()));
    if (r.ok) {
      this.log.info({ jobId, band: r.label.band, previous: r.label.previous, decision: r.label.decision, reviewer }, 'review decision recorded');
      this.runner.kick();
    }
    return r;
  }

  private uiBackend(): UiBackend {
    return {
      config: this.config,
      log: this.log.child({ component: 'ui' }),
      spoolDir: this.spoolDir('.ui'), // not a valid source name, so no source shares it
      model: () => ({ name: this.matcher.manifest.name, version: this.matcher.manifest.version, provider: this.matcher.provider }),
      bands: (rule) => this.config.rules[rule]?.bands ?? this.matcher.bands,
      read: (what, fn) => this.journalHealth.runOrThrow(what, () => fn(this.journal)),
      decide: (jobId, decision, reviewer) => this.review(jobId, decision, reviewer),
      score: (rule, req) => this.score(rule, req),
    };
  }

  /** Move queued jobs into the batcher while it has room (coalesced to once per tick). */
  private pump(): void {
    if (this.pumpQueued || this.stopping) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      if (this.stopping || !this.journalHealth.ok) return;
      const jobs = this.journalHealth.run('lease jobs', () => this.journal.lease(this.matcher.pipeline.room, this.config.journal.leaseMs), []);
      const now = Date.now();
      const asError = (err: unknown) => ({ ok: false as const, error: isMatchdError(err) ? err : new MatchdError('MATCHD_INTERNAL', String(err)) });
      for (const job of jobs) {
        this.metrics.queueSeconds.observe((now - job.createdAt) / 1000);
        if (job.extra.failed) {
          this.fail(job, new MatchdError(job.extra.failed.code as ErrorCode, job.extra.failed.message));
          continue;
        }
        // The job's own texts are embedded alongside its image (batched with every other caller's, cached).
        Promise.all([
          this.matcher.pipeline.embedImage(job.imagePath),
          this.texts.of(job).then((list) => ({ ok: true as const, list }), asError),
        ]).then(
          ([embedding, t]) => this.finish(job, embedding.ok && !t.ok ? t : embedding, t.ok ? t.list : []),
          (err: unknown) => this.finish(job, asError(err), []),
        );
      }
      this.metrics.queueDepth.set(this.journalHealth.run('count queued jobs', () => this.journal.queuedCount(), 0));
    });
  }

  private finish(job: Job, embedding: ImageEmbedding, texts: TextEmbedding[]): void {
    try {
      if (!embedding.ok) {
        this.fail(job, embedding.error);
        return;
      }
      const rule = this.config.rules[job.rule] as Rule;
      const results = scoreTexts(embedding.vector, texts, rule.range ?? this.matcher.scoreMapping, rule.bands ?? this.matcher.bands);
      this.record(job, rule, decide(rule, results));
    } catch (err) {
      this.log.error({ err, jobId: job.id }, 'could not record a result; the job stays journalled and is retried after its lease');
    } finally {
      this.pump();
    }
  }

  /** A job that cannot be scored goes to the rule's `error` outcome, with its code and message. */
  private fail(job: Job, error: MatchdError): void {
    const rule = this.config.rules[job.rule];
    this.metrics.errors.inc({ code: error.code });
    this.log.warn({ jobId: job.id, file: job.imagePath, code: error.code, err: error.message }, 'image could not be scored');
    const outcome: ScoredOutcome = { outcome: 'error', error: { code: error.code, message: error.message } };
    if (!rule) {
      this.journalHealth.run('record a failure', () => this.journal.complete(job.id, 'error', outcome, [], true), undefined);
      return;
    }
    this.record(job, rule, outcome, true);
  }

  private record(job: Job, rule: Rule, o: ScoredOutcome, failed = false): void {
    const model = { name: this.matcher.manifest.name, version: this.matcher.manifest.version, provider: this.matcher.provider };
    const doc = resultDocument(job, o, model);
    // Not recorded (the journal is paused): the job keeps its lease and is scored again once that expires.
    const recorded = this.journalHealth.run('record a result', () => {
      this.journal.complete(job.id, o.outcome, doc, planActions(rule, job, o, doc, this.opts.baseDir), failed);
      return true;
    }, false);
    if (!recorded) return;
    this.metrics.jobs.inc({ outcome: o.outcome });
    this.activity?.recorded(job, rule, o);
    this.runner.kick();
    const waiters = this.jobWaiters.get(String(job.id));
    if (waiters) {
      this.jobWaiters.delete(String(job.id));
      waiters.forEach((w) => w());
    }
  }

  /** Look for due actions now (tests with a fake clock call this after moving it). */
  kickActions(): void {
    this.runner?.kick();
  }

  /** The journal, for tools and tests that inspect state (read-mostly). */
  get journalForTools(): Journal {
    return this.journal;
  }

  health(): Health {
    const jh = this.journalHealth?.view() ?? { ok: false };
    const journalOk = jh.ok && (this.journal?.ping() ?? false);
    const counts = journalOk ? this.journalHealth.run('count for /healthz', () => this.journal.counts(), undefined) : undefined;
    const sources = Object.fromEntries(this.sources.map((s) => [s.name, s.health]));
    const anyDegraded = this.sources.some((s) => s.health.state !== 'ok');
    const status = !journalOk || this.stopping ? 'down' : anyDegraded ? 'degraded' : 'ok';
    return {
      status,
      model: this.matcher ? { name: this.matcher.manifest.name, version: this.matcher.manifest.version, provider: this.matcher.provider } : null,
      journal: { ...jh, ok: journalOk, ...counts },
      queue: this.matcher ? { batching: this.matcher.pipeline.stats.queued, batchesRunning: this.matcher.pipeline.stats.running } : { batching: 0, batchesRunning: 0 },
      sources,
    };
  }

  /** Graceful stop: intake off, sources stopped in reverse order, in-flight work finished or left journalled. */
  stop(reason = 'stop'): Promise<void> {
    this.stopped ??= this.shutdown(reason);
    return this.stopped;
  }

  private async shutdown(reason: string): Promise<void> {
    const deadline = Date.now() + this.config.shutdown.timeoutMs;
    this.log.info({ reason }, 'stopping: intake off');
    this.stopping = true;
    this.intake.abort();
    await this.ui?.close().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'the web page did not close cleanly'));
    clearInterval(this.pumpTimer);
    for (const s of [...this.sources].reverse()) {
      try {
        await s.instance.stop();
      } catch (err) {
        this.log.error({ source: s.name, err }, 'source failed to stop cleanly');
      }
    }
    if (this.matcher) {
      // Images being prepared feed the batches; wait for all of it to settle (or leave those jobs journalled).
      let settled = false;
      while (Date.now() < deadline) {
        if (this.matcher.pipeline.busy === 0) {
          settled = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!settled) this.log.warn('in-flight scoring did not finish before the deadline; those jobs stay journalled for the next start');
    }
    if (this.runner) {
      const drained = await this.runner.drain(Math.max(0, deadline - Date.now()));
      if (!drained) this.log.warn('some actions are still pending; they run at the next start');
      this.runner.stop();
    }
    await this.admin?.close();
    try {
      this.matcher?.close();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'engine still busy at exit');
    }
    this.journalHealth?.stop();
    this.retention?.stop();
    this.activity?.stop();
    try {
      this.journal?.close();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'closing the journal failed; SQLite replays its WAL at the next start');
    }
    this.log.info('stopped');
    await new Promise<void>((resolve) => this.log.flush(() => resolve()));
  }
}
