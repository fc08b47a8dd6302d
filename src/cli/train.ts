import { join } from 'node:path';
import type { TrainConfig } from '../train/config.ts';
import { type TrainRunResult, trainRun } from '../train/run.ts';
import { RunDir } from '../train/runDir.ts';
import { formatEvaluation, plural } from './format.ts';
import { TrainProgress } from './progress.ts';
import { onStopSignal } from './signals.ts';

export interface TrainCommandOptions {
  config: Partial<TrainConfig>;
  out?: string;
  resume?: string;
  initWeights?: string;
  resetWeights?: boolean;
}

/** `siamese train`: one training run into a run directory, with progress and clean interruption. */
export async function trainCommand(o: TrainCommandOptions): Promise<TrainRunResult> {
  const out = o.resume ?? o.out ?? join('runs', `${o.config.loss ?? 'contrastive'}-seed${o.config.seed ?? 0}`);
  // on --resume the loss and epoch count come from the run's own manifest
  const saved = o.resume !== undefined && new RunDir(out).exists('manifest') ? new RunDir(out).readManifest().config : undefined;
  const progress = new TrainProgress(o.config.loss ?? saved?.loss ?? 'train', o.config.epochs ?? saved?.epochs ?? 20);
  const signals = onStopSignal();
  try {
    const res = await trainRun({
      config: o.config,
      out,
      resume: o.resume !== undefined,
      initWeights: o.initWeights,
      resetWeights: o.resetWeights,
      onBatch: (b) => progress.batch(b),
      onEpoch: (l) => progress.epoch(l),
      shouldStop: signals.stopped,
    });
    progress.stop();
    if (res.status === 'interrupted') {
      process.stderr.write(
        `stopped by ${signals.signal() ?? 'request'} after epoch ${res.epochs}; the checkpoint is saved. ` +
          `Resume with: siamese train --resume ${out}\n`,
      );
      process.exitCode = 130;
    } else {
      process.stdout.write(`trained ${plural(res.epochs, 'epoch')} into ${out}\n`);
      if (res.evaluation) process.stdout.write(formatEvaluation(res.evaluation) + '\n');
    }
    return res;
  } finally {
    progress.stop();
    signals.dispose();
  }
}
