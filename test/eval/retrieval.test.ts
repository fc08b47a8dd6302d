import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataError, UsageError } from '../../src/errors.ts';
import { retrievalMetrics, scoresAtR } from '../../src/eval/retrieval.ts';
import { Rng } from '../../src/rng.ts';

const near = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('scoresAtR by hand', () => {
  // R = 3, ranking relevant, not, relevant: RP = 2/3; MAP@R = (1/3)(1/1 + 2/3) = 5/9
  let s = scoresAtR([1, 0, 1], 3);
  near(s.rPrecision, 2 / 3);
  near(s.averagePrecision, 5 / 9);
  // R = 4, ranking 0 1 1 0 (then relevant items beyond R do not count):
  // RP = 2/4; MAP@R = (1/4)(1/2 + 2/3) = 7/24
  s = scoresAtR([0, 1, 1, 0, 1, 1], 4);
  near(s.rPrecision, 0.5);
  near(s.averagePrecision, 7 / 24);
  // all R relevant first: both 1; none: both 0
  assert.deepEqual(scoresAtR([1, 1], 2), { rPrecision: 1, averagePrecision: 1 });
  assert.deepEqual(scoresAtR([0, 0, 1], 2), { rPrecision: 0, averagePrecision: 0 });
});

test('retrieval metrics by hand on six points on a line', () => {
  // item:  0    1    2    3    4    5
  // x:     0    1    2.2  3.5  5    9.5
  // label: A    A    B    A    B    B        (every R = 2)
  // query 0: order 1A 2B 3A ..  → rel 1 0: P@1 1, RP 1/2, AP (1/2)(1)       = 1/2
  // query 1: order 0A 2B 3A ..  → rel 1 0: P@1 1, RP 1/2, AP 1/2
  // query 2: order 1A 3A 0A 4B  → rel 0 0: P@1 0, RP 0,   AP 0
  // query 3: order 2B 4B 1A 0A  → rel 0 0: P@1 0, RP 0,   AP 0
  // query 4: order 3A 2B 1A 5B  → rel 0 1: P@1 0, RP 1/2, AP (1/2)(1/2)     = 1/4
  // query 5: order 4B 3A 2B ..  → rel 1 0: P@1 1, RP 1/2, AP 1/2
  // means: P@1 3/6, RP 2/6, MAP@R 1.75/6
  // kNN, k = 3: majorities A A A B A B against A A B A B B → right for 0, 1, 5 → 1/2
  const x = Float32Array.from([0, 1, 2.2, 3.5, 5, 9.5]);
  const labels = [0, 0, 1, 0, 1, 1];
  const m = retrievalMetrics(x, 1, labels, { knnK: 3 });
  near(m.precisionAt1, 0.5);
  near(m.rPrecision, 1 / 3);
  near(m.mapAtR, 1.75 / 6);
  near(m.knnAccuracy, 0.5);
  assert.equal(m.k, 3);
  assert.equal(m.queries, 6);
  assert.equal(m.n, 6);
});

test('kNN vote: a tie goes to the label of the nearer neighbour', () => {
  // x:     0  1  2  3  4     (distance ties, e.g. for item 1: items 0 and 2, go to the lower index)
  // label: 7  3  7  3  7
  // k = 2: q0 [3 7] tie → 3 ✗; q1 [7 7] → 7 ✗; q2 [3 3] → 3 ✗; q3 [7 7] → 7 ✗; q4 [3 7] tie → 3 ✗
  // k = 3: q0 [3 7 3] → 3 ✗; q1 [7 7 3] → 7 ✗; q2 [3 3 7] → 3 ✗; q3 [7 7 3] → 7 ✗; q4 [3 7 3] → 3 ✗
  // Had ties gone to the farther label, k = 2 would have got q0 and q4 right (2/5).
  const x = Float32Array.from([0, 1, 2, 3, 4]);
  const labels = [7, 3, 7, 3, 7];
  near(retrievalMetrics(x, 1, labels, { knnK: 2 }).knnAccuracy, 0);
  near(retrievalMetrics(x, 1, labels, { knnK: 3 }).knnAccuracy, 0);
  // k = 1 is P@1 over all items: q0 → 1 (3) ✗, q1 → 0 (7) ✗, q2 → 1 (3) ✗, q3 → 2 (7) ✗, q4 → 3 (3) ✗
  near(retrievalMetrics(x, 1, labels, { knnK: 1 }).knnAccuracy, 0);
  // move item 4 next to item 2: q2 [4 (7), 1 (3)] tie → 7 ✓ ; q4 [2 (7), 3 (3)] tie → 7 ✓
  const y = Float32Array.from([0, 1, 2, 3, 2.1]);
  near(retrievalMetrics(y, 1, labels, { knnK: 2 }).knnAccuracy, 2 / 5);
});

