/**
 * The S3 source's action kinds, carried out for its own jobs: `tag` (object tags, merged with existing ones),
 * `s3copy` (copy per band to a prefix or bucket, optionally deleting the source once the copy is verified) and
 * `s3sidecar` (the result document as JSON next to the object or under a results prefix). The core's `copy` and
 * `sidecar` are file actions, hence the distinct names. Each is idempotent: re-running one after a crash finds the
 * work done and finishes, never duplicating it.
 *
 * Every action first checks that the object is still the version that was scored (its ETag): gone or overwritten,
 * there is nothing to do for this result, and the action is done with a note (`note` in its payload), not dead.
 * A store that does not answer (network, 5xx, throttling) is waited for, with backoff, for up to `actionMaxAgeMs`
 * from the action's first failure; AccessDenied and other 4xx answers fail the action at once.
 */
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, PutObjectTaggingCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { MatchdError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { PermanentActionError, RetryLaterError, type ActionContext, type ActionHandler, type ActionResult, type PluginState } from '../../core/plugin.ts';
import { backoffMs, bareEtag, classify, describe, s3Uri } from './client.ts';
import { CopyOptionsSchema, SidecarOptionsSchema, TagOptionsSchema, type S3Config } from './config.ts';
import { TEXTS_SUFFIX } from './item-texts.ts';
import { type Head, OUTPUT_OF, type ResultDoc, fill, joinKey, outputsInOtherBands } from './outputs.ts';
import { TAG_KEYS } from './tracker.ts';

export { fill } from './outputs.ts';

interface ObjectRef {
  bucket: string;
  key: string;
  etag: string;
  size: number;
}

const S3_MAX_TAGS = 10;

function objectOf(ctx: ActionContext): ObjectRef {
  const m = ctx.job.origin as Partial<ObjectRef>;
  if (typeof m.bucket !== 'string' || typeof m.key !== 'string' || typeof m.etag !== 'string') {
    throw new PermanentActionError(`job ${ctx.jobId} has no S3 object in its origin (bucket, key, etag)`);
  }
  return { bucket: m.bucket, key: m.key, etag: m.etag, size: Number(m.size ?? -1) };
}

/**
 * Where the scored object is now: moved by an earlier `s3copy` with `deleteSource` (the job's location is then its
 * `s3://` URI), else where it was listed. Later actions (tag, sidecar) act on it there.
 */
function whereNow(ctx: ActionContext, o: ObjectRef): ObjectRef {
  const m = /^s3:\/\/([^/]+)\/(.+)$/s.exec(ctx.location);
  return m ? { ...o, bucket: m[1]!, key: m[2]! } : o;
}

/** The `<key>.texts.json` companion the job's texts were read from, if any. */
function textsOf(ctx: ActionContext): { key: string; etag: string } | undefined {
  const { textsKey, textsEtag } = ctx.job.origin as { textsKey?: unknown; textsEtag?: unknown };
  return typeof textsKey === 'string' && typeof textsEtag === 'string' ? { key: textsKey, etag: textsEtag } : undefined;
}

const isMultipart = (etag: string) => etag.includes('-');
const copySource = (bucket: string, key: string) => `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;

function age(ms: number): string {
  return ms >= 3600_000 ? `${(ms / 3600_000).toFixed(1)} h` : ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

export function makeActions(client: S3Client, config: S3Config, log: Logger, state: PluginState): Record<string, ActionHandler> {
  /**
   * Map an S3 failure to the runner's retry model: a store that does not answer is waited for (bounded by the age
   * of the first failure, kept in the action's payload so a restart does not reset it); 4xx fail at once.
   */
  const failed = (what: string, err: unknown, payload: Record<string, unknown>, ctx: ActionContext): never => {
    if (err instanceof MatchdError) throw err;
    if (classify(err) !== 'transient') throw new PermanentActionError(`${what}: ${describe(err)}`);
    const now = ctx.now();
    const first = ctx.attempt > 1 && typeof payload.firstFailedAt === 'number' ? payload.firstFailedAt : now;
    if (first === now) ctx.remember({ ...payload, firstFailedAt: now });
    if (now - first >= config.actionMaxAgeMs) {
      throw new PermanentActionError(`${what}: ${describe(err)}; the store has failed this action for ${age(now - first)} (${ctx.attempt} attempts, actionMaxAgeMs ${age(config.actionMaxAgeMs)})`);
    }
    throw new RetryLaterError(`${what}: ${describe(err)}`, backoffMs(ctx.attempt, Math.max(1, config.backoff.initialMs), config.backoff.maxMs));
  };

  /** Done, with a note saying why nothing was done (kept in the action's payload, logged). */
  const noted = (payload: Record<string, unknown>, ctx: ActionContext, note: string, fields: Record<string, unknown> = {}): ActionResult => {
    log.info({ jobId: ctx.jobId, ...fields }, note);
    ctx.remember({ ...payload, note });
    return {};
  };

  /** HeadObject, or undefined when there is no such object. */
  const head = async (bucket: string, key: string): Promise<Head | undefined> => {
    try {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        etag: bareEtag(h.ETag), size: h.ContentLength ?? -1, metadata: h.Metadata ?? {}, ...(h.VersionId ? { versionId: h.VersionId } : {}),
        headers: {
          ...(h.ContentType ? { ContentType: h.ContentType } : {}), ...(h.ContentEncoding ? { ContentEncoding: h.ContentEncoding } : {}),
          ...(h.ContentDisposition ? { ContentDisposition: h.ContentDisposition } : {}), ...(h.ContentLanguage ? { ContentLanguage: h.ContentLanguage } : {}),
          ...(h.CacheControl ? { CacheControl: h.CacheControl } : {}),
        },
      };
    } catch (err) {
      if (classify(err) === 'gone') return undefined;
      throw err;
    }
  };

  /**
   * The object as scored, or the note to finish with: gone (deleted after scoring) or overwritten since (its new
   * version is a job of its own; this result must not land on it).
   */
  const scoredVersion = async (o: ObjectRef, doing: string): Promise<Head | string> => {
    const now = await head(o.bucket, o.key);
    if (!now) return `${s3Uri(o.bucket, o.key)} is gone (deleted after it was scored): not ${doing}`;
    if (now.etag !== o.etag) return `${s3Uri(o.bucket, o.key)} was overwritten after it was scored (ETag ${o.etag} → ${now.etag}): not ${doing}; its new version has its own job`;
    return now;
  };

  /** Key below the source prefix (kept under a destination prefix). */
  const relative = (key: string) => (config.prefix && key.startsWith(config.prefix) ? key.slice(config.prefix.length) : key);

  /** Remember a band an output went to (outputs.ts looks for copies of the same object in the others). */
  const sawBand = (band: string | undefined) => {
    if (!band) return;
    const bands = state.get<string[]>('outputBands') ?? [];
    if (!bands.includes(band)) state.set('outputBands', [...bands, band].sort());
  };

  const removeOtherBands = async (template: string, bucket: string, rest: string, o: ObjectRef, doc: ResultDoc, ctx: ActionContext) => {
    for (const stale of await outputsInOtherBands(template, rest, doc, state.get<string[]>('outputBands') ?? [], `${o.bucket}/${o.key}`, (k) => head(bucket, k))) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: stale.key }));
      if (stale.companion) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: stale.companion }));
      log.info({ jobId: ctx.jobId, removed: s3Uri(bucket, stale.key), band: doc.outcome }, 'removed the output made for this object in another band');
    }
  };

  async function tag(payload: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const o = whereNow(ctx, objectOf(ctx));
    const { tags } = TagOptionsSchema.parse(payload.options ?? {});
    const doc = (payload.doc ?? {}) as ResultDoc;
    const what = `tag ${s3Uri(o.bucket, o.key)}`;
    try {
      const now = await scoredVersion(o, 'tagged');
      if (typeof now === 'string') return noted(payload, ctx, now, { key: o.key });
      const ours = Object.entries(tags).map(([Key, v]) => ({ Key, Value: fill(v, doc) }));
      const version = now.versionId ? { VersionId: now.versionId } : {};
      const existing = (await client.send(new GetObjectTaggingCommand({ Bucket: o.bucket, Key: o.key, ...version }))).TagSet ?? [];
      const merged = [...existing.filter((t) => !(t.Key! in tags)).map((t) => ({ Key: t.Key!, Value: t.Value ?? '' })), ...ours];
      if (merged.length > S3_MAX_TAGS) {
        throw new PermanentActionError(`${what}: ${merged.length} tags after merging with the object's ${existing.length}; S3 allows ${S3_MAX_TAGS}`);
      }
      // Before tagging: the tracker tells a re-upload (tags dropped) from a tag change by these keys.
      const known = state.get<string[]>(TAG_KEYS) ?? [];
      if (Object.keys(tags).some((k) => !known.includes(k))) state.set(TAG_KEYS, [...new Set([...known, ...Object.keys(tags)])].sort());
      const same = existing.length === merged.length && merged.every((t) => existing.some((e) => e.Key === t.Key && (e.Value ?? '') === t.Value));
      if (!same) await client.send(new PutObjectTaggingCommand({ Bucket: o.bucket, Key: o.key, ...version, Tagging: { TagSet: merged } }));
      return {};
    } catch (err) {
      return failed(what, err, payload, ctx);
    }
  }

  async function s3copy(payload: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const listed = objectOf(ctx);
    const o = whereNow(ctx, listed);
    const opts = CopyOptionsSchema.parse(payload.options ?? {});
    const doc = (payload.doc ?? {}) as ResultDoc;
    const bucket = opts.bucket ?? o.bucket;
    const rest = relative(listed.key);
    const key = joinKey(fill(opts.prefix, doc), rest);
    const what = `copy ${s3Uri(o.bucket, o.key)} to ${s3Uri(bucket, key)}`;
    if (bucket === o.bucket && key === o.key) throw new PermanentActionError(`${what}: the destination is the object itself`);
    try {
      const matches = (d: Head | undefined) =>
        !!d && (o.size < 0 || d.size === o.size) && (isMultipart(o.etag) || isMultipart(d.etag) || d.etag === o.etag);
      let dest = await head(bucket, key);
      if (!matches(dest)) {
        const src = await scoredVersion(o, 'copied');
        if (typeof src === 'string') return noted(payload, ctx, src, { key: o.key });
        // The copy says which object it was made from (x-amz-meta-matchd-source), so a later version's copy can find
        // and remove it when it lands in another band. Its own metadata and content headers go along.
        await client.send(new CopyObjectCommand({
          Bucket: bucket, Key: key, CopySource: copySource(o.bucket, o.key), CopySourceIfMatch: `"${o.etag}"`,
          MetadataDirective: 'REPLACE', Metadata: { ...src.metadata, [OUTPUT_OF]: encodeURIComponent(`${listed.bucket}/${listed.key}`) }, ...src.headers,
        }));
        dest = await head(bucket, key);
        if (!matches(dest)) throw new PermanentActionError(`${what}: the copy could not be verified (destination ${dest ? `${dest.size} bytes, ETag ${dest.etag}` : 'missing'})`);
      }
      // The object's texts companion goes along (the version that was read), named after the copy.
      const texts = textsOf(ctx);
      if (texts) {
        const to = key + TEXTS_SUFFIX;
        const there = await head(bucket, to);
        const src = await head(o.bucket, texts.key);
        if (src?.etag === texts.etag && there?.etag !== texts.etag) {
          await client.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: copySource(o.bucket, texts.key), CopySourceIfMatch: `"${texts.etag}"` }));
        }
        if (opts.deleteSource && src?.etag === texts.etag && (await head(bucket, to))?.etag === texts.etag) {
          await client.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: texts.key }));
        }
      }
      if (opts.deleteSource) {
        // A move: the copies are the objects themselves now, never removed for a later version. Later actions of
        // the job act on the object where it went (the job's location).
        const src = await head(o.bucket, o.key);
        if (src && src.etag === o.etag) await client.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: o.key }));
        else if (src) {
          log.info({ key: o.key }, 'source changed since it was scored; copied but not deleted');
          return {};
        }
        return { location: s3Uri(bucket, key) };
      } else {
        sawBand(doc.outcome);
        await removeOtherBands(opts.prefix, bucket, rest, listed, doc, ctx);
      }
      return {};
    } catch (err) {
      return failed(what, err, payload, ctx);
    }
  }

  async function s3sidecar(payload: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const listed = objectOf(ctx);
    const o = whereNow(ctx, listed);
    const opts = SidecarOptionsSchema.parse(payload.options ?? {});
    const doc = (payload.doc ?? {}) as ResultDoc;
    const bucket = opts.bucket ?? o.bucket;
    // Under a prefix, named after the key as listed; else next to the object, where it is now.
    const rest = `${relative(listed.key)}.matchd.json`;
    const key = opts.prefix !== undefined ? joinKey(fill(opts.prefix, doc), rest) : `${o.key}.matchd.json`;
    const what = `write the result of ${s3Uri(o.bucket, o.key)} to ${s3Uri(bucket, key)}`;
    try {
      // A result for a version that is gone or replaced would be an orphan, or overwrite the newer version's result.
      // An object matchd may not read (403: its job is MATCHD_S3_ACCESS) cannot be checked: its result is written.
      const now = await scoredVersion(o, 'written').catch((err: unknown) => {
        if (classify(err) === 'fatal' && ctx.job.outcome === 'error') return undefined;
        throw err;
      });
      if (typeof now === 'string') return noted(payload, ctx, now, { key: o.key });
      await client.send(new PutObjectCommand({
        Bucket: bucket, Key: key, Body: JSON.stringify(doc, null, 2) + '\n', ContentType: 'application/json',
        Metadata: { [OUTPUT_OF]: encodeURIComponent(`${listed.bucket}/${listed.key}`), 'matchd-etag': o.etag },
      }));
      if (opts.prefix !== undefined) {
        sawBand(doc.outcome);
        await removeOtherBands(opts.prefix, bucket, rest, listed, doc, ctx);
      }
      return {};
    } catch (err) {
      return failed(what, err, payload, ctx);
    }
  }

  return { tag, s3copy, s3sidecar };
}
