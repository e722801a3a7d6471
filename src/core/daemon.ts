/**
 * The daemon: sources submit jobs → journal (queued) → dynamic batcher → matcher → rule → outcome →
 * journal (done + outbox, one transaction) → action runner. SIGTERM drains: intake stops, in-flight batches
 * finish (or stay journalled for the next start), due actions run, everything closes.
 * Roles (with a PostgreSQL journal several nodes share): `all` runs everything; `intake` runs the sources and
 * journals jobs (no model); `worker` runs the model, the batches and the actions — its sources are created, never
 * started, so that actions a source carries out (a webhook's callback, an S3 tag) run on workers too.
 */
import path from 'node:path';
import { ActionRunner } from './actions/runner.ts';
import type { ActionHandler } from './actions/contract.ts';
import { ActivityLog } from './activity-log.ts';
import { fileActions } from './actions/file-actions.ts';
import { AdminServer, type Health } from './admin.ts';
import { endpointCallbacks, isEndpointCallback } from './callbacks/endpoints.ts';
import type { Config, Role } from './config.ts';
import { MatchdError } from './errors.ts';
import { journalJob } from './intake.ts';
import { JobWaiters } from './job-waiters.ts';
import { JournalHealth } from './journal-health.ts';
import type { JournalApi } from './journal-api.ts';
import { heartbeat, nodeName, openJournal, type OpenedJournal } from './journal-open.ts';
import { preflight } from './preflight.ts';
import { Retention } from './retention.ts';
import { Scorer } from './scorer.ts';
import { jobView, sourceContext, spoolDirOf, type SourceHost } from './source-context.ts';
import type { JobTexts } from './texts.ts';
import { openModel } from './daemon-model.ts';
import { daemonHealth } from './daemon-health.ts';
import type { Journal } from './journal.ts';
import { createLogger, type Logger } from './log.ts';
import type { Matcher } from './matcher.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import type { JobRequest, PluginContext, ScoreRequest, ScoreResult, SubmitResult } from './plugin.ts';
import { PluginHost, loadSources, type LoadedSource, type SourceHealth } from './plugin-host.ts';
import type { PluginRegistry } from './registry.ts';
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
  /** Overrides the config's `role` (`matchd run --role`). */
  role?: Role;
  /** Overrides journal.node (`matchd run --node`). */
  node?: string;
  /** How often the one-line activity summary is logged while busy (default 10 s; tests pass less). */
  summaryEveryMs?: number;
  /** Overrides startup.pluginTimeoutMs. */
  pluginTimeoutMs?: number;
}

export class Daemon {
  readonly metrics: Metrics = createMetrics();
  readonly log: Logger;
  private journal!: JournalApi;
  private opened: OpenedJournal | undefined;
  private journalHealth!: JournalHealth;
  /** What this node runs (see the file's head). */
  readonly role: Role;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private retention: Retention | undefined;
  private activity: ActivityLog | undefined;
  private matcher!: Matcher;
  private runner!: ActionRunner;
  private admin: AdminServer | undefined;
  private ui: UiHandle | undefined;
  /** The web page's address once it listens (on the admin listener or its own). */
  uiUrl: string | undefined;
  private readonly sources: PluginHost;
  private readonly waiters: JobWaiters;
  private texts!: JobTexts;
  private readonly intake = new AbortController();
  private readonly now: () => number;
  private scorer: Scorer | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  adminAddress: { host: string; port: number } | undefined;

  private constructor(readonly config: Config, private readonly opts: DaemonOptions) {
    this.log = opts.logger ?? createLogger({ level: config.log.level });
    this.now = opts.now ?? Date.now;
    this.role = opts.role ?? config.role;
    this.sources = new PluginHost({
      log: this.log, startTimeoutMs: opts.pluginTimeoutMs ?? config.startup.pluginTimeoutMs,
      context: (source, setHealth) => this.context(source, setHealth),
    });
    this.waiters = new JobWaiters({
      view: (id) => jobView(this.journal, this.journalHealth, id),
      // On a shared journal another node may finish a waited job.
      poll: {
        shared: () => !!this.opened?.pg,
        ok: () => this.journalHealth.ok,
        read: (id) => this.journalHealth.run('read a waited job', () => this.journal.get(id), undefined),
      },
    });
  }

  /** Runs the model, the batches and the actions (roles all and worker). */
  private get works(): boolean {
    return this.role !== 'intake';
  }

