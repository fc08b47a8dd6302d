/**
 * The embedding explorer through training, in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): two runs that stored their embeddings every epoch side by side, an epoch
 * slider that moves both maps, play that runs them to the last epoch, and a click that lists
 * the 10 nearest images in the full embedding space, as a brute-force loop over the stored
 * values finds them, with their digits. No console error, no request outside the server.
 * SIAMESE_SERVE_SHOTS=DIR keeps a PNG of the view (embedding-epochs.png).
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { chromium } from 'playwright-core';
import { type Served, startServer } from '../../src/serve/server.ts';
import { EMBEDDINGS_FILE, encodeRecord } from '../../src/train/epochEmbeddings.ts';
import { appendEpoch, ensureWebBuilt, rawGet, writeManifest } from './helpers.ts';
import { bruteNeighbours, type SnapshotFixture, writeSnapshots } from './snapshotFixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const WAIT = { timeout: 60_000 };
/** the page's map: a SIZE x SIZE square, PAD inside each edge (src/web/embedding.ts) */
const SIZE = 440;
const PAD = 12;
const ROWS = 300;
const DIM = 16;

interface El {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const window: { __marker?: number };
declare const document: { querySelector(sel: string): El | null; querySelectorAll(sel: string): Iterable<El>; body: { dataset: Record<string, string | undefined> } };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('serve page: two runs through training, epoch slider, play, neighbours in the embedding space', { timeout: 300_000 }, async () => {
  if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium)`);
  ensureWebBuilt();
  const base = mkdtempSync(join(tmpdir(), 'siamese-serve-embed-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(base, profile);
  const root = join(base, 'runs');
  const fx: Record<string, SnapshotFixture> = {};
  for (const [name, loss, seed] of [['contrastive-seed0', 'contrastive', 0], ['yukawa-seed0', 'yukawa', 1]] as const) {
    writeManifest(join(root, name), { loss, params: {}, seed: 0, epochs: 4, status: 'running', epochsDone: 3 });
    fx[name] = writeSnapshots(join(root, name), { rows: ROWS, dim: DIM, epochs: [0, 1, 2, 3], seed: 10 + seed, centres: 0.5 });
    for (const e of [1, 2, 3]) appendEpoch(join(root, name), e);
  }
  const served: Served = await startServer({ dirs: [root], port: 0, pollMs: 200 });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const outside: string[] = [];
  const errors: string[] = [];
  try {
    const origin = served.url.replace(/\/$/, '');
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (u === origin || u.startsWith(`${origin}/`) || u.startsWith('data:')) return route.continue();
      outside.push(u);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${served.url}#embedding`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset['ready'] === '1', undefined, WAIT);

