/**
 * A pool of worker threads for the jobs of a comparison. Each worker runs one job at a time
 * (the wasm backend is single-threaded, so one worker per core is the right parallelism);
 * jobs wait in a first-in, first-out queue. Workers start lazily, up to `size`, and are reused
 * for later jobs (each keeps its data set loaded).
 *
 * Failures stay with their job: an error thrown by a job, or a worker that dies (out of memory,
 * a crash in native code), rejects that job's promise with a one-line message, and the pool
 * starts a fresh worker for the jobs still queued.
 *
 * `requestStop()` raises a flag in shared memory that running jobs poll between batches (they
 * then save their last finished epoch and resolve as interrupted); queued jobs resolve as
 * interrupted without starting. A job run with an AbortSignal stops the same way, alone, when the
 * signal aborts (its own flag: a queue worker's job whose lock was lost, queue/worker.ts).
 *
 * Workers run the TypeScript sources: a tiny bootstrap registers tsx's loader inside the worker
 * and then imports worker.ts. This works whether the parent was started with `node --import tsx`
 * or through bin/siamese.js, and from any working directory.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DataError, type ErrorCode, errorFromCode, type MachineFault, UsageError } from '../errors.ts';
import type { Executor, ExecutorCallbacks } from './executor.ts';
import type { JobEvent, JobRequest, JobResult } from './jobs.ts';

/** Messages from a worker. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'event'; id: number; event: JobEvent }
  | { type: 'result'; id: number; result: JobResult }
  | { type: 'error'; id: number; code: ErrorCode | undefined; fault?: MachineFault | undefined; message: string };


interface Task {
  id: number;
  req: JobRequest;
  cb: ExecutorCallbacks;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
  signal?: AbortSignal | undefined;
  /** removes the signal's listener once the task has ended */
  unlisten?: () => void;
}

interface Slot {
  index: number;
  worker: Worker;
  task: Task | null;
  /** set once the worker has failed or been terminated: it takes no more work */
  dead: boolean;
}

