#!/usr/bin/env node
// `npm run build` (also run by `prepare`, i.e. `npm install` in a clone and `npm pack`, and by `npm test`):
// compile src/ to dist/ (JavaScript + type declarations, tsconfig.build.json; incremental, so a second run takes
// seconds), copy the non-TypeScript files the code reads at run time, then stamp dist/.built — bin/matchd.mjs compares src/ against that stamp to warn about a stale build.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.error('matchd build: TypeScript is not installed (a devDependency); run `npm install` in the matchd folder first');
  process.exit(1);
}
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) process.exit(r.status ?? 1);
// Files the code reads at run time next to itself (the web page's CSS and JS) travel with the compiled output.
for (const rel of fs.readdirSync(path.join(root, 'src'), { recursive: true }).map(String)) {
  const from = path.join(root, 'src', rel);
  if (rel.endsWith('.ts') || !fs.statSync(from).isFile()) continue;
  fs.mkdirSync(path.dirname(path.join(root, 'dist', rel)), { recursive: true });
  fs.copyFileSync(from, path.join(root, 'dist', rel));
}
fs.writeFileSync(path.join(root, 'dist', '.built'), new Date().toISOString() + '\n');
