/**
 * The public API is deliberate: src/index.ts exports exactly the names below (a change to the API
 * is a change to this list), no TF.js namespace, and every name the CLI takes from the library.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as lab from '../src/index.ts';
import { REPO_ROOT } from './helpers.ts';

const VALUES = [
  'DATASET_NAMES', 'DEFAULT_CONFIG', 'DEFAULT_SNAPSHOT_POINTS', 'DataError', 'EMBEDDINGS_FILE', 'ENGINE_CHOICES', 'FASHION_MNIST_DIR', 'FASHION_MNIST_INSTALL',
  'KerasH5Reader', 'LOSS_PARAM_OPTIONS', 'MAX_EMBEDDING_DIM', 'MINER_NAMES', 'ONNX_OPSET', 'QueueExecutor', 'Rng', 'RunDir', 'RunDivergedError',
  'DEFAULT_PERPLEXITY', 'DivergenceError', 'RUN_FILES', 'SQUARED_DISTANCE_FLOOR', 'SiameseError', 'Training', 'TrainingError', 'Tsne', 'UsageError', 'WorkerPool',
  'accuracyAtOf', 'bestThreshold', 'buildNetwork', 'buildReport', 'checkLossParams', 'classBalancedBatches', 'classCount',
  'classIndices', 'cnnNetwork', 'compare', 'compileExpression', 'contrastiveLoss', 'coulombLoss', 'count',
  'createLoss', 'createMiner', 'createOptimizer', 'customPotentialLoss', 'decodePng', 'describeLosses', 'differencesHeading',
  'distanceStats', 'doctorReport', 'embedSplit', 'encodeNpy', 'encodeOnnx', 'encodeSafetensors', 'equalErrorRate',
  'estimateBasis', 'estimateJsonMemory', 'estimateWords', 'evaluateTraining', 'exportWeights', 'formatDoctor', 'fractionWithCi', 'gaussianLoss', 'glorotUniform',
  'holmAdjust', 'imagesAsFloat', 'initBackend', 'isBatchLossName', 'isSweepResults', 'isKerasH5', 'isLoopback', 'knn',
  'lennardJonesLoss', 'loadDataset', 'lossAccuracyAt', 'loadFashionMnist', 'loadFolderDataset', 'loadIdxDataset', 'loadIdxSplit',
  'loadMnist', 'loadWeights', 'lockOutput', 'lockOutputs', 'lossNames', 'lossOnBatch', 'lossShape', 'lossShapeChart',
  'makePairs', 'makeRandomTriplets', 'matchWeights', 'maxPerplexity', 'mean', 'mlpNetwork', 'nativeCacheDir', 'nativeStatus',
  'optimizerNames', 'pairAccuracy', 'pairDistancesHost', 'pairMetrics', 'pairedTTest', 'paramList', 'planSweep',
  'parseCompareResults', 'parseExpression', 'parseIdx', 'parseLossList', 'parseLossSpec', 'parseNpy',
  'parseSafetensors', 'parseSeeds', 'permutePairs', 'powerLoss', 'predict', 'queueClean', 'queueStatus',
  'readCompareResults', 'readEmbeddingsIndex', 'readEpochEmbeddings', 'readFileBytes', 'readIdx', 'readKerasWeights', 'readNpy', 'readNpyFloat32Matrix', 'readResults', 'readSafetensors',
  'registerLoss', 'renderVegaLite', 'resolveConfig', 'resolveDataSpec', 'retrievalMetrics', 'rocAuc', 'runCompare',
  'runQueueWorker', 'runSweep', 'runTsne', 'samePlace', 'sampleStd', 'slicePairs', 'softMarginTripletLoss', 'springLoss',
  'startServer', 'suggestTrial', 'summarise', 'sweepVerdict', 'svgToPng', 'tQuantile', 'toGray', 'toolVersion', 'trainRun',
  'tripletLoss', 'trustworthiness', 'tryExperimentReport', 'verdictDifferences', 'verdictText', 'withHolm', 'writeExperimentReport', 'writeFileAtomic', 'writeJsonAtomic', 'writeKerasH5', 'writeNpy',
  'writeSafetensors', 'writeSweepReport', 'yukawaLoss',
];

test('src/index.ts exports exactly the listed values, and no tf namespace', () => {
  assert.deepEqual(Object.keys(lab).sort(), [...VALUES].sort());
  assert.equal('tf' in lab, false);
});

/** Every name a file imports from a relative module (static and `await import`), with the module. */
function importedNames(source: string): { name: string; from: string }[] {
  const out: { name: string; from: string }[] = [];
  const lists = [
    ...source.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*'(\.[^']+)'/g),
    ...source.matchAll(/const\s*\{([^}]*)\}\s*=\s*await\s+import\(\s*'(\.[^']+)'\s*\)/g),
  ];
  for (const m of lists) {
    for (const part of m[1]!.split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!.trim();
      if (name) out.push({ name, from: m[2]! });
    }
  }
  return out;
}

/** The names src/index.ts exports, types included (its `export { ... }` lists). */
function indexNames(): Set<string> {
  const src = readFileSync(join(REPO_ROOT, 'src', 'index.ts'), 'utf8');
  const names = new Set<string>();
  for (const m of src.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
      if (name) names.add(name);
    }
  }
  return names;
}

test('every name the CLI imports from the library is in the public API', () => {
  const dir = join(REPO_ROOT, 'src', 'cli');
  const used = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .flatMap((f) => importedNames(readFileSync(join(dir, f), 'utf8')).filter((i) => i.from.startsWith('../')).map((i) => ({ ...i, file: f })));
  // the parser sees the CLI's imports: a static one and a dynamic one
  assert.ok(used.some((u) => u.name === 'embedSplit'), 'cli/embed.ts imports embedSplit');
  assert.ok(used.some((u) => u.name === 'parseSeeds' && u.file === 'main.ts'), 'cli/main.ts imports parseSeeds with await import');
  const api = indexNames();
  assert.ok(api.has('TrainConfig') && api.has('trainRun'), 'the index parser sees types and values');
  const missing = used.filter((u) => !api.has(u.name)).map((u) => `${u.name} (cli/${u.file} from ${u.from})`);
  assert.deepEqual([...new Set(missing)], []);
});

test('the parsers read what they should from a sample', () => {
  const got = importedNames("import { a, type B as C } from '../x.ts';\nconst { d } = await import('../y.ts');\nimport { e } from 'pkg';");
  assert.deepEqual(got, [{ name: 'a', from: '../x.ts' }, { name: 'B', from: '../x.ts' }, { name: 'd', from: '../y.ts' }]);
});
