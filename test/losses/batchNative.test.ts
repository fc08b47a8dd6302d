/**
 * The batch losses' products in the native addon (native/src/batchsim.c) against the TypeScript
 * reference (src/losses/batch.ts): the same sums in the same order, so the same bits — on random
 * seeded batches of shapes that are and are not multiples of the SIMD width, for every kernel.
 * (The losses themselves run whole in native/src/batchpair.c and batchproxy.c, not the
 * reference's bits: batchPairNative.test.ts and batchProxyNative.test.ts check them within
 * their tolerances.) The reference itself against a plain float64 oracle. Where the addon is not
 * built, the losses run the reference (checked, and said).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { BatchWorkspace, normalizeRows, similarities } from '../../src/losses/batch.ts';
import { batchKernels, useBatchKernels } from '../../src/losses/batchKernels.ts';
import { createLoss } from '../../src/losses/registry.ts';
import type { BatchLoss } from '../../src/losses/batch.ts';
import { batchPairAccuracy } from '../../src/train/batchAccuracy.ts';
import { Rng } from '../../src/rng.ts';

const status = nativeStatus();
/** [batch, dim, classes]: the engine's 120 x 128, vector-width multiples, odd sizes, 1 x 1 */
const SHAPES: [number, number, number][] = [
  [120, 128, 10],
  [64, 64, 16],
  [33, 17, 5],
  [50, 129, 7],
  [7, 3, 3],
  [9, 8, 2],
  [2, 1, 2],
  [1, 1, 1],
];

function batch(seed: number, n: number, dim: number, classes: number): { emb: Float32Array; labels: Int32Array } {
  const r = new Rng(seed);
  const emb = Float32Array.from({ length: n * dim }, () => r.normal() * (0.5 + r.next()));
  const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
  return { emb, labels };
}

/** every element the same bits (NaN = NaN, −0 ≠ +0) */
function assertSameBits(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined, what: string): void {
  assert.equal(a?.length, b?.length, `${what}: lengths`);
  if (!a || !b) return;
  for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `${what}[${i}]: native ${a[i]}, reference ${b[i]}`);
}

/** fn with the reference products (the native kernels taken out meanwhile) */
function reference<T>(fn: () => T): T {
  const k = useBatchKernels(null);
  try {
    return fn();
  } finally {
    useBatchKernels(k);
  }
}

test('the reference products against a plain float64 oracle (1e-12)', () => {
  const { emb } = batch(3, 13, 7, 3);
  const { u, norms } = normalizeRows(emb, 13, 7);
  const s = similarities(u, 13, u, 13, 7);
  for (let i = 0; i < 13; i++) {
    let q = 0;
    for (let k = 0; k < 7; k++) q += emb[i * 7 + k]! ** 2;
    assert.ok(Math.abs(norms[i]! - Math.sqrt(q)) <= 1e-12 * Math.sqrt(q));
    for (let j = 0; j < 13; j++) {
      let d = 0;
      let qj = 0;
      for (let k = 0; k < 7; k++) {
        d += emb[i * 7 + k]! * emb[j * 7 + k]!;
        qj += emb[j * 7 + k]! ** 2;
      }
      assert.ok(Math.abs(s[i * 13 + j]! - d / Math.sqrt(q * qj)) <= 1e-12, `S[${i},${j}]`);
    }
  }
});

