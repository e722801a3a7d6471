// The review queue in a real browser (Chromium, one for the file): approve with the keyboard → the file is in the
// adopt folder with a rewritten sidecar and the label is in the journal; j / k move through the queue and r rejects;
// a POST without the CSRF token (from the page itself, or a form on another origin) is refused and nothing moves;
// with a login, two reviewers on one item: the first wins and the second is told who decided.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { labelOf } from '../../src/core/journal-review.ts';
import { openBrowser } from '../fixtures/browser.ts';
import { listFiles, waitFor, workspace, type Workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { PageClient, REVIEW_SAMPLE, dropAndWait, jobsIn, startDaemon, stopDaemons } from '../fixtures/ui.ts';

const sidecar = (ws: Workspace, rel: string) => JSON.parse(fs.readFileSync(path.join(ws.sorted, `${rel}.json`), 'utf8'));
const position = (page: Page) => page.getByTestId('position').textContent();

describe('web page: review queue (Chromium)', () => {
  let browser: BrowserContext;
  before(async () => {
    browser = await openBrowser();
  });
  afterEach(async () => {
    for (const p of browser.pages()) await p.close();
    await browser.clearCookies();
    await stopDaemons();
  });
  after(async () => {
    await browser?.close();
    cleanupTmpDirs();
  });

  test('approve with the a key: the file moves to adopt with a rewritten sidecar; the label is journalled', async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'r1.png': REVIEW_SAMPLE, 'r2.png': REVIEW_SAMPLE });
    const [first, second] = jobsIn(d, 'review');
    const page = await browser.newPage();
    await page.goto(d.uiUrl + 'review');
    assert.equal(await position(page), '1 of 2');
    assert.equal(await page.locator('.review').getAttribute('data-job-id'), String(first), 'oldest first');
    assert.equal(await page.getByTestId('review-count').textContent(), '2');
    // The large image is served by job id and decodes in the browser.
    await page.locator('figure.big img').evaluate((img: { decode(): Promise<void> }) => img.decode());
    assert.ok(await page.locator('figure.big img').evaluate((img: { naturalWidth: number }) => img.naturalWidth > 0));

    await page.keyboard.press('a');
    await page.waitForURL(/decided=/);
    assert.match((await page.locator('.flash.ok').textContent())!, new RegExp(`Job #${first}: review → adopt \\(approve, by local`));
    assert.equal(await page.locator('.review').getAttribute('data-job-id'), String(second), 'the next item shows');
    assert.equal(await position(page), '1 of 1');

    // The folder source takes files in any order: the oldest job is r1.png or r2.png.
    const [decided, waiting] = [first, second].map((id) => path.basename(d.journalForTools.get(id!)!.imagePath));
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'adopt', `${decided}.json`)), `${decided} decided into adopt`);
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), [waiting, `${waiting}.json`]);
    const side = sidecar(ws, `adopt/${decided}`);
    assert.equal(side.outcome, 'adopt');
    assert.equal(side.review.reviewer, 'local');
    assert.equal(side.review.previous, 'review');
    const label = labelOf(d.journalForTools, first!)!;
    assert.deepEqual([label.decision, label.band, label.reviewer], ['approve', 'adopt', 'local']);
  });

  test('j and k move through the queue, r rejects the item shown', async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'q1.png': REVIEW_SAMPLE, 'q2.png': REVIEW_SAMPLE, 'q3.png': REVIEW_SAMPLE });
    const ids = jobsIn(d, 'review');
    const page = await browser.newPage();
    await page.goto(d.uiUrl + 'review');
    await page.keyboard.press('j');
    await page.waitForURL(new RegExp(`job=${ids[1]}`));
    await page.keyboard.press('j');
    await page.waitForURL(new RegExp(`job=${ids[2]}`));
    assert.equal(await position(page), '3 of 3');
    await page.keyboard.press('k');
    await page.waitForURL(new RegExp(`job=${ids[1]}`));
    assert.equal(await position(page), '2 of 3');
    await page.keyboard.press('r');
    await page.waitForURL(/decided=/);
    const second = path.basename(d.journalForTools.get(ids[1]!)!.imagePath); // the folder source takes files in any order
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'reject', `${second}.json`)), `${second} rejected`);
    assert.equal(labelOf(d.journalForTools, ids[1]!)!.band, 'reject');
    assert.deepEqual(jobsIn(d, 'review'), [ids[0], ids[2]]);
    // Typing in a field is not a shortcut.
    await page.goto(d.uiUrl + 'try');
    await page.locator('textarea[name=texts]').press('a');
    assert.equal(await page.locator('textarea[name=texts]').inputValue(), 'a');
    assert.deepEqual(jobsIn(d, 'review'), [ids[0], ids[2]]);
  });

  test('a POST without the CSRF token is refused, and so is a form posted from another origin; nothing moves', async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'c1.png': REVIEW_SAMPLE });
    const [id] = jobsIn(d, 'review');
    const page = await browser.newPage();
    await page.goto(d.uiUrl + 'review');
    // From the page itself (same origin, with its session cookie) but without the token.
    const r = await page.evaluate(async (jobId) => {
      const res = await fetch(`/review/${jobId}`, { method: 'POST', body: new URLSearchParams({ choice: 'approve' }) });
      return { status: res.status, text: await res.text() };
    }, id);
    assert.equal(r.status, 403);
    assert.match(r.text, /MATCHD_CSRF_INVALID: the form has no valid CSRF token/);
    // A forged form on another origin that submits itself to the page.
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<form id="f" method="post" action="${d.uiUrl}review/${id}"><input name="choice" value="approve"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const forged = await browser.newPage();
      const answer = forged.waitForResponse((res) => res.url().endsWith(`/review/${id}`));
      await forged.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      assert.equal((await answer).status(), 403);
      assert.match(await forged.content(), /MATCHD_CSRF_INVALID/);
    } finally {
      evil.close();
    }
    await new Promise((r2) => setTimeout(r2, 300));
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), ['c1.png', 'c1.png.json'], 'nothing moved');
    assert.equal(labelOf(d.journalForTools, id!), undefined);
    assert.deepEqual(jobsIn(d, 'review'), [id]);
  });

  test('with a login: the cookie is HttpOnly and SameSite=Strict; two reviewers on one item — the first wins, the second is told', async () => {
    const ws = workspace({ ui: { auth: { users: [{ name: 'alice', password: 'alice-password-123' }, { name: 'bob', password: 'bob-password-4567' }] } } });
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 't1.png': REVIEW_SAMPLE });
    const [id] = jobsIn(d, 'review');
    const page = await browser.newPage();
    await page.goto(d.uiUrl + 'review');
    assert.match(page.url(), /\/login\?next=%2Freview$/, 'signing in comes first');
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=password]', 'wrong-password-000');
    await page.click('button[type=submit]');
    assert.match((await page.locator('.flash.error').textContent())!, /wrong name or password/);
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=password]', 'alice-password-123');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/review$/);
    assert.equal(await page.locator('.who').textContent(), 'alice');
    const [cookie] = await browser.cookies(d.uiUrl);
    assert.equal(cookie!.name, 'matchd_session');
    assert.equal(cookie!.httpOnly, true);
    assert.equal(cookie!.sameSite, 'Strict');
    assert.equal(await page.evaluate('document.cookie'), '', 'no script can read the session');

    // Bob, in another session, decides first.
    const bob = new PageClient(d.uiUrl!.replace(/\/$/, ''));
    await bob.get('/login');
    const signed = await bob.post('/login', { _csrf: bob.csrf, name: 'bob', password: 'bob-password-4567', next: '/review' });
    assert.equal(signed.status, 303);
    await bob.get('/review');
    assert.equal((await bob.post(`/review/${id}`, { _csrf: bob.csrf, choice: 'approve' })).status, 303);

    // Alice still sees the item and presses r: she is told, nothing changes.
    const answer = page.waitForResponse((res) => res.url().endsWith(`/review/${id}`));
    await page.keyboard.press('r');
    assert.equal((await answer).status(), 409);
    await page.waitForLoadState();
    assert.match((await page.locator('.flash.error').textContent())!, /MATCHD_REVIEW_DECIDED: job \d+ was already decided by bob .*\(→ adopt\); nothing was changed/);
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'adopt', 't1.png.json')), "bob's decision carried out");
    assert.equal(listFiles(path.join(ws.sorted, 'reject')).length, 0);
    assert.equal(labelOf(d.journalForTools, id!)!.reviewer, 'bob');
  });
});
