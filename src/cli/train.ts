import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TrainingError, UsageError } from '../errors.ts';
import type { TrainConfig } from '../train/config.ts';
import { RunDivergedError, type TrainRunResult, trainRun } from '../train/run.ts';
import { DEFAULT_SNAPSHOT_POINTS } from '../train/epochEmbeddings.ts';
import { RunDir } from '../train/runDir.ts';
import { count } from '../words.ts';
import { formatEvaluation } from './format.ts';
import { TrainProgress } from './progress.ts';
import { describeStop, onStopSignal, startedByNpm } from './signals.ts';

export interface TrainCommandOptions {
  /** the options given; on --resume they are checked against the run's own (see trainRun) */
  config: Partial<TrainConfig>;
  out?: string;
  resume?: string;
  initWeights?: string;
  resetWeights?: boolean;
  /**
   * test images whose embeddings are stored every epoch; default DEFAULT_SNAPSHOT_POINTS for a
   * new run; a resumed run continues its own file (or, without one, stores none unless told)
   */
  snapshotPoints?: number;
}

/** `siamese train`: one training run into a run directory, with progress and clean interruption. */
export async function trainCommand(o: TrainCommandOptions): Promise<TrainRunResult> {
  if (o.resume !== undefined && o.out !== undefined && resolve(o.out) !== resolve(o.resume)) {
    throw new UsageError('give --out DIR (a new run) or --resume DIR (continue it), not both');
  }
  if (o.initWeights !== undefined && o.resetWeights) {
    // the run took --init-weights and dropped --reset-weights unsaid
    throw new UsageError('give --init-weights FILE (start from those weights) or --reset-weights (the shared initial weights of the seed), not both');
  }
  if (o.resume !== undefined && statSync(o.resume, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new UsageError(`${o.resume}: not a run folder but a file: --resume takes the folder the run was written to`);
  }
  const out = o.resume ?? o.out ?? join('runs', `${o.config.loss ?? 'contrastive'}-seed${o.config.seed ?? 0}`);
  // on --resume the loss and epoch count come from the run's own manifest
  const saved = o.resume !== undefined && new RunDir(out).exists('manifest') ? new RunDir(out).readManifest().config : undefined;
  const progress = new TrainProgress(saved?.loss ?? o.config.loss ?? 'train', o.config.epochs ?? saved?.epochs ?? 20);
  const stop = onStopSignal({
    watchParent: startedByNpm(),
    onStop: (why) => {
      // end the progress line (and give the cursor back) before saying anything
      progress.stop();
      process.stderr.write(
        `${describeStop(why)}: stopping at the next batch; the last finished epoch is kept (send the signal again to quit at once)\n`,
      );
    },
  });
  try {
    const res = await trainRun({
      config: o.config,
      out,
      resume: o.resume !== undefined,
      initWeights: o.initWeights,
      resetWeights: o.resetWeights,
      snapshotPoints: o.snapshotPoints ?? (o.resume === undefined ? DEFAULT_SNAPSHOT_POINTS : 0),
      // once stopping, no new bar: it would hide the cursor again
      onBatch: (b) => stop.signal.aborted || progress.batch(b),
      onEpoch: (l) => progress.epoch(l),
      signal: stop.signal,
    });
    progress.stop();
    if (res.status === 'interrupted') {
      const by = describeStop(stop.reason() ?? 'SIGINT');
      process.stderr.write(
        res.epochs >= res.targetEpochs
          ? `stopped by ${by} before the end of the final evaluation; all ${res.epochs} epochs are saved. ` +
              `Evaluate with: siamese train --resume ${out}\n`
          : `stopped by ${by} after epoch ${res.epochs}; the checkpoint is saved. Resume with: siamese train --resume ${out}\n`,
      );
      process.exitCode = stop.exitCode();
    } else {
      // a resumed run says what this command added, not the total as if it had trained them all
      const more = res.epochs - res.epochsBefore;
      process.stdout.write(
        res.epochsBefore > 0 ? `trained ${count(more, 'more epoch')} into ${out} (${count(res.epochs, 'epoch')} in all)\n` : `trained ${count(res.epochs, 'epoch')} into ${out}\n`,
      );
      if (res.evaluation) process.stdout.write(formatEvaluation(res.evaluation, res.split) + '\n');
    }
    return res;
  } catch (e) {
    if (e instanceof RunDivergedError) throw new TrainingError(`${e.message}. ${lowerRateHint(e)}`);
    throw e;
  } finally {
    progress.stop();
    stop.dispose();
  }
}

/** The exact command that goes on from the last good checkpoint at a tenth of the rate. */
function lowerRateHint(e: RunDivergedError): string {
  const lr = Number((e.learningRate / 10).toPrecision(3));
  const what = e.lastGoodEpoch === 0 ? 'start again from the initial weights' : `go on from epoch ${e.lastGoodEpoch}`;
  return `To ${what} at a lower learning rate: siamese train --resume ${e.runDir} --lr ${lr}`;
}
