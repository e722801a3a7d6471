/**
 * Images by job id only: the path comes from the journal (where the job's file is now), never from the URL, so
 * nothing else on disk can be asked for. The file is admitted like any input (byte and pixel limits, sniffed as an
 * image) and re-encoded as a JPEG — a thumbnail or a large view — so what the browser gets is always a plain image.
 */
import fs from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { MatchdError, isMatchdError } from '../../core/errors.ts';
import { admitImage } from '../../core/image/admit.ts';
import type { Job } from '../../core/journal.ts';
import type { UiContext } from '../context.ts';

const SIZES = { thumb: 192, large: 1600 } as const;
/** Re-encodes at once: thumbnails must never crowd out the pipeline's own decoding. */
const CONCURRENCY = 2;

/** Whether the job should still have an image file (not a temporary upload or download, which is deleted). */
export function jobImageAvailable(job: Job): boolean {
  return (job.state === 'done' || job.state === 'failed') && !job.extra.temporary && job.outcome !== 'error';
}

class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

export function registerImages(app: FastifyInstance, ctx: UiContext): void {
  const gate = new Gate(CONCURRENCY);
  const limits = { maxBytes: ctx.b.config.model.maxBytes, maxPixels: ctx.b.config.model.maxPixels };
  const gone = (id: number, why: string) => new MatchdError('MATCHD_REQUEST_INVALID', `job ${id} has no image to show: ${why}`, { status: 404 });

  app.get('/image/:id', async (req, reply) => {
    const { id: raw } = req.params as { id: string };
    const size = (req.query as { size?: string }).size ?? 'thumb';
    if (!/^\d{1,15}$/.test(raw)) throw new MatchdError('MATCHD_REQUEST_INVALID', 'images are addressed by job id only', { status: 404 });
    if (!(size in SIZES)) throw new MatchdError('MATCHD_REQUEST_INVALID', `size: expected thumb or large but received ${JSON.stringify(size.slice(0, 20))}`);
    const id = Number(raw);
    const job = ctx.b.read('read a job', (j) => j.get(id));
    if (!job) throw gone(id, 'there is no such job');
    if (!jobImageAvailable(job)) throw gone(id, job.extra.temporary ? 'it was an upload or a download, deleted once its actions ran' : `it is ${job.state === 'failed' ? 'not an image' : job.state}`);
    const file = job.location ?? job.imagePath;
    const st = await fs.lstat(file).catch(() => undefined);
    if (!st?.isFile()) throw gone(id, 'its file is no longer where the journal says it is');
    const etag = `"${id}-${size}-${st.size}-${Math.round(st.mtimeMs)}"`;
    reply.header('cache-control', 'private, no-cache').header('etag', etag);
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    const jpeg = await gate.run(async () => {
      try {
        const a = await admitImage(file, limits);
        const edge = SIZES[size as keyof typeof SIZES];
        return await sharp(a.buf, a.first).rotate().resize(edge, edge, { fit: 'inside', withoutEnlargement: true }).flatten({ background: '#ffffff' }).jpeg({ quality: 82 }).toBuffer();
      } catch (err) {
        if (isMatchdError(err)) throw gone(id, err.message);
        throw gone(id, `it cannot be decoded (${(err as Error).message})`);
      }
    });
    return reply.type('image/jpeg').send(jpeg);
  });
}
