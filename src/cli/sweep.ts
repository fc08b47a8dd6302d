import type { SweepOptions, SweepOutcome, SweepPlan, SweepResults } from '../experiments/sweep.ts';
import { planSweep, runSweep } from '../experiments/sweep.ts';
import { estimateBasis, estimateWords } from '../experiments/estimate.ts';
import { sweepVerdict, verdictDifferences } from '../viz/sweepVerdict.ts';
import { count } from '../words.ts';
import { CompareProgress, type CompareProgressOptions } from './compare.ts';
import { fractionWithCi } from '../viz/ciText.ts';
import type { ReportFiles } from '../viz/report.ts';
import { endGridCommand, writeReportStep } from './report.ts';
import { onGridStop } from './signals.ts';

/**
 * `siamese sweep`: prints the plan (trainings, a rough time), then compare's progress display
 * (one line per finished training off a TTY); Ctrl-C or SIGTERM stops cleanly (running trainings
 * keep their last finished epoch; a second signal quits at once); the same command resumes.
 */
export interface SweepCommandOptions extends SweepOptions {
  /** write report.md/report.html (default true) */
  report?: boolean;
}

/** The sweep's outcome with what the command adds: its report, or why there is none. */
export interface SweepCommandOutcome extends SweepOutcome {
  report?: ReportFiles;
  reportError?: string;
}

export async function sweepCommand(opts: SweepCommandOptions): Promise<SweepCommandOutcome> {
  const progress = new CompareProgress(process.stderr, sweepProgressOptions(opts.queue !== undefined));
  const stop = onGridStop(progress, 'running trainings save their last finished epoch');
  let outcome: SweepCommandOutcome;
  const { report, ...sweepOpts } = opts;
  try {
    outcome = await runSweep(
      { ...sweepOpts, signal: stop.signal, onQueueLog: (line) => progress.log(line) },
      { ...progress.callbacks(), onSweepPlan: (p) => progress.log(planText(p)) },
    );
    await writeReportStep(outcome, report, progress.callbacks().onPhase);
  } finally {
    progress.stop();
    stop.dispose();
  }
  endGridCommand(
    outcome,
    `stopped by ${stop.signalled() ?? 'request'}: finished trainings and epochs are kept in ${outcome.out}. Resume with the same command.`,
    () => summaryText(outcome),
  );
  return outcome;
}

/** sweep's display: compare's, with one line per finished training (no epoch lines) where there is no terminal */
export const sweepProgressOptions = (queue: boolean): CompareProgressOptions => ({ command: 'sweep', queue, epochLines: false });

/** `sweep --plan`: the plan on stdout, nothing trained or written. */
export async function sweepPlanCommand(opts: SweepCommandOptions): Promise<SweepPlan> {
  const { report: _r, ...sweepOpts } = opts;
  const plan = await planSweep(sweepOpts);
  process.stdout.write(planText(plan) + '\n');
  return plan;
}

const minutes = (s: number): string => (s < 90 ? `${Math.max(1, Math.round(s))} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/** The plan, before any training: what will be trained, and roughly how long it takes here. */
export function planText(p: SweepPlan): string {
  const d = p.definition;
  const per = `${count(d.trials, 'trial')} x ${count(d.folds, 'fold')} + ${d.seeds} tuned + ${count(d.seeds, 'default seed')}`;
  // a loss with nothing to search runs one trial (lossTrials), and its tuned seeds are its
  // default ones (sharesFinals: the same config trained once)
  const fixed = d.trials > 1 ? d.losses.filter((l) => l.space.length === 0).map((l) => l.spec.id) : [];
  const shared = p.sharedFinals;
  const stand = 'its tuned seeds standing for the default ones';
  const one =
    fixed.length && fixed.join() === shared.join()
      ? `, for ${fixed.join(', ')}: 1 trial, ${stand} (nothing to search)`
      : (fixed.length ? `, 1 trial for ${fixed.join(', ')} (nothing to search)` : '') + (shared.length ? `, for ${shared.join(', ')}: ${stand} (nothing to search)` : '');
  const lines = [
    `sweep: ${count(d.losses.length, 'loss', 'losses')} x (${per})${one} = ${count(p.trainings, 'training')}, ${p.finished} finished already; ` +
      `training classes ${d.trainClasses.join(',')}, test classes ${d.testClasses.join(',')}`,
    p.trainings === p.finished
      ? 'sweep: nothing left to train'
      : p.queue
        ? `sweep: on the workers of the queue ${p.queue} (no time estimate: it depends on the fleet)`
        : p.estimate === undefined
          ? `sweep: estimated time unknown on ${count(p.workers, 'worker')} (the calibration failed)`
          : `sweep: estimated ${estimateWords(p.estimate, minutes)} (${estimateBasis(p.estimate)}; the report not included)`,
  ];
  for (const n of p.notes) lines.push(`sweep: note: ${n}`);
  return lines.join('\n');
}

const pct = (x: number | null): string => (x === null || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(2)}%`);

export function summaryText(o: SweepCommandOutcome): string {
  const r = o.results as SweepResults;
  const rows = r.losses.map((l) => [
    l.id,
    Object.entries(l.best.params).map(([k, v]) => `${k}=${v}`).join(' ') || '-',
    pct(l.best.validation.mapAtR),
    l.test.mapAtR.values.length > 1 && Number.isFinite(l.test.mapAtR.mean) ? fractionWithCi(l.test.mapAtR.mean, l.test.mapAtR.ci95) : pct(l.test.mapAtR.mean),
    l.untuned.test.mapAtR.values.length > 1 && Number.isFinite(l.untuned.test.mapAtR.mean) ? fractionWithCi(l.untuned.test.mapAtR.mean, l.untuned.test.mapAtR.ci95) : pct(l.untuned.test.mapAtR.mean),
  ]);
  const head = ['loss', 'chosen', 'val MAP@R', 'test MAP@R (95% CI)', 'untuned test MAP@R'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  const v = sweepVerdict(r);
  const d = verdictDifferences(v);
  const lines = ['', fmt(head), fmt(width.map((w) => '-'.repeat(w))), ...rows.map(fmt), '', v.summary, ...(d ? [d.heading, ...d.items.map((x) => `  ${x}`)] : [])];
  if (o.failures.length) {
    lines.push('', `failed (${o.failures.length}):`, ...o.failures.map((f) => `  ${f.key}: ${f.message}`));
  }
  const again = r.machine.summarisedAgain;
  // a re-summary keeps the training invocation's time (results.json's machine): say which is which
  const time = again ? `summarised again in ${again.wallSeconds.toFixed(0)} s (trained in ${r.machine.wallSeconds.toFixed(0)} s)` : `${r.machine.wallSeconds.toFixed(0)} s`;
  lines.push('', `${count(r.machine.trainings, 'training')} (${o.trained} trained now, ${o.reused} reused), ${time}`);
  lines.push(`results: ${o.resultsPath}`);
  if (o.report) lines.push(`report:  ${o.report.html}`, `         ${o.report.md}`);
  else lines.push(`report:  not written (${o.reportError ?? 'disabled'})`);
  return lines.join('\n') + '\n';
}
