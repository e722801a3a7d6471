/**
 * An image's own texts and meta in a watched folder: its companions (`photo.txt`, `photo.json`, see
 * src/core/items/companion.ts) or an entry in a manifest (`matchd-manifest.csv` / `.jsonl`) in its folder or a
 * folder above it, up to the watched root (the closest one wins). Precedence: photo.json's texts, photo.txt, the
 * manifest's; photo.json's meta, the manifest's.
 *
 * Companions and manifests must be stable (not written to for `stabilityMs`, mtime `minAgeMs` old) before they are
 * read: until then the image waits, at most `waitMs` (then it fails with MATCHD_COMPANION_INVALID: "still being
 * written"). With `expect`, an image without any companion or manifest entry also waits up to `waitMs` for one to
 * appear, then goes on without (the rule's texts, or MATCHD_TEXTS_REQUIRED for a per-item rule).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MatchdError } from '../../core/errors.ts';
import { companionPaths, readCapped, readCompanions, type ItemTexts } from '../../core/items/companion.ts';
import { entryItem, parseManifest, type Manifest } from '../../core/items/manifest.ts';

export interface Resolved extends ItemTexts {
  /** Companion files that exist: they travel with the image. */
  companions: string[];
  /** A companion that cannot be used: the item fails with this (and still takes its companions along). */
  failed?: { code: 'MATCHD_COMPANION_INVALID' | 'MATCHD_TEXT_INVALID'; message: string };
}

export type Resolution = { ready: Resolved } | { waitUntil: number };

export interface ResolverOptions {
  expect: boolean;
  waitMs: number;
  stabilityMs: number;
  minAgeMs: number;
  maxBytes: number;
  /** Manifest file names looked for in the image's folder and the folders above it, up to its root. */
  manifests: readonly string[];
  rootOf(file: string): string | undefined;
  /** A manifest problem (unreadable, bad rows, files it names that are not there): reported, never fatal. */
  report(manifest: string, problems: string[]): void;
  now?: () => number;
}

interface Seen {
  size: number;
  mtimeMs: number;
  since: number;
}

export class CompanionResolver {
  private readonly waitingSince = new Map<string, number>();
  private readonly seen = new Map<string, Seen>();
  private readonly manifests = new Map<string, { version: string; manifest: Manifest | undefined }>();
  private readonly now: () => number;

  constructor(private readonly opts: ResolverOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The image's texts and meta when its companions are ready, or when to ask again. */
  async resolve(image: string): Promise<Resolution> {
    const now = this.now();
    const since = this.waitingSince.get(image) ?? now;
    this.waitingSince.set(image, since);
    const waitedOut = now - since >= this.opts.waitMs;
    const again = { waitUntil: now + Math.max(20, Math.min(this.opts.stabilityMs, 250)) };

    const { txt, json } = companionPaths(image);
    const present: { txt?: string; json?: string } = {};
    const unstable: string[] = [];
    for (const [k, p] of [['txt', txt], ['json', json]] as const) {
      const st = await fs.stat(p).catch(() => undefined);
      if (!st?.isFile()) continue;
      present[k] = p;
      if (!this.stable(p, st, now)) unstable.push(p);
    }
    const companions = [present.txt, present.json].filter((p): p is string => !!p);
    const manifest = await this.manifestEntry(image, now, unstable);

    if (unstable.length) {
      if (!waitedOut) return again;
      const names = unstable.map((p) => path.basename(p)).join(', ');
      return { ready: { companions, failed: { code: 'MATCHD_COMPANION_INVALID', message: `${names} still being written after ${this.opts.waitMs} ms (companions.waitMs)` } } };
    }
    if (companions.length === 0 && !manifest && this.opts.expect && !waitedOut) return again;

    let own: ItemTexts = {};
    try {
      own = await readCompanions(present, this.opts.maxBytes);
    } catch (err) {
      const e = err instanceof MatchdError ? err : new MatchdError('MATCHD_COMPANION_INVALID', `cannot read a companion of ${path.basename(image)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return { ready: { companions, failed: { code: e.code === 'MATCHD_TEXT_INVALID' ? 'MATCHD_TEXT_INVALID' : 'MATCHD_COMPANION_INVALID', message: e.message } } };
    }
    const texts = own.texts ?? manifest?.texts;
    const meta = own.meta ?? manifest?.meta;
    return { ready: { companions, ...(texts ? { texts } : {}), ...(meta ? { meta } : {}) } };
  }

  /** The image was submitted (or is gone): forget what was tracked for it. */
  forget(image: string): void {
    this.waitingSince.delete(image);
    const { txt, json } = companionPaths(image);
    this.seen.delete(txt);
    this.seen.delete(json);
  }

  /** Not written to for stabilityMs (by mtime, or unchanged since first seen), and minAgeMs old. */
  private stable(p: string, st: { size: number; mtimeMs: number }, now: number): boolean {
    let s = this.seen.get(p);
    if (!s || s.size !== st.size || s.mtimeMs !== st.mtimeMs) {
      s = { size: st.size, mtimeMs: st.mtimeMs, since: now };
      this.seen.set(p, s);
    }
    const future = st.mtimeMs > now;
    const age = now - st.mtimeMs;
    if (!future && age >= Math.max(this.opts.stabilityMs, this.opts.minAgeMs)) return true;
    return now - s.since >= this.opts.stabilityMs && (future || age >= this.opts.minAgeMs);
  }

  /** The closest manifest entry for the image (an unstable manifest is added to `unstable`). */
  private async manifestEntry(image: string, now: number, unstable: string[]): Promise<ItemTexts | undefined> {
    if (this.opts.manifests.length === 0) return undefined;
    const root = this.opts.rootOf(image);
    let dir = path.dirname(image);
    for (;;) {
      for (const name of this.opts.manifests) {
        const file = path.join(dir, name);
        const st = await fs.stat(file, { bigint: false }).catch(() => undefined);
        if (!st?.isFile()) continue;
        if (!this.stable(file, st, now)) {
          unstable.push(file);
          return undefined;
        }
        const m = await this.load(file, `${st.size}:${st.mtimeMs}:${st.ino}`);
        const e = m?.entries.get(path.relative(dir, image).split(path.sep).join('/'));
        if (e) return entryItem(e);
      }
      if (!root || dir === root || !dir.startsWith(root)) return undefined;
      dir = path.dirname(dir);
    }
  }

  /** Parse a manifest once per version; report its problems (bad rows, files it names that are not there) once. */
  private async load(file: string, version: string): Promise<Manifest | undefined> {
    const cached = this.manifests.get(file);
    if (cached?.version === version) return cached.manifest;
    let manifest: Manifest | undefined;
    const problems: string[] = [];
    try {
      manifest = parseManifest(await readCapped(file, this.opts.maxBytes), path.basename(file));
      problems.push(...manifest.problems);
      const dir = path.dirname(file);
      const missing: string[] = [];
      for (const [name, e] of manifest.entries) {
        const there = await fs.stat(path.join(dir, name)).then((s) => s.isFile(), () => false);
        if (!there) missing.push(`${name} (line ${e.lines.join(', ')})`);
      }
      if (missing.length) problems.push(`names ${missing.length} file(s) that are not in ${dir}: ${missing.slice(0, 20).join('; ')}${missing.length > 20 ? '; ...' : ''}`);
    } catch (err) {
      problems.push(err instanceof MatchdError ? err.message : `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    this.manifests.set(file, { version, manifest });
    if (problems.length) this.opts.report(file, problems);
    return manifest;
  }
}
