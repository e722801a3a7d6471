/**
 * Callback delivery, shared by every `callback` action: the core's (named endpoints from the top-level config, for
 * any source) and the webhook source's (a request's own callbackUrl, signed with that caller's secret). The core
 * journals the action in the same transaction as the result; the outbox runner calls the handler, which builds the
 * Standard Webhooks message from the result document, signs it (fresh signature and timestamp on every attempt,
 * same `webhook-id` and body), posts it, and maps the answer onto the runner: 2xx → done; 410 → endpoint disabled,
 * dead-lettered; 429/503 with Retry-After → retry then; anything else (3xx included, network errors, timeouts) →
 * retry on the Svix schedule with ±10 % jitter, dead-lettered once the schedule is exhausted. `matchd replay`
 * revives dead or done deliveries.
 */
import { Webhook } from 'standardwebhooks';
import { isMatchdError } from '../errors.ts';
import { PermanentActionError, RetryLaterError, type ActionContext, type ActionHandler, type PluginState } from '../plugin.ts';
import { discard, send, type OutboundGuard } from '../outbound.ts';

/** Delay before attempt n+1 after attempt n failed (Svix: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
export const RETRY_SCHEDULE_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
/** Attempts in all (the first, immediate one plus the schedule). */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;
/** A server's Retry-After is honoured up to this. */
const MAX_RETRY_AFTER_MS = 36_000_000;

/** The next delay for a failed attempt (1-based), ±10 % jitter; undefined when the schedule is exhausted. */
export function nextDelay(attempt: number, random = Math.random): number | undefined {
  const base = RETRY_SCHEDULE_MS[attempt - 1];
  if (base === undefined) return undefined;
  return Math.round(base * (0.9 + 0.2 * random()));
}

/** Retry-After as seconds or an HTTP date → milliseconds from `now` (undefined when absent or unreadable). */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** The stable message id of a job's result: the same on every retry and replay. */
export function webhookId(jobId: number, createdAt: number): string {
  return `msg_${jobId}_${createdAt.toString(36)}`;
}

/**
 * The message body: `match.completed` with the scores, or `match.failed` with the error's code and message; both
 * carry the item's `meta` as its sender gave it and its `origin` (file, object or caller).
 */
export function callbackPayload(doc: Record<string, unknown>, jobId: number, timestamp: string): Record<string, unknown> {
  const base = {
    jobId: String(doc.jobId ?? jobId), rule: doc.rule, outcome: doc.outcome, source: doc.source,
    meta: doc.meta ?? {}, ...(doc.origin ? { origin: doc.origin } : {}),
  };
  const error = doc.error as { code: string; message: string } | undefined;
  if (error) return { type: 'match.failed', timestamp, data: { ...base, error: { code: error.code, message: error.message } } };
  const results = ((doc.results as Record<string, unknown>[] | undefined) ?? []).map(({ text, cosine, score, band }) => ({ text, cosine, score, band }));
  // A person's decision on a review-band job (review.ts): the same result with the new outcome and who decided.
  return {
    type: doc.review ? 'match.reviewed' : 'match.completed', timestamp,
    data: {
      ...base, results, ...(doc.decidedBy ? { decidedBy: doc.decidedBy } : {}), ...(doc.textsFrom ? { textsFrom: doc.textsFrom } : {}),
      ...(doc.review ? { review: doc.review } : {}),
    },
  };
}

/** Where and how one callback goes. */
export interface CallbackTarget {
  url: string;
  secret: string;
  /** Key in `state` marking the endpoint disabled after a 410. */
  key: string;
  label: string;
  /** The SSRF guard for this kind of target (a request's own URL), or one that lets configured endpoints through. */
  guard: OutboundGuard;
  timeoutMs: number;
}

export function disabledKey(target: { endpoint?: string; url?: string }): string {
  return target.endpoint ? `disabled:endpoint:${target.endpoint}` : `disabled:url:${target.url}`;
}

/** A `callback` action handler: `resolveTarget` turns the action's options (and job) into where to send and with which secret. */
export function callbackHandler(
  resolveTarget: (options: Record<string, unknown>, ctx: ActionContext) => CallbackTarget,
  state: PluginState,
  signal: AbortSignal,
): ActionHandler {
  return async (payload: Record<string, unknown>, ctx: ActionContext) => {
    const options = (payload.options as Record<string, unknown> | undefined) ?? {};
    const target = resolveTarget(options, ctx);
    if (state.get(target.key)) throw new PermanentActionError(`${target.label} is disabled (it answered 410 Gone); not sending`);
    const doc = (payload.doc as Record<string, unknown> | undefined) ?? ctx.job.result;
    if (!doc) throw new PermanentActionError(`job ${ctx.jobId} has no result to send`);
    // The body is fixed at the first attempt and remembered, so every retry and replay sends the same bytes.
    let body = typeof payload.body === 'string' ? payload.body : undefined;
    if (body === undefined) {
      body = JSON.stringify(callbackPayload(doc, ctx.jobId, new Date(ctx.now()).toISOString()));
      ctx.remember({ ...payload, body });
    }
    // A review decision is a second message about the job: its own id, or receivers deduping on it would drop it.
    const id = webhookId(ctx.jobId, ctx.job.createdAt) + (doc.review ? '_reviewed' : '');
    // The signature's timestamp is wall-clock time (what receivers compare against), fresh on each attempt.
    const at = new Date();
    const headers = {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(target.secret).sign(id, at, body),
    };

    const attempt = ctx.attempt;
    const retry = (why: string, delay?: number): never => {
      const d = delay ?? nextDelay(attempt);
      if (d === undefined || attempt >= MAX_ATTEMPTS) throw new PermanentActionError(`callback to ${target.label} failed ${attempt} times; giving up (last: ${why})`);
      throw new RetryLaterError(`callback to ${target.label}: ${why}; retrying in ${Math.round(d / 1000)} s`, d);
    };

    let status: number;
    let retryAfter: number | undefined;
    try {
      const r = await send(target.guard, target.url, { method: 'POST', headers, body, timeoutMs: target.timeoutMs, signal });
      status = r.status;
      retryAfter = parseRetryAfter(r.headers['retry-after'], Date.now());
      await discard(r.res);
    } catch (err) {
      if (isMatchdError(err, 'MATCHD_URL_REFUSED')) throw new PermanentActionError(`callback to ${target.label} refused: ${err.message}`);
      return retry((err as Error).message);
    }
    if (status >= 200 && status < 300) {
      ctx.log.info({ jobId: ctx.jobId, webhookId: id, target: target.label, status, attempt }, 'callback delivered');
      return {};
    }
    if (status === 410) {
      state.set(target.key, { at: ctx.now(), jobId: ctx.jobId });
      ctx.log.warn({ target: target.label }, 'callback endpoint answered 410 Gone; disabling it');
      throw new PermanentActionError(`${target.label} answered 410 Gone; endpoint disabled`);
    }
    if ((status === 429 || status === 503) && retryAfter !== undefined) {
      return retry(`answered ${status}`, Math.min(retryAfter, MAX_RETRY_AFTER_MS));
    }
    return retry(`answered ${status}`);
  };
}
