/**
 * Shared checks for losses (not a test file itself): the tensor form against the scalar form,
 * tf.grad against central finite differences of the scalar form in float64, and finiteness at
 * and below the distance guard.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend.ts';
import type { PairLoss, TripletLoss } from '../../src/losses/types.ts';

// the CPU reference backend, with the gradients registered (src/engine/backend.ts)
await initBackend('cpu');

/** The D values every loss is checked at: near the singular point and in the bulk. */
export const CHECK_DISTANCES = [1e-3, 0.01, 0.5, 1.2];
/** At and below DISTANCE_EPSILON (1e-7). */
export const TINY_DISTANCES = [0, 1e-12, 5e-8, 1e-7];

const f32 = (x: number): number => Math.fround(x);

/** Central difference in float64 with a step relative to x (~1e-3, smaller near 0). */
export function centralDifference(f: (x: number) => number, x: number): number {
  const h = 1e-3 * Math.max(Math.min(Math.abs(x), 1), 1e-3);
  return (f(x + h) - f(x - h)) / (2 * h);
}

export function assertClose(actual: number, expected: number, rtol: number, what: string, atol = 1e-6): void {
  assert.ok(Number.isFinite(actual), `${what}: got ${actual}`);
  const err = Math.abs(actual - expected);
  assert.ok(err <= rtol * Math.abs(expected) + atol, `${what}: got ${actual}, expected ${expected} (error ${err})`);
}

function perPairValuesAndGrads(loss: PairLoss, ds: number[], y: number): { v: Float32Array; g: Float32Array } {
  return tf.tidy(() => {
    const d = tf.tensor1d(ds);
    const yt = tf.fill([ds.length], y) as tf.Tensor1D;
    const v = (loss.perPair(d, yt) as tf.Tensor1D).dataSync() as Float32Array;
    const g = tf.grad((x) => tf.sum(loss.perPair(x as tf.Tensor1D, yt) as tf.Tensor1D))(d).dataSync() as Float32Array;
    return { v: Float32Array.from(v), g: Float32Array.from(g) };
  });
}

/** (i) perPair = scalar pos/neg, (ii) tf.grad = finite differences, finite at D <= eps. */
export function checkPairLoss(loss: PairLoss, ds: number[] = CHECK_DISTANCES): void {
  const before = tf.memory().numTensors;
  for (const y of [1, 0]) {
    const f = y === 1 ? loss.pos : loss.neg;
    const side = `${loss.name} ${y === 1 ? 'pos' : 'neg'}`;
    const { v, g } = perPairValuesAndGrads(loss, ds, y);
    ds.forEach((d, i) => {
      const x = f32(d); // the tensor holds float32(d): evaluate the scalar form there
      assertClose(v[i]!, f(x), 1e-5, `${side} value at D=${d}`);
      assertClose(g[i]!, centralDifference(f, x), 1e-3, `${side} dL/dD at D=${d}`, 1e-5);
    });
    const tiny = perPairValuesAndGrads(loss, TINY_DISTANCES, y);
    TINY_DISTANCES.forEach((d, i) => {
      assert.ok(Number.isFinite(tiny.v[i]!), `${side} value at D=${d} is ${tiny.v[i]}`);
      assert.ok(Number.isFinite(tiny.g[i]!), `${side} gradient at D=${d} is ${tiny.g[i]}`);
      assertClose(tiny.v[i]!, f(f32(d)), 1e-5, `${side} value at D=${d}`);
    });
  }
  assert.equal(tf.memory().numTensors, before, `${loss.name}: tensors leaked`);
}

/** The same for a triplet loss, over every (D_ap, D_an) combination of `ds`. */
export function checkTripletLoss(loss: TripletLoss, ds: number[] = CHECK_DISTANCES): void {
  const before = tf.memory().numTensors;
  const ap: number[] = [];
  const an: number[] = [];
  // every combination; none of the default grid lies on a hinge of the built-in triplet losses
  for (const a of ds) for (const n of ds) {
    ap.push(a);
    an.push(n);
  }
  const run = (xs: number[], ys: number[]) =>
    tf.tidy(() => {
      const a = tf.tensor1d(xs);
      const n = tf.tensor1d(ys);
      const v = Float32Array.from((loss.perTriplet(a, n) as tf.Tensor1D).dataSync());
      const [ga, gn] = tf.grads((p, q) => tf.sum(loss.perTriplet(p as tf.Tensor1D, q as tf.Tensor1D) as tf.Tensor1D))([a, n]);
      return { v, ga: Float32Array.from(ga!.dataSync()), gn: Float32Array.from(gn!.dataSync()) };
    });
  const r = run(ap, an);
  ap.forEach((a0, i) => {
    const a = f32(a0);
    const n = f32(an[i]!);
    const what = `${loss.name} at (D_ap=${a0}, D_an=${an[i]})`;
    assertClose(r.v[i]!, loss.value(a, n), 1e-5, `${what} value`);
    assertClose(r.ga[i]!, centralDifference((x) => loss.value(x, n), a), 1e-3, `${what} dL/dD_ap`, 1e-5);
    assertClose(r.gn[i]!, centralDifference((x) => loss.value(a, x), n), 1e-3, `${what} dL/dD_an`, 1e-5);
  });
  // pos/neg are the documented slices of value
  for (const d of ds) {
    assert.equal(loss.pos(d), loss.value(d, 1));
    assert.equal(loss.neg(d), loss.value(0, d));
  }
  const tiny = run(TINY_DISTANCES, TINY_DISTANCES);
  for (const arr of [tiny.v, tiny.ga, tiny.gn]) for (const x of arr) assert.ok(Number.isFinite(x), `${loss.name}: not finite near 0`);
  assert.equal(tf.memory().numTensors, before, `${loss.name}: tensors leaked`);
}
