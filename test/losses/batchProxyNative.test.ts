/**
 * The class-weight losses (arcface, cosface, proxy-anchor) run whole in one native call
 * (native/src/batchproxy.c), and their batch accuracy ranks float32 cosines. Neither is the
 * TypeScript reference bit for bit any more, so here:
 *   - the loss against the reference (src/losses/proxies.ts, float64 throughout) to 1e-12
 *     relative, and both gradients to 2e-6 of the largest entry plus 1e-7 of a bound of the
 *     gradient before the projection (the back-projections run in float32: the gradients are
 *     float32 anyway), on typical, absent-class, one-row, odd-dimension, near-clamp and
 *     past-π−m batches at scale 64;
 *   - both native gradients against central differences of the native loss itself;
 *   - the same bits call after call (with and without a workspace, other shapes in between);
 *   - the float32 accuracy against a sort-and-sweep oracle (and, small, a brute force over every
 *     cut) on the very cosines the addon computed (it hands them out), including ties, one value
 *     only and many near-best buckets; against the float64 TypeScript accuracy where no two
 *     cosines lie within 1e-5 of each other; NaN left to TypeScript;
 *   - bad arguments refused with one line.
 * Where the addon is not built, the losses run the reference (checked, and said).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { BatchWorkspace } from '../../src/losses/batch.ts';
import type { BatchLoss } from '../../src/losses/batch.ts';
import { batchKernels } from '../../src/losses/batchKernels.ts';
import { createLoss, lossOnBatch } from '../../src/losses/registry.ts';
import { batchPairAccuracy } from '../../src/train/batchAccuracy.ts';
import { Rng } from '../../src/rng.ts';
import { maxAbs, reference, sortAndSweep } from './batchHelpers.ts';

const status = nativeStatus();
const LOSSES = ['arcface', 'cosface', 'proxy-anchor'] as const;

/** loss relative, gradients relative to their largest entry */
const LOSS_TOL = 1e-12;
const GRAD_TOL = 2e-6;

interface Case {
  what: string;
  emb: Float32Array;
  labels: Int32Array;
  weights: Float32Array;
  dim: number;
}

function randomCase(what: string, seed: number, n: number, dim: number, classes: number, opts: { absent?: number } = {}): Case {
  const r = new Rng(seed);
  const emb = Float32Array.from({ length: n * dim }, () => r.normal() * (0.5 + r.next()));
  const labels = Int32Array.from({ length: n }, () => {
    let y = Math.floor(r.next() * classes);
    if (y === opts.absent) y = (y + 1) % classes;
    return y;
  });
  const weights = Float32Array.from({ length: classes * dim }, () => r.normal());
  return { what, emb, labels, weights, dim };
}

/**
 * Embeddings at a chosen cosine to their class weight (class weights on the axes e_0, e_1, ...):
 * row i = cos_i e_y + sin_i e_(classes) (an axis no class weight uses), so C_iy = cos_i exactly
 * up to float32 rounding.
 */
function cosineCase(what: string, cosines: number[], classes: number): Case {
  const dim = classes + 3;
  const n = cosines.length;
  const emb = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  cosines.forEach((c, i) => {
    const y = i % classes;
    labels[i] = y;
    emb[i * dim + y] = c;
    emb[i * dim + classes] = Math.sqrt(Math.max(0, 1 - c * c));
    emb[i * dim + classes + 1] = 1e-3 * (i + 1); // off the plane a little: other cosines not all 0
  });
  const weights = new Float32Array(classes * dim);
  for (let j = 0; j < classes; j++) weights[j * dim + j] = 1 + 0.1 * j;
  return { what, emb, labels, weights, dim };
}

