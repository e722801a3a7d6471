/** The S3 source's options (`sources[].options` for `type: s3`) and its action kinds' options. */
import { z } from 'zod';
import { globs, ms, str } from '../../core/config-fields.ts';

/** Image extensions accepted by default (content is sniffed by the core anyway; this only skips obvious non-images). */
export const DEFAULT_INCLUDE: readonly string[] = ['**/*.{jpg,jpeg,png,webp,gif,tif,tiff,avif,heic,heif,bmp}'];

/**
 * Bucket notifications. `http`: matchd listens for the store's push (Ceph RGW and MinIO topics with an HTTP
 * endpoint); `sqs`: matchd long-polls an SQS queue the bucket sends its events to (AWS).
 */
const EventsSchema = z.strictObject(
  {
    http: z.strictObject({
      host: z.string().default('127.0.0.1').describe('address to listen on; the store must reach it'),
      port: z.number({ error: 'events.http.port must be a port number' }).int().min(0).max(65535),
      path: z.string().startsWith('/', 'events.http.path must start with /').default('/'),
      token: str('events.http.token').optional().describe('required as ?token=... in the push URL (use ${ENV})'),
    }, { error: 'events.http must be { port, host?, path?, token? }' }).optional(),
    sqs: z.strictObject({
      queueUrl: z.url({ error: 'events.sqs.queueUrl must be the queue URL' }),
      region: str('events.sqs.region').optional(),
      endpoint: z.url({ error: 'events.sqs.endpoint must be a URL' }).optional(),
      waitSeconds: z.number().int().min(0).max(20).default(20),
      visibilityTimeoutSeconds: z.number().int().min(10).max(43_200).default(300),
    }, { error: 'events.sqs must be { queueUrl, region?, endpoint?, waitSeconds?, visibilityTimeoutSeconds? }' }).optional(),
  },
  { error: 'events must be { http: {...} } or { sqs: {...} }' },
).refine((e) => !!e.http !== !!e.sqs, { message: 'events takes one of http or sqs' });

/** Validates and fills in the defaults of the S3 source's options. */
export const S3ConfigSchema = z.strictObject(
  {
    bucket: str('bucket'),
    prefix: z.string({ error: 'prefix must be a string' }).default('').describe('only keys under this prefix are listed'),
    endpoint: z.url({ error: 'endpoint must be a URL like http://127.0.0.1:9000' }).optional().describe('S3-compatible stores (MinIO, Ceph, R2...)'),
    region: str('region').optional()
      .describe("omitted: the SDK's chain (AWS_REGION, the profile's region) or AWS_DEFAULT_REGION; us-east-1 only with an endpoint and none of them"),
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
    actionMaxAgeMs: ms('actionMaxAgeMs').min(1000, 'actionMaxAgeMs must be >= 1000').default(72 * 3600_000)
      .describe('an S3 action that cannot reach the store (network, 5xx, throttling) waits for it this long from its first failure, then is dead'),
    downloadAttempts: z.number({ error: 'downloadAttempts must be a number' }).int().min(1, 'downloadAttempts must be >= 1').default(3)
      .describe('an object that fails to download in this many polls while the store answers (403, an error on it alone) becomes a failed job'),
    requestTimeoutMs: ms('requestTimeoutMs').min(100, 'requestTimeoutMs must be >= 100').default(30_000),
    stallMs: ms('stallMs').min(100, 'stallMs must be >= 100').default(10_000)
      .describe('a request unanswered this long shows the source as degraded (a hung store) before it times out'),
    events: EventsSchema.optional().describe('bucket notifications: objects are taken as they arrive; listing becomes a sweep every sweepIntervalMs'),
    sweepIntervalMs: ms('sweepIntervalMs').min(1000, 'sweepIntervalMs must be >= 1000').default(3_600_000)
      .describe('with events or startAfter: a full listing this often (catches missed events and keys written out of order)'),
    startAfter: z.boolean({ error: 'startAfter must be true or false' }).default(false)
      .describe('key-ordered writers: a poll lists only keys after the last one taken (per shard); sweeps list everything'),
    shards: z.array(str('shards[]'), { error: 'shards must be a list of sub-prefixes' }).default([])
      .describe('sub-prefixes (below prefix) listed as separate shards, concurrently, each with its own startAfter key'),
    rule: str('rule').optional(),
    companions: z.boolean({ error: 'companions must be true or false' }).default(true)
      .describe('read an object\'s own texts and meta from <key>.texts.json when it is listed (user metadata matchd-texts / matchd-meta is always read)'),
    companionBytes: z.number().int().positive().default(4 * 1024 * 1024).describe('larger <key>.texts.json objects are refused unread'),
  },
  {
    error: (iss) => {
      if (iss.code !== 'unrecognized_keys') return 's3 options must be an object';
      if (iss.keys.includes('actionAttempts')) return 'actionAttempts was replaced by actionMaxAgeMs: S3 actions wait for a store that is down, bounded by age';
      return `unknown option(s) ${iss.keys.join(', ')}`;
    },
  },
)
  .refine((c) => !!c.accessKeyId === !!c.secretAccessKey, { message: 'accessKeyId and secretAccessKey go together (or omit both for the AWS credential chain)' })
  .refine((c) => c.shards.every((p) => !p.startsWith('/')), { message: 'shards are sub-prefixes below prefix, without a leading /' });

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
