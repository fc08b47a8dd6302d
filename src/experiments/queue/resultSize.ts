/**
 * An upper bound on what a training job sends back through the queue (its run folder, each file
 * in base64, counted as checkBundle counts it), from its plan alone: the network's size (the
 * job's initial weights' header), the optimizer, the epochs, the embeddings and distances asked
 * for, and the data set's size. A job whose bound exceeds MAX_JOB_BYTES is refused before it is
 * enqueued (the coordinator) and before it trains (the worker), instead of after the work, when
 * its result would be refused.
 *
 * What a run folder holds, by file (bytes before base64):
 * - initial.safetensors, weights.safetensors: the network, 4 bytes a parameter, and a header
 *   (weights': with the config and how to evaluate them, weightsMeta.ts);
 * - checkpoint.safetensors: the weights and the optimizer's slots (one per parameter, two for
 *   Adam), the proxies of arcface, cosface and proxy-anchor (classes x dim, with their own
 *   slots), and in its header the config and every epoch's log;
 * - log.jsonl, result.json, manifest.json: a bounded line per epoch, the config, a summary;
 * - distances.jsonl: one line of two 64-bin histograms per epoch (and epoch 0);
 * - embeddings.bin: a record per epoch (epochEmbeddings.ts, recordBytes);
 * - distances.json: the sampled test pair distances, rounded to 1e-4.
 */
import { DataError } from '../../errors.ts';
import { safetensorsLayout } from '../../io/safetensors.ts';
import { createLoss } from '../../losses/registry.ts';
import type { TrainConfig } from '../../train/config.ts';
import { DISTANCE_BINS, DISTANCES_FILE as EPOCH_DISTANCES_FILE } from '../../train/epochDistances.ts';
import { EMBEDDINGS_FILE, recordBytes } from '../../train/epochEmbeddings.ts';
import { RUN_FILES } from '../../train/runDir.ts';
import { DISTANCES_FILE } from '../jobs.ts';

/** What the bound needs to know of the data set (a worker has the same data, checkData). */
export interface DatasetShape {
  /** classes of the data set: at least the classes a run trains on */
  classes: number;
  /** test images: a test pair set holds at most twice as many pairs */
  testImages: number;
}

/** What the bound reads of a training job (QueueJobData of type train). */
export interface TrainResultPlan {
  config: TrainConfig;
  snapshotPoints?: number;
  distanceSample: number;
  /** the job's files in base64: the initial weights (a new run) or the run's own files (a resume) */
  files: Record<string, string>;
}

/** A log line of one epoch (EpochLog: ten fields, numbers of at most 24 characters) is far below this. */
const EPOCH_LOG_MAX = 1024;
/** A number of distances.json (rounded to 1e-4; at most 24 characters in JSON) and its comma. */
const SAMPLE_VALUE_MAX = 25;
/** Room for what the bound does not count one by one (JSON punctuation, metadata, versions, ...). */
const FILE_SLACK = 16 * 1024;

const base64 = (bytes: number): number => 4 * Math.ceil(bytes / 3);

/**
 * The bound, in base64 characters (what checkBundle counts), in all and file by file. Throws a
 * DataError when the job carries no readable weights to size the network from.
 */
