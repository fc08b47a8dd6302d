/**
 * The pair-based batch losses (multi-similarity, nt-xent, supcon, circle) whole in the native
 * addon (native/src/batchpair.c, one call per batch) against the TypeScript reference
 * (src/losses/*.ts on src/losses/batch.ts), against central finite differences of the native
 * loss itself, and call after call (the same bits); the batch accuracy the same call gives (the
 * trainer's, native/src/batchsweep.c) against sorting every pair of the loss's own similarities
 * and sweeping. Where the addon is not built, the losses run the reference (checked, and said).
 *
 * Tolerance. The native products (S = ÛÛᵀ and the gradient's back-projection) are float32 on
 * the network's GEMM: each similarity is a sum of `dim` float32 products of unit vectors, off
 * by about √dim float32 roundings, so |ΔS| <= 4·√dim·2⁻²⁴ (eps below); the loss reads S through
 * logits scaled by at most `scale` (β, 1/τ or γ(1 + m)), so its value and its gradient move by
 * at most scale·eps relative (the gradient's own float32 products add √n roundings). Measured
 * differences, worst case over these batches: the similarities at a fifth of their bound, the
 * gradients 1/35 of theirs, the losses 1/370; a wrong term, reducer or sign is orders of
 * magnitude above them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { BatchWorkspace, type BatchLoss } from '../../src/losses/batch.ts';
import { batchKernels } from '../../src/losses/batchKernels.ts';
import { createLoss, lossOnBatch } from '../../src/losses/registry.ts';
import { Rng } from '../../src/rng.ts';
import { maxAbs, reference, sortAndSweep } from './batchHelpers.ts';

const status = nativeStatus();
const F32 = 2 ** -24;

/** the losses at their defaults, with the scale of their logits (see the header) */
const LOSSES: [spec: string, scale: number][] = [
  ['multi-similarity', 50],
  ['nt-xent', 1 / 0.07],
  ['supcon', 1 / 0.1],
  ['circle', 80 * 1.4],
];

interface Case {
  what: string;
  emb: Float32Array;
  labels: Int32Array;
  dim: number;
}

function gaussian(r: Rng, n: number, dim: number): Float32Array {
  return Float32Array.from({ length: n * dim }, () => r.normal() * (0.5 + r.next()));
}

