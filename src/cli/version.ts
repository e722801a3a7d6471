/** `matchd --version`: matchd's version, Node's, ONNX Runtime's and the execution providers this install can use. */
import fs from 'node:fs';
import path from 'node:path';
import { isMatchdError } from '../core/errors.ts';
import { addon, addonCandidates } from '../core/native.ts';
import { packageRoot } from './args.ts';

export const versionUsage = `matchd --version                versions: matchd, Node.js, ONNX Runtime, and the execution providers available`;

export function matchdVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

export async function versionCommand(): Promise<number> {
  const out = (s: string) => process.stdout.write(s + '\n');
  out(`matchd ${matchdVersion()} (${packageRoot})`);
  out(`node ${process.version}`);
  let v;
  try {
    v = addon().versions();
  } catch (err) {
    // Still say what we know; the addon's own message says how to fix the build.
    out(`onnxruntime: unavailable — ${isMatchdError(err) ? `${err.code}: ${err.message.split('\n')[0]}` : String(err)}`);
    return 1;
  }
  out(`onnxruntime ${v.onnxruntime} (C API ${v.ortApi})`);
  // The CUDA provider is a separate library next to the addon (npm run setup:cuda); ORT lists only built-in ones.
  const addonDir = path.dirname(addonCandidates().find((f) => fs.existsSync(f)) ?? '');
  const cuda = fs.existsSync(path.join(addonDir, 'libonnxruntime_providers_cuda.so'))
    ? 'cuda (provider installed; needs the CUDA 13 runtime, cuBLAS and cuDNN 9 when a session loads)'
    : 'cuda: not installed (`npm run setup:cuda`)';
  const builtIn = v.providers.map((p) => p.replace(/ExecutionProvider$/, '').toLowerCase());
  out(`execution providers: ${builtIn.join(', ')}; ${cuda}`);
  return 0;
}
