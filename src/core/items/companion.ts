/**
 * Companion files: an image's own texts and meta next to it, named after it — `photo.jpg` + `photo.txt` (one text per
 * line, UTF-8; blank lines and `#` comments skipped) and/or `photo.json` (`{ "texts": [...], "meta": {...} }`).
 * photo.json's texts win over photo.txt's; its meta is the item's meta. Used by the folder source and by
 * `matchd score --dir`. Texts and meta are checked against the limits by the caller (the core's item check).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MatchdError, type ErrorCode } from '../errors.ts';

/** An item's own texts and meta, each optional. */
export interface ItemTexts {
  texts?: string[];
  meta?: Record<string, unknown>;
}

/** Extensions of companion files (never images, never jobs). */
export const COMPANION_EXTENSIONS = ['.txt', '.json'] as const;

/** Companion files larger than this are refused unread (texts are limited to far less anyway). */
export const DEFAULT_COMPANION_BYTES = 4 * 1024 * 1024;

/** photo.jpg → photo.txt and photo.json in the same folder. */
export function companionPaths(image: string): { txt: string; json: string } {
  const stem = path.join(path.dirname(image), path.basename(image, path.extname(image)));
  return { txt: `${stem}.txt`, json: `${stem}.json` };
}

/** True for a file name that is a companion (by extension). */
export function isCompanionName(name: string): boolean {
  return (COMPANION_EXTENSIONS as readonly string[]).includes(path.extname(name).toLowerCase());
}

/** Strict UTF-8 (a BOM is dropped): invalid bytes are an error naming the line, never silently replaced. */
export function decodeUtf8(bytes: Uint8Array, name: string, code: ErrorCode): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    let line = 1;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < bytes.length; i++) {
      try {
        decoder.decode(bytes.subarray(i, i + 1), { stream: true });
      } catch {
        break;
      }
      if (bytes[i] === 0x0a) line++;
    }
    throw new MatchdError(code, `${name}: invalid UTF-8 (around line ${line})`, { file: name, line });
  }
}

/** One text per line; blank lines and lines starting with `#` skipped. */
export function textLines(content: string): string[] {
  return content.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

const bad = (message: string) => new MatchdError('MATCHD_COMPANION_INVALID', message);

/** photo.txt's texts. An empty one is an error: a texts file that holds none is a mistake, not a fallback. */
export function parseTextsFile(bytes: Uint8Array, name: string): string[] {
  const texts = textLines(decodeUtf8(bytes, name, 'MATCHD_COMPANION_INVALID'));
  if (texts.length === 0) throw new MatchdError('MATCHD_TEXT_INVALID', `${name}: no texts (one per line; blank lines and # comments are skipped)`);
  return texts;
}

/** photo.json: an object with `texts` and/or `meta`, nothing else (a typo is an error, not ignored). */
export function parseCompanionJson(bytes: Uint8Array, name: string): ItemTexts {
  let v: unknown;
  try {
    v = JSON.parse(decodeUtf8(bytes, name, 'MATCHD_COMPANION_INVALID'));
  } catch (err) {
    if (err instanceof MatchdError) throw err;
    throw bad(`${name}: not valid JSON (${(err as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(`${name}: expected an object like { "texts": [...], "meta": {...} }`);
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => k !== 'texts' && k !== 'meta');
  if (unknown.length) throw bad(`${name}: unknown key(s) ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')} (known: texts, meta)`);
  // Types and limits are the core's item check (MATCHD_TEXT_INVALID / MATCHD_META_INVALID).
  return { ...(o.texts !== undefined ? { texts: o.texts as string[] } : {}), ...(o.meta !== undefined ? { meta: o.meta as Record<string, unknown> } : {}) };
}

/** Read a companion file under a byte cap. */
export async function readCapped(file: string, maxBytes: number): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw bad(`${path.basename(file)}: ${size} bytes, over the ${maxBytes}-byte limit for companion files`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Texts and meta from the companions that exist (photo.json's texts win); `files` lists them. Throws per-item errors. */
export async function readCompanions(present: { txt?: string; json?: string }, maxBytes = DEFAULT_COMPANION_BYTES): Promise<ItemTexts> {
  const fromJson = present.json ? parseCompanionJson(await readCapped(present.json, maxBytes), path.basename(present.json)) : {};
  const texts = fromJson.texts ?? (present.txt ? parseTextsFile(await readCapped(present.txt, maxBytes), path.basename(present.txt)) : undefined);
  return { ...(texts ? { texts } : {}), ...(fromJson.meta !== undefined ? { meta: fromJson.meta } : {}) };
}

/** Which companions of `image` exist (regular files). */
export async function presentCompanions(image: string): Promise<{ txt?: string; json?: string }> {
  const { txt, json } = companionPaths(image);
  const isFile = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);
  const [t, j] = await Promise.all([isFile(txt), isFile(json)]);
  return { ...(t ? { txt } : {}), ...(j ? { json } : {}) };
}
