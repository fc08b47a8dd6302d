/**
 * A real training started into a served folder, watched in headless Chromium (Debian's
 * `chromium`, driven by playwright-core) from an empty page that is never reloaded: one epoch
 * (the run appears in every view), then the same run resumed to three epochs (it grows: the
 * runs table reaches 3/3 finished, the Distances view's slider follows to the last epoch, the
 * Embedding view's slider grows to epoch 3). The numbers shown are checked against the files the
 * training wrote (log.jsonl, distances.jsonl, result.json). No console error, no request
 * outside the server.
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type Served, startServer } from '../../src/serve/server.ts';
import type { EpochDistances } from '../../src/train/epochDistances.ts';
import { CHROMIUM, openBrowser } from './browser.ts';
import { ensureWebBuilt } from './helpers.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** generous: the machine may be loaded; every wait is still bounded */
const WAIT = { timeout: 120_000 };
const EPOCHS = 3;
const RUN = '0:live-run';

interface El {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: { querySelector(sel: string): El | null; querySelectorAll(sel: string): Iterable<El>; body: { dataset: Record<string, string | undefined> } };
declare const window: { __marker?: number; __epochsSeen?: string[] };
declare const MutationObserver: new (cb: () => void) => { observe(target: unknown, opts: Record<string, boolean>): void };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const textOf = (page: Page, sel: string): Promise<string | null> => page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel);
const attrOf = (page: Page, sel: string, name: string): Promise<string | null> => page.evaluate(([s, n]) => document.querySelector(s!)?.getAttribute(n!) ?? null, [sel, name]);

