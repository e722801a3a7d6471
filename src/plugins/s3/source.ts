/**
 * One running S3 source. It finds objects three ways, all feeding the same entity tracking (tracker.ts) and intake
 * (take.ts):
 * - a full listing (ListObjectsV2, all pages) every `pollIntervalMs` — or, with `events` or `startAfter`, every
 *   `sweepIntervalMs` as a reconciliation sweep;
 * - with `startAfter`, polls that list only the keys after the last one taken, per shard (key-ordered writers);
 * - with `events`, bucket notifications: each names a key, which is listed on its own and taken at once.
 * The journal is the tracker (dedupe keys); a watermark in plugin state, advanced only after a full listing's jobs
 * are journalled, bounds how far back listings are compared with it (`trackingWindowMs`).
 *
 * Health: `down` while the store does not answer (or the listing is refused for good), `degraded` while a request
 * hangs past `stallMs`, the listing fails, or objects cannot be downloaded; `ok` otherwise.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { MatchdError } from '../../core/errors.ts';
import type { ActionHandler, HealthState, PluginContext, SourceInstance } from '../../core/plugin.ts';
import { makeActions } from './actions.ts';
import { type RegionChoice, backoffMs, classify, describe, endpointOf, errorCode, makeClient, regionResolver } from './client.ts';
import type { S3Config } from './config.ts';
import { EventQueue, type Looked } from './event-queue.ts';
import { type EventFeed, HttpEventFeed, type ObjectEvent } from './events.ts';
import { KeyFilter } from './glob.ts';
import { TEXTS_SUFFIX } from './item-texts.ts';
import { type Listed, type Listing, listObjects } from './listing.ts';
import { SqsEventFeed } from './sqs.ts';
import { type Taken, Taker } from './take.ts';
import { Tracker, dedupeKey, reuploadKey } from './tracker.ts';
import { StoreWatch } from './watch.ts';

export { dedupeKey } from './tracker.ts';
export type { Listed } from './listing.ts';
export type { ItemOutcome } from './take.ts';

/** One pass over listed objects: what it took, and what it left for later (they hold the watermark). */
interface Pass {
  pending: Listed[];
  maxSeen: number;
  failed: number;
  halt?: number;
}

export class S3Source implements SourceInstance {
  readonly actions: Record<string, ActionHandler>;
  /** Counters for tests, benchmarks and debugging. */
  readonly stats = { polls: 0, sweeps: 0, listCalls: 0, listed: 0, examined: 0, events: 0, listErrors: 0 };
  private readonly client: S3Client;
  private readonly region: () => Promise<RegionChoice>;
  private readonly filter: KeyFilter;
  private readonly watch: StoreWatch;
  private readonly tracker: Tracker;
  private readonly taker: Taker;
  private readonly feed: EventFeed | undefined;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;
  private lastSweepAt = 0;
  /**
   * Health inputs besides the store's: why the source stopped for good (MATCHD_S3_ACCESS: a refused listing;
   * MATCHD_CONFIG_INVALID: no region), a failing listing, objects that failed.
   */
  private stoppedBy: MatchdError | undefined;
  private listProblem: string | undefined;
  private downloadProblem: string | undefined;
  private health: { state: HealthState; detail?: string } = { state: 'ok' };
  /** Dedupe keys being taken now (a sweep and an event may name the same object at once). */
  private readonly taking = new Set<string>();
  /** Keys named by events, waiting to be looked at. */
  private readonly events: EventQueue;

