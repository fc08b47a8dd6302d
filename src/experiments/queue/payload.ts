/**
 * Jobs on the queue carry data only, never code or paths of the coordinator's machine: a local
 * job request (jobs.ts) becomes a portable job with the files it reads packed in (base64), and the
 * worker sends back the files it wrote. Formulas of custom losses travel as text and are parsed by
 * the safe parser on the worker, like any config.
 *
 * The job id is a hash of everything that determines the result (config, data checksums, the
 * input files' bytes): the same job enqueued twice is one job, and a coordinator that starts again
 * finds the results of the jobs it enqueued before. The data set's image shape travels with the
 * job but stays out of the hash (jobId), so that ids are what they were before it travelled.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../../data/dataset.ts';
import { DataError, type ErrorCode, UsageError } from '../../errors.ts';
import { fsErrorText } from '../../io/atomic.ts';
import { resolveConfig, type TrainConfig } from '../../train/config.ts';
import { recordBytes } from '../../train/epochEmbeddings.ts';
import { imageShapeOf, isImageShape, RUN_FILES } from '../../train/runDir.ts';
import { DISTANCES_FILE, type JobRequest, RESUME_FILES, type TsneParams } from '../jobs.ts';
import { type DatasetShape, resultOverLimit } from './resultSize.ts';

/** File name -> base64 bytes. */
export type Bundle = Record<string, string>;

/** The data set a job was planned on: a worker with other data refuses the job. */
export interface DataChecksums {
  name: string;
  trainChecksum: string;
  testChecksum: string;
  /**
   * its images' [height, width, channels]: the checksums cover the bytes only, and the same bytes
   * read as images of another shape would pass them. Not part of the job id (jobId). Absent in
   * jobs of coordinators before it travelled: those are judged on their checksums alone.
   */
  imageShape?: [number, number, number];
}

/** What a job says of the data set it was planned on (the coordinator's, compare and sweep). */
export function jobDataOf(ds: Dataset): DataChecksums {
  return { name: ds.name, trainChecksum: ds.train.checksum, testChecksum: ds.test.checksum, imageShape: imageShapeOf(ds.train) };
}

export type QueueJobData =
  | {
      v: 1;
      type: 'train';
      config: TrainConfig;
      resume: boolean;
      retrieval: boolean;
      distanceSample: number;
      /** test images whose embeddings the run stores every epoch (embeddings.bin); absent: none */
      snapshotPoints?: number;
      data: DataChecksums;
      files: Bundle;
    }
  | { v: 1; type: 'distances'; distanceSample: number; data: DataChecksums; files: Bundle }
  | { v: 1; type: 'tsne'; config: TrainConfig; indices: number[]; params: TsneParams; key: string; data: DataChecksums; files: Bundle }
  /** a stand-in that sleeps, for load tests of the queue itself (never a training) */
  | { v: 1; type: 'sleep'; ms: number; tag: string };

export interface QueueJobResult {
  status: 'finished';
  epochs?: number;
  files: Bundle;
  /** which worker ran it (host:pid) */
  worker: string;
}

/**
 * What a worker leaves in a job's progress just before it fails the job for good: the kind of
 * its error (errors.ts), so that the coordinator rethrows the class the worker's error had
 * instead of guessing it from the message. BullMQ keeps only the message of a failure.
 */
export interface QueueJobFailure {
  type: 'failure';
  code: ErrorCode;
}

/**
 * What a worker leaves in a job's progress when it puts back a job it cannot run for a reason of
 * its own (its data, engine or disk; worker.ts): the coordinator reports the job only when no
 * worker has run anything of the grid for a while (coordinator.ts).
 */
export interface QueueJobRefusal {
  type: 'refused';
  worker: string;
  reason: string;
}

/**
 * What a worker puts in a job's progress when it takes the job (worker.ts): the progress a former
 * holder left is gone, and the reports of this take (batch and epoch events) carry `take`, for the
 * coordinator to ignore any other take's (a former holder that lost the job's lock).
 */
export interface QueueJobTaken {
  type: 'taken';
  worker: string;
  take: string;
}

