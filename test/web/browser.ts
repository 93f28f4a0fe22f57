// Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by
// playwright-core (which never downloads a browser), a fresh profile each
// launch, every console error and page error of a page collected, and
// screenshots written under test-artifacts/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM = process.env.TINYRIG_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Why the browser tests cannot run, or null when Chromium is there. */
export function chromiumMissing(): string | null {
  if (fs.existsSync(CHROMIUM)) return null;
  return `${CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install -y chromium; scripts/lib/bootstrap.sh installs it), or TINYRIG_CHROMIUM naming another Chromium`;
}

/** Chromium with a fresh profile; fails (never skips) when the browser is not installed. */
export async function launchChromium(): Promise<Browser> {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Problem {
  kind: 'console' | 'pageerror';
  text: string;
  url: string;
}

/** A new tab whose console errors and uncaught errors are collected in `problems`. */
export async function openPage(browser: Browser | undefined): Promise<{ page: Page; problems: Problem[] }> {
  if (!browser) throw new Error(chromiumMissing() ?? 'Chromium did not start');
  const page = await browser.context.newPage();
  const problems: Problem[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error' || m.type() === 'assert') problems.push({ kind: 'console', text: m.text(), url: m.location().url });
  });
  page.on('pageerror', (err) => problems.push({ kind: 'pageerror', text: err.stack ?? err.message, url: '' }));
  return { page, problems };
}

/** A full-page screenshot under test-artifacts/; prints and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
  return file;
}
