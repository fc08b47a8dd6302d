/**
 * Which pairs and anchors count, on batches the trainer's balanced batches never make
 * (singletons, one class, no positive pair, n = 1 and 2): every pair-based loss and
 * proxy-anchor against a brute-force float64 oracle written straight from PML 2.9's definitions
 * (all ordered pairs i ≠ j; MeanReducer over all anchors for multi-similarity and over positive
 * pairs for nt-xent; AvgNonZeroReducer over anchors for supcon and circle; proxy-anchor's
 * DivisorReducer: proxies with a positive, then all proxies), both the TypeScript reference and
 * the addon (where loaded), with gradients against central differences of the reference.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lossOnBatch } from '../../src/losses/registry.ts';
import { Rng } from '../../src/rng.ts';
import { dot, reference, unitRows } from './batchHelpers.ts';

type Oracle = (u: number[][], y: number[], w?: number[][]) => number;

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const avg = (xs: number[]): number => (xs.length ? sum(xs) / xs.length : 0);
/** log(1 + Σ e^x), written out */
const log1pSumExp = (xs: number[]): number => Math.log1p(sum(xs.map(Math.exp)));

const ms: Oracle = (u, y) =>
  avg(
    y.map((yi, i) => {
      const pos = y.flatMap((yj, j) => (j !== i && yj === yi ? [-2 * (dot(u[i]!, u[j]!) - 0.5)] : []));
      const neg = y.flatMap((yj, j) => (yj !== yi ? [50 * (dot(u[i]!, u[j]!) - 0.5)] : []));
      return log1pSumExp(pos) / 2 + log1pSumExp(neg) / 50;
    }),
  );

const ntXent: Oracle = (u, y) => {
  if (!y.some((a) => y.some((b) => a !== b))) return 0; // no negative pair in the batch
  const losses: number[] = [];
  y.forEach((yi, i) =>
    y.forEach((yp, p) => {
      if (p === i || yp !== yi) return;
      const negs = y.flatMap((yn, k) => (yn !== yi ? [Math.exp(dot(u[i]!, u[k]!) / 0.07)] : []));
      const num = Math.exp(dot(u[i]!, u[p]!) / 0.07);
      losses.push(-Math.log(num / (num + sum(negs))));
    }),
  );
  return avg(losses);
};

const supCon: Oracle = (u, y) => {
  const anyPos = y.some((a, i) => y.some((b, j) => i !== j && a === b));
  const anyNeg = y.some((a) => y.some((b) => a !== b));
  if (!anyPos || !anyNeg) return 0;
  const per = y.map((yi, i) => {
    const den = sum(y.flatMap((_, j) => (j !== i ? [Math.exp(dot(u[i]!, u[j]!) / 0.1)] : [])));
    const logs = y.flatMap((yj, j) => (j !== i && yj === yi ? [Math.log(Math.exp(dot(u[i]!, u[j]!) / 0.1) / den)] : []));
    return logs.length ? -avg(logs) : 0;
  });
  return avg(per.filter((v) => v > 0));
};

const circle: Oracle = (u, y) => {
  const per = y.map((yi, i) => {
    const sp: number[] = [];
    const sn: number[] = [];
    y.forEach((yj, j) => {
      if (j === i) return;
      const s = dot(u[i]!, u[j]!);
      if (yj === yi) sp.push(Math.exp(-80 * Math.max(1.4 - s, 0) * (s - 0.6)));
      else sn.push(Math.exp(80 * Math.max(s + 0.4, 0) * (s - 0.4)));
    });
    return sp.length && sn.length ? Math.log(1 + sum(sp) * sum(sn)) : 0;
  });
  return avg(per.filter((v) => v > 0));
};

