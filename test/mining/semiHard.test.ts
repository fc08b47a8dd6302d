import assert from 'node:assert/strict';
import { test } from 'node:test';
import { semiHardTriplets } from '../../src/mining/semiHard.ts';
import { dist, randomBatch, SEEDS, tripletList } from './reference.ts';

test('semi-hard by hand: the nearest negative inside the band', () => {
  // 1-D, plain distances, margin 1. a = 0 (x 0) and p = 1 (x 1) are class A: d_ap = 1, band (1, 2).
  // negatives: 2 at 1.5 (in the band), 3 at 1.2 (in the band, nearer → chosen),
  //            4 at 0.5 (harder than the positive: not semi-hard), 5 at 3 (too easy)
  const emb = Float32Array.from([0, 1, 1.5, 1.2, 0.5, 3]);
  const labels = [0, 0, 1, 2, 3, 4]; // the negatives have no positives, so they anchor nothing
  const got = semiHardTriplets(emb, 1, labels, { margin: 1, squared: false });
  // anchor 1, positive 0: d_ap = 1, distances from x=1: 2 → 0.5, 3 → 0.2, 4 → 0.5, 5 → 2 → none in (1, 2)
  assert.deepEqual(tripletList(got.indices), ['0,1,3']);
  assert.deepEqual(got.stats, { kept: 1, candidates: 2 });
});

test('semi-hard: against brute force, squared and plain', () => {
  for (const seed of SEEDS) {
    const b = randomBatch(seed);
    const n = b.labels.length;
    for (const [squared, margin] of [[true, 0.85], [false, 0.5]] as const) {
      const want: string[] = [];
      let pairs = 0;
      for (let a = 0; a < n; a++)
        for (let p = 0; p < n; p++) {
          if (a === p || b.labels[a] !== b.labels[p]) continue;
          pairs++;
          const dap = dist(b, a, p, squared);
          const band = [...Array(n).keys()]
            .filter((q) => b.labels[q] !== b.labels[a])
            .filter((q) => dist(b, a, q, squared) > dap && dist(b, a, q, squared) < dap + margin)
            .sort((x, y) => dist(b, a, x, squared) - dist(b, a, y, squared) || x - y);
          if (band.length) want.push(`${a},${p},${band[0]}`);
        }
      const got = semiHardTriplets(b.emb, b.dim, b.labels, { squared, margin });
      assert.deepEqual(tripletList(got.indices), want, `seed ${seed}`);
      assert.deepEqual(got.stats, { kept: want.length, candidates: pairs });
      assert.ok(want.length > 0 && want.length < pairs, 'some pairs find a semi-hard negative, some do not');
    }
  }
});
