/**
 * A cache of ONNX Runtime's optimised graphs, so that a model is optimised and its weights pre-packed once per
 * machine, not at every start.
 *
 * At the first load of a model (CPU provider, between `minModelBytes` and `maxModelBytes` of graph + external data) ORT writes the graph
 * it optimised, with every initializer and the pre-packed (MLAS-layout) weights in one external data file, into a
 * temporary folder of the cache; once the load succeeded the folder is renamed to its key. Later loads open that
 * graph with optimisation disabled (it is already optimised) and memory-map the pre-packed weights instead of
 * re-packing them: less time, and far less private memory (the weights are shared page cache).
 *
 * The key is a SHA-256 over: this cache's format, the ONNX Runtime version, the CPU (model name and ISA flags: the
 * optimised graph and the packed layout are specific to them), the graph optimisation level, and the model's content
 * (every byte of the .onnx and of each external data file it names). Content hashes are remembered per file by
 * (device, inode, size, mtime, ctime), so a multi-gigabyte model is hashed once, not at every start; any change to a
 * file re-hashes it, and a new key leaves the old entry to be pruned. Concurrent processes are safe: each writes its
 * own temporary folder and the rename is atomic (a loser removes its copy); an entry is checked against the sizes in
 * its meta.json before use and removed when ORT cannot load it. Any failure of the cache itself (read-only folder,
 * full disk) is a warning and the model loads the ordinary way.
 *
 * Where: `engine.graphCache` (a folder, or false), else $MATCHD_GRAPH_CACHE (a folder, or "off"), else
 * $XDG_CACHE_HOME/matchd/graphs (~/.cache/matchd/graphs). Never inside a model package, which may be read-only.
 * Size: about twice the model (its weights plus their packed copy); delete the folder at any time.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { externalFiles, readOnnx } from './model/import/onnx-file.ts';

/** Bump when the entry layout or what goes into the key changes. */
const FORMAT = 1;
const GRAPH = 'model.onnx';
const DATA = 'model.onnx.data';
/** Entries need this much more free space than twice the model (a write that fills the disk helps nobody). */
const HEADROOM = 256 * 2 ** 20;
/** Temporary folders of writers that died are removed after this long. */
const STALE_MS = 24 * 3600 * 1000;

export type GraphCacheStatus =
  | 'off' // no cache folder, or not the CPU provider
  | 'small' // below minModelBytes: optimising it costs less than reading a second copy
  | 'large' // over maxModelBytes: its entry (about twice the model) would not stay in the page cache
  | 'hit' // loaded from the cache
  | 'stored' // loaded from the model and written to the cache
  | 'failed'; // the cache could not be used (warned); loaded from the model

export interface GraphCacheSettings {
  dir: string;
  minModelBytes: number;
  /**
   * Larger models are not cached. The cache pays off when the packed weights are served from memory; an entry of
   * about twice the model that does not fit beside everything else in RAM is read from disk at every start, slower
   * than loading the model itself (measured: GME-2B float32, a 16 GB entry on a 23.5 GiB machine, 46 s vs 23 s,
   * and 62.5 s vs 36.5 s on a busier day, with its 6.2 GB decoder just under the former limit of a quarter of RAM).
   */
  maxModelBytes: number;
}

/** The default maxModelBytes: an eighth of RAM, so that an entry (about twice the model) takes at most a quarter. */
export function defaultMaxModelBytes(): number {
  return Math.floor(os.totalmem() / 8);
}

/** The cache folder from the engine option, then the environment; null when caching is off. */
export function graphCacheDir(option: string | false | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (option === false) return null;
  if (typeof option === 'string') return path.resolve(option);
  const fromEnv = env.MATCHD_GRAPH_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv === 'off' ? null : path.resolve(fromEnv);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'matchd', 'graphs');
}

let cpuSignature: string | undefined;
/** CPU model and ISA flags (Linux /proc/cpuinfo; elsewhere os.cpus()). */
function cpu(): string {
  if (cpuSignature !== undefined) return cpuSignature;
  let text = `${os.arch()} ${os.cpus()[0]?.model ?? ''}`;
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
    const flags = /^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
    text = `${os.arch()} ${model} ${flags.split(/\s+/).sort().join(' ')}`;
  } catch {
    // not Linux: the model name stands in for the flags
  }
  return (cpuSignature = text);
}

