import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hardNegativePairs } from '../../src/mining/hardNegativePairs.ts';
import { dist, randomBatch, SEEDS } from './reference.ts';

test('hard-negative pairs: all positives plus negatives inside the margin, against brute force', () => {
  for (const seed of SEEDS) {
    const b = randomBatch(seed);
    const n = b.labels.length;
    for (const [squared, margin] of [[false, 1], [true, 1.5], [false, 0]] as const) {
      const want: string[] = [];
      for (let i = 0; i < n; i++)
        for (let j = i + 1; j < n; j++) {
          const same = b.labels[i] === b.labels[j];
          if (same || dist(b, i, j, squared) < margin) want.push(`${i},${j},${same ? 1 : 0}`);
        }
      const got = hardNegativePairs(b.emb, b.dim, b.labels, { squared, margin });
      const list = Array.from(got.indices.a, (a, k) => `${a},${got.indices.b[k]},${got.indices.y[k]}`);
      assert.deepEqual(list, want);
      assert.deepEqual(got.stats, { kept: want.length, candidates: (n * (n - 1)) / 2 });
    }
  }
});

test('hard-negative pairs by hand (contrastive margin 1 on plain distances)', () => {
  // x: 0 (A), 0.5 (B), 3 (A), 3.2 (B): positives (0,2), (1,3); negatives within 1: (0,1), (2,3)
  const got = hardNegativePairs(Float32Array.from([0, 0.5, 3, 3.2]), 1, [0, 1, 0, 1]);
  assert.deepEqual(Array.from(got.indices.a), [0, 0, 1, 2]);
  assert.deepEqual(Array.from(got.indices.b), [1, 2, 3, 3]);
  assert.deepEqual(Array.from(got.indices.y), [0, 1, 1, 0]);
});
