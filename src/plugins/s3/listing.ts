/**
 * ListObjectsV2 for the S3 source: every page of a prefix (optionally only the keys after a `startAfter` key), split
 * into the objects the filter accepts and the companion keys (`<key>.texts.json`) by the key they belong to.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { bareEtag } from './client.ts';
import type { KeyFilter } from './glob.ts';
import { TEXTS_SUFFIX } from './item-texts.ts';

/** One listed object. */
export interface Listed {
  key: string;
  etag: string;
  size: number;
  lastModified: number;
}

export interface Listing {
  /** Accepted objects, in key order. */
  objects: Listed[];
  companions: Map<string, Listed>;
  /** The last key of the listing (accepted or not), for a key-ordered cursor. */
  lastKey?: string;
  /** ListObjectsV2 calls made. */
  calls: number;
}

export interface ListRequest {
  bucket: string;
  /** The source's prefix (the filter sees keys relative to it). */
  prefix: string;
  /** The listed prefix: the source's, a shard of it, or one object's key (an event). */
  listPrefix: string;
  startAfter?: string;
  pageSize: number;
  /** Stop after this many pages (an event's look at one key needs one). */
  maxPages?: number;
  companions: boolean;
  filter: KeyFilter;
  signal: AbortSignal;
}

export async function listObjects(client: S3Client, r: ListRequest): Promise<Listing> {
  const objects: Listed[] = [];
  const companions = new Map<string, Listed>();
  let token: string | undefined;
  let lastKey: string | undefined;
  let calls = 0;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: r.bucket, Prefix: r.listPrefix || undefined, MaxKeys: r.pageSize, ContinuationToken: token,
        ...(r.startAfter && !token ? { StartAfter: r.startAfter } : {}),
      }),
      { abortSignal: r.signal },
    );
    calls++;
    for (const o of page.Contents ?? []) {
      if (!o.Key || !o.Key.startsWith(r.prefix)) continue;
      lastKey = o.Key;
      const listed = { key: o.Key, etag: bareEtag(o.ETag), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 };
      if (r.companions && o.Key.endsWith(TEXTS_SUFFIX)) companions.set(o.Key.slice(0, -TEXTS_SUFFIX.length), listed);
      if (!r.filter.accepts(o.Key.slice(r.prefix.length))) continue;
      objects.push(listed);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (page.IsTruncated && !token) throw new Error('the listing is truncated but has no continuation token');
  } while (token && (r.maxPages === undefined || calls < r.maxPages));
  return { objects, companions, ...(lastKey !== undefined ? { lastKey } : {}), calls };
}
