/**
 * The batch losses (multi-similarity, nt-xent, supcon, circle, arcface, cosface, proxy-anchor)
 * against (i) hand-computed small cases, (ii) a separate, plainly written float64 oracle of each
 * published definition (with PML 2.9's reducers), and (iii) central finite differences of that
 * oracle for the gradients with respect to the embeddings and the class weights.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataError, UsageError } from '../../src/errors.ts';
import { createLoss, lossOnBatch } from '../../src/losses/registry.ts';
import { type BatchLoss, normalizeRows, similarities } from '../../src/losses/batch.ts';
import { Rng } from '../../src/rng.ts';
import { nativeStatus } from '../../src/engine/native.ts';
import { batchKernels } from '../../src/losses/batchKernels.ts';
import { dot, reference, unitRows } from './batchHelpers.ts';

type Oracle = (e: Float64Array, labels: number[], dim: number, w?: Float64Array, frozen?: number[][]) => number;

function sims(e: Float64Array, n: number, dim: number): number[][] {
  const u = unitRows(e, n, dim);
  return u.map((a) => u.map((b) => dot(a, b)));
}
const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const nonZeroMean = (xs: number[]): number => mean(xs.filter((x) => x > 0));

const msOracle: Oracle = (e, y, dim) => {
  const s = sims(e, y.length, dim);
  return mean(
    y.map((yi, i) => {
      let pos = 0;
      let neg = 0;
      y.forEach((yj, j) => {
        if (j !== i && yj === yi) pos += Math.exp(-2 * (s[i]![j]! - 0.5));
        if (yj !== yi) neg += Math.exp(50 * (s[i]![j]! - 0.5));
      });
      return Math.log(1 + pos) / 2 + Math.log(1 + neg) / 50;
    }),
  );
};

const ntXentOracle: Oracle = (e, y, dim) => {
  const s = sims(e, y.length, dim);
  const losses: number[] = [];
  y.forEach((yi, i) =>
    y.forEach((yp, p) => {
      if (p === i || yp !== yi) return;
      const num = Math.exp(s[i]![p]! / 0.07);
      let den = num;
      y.forEach((yn, k) => {
        if (yn !== yi) den += Math.exp(s[i]![k]! / 0.07);
      });
      losses.push(-Math.log(num / den));
    }),
  );
  return mean(losses);
};

const supConOracle: Oracle = (e, y, dim) => {
  const s = sims(e, y.length, dim);
  return nonZeroMean(
    y.map((yi, i) => {
      let den = 0;
      y.forEach((_, j) => {
        if (j !== i) den += Math.exp(s[i]![j]! / 0.1);
      });
      const logs: number[] = [];
      y.forEach((yj, j) => {
        if (j !== i && yj === yi) logs.push(Math.log(Math.exp(s[i]![j]! / 0.1) / den));
      });
      return logs.length ? -mean(logs) : 0;
    }),
  );
};

/** Circle loss as the paper writes it: log(1 + Σ_n e^(γ a_n (s_n − Δn)) · Σ_p e^(−γ a_p (s_p − Δp))); a from `frozen` sims when given. */
const circleOracle: Oracle = (e, y, dim, _w, frozen) => {
  const s = sims(e, y.length, dim);
  const a = frozen ?? s;
  const m = 0.4;
  const g = 80;
  const per: number[] = [];
  y.forEach((yi, i) => {
    let sp = 0;
    let sn = 0;
    let np = 0;
    let nn = 0;
    y.forEach((yj, j) => {
      if (j === i) return;
      if (yj === yi) {
        np++;
        sp += Math.exp(-g * Math.max(1 + m - a[i]![j]!, 0) * (s[i]![j]! - (1 - m)));
      } else {
        nn++;
        sn += Math.exp(g * Math.max(a[i]![j]! + m, 0) * (s[i]![j]! - m));
      }
    });
    if (np && nn) per.push(Math.log(1 + sn * sp));
  });
  return nonZeroMean(per);
};

function classCos(e: Float64Array, y: number[], dim: number, w: Float64Array): number[][] {
  const u = unitRows(e, y.length, dim);
  const p = unitRows(w, w.length / dim, dim);
  return u.map((a) => p.map((b) => dot(a, b)));
}

