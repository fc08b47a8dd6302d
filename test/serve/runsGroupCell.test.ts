/**
 * The runs view's group rows: mean ± 95% CI over a group's seeds in each column's unit; a
 * percentage whose mean ± half-width passes 0 or 100 shows the interval clipped to it, as the
 * note under the table says (and as the reports and the sweep view show it).
 * Hand-computed: seeds 0.95 and 0.99: mean 0.97, sd 0.028284, t(0.975, 1) = 12.7062, half-width
 * 12.7062 · 0.028284 / √2 = 0.25412: 97.00 ± 25.41 would reach 122.41, shown 97.00 (71.59 to 100).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupCellText } from '../../src/web/runColumns.ts';

test('a percentage column: the interval clipped at 100 where mean ± half-width passes it, else mean ± half-width', () => {
  for (const key of ['pairAccuracy', 'mapAtR', 'testAccuracy']) {
    assert.equal(groupCellText(key, [0.95, 0.99]), '97.00 (71.59 to 100)', key);
    // 0.5 and 0.52: mean 0.51, half-width 12.7062 · 0.014142 / √2 = 0.12706: within [0, 1]
    assert.equal(groupCellText(key, [0.5, 0.52]), '51.00 ± 12.71', key);
    // near 0: 0.01 and 0.05, mean 0.03, half-width 0.25412: clipped at 0
    assert.equal(groupCellText(key, [0.01, 0.05]), '3.00 (0 to 28.41)', key);
    assert.equal(groupCellText(key, [0.97]), '97.00', key);
  }
});

test('columns of other units: mean ± half-width, unclipped (a loss, a time in seconds)', () => {
  // 1 and 3: mean 2, half-width 12.7062 · 1.41421 / √2 = 12.7062
  assert.equal(groupCellText('lastLoss', [1, 3]), '2.0000 ± 12.7062');
  assert.equal(groupCellText('seconds', [1, 3]), '2.0 s ± 12.7 s');
});
