/**
 * The webhook source instance: a fastify server taking jobs over HTTP (multipart upload, base64 JSON or an image
 * URL fetched through the SSRF guard), each with its own texts and meta or not, spooled to a file under the byte cap
 * while streaming, then submitted to the core; `POST /v1/score` scoring one image now; plus the `callback` action
 * that delivers results to a request's own callbackUrl.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { MatchdError, isMatchdError, type ErrorCode } from '../../core/errors.ts';
import { OutboundGuard } from '../../core/outbound.ts';
import type { ActionHandler, JobView, PluginContext, ScoreResult, SourceInstance } from '../../core/plugin.ts';
import { Authenticator, RateLimiter, looksSigned } from './auth.ts';
import { callbackSecrets, urlCallbacks } from './callbacks.ts';
import type { WebhookConfig } from './config.ts';
import { bad, parseFields, type FieldRules, type JobFields } from './fields.ts';
import { IntakeLimits } from './intake-limits.ts';
import { Receiver } from './receive.ts';

export const ROUTES = ['POST /v1/jobs', 'GET /v1/jobs/:id', 'POST /v1/score'] as const;

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  MATCHD_UNAUTHORIZED: 401,
  MATCHD_REQUEST_INVALID: 400,
  MATCHD_REQUEST_TOO_LARGE: 413,
  MATCHD_IMAGE_TOO_LARGE: 413,
  MATCHD_RATE_LIMITED: 429,
  MATCHD_URL_REFUSED: 400,
  MATCHD_FETCH_FAILED: 502,
  MATCHD_TEXT_INVALID: 400,
  MATCHD_META_INVALID: 400,
  MATCHD_TEXTS_REQUIRED: 400,
  MATCHD_JOURNAL: 503,
  MATCHD_JOURNAL_FULL: 503,
  MATCHD_JOURNAL_CORRUPT: 503,
};

/** POST /v1/score: an image that cannot be scored is the request's fault, but not a malformed request. */
const UNPROCESSABLE = 422;

type Req = FastifyRequest & { rawBody?: Buffer; bearerIdentity?: string | null };

/** Which configured route a request is for (its auth kinds), from the matched route pattern. */
function routeOf(req: FastifyRequest): 'submit' | 'status' | undefined {
  if (req.method === 'POST' && (req.routeOptions.url === '/v1/jobs' || req.routeOptions.url === '/v1/score')) return 'submit';
  if (req.method === 'GET' && req.routeOptions.url === '/v1/jobs/:id') return 'status';
  return undefined;
}

