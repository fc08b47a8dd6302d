import { Command, CommanderError, Option } from 'commander';
import { SiameseError, TrainingError, UsageError } from '../errors.ts';
import { DATASET_NAMES, type DataSpec } from '../data/registry.ts';
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

/** `--data NAME [--data-dir DIR]`: which data set (train, predict). */
interface DataCliOptions {
  data?: string;
  dataDir?: string;
}

interface TrainCliOptions extends ModelCliOptions, LossCliOptions, DataCliOptions {
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
  engine?: 'auto' | 'tfjs' | 'native';
  threads?: number;
}

interface CompareCliOptions extends ModelCliOptions, DataCliOptions {
  queue?: string;
  queueName?: string;
  losses?: string;
  seeds?: string;
  epochs?: number;
  batchSize?: number;
  optimizer?: string;
  lr?: number;
  trainPairs?: number;
  out?: string;
  resume?: string;
  workers?: number;
  quick?: boolean;
  tsnePoints?: number;
  retrieval: boolean;
  report: boolean;
  engine?: 'auto' | 'tfjs' | 'native';
}

function addModelOptions(c: Command): Command {
  return c
    .addOption(new Option('--base <name>', 'base network: mlp (the seed\'s) or cnn (2 conv blocks + dense head) (default mlp)').choices(['mlp', 'cnn']))
    .option('--embedding-dim <n>', 'embedding size (default 128)', intArg('--embedding-dim', 1))
    .option('--pair-seed <n>', 'seed of the train/test pair recipe (default 0, the same for every run)', intArg('--pair-seed', 0))
    .option('--threshold <d>', 'pair accuracy threshold: D < d means "same" (default 0.5)', floatArg('--threshold', { positive: true }));
}

function addDataOptions(c: Command): Command {
  return c
    .addOption(new Option('--data <name>', 'data set: mnist, fashion-mnist, idx (a folder of IDX files), folder (PNGs, one folder per class) (default mnist)').choices([...DATASET_NAMES]))
    .option('--data-dir <dir>', 'where the data set is: needed by idx and folder; for mnist and fashion-mnist, a folder with the four IDX files instead of the installed copy');
}

/** The data spec of --data/--data-dir, or undefined (the run's own data, or MNIST). */
function dataSpec(o: DataCliOptions): DataSpec | undefined {
  if (o.data === undefined) {
    if (o.dataDir !== undefined) throw new UsageError(`--data-dir needs --data: ${DATASET_NAMES.join(', ')}`);
    return undefined;
  }
  return o.dataDir === undefined ? { name: o.data as DataSpec['name'] } : { name: o.data as DataSpec['name'], dir: o.dataDir };
}

