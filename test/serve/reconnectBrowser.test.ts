/**
 * The Curves view through a growing log and a server restart, in headless Chromium (Debian's
 * `chromium`, driven by playwright-core). Epochs logged while the page is connected arrive as
 * the appended lines (no request); a half-written line is not drawn until complete; while the
 * server is down two more epochs are written and the log is replaced by a resumed run's
 * (other numbers): once the event stream reconnects to the new server the page asks for what
 * follows the offset it holds, gets the whole log (a generation of another server process) and
 * draws exactly the file's epochs (the oracle: log.jsonl parsed with JSON.parse), no reload.
 * A second run's log, asked of the old server just before it stopped, is answered late, after
 * the page reconnected to the new one (the request held by the test, then given the old
 * server's real answer): the page drops it and draws that log as the new server reads it.
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { APIResponse, Route } from 'playwright-core';
import { type Served, startServer } from '../../src/serve/server.ts';
import { CHROMIUM, openBrowser } from './browser.ts';
import { ensureWebBuilt, epochLine, writeManifest } from './helpers.ts';

const WAIT = { timeout: 60_000 };

interface El {
  getAttribute(name: string): string | null;
}
/** the legend's span of a loss's group (one run each) */
const SPAN = (loss: string): string => `[data-testid=curves-legend] span[data-group*="${loss}"]`;
declare const document: { querySelectorAll(sel: string): Iterable<El>; body: { dataset: Record<string, string | undefined> } };
declare const window: { __marker?: number };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('serve page: a live log through a half line and a server restart, drawn as the file holds it', { timeout: 300_000 }, async () => {
  if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium)`);
  ensureWebBuilt();
  const base = mkdtempSync(join(tmpdir(), 'siamese-serve-reconnect-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(base, profile);
  const run = join(base, 'served', 'yukawa-seed0');
  const log = join(run, 'log.jsonl');
  writeManifest(run, { loss: 'yukawa', params: { kappa: 5, power: 3 }, seed: 0, epochs: 20 });
  const line = (e: number, v = epochLine(e)): string => JSON.stringify(v) + '\n';
  writeFileSync(log, [1, 2, 3].map((e) => line(e)).join(''));
  /** the oracle: the file's complete lines, test accuracy per epoch */
  const fileAccuracies = (path = log): number[] =>
    readFileSync(path, 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((l) => (JSON.parse(l) as { testAccuracy: number }).testAccuracy);

  let served: Served = await startServer({ dirs: [join(base, 'served')], port: 0, pollMs: 200 });
  const port = served.port;
  const { context, page, errors, outside } = await openBrowser(profile, { viewport: { width: 1280, height: 900 }, origin: served.url });
  /** each log request's at= values ('' for a whole log) */
  const asked: string[][] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    // (the yukawa run's requests: the second run's are checked apart)
    if (u.pathname === '/api/logs' && u.searchParams.getAll('run').includes('0:yukawa-seed0')) asked.push(u.searchParams.getAll('at'));
  });
  const drawn = (loss = 'yukawa'): Promise<{ epochs: string; acc: string }> =>
    page.evaluate((sel) => {
      const s = [...document.querySelectorAll(sel)][0];
      return { epochs: s?.getAttribute('data-epochs') ?? '', acc: s?.getAttribute('data-curve-testaccuracy') ?? '' };
    }, SPAN(loss));
  const waitEpochs = (n: number, loss = 'yukawa'): Promise<unknown> =>
    page.waitForFunction(([k, sel]) => [...document.querySelectorAll(sel as string)][0]?.getAttribute('data-epochs') === String(k), [n, SPAN(loss)] as const, WAIT);
  const drawnIsFile = async (what: string, loss = 'yukawa', path = log): Promise<void> => {
    const d = await drawn(loss);
    // (a shorter run's line is padded with empty values to the longest run's epochs)
    assert.deepEqual(d.acc.split(',').filter((v) => v !== '').map(Number), fileAccuracies(path), what);
  };
  try {
    await page.goto(served.url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset['ready'] === '1', undefined, WAIT);
    await page.evaluate(() => (window.__marker = 7));
    await page.click('#tabs button[data-tab=curves]');
    await waitEpochs(3);
    await drawnIsFile('the first read');
    assert.deepEqual(asked, [['']], 'one request, for the whole log');

    // ---- live: appended lines by events; a half line waits for its end ------------------------
    appendFileSync(log, line(4));
    await waitEpochs(4);
    appendFileSync(log, line(5).slice(0, 30));
    appendFileSync(log, line(5).slice(30));
    await waitEpochs(5);
    await drawnIsFile('epochs 4 and 5 by events');
    assert.equal(asked.length, 1, 'no log request for live epochs');

    // ---- a second run appears; the page asks the old server for its log: the answer is held ---
    const run2 = join(base, 'served', 'contrastive-seed1');
    const log2 = join(run2, 'log.jsonl');
    let heldOnce = false;
    const held = new Promise<{ route: Route; response: APIResponse }>((resolve) => {
      void page.route('**/api/logs?*', async (route) => {
        const u = new URL(route.request().url());
        if (heldOnce || !u.searchParams.getAll('run').includes('0:contrastive-seed1')) return route.continue();
        heldOnce = true;
        // the old server answers now (its generation, its 2 epochs); the page gets it after the restart
        resolve({ route, response: await route.fetch() });
      });
    });
    writeManifest(run2, { loss: 'contrastive', params: { margin: 1 }, seed: 1, epochs: 20 });
    writeFileSync(log2, [1, 2].map((e) => line(e, { ...epochLine(e), testAccuracy: 0.1 * e })).join(''));
    const late = await held;

    // ---- the server goes away; the run resumes and rewrites its log; a new server -------------
    await served.close();
    // the second run restarted meanwhile: other numbers, 4 epochs
    writeFileSync(log2, [1, 2, 3, 4].map((e) => line(e, { ...epochLine(e), testAccuracy: 0.3 + 0.01 * e })).join(''));
    const resumed = Array.from({ length: 7 }, (_, i) => line(i + 1, { ...epochLine(i + 1), testAccuracy: 0.5 + 0.01 * i }));
    writeFileSync(`${log}.tmp`, resumed.join(''));
    renameSync(`${log}.tmp`, log);
    served = await startServer({ dirs: [join(base, 'served')], port, pollMs: 200 });
    await waitEpochs(7);
    await drawnIsFile('the replaced log, after the reconnect');
    assert.equal(asked.length, 2, 'one more log request, after the reconnect');
    assert.match(asked[1]![0]!, /^[0-9a-f]+\.\d+:\d+$/, 'it named the generation and offset the page held');

    // ---- the old server's answer for the second run arrives now, late: dropped, asked again ----
    await late.route.fulfill({ response: late.response });
    await waitEpochs(4, 'contrastive');
    await drawnIsFile("the second run's log as the new server reads it, not the old server's late answer", 'contrastive', log2);

    // ---- and live again on the new server ------------------------------------------------------
    appendFileSync(log, line(8, { ...epochLine(8), testAccuracy: 0.9 }));
    await waitEpochs(8);
    await drawnIsFile('epoch 8 by an event');
    await drawnIsFile('the second run unchanged', 'contrastive', log2);
    assert.equal(asked.length, 2);
    assert.equal(await page.evaluate(() => window.__marker), 7, 'no reload');

    // the event stream's failed reconnects while the server was down are the only console errors
    assert.deepEqual(errors.filter((e) => !/ERR_CONNECTION_REFUSED|api\/events/.test(e)), [], 'no other console errors');
    assert.deepEqual(outside, [], 'no request outside the server');
  } finally {
    await context.close();
    await served.close();
  }
});
