/**
 * Debian's Chromium driven by playwright-core, as the web page's tests and `npm run docs:screenshot` start it:
 * headless, in a fresh profile folder (--user-data-dir), nothing fetched from the network by the browser itself.
 */
import fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.MATCHD_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Headless; no updates, sync, QUIC probes or first-run pages. */
export const CHROMIUM_FLAGS = [
  '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
  // Chromium's sandbox needs user namespaces that root in a container does not get; as root it is started without.
  ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
];

/** A browser with its own new profile in `profileDir` (the caller removes it). */
export async function launchChromium(profileDir: string, viewport = { width: 1280, height: 860 }): Promise<BrowserContext> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}: apt-get install chromium (.ci/run installs it), or set MATCHD_TEST_CHROMIUM`);
  }
  return chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport, acceptDownloads: false });
}
