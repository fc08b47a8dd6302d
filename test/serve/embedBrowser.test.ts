/**
 * The embedding explorer through training, in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): two runs that stored their embeddings every epoch side by side, an epoch
 * slider that moves both maps, play that runs them to the last epoch, and a click that lists
 * the 10 nearest images in the full embedding space, as a brute-force loop over the stored
 * values finds them, with their digits. The left map zoomed (wheel) and panned: clicks, hover
 * and a box hit the points where the zoom draws them, through the glide to later epochs, and
 * the right map keeps its own (whole) view; a double-click shows the whole map and leaves the
 * selection as it was. No console error, no request outside the server.
 * SIAMESE_SERVE_SHOTS=DIR keeps a PNG of the view (embedding-epochs.png).
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { type Served, startServer } from '../../src/serve/server.ts';
import { EMBEDDINGS_FILE, encodeRecord } from '../../src/train/epochEmbeddings.ts';
import { CHROMIUM, openBrowser } from './browser.ts';
import { appendEpoch, ensureWebBuilt, rawGet, writeManifest } from './helpers.ts';
import { bruteNeighbours, type SnapshotFixture, writeSnapshots } from './snapshotFixture.ts';

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

/** Where the page draws each row of a layout, unzoomed: its bounding box fitted into the square. */
function fit(p: number[]): { x: number[]; y: number[] } {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < ROWS; i++) {
    x0 = Math.min(x0, p[2 * i]!); x1 = Math.max(x1, p[2 * i]!);
    y0 = Math.min(y0, p[2 * i + 1]!); y1 = Math.max(y1, p[2 * i + 1]!);
  }
  const scale = (SIZE - 2 * PAD) / Math.max(x1 - x0, y1 - y0);
  return { x: Array.from({ length: ROWS }, (_, i) => PAD + (p[2 * i]! - x0) * scale), y: Array.from({ length: ROWS }, (_, i) => PAD + (p[2 * i + 1]! - y0) * scale) };
}