const arcOracle: Oracle = (e, y, dim, w) => {
  const c = classCos(e, y, dim, w!);
  const m = (28.6 * Math.PI) / 180;
  return mean(
    y.map((yi, i) => {
      const th = Math.acos(c[i]![yi]!);
      const target = Math.exp(64 * (th <= Math.PI - m ? Math.cos(th + m) : Math.cos(th) - m * Math.sin(m)));
      let den = target;
      c[i]!.forEach((v, j) => {
        if (j !== yi) den += Math.exp(64 * v);
      });
      return -Math.log(target / den);
    }),
  );
};

const cosOracle: Oracle = (e, y, dim, w) => {
  const c = classCos(e, y, dim, w!);
  return mean(
    y.map((yi, i) => {
      const target = Math.exp(64 * (c[i]![yi]! - 0.35));
      let den = target;
      c[i]!.forEach((v, j) => {
        if (j !== yi) den += Math.exp(64 * v);
      });
      return -Math.log(target / den);
    }),
  );
};

const proxyAnchorOracle: Oracle = (e, y, dim, w) => {
  const c = classCos(e, y, dim, w!);
  const classes = w!.length / dim;
  let pos = 0;
  let withPos = 0;
  let neg = 0;
  for (let p = 0; p < classes; p++) {
    let sp = 0;
    let sn = 0;
    let has = false;
    y.forEach((yi, i) => {
      if (yi === p) {
        has = true;
        sp += Math.exp(-32 * (c[i]![p]! - 0.1));
      } else sn += Math.exp(32 * (c[i]![p]! + 0.1));
    });
    if (has) {
      withPos++;
      pos += Math.log(1 + sp);
    }
    neg += Math.log(1 + sn);
  }
  return pos / withPos + neg / classes;
};

const CASES: [string, Oracle][] = [
  ['multi-similarity', msOracle],
  ['nt-xent', ntXentOracle],
  ['supcon', supConOracle],
  ['circle', circleOracle],
  ['arcface', arcOracle],
  ['cosface', cosOracle],
  ['proxy-anchor', proxyAnchorOracle],
];

function randomBatch(seed: number, n: number, dim: number, scale = 1): Float64Array {
  const r = new Rng(seed);
  return Float64Array.from({ length: n * dim }, () => scale * r.normal());
}

function assertNear(actual: number, expected: number, rtol: number, what: string, atol = 1e-9): void {
  assert.ok(Number.isFinite(actual), `${what}: got ${actual}`);
  assert.ok(Math.abs(actual - expected) <= rtol * Math.abs(expected) + atol, `${what}: got ${actual}, expected ${expected}`);
}

const LABELS = [0, 0, 1, 1, 2, 2, 0, 1];
const DIM = 5;

for (const [name, oracle] of CASES) {
  test(`${name}: loss = the float64 oracle, gradients = central differences`, () => {
    const loss = createLoss(name) as BatchLoss;
    assert.equal(loss.kind, 'batch');
    // embeddings of norm ~2 (not unit): the gradient must go back through the normalisation
    const e = randomBatch(1, LABELS.length, DIM, 0.9);
    const w = loss.classWeights ? randomBatch(2, 3, DIM) : undefined;
    const r = loss.compute(e, LABELS, DIM, w);
    const frozen = name === 'circle' ? sims(e, LABELS.length, DIM) : undefined; // circle's a_p, a_n are constants
    const f = (x: Float64Array, ww?: Float64Array): number => oracle(x, LABELS, DIM, ww, frozen);
    assertNear(r.loss, f(e, w), 1e-9, `${name} loss`);
    const h = 1e-6;
    const check = (vec: Float64Array, grad: Float32Array, at: (v: Float64Array) => number, what: string): void => {
      const gmax = Math.max(...Array.from(grad, Math.abs));
      assert.ok(gmax > 1e-6, `${name}: ${what} gradient is all zero`);
      for (let k = 0; k < vec.length; k++) {
        const v = vec[k]!;
        vec[k] = v + h;
        const up = at(vec);
        vec[k] = v - h;
        const down = at(vec);
        vec[k] = v;
        const fd = (up - down) / (2 * h);
        assert.ok(Math.abs(grad[k]! - fd) <= 1e-4 * gmax + 1e-7, `${name} d/d${what}[${k}]: got ${grad[k]}, finite differences ${fd}`);
      }
    };
    check(e, r.grad, (x) => f(x, w), 'embedding');
    if (w) {
      assert.ok(r.weightsGrad, `${name} returns the weights' gradient`);
      check(w, r.weightsGrad, (x) => f(e, x), 'weights');
    } else assert.equal(r.weightsGrad, undefined);
  });
}

