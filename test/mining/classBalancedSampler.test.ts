import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { classBalancedBatches } from '../../src/mining/classBalancedSampler.ts';
import { Rng } from '../../src/rng.ts';

// 6 classes of sizes 5..30 (class 5 has 5 items), 105 items in all, class order interleaved
const sizes = [10, 30, 20, 15, 25, 5];
const labels: number[] = [];
for (let i = 0; labels.length < 105; i++) for (let c = 0; c < 6; c++) if (i < sizes[c]!) labels.push(c);

test('batches: P distinct classes, m items each, grouped, no repeated item', () => {
  const m = 4;
  const P = 3;
  const batches = classBalancedBatches(labels, m, P, new Rng(1));
  assert.equal(batches.length, Math.round(105 / 12)); // 9
  for (const batch of batches) {
    assert.equal(batch.length, m * P);
    assert.equal(new Set(batch).size, batch.length, 'no item twice in a batch');
    for (let g = 0; g < P; g++) {
      const cls = new Set(Array.from(batch.subarray(g * m, (g + 1) * m), (i) => labels[i]));
      assert.equal(cls.size, 1, 'each group of m is one class');
    }
    assert.equal(new Set(Array.from(batch, (i) => labels[i])).size, P);
  }
});

test('every class gets its turn; within a class, items come without replacement', () => {
  const m = 3;
  const batches = classBalancedBatches(labels, m, 2, new Rng(2));
  const classTurns = new Array<number>(6).fill(0);
  const itemUses = new Map<number, number>();
  for (const batch of batches) {
    for (let g = 0; g < batch.length; g += m) classTurns[labels[batch[g]!]!]!++;
    for (const i of batch) itemUses.set(i, (itemUses.get(i) ?? 0) + 1);
  }
  assert.ok(Math.max(...classTurns) - Math.min(...classTurns) <= 1, `class turns ${classTurns}`);
  for (let c = 0; c < 6; c++) {
    const uses = labels.map((l, i) => (l === c ? (itemUses.get(i) ?? 0) : -1)).filter((u) => u >= 0);
    assert.ok(Math.max(...uses) - Math.min(...uses) <= 1, `class ${c} item uses ${uses}`);
  }
});

test('a class smaller than m repeats items; the same seed gives the same batches', () => {
  const batches = classBalancedBatches(labels, 8, 6, new Rng(3)); // class 5 has only 5 items
  for (const batch of batches) {
    const group5 = [...batch].filter((i) => labels[i] === 5);
    assert.equal(group5.length, 8);
    assert.equal(new Set(group5).size, 5, 'all 5 items, then repeats');
  }
  assert.deepEqual(classBalancedBatches(labels, 4, 3, new Rng(4)), classBalancedBatches(labels, 4, 3, new Rng(4)));
  assert.notDeepEqual(classBalancedBatches(labels, 4, 3, new Rng(4)), classBalancedBatches(labels, 4, 3, new Rng(5)));
});

test('bad arguments are usage errors', () => {
  assert.throws(() => classBalancedBatches(labels, 0, 2, new Rng(1)), UsageError);
  assert.throws(() => classBalancedBatches(labels, 2, 7, new Rng(1)), /only 6/);
  assert.throws(() => classBalancedBatches(labels, 2.5, 2, new Rng(1)), UsageError);
});
