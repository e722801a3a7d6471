// Config: YAML + ${ENV}, one schema, every problem listed with its path, frozen; the example config is valid.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, parseConfig, parseSourceOptions } from '../../src/core/config.ts';
import { MatchdError } from '../../src/core/errors.ts';
import { repoRoot } from '../fixtures/packages.ts';

const invalid = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(yaml, 'test.yaml', env);
  } catch (e) {
    assert.ok(e instanceof MatchdError);
    assert.equal(e.code, 'MATCHD_CONFIG_INVALID');
    return e.details!.problems as string[];
  }
  assert.fail('expected MATCHD_CONFIG_INVALID');
};

describe('daemon: config', () => {
  test('minimal config gets every default', () => {
    const c = parseConfig('rules:\n  r:\n    texts: [a red car]\n');
    assert.equal(c.model.maxBatch, 16);
    assert.equal(c.model.provider, 'cpu');
    assert.equal(c.journal.path, 'var/matchd.db');
    assert.equal(c.admin.host, '127.0.0.1');
    assert.equal(c.rules.r!.match, 'best');
    assert.deepEqual(c.sources, []);
  });

  test('the config is frozen', () => {
    const c = parseConfig('rules:\n  r:\n    texts: [a]\n');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.model) && Object.isFrozen(c.rules.r!.texts));
  });

  test('${VAR} and ${VAR:-default} are interpolated from the environment', () => {
    const c = parseConfig('journal:\n  path: ${DB}\nadmin:\n  host: ${HOST:-127.0.0.2}\nrules:\n  r:\n    texts: ["${T}"]\n', 'x', { DB: '/tmp/x.db', T: 'a blue bag' });
    assert.equal(c.journal.path, '/tmp/x.db');
    assert.equal(c.admin.host, '127.0.0.2');
    assert.deepEqual(c.rules.r!.texts, ['a blue bag']);
  });

  test('${VAR} fills numbers and booleans where the schema expects them — only there, and only from the environment', async () => {
    const env = { QSIZE: '750', ADMIN: 'false', PORT: '9999', TOKEN: '12345678901234567890', WH_PORT: '8123', HTTP: 'true', BAD: 'lots' };
    const c = parseConfig(`
model:
  queueSize: \${QSIZE}
  maxDelayMs: \${DELAY:-15}
admin:
  enabled: \${ADMIN}
  port: \${PORT}
journal:
  path: \${PORT}.db
rules:
  r:
    texts: [\"\${PORT}\"]
sources:
  - type: webhook
    rule: r
    options:
      port: \${WH_PORT}
      auth:
        tokens: [{ name: ci, token: \"\${TOKEN}\" }]
      outbound:
        allowHttp: \${HTTP}
`, 'x', env);
    assert.equal(c.model.queueSize, 750);
    assert.equal(c.model.maxDelayMs, 15, 'a default is coerced too');
    assert.equal(c.admin.enabled, false);
    assert.equal(c.admin.port, 9999);
    assert.equal(c.journal.path, '9999.db', 'a string field keeps the string');
    assert.deepEqual(c.rules.r!.texts, ['9999']);
    const { builtinRegistry } = await import('../../src/plugins/index.ts');
    const plugin = await builtinRegistry().resolve('webhook', '.');
    const opts = parseSourceOptions(plugin.configSchema, c, 0);
    assert.ok(opts.success, JSON.stringify(!opts.success && opts.error.issues));
    const o = opts.data as any;
    assert.equal(o.port, 8123);
    assert.equal(o.outbound.allowHttp, true);
    assert.equal(o.auth.tokens[0].token, '12345678901234567890', 'a numeric-looking secret stays a string');

    const problems = invalid('model:\n  queueSize: ${BAD}\n  maxBatch: "16"\nrules: { r: { texts: [a] } }\n', env);
    assert.ok(problems.some((p) => /^model\.queueSize: .*number/.test(p)), `not a number → still a problem:\n${problems.join('\n')}`);
    assert.ok(problems.some((p) => /^model\.maxBatch: .*number/.test(p)), 'a quoted literal is not coerced (only ${VAR} values are)');
  });

  test('every problem is listed together, each with its path', () => {
    const problems = invalid(`
model:
  maxBatch: -3
  provider: tpu
  bogus: 1
journal:
  path: \${MISSING_SECRET}
rules:
  r:
    texts: []
    actions:
      adopt:
        - move: {}
        - teleport: { to: x }
          copy: { to: y }
sources:
  - type: folder
    rule: nope
  - type: folder
    name: folder-0
    rule: r
`);
    const want = [
      /^model\.maxBatch: .*>0/,
      /^model\.provider: /,
      /^model: Unrecognized key.*bogus/,
      /^journal\.path: environment variable MISSING_SECRET is not set/,
      /^rules\.r\.texts: a rule needs at least one text/,
      /^rules\.r\.actions\.adopt\.0\.move\.to/,
      /^rules\.r\.actions\.adopt\.1: an action is one kind/,
      /^sources\.0\.rule: unknown rule 'nope' \(rules: r\)/,
      /^sources\.1\.name: duplicate source name 'folder-0'/,
    ];
    for (const w of want) assert.ok(problems.some((p) => w.test(p)), `missing ${w} in:\n${problems.join('\n')}`);
  });

  test('no rules, broken YAML, missing file → MATCHD_CONFIG_INVALID', () => {
    assert.ok(invalid('model: {}\n').some((p) => /rules/.test(p)));
    assert.ok(invalid('rules: [unclosed\n').some((p) => /^YAML/.test(p)));
    assert.throws(() => loadConfig('/nonexistent/matchd.yaml'), (e: any) => e.code === 'MATCHD_CONFIG_INVALID' && /cannot read: ENOENT/.test(e.message));
  });

  test('rule bands are checked like the manifest\'s', () => {
    const problems = invalid('rules:\n  r:\n    texts: [a]\n    bands: { list: [{ name: a, min: 0.2 }, { name: b, min: 0.3 }] }\n');
    assert.ok(problems.some((p) => /thresholds must decrease/.test(p)));
  });

  test('the shipped default config is valid and its published schema is current', () => {
    const c = loadConfig(path.join(repoRoot, 'config', 'default.yaml'));
    assert.equal(c.sources[0]!.type, 'folder');
    const schema = JSON.parse(fs.readFileSync(path.join(repoRoot, 'config', 'config.schema.json'), 'utf8'));
    assert.equal(schema.title, 'matchd daemon configuration');
    const callbacks = loadConfig(path.join(repoRoot, 'config', 'callbacks.yaml'), {});
    assert.ok(callbacks.callbacks.endpoints.local!.secret.startsWith('whsec_'), 'the demo secret applies without MATCHD_CALLBACK_SECRET');
  });
});
