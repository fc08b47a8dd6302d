/**
 * The live display of `siamese compare`, on a terminal emulated here (cursor moves, erase, line
 * wrap), driven by a clock of the test's own: lines written above it (the Ctrl-C message) land
 * on a line of their own even after the terminal echoed "^C"; the ETA counts evaluation too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompareProgress } from '../../src/cli/compare.ts';
import { sweepProgressOptions } from '../../src/cli/sweep.ts';
import type { CompareJob } from '../../src/experiments/compare.ts';
import type { JobEvent } from '../../src/experiments/jobs.ts';
import type { BatchInfo } from '../../src/train/trainer.ts';

/** Just enough of a VT100: printable characters with wrap, \r, \n (as CR LF), ESC[nA, ESC[J. */
class Terminal {
  rows: string[] = [''];
  r = 0;
  c = 0;
  constructor(readonly width: number) {}
  write(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (ch === '\x1b') {
        const m = /^\x1b\[(\d*)([AJ])/.exec(text.slice(i))!;
        if (m[2] === 'A') this.r = Math.max(0, this.r - Number(m[1] || 1));
        else {
          this.rows[this.r] = (this.rows[this.r] ?? '').slice(0, this.c);
          this.rows.length = this.r + 1;
        }
        i += m[0].length - 1;
      } else if (ch === '\r') this.c = 0;
      else if (ch === '\n') this.newline();
      else {
        if (this.c >= this.width) this.newline();
        const row = (this.rows[this.r] ?? '').padEnd(this.c);
        this.rows[this.r] = row.slice(0, this.c) + ch + row.slice(this.c + 1);
        this.c++;
      }
    }
  }
  private newline(): void {
    this.r++;
    this.c = 0;
    while (this.rows.length <= this.r) this.rows.push('');
  }
}

function fakeTty(term: Terminal): NodeJS.WriteStream {
  return { isTTY: true, columns: term.width, write: (s: string) => (term.write(s), true) } as unknown as NodeJS.WriteStream;
}

const trainJob = (n: number): CompareJob => ({
  key: `contrastive-seed${n}`,
  kind: 'train',
  label: `contrastive seed ${n}`,
  lossId: 'contrastive',
  seed: n,
  epochs: 1,
  startEpoch: 0,
  batchesPerEpoch: 10,
});

const batch = (b: number): JobEvent => ({ type: 'batch', info: { epoch: 1, batches: 10, batch: b, loss: 0.5, pairsPerSecond: 1000 } as BatchInfo });

test('a line written above the live display after the terminal echoed ^C lands on a line of its own', (t) => {
  const saved = process.env['CI'];
  delete process.env['CI'];
  t.after(() => {
    if (saved !== undefined) process.env['CI'] = saved;
  });
  const term = new Terminal(120);
  const p = new CompareProgress(fakeTty(term), { now: () => 0 });
  const cb = p.callbacks();
  cb.onPlan!({ jobs: [trainJob(0)], reused: [], workers: 1, runs: 1 });
  cb.onJobStart!(trainJob(0), 0);
  cb.onJobEvent!(trainJob(0), batch(3), 0);
  p.redraw();
  term.write('^C'); // the terminal's echo, at the cursor: the line below the display
  p.log('SIGINT: stopping; the workers save their last finished epoch (send it again to quit at once)');
  p.stop();
  assert.deepEqual(term.rows, [
    'compare: 1 run, 0 finished already, 1 to train on 1 worker',
    'SIGINT: stopping; the workers save their last finished epoch (send it again to quit at once)',
    '',
  ]);
});

