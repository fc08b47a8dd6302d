/**
 * The batch losses' host overhead per training step on the native engine: a class-balanced batch
 * (128 images asked: 12 per class x 10 classes), the network's forward and backward in the
 * native kernels, the loss and its gradient (and the batch's best-threshold accuracy) on the
 * host. Reported per loss: median step, the median host part, and the host part as a share of
 * the rest of the step (the issue's bar: at most 10%).
 *
 *   node --import tsx bench/batchLosses.ts [--steps N] [--threads T] [--losses a,b]
 * Also a section of `npm run bench` (bench/train.ts).
 */
import type { Dataset } from '../src/data/dataset.ts';
import type { Batch } from '../src/engine/engine.ts';
import { nativeStatus } from '../src/engine/native.ts';
import { resolveConfig } from '../src/train/config.ts';
import { Training } from '../src/train/trainer.ts';

export const BATCH_LOSSES = ['multi-similarity', 'nt-xent', 'supcon', 'circle', 'arcface', 'cosface', 'proxy-anchor'];

export interface BatchLossOverhead {
  loss: string;
  images: number;
  steps: number;
  stepMs: number;
  hostMs: number;
  /** host part / (step − host part) */
  overhead: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

/** Median step and host times of `steps` steps after `warm` steps, per loss. */
export function batchLossOverhead(ds: Dataset, losses: readonly string[], opts: { steps?: number; warm?: number; threads?: number } = {}): BatchLossOverhead[] {
  const steps = opts.steps ?? 100;
  const warm = opts.warm ?? 30;
  const out: BatchLossOverhead[] = [];
  for (const loss of losses) {
    const t = new Training(ds, resolveConfig({ loss, engine: 'native', threads: opts.threads ?? 1, batchSize: 128, seed: 0 }));
    const stepMs: number[] = [];
    const hostMs: number[] = [];
    let images = 0;
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
      images = batch.rows.length;
      return r;
    };
    // the class weights' optimizer step runs after the engine's: outside the timed part, a few µs
    const stop = new AbortController();
    t.runEpoch((info) => (info.batch >= warm + steps ? stop.abort() : undefined), { signal: stop.signal });
    t.dispose();
    const st = median(stepMs.slice(warm));
    const ho = median(hostMs.slice(warm));
    out.push({ loss, images, steps: stepMs.length - warm, stepMs: st, hostMs: ho, overhead: ho / (st - ho) });
  }
  return out;
}

export function formatOverhead(rows: readonly BatchLossOverhead[]): string[] {
  const lines = [
    '| loss | images/step | steps | median step ms | median host ms (loss + gradient + accuracy) | host / rest of step |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.loss} | ${r.images} | ${r.steps} | ${r.stepMs.toFixed(2)} | ${r.hostMs.toFixed(2)} | ${(100 * r.overhead).toFixed(0)}% |`);
  }
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
  const rows = batchLossOverhead(ds, losses, { steps: Number(value('--steps') ?? 100), threads: Number(value('--threads') ?? 1) });
  process.stdout.write(formatOverhead(rows).join('\n') + '\n');
}
