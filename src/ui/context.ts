/** What every route of the web page shares: the backend, sessions, the review bands per rule, and page rendering. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MatchdError, isMatchdError, type ErrorCode } from '../core/errors.ts';
import { reviewCount } from '../core/journal-review.ts';
import { reviewBands } from '../core/review.ts';
import type { UiBackend } from './backend.ts';
import { html, page, type Flash, type Html, type PageParts } from './html.ts';
import { LoginThrottle, Sessions, type Session } from './session.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the page's onRequest hook on every request that reaches a route. */
    session: Session | null;
  }
}

/** HTTP status per code, for the codes the page answers with. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  MATCHD_UNAUTHORIZED: 401,
  MATCHD_CSRF_INVALID: 403,
  MATCHD_REVIEW_DECIDED: 409,
  MATCHD_REVIEW_INVALID: 400,
  MATCHD_REQUEST_INVALID: 400,
  MATCHD_REQUEST_TOO_LARGE: 413,
  MATCHD_IMAGE_TOO_LARGE: 413,
  MATCHD_IMAGE_DECODE: 422,
  MATCHD_IMAGE_UNSUPPORTED: 422,
  MATCHD_IMAGE_ASPECT: 422,
  MATCHD_TEXT_INVALID: 400,
  MATCHD_TEXTS_REQUIRED: 400,
  MATCHD_RATE_LIMITED: 429,
  MATCHD_JOURNAL: 503,
  MATCHD_JOURNAL_FULL: 503,
  MATCHD_JOURNAL_CORRUPT: 503,
};

export function statusOf(err: MatchdError): number {
  const s = err.details?.status;
  return typeof s === 'number' ? s : (STATUS[err.code] ?? 500);
}

export class UiContext {
  readonly sessions: Sessions;
  readonly throttle = new LoginThrottle();
  readonly auth: boolean;
  /** Review bands per configured rule (rules without any are left out). */
  readonly reviewBands: Map<string, string[]>;

  constructor(readonly b: UiBackend) {
    this.sessions = new Sessions(b.config.ui.sessionHours * 3_600_000);
    this.auth = !!b.config.ui.auth;
    this.reviewBands = new Map(Object.keys(b.config.rules).map((r) => [r, reviewBands(b.bands(r))] as const).filter(([, list]) => list.length));
  }

  private counted: { n: number; at: number } | undefined;

  /** The review queue's size for the navigation, at most a second old (a decision made here refreshes it). */
  reviewCount(): number | undefined {
    const now = Date.now();
    if (this.counted && now - this.counted.at < 1000) return this.counted.n;
    try {
      this.counted = { n: this.b.read('count the review queue', (j) => reviewCount(j, this.reviewBands)), at: now };
      return this.counted.n;
    } catch {
      return undefined; // the page still renders while the journal is paused; the count is left out
    }
  }

  /** Forget the cached count (after a decision). */
  decided(): void {
    this.counted = undefined;
  }

  /** The session of a request that passed the guard (routes only run with one). */
  session(req: FastifyRequest): Session {
    if (!req.session) throw new MatchdError('MATCHD_INTERNAL', 'no session on a routed request');
    return req.session;
  }

  /** Send a full page: navigation with the review queue's size, the session's CSRF token, a flash message. */
  send(req: FastifyRequest, reply: FastifyReply, p: { title: string; active: PageParts['active']; body: Html; flash?: Flash | undefined; status?: number }): FastifyReply {
    const s = req.session;
    const count = s?.user ? this.reviewCount() : undefined;
    const body = page({ title: p.title, active: p.active, user: s?.user ?? null, auth: this.auth, csrf: s?.csrf ?? '', reviewCount: count, flash: p.flash, body: p.body });
    return reply.code(p.status ?? 200).type('text/html; charset=utf-8').send(body);
  }

  /** An error as a page: its code and message, nothing else of the request echoed. */
  sendError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    const e = isMatchdError(err) ? err : new MatchdError('MATCHD_INTERNAL', 'the page failed; see the daemon log');
    if (!isMatchdError(err)) this.b.log.error({ err, url: req.url }, 'web page request failed');
    const status = statusOf(e);
    if (!req.session) {
      return reply.code(status).type('text/html; charset=utf-8').send(page({ title: 'Error', active: 'none', user: null, auth: this.auth, csrf: '', body: html`<p class="flash error" role="alert">${e.code}: ${e.message}</p>` }));
    }
    return this.send(req, reply, { title: 'Error', active: 'none', status, flash: { kind: 'error', text: `${e.code}: ${e.message}` }, body: html`<p><a href="/jobs">Back to the jobs</a></p>` });
  }
}