test('hand-computed: multi-similarity on three points in the plane', () => {
  // a = (1,0), p = (0,1) of class 0; n = (2,0) of class 1: s_ap = 0, s_an = 1, s_pn = 0
  const e = Float32Array.of(1, 0, 0, 1, 2, 0);
  const r = lossOnBatch('multi-similarity', e, Int32Array.of(0, 0, 1), 2);
  const pos = Math.log(1 + Math.E) / 2; // (1/2)·log(1 + e^(−2(0 − 0.5)))
  const expected = (pos + Math.log(1 + Math.exp(25)) / 50 + (pos + Math.log(1 + Math.exp(-25)) / 50) + Math.log(1 + Math.exp(25) + Math.exp(-25)) / 50) / 3;
  assertNear(r.loss, expected, 1e-12, 'multi-similarity');
});

test('hand-computed: nt-xent and supcon on four points', () => {
  // (1,0),(1,0) class 0; (0,1),(−1,0) class 1. Sims: s01 = 1, s02 = 0, s03 = −1, s12 = 0, s13 = −1, s23 = 0
  const e = Float32Array.of(1, 0, 1, 0, 0, 1, -1, 0);
  const y = Int32Array.of(0, 0, 1, 1);
  const t = 0.07;
  // anchors 0 and 1: positive at s = 1, negatives at s = 0 and −1; anchor 2 = (0,1): positive
  // at s = 0, negatives at 0, 0; anchor 3 = (−1,0): positive at 0, negatives at −1, −1
  const a = -Math.log(Math.exp(1 / t) / (Math.exp(1 / t) + 1 + Math.exp(-1 / t)));
  const b2 = Math.log(3);
  const b3 = (tt: number): number => Math.log(1 + 2 * Math.exp(-1 / tt));
  assertNear(lossOnBatch('nt-xent', e, y, 2).loss, (2 * a + b2 + b3(t)) / 4, 1e-12, 'nt-xent');
  // supcon's denominators hold every j ≠ i: here the same sets (one positive per anchor)
  const T = 0.1;
  const sa = -Math.log(Math.exp(1 / T) / (Math.exp(1 / T) + 1 + Math.exp(-1 / T)));
  assertNear(lossOnBatch('supcon', e, y, 2).loss, (2 * sa + b2 + b3(T)) / 4, 1e-12, 'supcon');
  const a5 = -Math.log(Math.exp(2) / (Math.exp(2) + 1 + Math.exp(-2)));
  assertNear(lossOnBatch('nt-xent:temperature=0.5', e, y, 2).loss, (2 * a5 + b2 + b3(0.5)) / 4, 1e-12, 'nt-xent τ=0.5');
});

test('hand-computed: cosface, arcface and proxy-anchor with weights on the axes', () => {
  // embeddings (1,0) class 0 and (0,1) class 1; class weights (1,0), (0,1): target cos 1, other 0
  const e = Float32Array.of(3, 0, 0, 2);
  const y = Int32Array.of(0, 1);
  const weights = Float32Array.of(2, 0, 0, 5);
  const cos = -Math.log(Math.exp(64 * 0.65) / (Math.exp(64 * 0.65) + 1));
  assertNear(lossOnBatch('cosface', e, y, 2, { weights }).loss, cos, 1e-12, 'cosface');
  // arcface: θ_y = acos(1 − 1e-7) after the clamp, target cos(θ + m)
  const m = (28.6 * Math.PI) / 180;
  const tgt = Math.cos(Math.acos(1 - 1e-7) + m);
  assertNear(lossOnBatch('arcface', e, y, 2, { weights }).loss, -Math.log(Math.exp(64 * tgt) / (Math.exp(64 * tgt) + 1)), 1e-9, 'arcface');
  // arcface past π − m: an embedding opposite its class weight, target logit cos π − m·sin m
  const far = lossOnBatch('arcface', Float32Array.of(-1, 0), Int32Array.of(0), 2, { weights: Float32Array.of(1, 0, 0, 1) }).loss;
  const tFar = Math.cos(Math.acos(-1 + 1e-7)) - m * Math.sin(m);
  assertNear(far, -Math.log(Math.exp(64 * tFar) / (Math.exp(64 * tFar) + 1)), 1e-9, 'arcface beyond π − m');
  // proxy-anchor: each proxy has one positive at cos 1 and one negative at cos 0
  const pa = Math.log(1 + Math.exp(-32 * 0.9)) + Math.log(1 + Math.exp(32 * 0.1));
  assertNear(lossOnBatch('proxy-anchor', e, y, 2, { weights }).loss, pa, 1e-12, 'proxy-anchor');
  const r = lossOnBatch('proxy-anchor', e, y, 2, { weights });
  assert.equal(r.weightsGrad?.length, 4);
});

