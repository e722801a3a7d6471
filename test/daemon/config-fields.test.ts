// The shared config fields say the same thing in every config that uses them, naming the field (issue 20 item 4:
// the folder and webhook sources each had their own `ms()`, and the webhook's gave zod's generic messages).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bytes, globs, ms } from '../../src/core/config-fields.ts';
import { zodProblems } from '../../src/core/problems.ts';
import { FolderConfigSchema } from '../../src/plugins/folder/config.ts';
import { WebhookConfigSchema } from '../../src/plugins/webhook/config.ts';

const refused = (r: { success: boolean; error?: unknown }, prefix = ''): string[] => {
  assert.ok(!r.success, 'expected the value to be refused');
  return zodProblems(r.error as never, prefix);
};

describe('config fields: bad values, messages that name the field', () => {
  test('ms: not a number, a fraction, negative', () => {
    const f = ms('limits.maxWaitMs');
    assert.deepEqual(refused(f.safeParse('5s')), ['(root): limits.maxWaitMs must be a number of milliseconds']);
    assert.deepEqual(refused(f.safeParse(1.5)), ['(root): limits.maxWaitMs must be a whole number of milliseconds']);
    assert.deepEqual(refused(f.safeParse(-1)), ['(root): limits.maxWaitMs must be >= 0']);
    assert.equal(f.parse(0), 0);
  });

  test('bytes and globs', () => {
    assert.deepEqual(refused(bytes('limits.maxBodyBytes').safeParse(0)), ['(root): limits.maxBodyBytes must be > 0']);
    assert.deepEqual(refused(globs('ignore').safeParse(['*.tmp', ''])), ['1: ignore must not hold an empty glob']);
  });

  test('the folder and webhook sources give the same message for the same mistake', () => {
    assert.deepEqual(refused(FolderConfigSchema.safeParse({ paths: ['in'], stabilityMs: -5 }), 'options'), ['options.stabilityMs: stabilityMs must be >= 0']);
    const webhook = refused(WebhookConfigSchema.safeParse({ limits: { maxWaitMs: -5 } }), 'options');
    assert.ok(webhook.includes('options.limits.maxWaitMs: limits.maxWaitMs must be >= 0'), webhook.join('\n'));
  });
});
