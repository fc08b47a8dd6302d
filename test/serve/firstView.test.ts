/**
 * The page's first moments, in headless Chromium (Debian's `chromium`, driven by playwright-core):
 * before the event stream has brought the first table, no view claims the folders are empty (it
 * says it is connecting); once it has, the runs are there. Every message the page ever shows is
 * recorded from the first script on, so a message drawn and replaced within a frame counts too.
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { startServer } from '../../src/serve/server.ts';
import { CHROMIUM, openBrowser } from './browser.ts';
import { appendDistances, appendEpoch, ensureWebBuilt, writeManifest } from './helpers.ts';

declare const document: { body: { dataset: Record<string, string | undefined> }; querySelectorAll(sel: string): ArrayLike<unknown> };
declare const window: { __messages: string[] };
declare const location: { hash: string };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('serve page: before the first table no view says there are no runs; then the runs are shown', { timeout: 120_000 }, async () => {
  if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium)`);
  ensureWebBuilt();
  const base = mkdtempSync(join(tmpdir(), 'siamese-serve-first-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(base, profile);
  for (const seed of [0, 1]) {
    const dir = join(base, `contrastive-seed${seed}`);
    writeManifest(dir, { loss: 'contrastive', params: { margin: 1 }, seed, epochs: 2, epochsDone: 1 });
    appendEpoch(dir, 1);
    appendDistances(dir, 1);
  }
  const served = await startServer({ dirs: [base], port: 0, pollMs: 200 });
  const { context, page, errors } = await openBrowser(profile, { viewport: { width: 1280, height: 720 }, origin: served.url });
  try {
    // from the document's start: every message element's text, whenever it appears
    await page.addInitScript(`window.__messages = [];
      new MutationObserver((records) => { for (const r of records) for (const n of r.addedNodes) if (n.nodeType === 1) for (const m of [n, ...n.querySelectorAll('.msg')]) if (m.classList.contains('msg')) window.__messages.push(m.textContent); })
        .observe(document, { subtree: true, childList: true });`);
    for (const viewName of ['runs', 'sweep', 'curves', 'distances']) {
      // a new document each time (from one URL to the same with another hash is no navigation)
      await page.goto('about:blank');
      await page.goto(`${served.url}#${viewName}`, { waitUntil: 'load' });
      assert.equal(await page.evaluate(() => document.querySelectorAll(`#view-${location.hash.slice(1)}.active`).length), 1);
      await page.waitForFunction(() => document.body.dataset['ready'] === '1', undefined, { timeout: 60_000 });
      const seen = await page.evaluate(() => window.__messages);
      assert.ok(seen.length > 0, `${viewName}: the first drawing, before any data, is recorded`);
      for (const m of seen) assert.doesNotMatch(m, /no runs|no epoch|no distances/, `${viewName}: "${m}" while the runs were on their way`);
      assert.match(seen[0]!, /connecting/, viewName);
    }
    await page.goto('about:blank');
    await page.goto(`${served.url}#runs`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset['ready'] === '1', undefined, { timeout: 60_000 });
    assert.equal(await page.locator('tr.run').count(), 2);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await served.close();
  }
});
