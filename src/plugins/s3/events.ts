/**
 * Bucket notifications, the S3 source's event-driven mode. A feed turns the store's event records into "look at
 * this key" for the source, which lists that one key and takes the object through the same entity tracking as a
 * listing does (so an event, a sweep and a replayed event never score one version twice).
 *
 * Record format: S3's `{ "Records": [{ "eventName": "ObjectCreated:Put", "s3": { "bucket": { "name" }, "object":
 * { "key", "eTag", "size" } } }] }`, as AWS (via SQS, or SNS → SQS), MinIO and Ceph RGW send it. AWS and MinIO
 * URL-encode the key (spaces as `+`); RGW (`eventSource: "ceph:s3"`) sends it as it is.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../core/log.ts';

export interface ObjectEvent {
  bucket: string;
  key: string;
  /** ObjectCreated:* (true) or ObjectRemoved:* (false). */
  created: boolean;
}

/** Where events come from: started with a handler that takes them (resolves once the keys they name are handled). */
export interface EventFeed {
  start(handle: (events: ObjectEvent[]) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
  /** For the start-up log line. */
  readonly describe: string;
}

/** Event records out of one message body (also an SNS envelope around them; S3's test event holds none). */
export function parseEvents(body: unknown): ObjectEvent[] {
  let doc = body as { Records?: unknown; Type?: unknown; Message?: unknown };
  if (doc && typeof doc === 'object' && doc.Type === 'Notification' && typeof doc.Message === 'string') doc = JSON.parse(doc.Message);
  if (!doc || typeof doc !== 'object') throw new Error('the body is not a JSON object');
  if (doc.Records === undefined) return []; // s3:TestEvent and the like
  if (!Array.isArray(doc.Records)) throw new Error('Records is not a list');
  const out: ObjectEvent[] = [];
  for (const r of doc.Records as { eventName?: unknown; eventSource?: unknown; s3?: { bucket?: { name?: unknown }; object?: { key?: unknown } } }[]) {
    const name = typeof r?.eventName === 'string' ? r.eventName.replace(/^s3:/, '') : '';
    const bucket = r?.s3?.bucket?.name;
    const raw = r?.s3?.object?.key;
    if (typeof bucket !== 'string' || typeof raw !== 'string') continue;
    const created = name.startsWith('ObjectCreated:');
    if (!created && !name.startsWith('ObjectRemoved:')) continue;
    out.push({ bucket, key: r.eventSource === 'ceph:s3' ? raw : decodeKey(raw), created });
  }
  return out;
}

/** AWS's encoding of keys in event records: form-style (`+` for a space, %XX for the rest). */
function decodeKey(k: string): string {
  try {
    return decodeURIComponent(k.replace(/\+/g, ' '));
  } catch {
    return k;
  }
}

const MAX_BODY = 1024 * 1024;

/** An HTTP endpoint a store pushes to (a Ceph RGW or MinIO topic with `push-endpoint=http://host:port/path?token=...`). */
export class HttpEventFeed implements EventFeed {
  private server: http.Server | undefined;
  /** The port listened on (the configured one, or the one the system chose for 0). */
  port = 0;

  constructor(private readonly opts: { host: string; port: number; path: string; token?: string }, private readonly log: Logger) {}

  get describe(): string {
    return `http://${this.opts.host}:${this.port || this.opts.port}${this.opts.path}`;
  }

  start(handle: (events: ObjectEvent[]) => Promise<void>): Promise<void> {
    const server = http.createServer((req, res) => this.serve(req, res, handle));
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse, handle: (events: ObjectEvent[]) => Promise<void>): void {
    const answer = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain' }).end(message + '\n');
    };
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== this.opts.path) return answer(404, 'not an event endpoint');
    if (req.method !== 'POST') return answer(405, 'POST event records here');
    if (this.opts.token !== undefined && url.searchParams.get('token') !== this.opts.token) {
      req.resume();
      return answer(401, 'missing or wrong token');
    }
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        answer(413, 'event body over 1 MiB');
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (n > MAX_BODY) return;
      let events: ObjectEvent[];
      try {
        events = parseEvents(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'an event body could not be read; ignored');
        return answer(400, `not S3 event records: ${(err as Error).message}`);
      }
      // Answered once queued, not once handled: a store waits for the answer (RGW holds the upload's request for a
      // non-persistent topic). An event lost to a crash meanwhile is found by the next sweep.
      void handle(events).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'handling events failed'));
      answer(200, 'ok');
    });
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
