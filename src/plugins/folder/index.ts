/** The folder-watch source: picks up image files dropped into folders once they are completely written. */
import type { SourcePlugin } from '../../core/plugin.ts';
import { type FolderConfig, FolderConfigSchema } from './config.ts';
import { FolderSource } from './source.ts';

export { type FolderConfig, FolderConfigSchema } from './config.ts';
export { DEFAULT_EXTENSIONS, DEFAULT_IGNORE } from './filter.ts';
export { FolderSource } from './source.ts';

/** The built-in `folder` source plugin. */
export const folderPlugin: SourcePlugin<FolderConfig> = {
  name: 'folder',
  configSchema: FolderConfigSchema,
  create: (ctx, config) => new FolderSource(ctx, config),
};
