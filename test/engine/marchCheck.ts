/**
 * Run by marchBuilds.test.ts in a child process with SIAMESE_NATIVE_DIR set to one build of the
 * addon (not a test file itself: a process loads one addon, so each build needs its own). Checks
 * that build against the TF.js engine and the TypeScript reference, throws on the first
 * disagreement, and prints one JSON line: the status and the worst differences seen.
 */
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backend.ts';
import type { Batch } from '../../src/engine/engine.ts';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { NativeEngine } from '../../src/engine/nativeEngine.ts';
import { TfjsEngine } from '../../src/engine/tfjsEngine.ts';
import { type BatchLoss, BatchWorkspace } from '../../src/losses/batch.ts';
import { batchKernels } from '../../src/losses/batchKernels.ts';
import { createLoss, lossOnBatch } from '../../src/losses/registry.ts';
import { cnnNetwork } from '../../src/model/cnn.ts';
import { mlpNetwork } from '../../src/model/mlp.ts';
import type { BaseNetwork } from '../../src/model/network.ts';
import { Rng } from '../../src/rng.ts';
import type { ImageSplit } from '../../src/data/dataset.ts';
import { checkSteps, TOL } from './agreement.ts';
import { vmathDigest } from './vmathProbe.ts';
import { relDiff, syntheticSplit } from './synthetic.ts';
import { maxAbs, reference, sortAndSweep } from '../losses/batchHelpers.ts';

const status = nativeStatus();
if (!status.available || status.origin !== 'env') {
  process.stderr.write(`marchCheck failed: the addon in SIAMESE_NATIVE_DIR did not load: ${status.detail}\n`);
  process.exit(1);
}
await initBackend('wasm');

const rowsOf = (r: Rng, split: ImageSplit, n: number): Int32Array => Int32Array.from({ length: n }, () => r.int(split.n));
const pairs = (split: ImageSplit, n: number) => (r: Rng): Batch => ({ kind: 'pairs', rows: rowsOf(r, split, 2 * n), y: Uint8Array.from({ length: n }, () => (r.next() < 0.5 ? 1 : 0)) });
const triplets = (split: ImageSplit, n: number) => (r: Rng): Batch => ({ kind: 'triplets', rows: rowsOf(r, split, 3 * n) });

/** (b), (c): TF.js and this build stepped from the same weights, batches and dropout stream; then embeddings */
function agree(what: string, net: BaseNetwork, split: ImageSplit): number {
  let worst = 0;
  for (const [lossName, makeBatch] of [
    ['contrastive', pairs(split, 24)],
    ['triplet', triplets(split, 16)],
  ] as const) {
    const o = { network: net, loss: createLoss(lossName), weights: net.initWeights(new Rng(4)), optimizer: 'rmsprop', keepGradients: true };
    const ref = new TfjsEngine(o);
    const fast = new NativeEngine({ ...o, threads: 2 });
    try {
      // inference first (its own input path; after a step, RMSProp's first update amplifies rounding
      // in near-zero gradients): a block and a tail of rows, at the same weights
      const idx = Int32Array.from({ length: 37 }, (_, i) => (i * 7 + 3) % split.n);
      const d = relDiff(ref.embed(split, idx), fast.embed(split, idx));
      assert.ok(d <= TOL, `${what} ${lossName}: embeddings differ from TF.js' by ${d.toExponential(2)}`);
      worst = Math.max(worst, checkSteps(ref, fast, split, makeBatch, { what: `${what} ${lossName}`, batches: 2, nonZero: true }));
    } finally {
      ref.dispose();
      fast.dispose();
    }
  }
  return worst;
}

/** (d): steps on `threads` threads: the losses and the final weights, as bits */
function run(net: BaseNetwork, split: ImageSplit, threads: number): { losses: number[]; weights: Float32Array[] } {
  const e = new NativeEngine({ network: net, loss: createLoss('contrastive'), weights: net.initWeights(new Rng(4)), optimizer: 'adam', threads });
  const r = new Rng(5);
  const drop = new Rng(9);
  const losses: number[] = [];
  for (let s = 0; s < 4; s++) losses.push(e.step(split, pairs(split, 20 + 7 * s)(r), drop).loss);
  const weights = e.getWeights().map((w) => w.data);
  e.dispose();
  return { losses, weights };
}

