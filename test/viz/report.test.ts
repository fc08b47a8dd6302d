import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { summaryText } from '../../src/cli/compare.ts';
import { reportCommand } from '../../src/cli/report.ts';
import { main } from '../../src/cli/main.ts';
import { DataError } from '../../src/errors.ts';
import { lossAccuracyAt } from '../../src/eval/accuracyAt.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { Training } from '../../src/train/trainer.ts';
import { distanceHistogramChart, learningCurveChart } from '../../src/viz/charts.ts';
import { writeExperimentReport } from '../../src/viz/experimentReport.ts';
import { isSweepResults, readCompareResults, readResults } from '../../src/viz/readResults.ts';
import { buildReport, type ReportFiles, testPairClasses } from '../../src/viz/report.ts';
import { syntheticResults, syntheticTestSplit } from '../fixtures/compareResults.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'siamese-report-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('buildReport', () => {
  let dir: string;
  let files: ReportFiles;
  let html: string;
  before(async () => {
    dir = tempDir();
    const results = syntheticResults({ nastyLabel: true });
    // compare keeps the first N distances of each kind in test-pair order: the polar plot copes
    for (const r of results.runs) r.distances = { pos: r.distances.pos.slice(0, 100), neg: r.distances.neg.slice(0, 90) };
    files = await buildReport(results, dir, { testSplit: syntheticTestSplit(), pngScale: 1 });
    html = readFileSync(files.html, 'utf8');
  });

  it('writes report.html, report.md and an SVG and a PNG per figure', () => {
    assert.equal(files.html, join(dir, 'report.html'));
    assert.equal(files.md, join(dir, 'report.md'));
    const names = ['accuracy', 'map-at-r', 'learning-curves', 'distances-positive', 'distances-negative', 'loss-shapes', 'tsne', 'polar'];
    assert.deepEqual(files.pictures, names.flatMap((n) => [join(dir, 'figures', `${n}.svg`), join(dir, 'figures', `${n}.png`)]));
    for (const p of files.pictures) assert.ok(existsSync(p), p);
    assert.deepEqual(files.notes, []);
  });

  it('report.html is one self-contained file: every picture inlined, nothing fetched', () => {
    const imgs = [...html.matchAll(/<img\b[^>]*>/g)].map((m) => m[0]);
    assert.equal(imgs.length, 8);
    for (const img of imgs) assert.match(img, /src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    assert.doesNotMatch(html, /<script|<link\b|<iframe|@import|url\(/i);
    // no address anywhere outside plain text: no attribute points at the network
    assert.doesNotMatch(html, /(src|href)\s*=\s*"(?!data:)/i);
    assert.doesNotMatch(html, /https?:\/\//);
    // the inlined SVGs reference nothing but data: URIs (xmlns declarations are names, not fetches)
    for (const img of imgs) {
      const svg = Buffer.from(/base64,([^"]+)"/.exec(img)![1]!, 'base64').toString('utf8');
      assert.ok(svg.startsWith('<svg'));
      for (const m of svg.matchAll(/(?:xlink:)?href="([^"]*)"/g)) assert.ok(m[1]!.startsWith('data:') || m[1]!.startsWith('#'), m[1]);
    }
    assert.match(html, /default-src 'none'/);
  });

  it('escapes every string from the results', () => {
    assert.ok(!html.includes('<b>κ=10</b>'));
    assert.ok(html.includes('yukawa &lt;b&gt;κ=10&lt;/b&gt; &amp; &quot;p|3&quot;'));
    const md = readFileSync(files.md, 'utf8');
    assert.ok(!md.includes('<b>'));
    assert.ok(md.includes('&lt;b>κ=10&lt;/b> & "p\\|3"'), 'pipes in labels do not break markdown tables');
  });

  it('states what was run, the results table, the comparisons and the seed\'s figures', () => {
    for (const s of [
      'What was run',
      'Y·D² + (1−Y)·max(m − D, 0)²',
      'Seeds: 0, 1, 2 (3)',
      'batch 128, optimizer rmsprop',
      'Synthetic CPU @ 2.0GHz',
      'wall time 1 h 2 min 3 s',
      'accuracy at D &lt; 0.5',
      'positive pairs, D &lt; 0.4 only',
      'Test pair distances, all pairs (unfiltered)',
      'MAP@R',
      'Paired comparisons',
      'Verdict: yukawa &gt; contrastive (p &lt; 0.001).',
      'paired t = 12.30, p &lt; 0.001)',
      'no significant difference',
      '97.37%',
      '98.10%',
      '97.34% ± 0.12',
      '98.05% ± 0.05',
      'not directly comparable: this study ran 4 epochs, the references 20',
    ]) {
      assert.ok(html.includes(s), s);
    }
  });

  it('report.md is plain markdown: "p < 0.001", no HTML escapes where markdown needs none', () => {
    const md = readFileSync(files.md, 'utf8');
    assert.ok(md.includes('paired t = 12.30, p < 0.001). Verdict: yukawa > contrastive (p < 0.001).'));
    assert.ok(md.includes('accuracy at D < 0.5'));
    assert.doesNotMatch(md, /p = &lt;|p = </);
    assert.doesNotMatch(md, /&lt;(?![a-z/!?])|&gt;/i);
  });

  it('report.md references figure files that exist next to it', () => {
    const md = readFileSync(files.md, 'utf8');
    const refs = [...md.matchAll(/\]\((figures\/[^)]+)\)/g)].map((m) => m[1]!);
    assert.equal(refs.length, 16);
    for (const r of refs) assert.ok(existsSync(join(dir, r)), r);
    assert.match(md, /^# siamese-lab: 2 losses compared on synthetic/);
    assert.match(md, /\n\| measure \| contrastive \(m = 1\) \(3 seeds\) \|/);
  });

  it('without the test split: no thumbnails, no polar plot, and notes saying why', async () => {
    const d = tempDir();
    // a rebuild removes the pictures of the earlier build it no longer draws, and only those
    const first = await buildReport(syntheticResults({ tsne: true, retrieval: false }), d, { testSplit: syntheticTestSplit(), pngScale: 1 });
    assert.ok(first.pictures.some((p) => p.includes('polar')));
    writeFileSync(join(d, 'figures', 'notes.txt'), 'mine');
    const r = await buildReport(syntheticResults({ tsne: true, retrieval: false }), d, { testSplit: null, pngScale: 1 });
    assert.ok(!r.pictures.some((p) => p.includes('polar')));
    const left = readdirSync(join(d, 'figures'));
    assert.ok(!left.some((f) => f.includes('polar')), left.join(' '));
    assert.deepEqual(left.filter((f) => f !== 'notes.txt').sort(), r.pictures.map((p) => basename(p)).sort());
    assert.ok(r.notes.some((n) => n.includes('no thumbnails')));
    assert.ok(r.notes.some((n) => n.startsWith('No polar plot')));
    const html = readFileSync(r.html, 'utf8');
    assert.ok(html.includes('No polar plot'));
    assert.ok(!html.includes('Retrieval on the test images'));
  });
});

describe("the seed's figures beside a study that measured something else", () => {
  it('say why they are not comparable: other data, unseen test classes, a slice of the train pairs, another network', async () => {
    const r = syntheticResults({ tsne: false, retrieval: false });
    r.spec.config.epochs = 20;
    r.spec.config.split = 'classes';
    r.spec.config.trainPairs = 2000;
    r.spec.config.base = 'cnn';
    const d = tempDir();
    const files = await buildReport(r, d, { testSplit: null, pngScale: 1 });
    const md = readFileSync(files.md, 'utf8');
    const row = md.split('\n').find((l) => l.startsWith('| contrastive (m = 1) | 97.37%'));
    assert.ok(row, 'the contrastive row beside the seed');
    for (const why of [
      "this study's data set is synthetic, the references' MNIST",
      'this study tests on classes it never trained on (--split classes), the references on the classes they trained on',
      'this study trained on the first 2000 train pairs, the references on all',
      "this study's base network is cnn, the references' the MLP",
    ]) {
      assert.ok(row.includes(why), why);
    }
    assert.match(row, /not directly comparable: /);
  });
});

describe('the seed\'s figures at another threshold', () => {
  it('say that this study\'s accuracy is at its own threshold, the references\' at D < 0.5', async () => {
    const r = syntheticResults({ tsne: false, retrieval: false });
    r.spec.config.epochs = 20;
    r.spec.config.threshold = 0.4;
    const d = tempDir();
    const files = await buildReport(r, d, { testSplit: null, pngScale: 1 });
    const md = readFileSync(files.md, 'utf8');
    const row = md.split('\n').find((l) => l.startsWith('| contrastive (m = 1) | 97.37%'));
    assert.ok(row, 'the contrastive row beside the seed');
    assert.match(row, /not directly comparable: .*this study's accuracy is at D < 0\.4, the references' at D < 0\.5\)/);
    assert.match(md, /_Test pair accuracy: the references at D < 0\.5, this study at D < 0\.4_/);
    assert.doesNotMatch(md, /_Test pair accuracy at D < 0\.5_/);
    assert.match(md, /Mean test pair accuracy \(D < 0\.4\) .*re-implementation's, both at D < 0\.5\./);
  });
});

describe('the seed\'s figures after other training settings', () => {
  it('say which settings differ from the references\': batch, optimizer or learning rate, embedding size, dropout', async () => {
    const rowOf = async (set: (c: Record<string, unknown>) => void): Promise<string> => {
      const r = syntheticResults({ tsne: false, retrieval: false });
      r.spec.config.epochs = 20;
      set(r.spec.config as unknown as Record<string, unknown>);
      const files = await buildReport(r, tempDir(), { testSplit: null, pngScale: 1 });
      return readFileSync(files.md, 'utf8').split('\n').find((l) => l.startsWith('| contrastive (m = 1) | 97.37%'))!;
    };
    const row = await rowOf((c) => Object.assign(c, { batchSize: 64, optimizer: 'adam', embeddingDim: 32, dropout: 0 }));
    for (const why of ["this study's batch is 64, the references' 128", "this study's optimizer is adam, the references' RMSprop", "this study's embedding has 32 dimensions, the references' 128", "this study's dropout is 0, the references' 0.1"]) {
      assert.ok(row.includes(why), why);
    }
    assert.ok((await rowOf((c) => Object.assign(c, { optimizer: 'RMSprop', learningRate: 0.01 }))).includes("this study's learning rate is 0.01, the references' 0.001"));
    // the seed's own settings: nothing said but the data set (synthetic here)
    const same = await rowOf((c) => Object.assign(c, { optimizer: 'rmsprop', learningRate: 0.001 }));
    assert.match(same, /\(not directly comparable: this study's data set is synthetic, the references' MNIST\) \|$/);
  });
});

describe('polar plot classes', () => {
  it('are those of the test pairs training evaluates, in the same order', async () => {
    await initBackend('wasm');
    const split = syntheticTestSplit();
    const dataset = { name: 'synthetic', classes: [...'0123456789'], train: split, test: split, source: 'test' };
    for (const [pairSeed, testPairs] of [[0, 0], [5, 77]] as const) {
      const t = new Training(dataset, resolveConfig({ pairSeed, testPairs, embeddingDim: 4, engine: 'tfjs' }));
      const want: { pos: number[]; neg: number[] } = { pos: [], neg: [] };
      for (let i = 0; i < t.testPairs.length; i++) want[t.testPairs.y[i] === 1 ? 'pos' : 'neg'].push(split.labels[t.testPairs.a[i]!]!);
      t.dispose();
      assert.deepEqual(testPairClasses(split.labels, pairSeed, testPairs), want);
    }
  });

  it('under a class split, are those of the test classes\' pairs the run evaluates, as the data set\'s class ids', async () => {
    await initBackend('wasm');
    const split = syntheticTestSplit();
    const dataset = { name: 'synthetic', classes: [...'0123456789'], train: split, test: split, source: 'test' };
    for (const [splitText, testPairs] of [['classes', 0], ['classes=1,3,8', 0], ['train=0,1,2;test=6,9', 15]] as const) {
      const t = new Training(dataset, resolveConfig({ pairSeed: 2, testPairs, split: splitText, embeddingDim: 4, engine: 'tfjs' }));
      // the oracle: the pairs the training scores, each pair's class mapped back to the data set's id
      const want: { pos: number[]; neg: number[] } = { pos: [], neg: [] };
      for (let i = 0; i < t.testPairs.length; i++) want[t.testPairs.y[i] === 1 ? 'pos' : 'neg'].push(t.split.testClasses[t.dataset.test.labels[t.testPairs.a[i]!]!]!);
      t.dispose();
      const got = testPairClasses(split.labels, 2, testPairs, splitText);
      assert.deepEqual(got, want, splitText);
      assert.ok([...got.pos, ...got.neg].every((c) => t.split.testClasses.includes(c)), `${splitText}: test classes only`);
    }
  });
});

describe('siamese report RUN_DIR', () => {
  it('rebuilds the report from results.json', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'results.json'), JSON.stringify(syntheticResults({ tsne: false }), null, 2));
    const files = await reportCommand({ runDir: dir, print: false, pngScale: 1 });
    assert.ok(existsSync(files.html) && existsSync(files.md));
    assert.ok(files.notes.some((n) => n.includes('no t-SNE')));
  });

  it('a results.json written before Holm\'s correction: the rebuilt report corrects its tests and calls nothing significant on a raw p', async () => {
    const dir = tempDir();
    const r = syntheticResults({ tsne: false }) as unknown as { comparisons: Record<string, unknown>[] };
    // the old shape: raw p only, verdicts judged on it; two tests of MAP@R (p 0.03 and 0.04), so Holm gives 0.06 to both
    const old = (measure: string, p: number, verdict: string) => ({ a: 'yukawa', b: 'contrastive', measure, meanDiff: 0.007, ci95: 0.006, t: 5.1, p, seeds: 3, verdict });
    r.comparisons = [
      old('accuracy', 0.04, 'yukawa > contrastive in accuracy by 0.70 points ± 0.60 (p = 0.04, 3 seeds)'),
      old('mapAtR', 0.03, 'yukawa > contrastive in MAP@R by 0.70 points ± 0.60 (p = 0.03, 3 seeds)'),
      { ...old('mapAtR', 0.04, 'yukawa > contrastive in MAP@R by 0.70 points ± 0.60 (p = 0.04, 3 seeds)'), b: 'contrastive' },
    ];
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    const files = await reportCommand({ runDir: dir, print: false, pngScale: 1 });
    const md = readFileSync(files.md, 'utf8');
    // the accuracy test is alone in its family: it stands; the MAP@R ones do not once corrected
    assert.match(md, /\| test pair accuracy \| \+0\.70 \| ± 0\.60 \| 5\.10 \| 0\.040 \| 0\.040 \| 3 \| Yukawa \(κ = 10, p = 3\) > contrastive \(m = 1\) in accuracy by 0\.70 points/);
    const mapRows = md.split('\n').filter((l) => l.startsWith('| Yukawa') && l.includes('| MAP@R |'));
    assert.equal(mapRows.length, 2);
    for (const row of mapRows) assert.match(row, /\| 0\.060 \| 3 \| no significant difference in MAP@R after correcting for multiple tests: .*Holm-adjusted p = 0\.06 over 2 tests/);
    assert.doesNotMatch(md, /> contrastive \(m = 1\) in MAP@R/);
  });

  it('a library reader of a results.json written before Holm (readCompareResults, readResults, then writeExperimentReport) gets the corrected tests', async () => {
    const dir = tempDir();
    const r = syntheticResults({ tsne: false }) as unknown as { comparisons: Record<string, unknown>[] };
    // the old shape: no pHolm, no tests; both MAP@R verdicts called significant on raw p 0.03 and 0.04
    const old = (p: number) => ({ a: 'yukawa', b: 'contrastive', measure: 'mapAtR', meanDiff: 0.007, ci95: 0.006, t: 5.1, p, seeds: 3, verdict: `yukawa > contrastive in MAP@R (p = ${p}, 3 seeds)` });
    r.comparisons = [old(0.03), old(0.04)];
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    // Holm by hand, a family of 2: sorted 0.03, 0.04 -> 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    const loaded = await readCompareResults(dir);
    assert.deepEqual(loaded.comparisons.map((c) => [c.p, c.tests]), [[0.03, 2], [0.04, 2]]);
    for (const c of loaded.comparisons) {
      assert.ok(Math.abs(c.pHolm! - 0.06) < 1e-15, `pHolm ${c.pHolm}`);
      assert.match(c.verdict, /^no significant difference in MAP@R after correcting for multiple tests: .*Holm-adjusted p = 0\.06 over 2 tests, 3 seeds\)$/);
    }
    const any = await readResults(dir);
    assert.ok(!isSweepResults(any));
    assert.deepEqual(any.comparisons, loaded.comparisons);
    const files = await writeExperimentReport(any, dir, { testSplit: null, pngScale: 1 });
    const md = readFileSync(files.md, 'utf8');
    assert.doesNotMatch(md, /> contrastive \(m = 1\) in MAP@R/);
    const mapRows = md.split('\n').filter((l) => l.startsWith('| Yukawa') && l.includes('| MAP@R |'));
    assert.equal(mapRows.length, 2);
    for (const row of mapRows) assert.match(row, /\| 0\.060 \| 3 \| no significant difference in MAP@R after correcting for multiple tests/);
  });

  it('NaN stored as null in results.json is shown as a dash, not a crash', async () => {
    const dir = tempDir();
    const r = syntheticResults({ seeds: [0], tsne: false, retrieval: false });
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r)); // one seed: ci95 and std are NaN -> null
    const loaded = await readCompareResults(dir);
    assert.equal(loaded.summary[0]!.accuracy.ci95, null);
    const files = await buildReport(loaded, dir, { testSplit: null, pngScale: 1 });
    assert.match(readFileSync(files.html, 'utf8'), /<td class="num">9\d\.\d\d%<\/td>/);
  });

  it('says clearly when results.json is missing or malformed', async () => {
    const dir = tempDir();
    await assert.rejects(readCompareResults(dir), (e: unknown) => e instanceof DataError && /results\.json: no such file/.test(e.message));
    writeFileSync(join(dir, 'results.json'), '{"tool": "siamese-lab", ');
    await assert.rejects(readCompareResults(dir), (e: unknown) => e instanceof DataError && /results\.json: not valid JSON/.test(e.message));
    const bad = JSON.parse(JSON.stringify(syntheticResults({ tsne: false }))) as Record<string, unknown>;
    (bad['summary'] as Record<string, unknown>[])[0]!['accuracy'] = 'high';
    writeFileSync(join(dir, 'results.json'), JSON.stringify(bad));
    await assert.rejects(readCompareResults(dir), (e: unknown) => e instanceof DataError && /summary\[0\]\.accuracy must be an object/.test(e.message));
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ tool: 'other' }));
    await assert.rejects(readCompareResults(dir), /"tool" must be "siamese-lab"/);
  });

  it('the CLI prints one line and exits 2 on a missing run directory', async () => {
    const dir = join(tempDir(), 'nope');
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string | Uint8Array) => {
      writes.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    const before = process.exitCode;
    try {
      await main(['report', dir]);
      assert.equal(process.exitCode, 2);
    } finally {
      process.stderr.write = orig;
      process.exitCode = before;
    }
    assert.deepEqual(writes, [`siamese: ${join(dir, 'results.json')}: no such file\n`]);
  });
});

