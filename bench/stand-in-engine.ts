/**
 * An engine stand-in for the scale-out benchmarks (not a scenario): images are not decoded and each image batch
 * "runs" for a fixed time whatever its size, as a GPU does for batches it has room for, so that what is measured is
 * matchd's distribution of work (the journal, leases, the outbox), not this machine's two cores running a model.
 * It replaces the family model's image calls after the real package is opened: texts are still the demo model's.
 */
import { Matcher } from '../src/core/matcher.ts';

/** Make every Matcher opened from now on use the stand-in: `latencyMs` per image batch (0: free). */
export function useStandInEngine(latencyMs: number): void {
  const open = Matcher.open.bind(Matcher);
  Matcher.open = async (dir, options) => {
    const m = await open(dir, options);
    const model = m.pipeline.model as { prepareImage: unknown; encodeImages: unknown; manifest: { embeddingSize: number } };
    const size = model.manifest.embeddingSize;
    const unit = new Float32Array(size).fill(1 / Math.sqrt(size));
    model.prepareImage = async () => ({ source: { format: 'png', width: 1, height: 1 }, cost: 1 });
    model.encodeImages = async (images: unknown[]) => {
      if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
      return images.map(() => unit);
    };
    return m;
  };
}