const m = (28.6 * Math.PI) / 180;
const CASES: Case[] = [
  randomCase('typical 120x128, 10 classes', 1, 120, 128, 10),
  randomCase('a class absent from the batch', 2, 60, 32, 6, { absent: 3 }),
  randomCase('one row', 3, 1, 16, 4),
  randomCase('dim 17 (not a vector width)', 4, 33, 17, 5),
  randomCase('dim 129', 5, 50, 129, 7),
  randomCase('7x3, 3 classes', 6, 7, 3, 3),
  randomCase('2x1, 2 classes', 7, 2, 1, 2),
  // arcface's clamp at ±(1 − 1e-7) (no gradient through the target past it) and its branch past
  // π − m (cos θ < −cos m), with values on both sides of each
  cosineCase('near the clamp and past π − m', [1, 1 - 5e-8, 1 - 2e-7, 0.999, -1, -1 + 5e-8, -0.99, -Math.cos(m) - 1e-3, -Math.cos(m) + 1e-3, 0.3, -0.5, 0], 4),
];

/** the smallest row norm of x [rows, dim] */
function minNorm(x: Float32Array, dim: number): number {
  let m = Infinity;
  for (let o = 0; o < x.length; o += dim) {
    let q = 0;
    for (let k = 0; k < dim; k++) q += x[o + k]! ** 2;
    m = Math.min(m, Math.sqrt(q));
  }
  return m;
}

/**
 * Bounds of |dL/du_i| / |x_i| (embeddings) and |dL/dŵ_j| / |w_j| (class weights), the gradients
 * before the way back through the normalisation: a row of dL/dC sums to at most 2·scale/n in
 * absolute value (softmax weights minus one hot), a column to at most 2·scale; proxy-anchor's
 * entries are softmax weights times alpha/|P⁺| or alpha/classes: at most 2·alpha a row or column.
 */
function preBound(name: string, c: Case): { emb: number; weights: number } {
  const n = c.labels.length;
  const s = name === 'proxy-anchor' ? 32 : 64;
  const perRow = name === 'proxy-anchor' ? 2 * s : (2 * s) / n;
  return { emb: perRow / minNorm(c.emb, c.dim), weights: (2 * s) / minNorm(c.weights, c.dim) };
}

/**
 * The back-projections run in float32, the projection through the normalisation folded in: their
 * rounding (1e-7) is relative to the gradient before the projection, which can be far larger than
 * after it (with dim 1 the gradient is 0). That one is at most `pre` (see preBound).
 */
function assertGradClose(got: Float32Array | undefined, want: Float32Array | undefined, what: string, pre = 0): void {
  assert.ok(got && want && got.length === want.length, `${what}: lengths`);
  const tol = GRAD_TOL * maxAbs(want) + 1e-7 * pre;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    assert.ok(err <= tol, `${what}[${i}]: native ${got[i]}, reference ${want[i]} (error ${err.toExponential(2)}, tolerance ${tol.toExponential(2)})`);
  }
}

function skipWithout(t: { diagnostic(s: string): void }): boolean {
  if (status.available) return false;
  assert.equal(batchKernels(), null);
  t.diagnostic(`native engine not available (${status.detail}): the losses run the reference`);
  return true;
}

test('native loss and both gradients = the TypeScript reference, within 1e-12 (loss) and 2e-6 of the largest entry + float32 rounding of the unprojected gradient', (t) => {
  if (skipWithout(t)) return;
  for (const c of CASES) {
    for (const name of LOSSES) {
      const what = `${name}, ${c.what}`;
      const nat = lossOnBatch(name, c.emb, c.labels, c.dim, { weights: c.weights });
      const ref = reference(() => lossOnBatch(name, c.emb, c.labels, c.dim, { weights: c.weights }));
      assert.ok(Number.isFinite(ref.loss), `${what}: finite reference loss`);
      assert.ok(Math.abs(nat.loss - ref.loss) <= LOSS_TOL * Math.abs(ref.loss), `${what}: loss native ${nat.loss}, reference ${ref.loss}`);
      const pre = preBound(name, c);
      assertGradClose(nat.grad, ref.grad, `${what} grad`, pre.emb);
      assertGradClose(nat.weightsGrad, ref.weightsGrad, `${what} weightsGrad`, pre.weights);
    }
  }
});

