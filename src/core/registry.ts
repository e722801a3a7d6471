/** Finds source plugins by name: built-ins registered by the caller, external ones by module path or package name. */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MatchdError } from './errors.ts';
import { assertPlugin, type SourcePlugin } from './plugin.ts';

export class PluginRegistry {
  private readonly plugins = new Map<string, SourcePlugin>();

  register(plugin: unknown, from = 'built-in'): this {
    try {
      assertPlugin(plugin, from);
    } catch (err) {
      throw new MatchdError('MATCHD_PLUGIN', (err as Error).message);
    }
    if (this.plugins.has(plugin.name)) throw new MatchdError('MATCHD_PLUGIN', `a plugin named '${plugin.name}' is already registered`);
    this.plugins.set(plugin.name, plugin);
    return this;
  }

  has(type: string): boolean {
    return this.plugins.has(type);
  }

  names(): string[] {
    return [...this.plugins.keys()];
  }

  /**
   * The plugin for a config `type`: a registered name, else a module (`./x.js` relative to `baseDir`, an absolute
   * path, or a package name) whose default export (or `plugin` export) is a plugin.
   */
  async resolve(type: string, baseDir: string): Promise<SourcePlugin> {
    const known = this.plugins.get(type);
    if (known) return known;
    const isPath = type.startsWith('.') || path.isAbsolute(type);
    const specifier = isPath ? pathToFileURL(path.resolve(baseDir, type)).href : type;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(specifier)) as Record<string, unknown>;
    } catch (err) {
      throw new MatchdError('MATCHD_PLUGIN', `unknown source type '${type}': not a built-in (${this.names().join(', ')}) and cannot be imported: ${(err as Error).message}`);
    }
    const plugin = mod.default ?? mod.plugin;
    try {
      assertPlugin(plugin, type);
    } catch (err) {
      throw new MatchdError('MATCHD_PLUGIN', (err as Error).message);
    }
    return plugin;
  }
}
