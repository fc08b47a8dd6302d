/**
 * A mean ± t half-width that passes 0% or 100% (two seeds) is shown as the interval clipped to
 * [0, 100] with its ends written out, alike in the compare report, the sweep report, the charts
 * and the terminal tables. The case is computed by hand: seeds 0.95 and 0.99 have mean 0.97,
 * sample std 0.04/√2, standard error 0.02, t(0.975, 1) = 12.7062047 (= tan(0.475π)), so the
 * half-width is 0.2541241 and the interval 0.7158759 to 1.2241241, clipped to 71.59 to 100.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { summaryText } from '../../src/cli/compare.ts';
import { summaryText as sweepSummaryText } from '../../src/cli/sweep.ts';
import { summarise } from '../../src/stats.ts';
import { fractionMeasure, type SweepResults } from '../../src/experiments/sweep.ts';
import { accuracyChart, learningCurveChart } from '../../src/viz/charts.ts';
import { boundedWithCi, fractionWithCi, isClipped, NON_NEGATIVE } from '../../src/viz/ciText.ts';
import { readResults } from '../../src/viz/readResults.ts';
import { buildReport } from '../../src/viz/report.ts';
import { sweepHtml, sweepMarkdown } from '../../src/viz/sweepReport.ts';
import { REPO_ROOT } from '../helpers.ts';
import { syntheticResults, syntheticTestSplit } from '../fixtures/compareResults.ts';

const HALF = Math.tan(0.475 * Math.PI) * 0.02; // 0.25412409...
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'siamese-ci-'));
  dirs.push(d);
  return d;
}

describe('a mean with its CI, clipped where it would pass a bound', () => {
  it('two seeds 0.95 and 0.99: the t half-width by hand, and the text', () => {
    const s = summarise([0.95, 0.99]);
    assert.ok(Math.abs(s.mean - 0.97) < 1e-12);
    assert.ok(Math.abs(s.ci95 - 0.2541241) < 1e-7, String(s.ci95));
    assert.ok(Math.abs(s.ci95 - HALF) < 1e-9);
    assert.equal(fractionWithCi(s.mean, s.ci95), '97.00% (71.59 to 100)');
    assert.equal(fractionWithCi(s.mean, s.ci95, ''), '97.00 (71.59 to 100)');
    // below 0: 0.01 and 0.05, the same half-width about 0.03
    const low = summarise([0.01, 0.05]);
    assert.equal(fractionWithCi(low.mean, low.ci95), '3.00% (0 to 28.41)');
    // within [0, 1]: 0.80 and 0.81, half-width 12.7062 × 0.005 = 0.0635310
    const fits = summarise([0.8, 0.81]);
    assert.equal(fractionWithCi(fits.mean, fits.ci95), '80.50% ± 6.35');
    assert.equal(isClipped(fits.mean, fits.ci95), false);
    assert.equal(isClipped(s.mean, s.ci95), true);
    // exactly at a bound is within it
    assert.equal(fractionWithCi(0.9, 0.1), '90.00% ± 10.00');
    // no half-width: the mean alone
    assert.equal(fractionWithCi(0.9, NaN), '90.00%');
    assert.equal(fractionWithCi(0.9, null), '90.00%');
    // a fraction shown as a number (AUC), a distance (>= 0, no upper bound)
    assert.equal(boundedWithCi(s.mean, s.ci95, { digits: 4 }), '0.9700 (0.7159 to 1)');
    assert.equal(boundedWithCi(0.1, 0.635, { bounds: NON_NEGATIVE, digits: 3 }), '0.100 (0 to 0.735)');
    assert.equal(boundedWithCi(0.9, 0.635, { bounds: NON_NEGATIVE, digits: 3 }), '0.900 ± 0.635');
  });

  it('the compare report, its accuracy chart and its closing table show the clipped interval, never 97.00% ± 25.41', async () => {
    const results = syntheticResults();
    const two = summarise([0.95, 0.99]);
    results.summary[0]!.accuracy = two;
    results.summary[0]!.mapAtR = two;
    for (const r of results.runs) r.distances = { pos: r.distances.pos.slice(0, 100), neg: r.distances.neg.slice(0, 90) };
    const dir = tempDir();
    const files = await buildReport(results, dir, { testSplit: syntheticTestSplit(), pngScale: 1 });
    const md = readFileSync(files.md, 'utf8');
    const html = readFileSync(files.html, 'utf8');
    for (const [name, text] of [['md', md], ['html', html]] as const) {
      assert.ok(text.includes('97.00% (71.59 to 100)'), name);
      assert.ok(!text.includes('± 25.41'), name);
      assert.match(text, /the 95% CI is shown clipped to it, as \(low to high\)/, name);
    }
    const row = md.split('\n').find((l) => l.startsWith('| MAP@R |'))!;
    assert.ok(row.includes('| 97.00% (71.59 to 100) |'), row);
    // the chart: the bar is the clipped interval, the label says so
    const spec = accuracyChart(results);
    const rows = (spec.layer as { data: { values: { mean?: number; lo?: number; hi?: number; text?: string }[] } }[])[0]!.data.values;
    const first = rows[0]!;
    assert.equal(first.text, '97.00 (71.59 to 100)');
    assert.ok(Math.abs(first.lo! - 71.58759) < 1e-4 && first.hi === 100, JSON.stringify(first));
    const svg = readFileSync(join(dir, 'figures', 'accuracy.svg'), 'utf8');
    assert.ok(svg.includes('97.00 (71.59 to 100)'));
    // the learning curves' accuracy band stops at 100 (the loss panel's band is not clipped)
    results.summary[0]!.curves[0]!.testAccuracy = two;
    const panels = (learningCurveChart(results) as { hconcat: { data: { values: { epoch: number; loss: string; mean: number; lo: number; hi: number }[] } }[] }).hconcat;
    const band = panels[2]!.data.values.find((v) => v.epoch === results.summary[0]!.curves[0]!.epoch && v.mean === 97)!;
    assert.ok(band && Math.abs(band.lo - 71.58759) < 1e-4 && band.hi === 100, JSON.stringify(band));
    // the table compare prints at the end
    const text = summaryText({ status: 'finished', out: '/x', results, failures: [], trained: [], reused: [] } as never);
    assert.ok(text.includes('97.00% (71.59 to 100)'), text);
  });

  it('without a clipped interval the compare report has no note about it', async () => {
    const results = syntheticResults();
    for (const r of results.runs) r.distances = { pos: r.distances.pos.slice(0, 100), neg: r.distances.neg.slice(0, 90) };
    const files = await buildReport(results, tempDir(), { testSplit: syntheticTestSplit(), pngScale: 1 });
    assert.doesNotMatch(readFileSync(files.md, 'utf8'), /shown clipped/);
  });

  it('the sweep report (md, html, terminal) shows the clipped interval, as results.json keeps it in `ci`', async () => {
    // a results.json `siamese sweep` wrote (docs/sweep-mnist), its first loss given two seeds
    const dir = tempDir();
    cpSync(join(REPO_ROOT, 'docs', 'sweep-mnist', 'results.json'), join(dir, 'results.json'));
    const r = (await readResults(dir)) as SweepResults;
    assert.doesNotMatch(sweepMarkdown(r), /shown clipped/, 'the committed sweep has no interval to clip');
    const m = fractionMeasure([0.95, 0.99]);
    assert.ok(Math.abs(m.ci[0] - 0.7158759) < 1e-7 && m.ci[1] === 1, JSON.stringify(m.ci));
    r.losses[0]!.test.mapAtR = m;
    const md = sweepMarkdown(r);
    const html = sweepHtml(r);
    for (const [name, text] of [['md', md], ['html', html]] as const) {
      assert.ok(text.includes('97.00% (71.59 to 100)'), name);
      assert.ok(!text.includes('97.00% ± 25.41'), name);
      assert.match(text, /the 95% CI is shown clipped to it/, name);
    }
    // the ends shown are results.json's clipped interval
    assert.equal(`${(100 * m.ci[0]).toFixed(2)} to ${100 * m.ci[1]}`, '71.59 to 100');
    const terminal = sweepSummaryText({ status: 'finished', out: dir, results: r, resultsPath: join(dir, 'results.json'), failures: [], trained: 0, reused: 0 });
    assert.ok(terminal.includes('97.00% (71.59 to 100)'), terminal);
  });
});
