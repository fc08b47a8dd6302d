import { Command, CommanderError, Option } from 'commander';
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { SiameseError, TrainingError, UsageError } from '../errors.ts';
import { DATASET_NAMES, type DataSpec } from '../data/registry.ts';
import { lossNames } from '../losses/registry.ts';
import { MINER_NAMES } from '../mining/index.ts';
import { optimizerNames } from '../engine/optimizers.ts';
import { RunDir, toolVersion } from '../train/runDir.ts';
import { MAX_EMBEDDING_DIM, type TrainConfig } from '../train/config.ts';
import { count } from '../words.ts';
import { collectParam, floatArg, intArg, type LossCliOptions, lossParamsFrom, pathArg } from './options.ts';
import { freeRunDir } from './runDirName.ts';
import { endQuietlyOnClosedOutput } from './signals.ts';
import { translateSeedArgs } from './seedCompat.ts';

/** how every --queue option says what it takes */
const QUEUE_URL = 'redis://[:password@]host:port[/db] or rediss://';

/** Options of every command that builds a network (the shape its weights must have). */
interface NetworkCliOptions {
  base?: 'mlp' | 'cnn';
  embeddingDim?: number;
}

/** ...and of the commands that also score test pairs (train, predict, compare). */
interface ModelCliOptions extends NetworkCliOptions {
  pairSeed?: number;
  threshold?: number;
  /** --split (train, predict, compare) */
  split?: string;
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
  snapshotPoints?: number;
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
  snapshotPoints?: number;
  retrieval: boolean;
  report: boolean;
  engine?: 'auto' | 'tfjs' | 'native';
}

interface SweepCliOptions extends ModelCliOptions, DataCliOptions {
  queue?: string;
  queueName?: string;
  losses?: string;
  trials?: number;
  folds?: number;
  seeds?: number;
  searchSeed?: number;
  epochs?: number;
  batchSize?: number;
  optimizer?: string;
  lr?: number;
  trainPairs?: number;
  out?: string;
  workers?: number;
  quick?: boolean;
  plan?: boolean;
  report: boolean;
  engine?: 'auto' | 'tfjs' | 'native';
}

function addNetworkOptions(c: Command): Command {
  return c
    .addOption(new Option('--base <name>', 'base network: mlp (the seed\'s) or cnn (2 conv blocks + dense head) (default mlp)').choices(['mlp', 'cnn']))
    .option('--embedding-dim <n>', 'embedding size (default 128)', intArg('--embedding-dim', 1, MAX_EMBEDDING_DIM));
}

/** train, predict and compare also make and score test pairs (embed and export do not). */
function addModelOptions(c: Command): Command {
  return addNetworkOptions(c)
    .option('--pair-seed <n>', 'seed of the train/test pair recipe (default 0, the same for every run)', intArg('--pair-seed', 0))
    .option('--threshold <d>', 'pair accuracy threshold: D < d means "same" (default 0.5)', floatArg('--threshold', { positive: true }));
}

/** --split: class-disjoint train/test classes (src/data/split.ts). */
function addSplitOption(c: Command, sweep = false): Command {
  const rest = 'classes=5,6,7,8,9 (the test classes) | "train=1,2,3;test=4" (both sides named, others left out)';
  return c.option(
    '--split <spec>',
    sweep
      ? `classes (train on the first half of the classes, test on the rest; the default) | ${rest}; pairs is refused (the protocol needs unseen classes)`
      : `pairs (every class on both sides, default) | classes (train on the first half of the classes, test on the rest) | ${rest}`,
  );
}

function addDataOptions(c: Command, what = 'data set'): Command {
  return c
    .addOption(new Option('--data <name>', `${what}: mnist, fashion-mnist, idx (a folder of IDX files), folder (PNGs, one folder per class) (default mnist)`).choices([...DATASET_NAMES]))
    .option('--data-dir <dir>', 'where the data set is: needed by idx and folder; for mnist and fashion-mnist, a folder with the four IDX files instead of the installed copy');
}

