/**
 * What a daemon that scores (roles all and worker) opens before anything else is created: the model through the
 * pipeline settings of the config, the rules' texts embedded once, and the temp files a killed process left in the
 * rules' output folders.
 */
import path from 'node:path';
import { outputDirs, sweepStaleTemps } from './actions/temp-files.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { Matcher } from './matcher.ts';
import type { Metrics } from './metrics.ts';
import { JobTexts } from './texts.ts';

export async function openModel(c: Config, baseDir: string, log: Logger, metrics: Metrics): Promise<{ matcher: Matcher; texts: JobTexts }> {
  // The pipeline decodes jobs as they are leased (decodeConcurrency at once, decodeAhead at most), so the next
  // batch is ready while the current one infers.
  const matcher = await Matcher.open(path.resolve(baseDir, c.model.dir), {
    engine: { provider: c.model.provider, fallbackToCpu: c.model.fallbackToCpu, intraOpThreads: c.model.intraOpThreads, logger: log.child({ component: 'engine' }) },
    maxBatch: c.model.maxBatch,
    maxDelayMs: c.model.maxDelayMs,
    decodeConcurrency: c.model.decodeConcurrency,
    batchesInFlight: c.model.batchesInFlight,
    ...(c.model.decodeAhead ? { decodeAhead: c.model.decodeAhead } : {}),
    limits: { maxPixels: c.model.maxPixels, maxBytes: c.model.maxBytes },
    onBatch: (kind, size, ms) => {
      if (kind === 'text') metrics.textBatchSize.observe(size);
      if (kind !== 'image') return;
      metrics.batchSize.observe(size);
      metrics.computeSeconds.observe(ms / 1000);
    },
  });
  try {
    const texts = await JobTexts.embed(c, matcher);
    // Temp files a killed process left in the rules' output folders (other folders are swept on first write).
    for (const dir of outputDirs(c, baseDir, (r) => (c.rules[r]?.bands ?? matcher.bands).list.map((b) => b.name))) {
      const removed = await sweepStaleTemps(dir);
      if (removed.length) log.info({ dir, removed: removed.length }, 'removed stale temp files');
    }
    return { matcher, texts };
  } catch (err) {
    matcher.close();
    throw err;
  }
}