/** the batches every loss is checked on */
function cases(): Case[] {
  const r = new Rng(20261206);
  const out: Case[] = [];
  const add = (what: string, labels: number[], dim: number, emb?: Float32Array): void => {
    out.push({ what, labels: Int32Array.from(labels), dim, emb: emb ?? gaussian(r, labels.length, dim) });
  };
  // the trainer's batch: 12 of each of 10 classes, 128-d
  add('balanced 120 x 128', Array.from({ length: 120 }, (_, i) => i % 10), 128);
  add('balanced 32 x 16', Array.from({ length: 32 }, (_, i) => i % 4), 16);
  add('unbalanced 37 x 33', Array.from({ length: 37 }, () => Math.floor(r.next() ** 2 * 5)), 33);
  add('a class of one, 9 x 7', [0, 0, 0, 1, 1, 2, 2, 2, 3], 7);
  add('all one class, 6 x 5', [4, 4, 4, 4, 4, 4], 5);
  add('n = 2, one class', [1, 1], 3);
  add('n = 2, two classes', [0, 1], 3);
  add('dim 1', [0, 1, 0, 1, 2], 1);
  // a zero row: its norm is the 1e-12 floor (F.normalize divides by the constant there)
  const zero = gaussian(r, 7, 6);
  zero.fill(0, 12, 18);
  add('a zero row, 7 x 6', [0, 1, 2, 0, 1, 2, 0], 6, zero);
  add('dim 129, labels far apart', Array.from({ length: 21 }, (_, i) => (i % 3) * 1_000_000 - 7), 129);
  // nearly one direction: similarities near 1, where the logits are largest
  const base = gaussian(r, 1, 24);
  const close = Float32Array.from({ length: 16 * 24 }, (_, k) => base[k % 24]! + 0.05 * r.normal());
  add('near-duplicates 16 x 24', Array.from({ length: 16 }, (_, i) => i % 4), 24, close);
  return out;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

function assertAgrees(spec: string, scale: number, c: Case): void {
  const n = c.labels.length;
  const nat = lossOnBatch(spec, c.emb, c.labels, c.dim);
  const ref = reference(() => lossOnBatch(spec, c.emb, c.labels, c.dim));
  const eps = 4 * Math.sqrt(c.dim) * F32;
  const what = `${spec}, ${c.what}`;
  assert.ok(Number.isFinite(ref.loss) && Number.isFinite(nat.loss), `${what}: loss native ${nat.loss}, reference ${ref.loss}`);
  const dl = Math.abs(nat.loss - ref.loss);
  assert.ok(dl <= scale * eps * Math.max(1, Math.abs(ref.loss)), `${what}: loss native ${nat.loss}, reference ${ref.loss} (${dl.toExponential(2)})`);
  const ds = maxDiff(nat.similarities!, ref.similarities!);
  assert.ok(ds <= eps, `${what}: similarities differ by ${ds.toExponential(2)} > ${eps.toExponential(2)}`);
  const gmax = maxAbs(ref.grad);
  const dg = maxDiff(nat.grad, ref.grad);
  const gtol = scale * 4 * Math.sqrt(Math.max(c.dim, n)) * F32 * gmax;
  assert.ok(nat.grad.every(Number.isFinite), `${what}: a gradient value is not finite`);
  assert.ok(dg <= gtol, `${what}: gradients differ by ${dg.toExponential(2)} (max |grad| ${gmax.toExponential(2)}, tolerance ${gtol.toExponential(2)})`);
  // no pair to charge: exactly zero gradients on both paths
  if (gmax === 0) assert.equal(maxAbs(nat.grad), 0, `${what}: the reference's gradient is 0, the native one is not`);
}

test('native pair losses against the TypeScript reference, within the float32 products\' tolerance', (t) => {
  if (!status.available) {
    assert.equal(batchKernels(), null);
    t.diagnostic(`native engine not available (${status.detail}): the losses run the reference`);
    return;
  }
  assert.equal(typeof batchKernels()?.batchPairLoss, 'function', 'the addon has the whole-loss kernel');
  for (const c of cases()) for (const [spec, scale] of LOSSES) assertAgrees(spec, scale, c);
});

test('logits far past exp\'s range (the max subtracted): finite, and the reference\'s values', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  // e^(s/τ) at τ = 0.001 is e^1000: Infinity without the max shift
  const hot: [string, number][] = [
    ['multi-similarity:beta=2000;alpha=900', 2000],
    ['nt-xent:temperature=0.001', 1000],
    ['supcon:temperature=0.001', 1000],
    ['circle:gamma=1500', 1500 * 1.4],
  ];
  for (const c of cases().filter((x) => /near-duplicates|balanced 32|class of one/.test(x.what))) {
    for (const [spec, scale] of hot) {
      const r = lossOnBatch(spec, c.emb, c.labels, c.dim);
      assert.ok(Number.isFinite(r.loss) && r.grad.every(Number.isFinite), `${spec}, ${c.what}: loss ${r.loss}`);
      assertAgrees(spec, scale, c);
    }
  }
});

test('hand-computed: two classes of two on the unit circle', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  // anchors at 0°, 60° (class 0) and 90°, 180° (class 1): s = cos of the angle between them
  const ang = [0, Math.PI / 3, Math.PI / 2, Math.PI];
  const emb = Float32Array.from(ang.flatMap((a) => [Math.cos(a), Math.sin(a)]));
  const labels = Int32Array.of(0, 0, 1, 1);
  const s = ang.map((a) => ang.map((b) => Math.cos(a - b)));
  const ids = [0, 1, 2, 3];
  // supcon at τ = 1: per anchor −(1/|P|) Σ_p log(e^s_p / Σ_{j≠i} e^s_j), the mean over the four
  const per = ids.map((i) => {
    const others = ids.filter((j) => j !== i);
    const lse = Math.log(others.reduce((a, j) => a + Math.exp(s[i]![j]!), 0));
    const p = others.find((j) => labels[j] === labels[i])!;
    return lse - s[i]![p]!;
  });
  const expected = per.reduce((a, b) => a + b, 0) / 4;
  const got = lossOnBatch('supcon:temperature=1', emb, labels, 2).loss;
  assert.ok(Math.abs(got - expected) <= 1e-6, `supcon: ${got}, by hand ${expected}`);
  // multi-similarity at α = β = 1, λ = 0.5: per anchor log(1 + e^−(s_p − ½)) + log(1 + Σ_n e^(s_n − ½))
  const ms =
    ids
      .map((i) => {
        const others = ids.filter((j) => j !== i);
        const p = others.find((j) => labels[j] === labels[i])!;
        const negs = others.filter((j) => labels[j] !== labels[i]);
        return Math.log1p(Math.exp(-(s[i]![p]! - 0.5))) + Math.log1p(negs.reduce((a, j) => a + Math.exp(s[i]![j]! - 0.5), 0));
      })
      .reduce((a, b) => a + b, 0) / 4;
  const gotMs = lossOnBatch('multi-similarity:alpha=1;beta=1', emb, labels, 2).loss;
  assert.ok(Math.abs(gotMs - ms) <= 1e-6, `multi-similarity: ${gotMs}, by hand ${ms}`);
});

