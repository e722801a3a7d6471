/**
 * The machine's cores as the engine and the image decoder share them: how many ONNX Runtime takes for a run, and how
 * many that leaves for decoding beside it.
 */
import fs from 'node:fs';
import os from 'node:os';

let physical: number | undefined;

/** Physical cores (ONNX Runtime's default intra-op thread count), from /proc/cpuinfo; elsewhere the logical CPUs. */
export function physicalCores(): number {
  if (physical !== undefined) return physical;
  const logical = os.availableParallelism();
  try {
    const cores = new Set<string>();
    for (const block of fs.readFileSync('/proc/cpuinfo', 'utf8').split(/\n\s*\n/)) {
      const pkg = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
      if (pkg !== undefined && core !== undefined) cores.add(`${pkg}:${core}`);
    }
    // An affinity mask or a cgroup can leave this process fewer CPUs than the machine has.
    physical = cores.size > 0 ? Math.min(cores.size, logical) : logical;
  } catch {
    physical = logical;
  }
  return physical;
}

/**
 * Image decodes that can run beside an engine run without taking one of its cores: on CPU, the logical CPUs ORT's
 * intra-op threads (0 = its default, one per physical core) leave free; on a GPU, every CPU.
 */
export function decodesBesideEngine(provider: string, intraOpThreads: number): number {
  const logical = os.availableParallelism();
  if (provider !== 'cpu') return logical;
  return Math.max(0, logical - (intraOpThreads > 0 ? intraOpThreads : physicalCores()));
}
