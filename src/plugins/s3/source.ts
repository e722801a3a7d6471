/**
 * One running S3 source: polls ListObjectsV2 (all pages), and for every object not yet journalled (dedupe key
 * `s3:<bucket>/<key>@<etag>`, so an overwrite is new work and a re-listed object is not) that is old enough,
 * streams GetObject into the spool folder under the byte cap and submits it. The journal is the entity tracker;
 * a watermark in plugin state (advanced only after the poll's jobs are journalled) bounds how far back a listing
 * is compared with it (`trackingWindowMs`), so objects older than the journal's retention are not scored again.
 * An object's own texts and meta come from its user metadata or its `<key>.texts.json` companion key (item-texts.ts).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { MatchdError, type ErrorCode } from '../../core/errors.ts';
import type { ItemTexts } from '../../core/items/companion.ts';
import type { ActionHandler, PluginContext, SourceInstance } from '../../core/plugin.ts';
import { makeActions } from './actions.ts';
import { backoffMs, bareEtag, classify, describe, errorCode, makeClient } from './client.ts';
import type { S3Config } from './config.ts';
import { KeyFilter } from './glob.ts';
import { TEXTS_SUFFIX, fromCompanionKey, fromMetadata, merge } from './item-texts.ts';

/** One listed object. */
export interface Listed {
  key: string;
  etag: string;
  size: number;
  lastModified: number;
}

/** A per-item outcome that produced no job (kept, most recent last, in plugin state `outcomes`). */
export interface ItemOutcome {
  key: string;
  etag: string;
  code: string;
  message: string;
  at: number;
}

type Verdict = 'submitted' | 'vanished' | 'changed' | 'failed' | 'halt';

type Failed = { code: ErrorCode; message: string };

/** What is journalled with an object besides its file. */
interface Item extends ItemTexts {
  origin: Record<string, unknown>;
  failed?: Failed;
}

const KEEP_OUTCOMES = 200;
const UNKNOWN_RULE_RETRY_MS = 60_000;

/** Thrown out of a listing that cannot go on (bad bucket or credentials): the source stops. */
class Fatal extends Error {}

export class S3Source implements SourceInstance {
  readonly actions: Record<string, ActionHandler>;
  /** Counters for tests and debugging. */
  readonly stats = { polls: 0, listed: 0, submitted: 0, vanished: 0, tooLarge: 0, listErrors: 0, downloadErrors: 0 };
  private readonly client: S3Client;
  private readonly filter: KeyFilter;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private failures = 0;
  private health: { state: 'ok' | 'degraded' | 'down'; detail?: string } = { state: 'ok' };
  private stopped = false;

  constructor(private readonly ctx: PluginContext, private readonly config: S3Config, client?: S3Client) {
    this.client = client ?? makeClient(config);
    this.filter = new KeyFilter(config.include, config.exclude);
    this.actions = makeActions(this.client, config, ctx.log);
  }

