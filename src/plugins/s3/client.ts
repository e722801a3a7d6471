/** The S3 client for one source instance, and how S3 failures are classified. Credentials are never logged. */
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from './config.ts';

export function makeClient(c: S3Config): S3Client {
  return new S3Client({
    region: c.region,
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

export type Failure = 'fatal' | 'gone' | 'transient' | 'permanent';

/** S3 error codes that retrying cannot fix for this source: wrong bucket, credentials or permissions. */
const FATAL = new Set(['AccessDenied', 'NoSuchBucket', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'InvalidBucketName', 'AccountProblem', 'ExpiredToken', 'InvalidToken', 'PermanentRedirect']);
const GONE = new Set(['NoSuchKey', 'NotFound', 'NoSuchVersion']);
const TRANSIENT = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'RequestTimeoutException', 'TimeoutError', 'BadDigest']);

/** The S3 error code (`AccessDenied`...), the HTTP status, or the network error code. */
export function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  return e?.Code ?? (e?.name && e.name !== 'Error' && e.name !== 'S3ServiceException' ? e.name : undefined) ?? e?.code ?? (e?.$metadata?.httpStatusCode ? `HTTP ${e.$metadata.httpStatusCode}` : 'Error');
}

export function classify(err: unknown): Failure {
  const code = errorCode(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  if (FATAL.has(code) || status === 403) return 'fatal';
  if (GONE.has(code) || status === 404) return 'gone';
  if (TRANSIENT.has(code) || status === undefined || status >= 500 || status === 429 || status === 408) return 'transient';
  return 'permanent';
}

/** A one-line description safe to log: code, status and message only (never the error object, its request or headers). */
export function describe(err: unknown): string {
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const msg = err instanceof Error ? err.message : String(err);
  return `${errorCode(err)}${status ? ` (HTTP ${status})` : ''}: ${msg}`;
}

/** ETags come quoted from S3; keys and meta use them bare. */
export function bareEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** Capped exponential backoff: initial × 2^(n-1), at most max. */
export function backoffMs(n: number, initial: number, max: number): number {
  return Math.min(max, initial * 2 ** Math.max(0, Math.min(30, n - 1)));
}