/** Reference: every distance in float64, ranks by (distance, index), metrics by definition. */
function bruteForce(emb: Float32Array, dim: number, labels: number[], k: number) {
  const n = labels.length;
  let p1 = 0, rp = 0, map = 0, queries = 0, knnOk = 0;
  for (let q = 0; q < n; q++) {
    const others = [...Array(n).keys()].filter((j) => j !== q);
    const dist = (j: number): number => {
      let s = 0;
      for (let c = 0; c < dim; c++) s += (emb[q * dim + c]! - emb[j * dim + c]!) ** 2;
      return s;
    };
    others.sort((a, b) => dist(a) - dist(b) || a - b);
    const rel = others.map((j) => (labels[j] === labels[q] ? 1 : 0));
    const R = rel.reduce<number>((s, r) => s + r, 0);
    if (R > 0) {
      queries++;
      p1 += rel[0]!;
      rp += rel.slice(0, R).reduce<number>((s, r) => s + r, 0) / R;
      let ap = 0;
      for (let i = 1; i <= R; i++) {
        if (rel[i - 1]) ap += rel.slice(0, i).reduce<number>((s, r) => s + r, 0) / i;
      }
      map += ap / R;
    }
    const votes = new Map<number, number>();
    for (const j of others.slice(0, k)) votes.set(labels[j]!, (votes.get(labels[j]!) ?? 0) + 1);
    const top = Math.max(...votes.values());
    const winner = labels[others.slice(0, k).find((j) => votes.get(labels[j]!) === top)!];
    if (winner === labels[q]) knnOk++;
  }
  return { precisionAt1: p1 / queries, rPrecision: rp / queries, mapAtR: map / queries, knnAccuracy: knnOk / n, queries };
}

test('random embeddings against brute force (with a singleton class)', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 4; trial++) {
    const n = 40 + rng.int(20);
    const dim = 2 + rng.int(4);
    const labels = Array.from({ length: n }, () => rng.int(5));
    labels[0] = 99; // alone in its class: R = 0, left out of P@1/RP/MAP@R
    const emb = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) for (let c = 0; c < dim; c++) emb[i * dim + c] = rng.normal() + (c === 0 ? labels[i]! % 5 : 0);
    for (const k of [1, 4, 10]) {
      const got = retrievalMetrics(emb, dim, labels, { knnK: k });
      const want = bruteForce(emb, dim, labels, k);
      assert.ok(got.queries <= n - 1);
      assert.equal(got.queries, want.queries);
      near(got.precisionAt1, want.precisionAt1);
      near(got.rPrecision, want.rPrecision);
      near(got.mapAtR, want.mapAtR);
      near(got.knnAccuracy, want.knnAccuracy);
    }
  }
});

test('large classes and duplicate points against brute force (selection and sort paths)', () => {
  const rng = new Rng(5);
  const n = 160;
  const dim = 2;
  const labels = Array.from({ length: n }, () => rng.int(2)); // R around 80
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let c = 0; c < dim; c++) emb[i * dim + c] = rng.normal() + labels[i]!;
  // exact duplicates, across and within classes: ties broken by index
  for (let i = 0; i < 20; i++) emb.copyWithin(((3 * i + 1) % n) * dim, ((7 * i + 5) % n) * dim, ((7 * i + 5) % n) * dim + dim);
  for (const k of [1, 10, 30]) {
    const got = retrievalMetrics(emb, dim, labels, { knnK: k });
    const want = bruteForce(emb, dim, labels, k);
    near(got.precisionAt1, want.precisionAt1);
    near(got.rPrecision, want.rPrecision);
    near(got.mapAtR, want.mapAtR);
    near(got.knnAccuracy, want.knnAccuracy);
  }
});

test('defaults and errors', () => {
  // x 0 1 2 3, labels A A B B; distance ties go to the lower index
  // P@1: q0 → 1 ✓, q1 → 0 ✓ (0 and 2 tie), q2 → 1 ✗ (1 and 3 tie), q3 → 2 ✓ → 3/4
  const emb = Float32Array.from([0, 1, 2, 3]);
  const m = retrievalMetrics(emb, 1, [0, 0, 1, 1]);
  assert.equal(m.k, 3); // default 10, capped at n − 1
  assert.equal(m.precisionAt1, 0.75);
  assert.throws(() => retrievalMetrics(emb, 3, [0, 1]), DataError);
  assert.throws(() => retrievalMetrics(emb, 1, [0, 1, 0, 1], { knnK: 0 }), UsageError);
  assert.throws(() => retrievalMetrics(Float32Array.from([1]), 1, [0]), DataError);
  assert.throws(() => retrievalMetrics(Float32Array.from([0, Number.NaN]), 1, [0, 0]), DataError);
});
