import { Command, CommanderError, Option } from 'commander';
import { SiameseError, TrainingError, UsageError } from '../errors.ts';
import { lossNames } from '../losses/registry.ts';
import { optimizerNames } from '../engine/optimizers.ts';
import type { TrainConfig } from '../train/config.ts';
import { collectParam, floatArg, intArg, type LossCliOptions, lossParamsFrom } from './options.ts';
import { translateSeedArgs } from './seedCompat.ts';

/** Options common to every command that builds a model or its pairs. */
interface ModelCliOptions {
  base?: 'mlp' | 'cnn';
  embeddingDim?: number;
  pairSeed?: number;
  threshold?: number;
}

interface TrainCliOptions extends ModelCliOptions, LossCliOptions {
  loss: string;
  epochs?: number;
  batchSize?: number;
  optimizer?: string;
  lr?: number;
  seed?: number;
  out?: string;
  resume?: string;
  initWeights?: string;
  resetWeights?: boolean;
  trainPairs?: number;
  miner?: string;
  perClass?: number;
  dropout?: number;
}

function addModelOptions(c: Command): Command {
  return c
    .addOption(new Option('--base <name>', 'base network').choices(['mlp']))
    .option('--embedding-dim <n>', 'embedding size (default 128)', intArg('--embedding-dim', 1))
    .option('--pair-seed <n>', 'seed of the train/test pair recipe (default 0, the same for every run)', intArg('--pair-seed', 0))
    .option('--threshold <d>', 'pair accuracy threshold: D < d means "same" (default 0.5)', floatArg('--threshold', { positive: true }));
}

function addTrainOptions(c: Command): Command {
  return addModelOptions(
    c
      .option('--loss <name>', `loss: ${lossNames().join(', ')}`, 'contrastive')
      .option('--epochs <n>', 'epochs (default 20)', intArg('--epochs', 0))
      .option('--batch-size <n>', 'pairs (or triplets) per batch (default 128)', intArg('--batch-size', 1))
      .option('--optimizer <name>', `optimizer, case-insensitive: ${optimizerNames().join(', ')} (default rmsprop)`)
      .option('--lr <x>', 'learning rate (default: the optimizer\'s, 0.001 for rmsprop)', floatArg('--lr', { positive: true }))
      .option('--seed <n>', 'seed of weight init, shuffling and dropout (default 0)', intArg('--seed', 0))
      .option('--margin <m>', 'loss margin (contrastive: 1, triplet: 0.85)', floatArg('--margin'))
      .option('--kappa <k>', 'Yukawa screening constant (default 10)', floatArg('--kappa'))
      .option('--power <p>', 'Yukawa positive power (default 3)', floatArg('--power'))
      .option('--pos <expr>', 'custom loss: positive potential, e.g. "d^3"')
      .option('--neg <expr>', 'custom loss: negative potential, e.g. "exp(-10*d)/d"')
      .option('--param <key=value>', 'any other loss parameter (repeatable)', collectParam)
      .option('--miner <name>', 'online miner: batch-all, batch-hard, semihard, hard-negative')
      .option('--per-class <m>', 'images per class in a mined batch (default: batch size / classes)', intArg('--per-class', 2))
      .option('--train-pairs <n>', 'use only the first n train pairs (quick runs)', intArg('--train-pairs', 1))
      .option('--dropout <p>', 'dropout rate in training (default 0.1)', floatArg('--dropout')),
  );
}

function modelConfig(o: ModelCliOptions): Partial<TrainConfig> {
  return { base: o.base, embeddingDim: o.embeddingDim, pairSeed: o.pairSeed, threshold: o.threshold };
}

function trainConfig(o: TrainCliOptions): Partial<TrainConfig> {
  return {
    ...modelConfig(o),
    loss: o.loss,
    lossParams: lossParamsFrom(o),
    epochs: o.epochs,
    batchSize: o.batchSize,
    optimizer: o.optimizer,
    learningRate: o.lr,
    seed: o.seed,
    trainPairs: o.trainPairs,
    miner: o.miner,
    perClass: o.perClass,
    dropout: o.dropout,
  };
}

/** Every command, declared in one place; each action is a thin call into the library. */
export function buildProgram(): Command {
  const program = new Command('siamese')
    .description('Metric learning with Siamese networks: train, compare and inspect embedding losses.')
    .option('--debug', 'print stack traces of errors')
    .showHelpAfterError(false)
    .exitOverride();

  addTrainOptions(program.command('train').description('train one Siamese network into a run directory'))
    .option('--out <dir>', 'run directory (default runs/<loss>-seed<seed>)')
    .option('--resume <dir>', 'continue an interrupted run from its checkpoint')
    .option('--init-weights <file>', 'start from these weights (.safetensors, Keras .h5 or a run directory)')
    .option('--reset-weights', 'start from the shared initial weights of this seed (created once, reused by every loss)')
    .action(async (o: TrainCliOptions) => {
      const { trainCommand } = await import('./train.ts');
      const config = trainConfig(o);
      if (o.resume) {
        // only --epochs may change on resume: the rest is the run's own config
        await trainCommand({ config: { epochs: o.epochs }, resume: o.resume });
      } else {
        await trainCommand({ config, out: o.out, initWeights: o.initWeights, resetWeights: o.resetWeights });
      }
    });

  addModelOptions(program.command('predict').description('evaluate trained weights on the test pairs (the seed\'s --train=False)'))
    .option('--weights <file>', 'a run directory, .safetensors or Keras .h5 file (default: the newest run under runs/)')
    .option('--no-retrieval', 'skip the retrieval metrics')
    .action(async (o: ModelCliOptions & { weights?: string; retrieval: boolean }) => {
      const { predictCommand } = await import('./predict.ts');
      await predictCommand({ weights: o.weights, config: modelConfig(o), retrieval: o.retrieval });
    });

  return program;
}

/** Run the CLI: one line on stderr and a non-zero exit code for every error, never a stack trace. */
export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const program = buildProgram();
  let stderrBuf = '';
  program.configureOutput({ writeErr: (s) => (stderrBuf += s) });
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: (s) => (stderrBuf += s) });
  try {
    await program.parseAsync(translateSeedArgs(argv), { from: 'user' });
  } catch (e) {
    process.exitCode = reportError(e, debug, stderrBuf);
  }
}

function reportError(e: unknown, debug: boolean, commanderText: string): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    const text = (commanderText.trim().split('\n')[0] ?? e.message).replace(/^error: /, '');
    process.stderr.write(`siamese: ${text}\n`);
    return 2;
  }
  if (e instanceof SiameseError) {
    process.stderr.write(`siamese: ${e.message}\n`);
    if (debug && e.stack) process.stderr.write(e.stack + '\n');
    return e instanceof TrainingError ? 1 : 2;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`siamese: internal error: ${err.message.split('\n')[0]}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && err.stack) process.stderr.write(err.stack + '\n');
  return 1;
}

export { UsageError };
