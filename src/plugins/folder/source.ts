/**
 * One running folder source: chokidar events and periodic walks feed the stability tracker, which submits each stable
 * image with its own texts and meta (companions.ts) once those are stable too.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { isCompanionName } from '../../core/items/companion.ts';
import type { PluginContext, SourceInstance } from '../../core/plugin.ts';
import { CompanionResolver, type Resolved } from './companions.ts';
import type { FolderConfig } from './config.ts';
import { PathFilter } from './filter.ts';
import { type FileVersion, Tracker, type Verdict } from './tracker.ts';
import { walk } from './walk.ts';

/** Test hooks; not part of the config. */
export interface FolderTestOptions {
  /** false: no watcher, so only the start-up walk and rescans find files (simulates missed events). */
  watch?: boolean;
}

const UNKNOWN_RULE_RETRY_MS = 60_000;
const SUBMIT_ERROR_RETRY_MS = 5_000;
/** Manifest problems kept in the source's state (`manifestProblems`), most recent last. */
const KEEP_PROBLEMS = 50;

/** The folder source instance created by `folderPlugin.create`. */
export class FolderSource implements SourceInstance {
  private readonly roots: string[];
  private readonly filter: PathFilter;
  private readonly tracker: Tracker;
  private readonly companions: CompanionResolver | undefined;
  private readonly tickMs: number;
  private readonly abort = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly missingRoots = new Set<string>();
  private watcher: FSWatcher | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private health: { state: 'ok' | 'degraded'; detail?: string } = { state: 'ok' };
  private unknownRule = false;

  constructor(
    private readonly ctx: PluginContext,
    private readonly config: FolderConfig,
    private readonly testing: FolderTestOptions = {},
  ) {
    this.roots = [...new Set(config.paths.map((p) => path.resolve(ctx.resolvePath(p))))];
    const c = config.companions;
    const manifests = new Set(c.manifests.map((m) => m.toLowerCase()));
    // Companions and manifests are never jobs, even with `extensions: []`.
    this.filter = new PathFilter({
      ignore: config.ignore, extensions: config.extensions, ...(c.enabled ? { notJobs: (n) => isCompanionName(n) || manifests.has(n.toLowerCase()) } : {}),
    });
    this.companions = c.enabled
      ? new CompanionResolver({
          expect: c.expect ?? ctx.needsTexts(config.rule),
          waitMs: c.waitMs, stabilityMs: config.stabilityMs, minAgeMs: config.minAgeMs, maxBytes: c.maxBytes, manifests: c.manifests,
          rootOf: (f) => this.rootOf(f),
          report: (manifest, problems) => this.manifestProblem(manifest, problems),
        })
      : undefined;
    this.tickMs = Math.max(10, Math.min(250, Math.floor(config.stabilityMs / 4)));
    this.tracker = new Tracker({
      stabilityMs: config.stabilityMs,
      minAgeMs: config.minAgeMs,
      keyOf: (file, v) => `folder:${file}:${v.size}:${v.mtimeMs}:${v.ino}`,
      isKnown: (key) => ctx.isKnown(key),
      submit: (file, v, key) => this.submit(file, v, key),
      onError: (file, err) => this.problem(`cannot stat ${file}: ${err.code ?? err.message}`, err, 'warn'),
    });
  }

  /** Files waiting for stability or for room in the queue. */
  get pending(): number {
    return this.tracker.pending;
  }

  start(): Promise<void> {
    this.started ??= this.doStart();
    return this.started;
  }

  private async doStart(): Promise<void> {
    if (this.config.create) await Promise.all(this.roots.map((r) => fs.mkdir(r, { recursive: true })));
    const problems = (await Promise.all(this.roots.map((r) => checkRoot(r)))).filter((p): p is string => !!p);
    if (problems.length) throw new Error(`folder source '${this.ctx.name}': ${problems.join('; ')}`);
    if (this.abort.signal.aborted) return;
    // watch first, then walk: a file created between the two is then seen by one of them
    if (this.testing.watch !== false) await this.startWatcher();
    if (this.abort.signal.aborted) return;
    this.scheduleTick();
    // files already there at start-up (downtime must not lose them); later walks only reconcile
    await this.track(this.rescan());
    this.scheduleRescan();
    this.ctx.log.info({ roots: this.roots, recursive: this.config.recursive, polling: this.config.usePolling, pending: this.tracker.pending }, 'watching folders');
  }

