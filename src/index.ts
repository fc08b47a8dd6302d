/**
 * siamese-lab: metric learning with Siamese networks in TypeScript.
 * The public API, what `import ... from 'siamese-lab'` gives: the CLI (src/cli) is a thin layer
 * over these functions, and test/api.test.ts holds it to that (every name the CLI imports from
 * the library is here) and lists the names, so that a change to the API is a deliberate one.
 * TF.js stays an implementation detail: no `tf` namespace; the tensors that the engine form of a
 * loss or an optimizer takes are the package's own interfaces (tensor.ts). Every type that an
 * exported signature mentions is exported here by name (test/apiTypes.test.ts).
 */

// Errors and randomness
export { DataError, SiameseError, TrainingError, UsageError, type ErrorCode } from './errors.ts';
export { Rng, type RngState } from './rng.ts';

// Data
export { parseIdx, readIdx, type IdxArray } from './data/idx.ts';
export { classCount, imagesAsFloat, loadIdxSplit, type Dataset, type ImageSplit, type SplitName } from './data/dataset.ts';
export { loadIdxDataset, loadMnist } from './data/mnist.ts';
export { classIndices, makePairs, makeRandomTriplets, permutePairs, slicePairs, type PairSet, type TripletSet } from './data/pairs.ts';
export type { ClassSplit } from './data/split.ts';

// Engine: TF.js' backend (started once per process) and the native engine's status
export { initBackend, type BackendName } from './engine/backend.ts';
export { nativeCacheDir, nativeStatus, type NativeBuildInfo, type NativeStatus, type NativeUnavailable } from './engine/native.ts';
export { ENGINE_CHOICES } from './engine/select.ts';
export type { Batch, EmbeddingTail, EngineChoice, EngineName, EngineOptions, StepOutput, TrainEngine } from './engine/engine.ts';
export { createOptimizer, optimizerNames, type Optimizer, type OptimizerOptions } from './engine/optimizers.ts';

// Models and weights
export { mlpNetwork, type MlpOptions } from './model/mlp.ts';
export { buildNetwork, type NetworkConfig } from './model/build.ts';
export { glorotUniform, type BaseNetwork, type Layer } from './model/network.ts';
export { pairDistancesHost, SQUARED_DISTANCE_FLOOR } from './model/siamese.ts';
export { loadWeights, matchWeights } from './model/load.ts';
export { isKerasH5, readKerasWeights, writeKerasH5, KerasH5Reader, type ExpectedTensor } from './model/keras.ts';
export type { NamedTensor, TensorSpec } from './model/weights.ts';
// the tensors of the engine form of losses and optimizers (declared in tensor.ts, not tfjs-core's)
export type { Tensor, Tensor1D, Tensor2D, Variable } from './tensor.ts';

// Losses
export type { Loss, PairLoss, TripletLoss } from './losses/types.ts';
export { contrastiveLoss, type ContrastiveOptions } from './losses/contrastive.ts';
export { yukawaLoss, type YukawaOptions } from './losses/yukawa.ts';
export { tripletLoss, type TripletOptions } from './losses/triplet.ts';
export { softMarginTripletLoss, type SoftTripletOptions } from './losses/softTriplet.ts';
export {
  coulombLoss, gaussianLoss, lennardJonesLoss, powerLoss, springLoss,
  type CoulombOptions, type GaussianOptions, type LennardJonesOptions, type PowerOptions, type SpringOptions,
} from './losses/potentials.ts';
export { customPotentialLoss, type CustomPotentials } from './losses/custom.ts';
export { compileExpression, parseExpression, type CompiledExpression, type ExprNode, type FunctionName } from './losses/expr.ts';
export { createLoss, describeLosses, isBatchLossName, lossNames, lossOnBatch, registerLoss, type LossParams } from './losses/registry.ts';
export type { BatchLoss, BatchLossResult, BatchWorkspace } from './losses/batch.ts';

// Mining
export {
  classBalancedBatches, createMiner, MINER_NAMES, type Miner, type MinerName, type PairIndices, type PairMiner, type TripletIndices, type TripletMiner,
} from './mining/index.ts';
export type { MinerOptions, MinerStats } from './mining/types.ts';

// Training
export { DEFAULT_CONFIG, LOSS_PARAM_OPTIONS, MAX_EMBEDDING_DIM, resolveConfig, type TrainConfig } from './train/config.ts';
export {
  DivergenceError, Training, type AsyncEpochOptions, type BatchInfo, type DivergenceKind, type EpochLog, type EpochOptions, type EvalResult, type TrainState,
} from './train/trainer.ts';
export type { ClassWeights } from './train/classWeights.ts';
export { embedSplit, exportWeights, predict, trainRun, type TrainRunOptions, type TrainRunResult, type WeightsFormat } from './train/run.ts';
export { RUN_FILES, RunDir, type Manifest, type RunStatus } from './train/runDir.ts';
export {
  DEFAULT_SNAPSHOT_POINTS, EMBEDDINGS_FILE, readEmbeddingsIndex, readEpochEmbeddings, type EmbeddingsHeader, type EmbeddingsIndex,
} from './train/epochEmbeddings.ts';

