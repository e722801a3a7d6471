// The runner reads an action's failure by its catalogue code: MATCHD_ACTION_PERMANENT is dead at once,
// MATCHD_ACTION_RETRY_LATER comes back after the delay the action chose, anything else after the runner's backoff.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { PermanentActionError, RetryLaterError, type ActionHandler } from '../../src/core/actions/contract.ts';
import { ActionRunner } from '../../src/core/actions/runner.ts';
import { MatchdError } from '../../src/core/errors.ts';
import { Journal } from '../../src/core/journal.ts';
import { waitFor } from '../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

describe('action runner: what a failure code means', () => {
  after(cleanupTmpDirs);

  test('permanent is dead after one attempt; retry-later waits its own delay; others wait the backoff', async () => {
    const NOW = 1_000_000;
    const journal = new Journal(path.join(tmpDir(), 'journal.db'), () => NOW, { init: true });
    const handlers: Record<string, ActionHandler> = {
      permanent: async () => {
        throw new PermanentActionError('the file is gone');
      },
      later: async () => {
        throw new RetryLaterError('the server said Retry-After: 7', 7_000);
      },
      plain: async () => {
        throw new MatchdError('MATCHD_ACTION_FAILED', 'disk hiccup');
      },
    };
    for (const kind of Object.keys(handlers)) {
      const { jobId } = journal.enqueue({ dedupeKey: kind, source: 's', rule: 'r', imagePath: `/nowhere/${kind}.png` });
      journal.complete(jobId, 'adopt', {}, [{ kind, payload: {} }]);
    }
    const runner = new ActionRunner(journal, (a) => handlers[a.kind], pino({ level: 'silent' }), undefined, {
      now: () => NOW, backoffMs: [3_000], maxAttempts: 5,
    });
    runner.start();
    try {
      const outbox = () =>
        journal.sql.prepare('SELECT kind, state, attempts, next_at AS nextAt, last_error AS lastError FROM outbox ORDER BY kind').all() as
          { kind: string; state: string; attempts: number; nextAt: number; lastError: string }[];
      await waitFor(() => outbox().every((a) => a.attempts === 1), 'one attempt of each action');
      assert.deepEqual(
        outbox().map(({ kind, state, nextAt, lastError }) => ({ kind, state, wait: nextAt - NOW, lastError })),
        [
          { kind: 'later', state: 'pending', wait: 7_000, lastError: 'the server said Retry-After: 7' },
          { kind: 'permanent', state: 'dead', wait: 0, lastError: 'the file is gone' },
          { kind: 'plain', state: 'pending', wait: 3_000, lastError: 'disk hiccup' },
        ],
      );
    } finally {
      runner.stop();
      journal.close();
    }
  });

  test('the error types carry their catalogue codes', () => {
    assert.equal(new PermanentActionError('x').code, 'MATCHD_ACTION_PERMANENT');
    const later = new RetryLaterError('x', 250);
    assert.equal(later.code, 'MATCHD_ACTION_RETRY_LATER');
    assert.equal(later.details?.retryAfterMs, 250);
  });
});