  constructor(private readonly ctx: PluginContext, private readonly config: S3Config, client?: S3Client) {
    this.region = regionResolver(config);
    this.client = client ?? makeClient(config, this.region);
    this.watch = new StoreWatch(config.stallMs, () => this.refreshHealth());
    this.watch.attach(this.client);
    this.filter = new KeyFilter(config.include, config.exclude);
    this.tracker = new Tracker(ctx, this.client, config.bucket, this.abort.signal);
    this.taker = new Taker(ctx, this.client, config, this.abort.signal, () => this.stopped);
    this.actions = makeActions(this.client, config, ctx.log, ctx.state);
    const ev = config.events;
    this.events = new EventQueue(config.downloadConcurrency, (key, tries) => this.lookAt(key, tries));
    this.feed = ev?.http ? new HttpEventFeed(ev.http, ctx.log) : ev?.sqs ? new SqsEventFeed(ev.sqs, config, ctx.log) : undefined;
  }

  /** The event endpoint's port (tests listen on port 0). */
  get eventPort(): number | undefined {
    return this.feed instanceof HttpEventFeed ? this.feed.port : undefined;
  }

  async start(): Promise<void> {
    // Downloads cut short by a crash; complete spool files belong to journalled jobs (the core deletes them).
    for (const f of await fsp.readdir(this.ctx.spoolDir).catch(() => [] as string[])) {
      if (f.endsWith('.part')) await fsp.rm(path.join(this.ctx.spoolDir, f), { force: true });
    }
    const { bucket, prefix, forcePathStyle, pollIntervalMs, minAgeMs, startAfter, shards } = this.config;
    const { endpoint, from: endpointFrom } = endpointOf(this.config);
    const credentials = this.config.accessKeyId ? 'config' : 'default chain';
    let region: RegionChoice | undefined;
    try {
      region = await this.region();
    } catch (err) {
      this.stoppedBy = err instanceof MatchdError ? err : new MatchdError('MATCHD_CONFIG_INVALID', (err as Error).message);
      this.ctx.log.error({ code: this.stoppedBy.code, bucket }, `s3 source stopped: ${this.stoppedBy.message}`);
      this.refreshHealth();
      return;
    }
    if (this.feed) {
      await this.feed.start((evs) => this.onEvents(evs));
      if (this.feed instanceof HttpEventFeed) this.ctx.state.set('eventsAddress', { host: this.config.events!.http!.host, port: this.feed.port });
    }
    const mode = this.feed ? `events from ${this.feed.describe}, sweeps every ${this.config.sweepIntervalMs} ms` : startAfter ? 'startAfter polls' : 'full listings';
    this.ctx.log.info({
      bucket, prefix, endpoint, endpointFrom, region: region.region, regionFrom: region.from, forcePathStyle, pollIntervalMs, minAgeMs, startAfter,
      ...(shards.length ? { shards } : {}), mode, credentials,
    }, this.feed ? 'watching S3 (events)' : 'polling S3');
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped || !Number.isFinite(ms)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.current = this.poll()
        .then((next) => this.schedule(next))
        .catch((err) => {
          this.ctx.log.error({ err: (err as Error).message }, 'S3 poll failed unexpectedly');
          this.schedule(this.config.backoff.maxMs);
        });
    }, ms);
  }

  /** The delay between listings when nothing went wrong. */
  private get interval(): number {
    return this.feed && !this.config.startAfter ? this.config.sweepIntervalMs : this.config.pollIntervalMs;
  }

  /** One listing — a full one (a sweep) when due, else the keys after each shard's last one — ; returns the delay until the next. */
  async poll(): Promise<number> {
    const started = Date.now();
    const sweep = !this.config.startAfter || started - this.lastSweepAt >= this.config.sweepIntervalMs;
    this.stats.polls++;
    if (sweep) this.stats.sweeps++;
    let pass: Pass;
    try {
      pass = sweep ? await this.sweep(started) : await this.incremental(started);
    } catch (err) {
      if (this.stopped) return Infinity;
      if (classify(err) === 'fatal') return this.fatal(err);
      this.failures++;
      this.stats.listErrors++;
      const wait = backoffMs(this.failures, Math.max(this.config.backoff.initialMs, 1), this.config.backoff.maxMs);
      this.listProblem = `listing s3://${this.config.bucket}/${this.config.prefix} failed (${this.failures} in a row; next try in ${wait} ms): ${describe(err)}`;
      this.ctx.log.warn({ code: errorCode(err), failures: this.failures, retryInMs: wait }, this.listProblem);
      this.refreshHealth();
      return wait;
    }
    if (this.stopped) return Infinity;
    if (this.failures) this.ctx.log.info({ after: this.failures }, 'S3 listing works again');
    this.failures = 0;
    this.listProblem = undefined;
    if (sweep) this.lastSweepAt = started;
    this.ctx.state.set('lastListedAt', started);
    this.downloadProblem = pass.failed ? `${pass.failed} object(s) could not be downloaded; tried again at the next listing` : undefined;
    this.refreshHealth();
    return pass.halt ?? this.interval;
  }

  /** Every object of the prefix; afterwards the watermark moves up to the oldest object not yet taken. */
  private async sweep(started: number): Promise<Pass> {
    const listing = await this.list(this.config.prefix);
    const cursor = this.ctx.state.get<number>('cursor') ?? 0;
    const pass = await this.process(listing, cursor, started);
    if (this.stopped) return pass;
    // Every job of this listing is journalled: only now may the watermark move (and never backwards).
    const oldestPending = pass.pending.reduce((m, o) => Math.min(m, o.lastModified), Infinity);
    const watermark = pass.pending.length ? oldestPending : pass.maxSeen;
    if (watermark > cursor) this.ctx.state.set('cursor', watermark);
    // The next incremental polls start after what this sweep took, not from each shard's first key.
    if (this.config.startAfter) {
      for (const shard of this.shardPrefixes) {
        const mine = listing.objects.filter((o) => o.key.startsWith(shard));
        this.moveShardCursor(shard, mine, pass.pending.filter((o) => o.key.startsWith(shard)), mine.at(-1)?.key);
      }
    }
    this.ctx.log.debug({ listed: listing.objects.length, calls: listing.calls, pending: pass.pending.length }, 'S3 sweep done');
    return pass;
  }

  /** Each shard's keys after the last one taken (key-ordered writers); a shard's cursor stops before its first pending key. */
  private async incremental(started: number): Promise<Pass> {
    const cursor = this.ctx.state.get<number>('cursor') ?? 0;
    const passes = await Promise.all(this.shardPrefixes.map(async (shard) => {
      const listing = await this.list(shard, this.ctx.state.get<string>(`after:${shard}`));
      const pass = await this.process(listing, cursor, started);
      if (!this.stopped) this.moveShardCursor(shard, listing.objects, pass.pending, listing.lastKey);
      return pass;
    }));
    return passes.reduce((a, b) => ({
      pending: [...a.pending, ...b.pending], maxSeen: Math.max(a.maxSeen, b.maxSeen), failed: a.failed + b.failed,
      ...(a.halt !== undefined || b.halt !== undefined ? { halt: Math.max(a.halt ?? 0, b.halt ?? 0) } : {}),
    }));
  }

  private get shardPrefixes(): string[] {
    return this.config.shards.length ? this.config.shards.map((s) => this.config.prefix + s) : [this.config.prefix];
  }

  /** A shard's startAfter key moves up to its last key listed, or to just before its first one left for later. */
  private moveShardCursor(shard: string, objects: Listed[], pending: Listed[], lastKey: string | undefined): void {
    const after = this.ctx.state.get<string>(`after:${shard}`);
    const firstPending = pending.reduce<string | undefined>((m, o) => (m === undefined || o.key < m ? o.key : m), undefined);
    const next = firstPending === undefined ? lastKey : objects.filter((o) => o.key < firstPending).at(-1)?.key;
    if (next !== undefined && (after === undefined || next > after)) this.ctx.state.set(`after:${shard}`, next);
  }

  private async list(listPrefix: string, startAfter?: string, maxPages?: number): Promise<Listing> {
    const listing = await listObjects(this.client, {
      bucket: this.config.bucket, prefix: this.config.prefix, listPrefix, ...(startAfter ? { startAfter } : {}), ...(maxPages ? { maxPages } : {}),
      pageSize: this.config.pageSize, companions: this.config.companions, filter: this.filter, signal: this.abort.signal,
    });
    this.stats.listCalls += listing.calls;
    this.stats.listed += listing.objects.length;
    return listing;
  }

  /** Take every object of a listing that is new or re-uploaded and old enough; return what is left for later. */
  private async process(listing: Listing, cursor: number, started: number): Promise<Pass> {
    const floor = cursor - this.config.trackingWindowMs;
    const youngerThan = started - this.config.minAgeMs;
    const pending: Listed[] = [];
    const work: Listed[] = [];
    let maxSeen = cursor;
    for (const o of listing.objects) {
      if (o.lastModified < floor) continue; // handled long ago (outside the tracking window)
      maxSeen = Math.max(maxSeen, o.lastModified);
      if (o.lastModified < cursor && this.ctx.isKnown(dedupeKey(this.config.bucket, o))) continue; // the common case, cheaply
      // Too young (or its companion key is): a later listing takes it.
      if (o.lastModified > youngerThan || (listing.companions.get(o.key)?.lastModified ?? 0) > youngerThan) pending.push(o);
      else work.push(o);
    }
    work.sort((a, b) => a.lastModified - b.lastModified || (a.key < b.key ? -1 : 1));
    let halt: number | undefined;
    let failed = 0;
    let next = 0;
    const worker = async () => {
      for (;;) {
        const o = work[next++];
        if (!o) return;
        if (halt !== undefined || this.stopped) {
          pending.push(o);
          continue;
        }
        const v = await this.consider(o, listing.companions.get(o.key), cursor);
        if (v === 'failed') failed++;
        if (v === 'failed' || v === 'halt' || v === 'busy') pending.push(o);
        if (v === 'halt') halt ??= this.taker.haltFor;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.downloadConcurrency, work.length) }, worker));
    return { pending, maxSeen, failed, ...(halt !== undefined ? { halt } : {}) };
  }

  /** The tracker's verdict on one object, then take it when it is new or re-uploaded. */
  private async consider(o: Listed, companion: Listed | undefined, cursor: number): Promise<Taken | 'known' | 'busy'> {
    this.stats.examined++;
    const v = await this.tracker.verdict(o, cursor);
    if (v === 'known') return 'known';
    const key = v === 'new' ? dedupeKey(this.config.bucket, o) : reuploadKey(this.config.bucket, o);
    if (this.taking.has(key)) return 'busy';
    this.taking.add(key);
    try {
      if (v === 'replaced') this.ctx.log.info({ key: o.key, etag: o.etag }, 'object re-uploaded with the same bytes (its tags were dropped): its actions run again');
      return await this.taker.take(o, companion, key, v === 'replaced' ? { reupload: true } : {});
    } finally {
      this.taking.delete(key);
    }
  }

  /**
   * Events: keys under the prefix that the filter accepts (a companion key stands for its object) are looked at
   * soon; resolves once each is handled (journalled, known, gone), however many tries that takes.
   */
  private onEvents(events: ObjectEvent[]): Promise<void> {
    const keys: string[] = [];
    for (const e of events) {
      if (e.bucket !== this.config.bucket || !e.key.startsWith(this.config.prefix)) continue;
      this.stats.events++;
      if (!e.created) {
        this.ctx.log.debug({ key: e.key }, 'object removed (event)');
        continue;
      }
      const key = e.key.endsWith(TEXTS_SUFFIX) ? e.key.slice(0, -TEXTS_SUFFIX.length) : e.key;
      if (this.filter.accepts(key.slice(this.config.prefix.length))) keys.push(key);
    }
    return this.events.add(keys);
  }

  /** Look at a key an event named: list it (with its companion) and take it like a listing would. */
  private async lookAt(key: string, tries: number): Promise<Looked> {
    const backoff = { againInMs: backoffMs(tries + 1, Math.max(1, this.config.backoff.initialMs), this.config.backoff.maxMs) };
    try {
      const listing = await this.list(key, undefined, 1);
      const o = listing.objects.find((x) => x.key === key);
      if (!o) return 'handled'; // gone since
      const companion = listing.companions.get(key);
      const ripe = Math.max(o.lastModified, companion?.lastModified ?? 0) + this.config.minAgeMs;
      if (ripe > Date.now()) return { againInMs: ripe - Date.now() };
      const v = await this.consider(o, companion, this.ctx.state.get<number>('cursor') ?? 0);
      if (v === 'failed' || v === 'busy') return backoff;
      if (v === 'halt') return { againInMs: this.taker.haltFor };
      return 'handled'; // taken or known
    } catch (err) {
      if (this.stopped) return backoff;
      if (classify(err) === 'fatal') {
        this.fatal(err);
        return { againInMs: this.config.backoff.maxMs };
      }
      this.ctx.log.warn({ key, code: errorCode(err) }, `looking at s3://${this.config.bucket}/${key} after an event failed: ${describe(err)}; tried again`);
      return backoff;
    }
  }

  /** AccessDenied, NoSuchBucket, bad credentials: retrying cannot help, so this source stops (the daemon goes on). */
  private fatal(err: unknown): number {
    this.stoppedBy = new MatchdError('MATCHD_S3_ACCESS', `cannot list s3://${this.config.bucket}/${this.config.prefix}: ${describe(err)}; fix the bucket, credentials or permissions and restart`, { s3Code: errorCode(err) });
    this.ctx.log.error({ code: this.stoppedBy.code, s3Code: errorCode(err), bucket: this.config.bucket }, `s3 source stopped: ${this.stoppedBy.message}`);
    this.refreshHealth();
    return Infinity;
  }

  /** Health from everything known now (called whenever one input changes). */
  private refreshHealth(): void {
    const w = this.watch.state();
    const { endpoint } = endpointOf(this.config);
    let next: { state: HealthState; detail?: string };
    if (this.stoppedBy) next = { state: 'down', detail: `s3 source stopped: ${this.stoppedBy.message} (${this.stoppedBy.code})` };
    else if (w.unreachableSince !== undefined) {
      next = {
        state: 'down',
        detail: `the store (${endpoint}) has not answered since ${new Date(w.unreachableSince).toISOString()} (${w.failures} failed request(s) in a row, the last: ${w.lastError}); listing, downloads and S3 actions wait for it`,
      };
    } else if (w.stalledMs !== undefined) {
      next = { state: 'degraded', detail: `a request to the store (${endpoint}) has had no answer for ${Math.round(w.stalledMs / 1000)} s (it times out after requestTimeoutMs, ${this.config.requestTimeoutMs} ms)` };
    } else {
      const problem = this.listProblem ?? this.taker.problem ?? this.downloadProblem;
      next = problem ? { state: 'degraded', detail: problem } : { state: 'ok' };
    }
    if (this.health.state === next.state && this.health.detail === next.detail) return;
    if (next.state === 'ok' && this.health.state !== 'ok') this.ctx.log.info('S3 source healthy again');
    else if (next.state !== 'ok' && this.health.state !== next.state) this.ctx.log.warn({ state: next.state }, next.detail);
    this.health = next;
    this.ctx.setHealth(next.state, next.detail);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const events = this.events.stop(); // no more looks start; the ones under way end with the abort below
    await this.feed?.stop();
    this.watch.stop();
    this.abort.abort();
    await this.current?.catch(() => {});
    await events;
    clearTimeout(this.timer);
    // The client is not destroyed: the daemon drains this source's pending actions (tag, s3copy...) after stop().
    // Its idle keep-alive sockets are unref'd and do not hold the process open.
  }
}