test('the ETA counts the final evaluations and does not climb while a run evaluates', (t) => {
  const saved = process.env['CI'];
  process.env['CI'] = 'true'; // no live display needed: the estimate alone
  t.after(() => {
    if (saved === undefined) delete process.env['CI'];
    else process.env['CI'] = saved;
  });
  let ms = 0;
  const at = (s: number): void => {
    ms = s * 1000;
  };
  const lines: string[] = [];
  const p = new CompareProgress({ isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream, { now: () => ms });
  const cb = p.callbacks();
  const [a, b] = [trainJob(0), trainJob(1)];
  // one worker; each run: 10 batches of 1 s, then a final evaluation of 5 s
  cb.onPlan!({ jobs: [a, b], reused: [], workers: 1, runs: 2 });
  cb.onJobStart!(a, 0);
  assert.equal(p.eta(), undefined, 'nothing timed yet');
  for (let i = 1; i <= 10; i++) {
    at(i);
    cb.onJobEvent!(a, batch(i), 0);
  }
  // at 10 s: run a evaluates; 10 batches of b left at 1 s each, evaluations not yet timed
  assert.deepEqual(p.eta(), { seconds: 10, partial: true });
  at(14);
  assert.deepEqual(p.eta(), { seconds: 10, partial: true }, 'no climb while a evaluates');
  at(15);
  cb.onJobEnd!(a, { status: 'finished', seconds: 15 });
  // b: 10 batches + one evaluation of 5 s (a's)
  assert.deepEqual(p.eta(), { seconds: 15, partial: false });
  cb.onJobStart!(b, 0);
  for (let i = 1; i <= 10; i++) {
    at(15 + i);
    cb.onJobEvent!(b, batch(i), 0);
  }
  assert.deepEqual(p.eta(), { seconds: 5, partial: false });
  const seen: number[] = [];
  for (const s of [26, 27, 28, 29, 30, 31]) {
    at(s);
    seen.push(p.eta()!.seconds);
  }
  assert.deepEqual(seen, [4, 3, 2, 1, 0, 0], 'counts down through the evaluation');
  cb.onJobEnd!(b, { status: 'finished', seconds: 16 });
  assert.deepEqual(p.eta(), { seconds: 0, partial: false });
  assert.deepEqual(lines.filter((l) => l.startsWith('[')), ['[contrastive seed 0] finished in 0m15s\n', '[contrastive seed 1] finished in 0m16s\n']);
});

test('t-SNE jobs announced for later count in the ETA once one has been timed', (t) => {
  const saved = process.env['CI'];
  process.env['CI'] = 'true';
  t.after(() => {
    if (saved === undefined) delete process.env['CI'];
    else process.env['CI'] = saved;
  });
  let ms = 0;
  const p = new CompareProgress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, { now: () => ms });
  const cb = p.callbacks();
  const a = trainJob(0);
  const before: CompareJob = { key: 'tsne-before', kind: 'tsne', label: 't-SNE before training' };
  const after: CompareJob = { key: 'tsne-contrastive', kind: 'tsne', label: 't-SNE contrastive' };
  // one worker: the "before" panel now, the loss's panel once its run has finished
  cb.onPlan!({ jobs: [a, before], reused: [], workers: 1, runs: 1, later: 1 });
  cb.onJobStart!(a, 0);
  for (let i = 1; i <= 10; i++) {
    ms = 1000 * i;
    cb.onJobEvent!(a, batch(i), 0);
  }
  assert.deepEqual(p.eta(), { seconds: 0, partial: true }, 'evaluation and t-SNE not timed yet');
  ms = 15_000;
  cb.onJobEnd!(a, { status: 'finished', seconds: 15 });
  cb.onJobStart!(before, 0);
  ms = 35_000;
  cb.onJobEnd!(before, { status: 'finished', seconds: 20 });
  // the panel still to come: one t-SNE job of 20 s
  assert.deepEqual(p.eta(), { seconds: 20, partial: false });
  cb.onJobStart!(after, 0);
  ms = 41_000;
  assert.deepEqual(p.eta(), { seconds: 14, partial: false });
});