  /** Runs the sources (roles all and intake). */
  private get takesIn(): boolean {
    return this.role !== 'worker';
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
    const sources = await loadSources(c, this.opts.registry, this.opts.baseDir); // options parsed once, frozen
    await preflight(c, this.opts.baseDir, this.opts.registry, this.role, sources); // everything checked before anything is created
    if (this.works) ({ matcher: this.matcher, texts: this.texts } = await openModel(c, this.opts.baseDir, this.log, this.metrics));
    if (this.works) {
      const poolAdvice = threadPoolAdvice(c.model.decodeConcurrency, c.model.batchesInFlight);
      if (poolAdvice) this.log.warn({ uvThreadpoolSize: threadPoolSize() }, poolAdvice);
    }
    // The journal is created only once the model loaded and the texts embedded (nothing is created for a start that fails).
    this.opened = openJournal(c, {
      baseDir: this.opts.baseDir, role: this.role, ...(this.opts.node ? { node: this.opts.node } : {}), now: this.now,
      // Another node queued jobs: lease them now rather than at the next tick.
      ...(this.works ? { onQueued: () => this.scorer?.pump() } : {}),
      onReconnected: () => this.log.info('the journal\'s database answers again'),
    });
    this.journal = this.opened.journal;
    this.journalHealth = new JournalHealth({
      log: this.log.child({ component: 'journal' }),
      ...(this.opened.file ? { file: this.opened.file } : {}),
      probe: () => this.journal.probeWrite(),
      onRecovered: () => {
        this.scorer?.pump();
        this.runner?.kick();
      },
    });
    const pg = this.opened.pg;
    this.metrics.nodeInfo.set({ role: this.role, node: pg ? nodeName(c, this.opts.node) : '', backend: this.journal.backend }, 1);
    if (pg) {
      this.log.info({ journal: pg.where, node: nodeName(c, this.opts.node), role: this.role }, 'joined the shared journal');
      this.heartbeatTimer = heartbeat(pg, this.journalHealth, () => this.log.error({ node: nodeName(c, this.opts.node) }, 'another process took over this node name on the shared journal'));
    }
    if (this.works) this.startWork();

    if (c.admin.enabled) {
      this.admin = new AdminServer(this.metrics, () => this.health());
      const addr = await this.admin.listen(c.admin.host, c.admin.port);
      this.adminAddress = { host: addr.address, port: addr.port };
      this.log.info({ admin: `http://${addr.address}:${addr.port}` }, 'admin endpoint listening');
    }

    // A worker creates its sources for the actions they carry out, and never starts their intake.
    await this.sources.startAll(sources, this.takesIn);
    this.runner?.start(); // after the sources: some actions are carried out by the source that submitted the job
    // The web page (src/ui/) comes up last: everything it reads, decides and scores through exists by now.
    if (this.works && uiListener(c)) {
      this.ui = await startUi(this.uiBackend(), this.admin, this.adminAddress);
      this.uiUrl = this.ui.url;
      this.log.info({ ui: this.ui.url, login: c.ui.auth ? 'required' : 'none (loopback only)' }, 'web page listening');
    } else if (c.ui.enabled && this.works) {
      this.log.info('the web page is off: admin.enabled is false and ui.port is not set');
    }
    if (this.works) {
      this.retention = new Retention(this.journal, this.journalHealth, this.log.child({ component: 'retention' }), c.journal.retainDays, this.opts.pruneEveryMs);
      this.retention.start();
    }
    // Intake nodes log it too: their summary says how many jobs wait in the (shared) queue.
    this.activity = new ActivityLog({
      log: this.log, now: this.now, everyMs: this.opts.summaryEveryMs,
      queued: () => this.journalHealth.run('count queued jobs', () => this.journal.queuedCount(), 0),
    });
    this.activity.start();
    this.log.info({
      role: this.role, ...(this.matcher ? { model: this.matcher.manifest.name, provider: this.matcher.provider } : {}), sources: this.sources.count,
    }, 'matchd running');
  }

