// The dynamic batcher: max batch, max delay, bounded queue (backpressure), in-flight limit, errors per batch.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Batcher } from '../../src/core/batcher.ts';
import { isMatchdError } from '../../src/core/errors.ts';

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('daemon: batcher', () => {
  test('a full batch goes out at once, never more than maxBatch items', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>({ maxBatch: 4, maxDelayMs: 10_000, maxQueue: 100, maxInFlight: 4, run: async (xs) => (batches.push(xs), xs.map((x) => x * 2)) });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => b.push(i)));
    assert.deepEqual(results, [0, 2, 4, 6, 8, 10, 12, 14]);
    assert.deepEqual(batches, [[0, 1, 2, 3], [4, 5, 6, 7]]);
  });

  test('a partial batch waits for maxDelayMs, then goes', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>({ maxBatch: 16, maxDelayMs: 30, maxQueue: 100, maxInFlight: 1, run: async (xs) => (batches.push(xs), xs) });
    const p = [b.push(1), b.push(2), b.push(3)];
    await new Promise((r) => setImmediate(r));
    assert.equal(batches.length, 0, 'not sent before the delay');
    await Promise.all(p);
    assert.deepEqual(batches, [[1, 2, 3]]);
  });

  test('the queue is bounded: push past maxQueue throws MATCHD_QUEUE_FULL, room comes back after a batch', async () => {
    const gate = deferred();
    const b = new Batcher<number, number>({ maxBatch: 2, maxDelayMs: 20, maxQueue: 3, maxInFlight: 1, run: async (xs) => (await gate.promise, xs) });
    const running = [b.push(1), b.push(2)]; // a full batch: leaves at once (in flight)
    const queued = [b.push(3), b.push(4), b.push(5)];
    assert.equal(b.room, 0);
    assert.throws(() => b.push(6), (e) => isMatchdError(e, 'MATCHD_QUEUE_FULL'));
    gate.resolve();
    assert.deepEqual(await Promise.all([...running, ...queued]), [1, 2, 3, 4, 5]);
    assert.equal(b.room, 3);
    await b.idle();
  });

  test('at most maxInFlight batches run at once', async () => {
    let active = 0;
    let peak = 0;
    const b = new Batcher<number, number>({
      maxBatch: 2, maxDelayMs: 0, maxQueue: 100, maxInFlight: 2,
      run: async (xs) => {
        peak = Math.max(peak, ++active);
        await new Promise((r) => setTimeout(r, 10));
        active--;
        return xs;
      },
    });
    await Promise.all(Array.from({ length: 12 }, (_, i) => b.push(i)));
    assert.equal(peak, 2);
  });

  test('a failed batch rejects only its own items; later batches still run', async () => {
    let n = 0;
    const b = new Batcher<number, number>({ maxBatch: 2, maxDelayMs: 50, maxQueue: 100, maxInFlight: 1, run: async (xs) => { if (n++ === 0) throw new Error('boom'); return xs; } });
    const r = await Promise.allSettled([b.push(1), b.push(2), b.push(3), b.push(4)]);
    assert.deepEqual(r.map((x) => x.status), ['rejected', 'rejected', 'fulfilled', 'fulfilled']);
  });

  test('onBatch reports sizes; idle() resolves when everything is done', async () => {
    const sizes: number[] = [];
    const b = new Batcher<number, number>({ maxBatch: 3, maxDelayMs: 5, maxQueue: 100, maxInFlight: 1, run: async (xs) => xs, onBatch: (s) => sizes.push(s) });
    for (let i = 0; i < 7; i++) void b.push(i);
    await b.idle();
    assert.deepEqual(sizes, [3, 3, 1]);
  });

  test('maxCost closes a batch by budget; an item over the budget alone still runs, alone', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>({
      maxBatch: 10, maxCost: 10, cost: (x) => x, maxDelayMs: 10_000, maxQueue: 100, maxInFlight: 1,
      run: async (xs) => (batches.push(xs), xs),
    });
    await Promise.all([4, 4, 4, 12, 3, 7].map((x) => b.push(x)));
    assert.deepEqual(batches, [[4, 4], [4], [12], [3, 7]]);
  });

  test('expectingMore: a partial batch waits while more are on their way, and goes at once when none are', async () => {
    const batches: number[][] = [];
    let coming = 2;
    const b = new Batcher<number, number>({
      maxBatch: 16, maxDelayMs: 10_000, maxQueue: 100, maxInFlight: 1, expectingMore: () => coming > 0,
      run: async (xs) => (batches.push(xs), xs),
    });
    const first = b.push(1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(batches.length, 0, 'held: two more are coming');
    coming = 1;
    const second = b.push(2);
    coming = 0;
    b.poke(); // the third failed to arrive
    await Promise.all([first, second]);
    assert.deepEqual(batches, [[1, 2]]);
  });

  test('items pushed in one synchronous loop join one batch even when nothing more is expected', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>({ maxBatch: 16, maxDelayMs: 0, maxQueue: 100, maxInFlight: 1, run: async (xs) => (batches.push(xs), xs) });
    await Promise.all([1, 2, 3].map((x) => b.push(x)));
    assert.deepEqual(batches, [[1, 2, 3]]);
  });

  test('a full queue says its capacity with the catalogue code', () => {
    const b = new Batcher<number, number>({ maxBatch: 2, maxDelayMs: 1, maxQueue: 1, maxInFlight: 1, run: async (xs) => xs });
    void b.push(1);
    assert.throws(() => b.push(2), (e) => isMatchdError(e, 'MATCHD_QUEUE_FULL') && e.details?.capacity === 1);
  });
});
