/**
 * An S3 object's own texts and meta: user metadata `x-amz-meta-matchd-texts` (a JSON array of strings) and
 * `x-amz-meta-matchd-meta` (a JSON object) — S3 keeps at most 2 KB of user metadata, so larger ones go in a companion
 * key next to the object, `<key>.texts.json` (`{ "texts": [...], "meta": {...} }`, as a folder's photo.json). The
 * companion key's texts and meta win over the metadata's. Both are only read here; their types and limits are
 * checked by the core (MATCHD_TEXT_INVALID, MATCHD_META_INVALID); unreadable JSON is MATCHD_COMPANION_INVALID.
 */
import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MatchdError } from '../../core/errors.ts';
import { parseCompanionJson, type ItemTexts } from '../../core/items/companion.ts';

/** The companion key of an object. */
export const TEXTS_SUFFIX = '.texts.json';

/** Metadata names as the SDK returns them (lower case, without `x-amz-meta-`). */
const TEXTS = 'matchd-texts';
const META = 'matchd-meta';

function json(value: string, what: string, key: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new MatchdError('MATCHD_COMPANION_INVALID', `s3 object ${key}: x-amz-meta-${what} is not valid JSON (${JSON.stringify(value.slice(0, 60))})`);
  }
}

/** Texts and meta from an object's user metadata. */
export function fromMetadata(metadata: Record<string, string> | undefined, key: string): ItemTexts {
  const out: ItemTexts = {};
  const t = metadata?.[TEXTS];
  const m = metadata?.[META];
  if (t !== undefined) out.texts = json(t, TEXTS, key) as string[];
  if (m !== undefined) out.meta = json(m, META, key) as Record<string, unknown>;
  return out;
}

/** Read `<key>.texts.json` (the listed version: an overwrite since is left to the image's next version). */
export async function fromCompanionKey(client: S3Client, bucket: string, key: string, etag: string, maxBytes: number, signal: AbortSignal): Promise<ItemTexts> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: `"${etag}"` }), { abortSignal: signal });
  const body = res.Body as Readable | undefined;
  if (!body) throw new Error('GetObject returned no body');
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > maxBytes) {
      body.destroy();
      throw new MatchdError('MATCHD_COMPANION_INVALID', `${key}: over the ${maxBytes}-byte limit for companion files`);
    }
    chunks.push(c as Buffer);
  }
  return parseCompanionJson(Buffer.concat(chunks), key);
}

/** Companion first, then metadata, field by field. */
export function merge(metadata: ItemTexts, companion: ItemTexts): ItemTexts {
  const texts = companion.texts ?? metadata.texts;
  const meta = companion.meta ?? metadata.meta;
  return { ...(texts !== undefined ? { texts } : {}), ...(meta !== undefined ? { meta } : {}) };
}
