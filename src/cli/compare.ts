import { join } from 'node:path';
import { type CompareJob, type CompareOptions, type CompareOutcome, type JobOutcome, runCompare } from '../experiments/compare.ts';
import type { JobEvent } from '../experiments/jobs.ts';
import type { CompareResults, Stat } from '../experiments/results.ts';
import { formatEpoch } from './progress.ts';

/**
 * `siamese compare`: the grid of losses x seeds on worker threads, with one progress display,
 * clean interruption (Ctrl-C or SIGTERM: the workers save their last finished epoch; a second
 * signal quits at once) and a short summary table at the end.
 */
export async function compareCommand(opts: CompareOptions): Promise<CompareOutcome> {
  const controller = new AbortController();
  const progress = new CompareProgress(process.stderr);
  let signalled: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) process.exit(130);
    signalled = sig;
    progress.log(`${sig}: stopping; the workers save their last finished epoch (send it again to quit at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: CompareOutcome;
  try {
    outcome = await runCompare({ ...opts, signal: controller.signal, onQueueLog: (line) => progress.log(line) }, progress.callbacks());
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const out = outcome.out;
  if (outcome.status === 'interrupted') {
    process.stderr.write(
      `stopped by ${signalled ?? 'request'}: finished runs and epochs are kept in ${out}. ` +
        `Resume with: siamese compare --resume ${out}\n`,
    );
    process.exitCode = 130;
    return outcome;
  }
  process.stdout.write(summaryText(outcome));
  if (outcome.failures.length > 0) process.exitCode = 1;
  return outcome;
}

const pct = (s: Stat | undefined): string =>
  s === undefined ? '-' : `${(100 * s.mean).toFixed(2)}%${s.values.length > 1 ? ` ± ${(100 * s.ci95).toFixed(2)}` : ''}`;

/** The table printed at the end: loss, runs, accuracy and MAP@R (mean ± 95% CI), verdicts, files. */
export function summaryText(o: CompareOutcome): string {
  const r = o.results as CompareResults;
  const lines: string[] = [];
  const rows = r.spec.losses.map((l) => {
    const s = r.summary.find((x) => x.lossId === l.id);
    return [l.label, `${s?.seeds ?? 0}/${r.spec.seeds.length}`, pct(s?.accuracy), pct(s?.mapAtR)];
  });
  const head = ['loss', 'runs', 'accuracy (95% CI)', 'MAP@R (95% CI)'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  lines.push('', fmt(head), fmt(width.map((w) => '-'.repeat(w))), ...rows.map(fmt));
  if (r.comparisons.length > 0) {
    lines.push('', 'paired over seeds (same initial weights, same pairs):');
    for (const c of r.comparisons) lines.push(`  ${c.verdict}`);
  }
  if (o.failures.length > 0) {
    lines.push('', `failed (${o.failures.length}):`);
    for (const f of o.failures) lines.push(`  ${f.key}: ${f.message}`);
    lines.push(`  run the same command again to retry them; finished runs are kept`);
  }
  const w = r.machine.workers;
  const where = w === 0 ? 'nothing left to run' : `on ${w} worker${w === 1 ? '' : 's'}`;
  lines.push('', `${r.runs.length} runs (${o.trained.length} trained now, ${o.reused.length} reused), ${r.machine.wallSeconds.toFixed(0)} s, ${where}`);
  lines.push(`results: ${o.resultsPath ?? join(o.out, 'results.json')}`);
  if (o.report) lines.push(`report:  ${o.report.html}`, `         ${o.report.md}`);
  else lines.push(`report:  not written (${o.reportError ?? 'disabled'})`);
  return lines.join('\n') + '\n';
}

interface SlotState {
  job: CompareJob;
  text: string;
}

const clock = (s: number): string => {
  if (!Number.isFinite(s) || s < 0) return '-';
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
};

/**
 * On a TTY: one line per worker (job, epoch, batch, loss, pairs/s) and one overall line (runs
 * done, ETA), redrawn in place a few times a second. Elsewhere (CI, a log file): one line per
 * finished epoch and per finished job.
 */
export class CompareProgress {
  private readonly tty: boolean;
  private readonly slots = new Map<number, SlotState>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = performance.now();
  private runs = 0;
  private reused = 0;
  private done = 0;
  private failed = 0;
  /** training batches: planned in all, and done */
  private totalBatches = 0;
  private doneBatches = 0;
  private readonly jobBatches = new Map<string, { perEpoch: number; epochs: number; start: number; done: number }>();
  private firstBatchAt: number | undefined;
  private batchesAtFirst = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.tty = Boolean(stream.isTTY) && !process.env['CI'];
  }

  callbacks(): Parameters<typeof runCompare>[1] {
    return {
      onPlan: (p) => {
        this.runs = p.runs;
        this.reused = p.reused.length;
        for (const j of p.jobs) {
          if (j.kind !== 'train') continue;
          const e = { perEpoch: j.batchesPerEpoch ?? 0, epochs: j.epochs ?? 0, start: j.startEpoch ?? 0, done: 0 };
          this.jobBatches.set(j.key, e);
          this.totalBatches += (e.epochs - e.start) * e.perEpoch;
        }
        const train = p.jobs.filter((j) => j.kind === 'train').length;
        const other = p.jobs.length - train;
        this.log(
          `compare: ${p.runs} runs, ${p.reused.length} finished already, ${train} to train` +
            (other ? `, ${other} other jobs (t-SNE, distances)` : '') +
            (p.jobs.length ? ` on ${p.workers} worker${p.workers === 1 ? '' : 's'}` : ''),
        );
        if (this.tty) this.timer = setInterval(() => this.draw(), 250).unref();
      },
      onJobStart: (job, slot) => {
        this.slots.set(slot, { job, text: job.kind === 'train' ? `${job.label}: starting` : `${job.label}` });
      },
      onJobEvent: (job, ev, slot) => this.event(job, ev, slot),
      onJobEnd: (job, outcome) => this.end(job, outcome),
      onPhase: (text) => {
        this.clear();
        this.slots.clear();
        this.stopTimer();
        this.stream.write(`${text}...\n`);
      },
    };
  }

  private event(job: CompareJob, ev: JobEvent, slot: number): void {
    const s = this.slots.get(slot) ?? { job, text: '' };
    this.slots.set(slot, s);
    if (ev.type === 'batch') {
      const i = ev.info;
      const jb = this.jobBatches.get(job.key);
      if (jb) {
        if (jb.perEpoch !== i.batches) {
          // the estimate was off (miners): correct the plan
          this.totalBatches += (jb.epochs - jb.start) * (i.batches - jb.perEpoch);
          jb.perEpoch = i.batches;
        }
        const now = (i.epoch - 1 - jb.start) * i.batches + i.batch;
        this.doneBatches += now - jb.done;
        jb.done = now;
        if (this.firstBatchAt === undefined) {
          this.firstBatchAt = performance.now();
          this.batchesAtFirst = this.doneBatches;
        }
      }
      const bar = 12;
      const fill = Math.round((bar * i.batch) / i.batches);
      s.text =
        `${job.label}  epoch ${i.epoch}/${job.epochs} [${'#'.repeat(fill)}${'-'.repeat(bar - fill)}] ` +
        `${i.batch}/${i.batches} | loss ${i.loss.toFixed(4)} | ${Math.round(i.pairsPerSecond)} pairs/s`;
    } else if (ev.type === 'epoch') {
      if (!this.tty) this.stream.write(`[${job.label}] ${formatEpoch(ev.log, job.epochs ?? ev.log.epoch)}\n`);
      s.text = `${job.label}  epoch ${ev.log.epoch}/${job.epochs} done: test acc ${(100 * ev.log.testAccuracy).toFixed(2)}%; evaluating`;
    } else if (ev.type === 'tsne') {
      s.text = `${job.label}  iteration ${ev.iteration}/${ev.total}`;
    }
  }

  private end(job: CompareJob, o: JobOutcome): void {
    for (const [k, v] of this.slots) if (v.job.key === job.key) this.slots.delete(k);
    if (o.status === 'interrupted') return;
    const jb = this.jobBatches.get(job.key);
    if (jb && o.status === 'finished') {
      const full = (jb.epochs - jb.start) * jb.perEpoch;
      this.doneBatches += full - jb.done;
      jb.done = full;
    }
    if (o.status === 'failed') {
      this.failed++;
      this.log(`[${job.label}] FAILED: ${o.message}`);
      return;
    }
    if (job.kind === 'train') this.done++;
    this.log(`[${job.label}] ${job.kind === 'train' ? 'finished' : 'done'} in ${clock(o.seconds)}`);
  }

  /** A line above the live display (or just a line, off a TTY). */
  log(text: string): void {
    this.clear();
    this.stream.write(text + '\n');
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

  private clear(): void {
    if (!this.tty || this.drawn === 0) return;
    this.stream.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.tty || !this.timer) return;
    const cols = Math.max(40, this.stream.columns ?? 100);
    const lines = [...this.slots.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `w${k + 1} ${v.text}`);
    const elapsed = (performance.now() - this.t0) / 1000;
    let eta = '-';
    if (this.firstBatchAt !== undefined && this.doneBatches > this.batchesAtFirst) {
      const rate = (this.doneBatches - this.batchesAtFirst) / ((performance.now() - this.firstBatchAt) / 1000);
      eta = clock(Math.max(0, this.totalBatches - this.doneBatches) / rate);
    }
    const share = this.totalBatches > 0 ? Math.floor((100 * this.doneBatches) / this.totalBatches) : 100;
    lines.push(
      `all ${this.done + this.reused}/${this.runs} runs done${this.failed ? `, ${this.failed} failed` : ''} | ` +
        `training ${share}% | elapsed ${clock(elapsed)} | ETA ${eta} (training)`,
    );
    this.clear();
    this.stream.write(lines.map((l) => (l.length > cols - 1 ? l.slice(0, cols - 2) + '…' : l)).join('\n') + '\n');
    this.drawn = lines.length;
  }
}