/** Resolves with the exit code of the child, or rejects after `ms`. */
function exited(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => reject(new Error(`the training did not end within ${ms / 1000} s`)), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

it('serve page: a real training started into a served folder appears and grows, no reload', { timeout: 600_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium)`);
  ensureWebBuilt();
  const served = mkdtempSync(join(tmpdir(), 'siamese-serve-live-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(served, profile);
  const runDir = join(served, 'live-run');

  const server: Served = await startServer({ dirs: [served], port: 0, pollMs: 200 });
  const { context, page, errors, outside } = await openBrowser(profile, { viewport: { width: 1280, height: 900 }, origin: server.url });
  let child: ChildProcess | undefined;
  try {
    await page.goto(server.url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset['ready'] === '1', undefined, WAIT);
    assert.match((await textOf(page, '#view-runs .msg')) ?? '', /no runs found yet/, 'an empty folder at first');
    // a reload would lose these: the marker, and every text the run's epoch cell shows
    await page.evaluate(() => {
      window.__marker = 42;
      const seen: string[] = (window.__epochsSeen = []);
      new MutationObserver(() => {
        const t = document.querySelector('tr[data-run="0:live-run"] td[data-col=epoch]')?.textContent;
        if (t && seen.at(-1) !== t) seen.push(t);
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    });

    // ---- a real training into the served folder: one epoch, then resumed to three ----------
    // (the pause between them lets every view load the run before it grows: each later epoch
    // must then reach the page through the server's events, whatever the machine's speed)
    const train = async (args: string[]): Promise<void> => {
      let err = '';
      child = spawn(process.execPath, [join(REPO, 'bin', 'siamese.js'), 'train', ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (c: string) => (err += c));
      assert.equal(await exited(child, 300_000), 0, `the training failed: ${err}`);
    };
    type LogLine = { epoch: number; testAccuracy: number; loss: number };
    type Result = { evaluation: { pairs: { accuracy: number }; retrieval: { mapAtR: number } } };
    const lines = <T>(file: string): T[] => readFileSync(join(runDir, file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
    const result = (): Result => JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as Result;
    const row = `tr[data-run="${RUN}"]`;
    const chart = '[data-testid=distances-epochs] .chart';
    const slider = '#view-distances [data-testid=epoch-slider]';
    const map = `canvas[data-source="run:${RUN}"]`;
    const embedSlider = '#view-embedding input[aria-label=epoch]';
    const waitAttr = (sel: string, name: string, v: string): Promise<unknown> =>
      page.waitForFunction(([s, n, x]) => document.querySelector(s!)?.getAttribute(n!) === x, [sel, name, v], WAIT);
    const waitText = (sel: string, v: string): Promise<unknown> => page.waitForFunction(([s, x]) => document.querySelector(s!)?.textContent === x, [sel, v], WAIT);

    await train(['--loss', 'contrastive', '--epochs', '1', '--train-pairs', '2000', '--snapshot-points', '200', '--seed', '0', '--out', runDir]);
    const first = result();
    // runs: the run appears, finished after its one epoch (result.json is written last: once its
    // MAP@R shows, the table has the whole run)
    await waitAttr(`${row} td[data-col=mapAtR]`, 'data-value', String(first.evaluation.retrieval.mapAtR));
    await waitText(`${row} td[data-col=epoch]`, '1/1');
    assert.equal(await textOf(page, `${row} td[data-col=status]`), 'finished');
    // distances: epoch 1
    await page.click('#tabs button[data-tab=distances]');
    await waitAttr(chart, 'data-epoch', '1');
    assert.equal(await attrOf(page, chart, 'data-pos'), lines<EpochDistances>('distances.jsonl')[0]!.pos.counts.join(','));
    // embedding: the run offered, its slider through epoch 1 (epoch 0: before training)
    await page.click('#tabs button[data-tab=embedding]');
    await page.waitForSelector(map, WAIT);
    const options = await page.locator('select[aria-label="left map"] option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value));
    assert.deepEqual(options, [`run:${RUN}`], 'the run is offered, and only it');
    await waitAttr(embedSlider, 'max', '1');

    // resumed to three epochs while the embedding view is shown
    await train(['--resume', runDir, '--epochs', String(EPOCHS)]);
    const log = lines<LogLine>('log.jsonl');
    const dist = lines<EpochDistances>('distances.jsonl');
    assert.deepEqual(log.map((l) => l.epoch), [1, 2, 3]);
    assert.deepEqual(dist.map((l) => l.epoch), [1, 2, 3]);
    const last = log.at(-1)!;
    const lastDist = dist.at(-1)!;
    const { mapAtR } = result().evaluation.retrieval;
    const pairAcc = result().evaluation.pairs.accuracy;

    // ---- embedding: the slider grows to epoch 3, the map laid out there ----------------------
    await waitAttr(embedSlider, 'max', String(EPOCHS));
    await page.locator(embedSlider).fill(String(EPOCHS));
    await page.waitForSelector(`${map}[data-epoch="${EPOCHS}"]`, WAIT);
    assert.equal(await textOf(page, '#view-embedding [data-testid=epoch]'), `epoch ${EPOCHS}`);

    // ---- distances: the slider follows to the last epoch, the counts of distances.jsonl -----
    await page.click('#tabs button[data-tab=distances]');
    await waitAttr(chart, 'data-epoch', String(EPOCHS));
    assert.equal(await page.locator(chart).count(), 1, 'one chart: one run');
    assert.equal(await attrOf(page, chart, 'data-loss'), 'contrastive (margin=1)');
    assert.equal(await attrOf(page, slider, 'max'), String(EPOCHS - 1), 'a slider step per epoch of distances.jsonl');
    assert.equal(await page.locator(slider).inputValue(), String(EPOCHS - 1), 'the slider at the last epoch');
    assert.equal(await textOf(page, '#view-distances [data-testid=epoch-label]'), `${EPOCHS} (${EPOCHS} of ${EPOCHS})`);
    assert.equal(await attrOf(page, chart, 'data-pos'), lastDist.pos.counts.join(','));
    assert.equal(await attrOf(page, chart, 'data-neg'), lastDist.neg.counts.join(','));
    assert.equal(await attrOf(page, chart, 'data-pos-over'), String(lastDist.pos.over));
    assert.equal(await attrOf(page, chart, 'data-neg-over'), String(lastDist.neg.over));
    assert.match((await textOf(page, `${chart} .note`)) ?? '', new RegExp(`^epoch ${EPOCHS}: positives mean ${lastDist.pos.mean!.toFixed(3)} \\(${lastDist.pos.n}\\), negatives mean ${lastDist.neg.mean!.toFixed(3)} \\(${lastDist.neg.n}\\)`));
    // an earlier epoch on the slider: its own line of the file
    await page.locator(slider).fill('1');
    await waitAttr(chart, 'data-epoch', '2');
    assert.equal(await attrOf(page, chart, 'data-pos'), dist[1]!.pos.counts.join(','));
    assert.equal(await attrOf(page, chart, 'data-neg'), dist[1]!.neg.counts.join(','));

    // ---- runs: the last epoch, finished, with log.jsonl's and result.json's numbers ----------
    await page.click('#tabs button[data-tab=runs]');
    await waitAttr(`${row} td[data-col=mapAtR]`, 'data-value', String(mapAtR));
    await waitText(`${row} td[data-col=epoch]`, `${EPOCHS}/${EPOCHS}`);
    assert.equal(await textOf(page, `${row} td[data-col=status]`), 'finished');
    assert.equal(await textOf(page, `${row} td[data-col=mapAtR]`), (100 * mapAtR).toFixed(2));
    assert.equal(await attrOf(page, `${row} td[data-col=pairAccuracy]`, 'data-value'), String(pairAcc));
    assert.equal(await textOf(page, `${row} td[data-col=pairAccuracy]`), (100 * pairAcc).toFixed(2));
    assert.equal(await attrOf(page, `${row} td[data-col=testAccuracy]`, 'data-value'), String(last.testAccuracy), "log.jsonl's last test accuracy");
    assert.equal(await textOf(page, `${row} td[data-col=testAccuracy]`), (100 * last.testAccuracy).toFixed(2));
    assert.equal(await textOf(page, `${row} td[data-col=lastLoss]`), last.loss.toFixed(4));
    assert.equal(await textOf(page, `${row} td[data-col=label]`), 'contrastive (margin=1)');
    // the epoch counts the cell showed: 1/1, then up (never down) to 3/3; which of those in
    // between showed depends on timing
    const seen = await page.evaluate(() => window.__epochsSeen ?? []);
    t.diagnostic(`epoch cells shown: ${seen.join(' ')}`);
    assert.ok(seen.includes('1/1'), `the first training shown: ${seen.join(' ')}`);
    assert.equal(seen.at(-1), `${EPOCHS}/${EPOCHS}`);
    const done = seen.map((s) => Number(/^(\d+)\/\d+$/.exec(s)?.[1]));
    assert.ok(done.every((c, i) => Number.isInteger(c) && (i === 0 || c >= done[i - 1]!)), `epochs shown in order: ${seen.join(' ')}`);

    assert.equal(await page.evaluate(() => window.__marker), 42, 'no reload');
    assert.deepEqual(errors, [], 'no console errors');
    assert.deepEqual(outside, [], 'no request outside the server');
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await context.close();
    await server.close();
  }
});