/** L(x) of the native path: float32 inputs, so a perturbed value is rounded to float32 first */
function nativeLoss(name: string, c: Case, emb: Float32Array, weights: Float32Array): number {
  return lossOnBatch(name, emb, c.labels, c.dim, { weights }).loss;
}

test('native gradients (embeddings and class weights) = central differences of the native loss', (t) => {
  if (skipWithout(t)) return;
  const cases = [randomCase('24x16, 4 classes', 11, 24, 16, 4), randomCase('typical 120x128', 12, 120, 128, 10), CASES.at(-1)!];
  for (const c of cases) {
    for (const name of LOSSES) {
      const r = lossOnBatch(name, c.emb, c.labels, c.dim, { weights: c.weights });
      const grad = r.grad.slice();
      const wgrad = r.weightsGrad!.slice();
      const gscale = Math.max(maxAbs(grad), maxAbs(wgrad));
      const pick = new Rng(c.emb.length + name.length);
      for (const side of ['emb', 'weights'] as const) {
        const base = side === 'emb' ? c.emb : c.weights;
        const g = side === 'emb' ? grad : wgrad;
        for (let probe = 0; probe < 8; probe++) {
          const k = pick.int(base.length);
          const x = base[k]!;
          const h = 1e-3 * Math.max(Math.abs(x), 0.1);
          const plus = base.slice();
          const minus = base.slice();
          plus[k] = x + h;
          minus[k] = x - h;
          const lp = side === 'emb' ? nativeLoss(name, c, plus, c.weights) : nativeLoss(name, c, c.emb, plus);
          const lm = side === 'emb' ? nativeLoss(name, c, minus, c.weights) : nativeLoss(name, c, c.emb, minus);
          // the step actually taken: the float32 values' difference
          const fd = (lp - lm) / (plus[k]! - minus[k]!);
          const err = Math.abs(fd - g[k]!);
          assert.ok(
            err <= 2e-3 * gscale + 1e-3 * Math.abs(fd),
            `${name}, ${c.what}: dL/d${side}[${k}] native ${g[k]}, central difference ${fd} (error ${err.toExponential(2)}, largest entry ${gscale.toExponential(2)})`,
          );
        }
      }
    }
  }
});

test('the same bits call after call, with and without a workspace, other shapes in between', (t) => {
  if (skipWithout(t)) return;
  const ws = new BatchWorkspace();
  for (const name of LOSSES) {
    const loss = createLoss(name) as BatchLoss;
    const a = CASES[0]!;
    const b = CASES[3]!;
    const first = loss.compute(a.emb, a.labels, a.dim, a.weights);
    const firstGrad = first.grad.slice();
    const firstW = first.weightsGrad!.slice();
    loss.compute(b.emb, b.labels, b.dim, b.weights, ws);
    const again = loss.compute(a.emb, a.labels, a.dim, a.weights, ws);
    const grad1 = again.grad;
    assert.ok(Object.is(again.loss, first.loss), `${name}: loss ${again.loss} then ${first.loss}`);
    assert.deepEqual(again.grad, firstGrad, `${name}: grad`);
    assert.deepEqual(again.weightsGrad, firstW, `${name}: weightsGrad`);
    // the workspace's arrays, reused: nothing allocated per step
    const third = loss.compute(a.emb, a.labels, a.dim, a.weights, ws);
    assert.equal(third.grad, grad1, `${name}: the workspace's gradient array again`);
    assert.equal(third.weightsGrad, again.weightsGrad, `${name}: the workspace's weightsGrad array again`);
  }
});

