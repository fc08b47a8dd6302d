/**
 * results.json replaced twice in a row, the page's two requests for it answered out of order
 * (the older answer last: two connections, a slow one): the page keeps the newer, as the file is
 * now. Headless Chromium (Debian's `chromium`, driven by playwright-core); the order is forced by
 * holding the first answer until the second has been delivered, so nothing depends on timing.
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { APIResponse, Route } from 'playwright-core';
import { startServer } from '../../src/serve/server.ts';
import { syntheticResults } from '../fixtures/compareResults.ts';
import { CHROMIUM, openBrowser } from './browser.ts';
import { ensureWebBuilt } from './helpers.ts';

declare const document: { body: { dataset: Record<string, string | undefined> }; querySelector(sel: string): { getAttribute(n: string): string | null } | null };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** results.json with every distance times `k`: the Distances view's range says which one the page holds */
function version(k: number): { text: string; max: number } {
  const r = syntheticResults();
  let top = 0;
  for (const run of r.runs) {
    run.distances = { pos: run.distances.pos.map((d) => d * k), neg: run.distances.neg.map((d) => d * k) };
    for (const d of [...run.distances.pos, ...run.distances.neg]) top = Math.max(top, d);
  }
  return { text: JSON.stringify(r), max: top * 1.0001 };
}

it('serve page: of two answers for a results.json replaced twice, the newer stays, whichever arrives last', { timeout: 180_000 }, async () => {
  if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium)`);
  ensureWebBuilt();
  const base = mkdtempSync(join(tmpdir(), 'siamese-serve-order-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(base, profile);
  const dir = join(base, 'cmp');
  mkdirSync(dir, { recursive: true });
  const write = (text: string): void => {
    writeFileSync(join(dir, 'results.json.tmp'), text);
    renameSync(join(dir, 'results.json.tmp'), join(dir, 'results.json'));
  };
  const [v1, v2, v3] = [version(1), version(2), version(3)];
  write(v1.text);
  const served = await startServer({ dirs: [base], port: 0, pollMs: 200 });
  const { context, page, errors } = await openBrowser(profile, { viewport: { width: 1280, height: 900 }, origin: served.url });
  try {
    let n = 0;
    let held: { route: Route; response: APIResponse } | undefined;
    let secondFetched!: () => void;
    const second = new Promise<void>((resolve) => (secondFetched = resolve));
    await page.route('**/api/results?**', async (route) => {
      n++;
      if (n === 2) {
        // answered by the server now (the file is v2), delivered only after the third
        held = { route, response: await route.fetch() };
        secondFetched();
        return;
      }
      await route.fulfill({ response: await route.fetch() });
      if (n === 3) await held!.route.fulfill({ response: held!.response });
    });
    const range = (): Promise<string | null> => page.evaluate(() => document.querySelector('[data-testid=distances] .chart')?.getAttribute('data-max') ?? null);
    await page.goto(`${served.url}#distances`, { waitUntil: 'load' });
    await page.waitForFunction((want) => document.querySelector('[data-testid=distances] .chart')?.getAttribute('data-max') === want, String(v1.max), { timeout: 60_000 });
    write(v2.text);
    await second;
    write(v3.text);
    // the page counts the answers it has received (body[data-results-answers]): all three in
    await page.waitForFunction(() => document.body.dataset['resultsAnswers'] === '3', undefined, { timeout: 60_000 });
    assert.equal(n, 3, 'three requests: the first view, then one per replacement');
    // a redraw (the tab again) shows what the page holds
    await page.click('#tabs button[data-tab=runs]');
    await page.click('#tabs button[data-tab=distances]');
    assert.equal(await range(), String(v3.max), 'the page holds the newer results.json');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await served.close();
  }
});