interface FileStamp {
  file: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function stamp(file: string): FileStamp {
  const s = fs.statSync(file);
  return { file, dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
}

const sameStamp = (a: FileStamp, b: FileStamp) =>
  a.file === b.file && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

async function sha256(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 * 2 ** 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A file's content hash, remembered by its stamp under `<dir>/hashes/`. */
async function contentHash(dir: string, file: string): Promise<string> {
  const memo = path.join(dir, 'hashes', `${crypto.createHash('sha256').update(file).digest('hex').slice(0, 32)}.json`);
  const now = stamp(file);
  try {
    const saved = JSON.parse(fs.readFileSync(memo, 'utf8')) as { stamp: FileStamp; sha256: string };
    if (sameStamp(saved.stamp, now)) return saved.sha256;
  } catch {
    // no memo yet, or unreadable: hash
  }
  const digest = await sha256(file);
  if (!sameStamp(now, stamp(file))) throw new Error(`${file} changed while it was being hashed`);
  writeAtomic(memo, JSON.stringify({ stamp: now, sha256: digest }));
  return digest;
}

function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** The model's files (graph first, then its external data) and their total size. */
export function modelFiles(modelPath: string): { files: string[]; bytes: number } {
  const graph = path.resolve(modelPath);
  const files = [graph, ...externalFiles(readOnnx(graph)).map((f) => path.resolve(path.dirname(graph), f))];
  return { files, bytes: files.reduce((sum, f) => sum + fs.statSync(f).size, 0) };
}

/** The cache key of a model under the given ORT version and optimisation level. */
export async function graphCacheKey(dir: string, files: string[], ortVersion: string, optLevel: string): Promise<string> {
  const hashes = [];
  for (const f of files) hashes.push(await contentHash(dir, f));
  const what = JSON.stringify({ format: FORMAT, ort: ortVersion, cpu: cpu(), optLevel, files: hashes });
  return crypto.createHash('sha256').update(what).digest('hex');
}

interface Meta {
  format: number;
  key: string;
  source: string;
  ort: string;
  sizes: Record<string, number>;
  createdAt: string;
}

/** A complete entry: its meta.json and files of the sizes it records. */
export function readEntry(entry: string): Meta | null {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(entry, 'meta.json'), 'utf8')) as Meta;
    if (meta.format !== FORMAT) return null;
    for (const [name, size] of Object.entries(meta.sizes)) if (fs.statSync(path.join(entry, name)).size !== size) return null;
    return meta.sizes[GRAPH] !== undefined ? meta : null;
  } catch {
    return null;
  }
}

/** Remove a folder by renaming it away first, so that no reader ever sees half of it. */
export function removeEntry(entry: string): void {
  const doomed = `${path.dirname(entry)}/.remove-${path.basename(entry)}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(entry, doomed);
  } catch {
    return; // gone already (another process removed it)
  }
  fs.rmSync(doomed, { recursive: true, force: true });
}

/** Older entries of the same model file, entries whose model file is gone, and temporary folders of writers that died. */
function prune(dir: string, source: string, keep: string): void {
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name);
    if (name.startsWith('.tmp-') || name.startsWith('.remove-')) {
      try {
        if (Date.now() - fs.statSync(full).mtimeMs > STALE_MS) fs.rmSync(full, { recursive: true, force: true });
      } catch {
        // removed meanwhile
      }
    } else if (/^[0-9a-f]{64}$/.test(name) && name !== keep) {
      const meta = readEntry(full);
      if (!meta || meta.source === source || !fs.existsSync(meta.source)) removeEntry(full);
    }
  }
}

export interface CachePlan {
  /** Load this graph with optimisation disabled (a hit), or the model with these save settings (a store). */
  hit?: { graph: string; entry: string };
  store?: { tmp: string; graph: string; data: string; publish(): void; abandon(): void };
}

/** Decide how to load `modelPath` through the cache: throws only for failures of the cache itself. */
export async function planCachedLoad(settings: GraphCacheSettings, modelPath: string, ortVersion: string, optLevel: string): Promise<CachePlan | 'small' | 'large' | 'unreadable'> {
  let found;
  try {
    found = modelFiles(modelPath);
  } catch {
    return 'unreadable'; // not ONNX, or external data missing: ONNX Runtime's own load says what is wrong
  }
  const { files, bytes } = found;
  if (bytes < settings.minModelBytes) return 'small';
  if (bytes > settings.maxModelBytes) return 'large';
  fs.mkdirSync(settings.dir, { recursive: true });
  const key = await graphCacheKey(settings.dir, files, ortVersion, optLevel);
  const entry = path.join(settings.dir, key);
  if (readEntry(entry)) return { hit: { graph: path.join(entry, GRAPH), entry } };
  if (fs.existsSync(entry)) removeEntry(entry); // incomplete or from another format: replace it
  const free = fs.statfsSync(settings.dir);
  const need = 2 * bytes + HEADROOM;
  if (free.bavail * free.bsize < need) {
    throw new Error(`${settings.dir} has ${Math.round((free.bavail * free.bsize) / 2 ** 20)} MiB free; caching this model needs about ${Math.round(need / 2 ** 20)} MiB`);
  }
  const tmp = path.join(settings.dir, `.tmp-${key.slice(0, 16)}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(tmp);
  const source = path.resolve(modelPath);
  return {
    store: {
      tmp,
      graph: path.join(tmp, GRAPH),
      data: DATA,
      publish() {
        const sizes: Record<string, number> = {};
        for (const name of fs.readdirSync(tmp)) sizes[name] = fs.statSync(path.join(tmp, name)).size;
        if (sizes[GRAPH] === undefined) throw new Error(`ONNX Runtime wrote no optimised graph into ${tmp}`);
        const meta: Meta = { format: FORMAT, key, source, ort: ortVersion, sizes, createdAt: new Date().toISOString() };
        fs.writeFileSync(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
        try {
          fs.renameSync(tmp, entry);
        } catch (err) {
          // Another process published the same key first: theirs is as good as ours.
          fs.rmSync(tmp, { recursive: true, force: true });
          if (!readEntry(entry)) throw err;
        }
        prune(settings.dir, source, key);
      },
      abandon() {
        fs.rmSync(tmp, { recursive: true, force: true });
      },
    },
  };
}
