#!/usr/bin/env node
// The CLI entry: matchd's sources are TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
