import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import {
  accuracyChart,
  distanceHistogramChart,
  farthestPointSample,
  learningCurveChart,
  lossColors,
  lossShapeChart,
  polarChart,
  tsneChart,
} from '../../src/viz/charts.ts';
import { crc32, encodePng, pngDataUri } from '../../src/viz/png.ts';
import { renderVegaLite, svgToPixels, svgToPng, type VegaLiteSpec } from '../../src/viz/render.ts';
import { testPairClasses } from '../../src/viz/report.ts';
import { CLASSES, PAIRS_PER_KIND, PER_CLASS, syntheticResults, syntheticTestSplit } from '../fixtures/compareResults.ts';

const results = syntheticResults({ nastyLabel: true });
const split = syntheticTestSplit();
// the long label as vega writes it into SVG text (XML-escaped)
const NASTY_SVG = 'yukawa &lt;b&gt;κ=10&lt;/b&gt; &amp; "p|3" with a long label that must not be cut';

/** Every drawn text line: single-line <text> elements and the <tspan> lines of multi-line ones. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<(text|tspan)[^>]*>([^<]*)<\/\1>/g)].map((m) => m[2]!);
}

function isPng(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 8)).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describe('png encoder', () => {
  it('computes the standard CRC-32 check value', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  });

  it('writes a PNG whose pixel data inflates back to the filtered rows', () => {
    const px = Uint8Array.from({ length: 6 }, (_, i) => i * 40);
    const png = encodePng(px, 3, 2, 'gray');
    assert.ok(isPng(png));
    // IHDR: width 3, height 2, depth 8, colour type 0
    const view = new DataView(png.buffer, png.byteOffset);
    assert.equal(view.getUint32(16), 3);
    assert.equal(view.getUint32(20), 2);
    assert.equal(png[24], 8);
    assert.equal(png[25], 0);
    const idatLen = view.getUint32(33);
    assert.equal(Buffer.from(png.subarray(37, 41)).toString('latin1'), 'IDAT');
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    assert.deepEqual([...raw], [0, 0, 40, 80, 0, 120, 160, 200]);
    assert.throws(() => encodePng(px, 4, 2, 'gray'), /needs 8 bytes/);
  });

  it('produces images resvg draws (an RGBA data URI inside an SVG)', () => {
    const red = new Uint8Array(4 * 4 * 4);
    for (let i = 0; i < 16; i++) red.set([255, 0, 0, 255], 4 * i);
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="8" height="8"><image xlink:href="${pngDataUri(encodePng(red, 4, 4, 'rgba'))}" width="8" height="8"/></svg>`;
    const { rgba, width } = svgToPixels(svg, { scale: 1 });
    const c = 4 * (4 * width + 4);
    assert.deepEqual([...rgba.subarray(c, c + 3)], [255, 0, 0]);
  });
});

describe('text rendering', () => {
  it('draws chart text with the bundled font (dark pixels where the title is, none without it)', async () => {
    const base = {
      width: 200,
      height: 80,
      data: { values: [{ a: 1, b: 1 }] },
      mark: 'point',
      encoding: { x: { field: 'a', type: 'quantitative', axis: null }, y: { field: 'b', type: 'quantitative', axis: null } },
      config: { view: { stroke: null }, title: { fontSize: 20 } },
    };
    const dark = async (spec: VegaLiteSpec, rows: number): Promise<number> => {
      const { rgba, width } = svgToPixels(await renderVegaLite(spec), { scale: 1 });
      let n = 0;
      for (let i = 0; i < rows * width; i++) if (rgba[4 * i]! < 100 && rgba[4 * i + 1]! < 100 && rgba[4 * i + 2]! < 100) n++;
      return n;
    };
    const withTitle = await dark({ ...base, title: 'Pair distances WWW' }, 30);
    const without = await dark({ ...base, title: { text: 'Pair distances WWW', color: 'white' } }, 30);
    assert.ok(withTitle > 150, `expected title ink in the top rows, found ${withTitle} dark pixels`);
    assert.equal(without, 0);
  });
});

describe('charts', () => {
  it('colours every loss the same way in every chart', () => {
    const c = lossColors(results);
    assert.deepEqual(c.domain, ['contrastive (m = 1)', 'yukawa <b>κ=10</b> & "p|3" with a long label that must not be cut']);
    for (const spec of [distanceHistogramChart(results, 'pos'), learningCurveChart(results), accuracyChart(results)]) {
      const json = JSON.stringify(spec);
      assert.ok(json.includes(JSON.stringify(c)), 'the loss colour scale is shared');
    }
  });

  it('histograms of positive and negative distances render with titles, axis units and full legend labels', async () => {
    for (const kind of ['pos', 'neg'] as const) {
      const spec = distanceHistogramChart(results, kind);
      assert.ok(JSON.stringify(spec).includes('"stack":null'), 'the filled areas overlap instead of stacking');
      const svg = await renderVegaLite(spec);
      const t = texts(svg);
      assert.ok(t.some((s) => s.startsWith(kind === 'pos' ? 'Positive (same-digit) pairs' : 'Negative (different-digit) pairs') && s.includes('seed 0')));
      assert.ok(t.includes('pair distance D (embedding units)'));
      assert.ok(t.includes('contrastive (m = 1)'));
      assert.ok(t.includes(NASTY_SVG), 'the long legend label is not truncated');
      assert.ok(isPng(svgToPng(svg, { scale: 1 })));
    }
  });

  it('loss shapes: both terms, every loss, clipped singular term noted', async () => {
    const svg = await renderVegaLite(lossShapeChart(results));
    const t = texts(svg);
    assert.ok(t.includes('L_pos(D): same-digit pairs (Y = 1)'));
    assert.ok(t.includes('L_neg(D): different-digit pairs (Y = 0)'));
    assert.ok(t.some((s) => s.startsWith('y axis cut at')));
    assert.ok(t.includes(NASTY_SVG));
    // a reading note compare appends to a shape's label goes to the subtitle, the legend keeps the loss's label
    const noted = structuredClone(results);
    noted.lossShapes[0]!.label += ' [pos: vs D_ap at D_an = 1]';
    const t2 = texts(await renderVegaLite(lossShapeChart(noted)));
    assert.ok(t2.includes('contrastive (m = 1): [pos: vs D_ap at D_an = 1]'));
    assert.ok(t2.includes('contrastive (m = 1)'));
  });

  it('learning curves: three panels with mean and band', async () => {
    const svg = await renderVegaLite(learningCurveChart(results));
    const t = texts(svg);
    for (const s of ['Learning curves: mean over 3 seeds per loss', 'Training loss (log scale)', 'Train accuracy (dropout on)', 'Test accuracy', 'epoch', 'pair accuracy (%)']) {
      assert.ok(t.includes(s), s);
    }
    assert.ok(t.some((s) => s.startsWith('band: 95% confidence interval')));
  });

  it('t-SNE: a panel per stage, digit legend, thumbnails as data-URI PNGs', async () => {
    const spec = tsneChart(results, { images: split, thumbnails: 12 });
    const svg = await renderVegaLite(spec);
    const t = texts(svg);
    for (const s of ['before training', 'after contrastive (m = 1)', 'after Yukawa (κ = 10, p = 3)', 'digit']) assert.ok(t.includes(s), s);
    for (let d = 0; d < 10; d++) assert.ok(t.includes(String(d)), `legend entry ${d}`);
    const images = svg.match(/<image [^>]*href="data:image\/png;base64,/g) ?? [];
    assert.equal(images.length, 3 * 12);
    const bare = await renderVegaLite(tsneChart(results));
    assert.ok(!bare.includes('<image'));
    assert.ok(texts(bare).some((s) => s.includes('no thumbnails')));
  });

  it('farthest-point sampling spreads out and stops at duplicates', () => {
    // a 5x5 grid plus many copies of its centre
    const xy: number[] = [];
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) xy.push(i, j);
    for (let k = 0; k < 50; k++) xy.push(2, 2);
    const pick = farthestPointSample(xy, 4);
    const corners = pick.map((i) => `${xy[2 * i]},${xy[2 * i + 1]}`).sort();
    assert.deepEqual(corners, ['0,0', '0,4', '4,0', '4,4']);
    assert.equal(new Set(farthestPointSample(xy, 200)).size, 25);
  });

  it('polar plot: a sector per class, both pair kinds, rings and panels per loss', async () => {
    const classes = testPairClasses(split.labels, 0, 0);
    assert.equal(classes.pos.length, PAIRS_PER_KIND);
    const svg = await renderVegaLite(polarChart(results, classes));
    const t = texts(svg);
    assert.ok(t.some((s) => s.startsWith('Polar view of test pair distances, seed 0')));
    for (const s of ['positive (same digit)', 'negative (different digits)', 'D = 0.5 (threshold)', 'contrastive (m = 1)']) assert.ok(t.includes(s), s);
    for (let d = 0; d < CLASSES; d++) assert.ok(t.includes(String(d)));
    assert.throws(() => polarChart(results, { pos: [0], neg: [0] }), /distances but only 1 class\b/);
  });

  it('polar plot under a class split: one sector per test class, labelled with its id (5 to 9), none for the training classes', async () => {
    const classes = testPairClasses(split.labels, 0, 0, 'classes');
    assert.equal(classes.pos.length, 5 * (PER_CLASS - 1));
    const r = structuredClone(results);
    for (const run of r.runs) run.distances = { pos: run.distances.pos.slice(0, classes.pos.length), neg: run.distances.neg.slice(0, classes.neg.length) };
    const t = texts(await renderVegaLite(polarChart(r, classes)));
    for (let d = 5; d < 10; d++) assert.ok(t.includes(String(d)), `sector ${d}`);
    for (let d = 0; d < 5; d++) assert.ok(!t.includes(String(d)), `no sector ${d}`);
  });

  it('test pair classes follow the pair recipe: every class equally often, positives within a class', () => {
    const c = testPairClasses(split.labels, 3, 0);
    for (const kind of ['pos', 'neg'] as const) {
      const counts = new Array<number>(CLASSES).fill(0);
      for (let i = 0; i < c[kind].length; i++) counts[c[kind][i]!]!++;
      assert.deepEqual(counts, new Array<number>(CLASSES).fill(PER_CLASS - 1));
    }
    assert.notDeepEqual(c.pos, testPairClasses(split.labels, 4, 0).pos, 'the order depends on the pair seed');
    assert.equal(testPairClasses(split.labels, 3, 50).pos.length + testPairClasses(split.labels, 3, 50).neg.length, 50);
  });

  it('accuracy per loss: CI bars, seed ticks, reference marks of the seed and the re-implementation', async () => {
    const svg = await renderVegaLite(accuracyChart(results));
    const t = texts(svg);
    assert.ok(t.includes('Test pair accuracy per loss, 3 seeds'));
    assert.ok(t.includes("seed's README (1 run, 20 epochs)"));
    assert.ok(t.includes('independent re-implementation (mean ± spread, 3 seeds, 20 epochs)'));
    assert.ok(t.includes('test pair accuracy (%, D &lt; threshold)'));
    assert.ok(t.some((s) => /^\d+\.\d\d ± \d+\.\d\d$/.test(s)), 'mean ± CI labels');
    const map = texts(await renderVegaLite(accuracyChart(results, { measure: 'mapAtR' })));
    assert.ok(map.includes('Retrieval MAP@R per loss, 3 seeds'));
  });
});
