/** CSRF protection for every state change: the request comes from this page's origin and carries the session's token. */
import type { FastifyRequest } from 'fastify';
import { MatchdError } from '../core/errors.ts';
import { sameSecret } from './session.ts';

/** A state change must come from this page, not from another site (Origin, Sec-Fetch-Site). */
export function checkOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.headers.host) throw new MatchdError('MATCHD_CSRF_INVALID', 'the request came from another origin; nothing was changed');
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') throw new MatchdError('MATCHD_CSRF_INVALID', 'the request came from another site; nothing was changed');
}

/** ...and carry the session's CSRF token. */
export function checkToken(req: FastifyRequest, token: string | undefined): void {
  const s = req.session;
  if (!s || token === undefined || !sameSecret(token, s.csrf)) {
    throw new MatchdError('MATCHD_CSRF_INVALID', 'the form has no valid CSRF token (reload the page and try again); nothing was changed');
  }
}

