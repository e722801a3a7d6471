/**
 * `npm run docs:screenshot`: the README's pictures of the web page, taken by the tests' browser. Runs the daemon
 * in-process on a temporary copy of the default setup (demo model, folder source), drops the samples, waits until they
 * are sorted, and saves the review page and the jobs page as small palette PNGs under docs/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { parseConfig } from '../src/core/config.ts';
import { Daemon } from '../src/core/daemon.ts';
import { silentLogger } from '../src/core/log.ts';
import { builtinRegistry } from '../src/plugins/index.ts';
import { launchChromium } from './chromium.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-screenshot-'));
  let daemon: Daemon | undefined;
  try {
    const config = parseConfig(stringify({
      model: { dir: path.join(root, 'models', 'demo') },
      journal: { path: 'var/matchd.db' },
      admin: { port: 0 },
      log: { level: 'warn' },
      rules: {
        'red-products': {
          texts: ['a red product'],
          actions: { default: [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }], error: [{ move: { to: 'sorted/error' } }, { sidecar: {} }] },
        },
      },
      sources: [{ type: 'folder', name: 'inbox', rule: 'red-products', options: { paths: ['inbox'], create: true, stabilityMs: 300, minAgeMs: 100 } }],
    }));
    daemon = await Daemon.start(config, { baseDir: work, registry: builtinRegistry(), logger: silentLogger() });
    const samples = path.join(root, 'samples');
    for (const f of fs.readdirSync(samples)) fs.copyFileSync(path.join(samples, f), path.join(work, 'inbox', f));
    const images = fs.readdirSync(samples).filter((f) => /\.(jpe?g|png|webp)$/.test(f)).length;
    for (let i = 0; ; i++) {
      const c = daemon.journalForTools.counts();
      if (c.done + c.failed === images && c.outboxPending === 0) break;
      if (i > 600) throw new Error('the samples were not sorted within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const browser = await launchChromium(path.join(work, 'profile'), { width: 1180, height: 760 });
    try {
      const page = await browser.newPage();
      fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
      for (const [name, url] of [['review-page', 'review'], ['jobs-page', 'jobs']] as const) {
        await page.goto(daemon.uiUrl + url);
        await page.evaluate('Promise.all([...document.images].map((i) => i.decode().catch(() => {})))');
        const png = await page.screenshot({ fullPage: false });
        const out = path.join(root, 'docs', `${name}.png`);
        // A palette PNG: the page is flat colours and text, so 128 colours keep it sharp at a fraction of the size.
        await sharp(png).png({ palette: true, colours: 128, compressionLevel: 9 }).toFile(out);
        process.stdout.write(`wrote ${path.relative(root, out)} (${(fs.statSync(out).size / 1024).toFixed(0)} KiB)\n`);
      }
    } finally {
      await browser.close();
    }
  } finally {
    await daemon?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`docs:screenshot: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
