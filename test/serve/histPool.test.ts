/**
 * The page's pooling of per-epoch histograms over seeds: the same grid sums bin by bin, a
 * narrower power-of-two grid merges exactly onto the wider one (checked against binning all the
 * seeds' distances at once), and a grid that does not nest is left out and counted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { histogramOf } from '../../src/train/epochDistances.ts';
import { densityHistogram, finalMeans, finalRange, occupiedRange, poolHistograms } from '../../src/web/histPool.ts';
import { distanceLine, distanceSample } from './helpers.ts';

test('pooling over seeds: sums on one grid, merges a nested narrower grid exactly, skips one that does not nest', () => {
  const a = distanceLine(2, 4, 0);
  const b = distanceLine(2, 4, 0.3);
  const same = poolHistograms([a, b])!;
  assert.deepEqual(same.pos.counts, a.pos.counts.map((c, i) => c + b.pos.counts[i]!));
  assert.deepEqual(same.neg.counts, a.neg.counts.map((c, i) => c + b.neg.counts[i]!));
  assert.equal(same.neg.over, 2);
  assert.equal(same.pos.n + same.neg.n, 2 * 401);
  assert.deepEqual([same.runs, same.narrowOver, same.skipped], [2, 0, 0]);

  // seed b on [0, 8): seed a's bins merge in pairs; both samples at once, binned over [0, 8), agree
  const wide = distanceLine(2, 8, 0.3);
  const pooled = poolHistograms([a, wide])!;
  const sa = distanceSample(2, 0);
  const sb = distanceSample(2, 0.3);
  const all = histogramOf([...sa.d, ...sb.d], [...sa.y, ...sb.y], 2, 8);
  assert.equal(pooled.dmax, 8);
  assert.deepEqual(pooled.pos.counts, all.pos.counts);
  assert.deepEqual(pooled.neg.counts, all.neg.counts);
  assert.equal(pooled.neg.over, all.neg.over);
  assert.ok(Math.abs(pooled.neg.mean! - all.neg.mean!) < 1e-12);
  assert.ok(Math.abs(pooled.pos.mean! - all.pos.mean!) < 1e-12);
  assert.equal(pooled.narrowOver, 1, "seed a's D = 9 is beyond its own range");

  const odd = poolHistograms([a, distanceLine(2, 3)])!;
  assert.deepEqual([odd.runs, odd.skipped], [1, 1]);
  assert.deepEqual(odd.pos.counts, a.pos.counts);
  assert.equal(poolHistograms([]), null);

  // the largest filled edge: negatives reach 0.6 + 0.8 + 0.3 + 0.3 < 2.0625 (bins of 1/16)
  const top = Math.max(...sa.d.filter((d) => d < 4), ...sb.d.filter((d) => d < 4));
  assert.equal(occupiedRange([same]), Math.ceil(top * 16) / 16);
});

test('final distances of results.json: the range and densities of a hand case, and of a 30-run compare (240,000 distances) without exhausting the stack', () => {
  // [0, 1.0001) in 4 bins of 0.250025: 0.1 -> bin 0, 0.3 -> 1, 0.5 -> 1, 1.0 -> 3
  const max = finalRange([{ pos: [0.1, 0.3], neg: [0.5] }, { pos: [], neg: [1.0] }]);
  assert.equal(max, 1.0001);
  const w = max / 4;
  assert.deepEqual(densityHistogram([[0.1, 0.3]], max, 4), [1 / (2 * w), 1 / (2 * w), 0, 0]);
  assert.deepEqual(densityHistogram([[0.5], [1.0]], max, 4), [0, 1 / (2 * w), 0, 1 / (2 * w)]);
  assert.deepEqual(densityHistogram([[], []], max, 4), [0, 0, 0, 0]);

  // 2 losses x 15 seeds, 4,000 + 4,000 distances each (results.json's sample): the largest is the
  // last negative of the last run; every density integrates to 1
  const runs = Array.from({ length: 30 }, (_, r) => ({
    pos: Array.from({ length: 4000 }, (_, i) => (i % 97) / 100),
    neg: Array.from({ length: 4000 }, (_, i) => 0.5 + (r * 4000 + i) / 240_000),
  }));
  const big = finalRange(runs);
  assert.equal(big, (0.5 + 119_999 / 240_000) * 1.0001);
  for (const side of ['pos', 'neg'] as const) {
    const d = densityHistogram(runs.map((r) => r[side]), big, 40);
    assert.ok(Math.abs(d.reduce((s, x) => s + x, 0) * (big / 40) - 1) < 1e-9, side);
  }
});

test('final distances of results.json: the means noted are those of the seeds shown (one seed: its own; all: the summary\'s mean over seeds)', () => {
  const run = (pos: number, neg: number) => ({ evaluation: { pairs: { stats: { pos: { mean: pos }, neg: { mean: neg } } } } });
  const runs = [run(0.2, 1.1), run(0.4, 1.5)];
  // results.json's summary.posMean.mean and negMean.mean: the mean over seeds of each seed's
  const all = finalMeans(runs);
  assert.ok(Math.abs(all.pos! - 0.3) < 1e-12 && Math.abs(all.neg! - 1.3) < 1e-12);
  assert.deepEqual(finalMeans([runs[1]!]), { pos: 0.4, neg: 1.5 });
  // a run without its evaluation: nothing to note
  assert.deepEqual(finalMeans([{}]), { pos: null, neg: null });
  assert.deepEqual(finalMeans([{}, runs[0]!]), { pos: 0.2, neg: 1.1 });
});
