/**
 * A request's image, spooled to a file under the byte cap while it streams: a multipart file part (`image`), base64
 * (`image`) in a JSON body, or an `imageUrl` fetched through the SSRF guard. Returns the file and the body's other
 * fields (unchecked: fields.ts checks them). On any failure the spooled file is removed.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { MatchdError } from '../../core/errors.ts';
import { OutboundGuard, fetchImage } from '../../core/outbound.ts';
import type { WebhookConfig } from './config.ts';
import { bad, fromMultipart } from './fields.ts';

export interface Received {
  file: string;
  body: Record<string, unknown>;
  /** Problems found while reading multipart fields (listed with the others by parseFields). */
  problems: string[];
}

export class Receiver {
  constructor(
    private readonly config: WebhookConfig,
    private readonly guard: OutboundGuard,
    private readonly spoolDir: string,
    private readonly signal: AbortSignal,
  ) {}

  private spoolFile(): string {
    return path.join(this.spoolDir, `${randomUUID()}.upload`);
  }

  async receive(req: FastifyRequest): Promise<Received> {
    if (req.isMultipart()) return this.multipart(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object');
    return { file: await this.jsonImage(body), body, problems: [] };
  }

  /** A JSON request's image: `image` (base64) or `imageUrl` (fetched through the SSRF guard). */
  private async jsonImage(body: Record<string, unknown>): Promise<string> {
    const has = (k: string) => body[k] !== undefined;
    if (has('image') === has('imageUrl')) throw bad('give exactly one of image (base64) or imageUrl');
    const file = this.spoolFile();
    if (has('image')) {
      if (typeof body.image !== 'string') throw bad('image must be a base64 string');
      const b64 = body.image.replace(/^data:[^,]*;base64,/, '');
      if (!/^[A-Za-z0-9+/=\s_-]*$/.test(b64)) throw bad('image is not valid base64');
      const bytes = Buffer.from(b64, 'base64');
      if (bytes.length > this.config.limits.uploadBytes) throw new MatchdError('MATCHD_IMAGE_TOO_LARGE', `the image is over the ${this.config.limits.uploadBytes}-byte limit`);
      await fs.promises.writeFile(file, bytes, { flag: 'wx' });
      return file;
    }
    if (typeof body.imageUrl !== 'string') throw bad('imageUrl must be a URL');
    try {
      await fetchImage(this.guard, body.imageUrl, file, {
        timeoutMs: this.config.outbound.timeoutMs,
        maxBytes: Math.min(this.config.outbound.imageBytes, this.config.limits.uploadBytes),
        signal: this.signal,
      });
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    return file;
  }

  /** One file part (`image`) streamed to the spool under the byte cap, plus string fields (a field over the cap: 413). */
  private async multipart(req: FastifyRequest): Promise<Received> {
    let file: string | undefined;
    const raw = new Map<string, string[]>();
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (file) throw bad('one image per request');
          if (part.fieldname !== 'image') throw bad(`the file part must be named 'image' (got '${part.fieldname.slice(0, 40)}')`);
          file = this.spoolFile();
          // busboy marks the part truncated at the limit but keeps reading to the part's end: stop right there instead.
          const tooLarge = new MatchdError('MATCHD_IMAGE_TOO_LARGE', `the upload is over the ${this.config.limits.uploadBytes}-byte limit`);
          part.file.once('limit', () => part.file.destroy(tooLarge));
          await pipeline(part.file, fs.createWriteStream(file, { flags: 'wx' }));
          if (part.file.truncated) throw tooLarge;
        } else {
          if (part.valueTruncated) throw new MatchdError('MATCHD_REQUEST_TOO_LARGE', `field '${part.fieldname.slice(0, 40)}' is over the ${this.config.limits.jsonBytes}-byte limit`, { status: 413 });
          // A field sent with content-type application/json arrives parsed; keep every field as the text it was.
          const v = typeof part.value === 'string' ? part.value : JSON.stringify(part.value);
          raw.set(part.fieldname, [...(raw.get(part.fieldname) ?? []), v]);
        }
      }
      if (!file) throw bad('the multipart body has no image file part');
      const { body, problems } = fromMultipart(raw);
      return { file, body, problems };
    } catch (err) {
      if (file) await rm(file, { force: true });
      throw err;
    }
  }
}
