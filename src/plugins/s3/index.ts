/**
 * The S3 poller source: lists a bucket/prefix (AWS S3 or any S3-compatible store), scores new and overwritten
 * objects, and adds the action kinds `tag`, `s3copy` and `s3sidecar` for its jobs.
 */
import type { SourcePlugin } from '../../core/plugin.ts';
import { type S3Config, S3ConfigSchema, S3_ACTION_SCHEMAS } from './config.ts';
import { S3Source } from './source.ts';

export { type S3Config, S3ConfigSchema, S3_ACTION_SCHEMAS } from './config.ts';
export { S3Source, dedupeKey } from './source.ts';

/** The built-in `s3` source plugin. */
export const s3Plugin: SourcePlugin<S3Config> = {
  name: 's3',
  configSchema: S3ConfigSchema,
  actionSchemas: S3_ACTION_SCHEMAS,
  create: (ctx, config) => new S3Source(ctx, config),
};