const proxyAnchor: Oracle = (u, y, w) => {
  let pos = 0;
  let withPos = 0;
  let neg = 0;
  w!.forEach((p, c) => {
    const ps = y.flatMap((yi, i) => (yi === c ? [-32 * (dot(u[i]!, p) - 0.1)] : []));
    const ns = y.flatMap((yi, i) => (yi !== c ? [32 * (dot(u[i]!, p) + 0.1)] : []));
    if (ps.length) {
      withPos++;
      pos += log1pSumExp(ps);
    }
    neg += log1pSumExp(ns);
  });
  return (withPos ? pos / withPos : 0) + neg / w!.length;
};

const ORACLES: [string, Oracle][] = [
  ['multi-similarity', ms],
  ['nt-xent', ntXent],
  ['supcon', supCon],
  ['circle', circle],
  ['proxy-anchor', proxyAnchor],
];

const BATCHES: [string, number[]][] = [
  ['singletons and one pair', [0, 1, 2, 2, 3, 4]],
  ['one singleton beside a pair', [0, 1, 1]],
  ['three of one class, one of another', [0, 0, 0, 1]],
  ['one class', [0, 0, 0, 0]],
  ['no positive pair', [0, 1, 2, 3]],
  ['n = 2, one class', [3, 3]],
  ['n = 2, two classes', [0, 1]],
  ['n = 1', [0]],
];

const DIM = 4;
const CLASSES = 6; // proxy-anchor: proxies 5 (and 4, 3, ...) without a member in some batches

function normal(seed: number, count: number, scale = 1): Float64Array {
  const r = new Rng(seed);
  return Float64Array.from({ length: count }, () => scale * r.normal());
}

for (const [what, y] of BATCHES) {
  test(`edge batch, ${what}: every pair loss and proxy-anchor = the brute-force PML oracle (reference and addon), gradients = central differences`, () => {
    const n = y.length;
    const e = normal(11, n * DIM, 0.8);
    const w = normal(12, CLASSES * DIM);
    for (const [name, oracle] of ORACLES) {
      const proxies = name === 'proxy-anchor';
      const at = (x: Float64Array): number => oracle(unitRows(x, n, DIM), y, proxies ? unitRows(w, CLASSES, DIM) : undefined);
      const opts = proxies ? { weights: w as unknown as Float32Array } : undefined;
      const ref = reference(() => lossOnBatch(name, e as unknown as Float32Array, y as unknown as Int32Array, DIM, opts));
      const expected = at(e);
      assert.ok(Math.abs(ref.loss - expected) <= 1e-10 * Math.abs(expected) + 1e-13, `${name} reference: ${ref.loss} against ${expected}`);
      const nat = lossOnBatch(name, Float32Array.from(e), Int32Array.from(y), DIM, proxies ? { weights: Float32Array.from(w) } : undefined);
      assert.ok(Math.abs(nat.loss - expected) <= 1e-5 * Math.abs(expected) + 1e-9, `${name} addon: ${nat.loss} against ${expected}`);
      if (expected === 0) assert.ok(ref.grad.every((g) => g === 0) && nat.grad.every((g) => g === 0), `${name}: a zero loss has a zero gradient`);
      // circle's a_p, a_n are constants for the gradient (PML detaches them): its derivative is not
      // the oracle's; batchLosses.test.ts checks it with them frozen
      if (name === 'circle') continue;
      const h = 1e-6;
      const gmax = Math.max(1e-12, ...Array.from(ref.grad, Math.abs));
      for (let k = 0; k < e.length; k++) {
        const v = e[k]!;
        e[k] = v + h;
        const up = at(e);
        e[k] = v - h;
        const down = at(e);
        e[k] = v;
        const fd = (up - down) / (2 * h);
        assert.ok(Math.abs(ref.grad[k]! - fd) <= 1e-5 * gmax + 1e-8, `${name} reference d/de[${k}]: ${ref.grad[k]} against ${fd}`);
        assert.ok(Math.abs(nat.grad[k]! - fd) <= 1e-4 * gmax + 1e-7, `${name} addon d/de[${k}]: ${nat.grad[k]} against ${fd}`);
      }
    }
  });
}
