// No module of src/ imports itself back through others (issue 20: src/core/image.ts and src/core/image/ did): a circle
// makes load order matter and hides which file owns a concern. Relative imports only; packages cannot close a circle.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot } from '../fixtures/packages.ts';

/** Every .ts file under `dir`, with the .ts files it imports or re-exports by relative path. */
function importGraph(dir: string): Map<string, string[]> {
  const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
  const known = new Set(files);
  const from = /^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm;
  return new Map(files.map((f) => {
    const text = fs.readFileSync(f, 'utf8');
    const deps = [...text.matchAll(from)].map((m) => path.resolve(path.dirname(f), m[1]!)).filter((t) => known.has(t));
    return [f, deps];
  }));
}

/** The circles (strongly connected components of more than one file, or a file importing itself), Tarjan's way. */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const part: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      part.push(path.relative(repoRoot, w));
    } while (w !== v);
    if (part.length > 1 || graph.get(v)!.includes(v)) found.push(part.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('package: module structure', () => {
  test('src/ has no import circle', () => {
    const graph = importGraph(path.join(repoRoot, 'src'));
    assert.ok(graph.size > 100, `read ${graph.size} files`);
    assert.deepEqual(circles(graph), []);
  });

  test('the scan finds a circle when there is one', () => {
    const a = path.join(repoRoot, 'a.ts');
    const b = path.join(repoRoot, 'b.ts');
    assert.deepEqual(circles(new Map([[a, [b]], [b, [a]]])), [['a.ts', 'b.ts']]);
  });
});
