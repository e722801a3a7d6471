/**
 * The S3 source's action kinds, carried out for its own jobs: `tag` (object tags, merged with existing ones),
 * `s3copy` (copy per band to a prefix or bucket, optionally deleting the source once the copy is verified) and
 * `s3sidecar` (the result document as JSON next to the object or under a results prefix). The core's `copy` and
 * `sidecar` are file actions, hence the distinct names. Each is idempotent: re-running one after a crash finds
 * the work done and finishes, never duplicating it. Throttling, 5xx and network failures are retried with backoff
 * (RetryLaterError); AccessDenied and other 4xx answers are permanent.
 */
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, PutObjectTaggingCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { MatchdError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { PermanentActionError, RetryLaterError, type ActionContext, type ActionHandler, type ActionResult } from '../../core/plugin.ts';
import { backoffMs, bareEtag, classify, describe } from './client.ts';
import { CopyOptionsSchema, SidecarOptionsSchema, TagOptionsSchema, type S3Config } from './config.ts';
import { TEXTS_SUFFIX } from './item-texts.ts';

interface ObjectRef {
  bucket: string;
  key: string;
  etag: string;
  size: number;
}

interface ResultDoc {
  outcome?: string;
  rule?: string;
  source?: string;
  decidedBy?: string;
  results?: { text: string; cosine: number; score: number; band: string }[];
}

const S3_MAX_TAGS = 10;

function objectOf(ctx: ActionContext): ObjectRef {
  const m = ctx.job.origin as Partial<ObjectRef>;
  if (typeof m.bucket !== 'string' || typeof m.key !== 'string' || typeof m.etag !== 'string') {
    throw new PermanentActionError(`job ${ctx.jobId} has no S3 object in its origin (bucket, key, etag)`);
  }
  return { bucket: m.bucket, key: m.key, etag: m.etag, size: Number(m.size ?? -1) };
}

/** The `<key>.texts.json` companion the job's texts were read from, if any. */
function textsOf(ctx: ActionContext): { key: string; etag: string } | undefined {
  const { textsKey, textsEtag } = ctx.job.origin as { textsKey?: unknown; textsEtag?: unknown };
  return typeof textsKey === 'string' && typeof textsEtag === 'string' ? { key: textsKey, etag: textsEtag } : undefined;
}

/** {band}, {outcome}, {rule}, {source}, {score} (2 decimals), {cosine} (4 decimals) from the result document. */
export function fill(template: string, doc: ResultDoc): string {
  const decided = doc.results?.find((r) => r.text === doc.decidedBy) ?? doc.results?.[0];
  const vars: Record<string, string> = {
    band: doc.outcome ?? '', outcome: doc.outcome ?? '', rule: doc.rule ?? '', source: doc.source ?? '',
    score: decided ? decided.score.toFixed(2) : '', cosine: decided ? decided.cosine.toFixed(4) : '',
  };
  return template.replace(/\{(band|outcome|rule|source|score|cosine)\}/g, (_, k: string) => vars[k]!);
}

function joinKey(prefix: string, rest: string): string {
  if (!prefix) return rest;
  return prefix.endsWith('/') ? `${prefix}${rest}` : `${prefix}/${rest}`;
}

const isMultipart = (etag: string) => etag.includes('-');

export function makeActions(client: S3Client, config: S3Config, log: Logger): Record<string, ActionHandler> {
  /** Map an S3 failure to the runner's retry model. */
  const failed = (what: string, err: unknown, ctx: ActionContext): never => {
    if (err instanceof MatchdError) throw err;
    if (classify(err) === 'transient') {
      if (ctx.attempt >= config.actionAttempts) throw new PermanentActionError(`${what}: ${describe(err)}; gave up after ${ctx.attempt} attempts`);
      throw new RetryLaterError(`${what}: ${describe(err)}`, backoffMs(ctx.attempt, config.backoff.initialMs, config.backoff.maxMs));
    }
    throw new PermanentActionError(`${what}: ${describe(err)}`);
  };

  /** HeadObject, or undefined when there is no such object. */
  const head = async (bucket: string, key: string) => {
    try {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { etag: bareEtag(h.ETag), size: h.ContentLength ?? -1 };
    } catch (err) {
      if (classify(err) === 'gone') return undefined;
      throw err;
    }
  };

  /** Key below the source prefix (kept under a destination prefix). */
  const relative = (key: string) => (config.prefix && key.startsWith(config.prefix) ? key.slice(config.prefix.length) : key);

  async function tag(payload: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const o = objectOf(ctx);
    const { tags } = TagOptionsSchema.parse(payload.options ?? {});
    const doc = (payload.doc ?? {}) as ResultDoc;
    const what = `tag s3://${o.bucket}/${o.key}`;
    try {
      const now = await head(o.bucket, o.key);
      if (!now) throw new PermanentActionError(`${what}: the object is gone`);
      if (now.etag !== o.etag) {
        // Overwritten since it was scored: these tags describe the old content; the new version gets its own job.
        log.info({ key: o.key, scored: o.etag, now: now.etag }, 'object changed since it was scored; not tagged');
        return {};
      }
      const ours = Object.entries(tags).map(([Key, v]) => ({ Key, Value: fill(v, doc) }));
      const existing = (await client.send(new GetObjectTaggingCommand({ Bucket: o.bucket, Key: o.key }))).TagSet ?? [];
      const merged = [...existing.filter((t) => !(t.Key! in tags)).map((t) => ({ Key: t.Key!, Value: t.Value ?? '' })), ...ours];
      if (merged.length > S3_MAX_TAGS) {
        throw new PermanentActionError(`${what}: ${merged.length} tags after merging with the object's ${existing.length}; S3 allows ${S3_MAX_TAGS}`);
      }
      const same = existing.length === merged.length && merged.every((t) => existing.some((e) => e.Key === t.Key && (e.Value ?? '') === t.Value));
      if (!same) await client.send(new PutObjectTaggingCommand({ Bucket: o.bucket, Key: o.key, Tagging: { TagSet: merged } }));
      return {};
    } catch (err) {
      return failed(what, err, ctx);
    }
  }

  async function s3copy(payload: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const o = objectOf(ctx);
    const opts = CopyOptionsSchema.parse(payload.options ?? {});
    const doc = (payload.doc ?? {}) as ResultDoc;
    const bucket = opts.bucket ?? o.bucket;
    const key = joinKey(fill(opts.prefix, doc), relative(o.key));
    const what = `copy s3://${o.bucket}/${o.key} to s3://${bucket}/${key}`;
    if (bucket === o.bucket && key === o.key) throw new PermanentActionError(`${what}: the destination is the object itself`);
    try {
      const matches = (d: { etag: string; size: number } | undefined) =>
        !!d && (o.size < 0 || d.size === o.size) && (isMultipart(o.etag) || isMultipart(d.etag) || d.etag === o.etag);
      let dest = await head(bucket, key);
      if (!matches(dest)) {
        const src = await head(o.bucket, o.key);
        if (!src) throw new PermanentActionError(`${what}: the source object is gone`);
        if (src.etag !== o.etag) {
          log.info({ key: o.key, scored: o.etag, now: src.etag }, 'object changed since it was scored; not copied');
          return {};
        }
        await client.send(new CopyObjectCommand({
          Bucket: bucket, Key: key, CopySource: `${o.bucket}/${o.key.split('/').map(encodeURIComponent).join('/')}`, CopySourceIfMatch: `"${o.etag}"`,
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
          await client.send(new CopyObjectCommand({
            Bucket: bucket, Key: to, CopySource: `${o.bucket}/${texts.key.split('/').map(encodeURIComponent).join('/')}`, CopySourceIfMatch: `"${texts.etag}"`,
          }));
        }
        if (opts.deleteSource && src?.etag === texts.etag && (await head(bucket, to))?.etag === texts.etag) {
          await client.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: texts.key }));
        }
      }
      if (opts.deleteSource) {
        const src = await head(o.bucket, o.key);
        if (src && src.etag === o.etag) await client.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: o.key }));
        else if (src) log.info({ key: o.key }, 'source changed since it was scored; copied but not deleted');
      }
      return {};
    } catch (err) {
      return failed(what, err, ctx);
    }
  }

  async function s3sidecar(payload: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const o = objectOf(ctx);
    const opts = SidecarOptionsSchema.parse(payload.options ?? {});
    const doc = (payload.doc ?? {}) as ResultDoc;
    const bucket = opts.bucket ?? o.bucket;
    const key = opts.prefix !== undefined ? joinKey(fill(opts.prefix, doc), `${relative(o.key)}.matchd.json`) : `${o.key}.matchd.json`;
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(doc, null, 2) + '\n', ContentType: 'application/json' }));
      return {};
    } catch (err) {
      return failed(`write the result to s3://${bucket}/${key}`, err, ctx);
    }
  }

  return { tag, s3copy, s3sidecar };
}