  /** The action runner, leases left by dead processes, and the tick that leases queued jobs. */
  private startWork(): void {
    const c = this.config;
    const callbackState = {
      get: <T>(key: string) => this.journalHealth.run('read callback state', () => this.journal.pluginGet(CALLBACK_STATE, key) as T | undefined, undefined),
      set: (key: string, value: unknown) => this.journalHealth.run('write callback state', () => this.journal.pluginSet(CALLBACK_STATE, key, value), undefined),
    };
    const core: Record<string, ActionHandler> = { ...fileActions, callback: endpointCallbacks(c.callbacks, callbackState, this.intake.signal) };
    this.runner = new ActionRunner(
      this.journal,
      // A `callback` to a configured endpoint is the core's; one to a request's own URL belongs to its source.
      (a, job) => (a.kind === 'callback' && !isEndpointCallback(a.payload) ? undefined : core[a.kind]) ?? this.sources.action(a.kind, job?.source),
      this.log.child({ component: 'actions' }),
      this.metrics,
      { now: this.now, guard: this.journalHealth, shared: this.journal.backend !== 'sqlite' },
    );

    this.scorer = new Scorer({
      config: c, baseDir: this.opts.baseDir, journal: this.journal, health: this.journalHealth, matcher: this.matcher, texts: this.texts,
      metrics: this.metrics, log: this.log, ...(this.opened?.pg ? { sharedNode: nodeName(c, this.opts.node) } : {}),
      onRecorded: (job, rule, o) => {
        this.activity?.recorded(job, rule, o);
        this.runner.kick();
        this.waiters.settled(String(job.id));
      },
    });
    this.scorer.start();
  }

  private context(source: LoadedSource, setHealth: (h: SourceHealth) => void): PluginContext {
    const host: SourceHost = {
      config: this.config, log: this.log, journal: () => this.journal, health: () => this.journalHealth,
      submit: (name, rule, req) => this.submit(name, rule, req), score: (rule, req) => this.score(rule, req),
      waiters: this.waiters, resolve: (p) => this.resolve(p), spoolDir: (name) => this.spoolDir(name), signal: this.intake.signal,
    };
    return sourceContext(host, source, setHealth);
  }

  private spoolDir(source: string): string {
    return spoolDirOf(this.config, (p) => this.resolve(p), this.opened?.pg ? nodeName(this.config, this.opts.node) : undefined, source);
  }

  /** A source hands over a job: journalled durably before this returns, or refused with a reason. */
  submit(source: string, defaultRule: string, req: JobRequest): SubmitResult {
    if (this.stopping) return { accepted: false, reason: 'stopping', message: 'matchd is shutting down' };
    const r = journalJob({ config: this.config, metrics: this.metrics, journal: this.journal, health: this.journalHealth }, source, defaultRule, req);
    if (r.accepted && !r.duplicate && this.works) this.scorer?.pump();
    return r;
  }

  /** Score one image now, not journalled and without actions (POST /v1/score): the same pipeline as jobs. */
  score(defaultRule: string, req: ScoreRequest): Promise<ScoreResult> {
    if (this.stopping) return Promise.resolve({ ok: false, reason: 'stopping', message: 'matchd is shutting down' });
    if (!this.works) {
      return Promise.resolve({ ok: false, reason: 'stopping', message: `this node runs with role ${this.role} and loads no model: scoring now is answered by worker and all nodes` });
    }
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

  /** Look for due actions now (tests with a fake clock call this after moving it). */
  kickActions(): void {
    this.runner?.kick();
  }

  /** The SQLite journal, for tools and tests that inspect state (read-mostly); `journalApi` on any backend. */
  get journalForTools(): Journal {
    if (this.journal.backend !== 'sqlite') throw new MatchdError('MATCHD_INTERNAL', 'journalForTools is the SQLite journal; use journalApi');
    return this.journal as Journal;
  }

  /** The journal, whichever its backend. */
  get journalApi(): JournalApi {
    return this.journal;
  }

  health(): Health {
    const pg = this.opened?.pg;
    return daemonHealth({
      role: this.role, stopping: this.stopping, journal: this.journal, journalHealth: this.journalHealth, matcher: this.matcher, sources: this.sources,
      pg: pg ? { journal: pg, node: nodeName(this.config, this.opts.node) } : undefined,
    });
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
    this.scorer?.stop();
    this.intake.abort();
    await this.ui?.close().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'the web page did not close cleanly'));
    this.waiters.stop();
    await this.sources.stop(); // in reverse order of their start
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
    clearInterval(this.heartbeatTimer);
    this.activity?.stop();
    try {
      this.journal?.close();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'closing the journal failed; SQLite replays its WAL at the next start');
    }
    this.opened?.release();
    this.log.info('stopped');
    await new Promise<void>((resolve) => this.log.flush(() => resolve()));
  }
}