test('through a queue, the plan line names the queue\'s workers, not the local thread count', () => {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
  new CompareProgress(stream, { now: () => 0, queue: true }).callbacks().onPlan!({ jobs: [trainJob(0), trainJob(1)], reused: [], workers: 2, runs: 2 });
  assert.deepEqual(lines, ['compare: 2 runs, 0 finished already, 2 to train on the workers of the queue\n']);
  lines.length = 0;
  new CompareProgress(stream, { now: () => 0, command: 'sweep' }).callbacks().onPlan!({ jobs: [trainJob(0), trainJob(1)], reused: [], workers: 2, runs: 2 });
  assert.deepEqual(lines, ['sweep: 2 runs, 0 finished already, 2 to train on 2 workers\n']);
});

test('through a queue, the ETA shares the work left over the jobs the fleet runs at once, not over this machine\'s workers', () => {
  let ms = 0;
  const p = new CompareProgress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, { now: () => ms, queue: true });
  const cb = p.callbacks();
  const jobs = [0, 1, 2, 3].map(trainJob);
  // the plan as an older coordinator made it: this machine's 16 threads as "workers"
  cb.onPlan!({ jobs, reused: [], workers: 16, runs: 4 });
  assert.equal(p.eta(), undefined, 'no ETA before a worker reports');
  // one fleet worker runs job 0: a batch a second
  cb.onJobStart!(jobs[0]!, 0);
  for (let i = 1; i <= 5; i++) {
    ms = 1000 * i;
    cb.onJobEvent!(jobs[0]!, batch(i), 0);
  }
  // 5 batches of job 0 and 10 of each other job left, 1 s each, one job at a time (evaluation untimed)
  assert.deepEqual(p.eta(), { seconds: 35, partial: true });
  // a second worker takes job 1: two at once
  cb.onJobStart!(jobs[1]!, 1);
  assert.deepEqual(p.eta(), { seconds: 17.5, partial: true });
  // both end; no job runs now: nothing to measure the fleet by
  cb.onJobEnd!(jobs[0]!, { status: 'finished', seconds: 5 });
  cb.onJobEnd!(jobs[1]!, { status: 'failed', seconds: 0, message: 'x' });
  assert.equal(p.eta(), undefined);
});

test('without a terminal: compare writes a line per finished epoch and per finished training; sweep (hundreds of trainings) one line per finished training only', () => {
  const log = { epoch: 1, loss: 0.25, trainAccuracy: 0.6, testAccuracy: 0.7, seconds: 1, pairsPerSecond: 1000 };
  for (const command of ['compare', 'sweep']) {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
    const cb = new CompareProgress(stream, { now: () => 0, ...(command === 'sweep' ? sweepProgressOptions(false) : {}) }).callbacks();
    const job = trainJob(0);
    cb.onPlan!({ jobs: [job], reused: [], workers: 1, runs: 1 });
    cb.onJobStart!(job, 0);
    cb.onJobEvent!(job, { type: 'epoch', log } as JobEvent, 0);
    cb.onJobEnd!(job, { status: 'finished', seconds: 2 });
    const epochLines = lines.filter((l) => /^\[contrastive seed 0\] epoch 1\/1: /.test(l));
    assert.equal(epochLines.length, command === 'compare' ? 1 : 0, `${command}: ${lines.join('')}`);
    assert.deepEqual(lines.filter((l) => /finished in/.test(l)), ['[contrastive seed 0] finished in 0m02s\n'], command);
  }
});

