/**
 * Taking one object: stream GetObject into the spool folder under the byte cap, read its own texts and meta, and
 * submit it. An object the store will not hand over (403 AccessDenied, or an error on that object alone while the
 * store answers) is tried again at the next listings; after `downloadAttempts` it is journalled as a failed job
 * (MATCHD_S3_ACCESS / MATCHD_S3_DOWNLOAD), so the rule's `error` actions run and it no longer holds the watermark.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MatchdError, type ErrorCode } from '../../core/errors.ts';
import type { ItemTexts } from '../../core/items/companion.ts';
import type { PluginContext } from '../../core/plugin.ts';
import { bareEtag, classify, describe, errorCode, s3Uri } from './client.ts';
import type { S3Config } from './config.ts';
import { fromCompanionKey, fromMetadata, merge } from './item-texts.ts';
import type { Listed } from './listing.ts';

/** What became of one object: journalled, gone, changed since listed, to try again (failed), or stop for now (halt). */
export type Taken = 'submitted' | 'vanished' | 'changed' | 'failed' | 'halt';

type Failed = { code: ErrorCode; message: string };

/** A per-item outcome that produced no job (kept, most recent last, in plugin state `outcomes`). */
export interface ItemOutcome {
  key: string;
  etag: string;
  code: string;
  message: string;
  at: number;
}

const KEEP_OUTCOMES = 200;
const UNKNOWN_RULE_RETRY_MS = 60_000;

export class Taker {
  readonly stats = { submitted: 0, vanished: 0, tooLarge: 0, downloadErrors: 0, refused: 0 };
  /** Download failures per object version while the store answered, until it is taken or given up. */
  private readonly failures = new Map<string, number>();
  /** Why the last 'halt' happened, as the delay before trying again. */
  haltFor = 0;
  /** A problem to show on health (an unknown rule), cleared by the next submit. */
  problem: string | undefined;

  constructor(
    private readonly ctx: PluginContext,
    private readonly client: S3Client,
    private readonly config: S3Config,
    private readonly signal: AbortSignal,
    private readonly stopped: () => boolean,
  ) {}

  /** Download `o` and submit it under `key` (its dedupe key), with its companion's texts if it has one. */
  async take(o: Listed, companion: Listed | undefined, key: string, extraOrigin: Record<string, unknown> = {}): Promise<Taken> {
    const file = path.join(this.ctx.spoolDir, spoolName(key, o.key));
    const origin = {
      bucket: this.config.bucket, key: o.key, uri: s3Uri(this.config.bucket, o.key), etag: o.etag, size: o.size,
      lastModified: new Date(o.lastModified).toISOString(),
      ...(companion ? { textsKey: companion.key, textsEtag: companion.etag } : {}),
      ...extraOrigin,
    };
    if (o.size > this.config.maxObjectBytes) return this.submit(key, o, { origin }, file, this.tooLarge(o, o.size));
    let item: ItemTexts & { origin: Record<string, unknown>; failed?: Failed };
    try {
      const got = await this.download(o, file);
      if (got === 'over') return this.submit(key, o, { origin }, file, this.tooLarge(o, o.size + 1));
      if (typeof got === 'string') return got;
      item = { origin, ...(await this.itemTexts(o, got.metadata, companion)) };
    } catch (err) {
      await fsp.rm(`${file}.part`, { force: true });
      if (this.stopped()) return 'halt';
      if (classify(err) === 'gone') return this.vanished(o, err);
      return this.downloadFailed(o, key, file, origin, err);
    }
    this.failures.delete(key);
    return this.submit(key, o, item, file, item.failed);
  }

  /**
   * A failed download. Without an answer from the store (refused, timed out) it waits for the store, however long;
   * with one (403, a 5xx on this object) it counts, and the `downloadAttempts`-th becomes the object's failed job.
   */
  private downloadFailed(o: Listed, key: string, file: string, origin: Record<string, unknown>, err: unknown): Taken {
    this.stats.downloadErrors++;
    const uri = s3Uri(this.config.bucket, o.key);
    const answered = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode !== undefined;
    const n = answered ? (this.failures.get(key) ?? 0) + 1 : 0;
    if (answered) this.failures.set(key, n);
    if (n < this.config.downloadAttempts) {
      const left = answered ? `; tried ${n} of ${this.config.downloadAttempts} times` : '';
      this.ctx.log.warn({ key: o.key, code: errorCode(err) }, `cannot download ${uri}: ${describe(err)}${left}; tried again at the next listing`);
      return 'failed';
    }
    this.failures.delete(key);
    const code: ErrorCode = classify(err) === 'fatal' ? 'MATCHD_S3_ACCESS' : 'MATCHD_S3_DOWNLOAD';
    const message = `${uri} could not be downloaded (${n} attempts): ${describe(err)}`;
    this.ctx.log.warn({ key: o.key, code }, `${message}; journalled as a failed job`);
    return this.submit(key, o, { origin }, file, { code, message });
  }

