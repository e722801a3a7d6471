// libuv's pool against the decode settings: the size libuv will use, and the start-up warning when it is too small.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { threadPoolAdvice, threadPoolSize } from '../../src/core/thread-pool.ts';

describe('thread pool sizing', () => {
  test('the size libuv uses: unset, empty, zero or garbage → 4; capped at 1024', () => {
    assert.equal(threadPoolSize({}), 4);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '' }), 4);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '0' }), 4);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: 'many' }), 4);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '12' }), 12);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' }), 1024);
  });

  test('no warning while decodeConcurrency + batchesInFlight fits (the defaults: 2 + 1 ≤ 4)', () => {
    assert.equal(threadPoolAdvice(2, 1, {}), null);
    assert.equal(threadPoolAdvice(3, 1, {}), null);
    assert.equal(threadPoolAdvice(14, 2, { UV_THREADPOOL_SIZE: '16' }), null);
  });

  test('a pool smaller than the sum: the warning names both settings, the sum and the variable to set', () => {
    const def = threadPoolAdvice(8, 1, {});
    assert.ok(def);
    assert.match(def, /libuv's default of 4/);
    assert.match(def, /decodeConcurrency \(8\) \+ model\.batchesInFlight \(1\) = 9/);
    assert.match(def, /UV_THREADPOOL_SIZE=9/);
    const set = threadPoolAdvice(6, 2, { UV_THREADPOOL_SIZE: '6' });
    assert.match(set ?? '', /^UV_THREADPOOL_SIZE=6 threads/);
    assert.match(set ?? '', /UV_THREADPOOL_SIZE=8 in its environment/);
  });
});