  async start(): Promise<void> {
    // Downloads cut short by a crash; complete spool files belong to journalled jobs (the core deletes them).
    for (const f of await fsp.readdir(this.ctx.spoolDir).catch(() => [] as string[])) {
      if (f.endsWith('.part')) await fsp.rm(path.join(this.ctx.spoolDir, f), { force: true });
    }
    const { bucket, prefix, endpoint, region, forcePathStyle, pollIntervalMs, minAgeMs } = this.config;
    const credentials = this.config.accessKeyId ? 'config' : 'default chain';
    this.ctx.log.info({ bucket, prefix, endpoint, region, forcePathStyle, pollIntervalMs, minAgeMs, credentials }, 'polling S3');
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

  /** One poll; returns the delay until the next one (or Infinity after a fatal error). */
  async poll(): Promise<number> {
    this.stats.polls++;
    const started = Date.now();
    let listed: Listed[];
    let companions: Map<string, Listed>;
    try {
      ({ objects: listed, companions } = await this.list());
    } catch (err) {
      if (this.stopped) return Infinity;
      if (err instanceof Fatal || classify(err) === 'fatal') return this.fatal(err);
      this.failures++;
      this.stats.listErrors++;
      const wait = backoffMs(this.failures, Math.max(this.config.backoff.initialMs, 1), this.config.backoff.maxMs);
      const detail = `listing s3://${this.config.bucket}/${this.config.prefix} failed (${this.failures} in a row; next try in ${wait} ms): ${describe(err)}`;
      this.ctx.log.warn({ code: errorCode(err), failures: this.failures, retryInMs: wait }, detail);
      this.setHealth('degraded', detail);
      return wait;
    }
    if (this.failures) this.ctx.log.info({ after: this.failures }, 'S3 listing works again');
    this.failures = 0;

    const cursor = this.ctx.state.get<number>('cursor') ?? 0;
    const floor = cursor - this.config.trackingWindowMs;
    const youngerThan = started - this.config.minAgeMs;
    const pending: Listed[] = []; // not handled in this poll: they keep the watermark where it is
    const work: Listed[] = [];
    let maxSeen = cursor;
    for (const o of listed) {
      if (o.lastModified < floor) continue; // handled long ago (outside the tracking window)
      maxSeen = Math.max(maxSeen, o.lastModified);
      if (this.ctx.isKnown(dedupeKey(this.config.bucket, o))) continue;
      // Too young (or its companion key is): the next poll takes it.
      if (o.lastModified > youngerThan || (companions.get(o.key)?.lastModified ?? 0) > youngerThan) pending.push(o);
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
        const v = await this.take(o, companions.get(o.key));
        if (v === 'failed') failed++;
        if (v === 'failed' || v === 'halt') pending.push(o);
        if (v === 'halt') halt ??= this.haltFor;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.downloadConcurrency, work.length) }, worker));
    if (this.stopped) return Infinity;

    // Every job of this listing is journalled: only now may the watermark move (and never backwards).
    const watermark = pending.length ? Math.min(...pending.map((o) => o.lastModified)) : maxSeen;
    if (watermark > cursor) this.ctx.state.set('cursor', watermark);
    this.ctx.state.set('lastListedAt', started);
    this.ctx.log.debug({ listed: listed.length, submitted: work.length - pending.length, pending: pending.length }, 'S3 poll done');
    if (failed === 0 && halt === undefined) this.setHealth('ok');
    else if (failed) this.setHealth('degraded', `${failed} object(s) could not be downloaded; retried at the next poll`);
    return halt ?? this.config.pollIntervalMs;
  }

  /** Why the last 'halt' happened, as the delay before trying again. */
  private haltFor = 0;

  /** Every accepted object of the prefix, and the companion keys (`<key>.texts.json`) by the key they belong to. */
  private async list(): Promise<{ objects: Listed[]; companions: Map<string, Listed> }> {
    const out: Listed[] = [];
    const companions = new Map<string, Listed>();
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: this.config.prefix || undefined, MaxKeys: this.config.pageSize, ContinuationToken: token }),
        { abortSignal: this.abort.signal },
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key || !o.Key.startsWith(this.config.prefix)) continue;
        const listed = { key: o.Key, etag: bareEtag(o.ETag), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 };
        if (this.config.companions && o.Key.endsWith(TEXTS_SUFFIX)) companions.set(o.Key.slice(0, -TEXTS_SUFFIX.length), listed);
        if (!this.filter.accepts(o.Key.slice(this.config.prefix.length))) continue;
        out.push(listed);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) throw new Error('the listing is truncated but has no continuation token');
    } while (token);
    this.stats.listed += out.length;
    return { objects: out, companions };
  }

  /** Download one object into the spool and submit it, with its own texts and meta. */
  private async take(o: Listed, companion: Listed | undefined): Promise<Verdict> {
    const key = dedupeKey(this.config.bucket, o);
    const file = path.join(this.ctx.spoolDir, spoolName(key, o.key));
    const origin = {
      bucket: this.config.bucket, key: o.key, etag: o.etag, size: o.size, lastModified: new Date(o.lastModified).toISOString(),
      ...(companion ? { textsKey: companion.key, textsEtag: companion.etag } : {}),
    };
    if (o.size > this.config.maxObjectBytes) return this.submit(key, o, { origin }, file, this.tooLarge(o, o.size));
    let item: Item;
    try {
      const got = await this.download(o, file);
      if (got === 'over') return this.submit(key, o, { origin }, file, this.tooLarge(o, o.size + 1));
      if (typeof got === 'string') return got;
      item = { origin, ...(await this.itemTexts(o, got.metadata, companion)) };
    } catch (err) {
      await fsp.rm(`${file}.part`, { force: true });
      if (this.stopped) return 'halt';
      const kind = classify(err);
      if (kind === 'gone') return this.vanished(o, err);
      this.stats.downloadErrors++;
      this.ctx.log.warn({ key: o.key, code: errorCode(err) }, `cannot download s3://${this.config.bucket}/${o.key}: ${describe(err)}; retried at the next poll`);
      return 'failed';
    }
    return this.submit(key, o, item, file, item.failed);
  }

  /**
   * The object's own texts and meta (its companion key's, else its metadata's). One that cannot be read is the
   * item's error (MATCHD_COMPANION_INVALID): the object is still journalled and takes the rule's `error` actions.
   * A companion key deleted since the listing counts as none; a network failure is retried at the next poll.
   */
  private async itemTexts(o: Listed, metadata: Record<string, string> | undefined, companion: Listed | undefined): Promise<ItemTexts & { failed?: Failed }> {
    try {
      const fromMeta = fromMetadata(metadata, o.key);
      if (!companion) return fromMeta;
      const own = await fromCompanionKey(this.client, this.config.bucket, companion.key, companion.etag, this.config.companionBytes, this.abort.signal).catch((err: unknown) => {
        if (err instanceof MatchdError || classify(err) !== 'gone') throw err;
        return {};
      });
      return merge(fromMeta, own);
    } catch (err) {
      if (!(err instanceof MatchdError)) throw err;
      this.ctx.log.warn({ key: o.key, code: err.code }, err.message);
      return { failed: { code: err.code, message: err.message } };
    }
  }

  /** Journal the job (the downloaded file, or an already-failed item that has none). */
  private submit(key: string, o: Listed, item: Item, file: string, failed?: Failed): Verdict {
    let r;
    try {
      r = this.ctx.submit({
        dedupeKey: key,
        image: failed?.code === 'MATCHD_IMAGE_TOO_LARGE' ? { path: file } : { path: file, temporary: true },
        origin: item.origin,
        ...(item.texts !== undefined ? { texts: item.texts } : {}),
        ...(item.meta !== undefined ? { meta: item.meta } : {}),
        ...(failed ? { failed } : {}),
        ...(this.config.rule ? { rule: this.config.rule } : {}),
      });
    } catch (err) {
      fs.rmSync(file, { force: true });
      this.ctx.log.error({ key: o.key, err: (err as Error).message }, 'submit failed; retried at the next poll');
      return 'failed';
    }
    if (r.accepted) {
      this.stats.submitted++;
      this.ctx.log.debug({ key: o.key, etag: o.etag, jobId: r.jobId, duplicate: r.duplicate }, 'submitted');
      return 'submitted';
    }
    fs.rmSync(file, { force: true });
    if (r.reason === 'backpressure') {
      this.haltFor = r.retryAfterMs ?? 1000;
      this.ctx.log.debug({ retryAfterMs: this.haltFor }, 'backpressure: the rest waits');
    } else if (r.reason === 'unknown_rule') {
      this.haltFor = UNKNOWN_RULE_RETRY_MS;
      this.setHealth('degraded', r.message);
      this.ctx.log.error({ rule: this.config.rule, message: r.message }, "the core does not know this source's rule; nothing is submitted");
    } else this.haltFor = this.config.pollIntervalMs;
    return 'halt';
  }

  /** Stream GetObject into `<file>.part` under the byte cap, check it is the listed version, then rename. */
  private async download(o: Listed, file: string): Promise<{ metadata: Record<string, string> | undefined } | 'changed' | 'over'> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: o.key }), { abortSignal: this.abort.signal });
    const body = res.Body as Readable | undefined;
    if (bareEtag(res.ETag) !== o.etag) {
      body?.destroy();
      // Overwritten between list and get: that new version is listed (and scored) on its own.
      this.ctx.log.info({ key: o.key, listed: o.etag, now: bareEtag(res.ETag) }, 'object changed since it was listed; its new version is picked up by the next poll');
      return 'changed';
    }
    if (!body) throw new Error('GetObject returned no body');
    const cap = this.config.maxObjectBytes;
    let bytes = 0;
    let over = false;
    const limiter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > cap) {
          over = true;
          cb(new Error('over maxObjectBytes'));
        } else cb(null, chunk);
      },
    });
    try {
      await pipeline(body, limiter, fs.createWriteStream(`${file}.part`), { signal: this.abort.signal });
    } catch (err) {
      if (!over) throw err;
      // Bigger than listed (cannot happen for one ETag, but a store may lie): refused like any oversized object.
      await fsp.rm(`${file}.part`, { force: true });
      return 'over';
    }
    await fsp.rename(`${file}.part`, file);
    return { metadata: res.Metadata };
  }

  /** An object over `maxObjectBytes` is not downloaded: it is journalled as failed, so the rule's `error` actions run. */
  private tooLarge(o: Listed, size: number): Failed {
    this.stats.tooLarge++;
    const message = `s3://${this.config.bucket}/${o.key} is ${size} bytes, over maxObjectBytes (${this.config.maxObjectBytes}); not downloaded`;
    this.ctx.log.warn({ key: o.key, size, maxObjectBytes: this.config.maxObjectBytes, code: 'MATCHD_IMAGE_TOO_LARGE' }, message);
    return { code: 'MATCHD_IMAGE_TOO_LARGE', message };
  }

  /** Deleted between list and get: a per-item outcome (logged, counted, kept in plugin state), not a job. */
  private vanished(o: Listed, err: unknown): Verdict {
    this.stats.vanished++;
    const message = `s3://${this.config.bucket}/${o.key} disappeared between listing and download (${errorCode(err)})`;
    this.ctx.log.warn({ key: o.key, etag: o.etag, code: 'MATCHD_S3_OBJECT_GONE' }, message);
    this.record({ key: o.key, etag: o.etag, code: 'MATCHD_S3_OBJECT_GONE', message, at: Date.now() });
    return 'vanished';
  }

  private record(outcome: ItemOutcome): void {
    const list = this.ctx.state.get<ItemOutcome[]>('outcomes') ?? [];
    list.push(outcome);
    this.ctx.state.set('outcomes', list.slice(-KEEP_OUTCOMES));
  }

  /** AccessDenied, NoSuchBucket, bad credentials: retrying cannot help, so this source stops (the daemon goes on). */
  private fatal(err: unknown): number {
    const detail = `s3 source stopped: cannot list s3://${this.config.bucket}/${this.config.prefix}: ${describe(err)} (MATCHD_S3_ACCESS); fix the bucket, credentials or permissions and restart`;
    this.ctx.log.error({ code: 'MATCHD_S3_ACCESS', s3Code: errorCode(err), bucket: this.config.bucket }, detail);
    this.setHealth('down', detail);
    return Infinity;
  }

  private setHealth(state: 'ok' | 'degraded' | 'down', detail?: string): void {
    if (this.health.state === state && this.health.detail === detail) return;
    if (state === 'ok' && this.health.state !== 'ok') this.ctx.log.info('S3 source healthy again');
    this.health = { state, ...(detail ? { detail } : {}) };
    this.ctx.setHealth(state, detail);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.current?.catch(() => {});
    clearTimeout(this.timer);
    // The client is not destroyed: the daemon drains this source's pending actions (tag, s3copy...) after stop().
    // Its idle keep-alive sockets are unref'd and do not hold the process open.
  }
}

export function dedupeKey(bucket: string, o: { key: string; etag: string }): string {
  return `s3:${bucket}/${o.key}@${o.etag}`;
}

/** Same object version → same spool name (a re-download after a crash overwrites, never piles up). */
function spoolName(dedupeKey: string, key: string): string {
  const base = path.posix.basename(key).replace(/[^A-Za-z0-9._-]/g, '_').slice(-80) || 'object';
  return `${createHash('sha256').update(dedupeKey).digest('hex').slice(0, 20)}-${base}`;
}