test('through a queue, a job a worker put back (refused: full disk, no native engine) stops counting as running until a worker takes it again', () => {
  let ms = 0;
  const p = new CompareProgress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, { now: () => ms, queue: true });
  const cb = p.callbacks();
  const jobs = [0, 1, 2, 3].map(trainJob);
  cb.onPlan!({ jobs, reused: [], workers: 0, runs: 4 });
  cb.onJobStart!(jobs[0]!, 0);
  for (let i = 1; i <= 5; i++) {
    ms = 1000 * i;
    cb.onJobEvent!(jobs[0]!, batch(i), 0);
  }
  // a second worker takes job 1, then refuses it: its disk is full
  cb.onJobStart!(jobs[1]!, 1);
  assert.deepEqual(p.eta(), { seconds: 17.5, partial: true });
  cb.onJobRequeue!(jobs[1]!, 1);
  // one job runs: 35 batches left at 1 s, one at a time (as before job 1 started)
  assert.deepEqual(p.eta(), { seconds: 35, partial: true });
  // a worker that can run it takes it: two at once again
  cb.onJobStart!(jobs[1]!, 1);
  assert.deepEqual(p.eta(), { seconds: 17.5, partial: true });
  // both go back to the queue (their workers stopped): none runs, no ETA
  cb.onJobRequeue!(jobs[1]!, 1);
  cb.onJobRequeue!(jobs[0]!, 0);
  assert.equal(p.eta(), undefined);
  // taken again 20 s later; its next batch, 20 s after its last one, is not timed as a batch
  ms = 25_000;
  cb.onJobStart!(jobs[0]!, 0);
  ms = 26_000;
  cb.onJobEvent!(jobs[0]!, batch(6), 0);
  ms = 27_000;
  cb.onJobEvent!(jobs[0]!, batch(7), 0);
  // 3 + 30 batches left, still 1 s each (not (5 + 20 + 1) s over 7 batches)
  assert.deepEqual(p.eta(), { seconds: 33, partial: true });
});

test('through a queue, a job put back mid-epoch (its worker died, or was stopped) goes back to its last finished epoch at once, in the training share and the ETA', (t) => {
  const saved = process.env['CI'];
  delete process.env['CI'];
  t.after(() => {
    if (saved !== undefined) process.env['CI'] = saved;
  });
  let ms = 0;
  const term = new Terminal(200);
  const p = new CompareProgress(fakeTty(term), { now: () => ms, queue: true });
  t.after(() => p.stop());
  const cb = p.callbacks();
  // two trainings of 2 epochs of 10 batches
  const [a, b] = [0, 1].map((n) => ({ ...trainJob(n), epochs: 2 }));
  const at = (epoch: number, n: number): JobEvent => ({ type: 'batch', info: { epoch, batches: 10, batch: n, loss: 0.5, pairsPerSecond: 1000 } as BatchInfo });
  const overall = (): string => {
    p.redraw();
    return term.rows.filter((r) => r.startsWith('all '))[0]!;
  };
  cb.onPlan!({ jobs: [a!, b!], reused: [], workers: 0, runs: 2 });
  cb.onJobStart!(a!, 0);
  cb.onJobStart!(b!, 1);
  // job a: its first epoch, a batch a second, then half of its second
  for (let i = 1; i <= 10; i++) {
    ms = 1000 * i;
    cb.onJobEvent!(a!, at(1, i), 0);
  }
  cb.onJobEvent!(a!, { type: 'epoch', log: { epoch: 1, loss: 0.5, trainAccuracy: 0.5, testAccuracy: 0.5, seconds: 10, pairsPerSecond: 1000 } } as JobEvent, 0);
  for (let i = 1; i <= 5; i++) {
    ms = 10_000 + 1000 * i;
    cb.onJobEvent!(a!, at(2, i), 0);
  }
  // 15 of 40 batches done
  assert.match(overall(), /training 37% /);
  // its worker dies: another will resume from the epoch-1 checkpoint, the 5 batches since are lost
  cb.onJobRequeue!(a!, 0);
  assert.match(overall(), /training 25% /);
  // 10 batches of a and 20 of b left, at 1 s each, one job running (b)
  assert.deepEqual(p.eta(), { seconds: 30, partial: true });
  // the worker that takes it over reports from there
  ms = 20_000;
  cb.onJobStart!(a!, 0);
  cb.onJobEvent!(a!, at(2, 1), 0);
  assert.match(overall(), /training 27% /);
});
