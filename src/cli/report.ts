import { join } from 'node:path';
import { count } from '../words.ts';
import type { ExperimentResults } from '../viz/readResults.ts';
import type { ReportFiles, ReportOptions } from '../viz/report.ts';

export interface ReportCommandOptions extends ReportOptions {
  /** the directory `siamese compare` or `siamese sweep` wrote: holds results.json; the report goes next to it */
  runDir: string;
  /** print the written paths (default true; tests turn it off) */
  print?: boolean;
}

/** `siamese report DIR`: rebuild report.html, report.md (and a comparison's figures/) without retraining. */
export async function reportCommand(o: ReportCommandOptions): Promise<ReportFiles> {
  const { readResults } = await import('../viz/readResults.ts');
  const { writeExperimentReport } = await import('../viz/experimentReport.ts');
  const results = await readResults(o.runDir);
  const files = await writeExperimentReport(results, o.runDir, { testSplit: o.testSplit, pngScale: o.pngScale });
  if (o.print ?? true) {
    const figures = files.pictures.length ? ` (figures in ${join(o.runDir, 'figures')}, ${count(files.pictures.length, 'file')})` : '';
    process.stdout.write(`wrote ${files.html}\nwrote ${files.md}${figures}\n`);
    for (const n of files.notes) process.stdout.write(`note: ${n}\n`);
  }
  return files;
}

/** What compare and sweep keep of their report: its files, or why there is none. */
export interface ReportOutcome {
  status: 'finished' | 'interrupted';
  out: string;
  results?: ExperimentResults;
  report?: ReportFiles;
  reportError?: string;
}

/**
 * The report step of `compare` and `sweep`, after the experiment finished: write the report
 * (announced by `phase`), or keep the one line that says why it could not be written.
 */
export async function writeReportStep(outcome: ReportOutcome, enabled: boolean | undefined, phase?: (text: string) => void): Promise<void> {
  if (outcome.status !== 'finished' || !outcome.results || enabled === false) return;
  phase?.('writing the report');
  const { tryExperimentReport } = await import('../viz/experimentReport.ts');
  const r = await tryExperimentReport(outcome.results, outcome.out);
  if (r.report) outcome.report = r.report;
  else outcome.reportError = r.reportError;
}

/**
 * How `compare` and `sweep` end. Interrupted: where the finished work is kept and how to resume,
 * exit 130. Finished: the summary on stdout, exit 1 when a run failed, and a report that could
 * not be written is one line on stderr with the command that rebuilds it, exit 1 (results.json is
 * complete; the report is not).
 */
export function endGridCommand(outcome: ReportOutcome & { failures: readonly unknown[] }, stoppedLine: string, summary: () => string): void {
  if (outcome.status === 'interrupted') {
    process.stderr.write(`${stoppedLine}\n`);
    process.exitCode = 130;
    return;
  }
  process.stdout.write(summary());
  if (outcome.failures.length > 0) process.exitCode = 1;
  if (outcome.reportError === undefined) return;
  process.stderr.write(`siamese: the report could not be written: ${outcome.reportError}; rebuild it with: siamese report ${outcome.out}\n`);
  process.exitCode = 1;
}