test("a workspace asking for the accuracy: the loss's call gives batchCosineAccuracy's value, the same loss and gradients", (t) => {
  if (skipWithout(t)) return;
  const ws = new BatchWorkspace({ accuracy: true });
  for (const name of LOSSES) {
    const loss = createLoss(name) as BatchLoss;
    for (const c of [CASES[0]!, CASES[3]!, CASES[2]!]) {
      const plain = loss.compute(c.emb, c.labels, c.dim, c.weights);
      const r = loss.compute(c.emb, c.labels, c.dim, c.weights, ws);
      assert.ok(Object.is(r.loss, plain.loss), `${name}, ${c.what}: loss`);
      assert.deepEqual(r.grad, plain.grad, `${name}, ${c.what}: grad`);
      assert.deepEqual(r.weightsGrad, plain.weightsGrad, `${name}, ${c.what}: weightsGrad`);
      assert.equal(plain.accuracy, undefined, 'not asked: not computed');
      assert.equal(r.accuracy, nativeAddon().batchCosineAccuracy(c.emb, c.dim, c.labels, undefined), `${name}, ${c.what}: accuracy`);
    }
    // a NaN row: no accuracy from the loss (the trainer then sweeps in TypeScript)
    const bad = CASES[3]!.emb.slice();
    bad[5] = Number.NaN;
    assert.equal(loss.compute(bad, CASES[3]!.labels, CASES[3]!.dim, CASES[3]!.weights, ws).accuracy, undefined, `${name}: NaN row`);
  }
});

test('plain number arrays run the reference; a labels array of numbers is taken as well', (t) => {
  const c = CASES[3]!;
  for (const name of LOSSES) {
    const ref = reference(() => lossOnBatch(name, c.emb, c.labels, c.dim, { weights: c.weights }));
    const loss = createLoss(name) as BatchLoss;
    const plain = loss.compute(Array.from(c.emb), Array.from(c.labels), c.dim, Array.from(c.weights));
    assert.ok(Object.is(plain.loss, ref.loss), `${name}: number arrays give the reference's bits`);
    if (!status.available) continue;
    const mixed = loss.compute(c.emb, Array.from(c.labels), c.dim, c.weights);
    assert.ok(Math.abs(mixed.loss - ref.loss) <= LOSS_TOL * Math.abs(ref.loss), `${name}: labels as numbers`);
  }
  if (!status.available) t.diagnostic('native engine not available: the reference only');
});

// ---------------------------------------------------------------- the batch accuracy

/** every cut "same iff s ≥ t" for t = +∞ and each value: the most right */
function bruteForce(cos: Float32Array, labels: Int32Array): number {
  const n = labels.length;
  const s: number[] = [];
  const y: boolean[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) (s.push(cos[i * n + j]!), y.push(labels[i] === labels[j]));
  let best = 0;
  for (const t of [Infinity, ...s]) {
    let c = 0;
    s.forEach((v, k) => (c += (v >= t) === y[k] ? 1 : 0));
    best = Math.max(best, c);
  }
  return s.length ? best / s.length : 0;
}

function nativeAccuracy(emb: Float32Array, labels: Int32Array, dim: number): { acc: number; cos: Float32Array } {
  const n = labels.length;
  const cos = new Float32Array(n * n);
  const acc = nativeAddon().batchCosineAccuracy(emb, dim, labels, cos);
  return { acc, cos };
}

/**
 * batches that reach the sweep's every path: plain, clustered, tied, one value, many near-best
 * buckets, most pairs in one bucket
 */
function accuracyBatch(trial: number): { emb: Float32Array; labels: Int32Array; dim: number } {
  const r = new Rng(100 + trial);
  const n = [2, 3, 17, 40, 120, 150][trial % 6]!;
  const dim = [1, 3, 16, 17, 128][trial % 5]!;
  const classes = 1 + (trial % 7);
  const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
  const centers = Array.from({ length: classes * dim }, () => r.normal());
  const emb = new Float32Array(n * dim);
  const kind = Math.floor(trial / 6) % 6;
  for (let i = 0; i < n; i++)
    for (let k = 0; k < dim; k++) {
      const c = centers[labels[i]! * dim + k]!;
      switch (kind) {
        case 0: emb[i * dim + k] = r.normal(); break; // no structure
        case 1: emb[i * dim + k] = c + 0.5 * r.normal(); break; // classes apart
        case 2: emb[i * dim + k] = Math.round(c + r.normal()); break; // a few values: many ties
        case 3: emb[i * dim + k] = 1; break; // every cosine the same (one value)
        case 4: emb[i * dim + k] = c + 1e-4 * r.normal(); break; // nearly collapsed classes: many near-best buckets
        // one tight cluster and two rows opposite it: the cluster's pairs crowd one bucket (its sort)
        default: emb[i * dim + k] = (i < 2 ? -1 : 1) * (1 + (k === 0 ? 0 : 0.01 * r.normal()));
      }
    }
  return { emb, labels, dim };
}

