#!/usr/bin/env node
// The CLI entry: runs the compiled JavaScript in dist/ (built by `npm run build`, which `npm install` and `npm pack`
// run through `prepare`), so the command needs no TypeScript loader and writes no transpile cache.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const main = path.join(root, 'dist', 'cli', 'main.js');

if (!fs.existsSync(main)) {
  process.stderr.write(`matchd: MATCHD_BUILD_MISSING: ${main} is missing; run \`npm run build\` (or \`npm install\`) in ${root}\n`);
  process.exit(1);
}

// In a clone (src/ present), say when the sources changed after the last build: the CLI would run old code.
const src = path.join(root, 'src');
if (fs.existsSync(src)) {
  const built = fs.statSync(path.join(root, 'dist', '.built'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const newer = fs.readdirSync(src, { recursive: true }).find((f) => String(f).endsWith('.ts') && fs.statSync(path.join(src, String(f))).mtimeMs > built);
  if (newer) process.stderr.write(`matchd: warning: src/${newer} changed after the last build; run \`npm run build\` (dist/ is what runs)\n`);
}

await import(pathToFileURL(main).href);
