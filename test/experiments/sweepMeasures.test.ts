/**
 * The sweep's per-measure summaries (fractionMeasure in sweep.ts): every measure is a fraction, so
 * its 95% CI lies in [0, 1] and contains the mean; the half-width stays Student's t. Checked by
 * hand with t(0.975, 1) = 12.7062047 (two seeds, as `sweep --quick` has).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fractionMeasure } from '../../src/experiments/sweep.ts';

const T975_1 = 12.706204736174707;

test('a fraction\'s CI is clipped to [0, 1] and contains the mean; ci95 stays the t half-width', () => {
  // P@1 of two seeds of a real `sweep --quick`: the t interval is 0.4255 to 1.1443
  const hi = fractionMeasure([0.8132071590207777, 0.7566344373585682]);
  const half = (T975_1 * (0.8132071590207777 - 0.7566344373585682)) / 2;
  assert.ok(Math.abs(hi.mean - 0.784920798189673) < 1e-12);
  assert.ok(Math.abs(hi.ci95 - half) < 1e-9, `half-width ${hi.ci95} against ${half}`);
  assert.ok(Math.abs(hi.ci[0] - (hi.mean - half)) < 1e-9);
  assert.equal(hi.ci[1], 1);
  // near zero: the low end is clipped
  const lo = fractionMeasure([0.02, 0.1]);
  assert.equal(lo.ci[0], 0);
  assert.ok(Math.abs(lo.ci[1] - (0.06 + (T975_1 * 0.08) / 2)) < 1e-9);
  // inside: untouched
  const mid = fractionMeasure([0.5, 0.51, 0.49]);
  assert.ok(Math.abs(mid.ci[0] - (0.5 - mid.ci95)) < 1e-15 && Math.abs(mid.ci[1] - (0.5 + mid.ci95)) < 1e-15);
  for (const m of [hi, lo, mid]) assert.ok(m.ci[0] >= 0 && m.ci[0] <= m.mean && m.mean <= m.ci[1] && m.ci[1] <= 1);
  // one value: the mean twice
  assert.deepEqual(fractionMeasure([0.3]).ci, [0.3, 0.3]);
});