function addTrainOptions(c: Command): Command {
  return addDataOptions(addModelOptions(
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
      .option('--train-pairs <n>', 'use only the first n train pairs (quick runs; triplet epochs: n/2 triplets, mined epochs: about 2n images)', intArg('--train-pairs', 1))
      .option('--dropout <p>', 'dropout rate in training (default 0.1)', floatArg('--dropout'))
      .addOption(new Option('--engine <name>', 'numeric engine: auto (native when built), tfjs, native (default auto)').choices(['auto', 'tfjs', 'native']))
      .option('--threads <n>', 'threads of the native engine (default 0 = every core)', intArg('--threads', 0)),
  ));
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
    engine: o.engine,
    threads: o.threads,
    data: dataSpec(o),
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
        await trainCommand({ config: { epochs: o.epochs, engine: o.engine, threads: o.threads }, resume: o.resume });
      } else {
        await trainCommand({ config, out: o.out, initWeights: o.initWeights, resetWeights: o.resetWeights });
      }
    });

  addDataOptions(addModelOptions(program.command('predict').description('evaluate trained weights on the test pairs (the seed\'s --train=False)')))
    .option('--weights <file>', 'a run directory, .safetensors or Keras .h5 file (default: the newest run under runs/)')
    .option('--no-retrieval', 'skip the retrieval metrics')
    .action(async (o: ModelCliOptions & DataCliOptions & { weights?: string; retrieval: boolean }) => {
      const { predictCommand } = await import('./predict.ts');
      await predictCommand({ weights: o.weights, config: { ...modelConfig(o), data: dataSpec(o) }, retrieval: o.retrieval });
    });

  addDataOptions(addModelOptions(program.command('compare').description('train losses x seeds from identical initial weights, in parallel, and compare them'))
    .option('--losses <list>', 'losses, e.g. contrastive,yukawa:kappa=5,\'custom:pos=d^3;neg=exp(-10*d)/d\' (default contrastive,yukawa,triplet)')
    .option('--seeds <n|list>', 'a count (3 = seeds 0,1,2) or a list such as 0,5,7 (default 3)')
    .option('--epochs <n>', 'epochs per run (default 20)', intArg('--epochs', 1))
    .option('--batch-size <n>', 'pairs (or triplets) per batch (default 128)', intArg('--batch-size', 1))
    .option('--optimizer <name>', `optimizer: ${optimizerNames().join(', ')} (default rmsprop)`)
    .option('--lr <x>', 'learning rate (default: the optimizer\'s)', floatArg('--lr', { positive: true }))
    .option('--train-pairs <n>', 'use only the first n train pairs (triplets: n/2, mined: about 2n images)', intArg('--train-pairs', 1))
    .option('--out <dir>', 'comparison directory; run it again to resume (default runs/compare)')
    .option('--resume <dir>', 'continue the comparison in DIR with its own settings')
    .option('--workers <n>', 'worker threads (default: one per core)', intArg('--workers', 1))
    .option('--queue <url>', 'run on a fleet of `siamese worker`s through Redis: redis://[:password@]host:port[/db] or rediss://')
    .option('--queue-name <name>', 'the queue of this grid (default: named after the grid)')
    .option('--quick', 'a first look in minutes: 2 epochs on 20,000 train pairs, 2 seeds, 500 t-SNE points')
    .option('--tsne-points <n>', 'test images in the t-SNE panels, 0 = none (default 2000)', intArg('--tsne-points', 0))
    .option('--no-retrieval', 'skip the retrieval measures (MAP@R, ...)')
    .option('--no-report', 'write results.json only')
    .addOption(new Option('--engine <name>', 'numeric engine: auto (native when built), tfjs, native (default auto)').choices(['auto', 'tfjs', 'native']))
    .addHelpText('after', '\nLoss specs: NAME[:KEY=VALUE;KEY=VALUE...], comma-separated; keys are the loss\'s parameters, miner and id.\nQuote lists that hold ";" or parentheses. Details: src/experiments/lossSpec.ts.'))
    .action(async (o: CompareCliOptions) => {
      if (o.resume !== undefined && o.out !== undefined && o.resume !== o.out) {
        throw new UsageError('give --out DIR (runs again resume there) or --resume DIR, not both');
      }
      const { compareCommand } = await import('./compare.ts');
      const { parseSeeds } = await import('../experiments/compare.ts');
      await compareCommand({
        ...modelConfig(o),
        data: dataSpec(o),
        losses: o.losses,
        seeds: o.seeds === undefined ? undefined : parseSeeds(o.seeds),
        epochs: o.epochs,
        batchSize: o.batchSize,
        optimizer: o.optimizer,
        learningRate: o.lr,
        trainPairs: o.trainPairs,
        out: o.resume ?? o.out,
        resume: o.resume !== undefined,
        workers: o.workers,
        quick: o.quick,
        queue: o.queue === undefined ? undefined : { url: o.queue, name: o.queueName },
        tsnePoints: o.tsnePoints,
        retrieval: o.retrieval ? undefined : false,
        report: o.report,
        engine: o.engine,
      });
    });

  program
    .command('worker')
    .description('serve the grids of a Redis queue (compare/sweep --queue) until Ctrl-C: train their jobs here')
    .requiredOption('--queue <url>', 'redis://[:password@]host:port[/db] or rediss://')
    .option('--queue-name <name>', 'serve this grid only (default: every grid a coordinator registers)')
    .option('--concurrency <n>', 'jobs at a time (default 1)', intArg('--concurrency', 1))
    .option('--threads <n>', 'native engine threads per job (default: every core)', intArg('--threads', 0))
    .addOption(new Option('--lock-seconds <s>', 'seconds before a silent worker\'s job is handed on (default 30)').argParser(floatArg('--lock-seconds', { positive: true })).hideHelp())
    .action(async (o: { queue: string; queueName?: string; concurrency?: number; threads?: number; lockSeconds?: number }) => {
      if (o.queueName !== undefined && o.queue === undefined) throw new UsageError('--queue-name needs --queue');
      const { workerCommand } = await import('./worker.ts');
      await workerCommand(o);
    });

  const queueCmd = program.command('queue').description('look after a Redis queue of grids: status, clean');
  queueCmd
    .command('status')
    .description('waiting, active, done and failed jobs of each grid, with their workers')
    .requiredOption('--queue <url>', 'redis://[:password@]host:port[/db] or rediss://')
    .option('--queue-name <name>', 'one grid only')
    .action(async (o: { queue: string; queueName?: string }) => {
      const { queueStatusCommand } = await import('./queue.ts');
      await queueStatusCommand(o);
    });
  queueCmd
    .command('clean')
    .description("remove a finished grid's keys (jobs, checkpoints) from Redis")
    .requiredOption('--queue <url>', 'redis://[:password@]host:port[/db] or rediss://')
    .requiredOption('--queue-name <name>', 'the grid (see queue status)')
    .option('--force', 'also when jobs are still waiting or running')
    .action(async (o: { queue: string; queueName?: string; force?: boolean }) => {
      const { queueCleanCommand } = await import('./queue.ts');
      await queueCleanCommand(o);
    });

  program
    .command('report')
    .description('rebuild report.html, report.md and figures/ of a compare run from its results.json (no retraining)')
    .argument('<run-dir>', 'the directory `siamese compare` wrote (it holds results.json)')
    .action(async (runDir: string) => {
      const { reportCommand } = await import('./report.ts');
      await reportCommand({ runDir });
    });

  addDataOptions(addModelOptions(program.command('embed').description('write the embeddings of a split as .npy (or Embedding Projector TSV files)'))
    .requiredOption('--weights <file>', 'a run directory, .safetensors or Keras .h5 file')
    .option('--split <name>', 'train or test', 'test')
    .option('--out <path>', 'output .npy file (or folder with --format projector)', 'embeddings.npy')
    .option('--labels <file>', 'also write the labels as int32 .npy')
    .option('--format <name>', 'npy or projector (vectors.tsv + metadata.tsv)', 'npy'))
    .action(async (o: ModelCliOptions & DataCliOptions & { weights: string; split: string; out: string; labels?: string; format: string }) => {
      const { embedCommand } = await import('./embed.ts');
      await embedCommand({ weights: o.weights, split: o.split, out: o.out, labels: o.labels, format: o.format, config: { ...modelConfig(o), data: dataSpec(o) } });
    });

  addDataOptions(addModelOptions(program.command('export').description('write trained weights as a Keras 2 .h5 weight file of the base network, or as .safetensors'))
    .requiredOption('--weights <file>', 'a run directory, .safetensors or Keras .h5 file')
    .requiredOption('--out <file>', 'output file: .h5 (Keras) or .safetensors')
    .option('--format <name>', 'keras-h5 or safetensors (default: from the --out extension)'))
    .action(async (o: ModelCliOptions & DataCliOptions & { weights: string; out: string; format?: string }) => {
      const { exportCommand } = await import('./export.ts');
      await exportCommand({ weights: o.weights, out: o.out, format: o.format, config: { ...modelConfig(o), data: dataSpec(o) } });
    });

  program
    .command('tsne')
    .description('2-D Barnes-Hut t-SNE of any float32 .npy matrix [N, D]')
    .requiredOption('--in <file>', 'input .npy matrix (float32 or float64)')
    .requiredOption('--out <file>', 'output .npy, float32 [N, 2]')
    .option('--perplexity <p>', 'perplexity (default 30)', floatArg('--perplexity', { positive: true }))
    .option('--theta <t>', 'Barnes-Hut accuracy, 0 = exact-ish, default 0.5', floatArg('--theta'))
    .option('--iterations <n>', 'iterations (default 1000)', intArg('--iterations', 1))
    .option('--seed <n>', 'seed (default 0)', intArg('--seed', 0))
    .action(async (o: { in: string; out: string; perplexity?: number; theta?: number; iterations?: number; seed?: number }) => {
      const { tsneCommand } = await import('./tsne.ts');
      // progress on a terminal only; CI logs get the one result line
      const tty = Boolean(process.stderr.isTTY) && !process.env['CI'];
      const onStep = tty
        ? (i: number, total: number) => {
            if (i % 25 === 0 || i === total) process.stderr.write(`\rt-SNE iteration ${i}/${total}${i === total ? '\n' : ''}`);
          }
        : undefined;
      const r = await tsneCommand({ ...o, onStep });
      process.stdout.write(`t-SNE of ${r.rows} points in ${r.seconds.toFixed(1)} s: ${o.out}\n`);
    });

  program
    .command('losses')
    .description('list every loss with its formula and parameters; --plot draws L_pos(D) and L_neg(D) on [0, 1.5]')
    .option('--plot', 'draw the losses instead of listing them (implied by --losses, --pos, --neg, --out)')
    .option('--losses <list>', 'losses to draw, as in compare: e.g. yukawa,contrastive:margin=2,\'custom:pos=d^3;neg=exp(-10*d)/d\' (default contrastive,yukawa,triplet)')
    .option('--pos <expr>', 'also draw a custom loss: positive potential in d, e.g. "d^3" (with --neg)')
    .option('--neg <expr>', 'its negative potential in d, e.g. "exp(-10*d)/d"')
    .option('--out <file>', 'the picture, .svg or .png (default losses.svg)')
    .action(async (o: { plot?: boolean; losses?: string; pos?: string; neg?: string; out?: string }) => {
      const { lossesCommand } = await import('./losses.ts');
      await lossesCommand(o);
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