    // two runs, one per loss, laid out at their first epoch
    const left = page.locator('canvas[data-source="run:0:contrastive-seed0"]');
    const right = page.locator('canvas[data-source="run:0:yukawa-seed0"]');
    await page.waitForSelector('canvas[data-source="run:0:contrastive-seed0"][data-epoch="0"]', WAIT);
    await page.waitForSelector('canvas[data-source="run:0:yukawa-seed0"][data-epoch="0"]', WAIT);
    const slider = page.locator('input[aria-label=epoch]');
    assert.equal(await slider.getAttribute('min'), '0');
    assert.equal(await slider.getAttribute('max'), '3');
    assert.equal(await page.locator('[data-testid=play]').count(), 1);
    // the selects offer every run
    const options = await page.locator('select[aria-label="left map"] option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value));
    assert.deepEqual(options.sort(), ['run:0:contrastive-seed0', 'run:0:yukawa-seed0']);

    // the slider moves both maps to epoch 2
    await slider.fill('2');
    await page.waitForSelector('canvas[data-source="run:0:contrastive-seed0"][data-epoch="2"]', WAIT);
    await page.waitForSelector('canvas[data-source="run:0:yukawa-seed0"][data-epoch="2"]', WAIT);
    assert.equal(await page.textContent('[data-testid=epoch]'), 'epoch 2');

    // click a point of the left map: where the page draws it, from the server's layout of epoch 2
    const layout = JSON.parse((await rawGet(served.port, `/api/layout?run=${encodeURIComponent('0:contrastive-seed0')}&epoch=2`)).body) as { points: number[] };
    const p = layout.points;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < ROWS; i++) {
      x0 = Math.min(x0, p[2 * i]!); x1 = Math.max(x1, p[2 * i]!);
      y0 = Math.min(y0, p[2 * i + 1]!); y1 = Math.max(y1, p[2 * i + 1]!);
    }
    const scale = (SIZE - 2 * PAD) / Math.max(x1 - x0, y1 - y0);
    const sx = (i: number): number => PAD + (p[2 * i]! - x0) * scale;
    const sy = (i: number): number => PAD + (p[2 * i + 1]! - y0) * scale;
    // the point with the most room around it: a click on it cannot hit another
    let target = 0, room = -1;
    for (let i = 0; i < ROWS; i++) {
      let m = Infinity;
      for (let j = 0; j < ROWS; j++) if (j !== i) m = Math.min(m, Math.hypot(sx(i) - sx(j), sy(i) - sy(j)));
      if (m > room) { room = m; target = i; }
    }
    const box = (await left.boundingBox())!;
    await page.mouse.click(box.x + sx(target), box.y + sy(target));
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=neighbours][data-kind=embedding] li')].length === 10, undefined, WAIT);
    const heading = (await page.textContent('[data-testid=selection] h2')) ?? '';
    const stored = fx['contrastive-seed0']!;
    assert.match(heading, new RegExp(`^Test image #${stored.indices[target]} \\(class ${stored.labels[target]}\\): 10 nearest in the embedding space \\(.*epoch 2\\)$`));
    const listed = await page.evaluate(() => [...document.querySelectorAll('[data-testid=neighbours] li')].map((e) => [Number(e.getAttribute('data-index')), Number(e.getAttribute('data-distance'))]));
    const want = bruteNeighbours(stored.stored.get(2)!, ROWS, DIM, target, 10);
    assert.deepEqual(listed.map(([id]) => id), want.map((w) => stored.indices[w.i]), 'the 10 nearest by brute force over the stored epoch-2 embeddings');
    listed.forEach(([, d], k) => assert.ok(Math.abs(d! - want[k]!.d) < 1e-4, `distance ${d} vs ${want[k]!.d}`));
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=neighbours] li canvas.thumb')].length === 10, undefined, WAIT);

    // play runs both maps to the last epoch, and the neighbours follow the epoch shown
    await page.click('[data-testid=play]');
    await page.waitForSelector('canvas[data-source="run:0:contrastive-seed0"][data-epoch="3"]', WAIT);
    await page.waitForSelector('canvas[data-source="run:0:yukawa-seed0"][data-epoch="3"]', WAIT);
    await page.waitForFunction(() => document.querySelector('[data-testid=play]')?.textContent === '▶ play', undefined, WAIT);
    assert.equal(await slider.inputValue(), '3');
    await page.waitForFunction(() => /epoch 3\)$/.test(document.querySelector('[data-testid=selection] h2')?.textContent ?? ''), undefined, WAIT);
    const at3 = await page.evaluate(() => [...document.querySelectorAll('[data-testid=neighbours] li')].map((e) => Number(e.getAttribute('data-index'))));
    assert.deepEqual(at3, bruteNeighbours(stored.stored.get(3)!, ROWS, DIM, target, 10).map((w) => stored.indices[w.i]));
    assert.ok(await right.isVisible());

    // training writes epoch 4 (its embeddings, then its log line): the slider reaches it without a reload
    await page.evaluate(() => (window.__marker = 42));
    const run = join(root, 'contrastive-seed0');
    appendFileSync(join(run, EMBEDDINGS_FILE), encodeRecord(4, stored.stored.get(3)!.map((v) => v * 0.9), ROWS, DIM));
    appendEpoch(run, 4);
    await page.waitForFunction(() => document.querySelector('input[aria-label=epoch]')?.getAttribute('max') === '4', undefined, WAIT);
    assert.equal(await page.evaluate(() => window.__marker), 42, 'no reload');
    await slider.fill('4');
    await page.waitForSelector('canvas[data-source="run:0:contrastive-seed0"][data-epoch="4"]', WAIT);
    // the other run has no epoch 4 yet: it stays at its last one
    assert.equal(await right.getAttribute('data-epoch'), '3');

    const shots = process.env['SIAMESE_SERVE_SHOTS'];
    if (shots) await page.screenshot({ path: join(shots, 'embedding-epochs.png'), fullPage: true });

    assert.deepEqual(errors, [], 'no console errors');
    assert.deepEqual(outside, [], 'no request outside the server');
  } finally {
    await context.close();
    await served.close();
  }
});
