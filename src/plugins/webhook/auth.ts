/** Intake authentication (bearer tokens, Standard Webhooks signatures) and the per-identity token-bucket rate limit. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { WebhookConfig } from './config.ts';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class Authenticator {
  private readonly tokens: { name: string; digest: Buffer }[];
  private readonly signers: { name: string; wh: Webhook }[];

  constructor(auth: WebhookConfig['auth']) {
    this.tokens = auth.tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
    this.signers = auth.signing.map((s) => ({ name: s.name, wh: new Webhook(s.secret) }));
  }

  /** The token's name for `Authorization: Bearer <token>`, compared in constant time (every token is compared). */
  bearer(header: string | undefined): string | null {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return null;
    const d = digest(m[1]!);
    let found: string | null = null;
    for (const t of this.tokens) if (timingSafeEqual(d, t.digest) && found === null) found = t.name;
    return found;
  }

  /**
   * The signer's name when `webhook-id`/`webhook-timestamp`/`webhook-signature` verify over the raw body with one of
   * the configured secrets (the `standardwebhooks` verifier: ±5 minutes tolerance, constant-time comparison).
   */
  signature(raw: Buffer | undefined, headers: Record<string, string | string[] | undefined>): string | null {
    if (raw === undefined || this.signers.length === 0) return null;
    const h: Record<string, string> = {};
    for (const k of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const v = headers[k];
      if (typeof v !== 'string') return null;
      h[k] = v;
    }
    for (const s of this.signers) {
      try {
        s.wh.verify(raw, h, { jsonParse: false });
        return s.name;
      } catch {
        /* try the next secret */
      }
    }
    return null;
  }
}

/** Standard Webhooks' timestamp tolerance (the `standardwebhooks` verifier's, ±5 minutes). */
export const SIGNATURE_TOLERANCE_S = 5 * 60;

/**
 * True when the headers carry a Standard Webhooks id, signature and a timestamp within the tolerance: only then is
 * an unauthenticated request's body worth reading (the signature over it is checked afterwards).
 */
export function looksSigned(headers: Record<string, string | string[] | undefined>, nowMs = Date.now()): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string' || !id || !sig) return false;
  if (!/^\d{1,12}$/.test(ts)) return false;
  return Math.abs(Number(ts) - nowMs / 1000) <= SIGNATURE_TOLERANCE_S;
}

/** Token buckets per key (an identity, or an address for unauthenticated requests). */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: number, private readonly burst: number, private readonly now: () => number = Date.now) {}

  /** 0 when the request may go ahead, else the milliseconds until it could. */
  take(key: string): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    if (this.buckets.size > 10_000) this.prune(t);
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
  }

  private prune(t: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((t - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
  }
}
