/**
 * The batch losses' host overhead per training step on the native engine: a class-balanced batch
 * (128 images asked: 12 per class x 10 classes), the network's forward and backward in the
 * native kernels, the loss and its gradient (and the batch's best-threshold accuracy) on the
 * host. Reported per loss: the median step, the median host part (and of it the loss with its
 * gradient, the rest being the accuracy), and the host part as a percentage of the native step
 * (the step without it: the bar is at most 10%). With `reference`, the same with the
 * addon's batch-loss kernels taken out (the TypeScript products: what the host part costs without
 * them).
 *
 *   node --import tsx bench/batchLosses.ts [--base mlp|cnn] [--steps N] [--threads T] [--losses a,b] [--no-reference]
 *   node --import tsx bench/batchLosses.ts --compare-similarities ROUNDS [--losses a,b] [--steps N]
 *     (the pair losses' host part with the float64 copy of S written every step and without,
 *     alternately in one process)
 * Also a section of `npm run bench` (bench/train.ts; alone: `npm run bench -- --only batch-losses`).
 */
import type { Dataset } from '../src/data/dataset.ts';
import type { Batch } from '../src/engine/engine.ts';
import { batchKernels, useBatchKernels } from '../src/losses/batchKernels.ts';
import { type BatchLoss, BatchWorkspace } from '../src/losses/batch.ts';
import { nativeStatus } from '../src/engine/native.ts';
import { resolveConfig } from '../src/train/config.ts';
import { Training } from '../src/train/trainer.ts';

export const BATCH_LOSSES = ['multi-similarity', 'nt-xent', 'supcon', 'circle', 'arcface', 'cosface', 'proxy-anchor'];

/** the bar: host time at most this share of the native step */
export const HOST_BAR = 0.1;