/** The take a job's progress names (a QueueJobTaken's, or an event's), if any. */
export function takeOf(progress: unknown): string | undefined {
  if (typeof progress !== 'object' || progress === null) return undefined;
  const t = (progress as { take?: unknown }).take;
  return typeof t === 'string' ? t.slice(0, 300) : undefined;
}

/** The refusal a job's progress carries, if any. */
export function refusalOf(progress: unknown): QueueJobRefusal | undefined {
  if (typeof progress !== 'object' || progress === null) return undefined;
  const r = progress as Partial<QueueJobRefusal>;
  return r.type === 'refused' && typeof r.worker === 'string' && typeof r.reason === 'string' ? { type: 'refused', worker: r.worker.slice(0, 200), reason: r.reason.slice(0, 500) } : undefined;
}

/** The error code a job's progress carries, if it is a QueueJobFailure. */
export function failureCode(progress: unknown): ErrorCode | undefined {
  if (typeof progress !== 'object' || progress === null || (progress as { type?: unknown }).type !== 'failure') return undefined;
  const code = (progress as { code?: unknown }).code;
  return code === 'usage' || code === 'data' || code === 'training' ? code : undefined;
}

/** The most a job's files may weigh (base64), both ways: a job is refused beyond it. */
export const MAX_JOB_BYTES = 64 * 1024 * 1024;

/**
 * The most a run's embeddings.bin may weigh on the queue. It travels four times: in Redis for a
 * takeover (appended epoch by epoch), in the job's result, and, for a run resumed from a local
 * folder, in the job itself; so it must fit in MAX_JOB_BYTES (base64) beside the other files of a
 * run. 32 MiB (43 MB in base64) holds 125 epochs of the default 2,000 images at 128 dimensions,
 * and leaves 21 MB of a job for the checkpoint and weights.
 */
export const MAX_EMBEDDINGS_BYTES = 32 * 1024 * 1024;

/**
 * Why a run with these settings cannot go through the queue (its embeddings.bin could exceed
 * MAX_EMBEDDINGS_BYTES), or undefined when it can. An upper bound: the header with room for
 * every image's number and class, then a record for epoch 0 and for each epoch.
 */
export function embeddingsOverLimit(points: number, dim: number, epochs: number): string | undefined {
  if (points <= 0) return undefined;
  const bound = 256 + 24 * points + (epochs + 1) * recordBytes(points, dim);
  if (bound <= MAX_EMBEDDINGS_BYTES) return undefined;
  return (
    `--snapshot-points ${points} at ${dim} dimensions for ${epochs} epochs makes an embeddings.bin of up to ${(bound / 2 ** 20).toFixed(2)} MiB a run, ` +
    `more than the queue carries (${MAX_EMBEDDINGS_BYTES / 2 ** 20} MiB); lower --snapshot-points (0: none)`
  );
}

/** Files a training sends back: all of its run folder (the checkpoint too, so that a run can be extended locally). */
const RUN_OUTPUTS = [...RESUME_FILES, DISTANCES_FILE];
const RESET_FILE = 'reset.safetensors';
const WEIGHTS_FILE = 'weights.safetensors';
const TSNE_FILE = 'tsne.json';
const SAFE_NAME = /^[a-z][a-z0-9._-]{0,63}$/;

/**
 * A local request as a portable job (its input files packed in). Throws a UsageError (one line)
 * for a job whose files weigh more than a worker takes (MAX_JOB_BYTES, as checkBundle counts
 * them): refused here, before it is enqueued, not by the worker after it sat on the queue. With
 * the data set's shape, a training whose result could exceed that limit (resultSize.ts) too.
 */
export function toQueueJob(req: JobRequest, data: DataChecksums, shape?: DatasetShape): QueueJobData {
  const job = packJob(req, data);
  if ('files' in job) {
    let total = 0;
    for (const v of Object.values(job.files)) total += v.length;
    if (total > MAX_JOB_BYTES) {
      throw new UsageError(
        `the job would carry ${(total / 2 ** 20).toFixed(1)} MB of files (base64), more than a queue job may (${MAX_JOB_BYTES / 2 ** 20} MB): run it without --queue`,
      );
    }
  }
  // and, given the data set's size, a training whose result could not come back
  if (shape && job.type === 'train') {
    const over = resultOverLimit(job, shape, MAX_JOB_BYTES);
    if (over) throw new UsageError(over);
  }
  return job;
}

