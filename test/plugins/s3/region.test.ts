// Where the S3 source's region comes from when the config names none: the SDK's chain (AWS_REGION, the profile),
// then AWS_DEFAULT_REGION (the AWS CLI's), then us-east-1 for a self-hosted endpoint only; against AWS with none the
// source stops with MATCHD_CONFIG_INVALID. Checked on the requests themselves: a proxy in front of a real S3 server
// (Ceph RGW, started here) reads the region each request is signed for.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { loadConfig } from '../../../src/core/config.ts';
import { Daemon } from '../../../src/core/daemon.ts';
import { MatchdError } from '../../../src/core/errors.ts';
import { createLogger } from '../../../src/core/log.ts';
import { builtinRegistry } from '../../../src/plugins/index.ts';
import { makeClient, regionResolver } from '../../../src/plugins/s3/client.ts';
import { S3ConfigSchema, S3Source } from '../../../src/plugins/s3/index.ts';
import { waitFor, workspace } from '../../fixtures/daemon.ts';
import { cleanupTmpDirs, tmpDir } from '../../fixtures/models.ts';
import { fakeContext } from '../../fixtures/plugin-context.ts';
import { TestRgw } from '../../fixtures/rgw.ts';
import { RED, RULES } from '../../fixtures/s3-daemon.ts';
import { TestBucket, colourBytes, jobsOf, unfinishedActions } from '../../fixtures/s3.ts';

const AWS_VARS = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3'];
const saved = Object.fromEntries(AWS_VARS.map((k) => [k, process.env[k]]));

/** This process's AWS environment is exactly `vars` (no profile file unless given). */
function awsEnv(vars: Record<string, string>): void {
  for (const k of AWS_VARS) delete process.env[k];
  Object.assign(process.env, { AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' }, vars);
}

const config = (o: Record<string, unknown> = {}) => S3ConfigSchema.parse({ bucket: 'b', ...o });

describe('s3 source: the region', () => {
  let rgw: TestRgw;
  before(async () => {
    rgw = await TestRgw.start([]);
  });
  afterEach(() => {
    for (const k of AWS_VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  after(async () => {
    await rgw.stop();
    cleanupTmpDirs();
  });

  test('config, then AWS_REGION, then the profile, then AWS_DEFAULT_REGION, then us-east-1 only for an endpoint; none against AWS is MATCHD_CONFIG_INVALID', async () => {
    const profile = path.join(tmpDir('matchd-aws-'), 'config');
    fs.writeFileSync(profile, '[default]\nregion = ap-south-1\n[profile other]\nregion = sa-east-1\n');
    const cases: [Record<string, string>, Record<string, unknown>, string, string][] = [
      [{ AWS_REGION: 'eu-north-1', AWS_DEFAULT_REGION: 'eu-west-3' }, { region: 'ca-central-1' }, 'ca-central-1', 'config'],
      [{ AWS_REGION: 'eu-north-1', AWS_DEFAULT_REGION: 'eu-west-3', AWS_CONFIG_FILE: profile }, {}, 'eu-north-1', 'AWS_REGION'],
      [{ AWS_DEFAULT_REGION: 'eu-west-3', AWS_CONFIG_FILE: profile }, {}, 'ap-south-1', 'AWS profile'],
      [{ AWS_DEFAULT_REGION: 'eu-west-3', AWS_CONFIG_FILE: profile, AWS_PROFILE: 'other' }, {}, 'sa-east-1', 'AWS profile'],
      [{ AWS_DEFAULT_REGION: 'eu-west-3' }, { endpoint: 'http://127.0.0.1:9' }, 'eu-west-3', 'AWS_DEFAULT_REGION'],
      [{}, { endpoint: 'http://127.0.0.1:9' }, 'us-east-1', 'none set; us-east-1 for a custom endpoint'],
      [{ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }, {}, 'us-east-1', 'none set; us-east-1 for a custom endpoint'],
    ];
    for (const [env, opts, region, from] of cases) {
      awsEnv(env);
      const c = config(opts);
      assert.deepEqual(await regionResolver(c)(), { region, from }, JSON.stringify({ env, opts }));
      const client = makeClient(c);
      assert.equal(await client.config.region(), region, 'the client signs for it');
      client.destroy();
    }
    awsEnv({});
    await assert.rejects(regionResolver(config())(), (e) => e instanceof MatchdError && e.code === 'MATCHD_CONFIG_INVALID' && /no region for the S3 source: set options.region, AWS_REGION \/ AWS_DEFAULT_REGION/.test(e.message));
    // A source without any stops (down, with the code), instead of guessing us-east-1 against AWS.
    const ctx = fakeContext({ name: 's3t', baseDir: tmpDir('matchd-s3-') });
    const src = new S3Source(ctx, config());
    await src.start();
    await src.stop();
    assert.equal(ctx.healthLog.at(-1)?.state, 'down');
    assert.match(ctx.healthLog.at(-1)!.detail!, /^s3 source stopped: no region for the S3 source.*\(MATCHD_CONFIG_INVALID\)$/);
  });

  test('on a real server: AWS_DEFAULT_REGION and AWS_ENDPOINT_URL_S3 from the environment are what requests are signed for and sent to, and what the start-up line says', async () => {
    const b = await TestBucket.create(rgw);
    // A proxy in front of the gateway that notes the region in each request's SigV4 credential scope.
    const regions = new Set<string>();
    const proxy = http.createServer((req, res) => {
      const scope = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(String(req.headers.authorization ?? ''));
      if (scope) regions.add(scope[1]!);
      const up = http.request({ host: '127.0.0.1', port: rgw.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const viaProxy = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    awsEnv({ AWS_DEFAULT_REGION: 'eu-west-3', AWS_ENDPOINT_URL_S3: viaProxy });
    const ws = workspace({ rules: RULES, sources: [{ type: 's3', name: 's3in', rule: 'colours', options: b.options({ endpoint: undefined, region: undefined }) }] });
    assert.doesNotMatch(fs.readFileSync(ws.configFile, 'utf8'), /region|endpoint/, 'the config names neither');
    let logged = '';
    const logger = createLogger({ level: 'info', destination: { write: (s: string) => void (logged += s) } });
    const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger });
    try {
      await b.put('incoming/red.png', await colourBytes(RED));
      const journal = `${ws.root}/var/journal.db`;
      await waitFor(() => jobsOf(journal, 's3in')[0]?.state === 'done' && unfinishedActions(journal).length === 0, 'scored and its actions done through the proxy');
      assert.equal((await b.tags('incoming/red.png'))['matchd-band'], 'adopt');
    } finally {
      await d.stop();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
    assert.deepEqual([...regions], ['eu-west-3'], 'every request signed for the region from AWS_DEFAULT_REGION');
    const line = JSON.parse(logged.split('\n').find((l) => l.includes('"polling S3"'))!) as Record<string, unknown>;
    assert.equal(line.region, 'eu-west-3');
    assert.equal(line.regionFrom, 'AWS_DEFAULT_REGION');
    assert.equal(line.endpoint, viaProxy);
    assert.equal(line.endpointFrom, 'AWS_ENDPOINT_URL_S3');
  });
});