test('the native gradient against central differences of the native loss', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const r = new Rng(77);
  const n = 10;
  const dim = 6;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  // moderate logit scales: the float32 products' noise in the loss stays far below h·|grad|.
  // (Not circle: its gradient holds the weights a_p, a_n constant, as PML detaches them, so it
  // is not the loss's derivative; batchLosses.test.ts checks it against a frozen-weight oracle
  // and the first test here against the reference.)
  for (const spec of ['multi-similarity:beta=10', 'nt-xent:temperature=0.5', 'supcon:temperature=0.5']) {
    const emb = gaussian(r, n, dim);
    const { grad } = lossOnBatch(spec, emb, labels, dim);
    const gmax = maxAbs(grad);
    assert.ok(gmax > 0, `${spec}: a gradient`);
    for (let k = 0; k < n * dim; k += 3) {
      const x = emb[k]!;
      const h = 2 ** -8;
      const at = (v: number): number => {
        const e = emb.slice();
        e[k] = v;
        return lossOnBatch(spec, e, labels, dim).loss;
      };
      // x ± h are exact in float32 (h a power of two, |x| < 8): the difference is over 2h exactly
      const fd = (at(x + h) - at(x - h)) / (2 * h);
      assert.ok(Math.abs(fd - grad[k]!) <= 2e-3 * gmax + 1e-3 * Math.abs(fd), `${spec} dL/dx[${k}]: native ${grad[k]}, finite difference ${fd}`);
    }
  }
});

test('the same bits call after call, with a workspace or without, and int32 labels in any array', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const c = cases()[0]!;
  for (const [spec] of LOSSES) {
    const loss = createLoss(spec) as BatchLoss;
    const ws = new BatchWorkspace();
    const a = loss.compute(c.emb, c.labels, c.dim);
    const other = cases()[2]!;
    loss.compute(other.emb, other.labels, other.dim, undefined, ws); // the workspace's arrays in another shape first
    const b = loss.compute(c.emb, c.labels, c.dim, undefined, ws);
    const d = loss.compute(c.emb, Array.from(c.labels), c.dim);
    for (const r of [b, d]) {
      assert.ok(Object.is(r.loss, a.loss), `${spec}: loss ${r.loss} then ${a.loss}`);
      assert.equal(maxDiff(r.grad, a.grad), 0, `${spec}: gradients differ between calls`);
      assert.ok(r.grad.every((v, i) => Object.is(v, a.grad[i])), `${spec}: gradient bits differ between calls`);
      assert.ok(r.similarities!.every((v, i) => Object.is(v, a.similarities![i])), `${spec}: similarity bits differ`);
    }
    // labels that are not int32 values take the reference: the result is the reference's
    const frac = Array.from(c.labels, (y) => y + 0.5);
    const viaRef = loss.compute(c.emb, frac, c.dim);
    const ref = reference(() => loss.compute(c.emb, frac, c.dim));
    assert.ok(Object.is(viaRef.loss, ref.loss), `${spec}: non-int32 labels give the reference's loss`);
  }
});

test('the whole-loss kernel refuses bad arguments with one clear line', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const k = nativeAddon();
  const x = new Float32Array(12);
  const labels = Int32Array.of(0, 0, 1, 1);
  const g = new Float32Array(12);
  const s = new Float64Array(16);
  const p = Float64Array.of(2, 50, 0.5);
  assert.throws(() => k.batchPairLoss(4, p, x, labels, 3, g, s, undefined), /batchPairLoss: kind must be 0 \(multi-similarity\)/);
  assert.throws(() => k.batchPairLoss(0, Float64Array.of(2), x, labels, 3, g, s, undefined), /batchPairLoss: params must be/);
  assert.throws(() => k.batchPairLoss(3, Float64Array.of(0.25, 80), x, new Int32Array(0), 3, g, s, undefined), /batchPairLoss: labels must be an Int32Array of 1 to 46340 values/);
  assert.throws(() => k.batchPairLoss(0, p, x, Float64Array.of(0, 0, 1, 1) as never, 3, g, s, undefined), /labels must be an Int32Array/);
  assert.throws(() => k.batchPairLoss(0, p, x, labels, 0, g, s, undefined), /dim must be a positive integer/);
  assert.throws(() => k.batchPairLoss(0, p, new Float32Array(11), labels, 3, g, s, undefined), /x and grad \(Float32Array\) must hold n x dim/);
  assert.throws(() => k.batchPairLoss(0, p, x, labels, 3, g, new Float64Array(15), undefined), /sims \(Float64Array\) n x n/);
  assert.throws(() => (k.batchPairLoss as (...a: unknown[]) => number)(0, p, x), /too few arguments/);
  assert.throws(() => k.batchPairLoss(0, p, x, labels, 3, g, s, new Float32Array(1) as never), /batchPairLoss: acc must be a Float64Array of one value or undefined/);
  assert.throws(() => k.batchPairLoss(0, p, x, labels, 3, g, s, new Float64Array(0)), /acc must be/);
  // and a good call after them
  assert.ok(Number.isFinite(k.batchPairLoss(1, Float64Array.of(0.1), x.map((_, i) => i % 5), labels, 3, g, s, undefined)));
});


