// The jobs and try-it pages in a real browser (Chromium, one for the file): the try page scores an uploaded sample
// through the daemon's pipeline (and keeps nothing); the jobs page filters by band, outcome, rule and time, pages,
// shows thumbnails served by job id, error codes and action states; text from a job is shown as text, never run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { openBrowser } from '../fixtures/browser.ts';
import { waitFor, workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { samplesDir } from '../fixtures/packages.ts';
import { REVIEW_SAMPLE, dropAndWait, startDaemon, stopDaemons } from '../fixtures/ui.ts';

const sample = (f: string) => path.join(samplesDir, f);
/** The file names in the jobs table, top to bottom. */
const files = (page: Page) => page.locator('table.jobs > tbody > tr .file').allTextContents();

describe('web page: jobs and try it (Chromium)', () => {
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

  test('the try page scores an uploaded sample: cosine, score and band per text, in the order typed; nothing is kept', async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    const page = await browser.newPage();
    await page.goto(d.uiUrl + 'try');
    await page.setInputFiles('input[type=file]', sample('red.jpg'));
    // ui.js shows the chosen file once the browser has read it (asynchronously): wait for it, not just look.
    await page.locator('img.preview').waitFor({ state: 'visible', timeout: 10_000 });
    await page.fill('textarea[name=texts]', 'a blue object\na red object');
    await page.click('button[type=submit]');
    const rows = page.getByTestId('try-result').locator('tbody tr');
    await rows.first().waitFor();
    const cells = await rows.evaluateAll((trs) => trs.map((tr) => [...(tr as unknown as { cells: { textContent: string }[] }).cells].map((c) => c.textContent.trim())));
    assert.deepEqual(cells, [['a blue object', '0.000', '0.000', 'reject'], ['a red object', '0.857', '0.857', 'adopt']]);
    assert.ok(await page.locator('img.uploaded').evaluate((img: { naturalWidth: number }) => img.naturalWidth > 0), 'an inline preview of the upload');
    assert.equal(await page.locator('textarea[name=texts]').inputValue(), 'a blue object\na red object', 'the texts stay for the next try');
    assert.deepEqual(fs.readdirSync(path.join(ws.root, 'var', 'spool', '.ui')), [], 'the upload was deleted');
    assert.equal(d.journalForTools.counts().done, 0, 'nothing journalled');

    // Not an image: its code, nothing kept.
    const notes = path.join(ws.root, 'notes.jpg');
    fs.writeFileSync(notes, 'plain text, not a JPEG');
    await page.setInputFiles('input[type=file]', notes);
    const answer = page.waitForResponse((r) => r.url().endsWith('/try'));
    await page.click('button[type=submit]');
    assert.equal((await answer).status(), 422);
    assert.match((await page.locator('.flash.error').textContent())!, /MATCHD_IMAGE_UNSUPPORTED: .*not an image/);
    assert.deepEqual(fs.readdirSync(path.join(ws.root, 'var', 'spool', '.ui')), []);
  });

  test('the jobs page filters by band, outcome, rule and time, shows codes, thumbnails and action states, and pages', async () => {
    const ws = workspace({ ui: { pageSize: 3 } });
    const d = await startDaemon(ws);
    fs.writeFileSync(path.join(ws.inbox, 'notes.jpg'), 'this is text, not a JPEG');
    await dropAndWait(ws, d, { 'red.jpg': sample('red.jpg'), 'blue.png': sample('blue.png'), 'green.webp': sample('green.webp'), 'r1.png': REVIEW_SAMPLE });
    await waitFor(() => d.journalForTools.counts().failed === 1 && d.journalForTools.counts().outboxPending === 0, 'notes.jpg failed and moved to error');
    const page = await browser.newPage();
    await page.goto(d.uiUrl + 'jobs');
    assert.equal((await files(page)).length, 3, 'a page of ui.pageSize jobs');
    await page.click('a[rel=next]');
    const all = [...(await files(page))];
    assert.equal(all.length, 2);
    await page.click('a[rel=prev]');
    all.unshift(...(await files(page)));
    assert.deepEqual([...all].sort(), ['blue.png', 'green.webp', 'notes.jpg', 'r1.png', 'red.jpg']);

    await page.selectOption('select[name=band]', 'reject');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/band=reject/);
    assert.deepEqual((await files(page)).sort(), ['blue.png', 'green.webp']);

    await page.selectOption('select[name=band]', '');
    await page.selectOption('select[name=outcome]', 'error');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/outcome=error/);
    assert.deepEqual(await files(page), ['notes.jpg']);
    assert.equal(await page.locator('code.code').textContent(), 'MATCHD_IMAGE_UNSUPPORTED');
    assert.deepEqual(await page.locator('.astate').allTextContents(), ['done', 'done'], 'its move and sidecar, done');

    await page.goto(d.uiUrl + 'jobs?band=adopt');
    const row = page.locator('table.jobs > tbody > tr').first();
    assert.equal(await row.locator('.file').textContent(), 'red.jpg');
    assert.match((await row.locator('tr.decided').textContent())!, /★ a red product\s*0\.857\s*0\.857\s*adopt/);
    await row.locator('td.thumb img').evaluate((img: { decode(): Promise<void> }) => img.decode());
    assert.ok(await row.locator('td.thumb img').evaluate((img: { naturalWidth: number }) => img.naturalWidth > 0), 'the thumbnail loads');

    // Time: everything so far is before "tomorrow" and nothing is after it.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await page.goto(d.uiUrl + `jobs?to=${tomorrow}T00:00&rule=colours`);
    assert.equal((await files(page)).length, 3);
    await page.goto(d.uiUrl + `jobs?from=${tomorrow}T00:00`);
    assert.match((await page.locator('p.empty').textContent())!, /No jobs match these filters/);
    const bad = await page.goto(d.uiUrl + 'jobs?from=yesterday');
    assert.equal(bad!.status(), 400);
    assert.match((await page.locator('.flash.error').textContent())!, /MATCHD_REQUEST_INVALID: from: expected a date and time/);
  });

  test("a job's texts are shown as text: markup in them never runs (escaping, and the CSP forbids inline scripts)", async () => {
    const ws = workspace();
    const d = await startDaemon(ws);
    fs.writeFileSync(path.join(ws.inbox, 'x.txt'), '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> red\n');
    await dropAndWait(ws, d, { 'x.jpg': sample('red.jpg') });
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => violations.push(m.text()));
    const res = await page.goto(d.uiUrl + 'jobs');
    assert.match(res!.headers()['content-security-policy']!, /default-src 'none'; script-src 'self'/);
    assert.match((await page.locator('table.scores td').first().textContent())!, /<img src=x onerror="window.pwned=1"><script>window.pwned=2<\/script> red/);
    assert.equal(await page.evaluate('window.pwned'), undefined);
    // Even markup that did get in could not run a script: the CSP blocks inline code.
    await page.evaluate(`document.body.insertAdjacentHTML('beforeend', '<img src="/nowhere" onerror="window.pwned=3">')`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await page.evaluate('window.pwned'), undefined);
    assert.ok(violations.some((v) => /Content Security Policy/.test(v)), violations.join('\n'));
  });
});