function packJob(req: JobRequest, data: DataChecksums): QueueJobData {
  switch (req.type) {
    case 'train': {
      const points = req.snapshotPoints ?? 0;
      const over = embeddingsOverLimit(points, req.config.embeddingDim, req.config.epochs);
      if (over) throw new UsageError(over);
      // a run that started locally and was interrupted continues from its own files
      const files = req.resume ? readFiles(req.out, RESUME_FILES) : { [RESET_FILE]: readB64(req.resetWeights) };
      const config = { ...req.config, threads: 0 };
      return {
        v: 1, type: 'train', config, resume: req.resume, retrieval: req.retrieval, distanceSample: req.distanceSample,
        // absent when 0, so that the ids of jobs without embeddings stay what they were
        ...(points > 0 ? { snapshotPoints: points } : {}),
        data, files,
      };
    }
    case 'distances':
      return { v: 1, type: 'distances', distanceSample: req.distanceSample, data, files: readFiles(req.runDir, [RUN_FILES.manifest, RUN_FILES.weights]) };
    case 'tsne': {
      const weights = statSync(req.weights).isDirectory() ? join(req.weights, RUN_FILES.weights) : req.weights;
      const config = { ...req.config, threads: 0 };
      return { v: 1, type: 'tsne', config, indices: req.indices, params: req.params, key: req.key, data, files: { [WEIGHTS_FILE]: readB64(weights) } };
    }
  }
}

/** Where a finished job's files go on the coordinator: file name -> path. */
export function outputPaths(req: JobRequest): Record<string, string> {
  switch (req.type) {
    case 'train':
      return Object.fromEntries(RUN_OUTPUTS.map((f) => [f, join(req.out, f)]));
    case 'distances':
      return { [DISTANCES_FILE]: join(req.runDir, DISTANCES_FILE) };
    case 'tsne':
      return { [TSNE_FILE]: req.out };
  }
}

/**
 * The job id: a hash of what determines the result (threads and engine only change speed). The
 * image shape is left out: it came later, and with it in, a coordinator of this version and one
 * of the version before sharing a queue would not find each other's jobs (nor a coordinator
 * started again the jobs it enqueued before it was updated); the checksums it completes are in.
 */
export function jobId(job: QueueJobData): string {
  const h = createHash('sha256');
  const { files, ...rest } = job as QueueJobData & { files?: Bundle };
  const unshaped = 'data' in rest ? { ...rest, data: { ...rest.data, imageShape: undefined } } : rest;
  const stable = 'config' in unshaped ? { ...unshaped, config: { ...unshaped.config, threads: 0, engine: 'auto' } } : unshaped;
  h.update(stableJson(stable));
  for (const name of Object.keys(files ?? {}).sort()) h.update(`\0${name}\0`).update(files![name]!);
  return `${job.type}-${h.digest('hex').slice(0, 32)}`;
}

/**
 * Check a job read from the queue before anything runs (it may come from anyone who can write to
 * Redis): known type and version, sane sizes, file names from the expected set, a config that
 * resolves. Throws a DataError with the reason.
 */
