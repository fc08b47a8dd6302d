/**
 * The step-by-step agreement check the native MLP and CNN tests share (not a test file itself):
 * two engines, one the reference, stepped on the same batches from the same weights, optimizer
 * state and dropout stream.
 */
import assert from 'node:assert/strict';
import type { ImageSplit } from '../../src/data/dataset.ts';
import type { Batch, TrainEngine } from '../../src/engine/engine.ts';
import type { NamedTensor } from '../../src/model/weights.ts';
import { Rng } from '../../src/rng.ts';
import { relDiff } from './synthetic.ts';

/** the tolerance of the distances, and the default one of loss and gradients (relative) */
export const TOL = 1e-5;

/**
 * Gradients a (the reference's) and b name for name within tol (relative to each tensor's
 * largest entry); with nonZero, none of a's is all zero (so that the check is not empty).
 * Returns the worst difference.
 */
export function assertGradsAgree(a: NamedTensor[], b: NamedTensor[], what: string, tol = TOL, nonZero = false): number {
  let worst = 0;
  a.forEach((g, i) => {
    assert.equal(g.name, b[i]!.name);
    const d = relDiff(g.data, b[i]!.data);
    assert.ok(d <= tol, `${what}: gradient ${g.name} differs by ${d.toExponential(2)} (relative)`);
    if (nonZero) assert.ok(g.data.some((v) => v !== 0), `${what}: gradient ${g.name} is all zero (the check would be empty)`);
    worst = Math.max(worst, d);
  });
  return worst;
}

/**
 * Batch after batch (makeBatch on a stream seeded 77): fast set to ref's weights and optimizer
 * state, both stepped with the same dropout stream (seeded 123); the reference then steps on, so
 * weights move between batches. The streams' states after the step, the mined tuples, the loss
 * (to tol), the distances (to TOL) and the gradients (assertGradsAgree) must agree. Returns the
 * worst gradient difference; the engines stay the caller's to dispose of.
 */
export function checkSteps(
  ref: TrainEngine,
  fast: TrainEngine,
  split: ImageSplit,
  makeBatch: (r: Rng) => Batch,
  opts: { what: string; batches: number; tol?: number; nonZero?: boolean },
): number {
  const tol = opts.tol ?? TOL;
  const r = new Rng(77);
  const dropRef = new Rng(123);
  let worst = 0;
  for (let b = 0; b < opts.batches; b++) {
    fast.setWeights(ref.getWeights());
    fast.setOptimizerState(ref.getOptimizerState());
    const dropFast = new Rng(dropRef.getState());
    const batch = makeBatch(r);
    const x = ref.step(split, batch, dropRef);
    const y = fast.step(split, batch, dropFast);
    const what = `${opts.what} batch ${b}`;
    assert.deepEqual(dropFast.getState(), dropRef.getState(), `${what}: the dropout stream advanced differently`);
    assert.equal(y.kept, x.kept, `${what}: mined tuples`);
    assert.ok(Math.abs(x.loss - y.loss) <= tol * Math.max(Math.abs(x.loss), 1e-6), `${what}: loss ${x.loss} vs ${y.loss}`);
    for (const k of ['d', 'dap', 'dan'] as const) if (x[k]) assert.ok(relDiff(x[k], y[k]!) <= TOL, `${what}: distances ${k}`);
    worst = Math.max(worst, assertGradsAgree(ref.lastGradients()!, fast.lastGradients()!, what, tol, opts.nonZero));
  }
  return worst;
}