test('lossOnBatch: class weights default, bad specs refused with one line', () => {
  const e = Float32Array.from(randomBatch(3, 4, 3));
  const y = Int32Array.of(0, 0, 1, 1);
  const a = lossOnBatch('arcface', e, y, 3);
  const b = lossOnBatch('arcface', e, y, 3);
  assert.equal(a.loss, b.loss); // deterministic default weights
  assert.equal(a.weightsGrad?.length, 2 * 3);
  assert.throws(() => lossOnBatch('contrastive', e, y, 3), (err: Error) => err instanceof UsageError && /not a batch loss/.test(err.message));
  assert.throws(() => lossOnBatch('circle:gama=3', e, y, 3), (err: Error) => err instanceof UsageError && /no parameter "gama"/.test(err.message));
  assert.throws(() => lossOnBatch('nt-xent:temperature=abc', e, y, 3), /must be a number/);
  assert.throws(() => lossOnBatch('arcface', e, y, 3, { weights: new Float32Array(3) }), /label 1 is not a class index/);
  assert.throws(() => lossOnBatch('supcon', e, y, 4), /do not match/);
});

test('lossOnBatch: arguments of the wrong type refused with one line naming the argument (a DataError or UsageError, not a TypeError from inside)', () => {
  const e = Float32Array.from(randomBatch(3, 4, 3));
  const y = Int32Array.of(0, 0, 1, 1);
  const oneLine = (re: RegExp) => (err: Error): boolean => (err instanceof DataError || err instanceof UsageError) && re.test(err.message) && !err.message.includes('\n');
  for (const name of ['nt-xent', 'multi-similarity', 'arcface']) {
    assert.throws(() => lossOnBatch(name, null as unknown as Float32Array, y, 3), oneLine(new RegExp(`^${name}: the embeddings must be`)), name);
    assert.throws(() => lossOnBatch(name, 'abc' as unknown as Float32Array, y, 3), oneLine(/the embeddings must be/), name);
    assert.throws(() => lossOnBatch(name, e, undefined as unknown as Int32Array, 3), oneLine(/the labels must be/), name);
    assert.throws(() => lossOnBatch(name, e, 7 as unknown as Int32Array, 3), oneLine(/the labels must be/), name);
    assert.throws(() => lossOnBatch(name, e, y, 3, null as unknown as { weights?: Float32Array }), oneLine(/options must be an object/), name);
  }
  assert.throws(() => lossOnBatch(42 as unknown as string, e, y, 3), oneLine(/loss spec must be a string/));
  for (const w of ['abc', 5, {}]) {
    assert.throws(() => lossOnBatch('arcface', e, y, 3, { weights: w as unknown as Float32Array }), oneLine(/^arcface: the class weights must be a Float32Array \(or an array of numbers\), got /), String(w));
  }
  // what the API documents still works: labels in any array type (batchPairNative.test.ts: non-int32 ones take the reference)
  const ref = lossOnBatch('nt-xent', e, y, 3).loss;
  assert.equal(lossOnBatch('nt-xent', e, Float64Array.of(0, 0, 1, 1) as unknown as Int32Array, 3).loss, ref);
  assert.equal(lossOnBatch('nt-xent', e, [0, 0, 1, 1] as unknown as Int32Array, 3).loss, ref);
});