export interface BatchLossOverhead {
  loss: string;
  /** the base network: the seed's MLP or the CNN (`--base cnn`) */
  base: 'mlp' | 'cnn';
  images: number;
  steps: number;
  stepMs: number;
  /** the host part: loss, gradient and accuracy */
  hostMs: number;
  /** of it, the loss and its gradient (BatchLoss.compute) */
  lossMs: number;
  /** the step without the host part: the native engine's own work */
  nativeMs: number;
  /** host part / native step */
  overhead: number;
  /** whether the products ran in the native kernels */
  nativeProducts: boolean;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

/** Median step, host and loss times of `steps` steps after `warm` steps, per loss. */
export function batchLossOverhead(
  ds: Dataset,
  losses: readonly string[],
  opts: {
    steps?: number;
    warm?: number;
    threads?: number;
    reference?: boolean;
    base?: 'mlp' | 'cnn';
    /** the pair losses' float64 copy of S written every step, as before the trainer stopped asking for it */
    similarities?: boolean;
  } = {},
): BatchLossOverhead[] {
  const steps = opts.steps ?? 100;
  const warm = opts.warm ?? 30;
  const out: BatchLossOverhead[] = [];
  // the addon loaded (and its kernels plugged in) before any are taken out
  nativeStatus();
  for (const loss of losses) {
    const kernels = opts.reference ? useBatchKernels(null) : null;
    try {
      out.push(overheadOf(ds, loss, steps, warm, opts.threads ?? 1, opts.base ?? 'mlp', opts.similarities ?? false));
    } finally {
      if (opts.reference) useBatchKernels(kernels);
    }
  }
  return out;
}

function overheadOf(ds: Dataset, loss: string, steps: number, warm: number, threads: number, base: 'mlp' | 'cnn', sims: boolean): BatchLossOverhead {
  const t = new Training(ds, resolveConfig({ loss, base, engine: 'native', threads, batchSize: 128, seed: 0 }));
  if (sims) (t as unknown as { batchWorkspace: BatchWorkspace }).batchWorkspace = new BatchWorkspace({ accuracy: true });
  const stepMs: number[] = [];
  const hostMs: number[] = [];
  const lossMs: number[] = [];
  let images = 0;
  let inLoss = 0;
  const bl = t.loss as BatchLoss;
  const compute = bl.compute.bind(bl);
  (bl as { compute: BatchLoss['compute'] }).compute = (...a) => {
    const s = performance.now();
    const r = compute(...a);
    inLoss = performance.now() - s;
    return r;
  };
  const step = t.engine.step.bind(t.engine);
  t.engine.step = (split, batch, rng, next) => {
    let host = 0;
    let b: Batch = batch;
    if (batch.kind === 'embedding') {
      const tail = batch.tail;
      b = {
        ...batch,
        tail: (emb) => {
          const s = performance.now();
          const r = tail(emb);
          host = performance.now() - s;
          return r;
        },
      };
    }
    const s = performance.now();
    const r = step(split, b, rng, next);
    stepMs.push(performance.now() - s);
    hostMs.push(host);
    lossMs.push(inLoss);
    images = batch.rows.length;
    return r;
  };
  // the class weights' optimizer step runs after the engine's: outside the timed part, a few µs
  const stop = new AbortController();
  t.runEpoch((info) => {
    if (info.batch >= warm + steps) stop.abort();
  }, { signal: stop.signal });
  t.dispose();
  const st = median(stepMs.slice(warm));
  const ho = median(hostMs.slice(warm));
  const nat = median(stepMs.slice(warm).map((x, i) => x - hostMs[warm + i]!));
  return { loss, base, images, steps: stepMs.length - warm, stepMs: st, hostMs: ho, lossMs: median(lossMs.slice(warm)), nativeMs: nat, overhead: ho / nat, nativeProducts: batchKernels() !== null };
}

export function formatOverhead(rows: readonly BatchLossOverhead[]): string[] {
  const lines = [
    '| loss | base | host path | images/step | steps | median step ms | native step ms | host ms: loss + gradient + accuracy | of it loss + gradient ms | host / native step | at most 10% |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.loss} | ${r.base} | ${r.nativeProducts ? 'native, one call' : 'TypeScript'} | ${r.images} | ${r.steps} | ${r.stepMs.toFixed(3)} | ${r.nativeMs.toFixed(3)} | ${r.hostMs.toFixed(3)} | ${r.lossMs.toFixed(3)} | ${(100 * r.overhead).toFixed(r.overhead < HOST_BAR ? 1 : 0)}% | ${r.overhead <= HOST_BAR ? 'yes' : 'no'} |`,
    );
  }
  lines.push('', '(native step: the median step without its host part; host path: the addon\'s one call per step (loss, gradients, batch accuracy) or the TypeScript reference)');
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const value = (f: string): string | undefined => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);
  if (!nativeStatus().available) {
    process.stdout.write(`native engine not available: ${nativeStatus().detail}\n`);
    process.exit(0);
  }
  const { initBackend } = await import('../src/engine/backend.ts');
  const { loadMnist } = await import('../src/data/mnist.ts');
  await initBackend('wasm');
  const ds = await loadMnist();
  const losses = value('--losses')?.split(',') ?? BATCH_LOSSES;
  const base = value('--base') === 'cnn' ? 'cnn' : 'mlp';
  const opts = { steps: Number(value('--steps') ?? (base === 'cnn' ? 20 : 100)), warm: base === 'cnn' ? 5 : 30, threads: Number(value('--threads') ?? 1), base } as const;
  const rounds = Number(value('--compare-similarities') ?? 0);
  if (rounds > 0) {
    // the float64 copy of S written (as before) or not, alternately in this process: host ms per round
    const host: Record<string, { withS: number[]; without: number[] }> = {};
    for (let r = 0; r < rounds; r++) {
      for (const similarities of r % 2 ? [false, true] : [true, false]) {
        for (const row of batchLossOverhead(ds, losses, { ...opts, similarities })) {
          const h = (host[row.loss] ??= { withS: [], without: [] });
          (similarities ? h.withS : h.without).push(row.hostMs);
        }
      }
    }
    const us = (xs: number[]): string => xs.map((x) => (1000 * x).toFixed(1)).join(' ');
    process.stdout.write(`| loss | host µs per round, S copied out | host µs per round, no S | median of the rounds' medians: with S, without |\n|---|---|---|---|\n`);
    for (const [loss, h] of Object.entries(host)) {
      process.stdout.write(`| ${loss} | ${us(h.withS)} | ${us(h.without)} | ${(1000 * median(h.withS)).toFixed(1)}, ${(1000 * median(h.without)).toFixed(1)} |\n`);
    }
    process.exit(0);
  }
  const rows = [...batchLossOverhead(ds, losses, opts), ...(args.includes('--no-reference') ? [] : batchLossOverhead(ds, losses, { ...opts, reference: true }))];
  process.stdout.write(formatOverhead(rows).join('\n') + '\n');
}
