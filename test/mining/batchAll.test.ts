import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchAllTriplets } from '../../src/mining/batchAll.ts';
import { dist, randomBatch, SEEDS, tripletList } from './reference.ts';

test('all: every valid triplet, against a brute-force loop', () => {
  for (const seed of SEEDS) {
    const b = randomBatch(seed);
    const n = b.labels.length;
    const want: string[] = [];
    for (let a = 0; a < n; a++)
      for (let p = 0; p < n; p++)
        for (let q = 0; q < n; q++)
          if (a !== p && b.labels[a] === b.labels[p] && b.labels[q] !== b.labels[a]) want.push(`${a},${p},${q}`);
    const got = batchAllTriplets(b.emb, b.dim, b.labels);
    assert.deepEqual(tripletList(got.indices), want);
    assert.deepEqual(got.stats, { kept: want.length, candidates: want.length });
  }
});

test('batch-all: only triplets with a positive loss, squared or plain distances', () => {
  for (const seed of SEEDS) {
    const b = randomBatch(seed);
    const n = b.labels.length;
    for (const [squared, margin] of [[true, 0.85], [false, 0.3], [true, 0]] as const) {
      const want: string[] = [];
      let valid = 0;
      for (let a = 0; a < n; a++)
        for (let p = 0; p < n; p++)
          for (let q = 0; q < n; q++) {
            if (a === p || b.labels[a] !== b.labels[p] || b.labels[q] === b.labels[a]) continue;
            valid++;
            if (dist(b, a, p, squared) - dist(b, a, q, squared) + margin > 0) want.push(`${a},${p},${q}`);
          }
      const got = batchAllTriplets(b.emb, b.dim, b.labels, { margin, squared, positiveLossOnly: true });
      assert.deepEqual(tripletList(got.indices), want, `seed ${seed} squared ${squared} margin ${margin}`);
      assert.deepEqual(got.stats, { kept: want.length, candidates: valid });
      assert.ok(want.length > 0 && want.length < valid, 'the filter both keeps and drops');
    }
  }
});

test('a batch with one class has no triplets', () => {
  const got = batchAllTriplets(new Float32Array(6), 2, [1, 1, 1]);
  assert.equal(got.stats.kept, 0);
  assert.equal(got.indices.anchors.length, 0);
});