test('native float32 accuracy = a sort-and-sweep oracle on the same float32 cosines (and a brute force, small)', (t) => {
  if (skipWithout(t)) return;
  for (let trial = 0; trial < 72; trial++) {
    const { emb, labels, dim } = accuracyBatch(trial);
    const { acc, cos } = nativeAccuracy(emb, labels, dim);
    const n = labels.length;
    assert.equal(acc, sortAndSweep(cos, labels), `trial ${trial} (${n} x ${dim}): sorted sweep`);
    if (n <= 40) assert.equal(acc, bruteForce(cos, labels), `trial ${trial}: brute force`);
    // the cosines handed out are the rows' cosines (float32 rounding of a 1e-12 float64 oracle)
    for (let probe = 0; probe < 5 && n > 1; probe++) {
      const i = (probe * 7) % n;
      const j = (probe * 13 + 1) % n;
      if (i === j) continue;
      let d = 0;
      let qi = 0;
      let qj = 0;
      for (let k = 0; k < dim; k++) {
        d += emb[i * dim + k]! * emb[j * dim + k]!;
        qi += emb[i * dim + k]! ** 2;
        qj += emb[j * dim + k]! ** 2;
      }
      // norms floored at 1e-12, as F.normalize (a zero row: cosine 0)
      const want = d / (Math.max(Math.sqrt(qi), 1e-12) * Math.max(Math.sqrt(qj), 1e-12));
      assert.ok(Math.abs(cos[i * n + j]! - want) <= 1e-5, `trial ${trial}: cos[${i},${j}] ${cos[i * n + j]}, float64 ${want}`);
      assert.equal(cos[i * n + j], cos[j * n + i], 'symmetric');
    }
    assert.equal(batchPairAccuracy(emb, labels, dim), acc, `trial ${trial}: the trainer's batchPairAccuracy takes the addon's`);
  }
});

test('native float32 accuracy = the float64 TypeScript accuracy where no two cosines lie within 1e-5', (t) => {
  if (skipWithout(t)) return;
  let compared = 0;
  for (let seed = 0; compared < 12 && seed < 200; seed++) {
    const r = new Rng(5000 + seed);
    const n = 8 + (seed % 20);
    const dim = [4, 16, 33][seed % 3]!;
    const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * 3));
    const emb = Float32Array.from({ length: n * dim }, () => r.normal() + (r.next() < 0.3 ? 1 : 0));
    const { acc, cos } = nativeAccuracy(emb, labels, dim);
    // the precondition, checked on the float32 cosines (within 1e-6 of the float64 ones)
    const s: number[] = [];
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) s.push(cos[i * n + j]!);
    s.sort((a, b) => a - b);
    if (s.some((v, k) => k > 0 && v - s[k - 1]! < 1e-5)) continue;
    compared++;
    assert.equal(acc, reference(() => batchPairAccuracy(emb, labels, dim)), `seed ${seed}: native float32 and TypeScript float64`);
  }
  assert.equal(compared, 12, 'enough batches without near-ties');
});

