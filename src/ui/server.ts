/**
 * The web page's HTTP server (fastify): on the admin listener by default, or on its own (`ui.port`). Every request
 * passes one guard before any route: security headers with a strict Content-Security-Policy (scripts, styles and
 * images only from this server), the Host check against DNS rebinding when there is no login, the session (a login
 * where configured), and for every state change a same-origin check plus the session's CSRF token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { AdminServer } from '../core/admin.ts';
import { MatchdError } from '../core/errors.ts';
import { isLoopbackHost, uiListener } from '../core/ui-config.ts';
import type { UiBackend } from './backend.ts';
import { UiContext } from './context.ts';
import { registerAssets } from './routes/assets.ts';
import { registerImages } from './routes/images.ts';
import { registerJobs } from './routes/jobs.ts';
import { registerLabels } from './routes/labels.ts';
import { registerLogin } from './routes/login.ts';
import { registerReview } from './routes/review.ts';
import { registerTry } from './routes/try.ts';
import { checkOrigin, checkToken } from './csrf.ts';
import { COOKIE, parseCookies, sessionCookie } from './session.ts';

export interface UiHandle {
  url: string;
  close(): Promise<void>;
}

const CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
].join('; ');

const HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts, which the origin check refuses
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

/** Paths served without a session (the login form and what it needs). */
const PUBLIC = /^\/(login|assets\/[a-z0-9.-]+)$/;

const UI_ROUTES = ['GET /jobs', 'GET /review', 'POST /review/:id', 'GET /try', 'POST /try', 'GET /labels.csv', 'GET /labels.jsonl', 'GET /image/:id', 'GET /login', 'POST /login', 'POST /logout'];

/** Form bodies are small: a decision, a sign-in. */
const FORM_BYTES = 64 * 1024;

/** The CSRF token a request carries: the `x-csrf-token` header or a form's `_csrf` field (multipart: checked by its route). */
function csrfOf(req: FastifyRequest): string | undefined {
  const h = req.headers['x-csrf-token'];
  if (typeof h === 'string') return h;
  const body = req.body as Record<string, unknown> | undefined;
  return typeof body?._csrf === 'string' ? body._csrf : undefined;
}

export async function startUi(b: UiBackend, admin: AdminServer | undefined, adminAddress?: { host: string; port: number }): Promise<UiHandle> {
  const cfg = b.config.ui;
  const at = uiListener(b.config);
  if (!at) throw new MatchdError('MATCHD_INTERNAL', 'the web page has nowhere to listen');
  const ctx = new UiContext(b);
  const app = Fastify({ logger: false, bodyLimit: FORM_BYTES, trustProxy: false, return503OnClosing: true });
  await app.register(multipart, { limits: { fileSize: cfg.uploadBytes, files: 1, fields: 8, fieldSize: 256 * 1024, parts: 12 } });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BYTES }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  app.decorateRequest('session', null);
  const allowedHosts = new Set(cfg.allowedHosts.map((h) => h.toLowerCase()));

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(HEADERS);
    // Without a login, only loopback names (and ui.allowedHosts): a DNS-rebinding page on another name gets nothing.
    if (!ctx.auth || allowedHosts.size) {
      let name = '';
      try {
        name = new URL(`http://${req.headers.host ?? ''}`).hostname.toLowerCase();
      } catch {
        /* refused below */
      }
      if (!(isLoopbackHost(name) || allowedHosts.has(name))) {
        throw new MatchdError('MATCHD_REQUEST_INVALID', `this page answers to localhost and 127.0.0.1${allowedHosts.size ? ` and ui.allowedHosts` : ''} only, not to ${name || '(no Host header)'}`, { status: 421 });
      }
    }
    const cookie = parseCookies(req.headers.cookie)[COOKIE];
    let s = ctx.sessions.get(cookie);
    if (!s && (!ctx.auth || PUBLIC.test(req.url.split('?')[0]!))) {
      s = ctx.sessions.create(ctx.auth ? null : 'local');
      reply.header('set-cookie', sessionCookie(s.id, { secure: cfg.secureCookie, maxAgeS: cfg.sessionHours * 3600 }));
    }
    req.session = s ?? null;
    if (PUBLIC.test(req.url.split('?')[0]!) || s?.user) return;
    if (req.method === 'GET' || req.method === 'HEAD') {
      return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    }
    throw new MatchdError('MATCHD_UNAUTHORIZED', 'sign in first; nothing was changed');
  });

  // Every state change: same origin and the session's token. The one multipart form (the try page, an upload) is
  // checked by its route as its fields arrive, token first; anywhere else a multipart body carries no token and fails.
  app.addHook('preHandler', async (req: FastifyRequest) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    checkOrigin(req);
    if (req.isMultipart() && req.routeOptions.url === '/try' && req.headers['x-csrf-token'] === undefined) return;
    checkToken(req, csrfOf(req));
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof MatchdError) return ctx.sendError(req, reply, err);
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 413) return ctx.sendError(req, reply, new MatchdError('MATCHD_IMAGE_TOO_LARGE', `the upload is over the ${cfg.uploadBytes}-byte limit (ui.uploadBytes)`, { status: 413 }));
    if (status && status >= 400 && status < 500) return ctx.sendError(req, reply, new MatchdError('MATCHD_REQUEST_INVALID', (err as Error).message, { status }));
    return ctx.sendError(req, reply, err);
  });
  // A browser gets a page; anything else (curl, a monitor probing the admin port) the routes, as the admin server did.
  const routes = [...(at.shared ? ['GET /metrics', 'GET /healthz'] : []), ...UI_ROUTES];
  app.setNotFoundHandler((req, reply) => {
    if (!/text\/html/.test(req.headers.accept ?? '')) {
      // The same error shape as every other HTTP answer of matchd's: { error: { code, message } }.
      const message = `no route ${req.method} ${req.url.split('?')[0]}; this server has ${routes.join(', ')}`;
      return reply.code(404).send({ error: { code: 'MATCHD_REQUEST_INVALID', message }, routes });
    }
    return ctx.sendError(req, reply, new MatchdError('MATCHD_REQUEST_INVALID', `no page at ${req.url.split('?')[0]}`, { status: 404 }));
  });

  registerAssets(app);
  registerLogin(app, ctx);
  registerJobs(app, ctx);
  registerReview(app, ctx);
  registerTry(app, ctx);
  registerLabels(app, ctx);
  registerImages(app, ctx);
  app.get('/', (_req, reply) => reply.redirect('/jobs', 303));

  const hostForUrl = (h: string) => (h.includes(':') ? `[${h}]` : h);
  if (at.shared) {
    if (!admin || !adminAddress) throw new MatchdError('MATCHD_INTERNAL', 'the web page shares the admin listener, which is not running');
    await app.ready();
    admin.mount((req: IncomingMessage, res: ServerResponse) => app.routing(req, res));
    return {
      url: `http://${hostForUrl(adminAddress.host)}:${adminAddress.port}/`,
      close: async () => {
        admin.mount(undefined);
        await app.close();
      },
    };
  }
  try {
    await app.listen({ host: at.host, port: at.port });
  } catch (err) {
    await app.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new MatchdError('MATCHD_PORT_IN_USE', `ui.port: ${at.host}:${at.port} is already in use; change ui.port or stop what listens there`);
    throw err;
  }
  const addr = app.server.address() as AddressInfo;
  return { url: `http://${hostForUrl(addr.address)}:${addr.port}/`, close: () => app.close() };
}
