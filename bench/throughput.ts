/**
 * The training-throughput measurement of `npm run bench`, shared with its side-by-side worker
 * (bench/sideBySide.ts): steady-state steps of one engine on MNIST with the seed's settings.
 */
import { readFileSync } from 'node:fs';
import type { Dataset } from '../src/data/dataset.ts';
import type { NativeInputMode, NativeSchedule, NativeStores } from '../src/engine/native.ts';
import { NativeEngine } from '../src/engine/nativeEngine.ts';
import { resolveConfig, type TrainConfig } from '../src/train/config.ts';
import { Training } from '../src/train/trainer.ts';

export const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Run time of the calling thread in ms (Linux schedstat), or NaN elsewhere. */
export function threadRunMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

export interface Throughput {
  engine: string;
  /** CPU ms per step of the main thread alone (Linux) */
  mainThreadMsPerStep: number;
  /** wall-clock ms of every measured step */
  stepTimes: number[];
  /** wall-clock ms of the median step and of the fastest tenth of steps (the figure an idle machine approaches) */
  medianStepMs: number;
  p10StepMs: number;
  threads: number;
  steps: number;
  pairsPerSecond: number;
  pairsPerCpuSecond: number;
  msPerStep: number;
  cpuMsPerStep: number;
}

/** The seed's training settings: contrastive loss, RMSprop, batch 128 pairs. */
export const BENCH_CONFIG: Partial<TrainConfig> = { loss: 'contrastive', batchSize: 128, optimizer: 'rmsprop', seed: 0 };

/**
 * Steady-state steps of one engine: `warm` steps first, then `steps` measured. The native
 * engine's first layer takes its sparse path on MNIST unless inputMode is 'dense'; two native
 * threads share a step as auto mode chooses unless schedule (and for roles, stores) forces one.
 */
export function throughput(
  ds: Dataset,
  engine: 'tfjs' | 'native',
  threads: number,
  warm: number,
  steps: number,
  inputMode: NativeInputMode = 'auto',
  schedule: NativeSchedule = 'auto',
  runAhead = true,
  stores: NativeStores = 'auto',
  /** settings over BENCH_CONFIG's, e.g. { base: 'cnn' } */
  extra: Partial<TrainConfig> = {},
): Throughput {
  const t = new Training(ds, resolveConfig({ ...BENCH_CONFIG, ...extra, engine, threads }));
  if (t.engine instanceof NativeEngine) {
    t.engine.setInputMode(inputMode);
    t.engine.setSchedule(schedule);
    t.engine.setRunAhead(runAhead);
    t.engine.setStores(stores);
  }
  let t0 = 0;
  let c0 = 0;
  let m0 = 0;
  let t1 = 0;
  let c1 = 0;
  let m1 = 0;
  const stepMs: number[] = [];
  let last = 0;
  // a callback's return value does not stop an epoch; an abort does, before the next batch
  const stop = new AbortController();
  t.runEpoch((b) => {
    const now = performance.now();
    if (b.batch > warm) stepMs.push(now - last);
    last = now;
    if (b.batch === warm) {
      t0 = performance.now();
      c0 = cpuMs();
      m0 = threadRunMs();
    }
    if (b.batch === warm + steps) {
      t1 = performance.now();
      c1 = cpuMs();
      m1 = threadRunMs();
      stop.abort();
    }
  }, { signal: stop.signal });
  const res: Throughput = {
    engine:
      t.engine instanceof NativeEngine
        ? [
            'native',
            inputMode === 'dense' ? 'dense first layer' : '',
            schedule !== 'auto' ? `${schedule} schedule` : '',
            stores !== 'auto' ? `${stores} stores` : '',
            runAhead ? '' : 'no run-ahead',
          ]
            .filter(Boolean)
            .join(', ')
        : t.engine.name,
    threads: t.engine.threads,
    steps,
    pairsPerSecond: (steps * 128) / ((t1 - t0) / 1000),
    pairsPerCpuSecond: (steps * 128) / ((c1 - c0) / 1000),
    msPerStep: (t1 - t0) / steps,
    cpuMsPerStep: (c1 - c0) / steps,
    mainThreadMsPerStep: (m1 - m0) / steps,
    medianStepMs: quantile(stepMs, 0.5),
    p10StepMs: quantile(stepMs, 0.1),
    stepTimes: stepMs,
  };
  t.dispose();
  return res;
}

/** Several measurements of one engine as one: totals over all their steps. */
export function pooled(runs: Throughput[]): Throughput {
  const steps = runs.reduce((a, r) => a + r.steps, 0);
  const wallMs = runs.reduce((a, r) => a + r.msPerStep * r.steps, 0);
  const cpu = runs.reduce((a, r) => a + r.cpuMsPerStep * r.steps, 0);
  const main = runs.reduce((a, r) => a + r.mainThreadMsPerStep * r.steps, 0);
  const times = runs.flatMap((r) => r.stepTimes);
  return {
    engine: runs[0]!.engine,
    threads: runs[0]!.threads,
    steps,
    pairsPerSecond: (steps * 128) / (wallMs / 1000),
    pairsPerCpuSecond: (steps * 128) / (cpu / 1000),
    msPerStep: wallMs / steps,
    cpuMsPerStep: cpu / steps,
    mainThreadMsPerStep: main / steps,
    medianStepMs: quantile(times, 0.5),
    p10StepMs: quantile(times, 0.1),
    stepTimes: times,
  };
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