/** --queue/--queue-name of compare and sweep: a queue name without a queue, or --workers beside one, would be ignored, so they are refused. */
function queueOf(o: { queue?: string; queueName?: string; workers?: number }): { url: string; name?: string } | undefined {
  if (o.queue === undefined) {
    if (o.queueName !== undefined) throw new UsageError('--queue-name needs --queue');
    return undefined;
  }
  // through a queue the fleet's workers train: this machine's threads would be silently ignored
  if (o.workers !== undefined) {
    throw new UsageError('--workers sets this machine\'s threads, and through --queue the fleet trains: give each machine\'s `siamese worker --concurrency N` instead');
  }
  return { url: o.queue, name: o.queueName };
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
  return addSplitOption(addDataOptions(addModelOptions(
    c
      .option('--loss <name>', `loss: ${lossNames().join(', ')}`, 'contrastive')
      .option('--epochs <n>', 'epochs (default 20)', intArg('--epochs', 0))
      .option('--batch-size <n>', 'pairs (or triplets) per batch (default 128)', intArg('--batch-size', 1))
      .option('--optimizer <name>', `optimizer, case-insensitive: ${optimizerNames().join(', ')} (default rmsprop)`)
      .option('--lr <x>', 'learning rate (default: the optimizer\'s, 0.001 for rmsprop)', floatArg('--lr', { positive: true }))
      .option('--seed <n>', 'seed of weight init, shuffling and dropout (default 0)', intArg('--seed', 0))
      .option('--margin <m>', 'loss margin of contrastive (default 1), triplet and triplet-plain (0.85)', floatArg('--margin'))
      .option('--kappa <k>', 'Yukawa screening constant (default 10)', floatArg('--kappa'))
      .option('--power <p>', 'Yukawa positive power (default 3)', floatArg('--power'))
      .option('--pos <expr>', 'custom loss: positive potential, e.g. "d^3"')
      .option('--neg <expr>', 'custom loss: negative potential, e.g. "exp(-10*d)/d"')
      .option('--param <key=value>', 'any other loss parameter (repeatable)', collectParam)
      .option('--miner <name>', `online miner: ${MINER_NAMES.join(', ')} (hard-negative for pair losses, the others for triplet losses)`)
      .option('--per-class <m>', 'images per class in a mined batch (default: batch size / classes)', intArg('--per-class', 2))
      .option('--train-pairs <n>', 'use only the first n train pairs (quick runs; triplet epochs: n/2 triplets, mined epochs: about 2n images)', intArg('--train-pairs', 1))
      .option('--dropout <p>', 'dropout rate in training (default 0.1)', floatArg('--dropout'))
      .addOption(new Option('--engine <name>', 'numeric engine: auto (native when built), tfjs, native (default auto)').choices(['auto', 'tfjs', 'native']))
      .option('--threads <n>', 'threads of the native engine, at most the cores (default 0 = every core)', intArg('--threads', 0))
      .option('--proxy-lr <x>', 'arcface, cosface, proxy-anchor: learning rate of the class weights (default 100x --lr)', floatArg('--proxy-lr', { positive: true })),
  )));
}

function modelConfig(o: ModelCliOptions): Partial<TrainConfig> {
  return { base: o.base, embeddingDim: o.embeddingDim, pairSeed: o.pairSeed, threshold: o.threshold };
}

/**
 * More threads than cores only make the native engine wait on itself (250x slower seen with 64
 * threads on 2 cores): cap at the cores, and say so.
 */
/** The loss of a run folder's manifest, if it has a readable one (the run reports its own errors). */
function savedLoss(dir: string): string | undefined {
  try {
    return new RunDir(dir).readManifest().config.loss;
  } catch {
    return undefined;
  }
}