export function validateJob(raw: unknown): QueueJobData {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DataError('the job is not an object');
  const j = raw as Record<string, unknown>;
  if (j.v !== 1) throw new DataError(`unknown job version ${JSON.stringify(j.v)} (this worker reads version 1)`);
  const type = j.type;
  if (type === 'sleep') {
    if (typeof j.ms !== 'number' || !(j.ms >= 0 && j.ms <= 60_000)) throw new DataError('a sleep job needs ms in [0, 60000]');
    return { v: 1, type, ms: j.ms, tag: String(j.tag ?? '') };
  }
  if (type !== 'train' && type !== 'distances' && type !== 'tsne') throw new DataError(`unknown job type ${JSON.stringify(type)}`);
  const files = checkBundle(j.files, type === 'train' ? [RESET_FILE, ...RESUME_FILES] : type === 'tsne' ? [WEIGHTS_FILE] : [RUN_FILES.manifest, RUN_FILES.weights]);
  const d = j.data as Partial<DataChecksums> | undefined;
  if (!d || typeof d.trainChecksum !== 'string' || typeof d.testChecksum !== 'string' || typeof d.name !== 'string') {
    throw new DataError('the job names no data set checksums');
  }
  // absent: a job of a coordinator before the shape travelled, taken on its checksums alone
  if (d.imageShape !== undefined && !isImageShape(d.imageShape)) throw new DataError('the job\'s data set imageShape is not [height, width, channels]');
  const data: DataChecksums = {
    name: d.name, trainChecksum: d.trainChecksum, testChecksum: d.testChecksum,
    ...(d.imageShape !== undefined ? { imageShape: [...d.imageShape] as [number, number, number] } : {}),
  };
  const sample = (v: unknown): number => {
    if (!Number.isInteger(v) || (v as number) < 0) throw new DataError('distanceSample must be an integer >= 0');
    return v as number;
  };
  if (type === 'distances') return { v: 1, type, distanceSample: sample(j.distanceSample), data, files };
  const config = resolveConfig((j.config ?? {}) as Partial<TrainConfig>);
  if (type === 'train') {
    if (typeof j.resume !== 'boolean' || typeof j.retrieval !== 'boolean') throw new DataError('a training job needs resume and retrieval flags');
    if (!j.resume && !(RESET_FILE in files)) throw new DataError(`a new training needs ${RESET_FILE}`);
    const points = j.snapshotPoints ?? 0;
    if (!Number.isInteger(points) || (points as number) < 0) throw new DataError('snapshotPoints must be an integer >= 0');
    const over = embeddingsOverLimit(points as number, config.embeddingDim, config.epochs);
    if (over) throw new DataError(over);
    return {
      v: 1, type, config, resume: j.resume, retrieval: j.retrieval, distanceSample: sample(j.distanceSample),
      ...((points as number) > 0 ? { snapshotPoints: points as number } : {}),
      data, files,
    };
  }
  const indices = j.indices;
  if (!Array.isArray(indices) || indices.length > 100_000 || !indices.every((i) => Number.isInteger(i) && i >= 0)) {
    throw new DataError('t-SNE indices must be at most 100,000 integers >= 0');
  }
  const p = j.params as TsneParams | undefined;
  if (!p || ![p.perplexity, p.iterations, p.seed, p.theta].every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new DataError('t-SNE parameters must be numbers');
  }
  return { v: 1, type, config, indices: indices as number[], params: p, key: String(j.key ?? ''), data, files };
}

/** Check a bundle's names and size, both ways. */
export function checkBundle(raw: unknown, allowed: readonly string[]): Bundle {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DataError('the job carries no files');
  let total = 0;
  const out: Bundle = {};
  for (const [name, v] of Object.entries(raw)) {
    if (!SAFE_NAME.test(name) || !allowed.includes(name)) throw new DataError(`unexpected file "${name.slice(0, 64)}" in the job`);
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new DataError(`file ${name} is not base64`);
    total += v.length;
    if (total > MAX_JOB_BYTES) throw new DataError(`the job's files exceed ${MAX_JOB_BYTES / 1024 / 1024} MB`);
    out[name] = v;
  }
  return out;
}

export function readFiles(dir: string, names: readonly string[]): Bundle {
  const out: Bundle = {};
  for (const n of names) if (existsSync(join(dir, n))) out[n] = readB64(join(dir, n));
  return out;
}

function readB64(path: string): string {
  try {
    return readFileSync(path).toString('base64');
  } catch (e) {
    throw new DataError(`cannot read ${path} for the queue (${fsErrorText(e)})`);
  }
}

/** JSON with sorted keys, so equal objects hash alike. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export const QUEUE_FILES = { reset: RESET_FILE, weights: WEIGHTS_FILE, tsne: TSNE_FILE } as const;
