/** The page's one stylesheet and one script, files in src/ui/assets/ served from memory (no build step, no CDN). */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';

const ASSETS = { 'ui.css': 'text/css; charset=utf-8', 'ui.js': 'text/javascript; charset=utf-8' } as const;

export function registerAssets(app: FastifyInstance): void {
  for (const [name, type] of Object.entries(ASSETS)) {
    const body = fs.readFileSync(new URL(`../assets/${name}`, import.meta.url));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    app.get(`/assets/${name}`, (req, reply) => {
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (req.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type(type).send(body);
    });
  }
}
