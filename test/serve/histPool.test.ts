/**
 * The page's pooling of per-epoch histograms over seeds: the same grid sums bin by bin, a
 * narrower power-of-two grid merges exactly onto the wider one (checked against binning all the
 * seeds' distances at once), and a grid that does not nest is left out and counted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { histogramOf } from '../../src/train/epochDistances.ts';
import { occupiedRange, poolHistograms } from '../../src/web/histPool.ts';
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
