/** The S3 source's options (`sources[].options` for `type: s3`) and its action kinds' options. */
import { z } from 'zod';

const ms = (field: string) =>
  z.number({ error: `${field} must be a number of milliseconds` }).int(`${field} must be a whole number of milliseconds`).min(0, `${field} must be >= 0`);
const str = (field: string) => z.string({ error: `${field} must be a string` }).min(1, `${field} must not be empty`);
const globs = (field: string) =>
  z.array(z.string({ error: `${field} must hold glob strings` }).min(1, `${field} must not hold an empty glob`), { error: `${field} must be a list of globs` });

/** Image extensions accepted by default (content is sniffed by the core anyway; this only skips obvious non-images). */
export const DEFAULT_INCLUDE: readonly string[] = ['**/*.{jpg,jpeg,png,webp,gif,tif,tiff,avif,heic,heif,bmp}'];

/** Validates and fills in the defaults of the S3 source's options. */
export const S3ConfigSchema = z.strictObject(
  {
    bucket: str('bucket'),
    prefix: z.string({ error: 'prefix must be a string' }).default('').describe('only keys under this prefix are listed'),
    endpoint: z.url({ error: 'endpoint must be a URL like http://127.0.0.1:9000' }).optional().describe('S3-compatible stores (MinIO, Ceph, R2...)'),
    region: str('region').default('us-east-1'),
    forcePathStyle: z.boolean({ error: 'forcePathStyle must be true or false' }).default(false),
    accessKeyId: str('accessKeyId').optional().describe('use ${ENV}; omitted: the standard AWS credential chain'),
    secretAccessKey: str('secretAccessKey').optional().describe('use ${ENV}; never logged'),
    sessionToken: str('sessionToken').optional(),
    pollIntervalMs: ms('pollIntervalMs').min(10, 'pollIntervalMs must be >= 10').default(30_000),
    minAgeMs: ms('minAgeMs').default(5_000).describe('objects modified more recently are left for a later poll'),
    include: globs('include').default([...DEFAULT_INCLUDE]).describe('globs on the key relative to prefix, case-insensitive; [] = every key'),
    exclude: globs('exclude').default([]).describe('globs on the key relative to prefix; *.matchd.json (result sidecars) and *.texts.json (companions) are always excluded'),
    maxObjectBytes: z.number({ error: 'maxObjectBytes must be a number of bytes' }).int().positive('maxObjectBytes must be > 0').default(50 * 1024 * 1024)
      .describe('larger objects are not downloaded; they get MATCHD_IMAGE_TOO_LARGE (keep it <= model.maxBytes)'),
    trackingWindowMs: ms('trackingWindowMs').default(3 * 3600_000)
      .describe('objects this much older than the listing watermark are not looked at again (must be well under journal.retainDays)'),
    downloadConcurrency: z.number().int().min(1).max(64).default(4),
    pageSize: z.number().int().min(1).max(1000).default(1000).describe('MaxKeys per ListObjectsV2 page'),
    backoff: z
      .strictObject({ initialMs: ms('backoff.initialMs').default(1_000), maxMs: ms('backoff.maxMs').default(60_000) })
      .prefault({})
      .describe('listing failures and S3 action retries back off from initialMs, doubling, capped at maxMs'),
    actionAttempts: z.number().int().min(1).default(10).describe('an S3 action failing this often (throttling, 5xx, network) is given up'),
    requestTimeoutMs: ms('requestTimeoutMs').default(30_000),
    rule: str('rule').optional(),
    companions: z.boolean({ error: 'companions must be true or false' }).default(true)
      .describe('read an object\'s own texts and meta from <key>.texts.json when it is listed (user metadata matchd-texts / matchd-meta is always read)'),
    companionBytes: z.number().int().positive().default(4 * 1024 * 1024).describe('larger <key>.texts.json objects are refused unread'),
  },
  { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown option(s) ${iss.keys.join(', ')}` : 's3 options must be an object') },
).refine((c) => !!c.accessKeyId === !!c.secretAccessKey, { message: 'accessKeyId and secretAccessKey go together (or omit both for the AWS credential chain)' });

export type S3Config = z.output<typeof S3ConfigSchema>;

/** Templates may use {band}, {outcome}, {rule}, {source}, {score}, {cosine}. */
const tmpl = z.string({ error: 'must be a string' });

/** `tag`: put object tags, merged with the object's existing ones. */
export const TagOptionsSchema = z.strictObject({
  tags: z
    .record(z.string().min(1).max(128, 'a tag key is at most 128 characters'), tmpl.max(256, 'a tag value is at most 256 characters'))
    .default({ 'matchd-band': '{band}', 'matchd-score': '{score}' })
    .refine((t) => Object.keys(t).length <= 10, 'S3 allows at most 10 tags per object'),
});

/** `s3copy`: copy the object to another prefix and/or bucket (per band via {band}), optionally deleting the source. */
export const CopyOptionsSchema = z.strictObject({
  bucket: z.string().min(1).optional().describe('default: the source bucket'),
  prefix: tmpl.describe('destination prefix, e.g. sorted/{band}/; the key below the source prefix is kept'),
  deleteSource: z.boolean().default(false).describe('delete the source after the copy is verified (a move)'),
});

/** `s3sidecar`: write the result document as JSON next to the object (`<key>.matchd.json`) or under a results prefix. */
export const SidecarOptionsSchema = z.strictObject({
  bucket: z.string().min(1).optional(),
  prefix: tmpl.optional().describe('default: next to the object'),
});

export const S3_ACTION_SCHEMAS = { tag: TagOptionsSchema, s3copy: CopyOptionsSchema, s3sidecar: SidecarOptionsSchema };