test('batch losses: one class or no positives gives 0 where PML does, no NaN', () => {
  const e = Float32Array.from(randomBatch(4, 3, 4));
  for (const name of ['nt-xent', 'supcon', 'circle']) {
    const r = lossOnBatch(name, e, Int32Array.of(0, 1, 2), 4); // no positive pair
    assert.equal(r.loss, 0, name);
    assert.ok(r.grad.every((v) => v === 0), name);
  }
  // a zero embedding stays finite (the 1e-12 floor)
  const z = Float32Array.of(0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0);
  for (const [name] of CASES) assert.ok(lossOnBatch(name, z, Int32Array.of(0, 0, 1), 4).grad.every(Number.isFinite), name);
});

test('batch losses: plot shapes are finite and ordered', () => {
  for (const [name] of CASES) {
    const l = createLoss(name);
    assert.equal(l.kind, 'batch');
    // a positive farther away costs more; a negative farther away costs less
    assert.ok(l.pos(1.2) >= l.pos(0.2), `${name} pos`);
    assert.ok(l.neg(1.8) <= l.neg(0.3), `${name} neg`);
  }
});

test("the reference's products (normalisation, S = UUᵀ) against a plain float64 oracle (1e-12)", () => {
  const emb = Float32Array.from(randomBatch(3, 13, 7));
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

test('batch losses: a NaN or infinite embedding makes the loss NaN (the trainer stops the run), native and reference alike', () => {
  // the native kernels when the addon loads here, then the TypeScript reference
  nativeStatus();
  const kernels = batchKernels();
  const r = new Rng(31);
  const n = 12;
  const dim = 5;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const weights = Float32Array.from({ length: 3 * dim }, () => r.normal());
  for (const bad of [NaN, Infinity]) {
    const emb = Float32Array.from({ length: n * dim }, () => r.normal());
    emb[4 * dim + 2] = bad;
    for (const name of ['multi-similarity', 'nt-xent', 'supcon', 'circle', 'arcface', 'cosface', 'proxy-anchor']) {
      const opts = ['arcface', 'cosface', 'proxy-anchor'].includes(name) ? { weights } : {};
      if (kernels) {
        const { loss } = lossOnBatch(name, emb, labels, dim, opts);
        assert.ok(Number.isNaN(loss), `${name} (native) with a ${bad} in a row: loss ${loss}`);
      }
      const { loss } = reference(() => lossOnBatch(name, emb, labels, dim, opts));
      assert.ok(Number.isNaN(loss), `${name} (reference) with a ${bad} in a row: loss ${loss}`);
    }
  }
});

test('lossOnBatch on an empty batch: every loss 0 with an empty gradient, and a zero class-weight gradient (pytorch-metric-learning returns a zero loss), native and reference alike', () => {
  nativeStatus();
  const kernels = batchKernels();
  const dim = 4;
  // three classes' weights given, or none (then the loss's own, for max(label) + 1 = 1 class)
  const weights = Float32Array.from({ length: 3 * dim }, (_, i) => (i % 5) - 2);
  for (const name of ['multi-similarity', 'nt-xent', 'supcon', 'circle', 'arcface', 'cosface', 'proxy-anchor']) {
    const proxy = ['arcface', 'cosface', 'proxy-anchor'].includes(name);
    for (const opts of proxy ? [{ weights }, {}] : [{}]) {
      const classes = opts.weights ? 3 : 1;
      const runs: [string, ReturnType<typeof lossOnBatch>][] = [['reference', reference(() => lossOnBatch(name, new Float32Array(0), new Int32Array(0), dim, opts))]];
      if (kernels) runs.push(['native', lossOnBatch(name, new Float32Array(0), new Int32Array(0), dim, opts)]);
      for (const [path, r] of runs) {
        const what = `${name} (${path}, ${classes} class${classes > 1 ? 'es' : ''})`;
        assert.equal(r.loss, 0, what);
        assert.equal(r.grad.length, 0, what);
        if (proxy) assert.deepEqual(r.weightsGrad, new Float32Array(classes * dim), what);
        else assert.equal(r.weightsGrad, undefined, what);
      }
    }
  }
});