/** The row with the most room around it (at least `within` px inside the canvas): a pointer on it cannot hit another. */
function roomiest(x: number[], y: number[], within = 10): { row: number; room: number } {
  let row = -1, room = -1;
  for (let i = 0; i < x.length; i++) {
    if (x[i]! < within || x[i]! > SIZE - within || y[i]! < within || y[i]! > SIZE - within) continue;
    let m = Infinity;
    for (let j = 0; j < x.length; j++) if (j !== i) m = Math.min(m, Math.hypot(x[i]! - x[j]!, y[i]! - y[j]!));
    if (m > room) { room = m; row = i; }
  }
  return { row, room };
}

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
  const { context, page, errors, outside } = await openBrowser(profile, { viewport: { width: 1280, height: 900 }, origin: served.url });
  try {
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

    // zoom the left map (wheel) about a point off the one clicked next, then pan it (shift-drag)
    const layoutAt = async (e: number): Promise<{ x: number[]; y: number[] }> =>
      fit((JSON.parse((await rawGet(served.port, `/api/layout?run=${encodeURIComponent('0:contrastive-seed0')}&epoch=${e}`)).body) as { points: number[] }).points);
    const { x: lx, y: ly } = await layoutAt(2);
    const target = roomiest(lx, ly, 0).row;
    const box = (await left.boundingBox())!;
    const [wx, wy] = [Math.round(lx[target]! + 0.1 * (lx[target]! - SIZE / 2)), Math.round(ly[target]! + 0.1 * (ly[target]! - SIZE / 2))];
    await page.mouse.move(box.x + wx, box.y + wy);
    // (a zoom of e^0.4: the later epochs' layouts, gathered elsewhere, still have points in view)
    await page.mouse.wheel(0, -120);
    await page.waitForFunction(() => document.querySelector('canvas[data-source="run:0:contrastive-seed0"]')?.getAttribute('data-zoom') != null, undefined, WAIT);
    const zoomOf = async (): Promise<number[]> => ((await left.getAttribute('data-zoom')) ?? '').split(',').map(Number);
    const [k, tx0, ty0] = await zoomOf();
    assert.ok(Math.abs(k! - Math.exp(0.4)) < 1e-9, `zoomed in by e^0.4 (k = ${k})`);
    // (the map's corner may sit between pixels: the pointer is up to half a pixel off, times k - 1)
    const off = 0.5 * (k! - 1) + 1e-6;
    assert.ok(Math.abs(wx * (1 - k!) - tx0!) <= off && Math.abs(wy * (1 - k!) - ty0!) <= off, `zoom about the pointer (${wx}, ${wy}): ${[k, tx0, ty0]}`);
    await page.keyboard.down('Shift');
    await page.mouse.down();
    await page.mouse.move(box.x + wx - 10, box.y + wy + 6, { steps: 3 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    const [k1, tx, ty] = await zoomOf();
    assert.deepEqual([k1, Math.round(tx! - tx0!), Math.round(ty! - ty0!)], [k, -10, 6], 'shift-drag pans by the drag');
    assert.equal(await right.getAttribute('data-zoom'), null, 'the right map keeps its whole view');
    assert.equal(await page.textContent('[data-testid=selection]'), '', 'a pan selects nothing');
    const zx = (x: number): number => x * k! + tx!;
    const zy = (y: number): number => y * k! + ty!;
    assert.ok(zx(lx[target]!) > 0 && zx(lx[target]!) < SIZE && zy(ly[target]!) > 0 && zy(ly[target]!) < SIZE, 'the target is on the zoomed map');

    // click the point where the zoom draws it (from the server's layout of epoch 2)
    await page.mouse.click(box.x + zx(lx[target]!), box.y + zy(ly[target]!));
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

    // the zoom outlived the glide to epoch 3: hover names the point drawn under the pointer there
    assert.deepEqual(await zoomOf(), [k, tx, ty], 'the zoom is kept through the epochs');
    const at3z = await layoutAt(3);
    const zs3 = { x: at3z.x.map(zx), y: at3z.y.map(zy) };
    const h3 = roomiest(zs3.x, zs3.y);
    assert.ok(h3.row >= 0 && h3.room > 2, `a point with room on the zoomed epoch-3 map (${h3.room} px)`);
    await page.mouse.move(box.x + zs3.x[h3.row]!, box.y + zs3.y[h3.row]!);
    await page.waitForFunction(() => /^test image #\d+/.test(document.querySelector('#view-embedding .tip')?.textContent ?? ''), undefined, WAIT);
    const tipOf = async (): Promise<number> => Number(/^test image #(\d+)/.exec((await page.locator('#view-embedding .tip').first().textContent()) ?? '')?.[1]);
    assert.equal(await tipOf(), stored.indices[h3.row], 'hover at epoch 3, zoomed');

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

    // a box on the zoomed epoch-4 map selects the points the zoom draws inside it
    const at4 = await layoutAt(4);
    // a box about a point the zoom shows (the clusters are tight: a fixed box may hold none)
    const c4 = roomiest(at4.x.map(zx), at4.y.map(zy)).row;
    assert.ok(c4 >= 0, 'a point of epoch 4 in view');
    const clamp = (v: number): number => Math.min(SIZE - 3, Math.max(3, Math.round(v)));
    const [bx0, by0, bx1, by1] = [clamp(zx(at4.x[c4]!) - 70), clamp(zy(at4.y[c4]!) - 50), clamp(zx(at4.x[c4]!) + 60), clamp(zy(at4.y[c4]!) + 80)];
    const inBox = stored.indices.filter((_, i) => zx(at4.x[i]!) >= bx0 && zx(at4.x[i]!) <= bx1 && zy(at4.y[i]!) >= by0 && zy(at4.y[i]!) <= by1);
    assert.ok(inBox.length > 0 && inBox.length < ROWS, `the box holds some of the points (${inBox.length})`);
    await page.mouse.move(box.x + bx0, box.y + by0);
    await page.mouse.down();
    await page.mouse.move(box.x + (bx0 + bx1) / 2, box.y + (by0 + by1) / 2, { steps: 3 });
    await page.mouse.move(box.x + bx1, box.y + by1, { steps: 3 });
    await page.mouse.up();
    assert.equal(await page.textContent('[data-testid=selection] h2'), `${inBox.length} points selected`);
    const want4 = new Map<number, number>();
    for (const id of inBox) {
      const c = stored.labels[stored.indices.indexOf(id)]!;
      want4.set(c, (want4.get(c) ?? 0) + 1);
    }
    const composition = await page.evaluate(() => [...document.querySelectorAll('[data-testid=composition] li')].map((e) => e.textContent ?? ''));
    assert.deepEqual(
      composition.map((c) => /^class (\d+): (\d+)/.exec(c)!.slice(1).map(Number)).sort((a, b) => a[0]! - b[0]!),
      [...want4].sort((a, b) => a[0] - b[0]),
    );

    // double-click: the whole map again, where hover finds the points unzoomed; and nothing
    // else: its two clicks neither select nor clear (the box's selection stays)
    const selection = (): Promise<string> => page.evaluate(() => document.querySelector('[data-testid=selection]')?.textContent ?? '');
    const boxed = await selection();
    await page.mouse.dblclick(box.x + 5, box.y + 5);
    assert.equal(await left.getAttribute('data-zoom'), '1,0,0');
    assert.equal(await selection(), boxed, 'a double-click keeps the box selection');
    const h4 = roomiest(at4.x, at4.y);
    await page.mouse.move(box.x + at4.x[h4.row]!, box.y + at4.y[h4.row]!);
    await page.waitForFunction(() => /^test image #\d+/.test(document.querySelector('#view-embedding .tip')?.textContent ?? ''), undefined, WAIT);
    assert.equal(await tipOf(), stored.indices[h4.row], 'hover after the double-click');
    // a point selected (its 10 nearest listed), the map zoomed about it, a double-click in the
    // map's far corner: the whole map, and the same point and neighbours
    await page.mouse.click(box.x + at4.x[h4.row]!, box.y + at4.y[h4.row]!);
    await page.waitForFunction((id) => (document.querySelector('[data-testid=selection] h2')?.textContent ?? '').startsWith(`Test image #${id} `) && [...document.querySelectorAll('[data-testid=neighbours] li')].length === 10, stored.indices[h4.row], WAIT);
    const focused = await selection();
    await page.mouse.wheel(0, -120);
    await page.waitForFunction(() => document.querySelector('canvas[data-source="run:0:contrastive-seed0"]')?.getAttribute('data-zoom') !== '1,0,0', undefined, WAIT);
    const corner = at4.x[h4.row]! + at4.y[h4.row]! > SIZE ? 5 : SIZE - 5;
    await page.mouse.dblclick(box.x + corner, box.y + corner);
    assert.equal(await left.getAttribute('data-zoom'), '1,0,0');
    assert.equal(await selection(), focused, 'a double-click keeps the selected point and its neighbours');

    const shots = process.env['SIAMESE_SERVE_SHOTS'];
    if (shots) await page.screenshot({ path: join(shots, 'embedding-epochs.png'), fullPage: true });

    assert.deepEqual(errors, [], 'no console errors');
    assert.deepEqual(outside, [], 'no request outside the server');
  } finally {
    await context.close();
    await served.close();
  }
});