/** noisy batches (labels drawn at random, unrelated to the rows: most buckets could hold the best cut), ties, one value */
function accuracyCases(): Case[] {
  const r = new Rng(77);
  const out: Case[] = [];
  const rand = (n: number, classes: number): Int32Array => Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
  for (const [n, dim, classes] of [
    [120, 128, 10],
    [120, 128, 2],
    [250, 16, 30],
    [37, 3, 4],
    [17, 5, 3],
  ] as const) {
    out.push({ what: `noisy ${n} x ${dim}, ${classes} classes`, labels: rand(n, classes), dim, emb: gaussian(r, n, dim) });
  }
  // signal: classes round their centres
  const labels = rand(96, 8);
  const centres = gaussian(r, 8, 32);
  out.push({ what: 'clustered 96 x 32', labels, dim: 32, emb: Float32Array.from({ length: 96 * 32 }, (_, q) => centres[labels[Math.floor(q / 32)]! * 32 + (q % 32)]! + 0.7 * r.normal()) });
  // rows drawn from 4 vectors: whole groups of pairs with the very same similarity
  const four = gaussian(r, 4, 8);
  const pick = rand(60, 4);
  out.push({ what: 'exact ties, 60 x 8', labels: rand(60, 3), dim: 8, emb: Float32Array.from({ length: 60 * 8 }, (_, q) => four[pick[Math.floor(q / 8)]! * 8 + (q % 8)]!) });
  // every row the same: one value (no range to bucket)
  out.push({ what: 'one value, 20 x 4', labels: rand(20, 3), dim: 4, emb: Float32Array.from({ length: 80 }, (_, q) => [1, 2, 3, 4][q % 4]!) });
  return out;
}

test("the batch accuracy from the loss's own call = sorting all its similarities' pairs and sweeping (noisy batches, ties)", (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail}): the trainer sweeps the reference's similarities`);
    return;
  }
  const ws = new BatchWorkspace({ accuracy: true });
  for (const c of accuracyCases()) {
    for (const [spec] of LOSSES) {
      const r = (createLoss(spec) as BatchLoss).compute(c.emb, c.labels, c.dim, undefined, ws);
      assert.equal(r.accuracy, sortAndSweep(r.similarities!, c.labels), `${spec}, ${c.what}`);
    }
    // the kernel itself, and the same as without the accuracy
    const n = c.labels.length;
    const acc = Float64Array.of(-2);
    const g = new Float32Array(n * c.dim);
    const s = new Float64Array(n * n);
    const loss = nativeAddon().batchPairLoss(1, Float64Array.of(0.07), c.emb, c.labels, c.dim, g, s, acc);
    assert.equal(acc[0], sortAndSweep(s, c.labels), `kernel, ${c.what}`);
    assert.ok(Object.is(loss, nativeAddon().batchPairLoss(1, Float64Array.of(0.07), c.emb, c.labels, c.dim, g, s, undefined)), `${c.what}: the loss with and without acc`);
  }
});

