/** Sign in and out (only where `ui.auth` is configured; without it every visitor is 'local', on loopback only). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MatchdError } from '../../core/errors.ts';
import type { UiContext } from '../context.ts';
import { html } from '../html.ts';
import { checkLogin, sessionCookie } from '../session.ts';

/** Only a path on this server (never `//host` or a URL) may be where a sign-in returns to. */
function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/jobs';
}

export function registerLogin(app: FastifyInstance, ctx: UiContext): void {
  const cfg = ctx.b.config.ui;
  const render = (req: FastifyRequest, next: string) => html`<form method="post" action="/login" class="login">
<input type="hidden" name="_csrf" value="${ctx.session(req).csrf}"><input type="hidden" name="next" value="${next}">
<label>Name <input name="name" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>`;

  app.get('/login', (req, reply) => {
    const next = localPath((req.query as Record<string, unknown>).next);
    if (!ctx.auth || req.session?.user) return reply.redirect(next, 303);
    return ctx.send(req, reply, { title: 'Sign in', active: 'login', body: html`<h1>Sign in</h1>${render(req, next)}` });
  });

  app.post('/login', (req, reply) => {
    if (!ctx.auth) return reply.redirect('/jobs', 303);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = localPath(body.next);
    const wait = ctx.throttle.waitMs(req.ip);
    if (wait > 0) throw new MatchdError('MATCHD_RATE_LIMITED', `too many failed sign-ins from ${req.ip}; try again in ${Math.ceil(wait / 1000)} s`);
    const user = checkLogin(cfg.auth!.users, String(body.name ?? ''), String(body.password ?? ''));
    if (!user) {
      ctx.throttle.failed(req.ip);
      ctx.b.log.warn({ ip: req.ip }, 'failed sign-in to the web page');
      return ctx.send(req, reply, { title: 'Sign in', active: 'login', status: 401, flash: { kind: 'error', text: 'MATCHD_UNAUTHORIZED: wrong name or password' }, body: html`<h1>Sign in</h1>${render(req, next)}` });
    }
    ctx.throttle.succeeded(req.ip);
    // A new session id at sign-in: an id planted before it (session fixation) is worth nothing.
    ctx.sessions.destroy(ctx.session(req).id);
    const s = ctx.sessions.create(user);
    ctx.b.log.info({ user, ip: req.ip }, 'signed in to the web page');
    return reply.header('set-cookie', sessionCookie(s.id, { secure: cfg.secureCookie, maxAgeS: cfg.sessionHours * 3600 })).redirect(next, 303);
  });

  app.post('/logout', (req, reply) => {
    ctx.sessions.destroy(ctx.session(req).id);
    return reply.header('set-cookie', sessionCookie('', { secure: cfg.secureCookie, maxAgeS: 0 })).redirect(ctx.auth ? '/login' : '/jobs', 303);
  });
}