function cappedThreads(threads: number | undefined): number | undefined {
  const cores = availableParallelism();
  if (threads === undefined || threads <= cores) return threads;
  process.stderr.write(`siamese: --threads ${threads} is more than the ${cores} ${cores === 1 ? 'core' : 'cores'} here; using ${cores}\n`);
  return cores;
}

function trainConfig(o: TrainCliOptions): Partial<TrainConfig> {
  return {
    ...modelConfig(o),
    loss: o.loss,
    lossParams: lossParamsFrom(o.loss, o),
    split: o.split,
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
    threads: cappedThreads(o.threads),
    data: dataSpec(o),
  };
}

/** What compare and sweep both take: how their runs train, and where. */
function addExperimentOptions(c: Command, what: 'grid' | 'sweep'): Command {
  return c
    .option('--batch-size <n>', 'pairs (or triplets) per batch (default 128)', intArg('--batch-size', 1))
    .option('--optimizer <name>', `optimizer: ${optimizerNames().join(', ')} (default rmsprop)`)
    .option('--workers <n>', 'worker threads (default: one per core)', intArg('--workers', 1))
    .option('--queue <url>', `run on a fleet of \`siamese worker\`s through Redis: ${QUEUE_URL}`)
    .option('--queue-name <name>', `the queue of this ${what} (default: named after the ${what})`)
    .addOption(new Option('--engine <name>', 'numeric engine: auto (native when built), tfjs, native (default auto)').choices(['auto', 'tfjs', 'native']));
}

const PATH_WORDS: Record<string, string> = { dir: 'a folder', file: 'a file', path: 'a path', name: 'a name' };

/**
 * Every file or folder that any command takes, checked in one place: an option whose value is
 * <dir>, <file> or <path>, and an argument named like a folder, is refused when empty (pathArg).
 * So is an empty <name> (--queue-name '' read as no name: every grid, or a grid named '').
 */
function refuseEmptyPaths(cmd: Command): void {
  for (const o of cmd.options) {
    const kind = /<(dir|file|path|name)>/.exec(o.flags)?.[1];
    if (kind && o.parseArg === undefined) o.argParser(pathArg(o.long ?? o.flags, PATH_WORDS[kind]!));
  }
  for (const a of cmd.registeredArguments) {
    if (a.parseArg !== undefined || !/dir/.test(a.name())) continue;
    const check = pathArg(`${cmd.name()} ${a.variadic ? `[${a.name()}...]` : `<${a.name()}>`}`, 'a folder');
    // a variadic argument's parser gathers the values itself
    if (a.variadic) a.argParser((v: string, prev?: string[]) => [...(prev ?? []), check(v)]);
    else a.argParser(check);
  }
  cmd.commands.forEach(refuseEmptyPaths);
}