test('the batch accuracy: no pairs gives 0; a NaN row gives -1 from the kernel and no accuracy in the result (the trainer sweeps in TypeScript)', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const acc = Float64Array.of(-2);
  nativeAddon().batchPairLoss(1, Float64Array.of(0.1), Float32Array.of(1, 2), Int32Array.of(0), 2, new Float32Array(2), new Float64Array(1), acc);
  assert.equal(acc[0], 0, 'one row');
  const emb = Float32Array.of(1, 0, 0, 1, Number.NaN, 1, 1, 1);
  const labels = Int32Array.of(0, 0, 1, 1);
  nativeAddon().batchPairLoss(0, Float64Array.of(2, 50, 0.5), emb, labels, 2, new Float32Array(8), new Float64Array(16), acc);
  assert.equal(acc[0], -1);
  const r = (createLoss('supcon') as BatchLoss).compute(emb, labels, 2, undefined, new BatchWorkspace({ accuracy: true }));
  assert.equal(r.accuracy, undefined);
  // without the accuracy asked for, none computed
  assert.equal((createLoss('supcon') as BatchLoss).compute(accuracyCases()[3]!.emb, accuracyCases()[3]!.labels, 3, undefined, new BatchWorkspace()).accuracy, undefined);
});

test('without a float64 copy of S (the trainer\'s workspace, the kernel given no sims): the same loss, gradient and accuracy bits', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const withS = new BatchWorkspace({ accuracy: true });
  const withoutS = new BatchWorkspace({ accuracy: true, similarities: false });
  const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));
  // n a multiple of 8 (S written straight into sims) and not (S copied out of the kernel's own)
  for (const c of [...cases(), ...accuracyCases()]) {
    for (const [spec] of LOSSES) {
      const loss = createLoss(spec) as BatchLoss;
      const a = loss.compute(c.emb, c.labels, c.dim, undefined, withS);
      const aGrad = a.grad.slice();
      const b = loss.compute(c.emb, c.labels, c.dim, undefined, withoutS);
      assert.ok(Object.is(a.loss, b.loss), `${spec}, ${c.what}: loss ${a.loss} with S, ${b.loss} without`);
      assert.ok(sameBits(aGrad, b.grad), `${spec}, ${c.what}: gradient bits differ without S`);
      assert.ok(a.accuracy !== undefined && Object.is(a.accuracy, b.accuracy), `${spec}, ${c.what}: accuracy ${a.accuracy} with S, ${b.accuracy} without`);
      assert.equal(b.similarities, undefined, `${spec}, ${c.what}: no similarities asked for`);
    }
    // the kernel itself: sims a Float64Array, null or undefined
    const n = c.labels.length;
    const run = (sims: Float64Array | null | undefined): { loss: number; grad: Float32Array; acc: number } => {
      const grad = new Float32Array(n * c.dim);
      const acc = Float64Array.of(-2);
      return { loss: nativeAddon().batchPairLoss(3, Float64Array.of(0.4, 80), c.emb, c.labels, c.dim, grad, sims, acc), grad, acc: acc[0]! };
    };
    const ref = run(new Float64Array(n * n));
    for (const r of [run(null), run(undefined)]) {
      assert.ok(Object.is(r.loss, ref.loss) && Object.is(r.acc, ref.acc) && sameBits(r.grad, ref.grad), `kernel, ${c.what}: the same bits without sims`);
    }
  }
  // a NaN row: no accuracy from the kernel, so the similarities come back for the trainer's sweep,
  // the very ones (and loss, gradient) the call with S gives
  const emb = cases()[1]!.emb.slice();
  emb[5 * 16 + 3] = Number.NaN;
  const labels = cases()[1]!.labels;
  for (const [spec] of LOSSES) {
    const loss = createLoss(spec) as BatchLoss;
    const a = loss.compute(emb, labels, 16, undefined, withS);
    const aGrad = a.grad.slice();
    const aSims = a.similarities!.slice();
    const b = loss.compute(emb, labels, 16, undefined, withoutS);
    assert.equal(a.accuracy, undefined);
    assert.equal(b.accuracy, undefined);
    assert.ok(Number.isNaN(b.loss), `${spec}: a NaN row makes the loss NaN (the trainer stops the run)`);
    assert.ok(Object.is(a.loss, b.loss) && sameBits(aGrad, b.grad), `${spec}: NaN batch, loss or gradient bits differ without S`);
    assert.ok(b.similarities !== undefined && sameBits(aSims, b.similarities), `${spec}: NaN batch, the similarities for the sweep differ`);
    assert.ok(aSims.some((v) => Number.isNaN(v)) && aSims.some((v) => !Number.isNaN(v)), `${spec}: the batch has NaN and finite similarities`);
  }
  // and a wrong-length sims still refused
  assert.throws(() => nativeAddon().batchPairLoss(1, Float64Array.of(0.1), Float32Array.of(1, 2, 3, 4), Int32Array.of(0, 1), 2, new Float32Array(4), new Float64Array(3), undefined), /sims \(Float64Array\) n x n or be null/);
});