export class WorkerPool implements Executor {
  /** [0]: every job stops; [1 + slot]: the job of that slot stops (run's signal) */
  private readonly stopFlag: Int32Array;
  private readonly slots: (Slot | null)[];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new UsageError(`workers must be an integer >= 1, got ${size}`);
    this.slots = new Array<Slot | null>(size).fill(null);
    this.stopFlag = new Int32Array(new SharedArrayBuffer(4 * (1 + size)));
  }

  get stopping(): boolean {
    return Atomics.load(this.stopFlag, 0) !== 0;
  }

  /**
   * Queue a job; resolves with its result, rejects with a one-line error. onStart's slot is the
   * worker thread (0-based, stable for the pool's life). When `signal` aborts, this job alone
   * stops as requestStop stops them all: at its next batch, or unstarted.
   */
  run(req: JobRequest, cb: ExecutorCallbacks = {}, signal?: AbortSignal): Promise<JobResult> {
    if (this.closed) return Promise.reject(new Error('the worker pool is closed'));
    if (this.stopping || signal?.aborted) return Promise.resolve({ status: 'interrupted' });
    return new Promise<JobResult>((resolve, reject) => {
      const task: Task = { id: this.nextId++, req, cb, resolve, reject, signal };
      if (signal) {
        const onAbort = (): void => this.stopTask(task);
        signal.addEventListener('abort', onAbort, { once: true });
        task.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(task);
      this.dispatch();
    });
  }

  /** One job's stop: raised in its slot's flag while it runs; unstarted, it ends now. */
  private stopTask(task: Task): void {
    const queued = this.queue.indexOf(task);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      task.unlisten?.();
      task.resolve({ status: 'interrupted' });
      return;
    }
    const slot = this.slots.find((s) => s?.task === task);
    if (slot) Atomics.store(this.stopFlag, 1 + slot.index, 1);
  }

  /** A task has ended (its slot is free): its own stop, if raised, must not stop the next one. */
  private ended(slot: Slot, task: Task): void {
    task.unlisten?.();
    Atomics.store(this.stopFlag, 1 + slot.index, 0);
  }

  /** Ask running jobs to stop at their next batch; queued jobs end as interrupted, unstarted. */
  requestStop(): void {
    Atomics.store(this.stopFlag, 0, 1);
    for (const t of this.queue.splice(0)) {
      t.unlisten?.();
      t.resolve({ status: 'interrupted' });
    }
  }

  /** Terminate every worker (running jobs are rejected). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new Error('the worker pool was closed'));
    await Promise.all(
      this.slots.map(async (s, i) => {
        if (!s) return;
        this.slots[i] = null;
        s.dead = true;
        s.task?.reject(new Error('the worker pool was closed'));
        s.task = null;
        await s.worker.terminate();
      }),
    );
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s): s is Slot => s !== null && !s.dead && s.task === null);
      if (!slot) {
        const free = this.slots.indexOf(null);
        if (free < 0) return;
        slot = this.spawn(free);
      }
      const task = this.queue.shift()!;
      slot.task = task;
      task.cb.onStart?.(slot.index);
      slot.worker.postMessage({ id: task.id, req: task.req });
    }
  }

  private spawn(index: number): Slot {
    const worker = startWorker({ stop: this.stopFlag.buffer, slot: index });
    const slot: Slot = { index, worker, task: null, dead: false };
    this.slots[index] = slot;
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (e: Error) => this.fail(slot, `worker thread failed: ${(e.message.split('\n')[0] ?? '').trim() || e.name}`));
    worker.on('exit', (code) => this.fail(slot, `worker thread exited with code ${code}${code === 134 || code === 137 ? ' (out of memory?)' : ''}`));
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    const task = slot.task;
    if (m.type === 'ready' || !task || m.id !== task.id) return;
    if (m.type === 'event') {
      task.cb.onEvent?.(m.event, slot.index);
      return;
    }
    slot.task = null;
    this.ended(slot, task);
    if (m.type === 'result') task.resolve(m.result);
    else task.reject(errorFromCode(m.code, m.message, m.fault));
    this.dispatch();
  }

  /** The worker is gone: its job fails, its place is freed for a new worker. */
  private fail(slot: Slot, message: string): void {
    if (slot.dead) return;
    slot.dead = true;
    if (this.slots[slot.index] === slot) this.slots[slot.index] = null;
    const task = slot.task;
    slot.task = null;
    void slot.worker.terminate();
    if (task) this.ended(slot, task);
    if (task) task.reject(new Error(message));
    if (this.stopping) for (const t of this.queue.splice(0)) t.resolve({ status: 'interrupted' });
    else this.dispatch();
  }
}

let tsxApis: { esm: string; cjs: string } | undefined;

/**
 * file: URLs of tsx's ESM and CommonJS APIs; their `register()` install the TypeScript loaders in
 * a thread (both are needed: the engine set-up require()s a tfjs module that only tsx can load).
 */
function tsxApiUrls(): { esm: string; cjs: string } {
  if (tsxApis) return tsxApis;
  const req = createRequire(import.meta.url);
  let pkgPath: string;
  try {
    pkgPath = req.resolve('tsx/package.json');
  } catch {
    throw new DataError('the npm package tsx is not installed: run `npm ci` in the project');
  }
  type Exports = Record<string, { import?: { default?: string } }>;
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports?: Exports };
  const url = (sub: string, fallback: string): string =>
    pathToFileURL(join(dirname(pkgPath), pkg.exports?.[sub]?.import?.default ?? fallback)).href;
  tsxApis = { esm: url('./esm/api', './dist/esm/api/index.mjs'), cjs: url('./cjs/api', './dist/cjs/api/index.mjs') };
  return tsxApis;
}

function startWorker(workerData: { stop: ArrayBufferLike; slot: number }): Worker {
  return startTsWorker(new URL('./worker.ts', import.meta.url), workerData);
}

/** A worker thread running a TypeScript module through tsx's loaders (or, compiled, its .js twin). */
export function startTsWorker(module: URL, workerData: unknown): Worker {
  if (!/\.ts$/.test(new URL(import.meta.url).pathname)) {
    // running compiled JavaScript: no loader needed
    return new Worker(new URL(module.href.replace(/\.ts$/, '.js')), { workerData });
  }
  const entry = module.href;
  const { esm, cjs } = tsxApiUrls();
  const boot =
    `Promise.all([import(${JSON.stringify(esm)}), import(${JSON.stringify(cjs)})])` +
    `.then(([e, c]) => { e.register(); c.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
