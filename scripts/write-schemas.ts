/** Writes the published JSON Schemas from their zod sources: `npm run schema`. A test checks they are current. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/core/config.ts';
import { manifestJsonSchema } from '../src/core/model/manifest.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every published schema: file → generator. */
export const SCHEMAS: Record<string, () => Record<string, unknown>> = {
  'models/model.schema.json': manifestJsonSchema,
  'config/config.schema.json': configJsonSchema,
};

export function render(make: () => Record<string, unknown>): string {
  return JSON.stringify(make(), null, 2) + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [file, make] of Object.entries(SCHEMAS)) {
    fs.writeFileSync(path.join(root, file), render(make));
    console.log(`wrote ${file}`);
  }
}
