/** The folder-watch source: picks up image files dropped into folders once they are completely written. */
import type { SourcePlugin } from '../../core/plugin.ts';
import { type FolderConfig, FolderConfigSchema } from './config.ts';
import path from 'node:path';
import { FolderSource, checkRoot } from './source.ts';

export { type FolderConfig, FolderConfigSchema } from './config.ts';
export { DEFAULT_EXTENSIONS, DEFAULT_IGNORE } from './filter.ts';
export { FolderSource } from './source.ts';

/** The built-in `folder` source plugin. */
export const folderPlugin: SourcePlugin<FolderConfig> = {
  name: 'folder',
  configSchema: FolderConfigSchema,
  create: (ctx, config) => new FolderSource(ctx, config),
  /** Every watched folder exists and can be read (unless `create` makes it). */
  async preflight(config, { resolvePath }) {
    if (config.create) return [];
    const problems = await Promise.all(config.paths.map(async (p, i) => {
      const why = await checkRoot(path.resolve(resolvePath(p)));
      return why ? { key: `paths.${i}`, message: `${why}; create it, fix the path, or set create: true` } : undefined;
    }));
    return problems.filter((p) => p !== undefined);
  },
};
