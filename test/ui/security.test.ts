// The web page's defences over plain HTTP: a non-loopback bind without a login refuses to start (nothing created);
// with a login every page and every state change needs it; the Host check against DNS rebinding; images only by job
// id (no path in a URL); security headers on every answer; failed sign-ins throttled; the labels export.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/core/config.ts';
import { isMatchdError } from '../../src/core/errors.ts';
import { waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { repoRoot, samplesDir } from '../fixtures/packages.ts';
import { PageClient, REVIEW_SAMPLE, dropAndWait, jobsIn, startDaemon, stopDaemons } from '../fixtures/ui.ts';

const USERS = { users: [{ name: 'alice', password: 'alice-password-123' }] };

/** A raw GET with any Host header (fetch will not send a forged one). */
function rawGet(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    http.get({ hostname: u.hostname, port: u.port, path: u.pathname, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

describe('web page: security', () => {
  afterEach(stopDaemons);
  after(cleanupTmpDirs);

  test('a non-loopback bind without a login refuses to start, naming the fix; nothing is created', () => {
    const ws = workspace({ admin: { host: '0.0.0.0', port: 0 } });
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'run', '--config', ws.configFile], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^matchd: MATCHD_CONFIG_INVALID: .*\n {2}- ui\.auth: the web page would listen on 0\.0\.0\.0 \(admin\.host\), which is not a loopback address, without a login\. .*set ui\.auth\.users/m);
    assert.equal(fs.existsSync(path.join(ws.root, 'var')), false, 'no journal, no spool');
    const cfg = (extra: object) => stringify({ rules: { r: { texts: ['a red product'] } }, ...extra });
    const refused = (extra: object) => {
      try {
        parseConfig(cfg(extra));
        return '';
      } catch (err) {
        assert.ok(isMatchdError(err, 'MATCHD_CONFIG_INVALID'));
        return err.message;
      }
    };
    assert.match(refused({ ui: { host: '0.0.0.0', port: 9999 } }), /ui\.auth: the web page would listen on 0\.0\.0\.0 \(ui\.host\)/);
    assert.match(refused({ ui: { host: '192.168.1.5', port: 9999 } }), /ui\.auth/);
    assert.match(refused({ ui: { host: 'matchd.example.com', port: 9999 } }), /ui\.auth/, 'a name other than localhost is not known to be local');
    assert.match(refused({ ui: { host: '127.0.0.1' } }), /ui\.host: give ui\.port too/);
    assert.match(refused({ ui: { host: '0.0.0.0', port: 9999, auth: { users: [{ name: 'a', password: 'short' }] } } }), /at least 12 characters/);
    // Allowed: loopback in any spelling, a login, or the page switched off.
    for (const ok of [{ ui: { host: '::1', port: 9999 } }, { ui: { host: 'localhost', port: 9999 } }, { admin: { host: '127.0.0.2' } },
      { admin: { host: '0.0.0.0' }, ui: { auth: USERS } }, { admin: { host: '0.0.0.0' }, ui: { enabled: false } }, { admin: { host: '0.0.0.0' }, ui: { port: 9999 } }]) {
      assert.equal(refused(ok), '', JSON.stringify(ok));
    }
  });

  test('its own listener (ui.port): the page is there, /metrics stays on the admin port', async () => {
    const ws = workspace({ ui: { port: 0 } });
    const d = await startDaemon(ws);
    assert.notEqual(new URL(d.uiUrl!).port, String(d.adminAddress!.port));
    assert.equal((await fetch(d.uiUrl + 'jobs')).status, 200);
    assert.equal((await fetch(d.uiUrl + 'metrics')).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${d.adminAddress!.port}/jobs`)).status, 404, 'the admin listener does not serve it');
  });

  test('with a login: pages redirect to sign in, state changes are refused without a session, failed sign-ins are throttled', async () => {
    const ws = workspace({ ui: { auth: USERS } });
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'l1.png': REVIEW_SAMPLE });
    const [id] = jobsIn(d, 'review');
    const base = d.uiUrl!.replace(/\/$/, '');
    for (const p of ['/jobs', '/review', '/try', '/labels.csv', `/image/${id}`]) {
      const r = await fetch(base + p, { redirect: 'manual' });
      assert.equal(r.status, 303, p);
      assert.equal(r.headers.get('location'), `/login?next=${encodeURIComponent(p)}`);
    }
    const anon = new PageClient(base);
    await anon.get('/login');
    const post = await anon.post(`/review/${id}`, { _csrf: anon.csrf, choice: 'approve' });
    assert.equal(post.status, 401);
    assert.match(post.body, /MATCHD_UNAUTHORIZED: sign in first; nothing was changed/);
    assert.match((await anon.get('/login?next=//evil.example/')).body, /name="next" value="\/jobs"/, 'only a local path to return to');
    for (let i = 0; i < 10; i++) assert.equal((await anon.post('/login', { _csrf: anon.csrf, name: 'alice', password: `guess-${i}-xxxxxxx` })).status, 401);
    const throttled = await anon.post('/login', { _csrf: anon.csrf, name: 'alice', password: 'alice-password-123' });
    assert.equal(throttled.status, 429, 'even the right password waits after 10 failures');
    assert.match(throttled.body, /MATCHD_RATE_LIMITED: too many failed sign-ins/);
    assert.deepEqual(jobsIn(d, 'review'), [id], 'nothing decided');
    // The metrics stay open on the same listener (Prometheus does not sign in).
    assert.equal((await fetch(base + '/metrics')).status, 200);
  });

  test('Host check (DNS rebinding), security headers, images only by job id, forged origins', async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'red.jpg': path.join(samplesDir, 'red.jpg') });
    const [id] = jobsIn(d, 'adopt');
    const base = d.uiUrl!.replace(/\/$/, '');
    const rebound = await rawGet(base + '/jobs', 'attacker.example:80');
    assert.equal(rebound.status, 421);
    assert.match(rebound.body, /answers to localhost and 127\.0\.0\.1 only, not to attacker\.example/);
    assert.doesNotMatch(rebound.body, /red\.jpg/);
    assert.equal((await rawGet(base + '/jobs', 'localhost:8080')).status, 200, 'a loopback name through any port (an SSH tunnel)');

    const r = await fetch(base + '/jobs');
    for (const [h, v] of Object.entries({ 'content-security-policy': /default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:/, 'x-frame-options': /DENY/, 'x-content-type-options': /nosniff/ })) {
      assert.match(r.headers.get(h) ?? '', v, h);
    }
    assert.match(r.headers.get('set-cookie')!, /^matchd_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);

    const img = await fetch(`${base}/image/${id}?size=thumb`);
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/jpeg');
    for (const p of ['/image/..%2F..%2F..%2Fetc%2Fpasswd', '/image/%2Fetc%2Fpasswd', '/image/1e3', '/image/99999', `/image/${id}/../../etc/passwd`]) {
      const res = await fetch(base + p);
      assert.equal(res.status, 404, p);
      assert.doesNotMatch(res.headers.get('content-type')!, /image/, p);
      assert.doesNotMatch(await res.text(), /root:/, p);
    }
    assert.equal((await fetch(`${base}/image/${id}?size=../../x`)).status, 400);

    const c = new PageClient(base);
    await c.get('/review');
    const forged = await c.post('/logout', { _csrf: c.csrf }, { origin: 'http://attacker.example' });
    assert.equal(forged.status, 403);
    assert.match(forged.body, /MATCHD_CSRF_INVALID: the request came from another origin/);
    // A multipart body (which only the try page's route reads, token first) carries no token anywhere else.
    const token = c.csrf;
    const form = new FormData();
    form.set('_csrf', token);
    const multipart = await fetch(base + '/logout', { method: 'POST', body: form, headers: { cookie: c.cookie }, redirect: 'manual' });
    assert.equal(multipart.status, 403);
    assert.match(await multipart.text(), /MATCHD_CSRF_INVALID/);
    await c.get('/review');
    assert.equal(c.csrf, token, 'the session is still there: nothing changed');
  });

  test('labels export: CSV and JSON Lines with the image where it is now, the deciding text and the chosen band', async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'e1.png': REVIEW_SAMPLE, 'e2.png': REVIEW_SAMPLE });
    // By name: the folder source takes files in any order.
    const id = (name: string) => jobsIn(d, 'review').find((j) => d.journalForTools.get(j)!.imagePath.endsWith(name))!;
    const a = id('e1.png');
    assert.ok(d.review(a, { decision: 'approve' }, 'alice').ok);
    assert.ok(d.review(id('e2.png'), { decision: 'band', band: 'improve' }, 'bob').ok);
    const base = d.uiUrl!.replace(/\/$/, '');
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'improve', 'e2.png.json')), 'both decisions carried out');
    const jsonl = await (await fetch(base + '/labels.jsonl')).text();
    const rows = jsonl.trim().split('\n').map((l) => JSON.parse(l)).sort((x, y) => x.image.localeCompare(y.image));
    assert.deepEqual(rows.map((r) => [r.image, r.text, r.label, r.decision, r.previous, r.reviewer]), [
      [path.join(ws.sorted, 'adopt', 'e1.png'), 'a red product', 'adopt', 'approve', 'review', 'alice'],
      [path.join(ws.sorted, 'improve', 'e2.png'), 'a red product', 'improve', 'band', 'review', 'bob'],
    ]);
    assert.ok(rows[0].cosine > 0.3 && rows[0].cosine < 0.4);
    const csv = await fetch(base + '/labels.csv');
    assert.match(csv.headers.get('content-disposition')!, /attachment; filename="matchd-labels-\d{4}-\d{2}-\d{2}\.csv"/);
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines[0], 'image,text,label,cosine,score,decision,previous,rule,job_id,reviewer,decided_at,texts');
    assert.match(lines.find((l) => l.includes('e1.png'))!, new RegExp(`^${path.join(ws.sorted, 'adopt', 'e1.png')},a red product,adopt,0\\.3\\d+,0\\.3\\d+,approve,review,colours,${a},alice,\\d{4}-.*,"\\[""a red product""\\]"$`));
    assert.equal((await fetch(base + '/labels.csv?since=2999-01-01')).headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.equal((await (await fetch(base + '/labels.jsonl?since=2999-01-01')).text()), '');
    assert.equal((await fetch(base + '/labels.csv?since=soon')).status, 400);
  });
});
