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

/** All orders of xs. */
function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/** P@1, R-precision and AP@R of one ranking, by the definitions. */
function scoresOfRanking(rel: readonly number[], R: number): { p1: number; rp: number; ap: number } {
  let ap = 0;
  for (let i = 1; i <= R; i++) if (rel[i - 1]) ap += rel.slice(0, i).reduce((s, r) => s + r, 0) / i;
  return { p1: rel[0]!, rp: rel.slice(0, R).reduce((s, r) => s + r, 0) / R, ap: ap / R };
}

/**
 * Reference: every distance in float64; P@1, R-precision and MAP@R averaged over every order of
 * each group of equally distant neighbours (enumerated: the terms of one group depend only on its
 * own order and the whole groups before it), kNN on the order (distance, index).
 */
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
    const rel: number[] = others.map((j) => (labels[j] === labels[q] ? 1 : 0));
    const R = rel.reduce<number>((s, r) => s + r, 0);
    if (R > 0) {
      queries++;
      let e1 = 0, eHits = 0, eAp = 0, hits = 0;
      for (let a = 0; a < R; ) {
        let b = a;
        while (b + 1 < others.length && dist(others[b + 1]!) === dist(others[a]!)) b++;
        const orders = permutations(rel.slice(a, b + 1));
        for (const o of orders) {
          if (a === 0) e1 += o[0]! / orders.length;
          let h = hits;
          for (let j = 0; j < o.length && a + j < R; j++) {
            h += o[j]!;
            eHits += o[j]! / orders.length;
            if (o[j]) eAp += h / (a + j + 1) / orders.length;
          }
        }
        hits += rel.slice(a, b + 1).reduce<number>((s, r) => s + r, 0);
        a = b + 1;
      }
      p1 += e1;
      rp += eHits / R;
      map += eAp / R;
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

test('distance ties: P@1, R-precision and MAP@R are their means over every order of the tied neighbours, whatever the data set\'s order', () => {
  // a collapsed model: 12 identical embeddings, 3 classes of 4, stored class by class (as a
  // folder data set is). Every query's 11 neighbours tie, 3 of them relevant (R = 3):
  // P@1 = RP = 3/11; MAP@R = (1/3)·(3/11)·(1/1 + (1 + 2/10)/2 + (1 + 2·2/10)/3) = 31/165.
  // Ties by index gave 1/3 for all three (the first class found its own first), and a shuffled
  // storage order 0.25, 0.278 and 0.162 for the same embeddings.
  const emb = new Float32Array(12 * 2).fill(0.5);
  const sorted = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
  const shuffled = [2, 0, 1, 2, 1, 0, 0, 2, 1, 1, 0, 2];
  for (const labels of [sorted, shuffled]) {
    const m = retrievalMetrics(emb, 2, labels);
    near(m.precisionAt1, 3 / 11);
    near(m.rPrecision, 3 / 11);
    near(m.mapAtR, 31 / 165);
  }
});

test('distance ties against every order of the neighbours (all permutations, by the definitions)', () => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 30; trial++) {
    const n = 5 + rng.int(4); // 5..8 items: at most 7! orders per query
    const dim = 1 + rng.int(2);
    // few distinct coordinates: many ties, some groups reaching past rank R
    const emb = Float32Array.from({ length: n * dim }, () => rng.int(3));
    const labels = Array.from({ length: n }, () => rng.int(3));
    let p1 = 0, rp = 0, map = 0, queries = 0;
    for (let q = 0; q < n; q++) {
      const d = (j: number): number => {
        let s = 0;
        for (let c = 0; c < dim; c++) s += (emb[q * dim + c]! - emb[j * dim + c]!) ** 2;
        return s;
      };
      const others = [...Array(n).keys()].filter((j) => j !== q);
      const R = others.filter((j) => labels[j] === labels[q]).length;
      if (R === 0) continue;
      queries++;
      // every order of the others that is sorted by distance is one equally likely ranking
      const rankings = permutations(others).filter((o) => o.every((j, i) => i === 0 || d(o[i - 1]!) <= d(j)));
      for (const o of rankings) {
        const s = scoresOfRanking(o.map((j) => (labels[j] === labels[q] ? 1 : 0)), R);
        p1 += s.p1 / rankings.length;
        rp += s.rp / rankings.length;
        map += s.ap / rankings.length;
      }
    }
    const m = retrievalMetrics(emb, dim, labels);
    assert.equal(m.queries, queries);
    if (queries === 0) continue;
    near(m.precisionAt1, p1 / queries, 1e-12);
    near(m.rPrecision, rp / queries, 1e-12);
    near(m.mapAtR, map / queries, 1e-12);
  }
});
