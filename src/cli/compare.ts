import { fractionWithCi } from '../viz/ciText.ts';
import type { ReportFiles } from '../viz/report.ts';
import { join } from 'node:path';
import { type CompareCallbacks, type CompareJob, type CompareOutcome, type JobOutcome, runCompare } from '../experiments/compare.ts';
import type { CompareOptions } from '../experiments/grid.ts';
import type { JobEvent } from '../experiments/jobs.ts';
import type { CompareResults, Stat } from '../experiments/results.ts';
import { lossAccuracyAt } from '../eval/accuracyAt.ts';
import { count } from '../words.ts';
import { formatEpoch } from './progress.ts';
import { endGridCommand, writeReportStep } from './report.ts';
import { onGridStop } from './signals.ts';

/**
 * `siamese compare`: the grid of losses x seeds on worker threads, with one progress display,
 * clean interruption (Ctrl-C or SIGTERM: the workers save their last finished epoch; a second
 * signal quits at once) and a short summary table at the end.
 */
export interface CompareCommandOptions extends CompareOptions {
  /** build report.html/report.md at the end (default true) */
  report?: boolean;
}

/** What the command adds to the comparison's outcome: its report, or why there is none. */
export interface CompareCommandOutcome extends CompareOutcome {
  report?: ReportFiles;
  reportError?: string;
}

export async function compareCommand(opts: CompareCommandOptions): Promise<CompareCommandOutcome> {
  const progress = new CompareProgress(process.stderr, { queue: opts.queue !== undefined });
  const stop = onGridStop(progress, 'the workers save their last finished epoch');
  let outcome: CompareCommandOutcome;
  const { report, ...compareOpts } = opts;
  try {
    outcome = await runCompare({ ...compareOpts, signal: stop.signal, onQueueLog: (line) => progress.log(line) }, progress.callbacks());
    await writeReportStep(outcome, report, progress.callbacks().onPhase);
  } finally {
    progress.stop();
    stop.dispose();
  }
  const out = outcome.out;
  endGridCommand(outcome, `stopped by ${stop.signalled() ?? 'request'}: finished runs and epochs are kept in ${out}. Resume with: siamese compare --resume ${out}`, () =>
    summaryText(outcome),
  );
  return outcome;
}

const pct = (s: Stat | undefined): string =>
  s === undefined ? '-' : fractionWithCi(s.mean, s.values.length > 1 ? s.ci95 : undefined);