/** `10s`, `1500ms`, `2m` or a number of seconds → milliseconds. */
export function parseWait(v: unknown): number {
  if (v === undefined || v === '') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(v).trim());
  if (!m) throw bad(`wait must look like 10s, 500ms or 2m; got ${JSON.stringify(String(v)).slice(0, 40)}`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

export class WebhookSource implements SourceInstance {
  readonly actions: Record<string, ActionHandler>;
  readonly guard: OutboundGuard;
  private readonly auth: Authenticator;
  private readonly limiter: RateLimiter;
  private readonly receiver: Receiver;
  private readonly callbackSecrets: Map<string, string>;
  private readonly intakeLimits: IntakeLimits;
  private app: FastifyInstance | undefined;
  /** Where the server listens once started (port 0 in the config picks a free one). */
  address: { host: string; port: number } | undefined;

  constructor(private readonly ctx: PluginContext, private readonly config: WebhookConfig) {
    this.guard = new OutboundGuard({ allow: config.outbound.allow, allowHttp: config.outbound.allowHttp, maxRedirects: config.outbound.maxRedirects });
    this.auth = new Authenticator(config.auth);
    this.limiter = new RateLimiter(config.rateLimit.perSecond, config.rateLimit.burst);
    this.receiver = new Receiver(config, this.guard, ctx.spoolDir, ctx.signal);
    this.callbackSecrets = callbackSecrets(config.auth);
    this.actions = { callback: urlCallbacks(config, this.guard, ctx.state, ctx.signal) };
    this.intakeLimits = new IntakeLimits(config.limits);
  }

  async start(): Promise<void> {
    const l = this.config.limits;
    const app = Fastify({
      logger: false, bodyLimit: l.jsonBytes, forceCloseConnections: true,
      http: this.intakeLimits.httpOptions(), requestTimeout: l.requestTimeoutMs, keepAliveTimeout: l.keepAliveTimeoutMs,
    });
    this.app = app;
    this.intakeLimits.attach(app.server);
    app.removeContentTypeParser(['application/json', 'text/plain']);
    app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: this.config.limits.jsonBytes }, (req, body, done) => {
      (req as Req).rawBody = body as Buffer;
      try {
        done(null, (body as Buffer).length ? JSON.parse((body as Buffer).toString('utf8')) : {});
      } catch {
        done(bad('the body is not valid JSON'), undefined);
      }
    });
    await app.register(multipart, {
      throwFileSizeLimit: true,
      // Fields: rule, meta, callbackUrl and texts (one JSON field, or one `text` field per text).
      limits: { fileSize: this.config.limits.uploadBytes, files: 1, fields: 256, fieldSize: this.config.limits.jsonBytes, parts: 257 },
    });

    // Rate limit first (by token when it is valid, else by address), so bad tokens are throttled too.
    app.addHook('onRequest', async (req: Req, reply) => {
      req.bearerIdentity = this.auth.bearer(req.headers.authorization);
      const wait = this.limiter.take(req.bearerIdentity ? `token:${req.bearerIdentity}` : `ip:${req.ip}`);
      if (wait > 0) {
        reply.header('retry-after', String(Math.max(1, Math.ceil(wait / 1000))));
        throw new MatchdError('MATCHD_RATE_LIMITED', 'too many requests; slow down');
      }
      // Authenticate from the headers, before a byte of the body is read: a valid bearer token, or signature
      // headers with a fresh timestamp (the body is then read, within the unverified caps, to check the signature).
      const route = routeOf(req);
      const kinds: readonly ('bearer' | 'signature')[] = route ? this.config.auth[route] : ['bearer'];
      if (req.bearerIdentity && kinds.includes('bearer')) return;
      if (kinds.includes('signature') && looksSigned(req.headers)) {
        const declared = Number(req.headers['content-length']);
        const admitted = this.intakeLimits.admitUnverified(req.ip, Number.isFinite(declared) ? declared : undefined);
        if (!admitted.ok) {
          reply.header('retry-after', '1');
          throw new MatchdError('MATCHD_RATE_LIMITED', `too many signed requests are being read; retry shortly (${admitted.reason})`, { status: 503 });
        }
        reply.raw.once('close', admitted.release);
        return;
      }
      throw this.unauthorized(route ?? 'status');
    });

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      let status: number;
      let code: string;
      if (isMatchdError(err)) {
        status = Number(err.details?.status) || STATUS_OF[err.code] || 500;
        code = err.code;
      } else if (err.code === 'FST_REQ_FILE_TOO_LARGE') {
        status = 413;
        code = 'MATCHD_IMAGE_TOO_LARGE';
        err.message = `the upload is over the ${this.config.limits.uploadBytes}-byte limit`;
      } else if (err.statusCode === 413) {
        status = 413;
        code = 'MATCHD_REQUEST_TOO_LARGE';
        err.message = `the request body is over the ${this.config.limits.jsonBytes}-byte limit`;
      } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        status = err.statusCode;
        code = 'MATCHD_REQUEST_INVALID';
      } else {
        status = 500;
        code = 'MATCHD_INTERNAL';
        this.ctx.log.error({ err }, 'webhook request failed');
      }
      if (status === 401) reply.header('www-authenticate', 'Bearer');
      // Refused before (or instead of) reading the body: close the connection rather than read or wait for the rest.
      if ([401, 408, 413, 429, 503].includes(status)) reply.header('connection', 'close');
      const problems = isMatchdError(err) && Array.isArray(err.details?.problems) ? { problems: err.details.problems } : {};
      void reply.status(status).send({ error: { code, message: err.message, ...problems } });
    });

    app.setNotFoundHandler((req, reply) => {
      void reply.status(404).send({
        error: { code: 'MATCHD_REQUEST_INVALID', message: `no route ${req.method} ${req.url.split('?')[0]}; this server has ${ROUTES.join(', ')}` },
        routes: ROUTES,
      });
    });

    app.post('/v1/jobs', (req, reply) => this.submitJob(req as Req, reply));
    app.get('/v1/jobs/:id', (req, reply) => this.jobStatus(req as Req, reply));
    app.post('/v1/score', (req, reply) => this.score(req as Req, reply));

    await app.listen({ host: this.config.host, port: this.config.port });
    const a = app.server.address();
    if (a && typeof a === 'object') this.address = { host: a.address, port: a.port };
    this.ctx.state.set('address', this.address);
    this.ctx.log.info({ url: `http://${this.address?.host}:${this.address?.port}` }, 'webhook intake listening');
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }

  /** The caller's identity for a route, or 401. */
  private authenticate(req: Req, route: 'submit' | 'status'): string {
    const kinds = this.config.auth[route];
    if (kinds.includes('bearer') && req.bearerIdentity) return `token:${req.bearerIdentity}`;
    if (kinds.includes('signature')) {
      const signer = this.auth.signature(req.rawBody ?? (req.method === 'GET' ? Buffer.alloc(0) : undefined), req.headers);
      if (signer) return `signature:${signer}`;
    }
    throw this.unauthorized(route);
  }

  private unauthorized(route: 'submit' | 'status'): MatchdError {
    const how = this.config.auth[route].map((k) => (k === 'bearer' ? 'a bearer token' : 'a Standard Webhooks signature (JSON bodies)')).join(' or ');
    return new MatchdError('MATCHD_UNAUTHORIZED', `this route needs ${how}`);
  }

  private statusUrl(req: FastifyRequest, id: string): string {
    return `${req.protocol}://${req.host}/v1/jobs/${id}`;
  }

  private view(req: FastifyRequest, job: JobView): Record<string, unknown> {
    const r = job.result;
    return {
      jobId: job.id,
      state: job.state,
      rule: job.rule,
      outcome: job.outcome,
      statusUrl: this.statusUrl(req, job.id),
      meta: job.meta,
      ...(job.texts ? { texts: job.texts } : {}),
      ...(r
        ? {
            result: {
              outcome: r.outcome,
              ...(r.decidedBy !== undefined ? { decidedBy: r.decidedBy } : {}),
              ...(r.results ? { results: r.results } : {}),
              ...(r.error ? { error: r.error } : {}),
              ...(r.textsFrom ? { textsFrom: r.textsFrom } : {}),
              model: r.model,
            },
          }
        : {}),
    };
  }

  private async submitJob(req: Req, reply: FastifyReply): Promise<unknown> {
    const identity = this.authenticate(req, 'submit');
    const key = req.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(key))) throw bad('Idempotency-Key must be 1–255 visible ASCII characters');
    // A signed request is identified by its signed webhook-id: a replay (the same bytes sent again within the
    // signature's 5-minute tolerance) answers with the original job instead of making another. Idempotency-Key is
    // not covered by the signature, so for signed requests the webhook-id is the key.
    const webhookId = identity.startsWith('signature:') ? String(req.headers['webhook-id']) : undefined;
    if (webhookId !== undefined && !/^[\x21-\x7e]{1,255}$/.test(webhookId)) throw bad('webhook-id must be 1–255 visible ASCII characters');
    const dedupeKey = webhookId !== undefined
      ? `webhook:${this.ctx.name}:${identity}:id:${webhookId}`
      : key
        ? `webhook:${this.ctx.name}:${identity}:${key}`
        : `webhook:${this.ctx.name}:${randomUUID()}`;
    const wait = Math.min(parseWait((req.query as Record<string, unknown>).wait), this.config.limits.maxWaitMs);

    if (webhookId !== undefined || key) {
      const earlier = this.ctx.findJob(dedupeKey);
      if (earlier) return this.answer(req, reply, earlier.id, true, wait);
    }

    let file: string | undefined;
    try {
      const got = await this.receiver.receive(req);
      file = got.file;
      const fields = parseFields(got.body, this.fieldRules(identity, ['rule', 'texts', 'meta', 'callbackUrl']), got.problems);
      const r = this.ctx.submit({
        dedupeKey,
        image: { path: file, temporary: true },
        ...(fields.rule ? { rule: fields.rule } : {}),
        ...(fields.texts ? { texts: fields.texts } : {}),
        ...(fields.meta ? { meta: fields.meta } : {}),
        origin: { identity },
        onInvalid: 'refuse',
        ...(fields.callbackUrl ? { actions: [{ kind: 'callback', options: { url: fields.callbackUrl, identity } }] } : {}),
      });
      if (!r.accepted) {
        await rm(file, { force: true });
        if (r.reason === 'backpressure') {
          reply.header('retry-after', String(Math.max(1, Math.ceil((r.retryAfterMs ?? 1000) / 1000))));
          throw new MatchdError('MATCHD_RATE_LIMITED', `${r.message}; retry later`);
        }
        if (r.reason === 'invalid') throw new MatchdError(r.code, r.message, { status: 400, problems: r.problems });
        if (r.reason === 'unknown_rule') throw bad(r.message);
        throw bad(r.message, 503);
      }
      if (r.duplicate) await rm(file, { force: true });
      file = undefined;
      return this.answer(req, reply, r.jobId, r.duplicate, wait);
    } catch (err) {
      if (file) await rm(file, { force: true });
      throw err;
    }
  }

  /** What a caller may send with an image on a route. */
  private fieldRules(identity: string, accepts: FieldRules['accepts']): FieldRules {
    return {
      ...(this.config.rules ? { rules: this.config.rules } : {}),
      checkItem: (item) => this.ctx.checkItem(item),
      checkUrl: (u) => this.guard.checkUrl(u).href, // form checked now; addresses when sending
      callbacks: this.callbackSecrets.has(identity)
        ? { allowed: true }
        : { allowed: false, why: `callbackUrl is refused: caller '${identity}' has no callbackSecret configured to sign its callbacks (auth.tokens[].callbackSecret)` },
      accepts,
    };
  }

  /**
   * POST /v1/score: one image against texts, now — 200 with the results in the order of the texts. Same auth, rate
   * limit and byte limits as jobs; through the core's pipeline (so the same batches), refused with 429 when its queue
   * is full. Not journalled: nothing is retried, nothing calls back.
   */
  private async score(req: Req, reply: FastifyReply): Promise<unknown> {
    this.authenticate(req, 'submit');
    let file: string | undefined;
    let fields: JobFields;
    let r: ScoreResult;
    try {
      const got = await this.receiver.receive(req);
      file = got.file;
      fields = parseFields(got.body, this.fieldRules('', ['rule', 'texts', 'meta']), got.problems);
      r = await this.ctx.score({ image: { path: file }, ...(fields.texts ? { texts: fields.texts } : {}), ...(fields.rule ? { rule: fields.rule } : {}) });
    } finally {
      // Gone before the answer: nothing of a scored-now image outlives its request.
      if (file) await rm(file, { force: true });
    }
    if (r.ok) {
      const results = r.results.map(({ text, cosine, score, band, truncated }) => ({ text, cosine, score, band, ...(truncated ? { truncated } : {}) }));
      return reply.status(200).send({ rule: r.rule, results, model: r.model, ...(fields.meta ? { meta: fields.meta } : {}) });
    }
    if (r.reason === 'backpressure') {
      reply.header('retry-after', String(Math.max(1, Math.ceil((r.retryAfterMs ?? 1000) / 1000))));
      throw new MatchdError('MATCHD_RATE_LIMITED', `${r.message}; retry later`);
    }
    if (r.reason === 'invalid') throw new MatchdError(r.code, r.message, { status: 400, ...(r.problems ? { problems: r.problems } : {}) });
    if (r.reason === 'item') throw new MatchdError(r.code, r.message, { status: UNPROCESSABLE });
    if (r.reason === 'unknown_rule') throw bad(r.message);
    throw bad(r.message, 503);
  }

  /** 202 with the job's status URL, or 200 with the result when it is ready within `wait`. */
  private async answer(req: Req, reply: FastifyReply, jobId: string, duplicate: boolean, wait: number): Promise<unknown> {
    const job = wait > 0 ? await this.ctx.waitForJob(jobId, wait) : this.ctx.getJob(jobId);
    const finished = job?.state === 'done' || job?.state === 'failed';
    reply.header('location', `/v1/jobs/${jobId}`);
    if (duplicate) reply.header('idempotent-replayed', 'true');
    const body = job ? this.view(req, job) : { jobId, state: 'queued', statusUrl: this.statusUrl(req, jobId) };
    return reply.status(finished && (wait > 0 || duplicate) ? 200 : 202).send({ ...body, ...(duplicate ? { duplicate: true } : {}) });
  }

  private async jobStatus(req: Req, reply: FastifyReply): Promise<unknown> {
    const identity = this.authenticate(req, 'status');
    const { id } = req.params as { id: string };
    const wait = Math.min(parseWait((req.query as Record<string, unknown>).wait), this.config.limits.maxWaitMs);
    const job = /^\d{1,15}$/.test(id) ? this.ctx.getJob(id) : undefined;
    // Only this source's jobs, and only to the identity that submitted them.
    if (!job || job.source !== this.ctx.name || job.origin.identity !== identity) throw bad(`no job ${id.slice(0, 40)}`, 404);
    const now = wait > 0 ? ((await this.ctx.waitForJob(id, wait)) ?? job) : job;
    return reply.status(200).send(this.view(req, now));
  }
}
