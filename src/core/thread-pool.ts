/**
 * libuv's thread pool, as the daemon sizes against it. Its threads (`UV_THREADPOOL_SIZE`, default 4, read once when
 * the pool first starts, which happens while Node loads the program: setting it from inside the process is too late)
 * run every image decode (one sharp pipeline per image: `sharp.concurrency(1)`, see image.ts), every batch pack
 * (`packImages`) and async file I/O. Engine loads and runs do not use it: they have the addon's own engine threads.
 * With fewer pool threads than the decodes wanted at once plus one pack per batch in flight, decodes queue behind each
 * other and `decodeConcurrency` is never reached.
 */

const LIBUV_DEFAULT = 4;
const LIBUV_MAX = 1024;

/** The pool size libuv uses for this environment (its own parsing: an unset, zero or unreadable value means 4). */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10);
  if (!Number.isFinite(n) || n <= 0) return LIBUV_DEFAULT;
  return Math.min(n, LIBUV_MAX);
}

/** A warning when the pool is smaller than `decodeConcurrency` + `batchesInFlight`; null when it is large enough. */
export function threadPoolAdvice(decodeConcurrency: number, batchesInFlight: number, env: NodeJS.ProcessEnv = process.env): string | null {
  const need = decodeConcurrency + batchesInFlight;
  const have = threadPoolSize(env);
  if (have >= need) return null;
  const set = env.UV_THREADPOOL_SIZE === undefined ? `libuv's default of ${have}` : `UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE}`;
  return (
    `${set} threads decode images and pack batches, fewer than model.decodeConcurrency (${decodeConcurrency}) + ` +
    `model.batchesInFlight (${batchesInFlight}) = ${need}: decodes will wait for each other. Start matchd with ` +
    `UV_THREADPOOL_SIZE=${need} in its environment (it cannot be changed once the process runs)`
  );
}