export function trainResultBound(job: TrainResultPlan, data: DatasetShape): { total: number; files: Record<string, number> } {
  const c = job.config;
  const epochs = Math.max(0, c.epochs);
  const net = networkSize(job.files);
  const slots = c.optimizer.toLowerCase() === 'adam' ? 2 : 1;
  const configJson = JSON.stringify(c).length;
  // JSON inside the checkpoint's JSON header: escaping at most doubles it
  const stateJson = 2 * (512 + epochs * EPOCH_LOG_MAX) + 2 * configJson;
  const proxies = hasProxies(c) ? data.classes * c.embeddingDim : 0;
  const checkpointTensors = net.tensors * (1 + slots) + (proxies > 0 ? 2 + slots : 0) + 1;
  const bytes: Record<string, number> = {
    [RUN_FILES.initial]: net.fileBytes + FILE_SLACK,
    // the header also records the config (escaped JSON in JSON) and how to evaluate (weightsMeta.ts)
    [RUN_FILES.weights]: net.fileBytes + 2 * configJson + 1024 + FILE_SLACK,
    [RUN_FILES.checkpoint]:
      // data: weights and slots, proxies and theirs, scalars (steps); header: the weights' own
      // entries once per copy, with room for the longer names, plus the state and config
      4 * (net.parameters + proxies) * (1 + slots) + 4 * 8 + (1 + slots) * net.headerBytes + checkpointTensors * 160 + stateJson + FILE_SLACK,
    [RUN_FILES.log]: epochs * EPOCH_LOG_MAX,
    // pretty-printed: the history and config again, and the evaluation
    [RUN_FILES.result]: 2 * (epochs * EPOCH_LOG_MAX + configJson) + FILE_SLACK,
    // the config, and one entry per resume (a takeover is one): at most a few per epoch
    [RUN_FILES.manifest]: 2 * configJson + (epochs + 8) * 512 + FILE_SLACK,
    // epoch 0 and each epoch: two sides of DISTANCE_BINS counts of at most 10 digits
    [EPOCH_DISTANCES_FILE]: (epochs + 1) * (2 * (DISTANCE_BINS * 11 + 128) + 128),
    [DISTANCES_FILE]: 256 + SAMPLE_VALUE_MAX * sampledPairs(c, job.distanceSample, data),
  };
  const points = job.snapshotPoints ?? 0;
  // as embeddingsOverLimit (payload.ts): the header with every image's number and class, then epoch 0 and each epoch
  if (points > 0) bytes[EMBEDDINGS_FILE] = 256 + 24 * points + (epochs + 1) * recordBytes(points, c.embeddingDim);
  const files: Record<string, number> = {};
  let total = 0;
  for (const [name, b] of Object.entries(bytes)) {
    files[name] = base64(b);
    total += files[name];
  }
  return { total, files };
}

/** The test pairs distances.json can hold: perClass of each side (0: all), at most the test set's pairs. */
function sampledPairs(c: TrainConfig, perClass: number, data: DatasetShape): number {
  let pairs = 2 * data.testImages;
  if (c.testPairs > 0) pairs = Math.min(pairs, c.testPairs);
  return perClass > 0 ? Math.min(pairs, 2 * perClass) : pairs;
}

/** Whether the loss learns class weights (proxies) that the checkpoint holds; unknown: yes. */
function hasProxies(c: TrainConfig): boolean {
  try {
    const loss = createLoss(c.loss, c.lossParams);
    return loss.kind === 'batch' && loss.classWeights;
  } catch {
    return true;
  }
}

/**
 * The network's size from the job's files: parameters (float32 values), tensors, the weights
 * file's bytes and header. A new run carries its initial weights; a resumed one its run folder.
 */
function networkSize(files: Record<string, string>): { parameters: number; tensors: number; fileBytes: number; headerBytes: number } {
  for (const name of ['reset.safetensors', RUN_FILES.initial, RUN_FILES.weights]) {
    const b64 = files[name];
    if (b64 === undefined) continue;
    const size = decodedLength(b64);
    // the 8-byte length first, then as much of the start as the header needs
    const first = Buffer.from(b64.slice(0, 12), 'base64');
    if (first.length < 8) break;
    const n = Number(first.readBigUInt64LE(0));
    const head = Buffer.from(b64.slice(0, 4 * Math.ceil(Math.min(8 + n, size) / 3)), 'base64');
    const layout = safetensorsLayout(head, size, name);
    // values, whatever their stored type: the run writes them as float32
    let parameters = 0;
    for (const t of layout.tensors) parameters += t.shape.reduce((a, d) => a * d, 1);
    return { parameters, tensors: layout.tensors.length, fileBytes: layout.headerBytes + 4 * parameters, headerBytes: layout.headerBytes };
  }
  throw new DataError('the job carries no weights to size its result from');
}

function decodedLength(b64: string): number {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

/**
 * Why a training's result cannot come back through the queue (its bound exceeds `limit` base64
 * characters), in one line with its largest files and what to change; undefined when it fits.
 */
export function resultOverLimit(job: TrainResultPlan, data: DatasetShape, limit: number): string | undefined {
  const { total, files } = trainResultBound(job, data);
  if (total <= limit) return undefined;
  const mb = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MB`;
  const largest = Object.entries(files)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([name, n]) => `${name} ${mb(n)}`)
    .join(', ');
  const points = job.snapshotPoints ?? 0;
  return (
    `its result could weigh up to ${mb(total)} (base64; ${largest}), more than a queue job may carry back (${limit / 2 ** 20} MB): ` +
    `${points > 0 ? `lower --snapshot-points (${points}), ` : ''}train fewer epochs (${job.config.epochs}) or a smaller network, or run it without --queue`
  );
}