// Evaluation
export { evaluateTraining, type EvaluateOptions, type Evaluation } from './eval/evaluate.ts';
export {
  bestThreshold, distanceStats, equalErrorRate, pairAccuracy, pairMetrics, rocAuc,
  type BestThreshold, type DistanceStats, type EqualErrorRate, type Moments, type PairMetrics,
} from './eval/pairs.ts';
export { type AccuracyAt, accuracyAtOf, lossAccuracyAt } from './eval/accuracyAt.ts';
export { retrievalMetrics, type RetrievalMetrics, type RetrievalOptions } from './eval/retrieval.ts';
export { knn, type KnnOptions, type KnnResult } from './eval/knn.ts';
export { trustworthiness } from './eval/trustworthiness.ts';

// Files
export { readFileBytes, writeFileAtomic, writeJsonAtomic } from './io/atomic.ts';
export { encodeNpy, parseNpy, readNpy, readNpyFloat32Matrix, writeNpy, type NpyArray, type NpyData, type NpyDtype } from './io/npy.ts';
export { encodeSafetensors, parseSafetensors, readSafetensors, writeSafetensors } from './io/safetensors.ts';

// Data sets beyond MNIST, and the CNN base
export {
  DATASET_NAMES, FASHION_MNIST_DIR, FASHION_MNIST_INSTALL, loadDataset, loadFashionMnist, resolveDataSpec, type DatasetName, type DataSpec,
} from './data/registry.ts';
export { loadFolderDataset } from './data/folder.ts';
export { decodePng, toGray, type PngImage } from './data/png.ts';
export { cnnNetwork, type CnnOptions } from './model/cnn.ts';

// Visualisation and experiments
export { DEFAULT_PERPLEXITY, maxPerplexity, runTsne, Tsne, type TsneOptions } from './viz/tsne.ts';
export { buildReport, type ReportFiles, type ReportOptions, type TestSplit } from './viz/report.ts';
export { lossShapeChart } from './viz/charts.ts';
export { parseCompareResults } from './viz/validate.ts';
export { renderVegaLite, svgToPng, type PngOptions, type VegaLiteSpec } from './viz/render.ts';
// Experiments: plan (grid.ts) -> execute (compare.ts, on an Executor) -> collect (collect.ts)
export { parseSeeds, type CompareOptions, type ExperimentOptions } from './experiments/grid.ts';
export { compare, runCompare, type CompareCallbacks, type CompareJob, type CompareOutcome, type JobFailure, type JobOutcome } from './experiments/compare.ts';
export { lossShape } from './experiments/lossShape.ts';
export type { JobEvent, JobRequest, JobResult, TsneParams } from './experiments/jobs.ts';
export { checkLossParams, paramList, parseLossList, parseLossSpec, type LossSpec } from './experiments/lossSpec.ts';
export { holmAdjust, mean, pairedTTest, sampleStd, summarise, tQuantile, type PairedTTest } from './stats.ts';
export { withHolm } from './viz/pairedVerdicts.ts';
export { count } from './words.ts';
export { estimateJsonMemory } from './viz/validate.ts';
export type { Executor, ExecutorCallbacks } from './experiments/executor.ts';
export { WorkerPool } from './experiments/pool.ts';
export { suggest as suggestTrial, type Observation, type SearchDim, type TpeOptions } from './experiments/tpe.ts';
export {
  planSweep, runSweep, type FoldScore, type Measure, type RetrievalSummary, type SeedScore, type SweepCallbacks, type SweepDefinition, type SweepLossResult,
  type SweepOptions, type SweepOutcome, type SweepPlan, type SweepResults, type TestMeasures, type Trial,
} from './experiments/sweep.ts';
export type { SweepLossSpec } from './experiments/searchSpec.ts';
export { type Costs, type Estimate, estimateBasis, estimateWords } from './experiments/estimate.ts';
export { writeSweepReport } from './viz/sweepReport.ts';
export { differencesHeading, type SweepVerdict, sweepVerdict, verdictDifferences, verdictText, type VerdictInput } from './viz/sweepVerdict.ts';
export { fractionWithCi } from './viz/ciText.ts';
export { type ExperimentResults, isSweepResults, readCompareResults, readResults } from './viz/readResults.ts';
export { tryExperimentReport, writeExperimentReport } from './viz/experimentReport.ts';

// Several machines: the Redis queue (BullMQ) and its workers
export { QueueExecutor, type QueueExecutorOptions } from './experiments/queue/coordinator.ts';
export type { DataChecksums } from './experiments/queue/payload.ts';
export type { DatasetShape } from './experiments/queue/resultSize.ts';
export { runQueueWorker, type QueueWorkerOptions } from './experiments/queue/worker.ts';
export { queueClean, queueStatus, type GridStatus } from './experiments/queue/admin.ts';

// Watching runs: the read-only web server of `siamese serve`
export { isLoopback, startServer, type Served, type ServeOptions } from './serve/server.ts';

// Output folders and deployment
export { lockOutput, lockOutputs, type LockHolder, type LockOptions, type OutputKind, type OutputLock } from './io/lock.ts';
export { samePlace } from './io/places.ts';
export { toolVersion } from './train/runDir.ts';
export { RunDivergedError } from './train/run.ts';
export { encodeOnnx, ONNX_OPSET, type OnnxNetworkConfig, type OnnxOptions } from './model/onnx.ts';
export type { CompareResults, CompareSpec, LossSummary, PairedComparison, RunSummary, Stat, TsneResult } from './experiments/results.ts';

// Diagnostics (`siamese doctor`)
export { doctorReport, formatDoctor, type DoctorReport } from './cli/doctor.ts';
