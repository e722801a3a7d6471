/** The S3 client for one source instance, and how S3 failures are classified. Credentials are never logged. */
import { S3Client } from '@aws-sdk/client-s3';
import { MatchdError } from '../../core/errors.ts';
import type { S3Config } from './config.ts';

export interface RegionChoice {
  region: string;
  /** Where it came from: config, AWS_REGION, AWS_DEFAULT_REGION, AWS profile, or the stand-in for a custom endpoint. */
  from: string;
}

/**
 * The region, resolved once: the config's; else the SDK's own chain (AWS_REGION, then the profile's `region`); else
 * the AWS CLI's AWS_DEFAULT_REGION; else, for a self-hosted store (an endpoint), us-east-1, which such stores accept.
 * Against AWS with none found it rejects with MATCHD_CONFIG_INVALID.
 */
export function regionResolver(c: S3Config, env: NodeJS.ProcessEnv = process.env): () => Promise<RegionChoice> {
  let found: Promise<RegionChoice> | undefined;
  const resolve = async (): Promise<RegionChoice> => {
    if (c.region) return { region: c.region, from: 'config' };
    if (env.AWS_REGION) return { region: env.AWS_REGION, from: 'AWS_REGION' };
    const probe = new S3Client({}); // the SDK's default chain, the profile included
    try {
      const r = await probe.config.region();
      if (r) return { region: r, from: 'AWS profile' };
    } catch {
      /* none in the profile */
    } finally {
      probe.destroy();
    }
    if (env.AWS_DEFAULT_REGION) return { region: env.AWS_DEFAULT_REGION, from: 'AWS_DEFAULT_REGION' };
    if (c.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL) return { region: 'us-east-1', from: 'none set; us-east-1 for a custom endpoint' };
    throw new MatchdError('MATCHD_CONFIG_INVALID', 'no region for the S3 source: set options.region, AWS_REGION / AWS_DEFAULT_REGION, or region in the AWS profile');
  };
  return () => (found ??= resolve());
}

export function makeClient(c: S3Config, region: () => Promise<RegionChoice> = regionResolver(c)): S3Client {
  return new S3Client({
    region: async () => (await region()).region,
    forcePathStyle: c.forcePathStyle,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    // Explicit keys (from ${ENV} in the config) or, when omitted, the SDK's default chain (env, profile, IMDS...).
    ...(c.accessKeyId && c.secretAccessKey
      ? { credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) } }
      : {}),
    maxAttempts: 1, // retries are ours: backoff, health and the journal's outbox
    requestHandler: { requestTimeout: c.requestTimeoutMs, connectionTimeout: Math.min(c.requestTimeoutMs, 10_000) },
    // The SDK logs nothing by default; keep it that way (its debug output could carry signed headers).
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

/** The endpoint requests go to, for logs: the config's, the environment's (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL) or AWS's. */
export function endpointOf(c: S3Config, env: NodeJS.ProcessEnv = process.env): { endpoint: string; from: string } {
  if (c.endpoint) return { endpoint: redactUrl(c.endpoint), from: 'config' };
  if (env.AWS_ENDPOINT_URL_S3) return { endpoint: redactUrl(env.AWS_ENDPOINT_URL_S3), from: 'AWS_ENDPOINT_URL_S3' };
  if (env.AWS_ENDPOINT_URL) return { endpoint: redactUrl(env.AWS_ENDPOINT_URL), from: 'AWS_ENDPOINT_URL' };
  return { endpoint: 'AWS S3 (regional endpoint)', from: 'default' };
}

/** A URL without the user name and password it may carry (`http://user:secret@host` → `http://***@host`). */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (!url.username && !url.password) return u;
    url.username = '***';
    url.password = '';
    return url.toString().replace(/\/$/, u.endsWith('/') ? '/' : '');
  } catch {
    return u.replace(/\/\/[^/@]*@/, '//***@');
  }
}

export type Failure = 'fatal' | 'gone' | 'transient' | 'permanent';

/** S3 error codes that retrying cannot fix for this source: wrong bucket, credentials or permissions. */
const FATAL = new Set(['AccessDenied', 'NoSuchBucket', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'InvalidBucketName', 'AccountProblem', 'ExpiredToken', 'InvalidToken', 'PermanentRedirect']);
const GONE = new Set(['NoSuchKey', 'NotFound', 'NoSuchVersion']);
const TRANSIENT = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'RequestTimeoutException', 'TimeoutError', 'BadDigest']);
/** What a bare HTTP status means when the body names no code (HEAD answers have no body; RGW's often name none). */
const BY_STATUS: Record<number, string> = { 400: 'BadRequest', 403: 'AccessDenied', 404: 'NotFound', 409: 'Conflict', 412: 'PreconditionFailed', 429: 'SlowDown', 500: 'InternalError', 503: 'ServiceUnavailable' };
/** Names the SDK gives an error it could not read a code from. */
const NAMELESS = new Set(['Error', 'S3ServiceException', 'Unknown', 'UnknownError']);

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** The S3 error code (`AccessDenied`...), the network error code (`ECONNREFUSED`), or one named after the HTTP status. */
export function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string };
  const status = statusOf(err);
  if (e?.Code && !NAMELESS.has(e.Code)) return e.Code;
  if (e?.name && !NAMELESS.has(e.name)) return e.name;
  if (status) return BY_STATUS[status] ?? `HTTP${status}`;
  return e?.code ?? (err as { cause?: { code?: string } })?.cause?.code ?? 'Error';
}

export function classify(err: unknown): Failure {
  const code = errorCode(err);
  const status = statusOf(err);
  if (FATAL.has(code) || status === 403) return 'fatal';
  if (GONE.has(code) || status === 404) return 'gone';
  if (TRANSIENT.has(code) || status === undefined || status >= 500 || status === 429 || status === 408) return 'transient';
  return 'permanent';
}

/** True when the store did not answer at all, or answered that it cannot serve (5xx other than throttling). */
export function unreachable(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined) return !(err instanceof Error && err.name === 'AbortError');
  return status >= 500 && !['SlowDown', 'Throttling', 'ThrottlingException'].includes(errorCode(err));
}

/** A one-line description safe to log: code, status and message only (never the error object, its request or headers). */
export function describe(err: unknown): string {
  const status = statusOf(err);
  const code = errorCode(err);
  let msg = err instanceof Error ? err.message : String(err);
  // RGW's error bodies carry a code but no message, which the SDK reports as "UnknownError": say nothing instead.
  if (NAMELESS.has(msg) || msg === code || !msg) msg = '';
  return `${code}${status ? ` (HTTP ${status})` : ''}${msg ? `: ${msg}` : ''}`;
}

/** ETags come quoted from S3; keys and meta use them bare. */
export function bareEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** Capped exponential backoff: initial × 2^(n-1), at most max. */
export function backoffMs(n: number, initial: number, max: number): number {
  return Math.min(max, initial * 2 ** Math.max(0, Math.min(30, n - 1)));
}

/** `s3://bucket/key`, as people see an object in logs, results and error messages. */
export const s3Uri = (bucket: string, key: string) => `s3://${bucket}/${key}`;
