/**
 * Entity tracking: is a listed object new, already handled, or a replacement of a handled one? The journal is the
 * tracker. A job's dedupe key is `s3:<bucket>/<key>@<ETag>` (an overwrite with other bytes is new work); a
 * re-upload of the same bytes (same ETag, later LastModified: S3 dropped the object's tags, a move had deleted it)
 * is journalled again as `…@<ETag>#<LastModified ms>`, so its actions run again.
 *
 * LastModified alone cannot tell a re-upload: Ceph RGW moves it when an object's tags change (ours included). So a
 * later LastModified counts as a re-upload only when the object carries none of the tag keys the source's `tag`
 * actions have put (S3 drops an object's tags when it is replaced); a source that never tags has nothing to check.
 * Only objects modified at or after the listing watermark are examined this closely; older ones were examined at
 * that LastModified by an earlier listing.
 */
import { GetObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PluginContext } from '../../core/plugin.ts';
import { classify } from './client.ts';
import type { Listed } from './listing.ts';

export type Verdict = 'new' | 'known' | 'replaced';

/** State key: every tag key the source's `tag` actions have put (written by actions.ts). */
export const TAG_KEYS = 'tagKeys';

export function dedupeKey(bucket: string, o: { key: string; etag: string }): string {
  return `s3:${bucket}/${o.key}@${o.etag}`;
}

/** The dedupe key of a re-upload of the same bytes. */
export function reuploadKey(bucket: string, o: Listed): string {
  return `${dedupeKey(bucket, o)}#${o.lastModified}`;
}

export class Tracker {
  constructor(private readonly ctx: PluginContext, private readonly client: S3Client, private readonly bucket: string, private readonly signal: AbortSignal) {}

  /** The verdict on one listed object; `watermark`: the listing watermark (objects older were examined before). */
  async verdict(o: Listed, watermark: number): Promise<Verdict> {
    const base = dedupeKey(this.bucket, o);
    if (!this.ctx.isKnown(base)) return 'new';
    if (o.lastModified < watermark) return 'known';
    if (this.ctx.isKnown(reuploadKey(this.bucket, o))) return 'known';
    const scored = Date.parse(String(this.ctx.findJob(base)?.origin.lastModified ?? ''));
    if (!Number.isFinite(scored) || o.lastModified <= scored) return 'known';
    return (await this.stillTagged(o)) ? 'known' : 'replaced';
  }

  /** True when the object carries a tag key this source's actions put (so it was not replaced since). */
  private async stillTagged(o: Listed): Promise<boolean> {
    const keys = this.ctx.state.get<string[]>(TAG_KEYS) ?? [];
    if (keys.length === 0) return false;
    try {
      const r = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: o.key }), { abortSignal: this.signal });
      const have = new Set((r.TagSet ?? []).map((t) => t.Key));
      return keys.some((k) => have.has(k));
    } catch (err) {
      if (classify(err) === 'gone') return true; // deleted since the listing: nothing to do for it
      throw err;
    }
  }
}