describe('buildReport with a batch loss beside contrastive (old-style mixed accuracy test in the file)', () => {
  let md: string;
  let files: ReportFiles;
  let results: ReturnType<typeof syntheticResults>;
  before(async () => {
    const dir = tempDir();
    results = syntheticResults({ tsne: false });
    // the second loss becomes a batch loss: its pair accuracy is its best threshold's (evaluate.ts)
    results.spec.losses[1] = { ...results.spec.losses[1]!, loss: 'multi-similarity', params: {}, label: 'multi-similarity' };
    for (const r of results.runs) {
      if (r.lossId !== 'yukawa') continue;
      r.evaluation.pairs.thresholdFrom = 'best';
      r.evaluation.pairs.accuracy = r.evaluation.pairs.best.accuracy;
    }
    const s = results.summary[1]!;
    s.label = 'multi-similarity';
    s.accuracy = s.bestAccuracy;
    // accuracyAt left out, as in a file written before it: the report reads it from the runs
    for (const r of results.runs) r.distances = { pos: r.distances.pos.slice(0, 100), neg: r.distances.neg.slice(0, 90) };
    files = await buildReport(results, dir, { testSplit: syntheticTestSplit(), pngScale: 1 });
    md = readFileSync(files.md, 'utf8');
  });

  it('the D < 0.5 row shows the batch loss as n/a and contrastive at D < 0.5; the best-threshold row has both', () => {
    const cells = (name: string): string[] => md.split('\n').find((l) => l.startsWith(`| ${name} |`))!.split(' | ').slice(1).map((c) => c.replace(/ \|$/, ''));
    const c = results.summary[0]!;
    const pct = (x: { mean: number; ci95: number }): string => `${(100 * x.mean).toFixed(2)}% ± ${(100 * x.ci95).toFixed(2)}`;
    assert.deepEqual(cells('accuracy at D < 0.5'), [pct(c.accuracy), 'n/a: no distance scale, see best threshold']);
    assert.deepEqual(cells('best-threshold accuracy (in-sample, optimistic; every loss alike)'), [pct(c.bestAccuracy), pct(results.summary[1]!.bestAccuracy)]);
    assert.match(md, /multi-similarity: no absolute distance scale/);
  });

  it('the accuracy chart leaves the batch loss out and says so; a best-threshold chart has both', () => {
    const names = files.pictures.filter((p) => p.endsWith('.svg')).map((p) => basename(p, '.svg'));
    assert.deepEqual(names.slice(0, 3), ['accuracy', 'best-accuracy', 'map-at-r']);
    assert.match(md, /Not drawn: multi-similarity \(no absolute distance scale: see the best-threshold figure\)/);
    assert.match(md, /The test accuracy of multi-similarity is at each epoch's best threshold/);
    const svg = readFileSync(files.pictures.find((p) => p.endsWith('accuracy.svg') && basename(p) === 'accuracy.svg')!, 'utf8');
    // the loss axis names contrastive only (the colour legend keeps every loss)
    const axis = [...svg.matchAll(/<text text-anchor="end"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    assert.deepEqual(axis, ['contrastive (m = 1)']);
  });

  it("compare's closing table gives the D < 0.5 and the best-threshold accuracy their own columns", () => {
    const text = summaryText({ status: 'finished', out: '/x', results, failures: [], trained: [], reused: [] } as never);
    const pct = (x: { mean: number; ci95: number }): string => `${(100 * x.mean).toFixed(2)}% ± ${(100 * x.ci95).toFixed(2)}`;
    const row = (label: string): string[] => text.split('\n').find((l) => l.startsWith(label))!.slice(label.length).trim().split(/\s{2,}/);
    assert.match(text, /loss +runs +accuracy, D < 0\.5 \(95% CI\) +best threshold +MAP@R \(95% CI\)/);
    const [c, m] = results.summary;
    assert.deepEqual(row('contrastive (m = 1)'), ['3/3', pct(c!.accuracy), pct(c!.bestAccuracy), pct(c!.mapAtR!)]);
    assert.deepEqual(row('multi-similarity'), ['3/3', 'n/a', pct(m!.bestAccuracy), pct(m!.mapAtR!)]);
  });

  it('the distance histograms say the dashed D = 0.5 is not the batch loss\'s decision', () => {
    assert.match(md, /Left of the dashed threshold is correct for contrastive \(m = 1\)\. multi-similarity: no absolute distance scale, so the dashed D = 0\.5 is not where it calls a pair "same"/);
    const sub = (distanceHistogramChart(results, 'neg').title as { subtitle: string[] }).subtitle;
    assert.match(sub[0]!, /dashed line: decision threshold D = 0\.5 of losses with a distance scale \(pairs left of it are called "same"; multi-similarity: its own best threshold\)/);
  });

  it("a file's accuracy test between the two conventions is said to be not like for like", () => {
    assert.match(md, /yukawa > contrastive \(p < 0\.001\) \(not like for like: multi-similarity's accuracy is at its best threshold, contrastive \(m = 1\)'s at D < 0\.5\)/);
  });
});

describe('buildReport with batch losses only (no loss at D < threshold)', () => {
  let md: string;
  let results: ReturnType<typeof syntheticResults>;
  before(async () => {
    const dir = tempDir();
    results = syntheticResults({ tsne: false });
    // both losses become batch losses: their pair accuracy is their best threshold's (evaluate.ts)
    results.spec.losses = results.spec.losses.map((l, i) => ({ ...l, loss: i === 0 ? 'nt-xent' : 'supcon', params: {}, label: i === 0 ? 'nt-xent' : 'supcon' }));
    for (const r of results.runs) {
      r.evaluation.pairs.thresholdFrom = 'best';
      r.evaluation.pairs.accuracy = r.evaluation.pairs.best.accuracy;
    }
    results.summary.forEach((s, i) => {
      s.label = i === 0 ? 'nt-xent' : 'supcon';
      s.accuracy = s.bestAccuracy;
      s.accuracyAt = 'best';
    });
    for (const r of results.runs) r.distances = { pos: r.distances.pos.slice(0, 100), neg: r.distances.neg.slice(0, 90) };
    const files = await buildReport(results, dir, { testSplit: syntheticTestSplit(), pngScale: 1 });
    md = readFileSync(files.md, 'utf8');
  });

  it("compare's closing table says its accuracy is the best threshold's", () => {
    const text = summaryText({ status: 'finished', out: '/x', results, failures: [], trained: [], reused: [] } as never);
    assert.match(text, /loss +runs +accuracy, best threshold \(95% CI\) +MAP@R \(95% CI\)/);
  });

  it('the learning curves\' caption says every loss is at its best threshold, naming no other', () => {
    assert.match(md, /The test accuracy of every loss is at each epoch's best threshold \(no absolute distance scale\)\./);
    assert.doesNotMatch(md, /the others' at D < /);
  });

  it('the distance figures do not call the D = 0.5 line the batch losses\' decision', () => {
    for (const fig of ['Positive pair distances', 'Negative pair distances', 'Polar view of pair distances']) {
      const caption = md.split(`### ${fig}`)[1]!.split('\n').find((l) => l.startsWith('Distances of') || l.startsWith("The seed's polar plot"))!;
      assert.match(caption, /nt-xent, supcon: no absolute distance scale, so the dashed D = 0\.5 is not where they call a pair "same" \(their best threshold: see the table\)\./, fig);
    }
    const sub = (distanceHistogramChart(results, 'pos').title as { subtitle: string[] }).subtitle;
    assert.match(sub[0]!, /dashed line: decision threshold D = 0\.5 of losses with a distance scale \(none here: nt-xent, supcon call pairs "same" below their own best threshold\)/);
  });

  it("the learning curves' subtitle names no D < threshold", () => {
    const sub = (learningCurveChart(results).title as { subtitle: string[] }).subtitle;
    assert.deepEqual(sub.filter((l) => l.startsWith('pair accuracy')), ['pair accuracy: share of pairs matching the label at the best threshold (no absolute distance scale); losses are in their own units']);
    assert.ok(sub.every((l) => !l.includes('D <')), sub.join(' / '));
  });

  it("an accuracy test between two batch losses (a file's, as compare wrote it before) is named the best-threshold accuracy", () => {
    assert.ok(results.comparisons.some((c) => c.measure === 'accuracy'), 'the fixture holds an accuracy test');
    // (the fixture's test is yukawa − contrastive by id: supcon − nt-xent by label here)
    assert.doesNotMatch(md, /\| supcon \| nt-xent \| test pair accuracy \|/);
    assert.match(md, /\| supcon \| nt-xent \| best-threshold test pair accuracy \|/);
  });
});

describe('results.json readers and the accuracy convention (summary[].accuracyAt)', () => {
  it('an accuracyAt other than "threshold" or "best" is refused in one line naming the field', async () => {
    const dir = tempDir();
    const r = syntheticResults({ tsne: false }) as unknown as { summary: Record<string, unknown>[] };
    r.summary[1]!['accuracyAt'] = 'median';
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    await assert.rejects(readCompareResults(dir), (e: unknown) => e instanceof DataError && /summary\[1\]\.accuracyAt must be "threshold" or "best"/.test(e.message) && !e.message.includes('\n'));
  });

  it("a summary measure's clipped interval `ci` is read where present (null for NaN), refused in one line when not [low, high], and optional", async () => {
    const dir = tempDir();
    const r = syntheticResults({ tsne: false }) as unknown as { summary: Record<string, Record<string, unknown>>[] };
    assert.equal(r.summary[0]!['accuracy']!['ci'], undefined, 'the fixture is a file written before `ci`');
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    assert.equal((await readCompareResults(dir)).summary[0]!.accuracy.ci, undefined);
    r.summary[0]!['accuracy']!['ci'] = [0.7158759, 1];
    r.summary[0]!['eer']!['ci'] = [null, null];
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    const loaded = await readCompareResults(dir);
    assert.deepEqual(loaded.summary[0]!.accuracy.ci, [0.7158759, 1]);
    for (const bad of [[0.7], [0.7, 'x'], 0.7]) {
      r.summary[0]!['accuracy']!['ci'] = bad;
      writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
      await assert.rejects(readCompareResults(dir), (e: unknown) => e instanceof DataError && /summary\[0\]\.accuracy\.ci/.test(e.message) && !e.message.includes('\n'), JSON.stringify(bad));
    }
  });

  it('a file without accuracyAt whose runs lack an evaluation reads as the fixed threshold\'s, and its table prints', async () => {
    const dir = tempDir();
    const r = syntheticResults({ tsne: false }) as unknown as { runs: Record<string, unknown>[] };
    for (const run of r.runs) delete run['evaluation'];
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    const loaded = await readCompareResults(dir);
    assert.deepEqual(loaded.summary.map((s) => lossAccuracyAt(loaded, s)), ['threshold', 'threshold']);
    const text = summaryText({ status: 'finished', out: dir, results: loaded, failures: [], trained: [], reused: [] } as never);
    assert.match(text, /loss +runs +accuracy \(95% CI\) +MAP@R \(95% CI\)/);
  });
});
