import { join } from 'node:path';
import { readFileBytes } from '../io/atomic.ts';
import type { CompareResults } from '../experiments/results.ts';
import { buildReport, type ReportFiles, type ReportOptions } from '../viz/report.ts';
import { parseCompareResults } from '../viz/validate.ts';

export interface ReportCommandOptions extends ReportOptions {
  /** the directory `siamese compare` wrote: holds results.json; the report goes next to it */
  runDir: string;
  /** print the written paths (default true; tests turn it off) */
  print?: boolean;
}

/** Read and validate RUN_DIR/results.json (DataError when missing or malformed). */
export async function readCompareResults(runDir: string): Promise<CompareResults> {
  const path = join(runDir, 'results.json');
  const bytes = await readFileBytes(path);
  return parseCompareResults(Buffer.from(bytes).toString('utf8'), path);
}

/** `siamese report RUN_DIR`: rebuild report.html, report.md and figures/ without retraining. */
export async function reportCommand(o: ReportCommandOptions): Promise<ReportFiles> {
  const results = await readCompareResults(o.runDir);
  const files = await buildReport(results, o.runDir, { testSplit: o.testSplit, pngScale: o.pngScale });
  if (o.print ?? true) {
    process.stdout.write(`wrote ${files.html}\nwrote ${files.md} (figures in ${join(o.runDir, 'figures')}, ${files.pictures.length} files)\n`);
    for (const n of files.notes) process.stdout.write(`note: ${n}\n`);
  }
  return files;
}
