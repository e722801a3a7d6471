/** The folder source's options (`sources[].options` for `type: folder`). */
import { z } from 'zod';
import { DEFAULT_EXTENSIONS } from './filter.ts';

const ms = (field: string) =>
  z.number({ error: `${field} must be a number of milliseconds` }).int(`${field} must be a whole number of milliseconds`).min(0, `${field} must be >= 0`);
const bool = (field: string) => z.boolean({ error: `${field} must be true or false` });

/** Validates and fills in the defaults of the folder source's options. */
export const FolderConfigSchema = z.strictObject(
  {
    paths: z
      .array(z.string({ error: 'paths must hold folder paths (strings)' }).min(1, 'paths must not hold an empty path'), {
        error: 'paths must be a list of folders',
      })
      .min(1, 'paths needs at least one folder'),
    recursive: bool('recursive').default(false),
    create: bool('create').default(false).describe('create missing folders at start (else a missing folder is an error)'),
    ignore: z
      .array(z.string({ error: 'ignore must hold glob strings' }).min(1, 'ignore must not hold an empty glob'), { error: 'ignore must be a list of globs' })
      .default([])
      .describe('globs added to the defaults (.*, *.tmp, *.part, *.crdownload, ~$*, @eaDir); matched case-insensitively'),
    extensions: z
      .array(
        z.string({ error: 'extensions must hold strings' }).regex(/^\.?[A-Za-z0-9_+-]+$/, 'extensions must hold plain extensions such as "jpg"'),
        { error: 'extensions must be a list of file extensions' },
      )
      .default([...DEFAULT_EXTENSIONS])
      .describe('case-insensitive; [] = every file (content is sniffed by the core anyway)'),
    stabilityMs: ms('stabilityMs').default(1000).describe('size and mtime unchanged for this long before a file is read'),
    minAgeMs: ms('minAgeMs').default(500).describe('and its mtime at least this old'),
    usePolling: bool('usePolling').default(false).describe('poll instead of inotify (network shares, some containers)'),
    pollIntervalMs: ms('pollIntervalMs').min(10, 'pollIntervalMs must be >= 10').default(1000),
    rescanMs: ms('rescanMs').default(30_000).describe('full walk that reconciles missed events; 0 disables'),
    rule: z.string({ error: 'rule must be a rule name' }).min(1, 'rule must not be empty').optional(),
    companions: z
      .strictObject({
        enabled: bool('companions.enabled').default(true).describe('read photo.txt / photo.json next to photo.jpg, and manifests'),
        expect: bool('companions.expect').optional()
          .describe("every image has texts of its own: wait (up to waitMs) for a companion that is not there yet; default: true when the rule is texts: per-item"),
        waitMs: ms('companions.waitMs').default(10_000).describe('longest an image waits for an expected companion, or for one still being written'),
        manifests: z
          .array(z.string().regex(/^[^/\\]+\.(csv|jsonl|ndjson)$/i, 'manifests must hold file names ending in .csv, .jsonl or .ndjson'))
          .default(['matchd-manifest.csv', 'matchd-manifest.jsonl'])
          .describe('file names looked for in each watched folder (and its sub-folders when recursive)'),
        maxBytes: z.number().int().positive().default(4 * 1024 * 1024).describe('larger companion or manifest files are refused unread'),
      }, { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown companions option(s) ${iss.keys.join(', ')}` : undefined) })
      .prefault({}),
  },
  { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown option(s) ${iss.keys.join(', ')}` : 'folder options must be an object') },
);

/** The folder source's options, defaults applied. */
export type FolderConfig = z.output<typeof FolderConfigSchema>;