/** Every command, declared in one place; each action is a thin call into the library. */
export function buildProgram(): Command {
  const program = new Command('siamese')
    .description('Metric learning with Siamese networks: train, compare and inspect embedding losses.')
    .version(toolVersion(), '-V, --version', 'print the version')
    .option('--debug', 'print stack traces of errors')
    .showHelpAfterError(false)
    .showSuggestionAfterError(true)
    .exitOverride();

  addTrainOptions(program.command('train').description('train one Siamese network into a run directory'))
    .option('--out <dir>', 'run directory (default runs/<loss>-seed<seed>, numbered -2, -3, ... when that holds a run)')
    .option('--resume <dir>', 'continue an interrupted run from its checkpoint')
    .option('--init-weights <file>', 'start from these weights (.safetensors, Keras .h5 or a run directory)')
    .option('--reset-weights', 'start from the shared initial weights of this seed (created once, reused by every loss)')
    .option('--snapshot-points <n>', 'test images whose embeddings are stored every epoch (for serve\'s moving map), 0 = none (default 2000)', intArg('--snapshot-points', 0))
    .action(async (o: TrainCliOptions, cmd: Command) => {
      if (o.resume) {
        // every option given goes to the run, which applies --epochs, --lr, --engine and --threads
        // and refuses the others when they differ; --loss has a default, so it counts only when
        // typed, and loss options are checked against the run's own loss
        const typed = cmd.getOptionValueSource('loss') !== 'default';
        const config = trainConfig({ ...o, loss: typed ? o.loss : (savedLoss(o.resume) ?? o.loss) });
        const { trainCommand } = await import('./train.ts');
        await trainCommand({ config: { ...config, loss: typed ? o.loss : undefined }, resume: o.resume, out: o.out, initWeights: o.initWeights, resetWeights: o.resetWeights, snapshotPoints: o.snapshotPoints });
      } else {
        const config = trainConfig(o); // checks the options before the engine loads
        const { trainCommand } = await import('./train.ts');
        const out = o.out ?? freeRunDir('runs', `${o.loss}-seed${o.seed ?? 0}`, (s) => process.stderr.write(`siamese: ${s}\n`));
        await trainCommand({ config, out, initWeights: o.initWeights, resetWeights: o.resetWeights, snapshotPoints: o.snapshotPoints });
      }
    });

  addSplitOption(addDataOptions(addModelOptions(program.command('predict').description('evaluate trained weights on the test pairs (the seed\'s --train=False)')))
    .option('--weights <file>', 'a run directory, .safetensors or Keras .h5 file (default: the newest run under runs/)')
    .option('--loss <name>', 'without --weights: the newest run of this loss under runs/ (the seed\'s --train=False --loss=NAME)')
    .option('--no-retrieval', 'skip the retrieval metrics'))
    .action(async (o: ModelCliOptions & DataCliOptions & { weights?: string; loss?: string; retrieval: boolean; split?: string }) => {
      const { predictCommand } = await import('./predict.ts');
      await predictCommand({ weights: o.weights, loss: o.loss, config: { ...modelConfig(o), data: dataSpec(o), split: o.split }, retrieval: o.retrieval });
    });

  addExperimentOptions(addSplitOption(addDataOptions(addModelOptions(program.command('compare').description('train losses x seeds from identical initial weights, in parallel, and compare them'))
    .option('--losses <list>', 'losses, e.g. contrastive,yukawa:kappa=5,\'custom:pos=d^3;neg=exp(-10*d)/d\' (default contrastive,yukawa,triplet)')
    .option('--seeds <n|list>', 'a count (3 = seeds 0,1,2) or a list such as 0,5,7 (7, = seed 7 alone) (default 3)')
    .option('--epochs <n>', 'epochs per run (default 20)', intArg('--epochs', 1))
    .option('--lr <x>', 'learning rate (default: the optimizer\'s)', floatArg('--lr', { positive: true }))
    .option('--train-pairs <n>', 'use only the first n train pairs (triplets: n/2, mined: about 2n images)', intArg('--train-pairs', 1))
    .option('--out <dir>', 'comparison directory; run it again to resume (default runs/compare)')
    .option('--resume <dir>', 'continue the comparison in DIR with its own settings')
    .option('--quick', 'a first look in minutes: 2 epochs on 20,000 train pairs, 2 seeds, 500 t-SNE points')
    .option('--tsne-points <n>', 'test images in the t-SNE panels, 0 = none (default 2000)', intArg('--tsne-points', 0))
    .option('--snapshot-points <n>', 'test images whose embeddings each run stores every epoch (for serve\'s moving map), 0 = none (default 2000)', intArg('--snapshot-points', 0))
    .option('--no-retrieval', 'skip the retrieval measures (MAP@R, ...)')
    .option('--no-report', 'write results.json only')
    .addHelpText('after', '\nLoss specs: NAME[:KEY=VALUE;KEY=VALUE...], comma-separated; keys are the loss\'s parameters, miner and id.\nQuote lists that hold ";" or parentheses. The parameters of each loss: siamese losses.'))), 'grid')
    .action(async (o: CompareCliOptions) => {
      if (o.resume !== undefined && o.out !== undefined && o.resume !== o.out) {
        throw new UsageError('give --out DIR (runs again resume there) or --resume DIR, not both');
      }
      if (o.resume !== undefined && statSync(o.resume, { throwIfNoEntry: false })?.isDirectory() === false) {
        throw new UsageError(`${o.resume}: not a comparison folder but a file: --resume takes the folder compare wrote`);
      }
      const { compareCommand } = await import('./compare.ts');
      const { parseSeeds } = await import('../experiments/grid.ts');
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
        queue: queueOf(o),
        tsnePoints: o.tsnePoints,
        snapshotPoints: o.snapshotPoints,
        retrieval: o.retrieval ? undefined : false,
        report: o.report,
        engine: o.engine,
        split: o.split,
      });
    });

  addExperimentOptions(addSplitOption(addDataOptions(addModelOptions(program.command('sweep').description('per loss: a cross-validated hyperparameter search on the training classes, then a test on unseen classes'))
    .option('--losses <list>', 'search spaces, e.g. contrastive:margin=0.2..2,\'yukawa:kappa=1..40:log;power=1..4;lr=1e-4..1e-2:log\' (default contrastive:margin=0.2..2,yukawa:kappa=1..40:log;power=1..4)')
    .option('--trials <n>', 'trials per loss (default 30)', intArg('--trials', 1))
    .option('--folds <k>', 'cross-validation folds, each validating on training classes it does not train on (default 4; with fewer than 2 x K training classes each fold validates on a pair of classes, the pairs overlapping)', intArg('--folds', 2))
    .option('--seeds <n>', 'final trainings of the best and the default parameters (default 5)', intArg('--seeds', 1))
    .option('--search-seed <n>', 'seed of the search (default 0)', intArg('--search-seed', 0))
    .option('--epochs <n>', 'epochs per training (default 20)', intArg('--epochs', 1))
    .option('--lr <x>', 'learning rate where a spec neither fixes nor searches lr (default: the optimizer\'s)', floatArg('--lr', { positive: true }))
    .option('--train-pairs <n>', 'use only the first n train pairs', intArg('--train-pairs', 1))
    .option('--out <dir>', 'sweep directory; the same command again resumes there (default runs/sweep)')
    .option('--quick', 'a first look: 4 trials, 2 folds, 2 seeds, 1 epoch on 2,000 train pairs')
    .option('--plan', 'print the plan and its time estimate, then exit (writes nothing)')
    .option('--no-report', 'write results.json only')
    .addHelpText('after', '\nRanges: KEY=LO..HI, with :log (log scale) and/or :int; lr=LO..HI searches the learning rate. Default --split: classes.\nThe parameters of each loss: siamese losses; --plan shows the folds, trainings and time first.')), true), 'sweep')
    .action(async (o: SweepCliOptions) => {
      const { sweepCommand, sweepPlanCommand } = await import('./sweep.ts');
      await (o.plan ? sweepPlanCommand : sweepCommand)({
        ...modelConfig(o),
        data: dataSpec(o),
        losses: o.losses,
        trials: o.trials,
        folds: o.folds,
        seeds: o.seeds,
        searchSeed: o.searchSeed,
        epochs: o.epochs,
        batchSize: o.batchSize,
        optimizer: o.optimizer,
        learningRate: o.lr,
        trainPairs: o.trainPairs,
        out: o.out,
        workers: o.workers,
        quick: o.quick,
        queue: queueOf(o),
        report: o.report,
        engine: o.engine,
        split: o.split,
      });
    });

  program
    .command('worker')
    .description('serve the grids of a Redis queue (compare/sweep --queue) until Ctrl-C: train their jobs here')
    .requiredOption('--queue <url>', QUEUE_URL)
    .option('--queue-name <name>', 'serve this grid only (default: every grid a coordinator registers)')
    .option('--concurrency <n>', 'jobs at a time (default 1)', intArg('--concurrency', 1))
    .option('--threads <n>', 'native engine threads per job (default or 0: cores / --concurrency)', intArg('--threads', 0))
    .option('--data-dir <dir>', "read every job's data set from this folder (IDX files, or class folders) instead of the coordinator's")
    .addOption(new Option('--lock-seconds <s>', 'seconds before a silent worker\'s job is handed on (default 30)').argParser(floatArg('--lock-seconds', { positive: true })).hideHelp())
    .addOption(new Option('--backoff-seconds <s>', 'seconds a worker leaves a grid whose job it cannot run (default 30)').argParser(floatArg('--backoff-seconds', { positive: true })).hideHelp())
    .action(async (o: { queue: string; queueName?: string; concurrency?: number; threads?: number; lockSeconds?: number; dataDir?: string; backoffSeconds?: number }) => {
      if (o.dataDir !== undefined && o.dataDir.trim() === '') throw new UsageError('--data-dir needs a folder');
      if (o.queueName !== undefined && o.queue === undefined) throw new UsageError('--queue-name needs --queue');
      const { workerCommand } = await import('./worker.ts');
      await workerCommand(o);
    });

  const queueCmd = program.command('queue').description('look after a Redis queue of grids: status, clean');
  queueCmd
    .command('status')
    .description('waiting, active, done and failed jobs of each grid, with their workers')
    .requiredOption('--queue <url>', QUEUE_URL)
    .option('--queue-name <name>', 'one grid only')
    .action(async (o: { queue: string; queueName?: string }) => {
      const { queueStatusCommand } = await import('./queue.ts');
      await queueStatusCommand(o);
    });
  queueCmd
    .command('clean')
    .description("remove a finished grid's keys (jobs, checkpoints) from Redis")
    .requiredOption('--queue <url>', QUEUE_URL)
    .requiredOption('--queue-name <name>', 'the grid (see queue status)')
    .option('--force', 'also when jobs are still waiting or running')
    .action(async (o: { queue: string; queueName?: string; force?: boolean }) => {
      const { queueCleanCommand } = await import('./queue.ts');
      await queueCleanCommand(o);
    });

  program
    .command('report')
    .description('rebuild report.html, report.md (and figures/) of a compare or sweep folder from its results.json (no retraining)')
    .argument('<run-dir>', 'the directory `siamese compare` or `siamese sweep` wrote (it holds results.json)')
    .action(async (runDir: string) => {
      const { reportCommand } = await import('./report.ts');
      await reportCommand({ runDir });
    });

  addDataOptions(addNetworkOptions(program.command('embed').description('write the embeddings of a split as .npy (or Embedding Projector TSV files)'))
    .requiredOption('--weights <file>', 'a run directory, .safetensors or Keras .h5 file')
    .option('--split <name>', 'train or test', 'test')
    .option('--out <path>', 'output .npy file (or folder with --format projector)', 'embeddings.npy')
    .option('--labels <file>', 'also write the labels as int32 .npy')
    .option('--format <name>', 'npy or projector (vectors.tsv + metadata.tsv)', 'npy'), 'data set to embed')
    .action(async (o: NetworkCliOptions & DataCliOptions & { weights: string; split: string; out: string; labels?: string; format: string }) => {
      const { embedCommand } = await import('./embed.ts');
      const config = { base: o.base, embeddingDim: o.embeddingDim, data: dataSpec(o) };
      await embedCommand({ weights: o.weights, split: o.split, out: o.out, labels: o.labels, format: o.format, config });
    });

  // a bare weights file does not say its input size: --data names the images it was trained on
  addDataOptions(addNetworkOptions(program.command('export').description('write trained weights as a Keras 2 .h5 weight file of the base network, as .safetensors, or as an ONNX model'))
    .requiredOption('--weights <file>', 'a run directory, .safetensors or Keras .h5 file')
    .requiredOption('--out <file>', 'output file: .h5 (Keras), .safetensors or .onnx')
    .option('--format <name>', 'keras-h5, safetensors or onnx (default: from the --out extension)'),
    'for a bare weights file, the data set it was trained on (its image size; a run directory knows its own)')
    .action(async (o: NetworkCliOptions & DataCliOptions & { weights: string; out: string; format?: string }) => {
      const { exportCommand } = await import('./export.ts');
      await exportCommand({ weights: o.weights, out: o.out, format: o.format, config: { base: o.base, embeddingDim: o.embeddingDim, data: dataSpec(o) } });
    });

  program
    .command('tsne')
    .description('2-D Barnes-Hut t-SNE of any float32 .npy matrix [N, D]')
    .requiredOption('--in <file>', 'input .npy matrix (float32 or float64)')
    .requiredOption('--out <file>', 'output .npy, float32 [N, 2]')
    .option('--perplexity <p>', 'perplexity (default 30)', floatArg('--perplexity', { positive: true }))
    .option('--theta <t>', 'Barnes-Hut accuracy, 0 = exact-ish, default 0.5', floatArg('--theta'))
    // a cap for a mistyped count (1e8 ran for days); layouts settle within a few thousand
    .option('--iterations <n>', 'iterations (default 1000, at most 100000)', intArg('--iterations', 1, 100_000))
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
      process.stdout.write(`t-SNE of ${count(r.rows, 'point')} in ${r.seconds.toFixed(1)} s: ${o.out}\n`);
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

  program
    .command('doctor')
    .description('what this installation can do here: engine (native or TF.js, and why), CPU features, data sets, optional programs')
    .option('--json', 'print the report as JSON')
    .action(async (o: { json?: boolean }) => {
      const { doctorCommand } = await import('./doctor.ts');
      doctorCommand(o);
    });

  program
    .command('serve')
    .description('serve a live web page over compare outputs and run folders (read-only, 127.0.0.1 by default)')
    .argument('[dir...]', 'folders to serve: a compare output, a run, or a folder of those (default .)')
    .option('--port <n>', 'port (default 5173; 0 = any free port)', intArg('--port', 0))
    .option('--host <addr>', 'address to bind (default 127.0.0.1; another one exposes the folders: warned)')
    .action(async (dirs: string[], o: { port?: number; host?: string }) => {
      const { serveCommand } = await import('./serve.ts');
      await serveCommand({ dirs, port: o.port, host: o.host });
    });

  refuseEmptyPaths(program);
  return program;
}

