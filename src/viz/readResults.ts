/**
 * Read the results.json of an output folder of `siamese compare` or `siamese sweep`, bounded and
 * validated: the file's `kind` says which ("sweep"; a comparison's file has no kind), and each is
 * checked against the shape its report reads. Every problem is one DataError (or UsageError) line.
 * A comparison's paired tests come back with Holm's correction, also from a file written before
 * it existed (withHolm), so every reader words them as the report does.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import { readFileBytes } from '../io/atomic.ts';
import type { CompareResults } from '../experiments/results.ts';
import type { SweepResults } from '../experiments/sweep.ts';
import { withHolm } from './pairedVerdicts.ts';
import { estimateJsonMemory, validateCompareResults } from './validate.ts';
import { validateSweepResults } from './validateSweep.ts';

/**
 * The largest results.json read: parsing takes several times the file's size in memory, and a
 * real comparison's file is a few megabytes (1,000 runs with their distance samples: ~60 MB).
 */
export const MAX_RESULTS_BYTES = 64 * 1024 * 1024;

/**
 * The most memory reading results.json may take (its bytes, its text and estimateJsonMemory),
 * whatever the file's shape: with the report's own bounded figures, `report` stays under 500 MB.
 */
export const MAX_PARSED_BYTES = 224 * 1024 * 1024;

/** The results of either experiment; a sweep's carry `kind: "sweep"`. */
export type ExperimentResults = CompareResults | SweepResults;

export function isSweepResults(r: ExperimentResults): r is SweepResults {
  return (r as { kind?: unknown }).kind === 'sweep';
}

/** Read and validate DIR/results.json of a comparison or a sweep (DataError when missing, too big, malformed or foreign). */
export async function readResults(dir: string): Promise<ExperimentResults> {
  const path = join(dir, 'results.json');
  if (!existsSync(path) && existsSync(join(dir, 'manifest.json'))) {
    throw new UsageError(
      `${dir} is a training run, not a comparison or a sweep: report rebuilds the report of a \`siamese compare\` or \`siamese sweep\` directory (one with results.json)`,
    );
  }
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    // missing: readFileBytes says so in its own words
  }
  if (size > MAX_RESULTS_BYTES) {
    throw new DataError(`${path}: ${(size / 2 ** 20).toFixed(0)} MB, more than the ${MAX_RESULTS_BYTES / 2 ** 20} MB a results.json may have; not a comparison's or a sweep's results`);
  }
  const bytes = await readFileBytes(path);
  // decide from the bytes, before parsing, whether the parsed file would fit (the bytes and
  // their decoded text are held while parsing)
  const need = estimateJsonMemory(bytes) + 2 * bytes.byteLength;
  if (need > MAX_PARSED_BYTES) {
    throw new DataError(
      `${path}: parsing it would take about ${(need / 2 ** 20).toFixed(0)} MB, more than the ${MAX_PARSED_BYTES / 2 ** 20} MB allowed; not a comparison's or a sweep's results`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new DataError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const kind = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { kind?: unknown }).kind : undefined;
  if (kind === 'sweep') return validateSweepResults(value, path);
  if (kind !== undefined) {
    const k = JSON.stringify(kind) ?? String(kind);
    throw new DataError(`${path}: "kind" is ${k.length > 40 ? `${k.slice(0, 37)}...` : k}, not a comparison's (no kind) or a sweep's ("sweep")`);
  }
  const results = validateCompareResults(value, path);
  // a comparison written before Holm's correction: its tests corrected and worded as compare does now
  return { ...results, comparisons: withHolm(results.spec.losses, results.comparisons) };
}

/** Read DIR/results.json and require a comparison's. */
export async function readCompareResults(dir: string): Promise<CompareResults> {
  const r = await readResults(dir);
  if (isSweepResults(r)) throw new DataError(`${join(dir, 'results.json')}: a sweep's results, not a comparison's`);
  return r;
}
