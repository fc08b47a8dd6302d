/**
 * Opens report.html in headless Chromium (Debian's `chromium` package, driven by playwright-core)
 * and checks that it loads cleanly: no console errors, no failed or network requests, every
 * picture decoded. Set SIAMESE_SCREENSHOT=/path/shot.png to keep a full-page screenshot.
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, it } from 'node:test';
import { chromium } from 'playwright-core';
import { buildReport } from '../../src/viz/report.ts';
import { syntheticResults, syntheticTestSplit } from '../fixtures/compareResults.ts';

const CHROMIUM = '/usr/bin/chromium';

/** The little of the DOM the page-side check uses (the project compiles without lib "dom"). */
interface Box {
  getBoundingClientRect(): { width: number };
}
interface PageDocument {
  title: string;
  querySelectorAll(sel: 'img'): Iterable<Box & { alt: string; complete: boolean; naturalWidth: number }>;
  querySelectorAll(sel: 'svg'): Iterable<Box>;
  querySelector(sel: string): { textContent: string | null } | null;
}
declare const document: PageDocument;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('report.html opens in headless Chromium with every picture loaded and nothing fetched', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium. Install it with: apt-get install -y chromium`);
  }
  const out = mkdtempSync(join(tmpdir(), 'siamese-browser-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(out, profile);
  const files = await buildReport(syntheticResults({ nastyLabel: true }), out, { testSplit: syntheticTestSplit(), pngScale: 1 });
  const url = pathToFileURL(files.html).href;

  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors: string[] = [];
    const failed: string[] = [];
    const fetched: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('requestfailed', (r) => failed.push(`${r.url().slice(0, 80)}: ${r.failure()?.errorText ?? '?'}`));
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith('data:') && u !== url) fetched.push(u);
    });
    const response = await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
    assert.ok(response === null || response.ok(), 'report.html loads');

    const pictures = await page.evaluate(() => {
      const imgs = [...document.querySelectorAll('img')].map((img) => ({
        alt: img.alt,
        complete: img.complete,
        naturalWidth: img.naturalWidth,
        shownWidth: img.getBoundingClientRect().width,
      }));
      const svgs = [...document.querySelectorAll('svg')].map((s) => s.getBoundingClientRect().width);
      return { imgs, svgs, title: document.title, h1: document.querySelector('h1')?.textContent ?? '' };
    });
    assert.equal(pictures.imgs.length, 8, 'one picture per chart');
    for (const img of pictures.imgs) {
      assert.ok(img.complete && img.naturalWidth > 0, `picture "${img.alt}" decoded`);
      assert.ok(img.shownWidth > 100, `picture "${img.alt}" is shown`);
    }
    for (const w of pictures.svgs) assert.ok(w > 0, 'inline SVGs have a size');
    assert.match(pictures.h1, /siamese-lab: 2 losses compared/);
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failed, [], 'no failed requests');
    assert.deepEqual(fetched, [], 'nothing but report.html itself is requested');

    const shot = join(out, 'screenshot.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
    const keep = process.env['SIAMESE_SCREENSHOT'];
    if (keep) {
      copyFileSync(shot, keep);
      t.diagnostic(`screenshot: ${keep}`);
    }
  } finally {
    await context.close();
  }
});
