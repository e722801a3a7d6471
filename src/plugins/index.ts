/** The built-in source plugins, registered by name. */
import { PluginRegistry } from '../core/registry.ts';
import { folderPlugin } from './folder/index.ts';
import { webhookPlugin } from './webhook/index.ts';
import { s3Plugin } from './s3/index.ts';

/** A registry holding every built-in plugin. */
export function builtinRegistry(): PluginRegistry {
  return new PluginRegistry().register(folderPlugin).register(s3Plugin).register(webhookPlugin);
}