function sameBitsAcrossThreads(what: string, net: BaseNetwork, split: ImageSplit): void {
  const one = run(net, split, 1);
  const two = run(net, split, 2);
  one.losses.forEach((l, i) => assert.ok(Object.is(l, two.losses[i]), `${what}: step ${i} loss ${l} on one thread, ${two.losses[i]} on two`));
  one.weights.forEach((w, i) => {
    const k = w.findIndex((v, j) => !Object.is(v, two.weights[i]![j]));
    assert.equal(k, -1, `${what}: weight tensor ${i}[${k}] differs between one and two threads`);
  });
}

/**
 * (e): the pair-based losses, whole in batchpair.c with float32 products on this
 * build's GEMM (its vector width, FMA or not), agree with the reference within the float32
 * products' tolerance (batchPairNative.test.ts), the class-weight losses, whole in batchproxy.c,
 * to rounding (batchProxyNative.test.ts); both give the same bits call after call
 */
function batchLossBits(): void {
  const k = batchKernels();
  assert.ok(k, 'loading the addon plugs in its batch-loss kernels');
  const same = (a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined, what: string): void => {
    assert.equal(a?.length, b?.length, `${what}: lengths`);
    for (let i = 0; i < (a?.length ?? 0); i++) assert.ok(Object.is(a![i], b![i]), `${what}[${i}]: native ${a![i]}, reference ${b![i]}`);
  };
  /** within 2e-6 of the largest reference entry */
  const close = (a: Float32Array | undefined, b: Float32Array | undefined, what: string): void => {
    assert.equal(a?.length, b?.length, `${what}: lengths`);
    let scale = 0;
    for (let i = 0; i < (b?.length ?? 0); i++) scale = Math.max(scale, Math.abs(b![i]!));
    for (let i = 0; i < (a?.length ?? 0); i++) assert.ok(Math.abs(a![i]! - b![i]!) <= 2e-6 * scale + 1e-9, `${what}[${i}]: native ${a![i]}, reference ${b![i]}`);
  };
  // a vector-width multiple and odd sizes (the kernels' tails)
  for (const [n, dim, classes] of [
    [64, 64, 16],
    [33, 17, 5],
  ] as const) {
    const r = new Rng(n * 31 + dim);
    const emb = Float32Array.from({ length: n * dim }, () => r.normal() * (0.5 + r.next()));
    const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
    const weights = Float32Array.from({ length: classes * dim }, () => r.normal());
    // logit scales: multi-similarity β = 50, nt-xent 1/τ = 1/0.07, supcon 1/0.1, circle γ(1 + m);
    // 0: a class-weight loss
    for (const [name, scale] of [
      ['multi-similarity', 50],
      ['nt-xent', 1 / 0.07],
      ['supcon', 10],
      ['circle', 80 * 1.4],
      ['proxy-anchor', 0],
      ['arcface', 0],
      ['cosface', 0],
    ] as const) {
      const opts = scale === 0 ? { weights } : {};
      const nat = lossOnBatch(name, emb, labels, dim, opts);
      const tsRef = reference(() => lossOnBatch(name, emb, labels, dim, opts));
      const what = `${name} ${n}x${dim}`;
      assert.ok(Number.isFinite(tsRef.loss), `${what}: reference loss ${tsRef.loss}`);
      if (scale === 0) {
        // the class-weight losses run whole in batchproxy.c (fused multiply-adds where the build
        // has them, float32 back-projections): the reference to rounding, on every build
        assert.ok(Math.abs(nat.loss - tsRef.loss) <= 1e-12 * Math.abs(tsRef.loss), `${what}: loss native ${nat.loss}, reference ${tsRef.loss}`);
        close(nat.grad, tsRef.grad, `${what} grad`);
        close(nat.weightsGrad, tsRef.weightsGrad, `${what} weightsGrad`);
        same(lossOnBatch(name, emb, labels, dim, opts).grad, nat.grad, `${what}: a second call's grad`);
        continue;
      }
      const tol = scale * 4 * Math.sqrt(Math.max(dim, n)) * 2 ** -24;
      assert.ok(Math.abs(nat.loss - tsRef.loss) <= tol * Math.max(1, Math.abs(tsRef.loss)), `${what}: loss native ${nat.loss}, reference ${tsRef.loss}`);
      const dg = Math.max(...Array.from(nat.grad, (v, i) => Math.abs(v - tsRef.grad[i]!)));
      assert.ok(dg <= tol * maxAbs(tsRef.grad), `${what}: gradients differ by ${dg} (max ${maxAbs(tsRef.grad)})`);
      same(lossOnBatch(name, emb, labels, dim, opts).grad, nat.grad, `${what}: a second call's grad`);
    }
  }
}


