/** Opening a family's ONNX graphs together: all or nothing, never a session left loaded behind an error. */
import { InferenceSession, type EngineOptions } from '../../engine.ts';

/**
 * Open every file (in parallel) and hand the sessions to `build`; if any open fails, or `build` throws (a graph that
 * does not match its manifest), every session opened is disposed before the error goes on.
 */
export async function openSessions<K extends string, T>(
  files: Record<K, string>,
  engine: EngineOptions | undefined,
  build: (sessions: Record<K, InferenceSession>) => T | Promise<T>,
): Promise<T> {
  const keys = Object.keys(files) as K[];
  const settled = await Promise.allSettled(keys.map((k) => InferenceSession.open(files[k], engine)));
  const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    opened.forEach((s) => s.dispose());
    throw failed.reason;
  }
  try {
    return await build(Object.fromEntries(keys.map((k, i) => [k, opened[i]!])) as Record<K, InferenceSession>);
  } catch (err) {
    opened.forEach((s) => s.dispose());
    throw err;
  }
}