test('native kernels: normalisation, similarities and raw cosines = the reference, bit for bit', (t) => {
  if (!status.available) {
    assert.equal(batchKernels(), null);
    t.diagnostic(`native engine not available (${status.detail}): the losses run the reference`);
    return;
  }
  const k = nativeAddon();
  assert.ok(batchKernels(), 'loading the addon plugs its kernels in');
  for (const [n, dim, classes] of SHAPES) {
    const { emb } = batch(n * 31 + dim, n, dim, classes);
    const ref = normalizeRows(emb, n, dim);
    const u = new Float64Array(n * dim);
    const norms = new Float64Array(n);
    k.batchNormalize(emb, n, dim, u, norms);
    assertSameBits(u, ref.u, `normalize ${n}x${dim}`);
    assertSameBits(norms, ref.norms, `norms ${n}x${dim}`);
    const s = new Float64Array(n * n);
    k.batchSimilarities(u, n, u, n, dim, s);
    assertSameBits(s, similarities(ref.u, n, ref.u, n, dim), `S = UUᵀ ${n}x${dim}`);
    const w = normalizeRows(batch(dim, classes, dim, 1).emb, classes, dim).u;
    const c = new Float64Array(n * classes);
    k.batchSimilarities(u, n, w, classes, dim, c);
    assertSameBits(c, similarities(ref.u, n, w, classes, dim), `C = UWᵀ ${n}x${classes}x${dim}`);
  }
});

// No batch loss compares bit for bit with the reference any more: the pair-based losses run
// whole in batchpair.c (batchPairNative.test.ts) and the class-weight losses in batchproxy.c
// (batchProxyNative.test.ts), each within its stated tolerance.

// The native accuracy ranks float32 cosines, the reference float64 ones: equal where no two
// pairs' cosines lie within float32 rounding of each other at the best cut, as on these seeds
// (batchProxyNative.test.ts checks the native sweep against an oracle on its own cosines).
test("the trainer's batch accuracy from raw cosines: native = reference", (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail}): the reference only`);
    return;
  }
  for (const [n, dim, classes] of SHAPES) {
    const { emb, labels } = batch(5 * n + dim, n, dim, classes);
    assert.equal(batchPairAccuracy(emb, labels, dim), reference(() => batchPairAccuracy(emb, labels, dim)), `${n}x${dim}`);
  }
});

test('a workspace: the same results, in arrays reused call after call', () => {
  const ws = new BatchWorkspace();
  for (const name of ['nt-xent', 'proxy-anchor']) {
    const loss = createLoss(name) as BatchLoss;
    const weights = loss.classWeights ? batch(9, 4, 16, 1).emb : undefined;
    const a = batch(1, 24, 16, 4);
    const b = batch(2, 24, 16, 4);
    const fresh = loss.compute(a.emb, a.labels, 16, weights);
    const first = loss.compute(a.emb, a.labels, 16, weights, ws);
    const gradCopy = first.grad.slice();
    assert.equal(first.loss, fresh.loss);
    assertSameBits(first.grad, fresh.grad, `${name} grad`);
    const second = loss.compute(b.emb, b.labels, 16, weights, ws);
    assert.equal(second.loss, loss.compute(b.emb, b.labels, 16, weights).loss);
    if (status.available) assert.equal(second.grad, first.grad, `${name}: the workspace's array again`);
    // the fresh result is untouched by the workspace's calls
    assertSameBits(fresh.grad, gradCopy, `${name} fresh grad`);
  }
});

test('native kernels refuse arrays too short for the shape with one line', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const k = nativeAddon();
  const u = new Float64Array(12);
  assert.throws(() => k.batchSimilarities(u, 4, u, 4, 3, new Float64Array(15)), /batchSimilarities: a, b and s must be/);
  assert.throws(() => k.batchNormalize(new Float32Array(11), 4, 3, u, new Float64Array(4)), /batchNormalize/);
  assert.throws(() => k.batchPairBackward(new Float64Array(16), 4, u, new Float64Array(4), 0, new Float32Array(12)), /n and dim must be positive/);
  assert.throws(() => k.batchProxyBackward(new Float64Array(8), 4, 2, u, new Float64Array(4), new Float64Array(6), new Float64Array(2), 3, new Float32Array(12), new Float32Array(5)), /array sizes/);
  assert.throws(() => k.batchRawCosines(new Float32Array(12), 4, 3, new Float64Array(4)), /batchRawCosines/);
});