  private async startWatcher(): Promise<void> {
    const w = watch(this.roots, {
      ignoreInitial: true,
      persistent: true,
      followSymlinks: false,
      usePolling: this.config.usePolling,
      interval: this.config.pollIntervalMs,
      binaryInterval: this.config.pollIntervalMs,
      ...(this.config.recursive ? {} : { depth: 0 }),
      ignored: (p: string) => {
        const rel = this.relative(p);
        return rel !== undefined && this.filter.ignores(rel);
      },
    });
    this.watcher = w;
    const hint = (p: string) => this.guard(() => this.hint(p));
    w.on('add', hint);
    w.on('change', hint);
    w.on('unlink', (p) => this.guard(() => {
      this.tracker.forget(p);
      this.companions?.forget(p);
    }));
    w.on('unlinkDir', (p) => this.guard(() => this.tracker.forgetUnder(p)));
    w.on('addDir', (p) => this.guard(() => this.addDir(p)));
    w.on('error', (err) => this.problem(`watcher error: ${(err as Error).message}`, err));
    await new Promise<void>((resolve) => {
      w.once('ready', resolve);
      this.abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** A watcher event for a file. */
  private hint(file: string): void {
    const rel = this.relative(file);
    if (rel === undefined || !this.filter.acceptsFile(rel)) return;
    if (!this.config.recursive && rel.includes('/')) return;
    this.tracker.observe(file);
  }

  /** A folder appeared (moved in with its files, perhaps before its watch was set up): walk it. */
  private addDir(dir: string): void {
    const rel = this.relative(dir);
    if (!rel || !this.config.recursive || this.filter.ignores(rel)) return;
    this.track(
      walk(this.rootOf(dir)!, {
        from: rel,
        recursive: true,
        filter: this.filter,
        onFile: (f) => this.tracker.observe(f),
        onError: () => {}, // the next rescan reports folders that stay unreadable
        signal: this.abort.signal,
      }),
    );
  }

  /** Walk every root and reconcile: finds files whose events were missed. Resolves when the walk is done. */
  async rescan(): Promise<void> {
    if (this.tracker.isHalted) return;
    let clean = true;
    for (const root of this.roots) {
      if (this.abort.signal.aborted) return;
      const seen = new Set<string>();
      const complete = await walk(root, {
        recursive: this.config.recursive,
        filter: this.filter,
        onFile: (f) => {
          seen.add(f);
          this.tracker.observe(f);
        },
        onError: (dir, err) => {
          if (dir === root && err.code === 'ENOENT') {
            if (!this.missingRoots.has(root)) this.ctx.log.error({ root }, 'watched folder is gone');
            this.missingRoots.add(root);
            this.degrade(`folder ${root} is missing`);
          } else this.problem(`cannot list ${dir}: ${err.code ?? err.message}`, err, 'warn');
        },
        signal: this.abort.signal,
      });
      if (complete) {
        const prefix = `${root}/`;
        this.tracker.pruneSettled((f) => !f.startsWith(prefix) || seen.has(f));
        if (this.missingRoots.delete(root)) this.rewatch(root);
      }
      clean &&= complete;
    }
    if (clean && !this.unknownRule && this.health.state !== 'ok' && !this.abort.signal.aborted) {
      this.health = { state: 'ok' };
      this.ctx.setHealth('ok');
      this.ctx.log.info('folder source healthy again');
    }
  }

  /** A root that was deleted and came back: its old watch died with it. */
  private rewatch(root: string): void {
    this.ctx.log.info({ root }, 'watched folder is back');
    if (!this.watcher) return;
    this.watcher.unwatch(root);
    this.watcher.add(root);
  }

  private async submit(file: string, v: FileVersion, dedupeKey: string): Promise<Verdict> {
    if (this.abort.signal.aborted || this.ctx.signal.aborted) return 'halt';
    const root = this.rootOf(file)!;
    let item: Resolved = { companions: [] };
    if (this.companions) {
      const r = await this.companions.resolve(file);
      if ('waitUntil' in r) return r;
      item = r.ready;
      if (this.abort.signal.aborted || this.ctx.signal.aborted) return 'halt';
    }
    let r;
    try {
      r = this.ctx.submit({
        dedupeKey,
        image: { path: file },
        ...(this.config.rule ? { rule: this.config.rule } : {}),
        origin: { root, relativePath: path.relative(root, file), size: v.size, mtimeMs: v.mtimeMs },
        ...(item.texts ? { texts: item.texts } : {}),
        ...(item.meta ? { meta: item.meta } : {}),
        ...(item.companions.length ? { companions: item.companions } : {}),
        ...(item.failed ? { failed: item.failed } : {}),
      });
    } catch (err) {
      this.problem(`submit failed for ${file}: ${(err as Error).message}`, err, 'error');
      return { retryAt: Date.now() + SUBMIT_ERROR_RETRY_MS };
    }
    if (r.accepted) {
      this.companions?.forget(file);
      this.ctx.log.debug({ file, jobId: r.jobId, duplicate: r.duplicate, texts: item.texts?.length ?? 0 }, 'submitted');
      return 'accepted';
    }
    if (r.reason === 'invalid') {
      // Not for submits like these (the core fails bad items instead of refusing them); never drop the file silently.
      this.problem(`the core refused ${file}: ${r.message}`, new Error(r.message), 'error');
      return { waitUntil: Date.now() + UNKNOWN_RULE_RETRY_MS };
    }
    if (r.reason === 'stopping') return 'halt';
    if (r.reason === 'unknown_rule') {
      if (!this.unknownRule) this.ctx.log.error({ rule: this.config.rule, message: r.message }, 'the core does not know this source\'s rule; nothing is submitted');
      this.unknownRule = true;
      this.degrade(r.message);
      return { retryAt: Date.now() + UNKNOWN_RULE_RETRY_MS };
    }
    this.ctx.log.debug({ retryAfterMs: r.retryAfterMs, pending: this.tracker.pending }, 'backpressure: waiting');
    return { retryAt: Date.now() + (r.retryAfterMs ?? this.tickMs) };
  }

  private scheduleTick(): void {
    if (this.abort.signal.aborted) return;
    this.tickTimer = setTimeout(() => {
      this.track(this.tracker.check()).finally(() => this.scheduleTick());
    }, this.tickMs);
    this.tickTimer.unref();
  }

  private scheduleRescan(): void {
    if (this.abort.signal.aborted || this.config.rescanMs <= 0) return;
    this.rescanTimer = setTimeout(() => {
      this.track(this.rescan()).finally(() => this.scheduleRescan());
    }, this.config.rescanMs);
    this.rescanTimer.unref();
  }

  /** Keep a promise for stop() to await; failures are logged, never thrown out of a timer. */
  private track(p: Promise<unknown>): Promise<unknown> {
    const guarded = p.catch((err) => this.problem(`internal error: ${(err as Error).message}`, err, 'error'));
    this.inFlight.add(guarded);
    void guarded.finally(() => this.inFlight.delete(guarded));
    return guarded;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.problem(`internal error: ${(err as Error).message}`, err, 'error');
    }
  }

  private problem(detail: string, err: unknown, level: 'warn' | 'error' = 'error'): void {
    if (this.abort.signal.aborted) return;
    this.ctx.log[level]({ err }, detail);
    this.degrade(detail);
  }

  /** A manifest that is unreadable, has bad rows, or names files that are not there: logged and kept in state, not fatal. */
  private manifestProblem(manifest: string, problems: string[]): void {
    this.ctx.log.warn({ code: 'MATCHD_COMPANION_INVALID', manifest, problems }, `manifest ${manifest}: ${problems.join('; ')}`);
    const list = this.ctx.state.get<{ manifest: string; problems: string[]; at: number }[]>('manifestProblems') ?? [];
    list.push({ manifest, problems, at: Date.now() });
    this.ctx.state.set('manifestProblems', list.slice(-KEEP_PROBLEMS));
  }

  private degrade(detail: string): void {
    if (this.health.state === 'degraded' && this.health.detail === detail) return;
    this.health = { state: 'degraded', detail };
    this.ctx.setHealth('degraded', detail);
  }

  /** The watched root holding `p`. */
  private rootOf(p: string): string | undefined {
    let best: string | undefined;
    for (const r of this.roots) {
      if ((p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`)) && (!best || r.length > best.length)) best = r;
    }
    return best;
  }

  /** `p` relative to its root, '/'-separated ('' for a root); undefined outside every root. */
  private relative(p: string): string | undefined {
    const root = this.rootOf(p);
    return root === undefined ? undefined : path.relative(root, p).split(path.sep).join('/');
  }

  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.abort.abort();
    clearTimeout(this.tickTimer);
    clearTimeout(this.rescanTimer);
    const w = this.watcher;
    this.watcher = undefined;
    await Promise.allSettled([w?.close(), this.started]);
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
    clearTimeout(this.tickTimer);
    clearTimeout(this.rescanTimer);
  }
}

/** Why a root cannot be watched, or undefined when it can. */
export async function checkRoot(root: string): Promise<string | undefined> {
  try {
    const st = await fs.stat(root);
    if (!st.isDirectory()) return `path '${root}' is not a directory`;
    await fs.access(root, fs.constants.R_OK | fs.constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `path '${root}' does not exist`;
    return `path '${root}' cannot be read (${code ?? (err as Error).message})`;
  }
}
