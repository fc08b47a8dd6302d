/**
 * The report of an experiment's results, whichever experiment: `siamese compare`, `siamese sweep`
 * and `siamese report` all go through here, so that a rebuilt report is the one the command wrote.
 */
import { type ReportFiles, type ReportOptions, buildReport } from './report.ts';
import { type ExperimentResults, isSweepResults } from './readResults.ts';
import { writeSweepReport } from './sweepReport.ts';

/**
 * Write report.html, report.md (and, for a comparison, figures/) into `out` from `results`.
 * A comparison's report loads the comparison's own test images for its thumbnails and polar plot
 * unless `opts.testSplit` says otherwise; a sweep's report needs nothing but its results.
 */
export async function writeExperimentReport(results: ExperimentResults, out: string, opts: ReportOptions = {}): Promise<ReportFiles> {
  if (isSweepResults(results)) return { ...(await writeSweepReport(results, out)), pictures: [], notes: [] };
  return buildReport(results, out, opts);
}

/**
 * The last step of `compare` and `sweep`: the report, or why there is none in one line. The
 * results are complete either way (results.json is written before), so a failed report does
 * not fail the experiment; the command says so and how to rebuild it (`siamese report DIR`).
 */
export async function tryExperimentReport(
  results: ExperimentResults,
  out: string,
  opts: ReportOptions = {},
): Promise<{ report: ReportFiles; reportError?: undefined } | { report?: undefined; reportError: string }> {
  try {
    return { report: await writeExperimentReport(results, out, opts) };
  } catch (e) {
    return { reportError: (e instanceof Error ? e.message : String(e)).split('\n')[0]! };
  }
}