/** Run the CLI: one line on stderr and a non-zero exit code for every error, never a stack trace. */
export async function main(argv: string[]): Promise<void> {
  endQuietlyOnClosedOutput();
  const debug = argv.includes('--debug');
  const program = buildProgram();
  let stderrBuf = '';
  program.configureOutput({ writeErr: (s) => (stderrBuf += s) });
  // every level: `queue status` and `queue clean` are commands of a command
  const quiet = (cmds: readonly Command[]): void => {
    for (const c of cmds) {
      c.exitOverride().configureOutput({ writeErr: (s) => (stderrBuf += s) });
      quiet(c.commands);
    }
  };
  quiet(program.commands);
  try {
    await program.parseAsync(translateSeedArgs(argv), { from: 'user' });
  } catch (e) {
    process.exitCode = reportError(e, debug, stderrBuf);
  }
}

function reportError(e: unknown, debug: boolean, commanderText: string): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code === 'commander.help') {
      // `siamese` alone: the help, on stderr with exit code 1 (commander's convention for a missing command)
      process.stderr.write(commanderText);
      return e.exitCode;
    }
    // one line: commander's message with its "(Did you mean ...?)", which it puts on a line of its own
    const text = e.message.replace(/^error: /, '').replace(/\s*\n\s*\(Did you mean/, ' (did you mean').replace(/\s*\n\s*/g, ' ');
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