/**
 * (f): the float32 batch accuracy of both native paths (batchsweep.c, with per-ISA masks; the
 * class-weight path's cosines from batchproxy.c's transpose and GEMM, the pair path's from the
 * loss's own S) = a sort-and-sweep oracle on the very similarities this build computed (the
 * cosines within 1e-5 of float64 ones); a noisy batch (labels unrelated to the rows) as well
 */
function cosineAccuracy(): void {
  const k = batchKernels()!;
  for (const [n, dim, classes, noise] of [
    [120, 128, 10, 1],
    [37, 19, 4, 1],
    [120, 128, 10, 0],
  ] as const) {
    const r = new Rng(n + 3 * dim + noise);
    const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
    const centers = Array.from({ length: classes * dim }, () => noise * r.normal());
    const emb = Float32Array.from({ length: n * dim }, (_, q) => centers[labels[Math.floor(q / dim)]! * dim + (q % dim)]! + r.normal());
    const cos = new Float32Array(n * n);
    const acc = k.batchCosineAccuracy(emb, dim, labels, cos);
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        let d = 0;
        let qi = 0;
        let qj = 0;
        for (let t = 0; t < dim; t++) {
          d += emb[i * dim + t]! * emb[j * dim + t]!;
          qi += emb[i * dim + t]! ** 2;
          qj += emb[j * dim + t]! ** 2;
        }
        const s = cos[i * n + j]!;
        assert.ok(Math.abs(s - d / Math.sqrt(qi * qj)) <= 1e-5, `cosine ${n}x${dim} [${i},${j}]: ${s}, float64 ${d / Math.sqrt(qi * qj)}`);
      }
    assert.equal(acc, sortAndSweep(cos, labels), `class-weight path: float32 batch accuracy ${n}x${dim}`);
    const res = (createLoss('multi-similarity') as BatchLoss).compute(emb, labels, dim, undefined, new BatchWorkspace({ accuracy: true }));
    assert.equal(res.accuracy, sortAndSweep(res.similarities!, labels), `pair path: batch accuracy ${n}x${dim}`);
  }
}

const mlp = mlpNetwork({ inputSize: 784, hidden: [64, 48], embeddingDim: 16, dropout: 0.1 });
const mlpSplit = syntheticSplit(200, 11);
const cnn = cnnNetwork({ height: 12, width: 12, channels: 1, filters: [4, 8], kernelSize: 3, embeddingDim: 8, dropout: 0.1 });
const cnnSplit = syntheticSplit(200, 12, 12);

try {
  const mlpWorst = agree('mlp', mlp, mlpSplit);
  const cnnWorst = agree('cnn', cnn, cnnSplit);
  sameBitsAcrossThreads('mlp', mlp, mlpSplit);
  sameBitsAcrossThreads('cnn', cnn, cnnSplit);
  batchLossBits();
  cosineAccuracy();
  process.stdout.write(`${JSON.stringify({ isa: status.info?.isa, path: status.path, march: status.build?.march, mlpWorst, cnnWorst, vmath: vmathDigest(nativeAddon()) })}\n`);
} catch (e) {
  // the first disagreement in one line, last on stderr (the parent shows it)
  process.stderr.write(`${(e as Error).stack ?? e}\nmarchCheck failed: ${(e as Error).message.split('\n')[0]}\n`);
  process.exitCode = 1;
}
