/** The webhook source's options (`sources[].options` for `type: webhook`). */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { WebhookSecretSchema as secret } from '../../core/callbacks/config.ts';

const MiB = 1024 * 1024;
const name = (what: string) => z.string({ error: `${what} must be a name` }).regex(/^[A-Za-z0-9_.-]+$/, `${what}: letters, digits, _ . and -`);
const ms = (field: string) => z.number({ error: `${field} must be a number of milliseconds` }).int().min(0);
const bytes = (field: string) => z.number({ error: `${field} must be a number of bytes` }).int().positive(`${field} must be > 0`);

/** An IP address or CIDR (`127.0.0.1`, `10.1.0.0/16`, `::1`). */
const cidr = z.string().refine((s) => {
  try {
    if (s.includes('/')) ipaddr.parseCIDR(s);
    else ipaddr.parse(s);
    return true;
  } catch {
    return false;
  }
}, 'allow entries must be IP addresses or CIDRs like 10.1.0.0/16');

const authKind = z.enum(['bearer', 'signature']);

/** Signs the callbacks to this caller's own callbackUrl; a caller without one cannot ask for callbacks. */
const callbackSecret = secret.optional().describe("signs callbacks to this caller's callbackUrl (each caller its own)");

export const WebhookConfigSchema = z.strictObject(
  {
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8787).describe('0 = any free port (tests)'),
    auth: z
      .strictObject({
        /** Bearer tokens (compared in constant time); `name` is the identity that scopes idempotency keys and rate limits. */
        tokens: z
          .array(z.strictObject({ name: name('auth.tokens.name'), token: z.string().min(16, 'a token needs at least 16 characters'), callbackSecret }))
          .default([]),
        /** Standard Webhooks secrets whose signature over the raw body (±5 min) authenticates a JSON request. */
        signing: z.array(z.strictObject({ name: name('auth.signing.name'), secret, callbackSecret })).default([]),
        /** Which kinds each route accepts (any one of them suffices). */
        submit: z.array(authKind).min(1).default(['bearer', 'signature']),
        status: z.array(authKind).min(1).default(['bearer']),
      })
      .refine((a) => a.tokens.length + a.signing.length > 0, 'configure at least one bearer token (auth.tokens) or signing secret (auth.signing)')
      .refine((a) => {
        const secrets = [...a.tokens, ...a.signing].flatMap((t) => (t.callbackSecret ? [t.callbackSecret] : []));
        return new Set(secrets).size === secrets.length;
      }, 'each caller needs its own callbackSecret: one that verifies its own callbacks could otherwise forge those of the others'),
    limits: z
      .strictObject({
        jsonBytes: bytes('limits.jsonBytes').default(MiB),
        uploadBytes: bytes('limits.uploadBytes').default(20 * MiB),
        maxWaitMs: ms('limits.maxWaitMs').default(30_000).describe('longest ?wait= a request may ask for'),
        headersTimeoutMs: ms('limits.headersTimeoutMs').min(100).default(10_000).describe('a client must send its request headers within this'),
        requestTimeoutMs: ms('limits.requestTimeoutMs').min(100).default(60_000).describe('a client must send its whole request (body included) within this'),
        keepAliveTimeoutMs: ms('limits.keepAliveTimeoutMs').min(100).default(5_000).describe('an idle kept-alive connection is closed after this'),
        maxConnections: z.number().int().positive().default(256).describe('open connections in all'),
        maxConnectionsPerAddress: z.number().int().positive().default(32).describe('open connections from one address'),
        unverifiedRequests: z.number().int().positive().default(16).describe('signed requests whose body is still being read (before the signature can be checked), in all'),
        unverifiedPerAddress: z.number().int().positive().default(4).describe('the same, from one address'),
        unverifiedBytes: bytes('limits.unverifiedBytes').default(8 * MiB).describe('body bytes those requests may hold in all (declared length, or jsonBytes when not declared)'),
      })
      .refine((l) => l.headersTimeoutMs <= l.requestTimeoutMs, 'limits.headersTimeoutMs must not exceed limits.requestTimeoutMs')
      .prefault({}),
    rateLimit: z
      .strictObject({
        perSecond: z.number().positive().default(10).describe('sustained requests per second per token (or address when unauthenticated)'),
        burst: z.number().int().positive().default(20),
      })
      .prefault({}),
    /** Rules a request may name (`rule`); default: any rule in the config. */
    rules: z.array(z.string().min(1)).optional(),
    outbound: z
      .strictObject({
        /** Addresses/CIDRs exempt from the SSRF guard (e.g. an internal receiver). */
        allow: z.array(cidr).default([]),
        /** Plain-http image URLs and callbacks (https only otherwise). */
        allowHttp: z.boolean().default(false),
        /** 0: redirects are not followed (a 3xx is a failure); otherwise each hop is checked again. */
        maxRedirects: z.number().int().min(0).max(10).default(0),
        timeoutMs: ms('outbound.timeoutMs').min(1).default(10_000).describe('whole image fetch'),
        imageBytes: bytes('outbound.imageBytes').default(20 * MiB),
      })
      .prefault({}),
    callbacks: z
      .strictObject({
        timeoutMs: ms('callbacks.timeoutMs').min(1).default(15_000),
        // Moved out: say where to, rather than "unknown option".
        secret: z.unknown().optional(),
        endpoints: z.unknown().optional(),
      })
      .superRefine((c, ctx) => {
        if (c.secret !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['secret'], message: 'callbacks.secret (one secret for every caller) is gone: give each caller its own auth.tokens[].callbackSecret (or auth.signing[].callbackSecret)' });
        }
        if (c.endpoints !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['endpoints'], message: 'callbacks.endpoints moved to the top level of the config (callbacks.endpoints), where every source can use them' });
        }
      })
      .transform(({ timeoutMs }) => ({ timeoutMs }))
      .prefault({}),
  },
  { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown option(s) ${iss.keys.join(', ')}` : undefined) },
);

export type WebhookConfig = z.output<typeof WebhookConfigSchema>;
