/**
 * `matchd endpoint list | enable NAME|URL [--source NAME] [--config FILE]`: callback endpoints a receiver disabled by
 * answering 410 Gone, and turning them back on. The journal holds the flag (the webhook source's state), so a running
 * daemon sends the next callback to a re-enabled endpoint without a restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { Journal } from '../core/journal.ts';
import { disabledKey } from '../core/callbacks/deliver.ts';
import { UsageError, packageRoot } from './args.ts';
import { journalPath } from './replay.ts';

export const endpointUsage = `matchd endpoint list [--config FILE]     callback endpoints disabled by a 410 Gone
matchd endpoint enable NAME|URL [--source S] [--config FILE]
                                         re-enable one (a configured endpoint name, or a callbackUrl)`;

const PREFIX = 'disabled:';

export async function endpointCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, source: { type: 'string' } },
  });
  const [sub, target, ...extra] = positionals;
  if (extra.length || !(sub === 'list' ? target === undefined : sub === 'enable' && target)) throw new UsageError(`endpoint takes list, or enable NAME|URL\n${endpointUsage}`);
  const config = path.resolve(values.config ?? path.join(packageRoot, 'config', 'default.yaml'));
  const db = journalPath(config);
  if (!fs.existsSync(db)) throw new MatchdError('MATCHD_JOURNAL', `no journal at ${db} (from ${config})`);
  const journal = new Journal(db);
  try {
    const disabled = journal.pluginEntries(PREFIX, values.source);
    const label = (key: string) => key.slice(PREFIX.length).replace(/^endpoint:/, 'endpoint ').replace(/^url:/, 'url ');
    if (sub === 'list') {
      if (!disabled.length) process.stdout.write('no callback endpoint is disabled\n');
      for (const d of disabled) {
        const v = d.value as { at?: number; jobId?: number } | undefined;
        process.stdout.write(`${d.plugin}\t${label(d.key)}\tdisabled ${v?.at ? new Date(v.at).toISOString() : ''}${v?.jobId ? ` (410 Gone for job ${v.jobId})` : ''}\n`);
      }
      return 0;
    }
    const key = disabledKey(target!.includes('://') ? { url: target! } : { endpoint: target! });
    const hits = disabled.filter((d) => d.key === key);
    if (!hits.length) {
      throw new UsageError(`${label(key)} is not disabled${values.source ? ` in source '${values.source}'` : ''}; disabled: ${disabled.map((d) => `${label(d.key)} (${d.plugin})`).join(', ') || 'none'}`);
    }
    for (const h of hits) journal.pluginDelete(h.plugin, h.key);
    process.stdout.write(
      `re-enabled ${label(key)} (source ${hits.map((h) => h.plugin).join(', ')}); callbacks that were dead-lettered while it was disabled stay dead — ` +
        '`matchd replay --since 1d` re-sends them\n',
    );
    return 0;
  } finally {
    journal.close();
  }
}