/** The table printed at the end: loss, runs, accuracy and MAP@R (mean ± 95% CI), verdicts, files. */
export function summaryText(o: CompareCommandOutcome): string {
  const r = o.results as CompareResults;
  const lines: string[] = [];
  // a batch loss's accuracy is its best threshold's: beside a loss with a distance scale, both
  // conventions get their own column (like for like: the best-threshold one for every loss)
  const atBest = (id: string): boolean => {
    const s = r.summary.find((x) => x.lossId === id);
    return s !== undefined && lossAccuracyAt(r, s) === 'best';
  };
  const mixed = r.spec.losses.some((l) => atBest(l.id)) && r.spec.losses.some((l) => !atBest(l.id));
  // batch losses only: one column, named for the convention it holds
  const allBest = r.spec.losses.length > 0 && r.spec.losses.every((l) => atBest(l.id));
  const rows = r.spec.losses.map((l) => {
    const s = r.summary.find((x) => x.lossId === l.id);
    const acc = mixed ? [atBest(l.id) ? 'n/a' : pct(s?.accuracy), pct(s?.bestAccuracy)] : [pct(s?.accuracy)];
    return [l.label, `${s?.seeds ?? 0}/${r.spec.seeds.length}`, ...acc, pct(s?.mapAtR)];
  });
  const head = ['loss', 'runs', ...(mixed ? [`accuracy, D < ${r.spec.config.threshold} (95% CI)`, 'best threshold'] : [allBest ? 'accuracy, best threshold (95% CI)' : 'accuracy (95% CI)']), 'MAP@R (95% CI)'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  lines.push('', fmt(head), fmt(width.map((w) => '-'.repeat(w))), ...rows.map(fmt));
  if (r.comparisons.length > 0) {
    lines.push('', 'paired over seeds (same initial weights, same pairs):');
    for (const c of r.comparisons) lines.push(`  ${c.verdict}`);
  }
  if (r.notes?.length) {
    lines.push('');
    for (const n of r.notes) lines.push(`note: ${n}`);
  }
  if (o.failures.length > 0) {
    lines.push('', `failed (${o.failures.length}):`);
    for (const f of o.failures) lines.push(`  ${f.key}: ${f.message}`);
    lines.push(`  run the same command again to retry them; finished runs are kept`);
  }
  const w = r.machine.workers;
  // through a queue, the fleet's workers that ran the jobs (host:pid), not this machine's threads
  const where = r.machine.queue
    ? w > 0 ? `on ${w} worker${w === 1 ? '' : 's'} of the queue` : 'on the workers of the queue'
    : w === 0 ? 'nothing left to run' : `on ${w} worker${w === 1 ? '' : 's'}`;
  lines.push('', `${count(r.runs.length, 'run')} (${o.trained.length} trained now, ${o.reused.length} reused), ${r.machine.wallSeconds.toFixed(0)} s, ${where}`);
  lines.push(`results: ${o.resultsPath ?? join(o.out, 'results.json')}`);
  if (o.report) lines.push(`report:  ${o.report.html}`, `         ${o.report.md}`);
  else lines.push(`report:  not written (${o.reportError ?? 'disabled'})`);
  return lines.join('\n') + '\n';
}

interface SlotState {
  job: CompareJob;
  text: string;
}

/** What the ETA knows of one job. */
interface JobTrack {
  kind: CompareJob['kind'];
  /** training: batches per epoch, target and starting epoch, batches done now */
  perEpoch: number;
  epochs: number;
  start: number;
  done: number;
  startedAt?: number;
  /** the last batch event: when, and batches done then */
  lastBatchAt?: number;
  lastBatchDone?: number;
  /** training: when its last batch was done (the final evaluation runs since) */
  evalSince?: number;
  /** training: batches done at its last finished epoch, where a worker that takes it over resumes */
  epochDone: number;
  ended: boolean;
}

const clock = (s: number): string => {
  if (!Number.isFinite(s) || s < 0) return '-';
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
};

const average = (xs: number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

export interface CompareProgressOptions {
  /** milliseconds (tests drive a clock of their own); default performance.now */
  now?: () => number;
  /** the command named in the plan line (default compare; sweep shares this display) */
  command?: string;
  /** the runs go to a Redis queue: the fleet's workers train them, not this machine's threads */
  queue?: boolean;
  /**
   * without a live display, a line per finished epoch as well as per finished job (default
   * true); sweep's hundreds of trainings write one line each, when they finish
   */
  epochLines?: boolean;
}

/**
 * On a TTY: one line per worker (job, epoch, batch, loss, pairs/s) and one overall line (runs
 * done, ETA), redrawn in place a few times a second. Elsewhere (CI, a log file): one line per
 * finished epoch (unless opts.epochLines is false) and per finished job.
 *
 * The ETA counts all the work left, not only training: batches at the seconds per batch measured
 * between a worker's batch reports (so the per-epoch test evaluation is included), each run's
 * final evaluation at the mean time the finished ones took after their last batch, and t-SNE
 * and distance jobs at their kind's mean time; the sum is shared over the workers. Work of a kind
 * not yet timed counts as nothing, and the ETA then ends in "+".
 * Through a queue the workers are the fleet's, whose number this machine does not know: the sum
 * is shared over the jobs the fleet runs at once now (as measured: started, not ended, not put
 * back on the queue), and there is no ETA before a worker has reported batches, nor while no job runs.
 */
export class CompareProgress {
  private readonly tty: boolean;
  private readonly slots = new Map<number, SlotState>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly command: string;
  private readonly t0: number;
  private runs = 0;
  private reused = 0;
  private done = 0;
  private failed = 0;
  private workers = 1;
  private readonly queue: boolean;
  private readonly jobs = new Map<string, JobTrack>();
  /** seconds and batches between consecutive batch reports of a training */
  private batchSeconds = 0;
  private batchCount = 0;
  /** durations, in seconds: final evaluations (last batch to job end), t-SNE and distance jobs */
  private readonly evalTimes: number[] = [];
  private readonly epochLines: boolean;
  private readonly jobTimes: Record<'tsne' | 'distances', number[]> = { tsne: [], distances: [] };
  /** t-SNE jobs announced for later, not yet started */
  private laterTsne = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    opts: CompareProgressOptions = {},
  ) {
    this.tty = Boolean(stream.isTTY) && !process.env['CI'];
    this.now = opts.now ?? (() => performance.now());
    this.command = opts.command ?? 'compare';
    this.queue = opts.queue ?? false;
    this.epochLines = opts.epochLines ?? true;
    this.t0 = this.now();
  }

  callbacks(): CompareCallbacks {
    return {
      onPlan: (p) => {
        this.runs = p.runs;
        this.reused = p.reused.length;
        this.workers = Math.max(1, p.workers);
        for (const j of p.jobs) this.track(j);
        this.laterTsne = p.later ?? 0;
        const train = p.jobs.filter((j) => j.kind === 'train').length;
        const other = p.jobs.length - train;
        this.log(
          `${this.command}: ${count(p.runs, 'run')}, ${p.reused.length} finished already, ${train} to train` +
            (other ? `, ${count(other, 'other job')} (t-SNE, distances)` : '') +
            (p.jobs.length ? (this.queue ? ' on the workers of the queue' : ` on ${count(p.workers, 'worker')}`) : ''),
        );
        if (this.tty) this.timer = setInterval(() => this.redraw(), 250).unref();
      },
      onJobStart: (job, slot) => {
        this.track(job).startedAt = this.now();
        this.slots.set(slot, { job, text: job.kind === 'train' ? `${job.label}: starting` : `${job.label}` });
      },
      onJobEvent: (job, ev, slot) => this.event(job, ev, slot),
      onJobRequeue: (job, slot) => this.requeue(job, slot),
      onJobEnd: (job, outcome) => this.end(job, outcome),
      onPhase: (text) => {
        this.clear();
        this.slots.clear();
        this.stopTimer();
        this.stream.write(`${text}...\n`);
      },
    };
  }

  private track(job: CompareJob): JobTrack {
    let t = this.jobs.get(job.key);
    if (!t) {
      // a t-SNE job the plan announced for later has arrived
      if (job.kind === 'tsne' && this.laterTsne > 0) this.laterTsne--;
      t = { kind: job.kind, perEpoch: job.batchesPerEpoch ?? 0, epochs: job.epochs ?? 0, start: job.startEpoch ?? 0, done: 0, epochDone: 0, ended: false };
      this.jobs.set(job.key, t);
    }
    return t;
  }

  private event(job: CompareJob, ev: JobEvent, slot: number): void {
    const s = this.slots.get(slot) ?? { job, text: '' };
    this.slots.set(slot, s);
    if (ev.type === 'batch') {
      const i = ev.info;
      const t = this.track(job);
      const now = this.now();
      // the estimate was off (miners): the run's own count wins
      t.perEpoch = i.batches;
      const done = (i.epoch - 1 - t.start) * i.batches + i.batch;
      if (t.lastBatchAt !== undefined && t.lastBatchDone !== undefined && done > t.lastBatchDone) {
        this.batchSeconds += (now - t.lastBatchAt) / 1000;
        this.batchCount += done - t.lastBatchDone;
      }
      t.lastBatchAt = now;
      t.lastBatchDone = done;
      t.done = done;
      if (i.epoch >= t.epochs && i.batch === i.batches) t.evalSince = now;
      const bar = 12;
      const fill = Math.round((bar * i.batch) / i.batches);
      s.text =
        `${job.label}  epoch ${i.epoch}/${job.epochs} [${'#'.repeat(fill)}${'-'.repeat(bar - fill)}] ` +
        `${i.batch}/${i.batches} | loss ${i.loss.toFixed(4)} | ${Math.round(i.pairsPerSecond)} pairs/s`;
    } else if (ev.type === 'epoch') {
      const t = this.track(job);
      t.epochDone = Math.max(0, (ev.log.epoch - t.start) * t.perEpoch);
      if (!this.tty && this.epochLines) this.stream.write(`[${job.label}] ${formatEpoch(ev.log, job.epochs ?? ev.log.epoch)}\n`);
      s.text = `${job.label}  epoch ${ev.log.epoch}/${job.epochs} done: test acc ${(100 * ev.log.testAccuracy).toFixed(2)}%; evaluating`;
    } else if (ev.type === 'tsne') {
      s.text = `${job.label}  iteration ${ev.iteration}/${ev.total}`;
    }
  }

  /**
   * A queue's job back on the queue unfinished (a worker refused it, was stopped or died): it runs
   * nowhere now, so the ETA no longer shares the work over it, and its wait is no batch time. The
   * batches its worker did after its last finished epoch are lost (the next worker resumes from
   * that epoch's checkpoint): its count goes back there now, in the training share and the ETA.
   * Before, the old worker's count stood until the next worker reported.
   */
  private requeue(job: CompareJob, slot: number): void {
    if (this.slots.get(slot)?.job.key === job.key) this.slots.delete(slot);
    const t = this.track(job);
    t.done = Math.min(t.done, t.epochDone);
    t.startedAt = undefined;
    t.lastBatchAt = undefined;
    t.lastBatchDone = undefined;
    t.evalSince = undefined;
  }

  private end(job: CompareJob, o: JobOutcome): void {
    for (const [k, v] of this.slots) if (v.job.key === job.key) this.slots.delete(k);
    if (o.status === 'interrupted') return;
    const t = this.track(job);
    t.ended = true;
    const now = this.now();
    if (o.status === 'failed') {
      this.failed++;
      this.log(`[${job.label}] FAILED: ${o.message}`);
      return;
    }
    if (job.kind === 'train') {
      t.done = (t.epochs - t.start) * t.perEpoch;
      if (t.evalSince !== undefined) this.evalTimes.push((now - t.evalSince) / 1000);
      this.done++;
    } else if (t.startedAt !== undefined) {
      this.jobTimes[job.kind].push((now - t.startedAt) / 1000);
    }
    this.log(`[${job.label}] ${job.kind === 'train' ? 'finished' : 'done'} in ${clock(o.seconds)}`);
  }

  /** Seconds of work left, over the workers, and whether some of it could not be timed yet; undefined before any timing. */
  eta(): { seconds: number; partial: boolean } | undefined {
    if (this.batchCount === 0) return undefined;
    let running = 0;
    for (const t of this.jobs.values()) if (t.startedAt !== undefined && !t.ended) running++;
    // a queue's fleet: as many at once as it runs now; none running, nothing to measure by
    if (this.queue && running === 0) return undefined;
    const perBatch = this.batchSeconds / this.batchCount;
    const now = this.now();
    let work = 0;
    let partial = false;
    let open = 0;
    // a job under way has done part of its time already; never less than nothing left
    const rest = (avg: number | undefined, since: number | undefined): number => {
      if (avg === undefined) {
        partial = true;
        return 0;
      }
      return since === undefined ? avg : Math.max(0, avg - (now - since) / 1000);
    };
    for (const t of this.jobs.values()) {
      if (t.ended) continue;
      open++;
      if (t.kind === 'train') {
        work += Math.max(0, (t.epochs - t.start) * t.perEpoch - t.done) * perBatch;
        work += rest(average(this.evalTimes), t.evalSince);
      } else {
        work += rest(average(this.jobTimes[t.kind]), t.startedAt);
      }
    }
    for (let i = 0; i < this.laterTsne; i++) {
      open++;
      work += rest(average(this.jobTimes.tsne), undefined);
    }
    return { seconds: work / Math.max(1, this.queue ? running : Math.min(this.workers, open)), partial };
  }

  /** A line above the live display (or just a line, off a TTY). */
  log(text: string): void {
    this.clear();
    this.stream.write(text + '\n');
    this.draw();
  }

  /** Redraw the live display (the timer does, a few times a second). */
  redraw(): void {
    this.draw();
  }

  stop(): void {
    this.stopTimer();
    this.clear();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Erase the live display. The cursor goes back to column 0 first: the terminal may have echoed
   * something (a Ctrl-C's "^C") on the line below the display, and erasing from that column
   * would leave the start of a line behind and shift everything written after it.
   */
  private clear(): void {
    if (!this.tty || this.drawn === 0) return;
    this.stream.write(`\r\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.tty || !this.timer) return;
    const cols = Math.max(40, this.stream.columns ?? 100);
    const lines = [...this.slots.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `w${k + 1} ${v.text}`);
    const elapsed = (this.now() - this.t0) / 1000;
    const e = this.eta();
    let total = 0;
    let done = 0;
    for (const t of this.jobs.values()) {
      if (t.kind !== 'train') continue;
      total += (t.epochs - t.start) * t.perEpoch;
      done += Math.min(t.done, (t.epochs - t.start) * t.perEpoch);
    }
    const share = total > 0 ? Math.floor((100 * done) / total) : 100;
    lines.push(
      `all ${this.done + this.reused}/${count(this.runs, 'run')} done${this.failed ? `, ${this.failed} failed` : ''} | ` +
        `training ${share}% | elapsed ${clock(elapsed)} | ETA ${e ? `${clock(e.seconds)}${e.partial ? '+' : ''}` : '-'}`,
    );
    this.clear();
    this.stream.write(lines.map((l) => (l.length > cols - 1 ? l.slice(0, cols - 2) + '…' : l)).join('\n') + '\n');
    this.drawn = lines.length;
  }
}
