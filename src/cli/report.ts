import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import { readFileBytes } from '../io/atomic.ts';
import type { CompareResults } from '../experiments/results.ts';
import { count } from '../words.ts';
import { buildReport, type ReportFiles, type ReportOptions } from '../viz/report.ts';
import { estimateJsonMemory, parseCompareResults } from '../viz/validate.ts';

export interface ReportCommandOptions extends ReportOptions {
  /** the directory `siamese compare` wrote: holds results.json; the report goes next to it */
  runDir: string;
  /** print the written paths (default true; tests turn it off) */
  print?: boolean;
}

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

/** Read and validate RUN_DIR/results.json (DataError when missing, too big or malformed). */
export async function readCompareResults(runDir: string): Promise<CompareResults> {
  const path = join(runDir, 'results.json');
  if (!existsSync(path) && existsSync(join(runDir, 'manifest.json'))) {
    throw new UsageError(`${runDir} is a training run, not a comparison: report rebuilds the report of a \`siamese compare\` directory (one with results.json)`);
  }
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    // missing: readFileBytes says so in its own words
  }
  if (size > MAX_RESULTS_BYTES) {
    throw new DataError(`${path}: ${(size / 2 ** 20).toFixed(0)} MB, more than the ${MAX_RESULTS_BYTES / 2 ** 20} MB a results.json may have; not a comparison's results`);
  }
  const bytes = await readFileBytes(path);
  // decide from the bytes, before parsing, whether the parsed file would fit (the bytes and
  // their decoded text are held while parsing)
  const need = estimateJsonMemory(bytes) + 2 * bytes.byteLength;
  if (need > MAX_PARSED_BYTES) {
    throw new DataError(
      `${path}: parsing it would take about ${(need / 2 ** 20).toFixed(0)} MB, more than the ${MAX_PARSED_BYTES / 2 ** 20} MB allowed; not a comparison's results`,
    );
  }
  return parseCompareResults(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), path);
}

/** `siamese report RUN_DIR`: rebuild report.html, report.md and figures/ without retraining. */
export async function reportCommand(o: ReportCommandOptions): Promise<ReportFiles> {
  const results = await readCompareResults(o.runDir);
  const files = await buildReport(results, o.runDir, { testSplit: o.testSplit, pngScale: o.pngScale });
  if (o.print ?? true) {
    process.stdout.write(`wrote ${files.html}\nwrote ${files.md} (figures in ${join(o.runDir, 'figures')}, ${count(files.pictures.length, 'file')})\n`);
    for (const n of files.notes) process.stdout.write(`note: ${n}\n`);
  }
  return files;
}
