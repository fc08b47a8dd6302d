import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchHardTriplets } from '../../src/mining/batchHard.ts';
import { dist, randomBatch, SEEDS, tripletList } from './reference.ts';

test('batch-hard: farthest positive and nearest negative per anchor, against brute force', () => {
  for (const seed of SEEDS) {
    const b = randomBatch(seed);
    const n = b.labels.length;
    for (const squared of [true, false]) {
      const want: string[] = [];
      for (let a = 0; a < n; a++) {
        const others = [...Array(n).keys()].filter((j) => j !== a);
        const pos = others.filter((j) => b.labels[j] === b.labels[a]);
        const neg = others.filter((j) => b.labels[j] !== b.labels[a]);
        if (!pos.length || !neg.length) continue;
        // sort by distance, ties by index: hardest positive is the last of the descending...
        const hp = [...pos].sort((x, y) => dist(b, a, y, squared) - dist(b, a, x, squared) || x - y)[0];
        const hn = [...neg].sort((x, y) => dist(b, a, x, squared) - dist(b, a, y, squared) || x - y)[0];
        want.push(`${a},${hp},${hn}`);
      }
      const got = batchHardTriplets(b.emb, b.dim, b.labels, { squared });
      assert.deepEqual(tripletList(got.indices), want);
      assert.deepEqual(got.stats, { kept: want.length, candidates: n });
    }
  }
});

test('batch-hard: anchors without a positive are skipped; ties go to the lower index', () => {
  // 1-D: items 0 (A, x=0), 1 (A, x=1), 2 (A, x=-1), 3 (B, x=2), 4 (C, x=-2), 5 (D, x=9)
  // anchor 0: positives 1 and 2 both at 1 → 1; negatives 3 and 4 both at 2 → 3
  const emb = Float32Array.from([0, 1, -1, 2, -2, 9]);
  const got = batchHardTriplets(emb, 1, [0, 0, 0, 1, 2, 3]);
  assert.deepEqual(tripletList(got.indices), ['0,1,3', '1,2,3', '2,1,4']);
  assert.deepEqual(got.stats, { kept: 3, candidates: 6 });
});