  /**
   * The object's own texts and meta (its companion key's, else its metadata's). One that cannot be read is the
   * item's error (MATCHD_COMPANION_INVALID): the object is still journalled and takes the rule's `error` actions.
   * A companion key deleted since the listing counts as none; a network failure is retried at the next listing.
   */
  private async itemTexts(o: Listed, metadata: Record<string, string> | undefined, companion: Listed | undefined): Promise<ItemTexts & { failed?: Failed }> {
    try {
      const fromMeta = fromMetadata(metadata, o.key);
      if (!companion) return fromMeta;
      const own = await fromCompanionKey(this.client, this.config.bucket, companion.key, companion.etag, this.config.companionBytes, this.signal).catch((err: unknown) => {
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
  private submit(key: string, o: Listed, item: ItemTexts & { origin: Record<string, unknown> }, file: string, failed?: Failed): Taken {
    let r;
    try {
      r = this.ctx.submit({
        dedupeKey: key,
        image: failed && !fs.existsSync(file) ? { path: file } : { path: file, temporary: true },
        origin: item.origin,
        ...(item.texts !== undefined ? { texts: item.texts } : {}),
        ...(item.meta !== undefined ? { meta: item.meta } : {}),
        ...(failed ? { failed } : {}),
        ...(this.config.rule ? { rule: this.config.rule } : {}),
      });
    } catch (err) {
      fs.rmSync(file, { force: true });
      this.ctx.log.error({ key: o.key, err: (err as Error).message }, 'submit failed; tried again at the next listing');
      return 'failed';
    }
    if (r.accepted) {
      this.stats.submitted++;
      this.problem = undefined;
      this.ctx.log.debug({ key: o.key, etag: o.etag, jobId: r.jobId, duplicate: r.duplicate }, 'submitted');
      return 'submitted';
    }
    fs.rmSync(file, { force: true });
    this.stats.refused++;
    if (r.reason === 'backpressure') {
      this.haltFor = r.retryAfterMs ?? 1000;
      this.ctx.log.debug({ retryAfterMs: this.haltFor }, 'backpressure: the rest waits');
    } else if (r.reason === 'unknown_rule') {
      this.haltFor = UNKNOWN_RULE_RETRY_MS;
      this.problem = r.message;
      this.ctx.log.error({ rule: this.config.rule, message: r.message }, "the core does not know this source's rule; nothing is submitted");
    } else this.haltFor = this.config.pollIntervalMs;
    return 'halt';
  }

  /** Stream GetObject into `<file>.part` under the byte cap, check it is the listed version, then rename. */
  private async download(o: Listed, file: string): Promise<{ metadata: Record<string, string> | undefined } | 'changed' | 'over'> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: o.key }), { abortSignal: this.signal });
    const body = res.Body as Readable | undefined;
    if (bareEtag(res.ETag) !== o.etag) {
      body?.destroy();
      // Overwritten between list and get: that new version is listed (and scored) on its own.
      this.ctx.log.info({ key: o.key, listed: o.etag, now: bareEtag(res.ETag) }, 'object changed since it was listed; its new version is taken at the next listing');
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
      await pipeline(body, limiter, fs.createWriteStream(`${file}.part`), { signal: this.signal });
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
    const message = `${s3Uri(this.config.bucket, o.key)} is ${size} bytes, over maxObjectBytes (${this.config.maxObjectBytes}); not downloaded`;
    this.ctx.log.warn({ key: o.key, size, maxObjectBytes: this.config.maxObjectBytes, code: 'MATCHD_IMAGE_TOO_LARGE' }, message);
    return { code: 'MATCHD_IMAGE_TOO_LARGE', message };
  }

  /** Deleted between list and get: a per-item outcome (logged, counted, kept in plugin state), not a job. */
  private vanished(o: Listed, err: unknown): Taken {
    this.stats.vanished++;
    const message = `${s3Uri(this.config.bucket, o.key)} disappeared between listing and download (${errorCode(err)})`;
    this.ctx.log.warn({ key: o.key, etag: o.etag, code: 'MATCHD_S3_OBJECT_GONE' }, message);
    const list = this.ctx.state.get<ItemOutcome[]>('outcomes') ?? [];
    list.push({ key: o.key, etag: o.etag, code: 'MATCHD_S3_OBJECT_GONE', message, at: Date.now() });
    this.ctx.state.set('outcomes', list.slice(-KEEP_OUTCOMES));
    return 'vanished';
  }
}

/** Same object version → same spool name (a re-download after a crash overwrites, never piles up). */
export function spoolName(dedupeKey: string, key: string): string {
  const base = path.posix.basename(key).replace(/[^A-Za-z0-9._-]/g, '_').slice(-80) || 'object';
  return `${createHash('sha256').update(dedupeKey).digest('hex').slice(0, 20)}-${base}`;
}