test('the native accuracy leaves NaN and infinities to TypeScript (-1), and batchPairAccuracy then sweeps there', (t) => {
  if (skipWithout(t)) return;
  const emb = Float32Array.of(1, 0, 0, 1, Number.NaN, 1, 1, 1);
  const labels = Int32Array.of(0, 0, 1, 1);
  assert.equal(nativeAddon().batchCosineAccuracy(emb, 2, labels, undefined), -1);
  assert.equal(nativeAddon().batchCosineAccuracy(Float32Array.of(1, 0, Infinity, 1), 2, Int32Array.of(0, 1), undefined), -1);
  assert.equal(batchPairAccuracy(emb, labels, 2), reference(() => batchPairAccuracy(emb, labels, 2)));
  assert.equal(nativeAddon().batchCosineAccuracy(new Float32Array(0), 3, new Int32Array(0), undefined), 0, 'no rows');
  assert.equal(nativeAddon().batchCosineAccuracy(Float32Array.of(1, 2), 2, Int32Array.of(0), undefined), 0, 'one row: no pairs');
});

test('native class-weight step and accuracy refuse bad arguments with one line', (t) => {
  if (skipWithout(t)) return;
  const k = nativeAddon();
  const x = new Float32Array(12);
  const w = new Float32Array(6);
  const l = Int32Array.of(0, 1, 0, 1);
  const g = new Float32Array(12);
  const wg = new Float32Array(6);
  assert.throws(() => k.batchProxyLoss(3, 0.1, 32, x, l, w, 3, g, wg, undefined), /^Error: batchProxyLoss: kind must be 0/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, l, w, 0, g, wg, undefined), /dim must be a positive integer/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, new Float32Array(11), l, w, 3, g, wg, undefined), /array sizes do not fit/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, l, new Float32Array(7), 3, g, wg, undefined), /array sizes do not fit/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, l, w, 3, g, new Float32Array(5), undefined), /array sizes do not fit/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, Int32Array.of(0, 1, 2, 1), w, 3, g, wg, undefined), /a label is not a class index/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, Int32Array.of(0, -1, 0, 1), w, 3, g, wg, undefined), /a label is not a class index/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, new Float32Array(0), new Int32Array(0), w, 3, new Float32Array(0), wg, undefined), /n = labels.length >= 1/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, new Float64Array(12) as unknown as Float32Array, l, w, 3, g, wg, undefined), /must be Float32Arrays/);
  assert.throws(() => k.batchProxyLoss(0, 'a' as unknown as number, 32, x, l, w, 3, g, wg, undefined), /parameters must be numbers/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, l, w, 3, g, wg, new Float64Array(0)), /acc must be a Float64Array of one value/);
  assert.throws(() => k.batchProxyLoss(0, 0.1, 32, x, l, w, 3, g, wg, new Float32Array(1) as unknown as Float64Array), /acc must be a Float64Array/);
  assert.throws(() => k.batchCosineAccuracy(x, 3, Int32Array.of(0, 1), undefined), /batchCosineAccuracy: x must be/);
  assert.throws(() => k.batchCosineAccuracy(x, 3, l, new Float32Array(15)), /cos must be a Float32Array of n x n/);
  assert.throws(() => k.batchCosineAccuracy(x, 0, l, undefined), /dim must be a positive integer/);
  assert.throws(() => k.batchCosineAccuracy(x, 3, new Float32Array(4) as unknown as Int32Array, undefined), /labels must be an Int32Array/);
});

test('lossOnBatch with opts.weights: the same through the public API, and the TypeScript checks first', (t) => {
  const c = CASES[1]!;
  for (const name of LOSSES) {
    assert.throws(() => lossOnBatch(name, c.emb, Int32Array.from(c.labels, (y, i) => (i === 3 ? 99 : y)), c.dim, { weights: c.weights }), /label 99 is not a class index/);
    assert.throws(() => lossOnBatch(name, c.emb, c.labels, c.dim, { weights: c.weights.subarray(1) }), /not a whole number of rows/);
    const r = lossOnBatch(name, c.emb, c.labels, c.dim, { weights: c.weights });
    assert.ok(Number.isFinite(r.loss) && r.grad.length === c.emb.length && r.weightsGrad!.length === c.weights.length, name);
  }
  if (!status.available) t.diagnostic('native engine not available: the reference ran');
});
