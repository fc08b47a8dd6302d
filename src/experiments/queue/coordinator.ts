/**
 * The queue executor: runs a grid's jobs on a fleet of `siamese worker`s through BullMQ, and puts
 * each finished job's files where the local pool would have written them.
 *
 * The coordinator knows the plan, so it is the one that makes the grid finish whatever happens:
 * - every job has a deterministic id (payload.ts), so enqueueing again is harmless, and a
 *   coordinator that was interrupted finds, when started again, the results that came back while
 *   it was away;
 * - besides BullMQ's events (fast), it looks at every pending job every 2 s (sure): a job that
 *   Redis lost (a restart without persistence) is enqueued again, a result whose event was lost
 *   is collected;
 * - a job that workers put back because they cannot run it (their data, engine or disk: a
 *   refusal, worker.ts) waits for a worker that can; when no job of the grid has made progress
 *   for a while (unrunnableSeconds) it is reported, with the last refusal's worker and reason,
 *   and leaves the queue unless another coordinator of the grid still waits for it;
 * - a training's result is written as one set of files (io/fileSet.ts: a crash at any point leaves
 *   the run folder's old files or all the new ones, which the next run completes), a lone file's
 *   (distances, t-SNE) as a set of one, then removed from Redis (once no other coordinator of
 *   the grid waits for it: two output folders of one grid share its jobs; withdraw); the set's commit record names
 *   the job until then, so that the next run, finding a result in place whose job a crash left
 *   in Redis, removes it there (settle, settleFile), neither writing the file again nor training.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { bullmqScript } from './bullmqScripts.ts';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { DataError, errorFromCode, UsageError } from '../../errors.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import { closeFileSet, placedSetTag, singleFileStaging, writeFileSet } from '../../io/fileSet.ts';
import { collectCrashHook, queueHooks } from '../../testHooks.ts';
import type { TrainConfig } from '../../train/config.ts';
import type { Executor, ExecutorCallbacks } from '../executor.ts';
import type { JobEvent, JobRequest, JobResult } from '../jobs.ts';
import { KEY_PREFIX, parseQueueUrl } from './connection.ts';
import { GRIDS_KEY, waitersKey } from './keys.ts';
import type { DatasetShape } from './resultSize.ts';
import { checkBundle, type DataChecksums, embeddingsOverLimit, failureCode, jobId, outputPaths, type QueueJobData, type QueueJobResult, refusalOf, takeOf, toQueueJob } from './payload.ts';
import { connectOrExplain } from './worker.ts';

interface Pending {
  id: string;
  req: JobRequest;
  data: QueueJobData;
  cb: ExecutorCallbacks;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
  slot?: number;
  collecting?: boolean;
  /** the last refusal (worker.ts) since the job last made progress, and when the first came */
  refused?: { worker: string; reason: string; since: number };
  /** the take (payload.ts, QueueJobTaken) whose reports count: a former holder's are ignored */
  take?: string;
}

export interface QueueExecutorOptions {
  url: string;
  /** the queue (grid) name */
  name: string;
  /** the data set the grid was planned on */
  data: DataChecksums;
  /**
   * its size: with it, a training whose result could exceed what a job may carry back
   * (resultSize.ts) is refused before it is enqueued, not collected in vain after it trained
   */
  shape?: DatasetShape;
  /**
   * who waits for the jobs' results, the same for every run of one command (compare and sweep: the
   * host and output folder): a job's result leaves Redis once every coordinator that enqueued it
   * has written it; default this process (host:pid)
   */
  owner?: string;
  /** one line per notable event (jobs enqueued again, results collected late) */
  log?: (line: string) => void;
  /**
   * seconds a job that workers refuse (their data, engine or disk) may wait while no job of the
   * grid makes progress, before it is reported; default SIAMESE_QUEUE_UNRUNNABLE_SECONDS, or 600
   */
  unrunnableSeconds?: number;
}

function defaultUnrunnableSeconds(): number {
  const v = Number(process.env['SIAMESE_QUEUE_UNRUNNABLE_SECONDS']);
  return Number.isFinite(v) && v > 0 ? v : 600;
}

/**
 * How long a job's waiting coordinators are kept without a new one: a coordinator that never comes
 * back for its results holds a result in Redis that long at most (`siamese queue clean` at once).
 */
const WAITERS_TTL_S = 7 * 24 * 3600;

/**
 * BullMQ's own script for removing a job (the one Job.remove runs; answers 1 removed, 0 locked by
 * a worker), with the inputs WITHDRAW_SCRIPT passes it, as its header lists them (read when a
 * coordinator first opens, as bullmqScripts.ts says).
 */
const REMOVE_JOB_INPUTS = ['KEYS[1] jobKey', 'KEYS[2] repeat key', 'ARGV[1] jobId', 'ARGV[2] remove children', 'ARGV[3] queue prefix'];

let withdrawScript: string | undefined;

/** WITHDRAW_SCRIPT with BullMQ's removal in it (DataError when the installed BullMQ has it otherwise). */
export function withdrawScriptText(): string {
  withdrawScript ??= WITHDRAW_SCRIPT.replace('$REMOVE_JOB', () => bullmqScript('removeJob', 2, REMOVE_JOB_INPUTS, "the queue's coordinator"));
  return withdrawScript;
}

/**
 * Leave a job: this coordinator (ARGV[4]) leaves the job's waiting coordinators (KEYS[3]), and the
 * job leaves Redis if no other coordinator waits for it, by BullMQ's own removal (KEYS[1..2],
 * ARGV[1..3]; $REMOVE_JOB: withdrawScriptText), in one step: a coordinator that joins the job
 * (submit: it says it waits, then enqueues) either comes before, and the job stays for it, or
 * after, and finds no job and enqueues it anew. Before, the count and the removal were two round
 * trips apart, and a coordinator that joined in between lost the job from under it (it enqueued
 * it again: trained twice). A job a worker holds at that moment (locked: taken again after a
 * refusal) cannot be removed: this coordinator still waits for it then (ARGV[5]: the set's
 * lifetime). Answers {coordinators still waiting, BullMQ's answer (1 removed, 0 locked) or -1
 * when not tried}.
 * About 13 KB with BullMQ's script: defined once per connection (ioredis defineCommand), so that each call sends its hash only.
 */
export const WITHDRAW_SCRIPT = `
local function removeJob()
$REMOVE_JOB
end
redis.call('SREM', KEYS[3], ARGV[4])
local left = redis.call('SCARD', KEYS[3])
if left > 0 then return {left, -1} end
local removed = removeJob()
if removed ~= 1 then
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return {left, removed}`;

type WithdrawCommand = (jobKey: string, repeatKey: string, waiters: string, id: string, children: string, prefix: string, owner: string, ttl: string) => Promise<[number, number]>;

/** Retries of a job that crashed (BullMQ's attempts); a job's own failure is never retried. */
const ATTEMPTS = 3;

export class QueueExecutor implements Executor {
  private readonly pending = new Map<string, Pending>();
  private readonly slots: (string | null)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** whether this grid is in the registry of grids (GRIDS_KEY) that workers serve */
  private registered = false;
  /** the last sign that some worker runs this grid's jobs: progress, a result, a failure */
  private lastProgress = Date.now();

  private constructor(
    private readonly opts: QueueExecutorOptions,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly redis: Redis,
    readonly display: string,
    private readonly owner: string,
  ) {}

  /**
   * Connect (one clear line if that fails) and listen to the grid's events. The grid is registered
   * for the workers with its first job, so that a plan refused by check() leaves none behind.
   */
  static async open(opts: QueueExecutorOptions): Promise<QueueExecutor> {
    const { connection, display } = parseQueueUrl(opts.url);
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(opts.name)) throw new UsageError(`--queue-name must be 1-100 letters, digits, ".", "_" or "-", got "${opts.name}"`);
    const withdrawLua = withdrawScriptText();
    const redis = new Redis({ ...(connection as object), lazyConnect: true });
    redis.on('error', () => {});
    await connectOrExplain(redis, display);
    redis.defineCommand('siameseWithdraw', { numberOfKeys: 3, lua: withdrawLua });
    const queue = new Queue(opts.name, { connection, prefix: KEY_PREFIX });
    const events = new QueueEvents(opts.name, { connection, prefix: KEY_PREFIX });
    queue.on('error', () => {});
    events.on('error', () => {});
    await events.waitUntilReady();
    const ex = new QueueExecutor(opts, queue, events, redis, display, opts.owner ?? `${hostname()}:${process.pid}`);
    ex.listen();
    return ex;
  }

  get name(): string {
    return this.opts.name;
  }

  /**
   * Refuse (UsageError, one line naming the job) a plan holding a job the queue cannot carry
   * (toQueueJob: its files, or its result's bound, over MAX_JOB_BYTES), before any of its jobs is
   * enqueued or the grid registered.
   */
  check(jobs: readonly { label: string; req: JobRequest }[]): void {
    for (const { label, req } of jobs) {
      try {
        toQueueJob(req, this.opts.data, this.opts.shape);
      } catch (e) {
        if (e instanceof UsageError) throw new UsageError(`${label}: ${e.message}`);
        throw e;
      }
    }
  }

  run(req: JobRequest, cb: ExecutorCallbacks = {}): Promise<JobResult> {
    if (this.stopping) return Promise.resolve({ status: 'interrupted' });
    let data: QueueJobData;
    try {
      data = toQueueJob(req, this.opts.data, this.opts.shape);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const id = jobId(data);
    return new Promise<JobResult>((resolve, reject) => {
      const p: Pending = { id, req, data, cb, resolve, reject };
      this.pending.set(id, p);
      void this.submit(p).catch((e: Error) => this.finish(p, e));
    });
  }

  requestStop(): void {
    // the fleet goes on with the jobs; a later run of the same command collects their results
    this.stopping = true;
    for (const p of [...this.pending.values()]) this.finish(p, { status: 'interrupted' });
  }

  async close(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    for (const p of [...this.pending.values()]) this.finish(p, new Error('the queue executor was closed'));
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.redis.disconnect();
  }

  /**
   * Before a run folder is read (compare's and sweep's plans): a result this coordinator's grid
   * put in place there whose job a crash left in Redis (the set's commit record still names it,
   * collect) is removed from Redis now; the folder's files are only completed where the crash
   * stopped moving them, never written again, and the record goes.
   */
  async settle(runDir: string): Promise<void> {
    await this.settleSet(runDir);
  }

  /**
   * The same for a lone file a job wrote (a distance sample, a t-SNE layout: `path`), before it
   * is read: a decided write is completed and its job dropped from Redis, an undecided one undone
   * (the job, still in Redis, is collected again when the plan asks for the file).
   */
  async settleFile(path: string): Promise<void> {
    const dir = dirname(path);
    const staging = singleFileStaging(basename(path));
    if (!existsSync(join(dir, staging))) return;
    await this.settleSet(dir, staging);
    closeFileSet(dir, staging);
  }

  private async settleSet(dir: string, staging?: string): Promise<void> {
    const id = placedSetTag(dir, staging);
    if (id === undefined) return;
    const job = await this.queue.getJob(id);
    // the same id is the same result (payload.ts, jobId); a job in any other state is not ours to drop
    if (job && (await job.getState()) === 'completed') await this.release(job);
    closeFileSet(dir, staging);
  }

  /**
   * This coordinator has the job's result: it stops waiting for it, and the result leaves Redis
   * unless another coordinator of the grid still waits for it (it enqueued the same job: two
   * output folders of one grid; one of them interrupted: for its next run). Before, the first to
   * collect removed it, and the other, finding it gone, enqueued it again: trained twice.
   * Throws when Redis keeps the job (the commit record then stays, for the next run to settle).
   */
  private async release(job: Job): Promise<void> {
    const { left, removed } = await this.withdraw(job.id!);
    if (left === 0 && removed !== 1) throw new Error(`job ${job.id} could not be removed from Redis`);
  }

  /**
   * Stop waiting for a job (WITHDRAW_SCRIPT): how many other coordinators still wait for it (then
   * it stays), and, when none does, whether it left Redis (1) or a worker holds it (0).
   */
  private async withdraw(id: string): Promise<{ left: number; removed: number }> {
    await queueHooks.beforeWithdraw?.(id);
    const withdraw = (this.redis as unknown as { siameseWithdraw: WithdrawCommand }).siameseWithdraw.bind(this.redis);
    const answer = await withdraw(this.queue.toKey(id), this.queue.toKey('repeat'), waitersKey(this.opts.name, id), id, '0', this.queue.toKey(''), this.owner, String(WAITERS_TTL_S));
    const [left, removed] = answer.map(Number) as [number, number];
    queueHooks.afterWithdraw?.(id, left, removed);
    return { left, removed };
  }

  private async submit(p: Pending): Promise<void> {
    if (!this.registered) {
      await this.redis.sadd(GRIDS_KEY, this.opts.name);
      this.registered = true;
    }
    // waiting for its result before it can exist: a result is only removed once no one waits (release)
    const key = waitersKey(this.opts.name, p.id);
    await this.redis.multi().sadd(key, this.owner).expire(key, WAITERS_TTL_S).exec();
    const job = await this.queue.add(p.data.type, p.data, {
      jobId: p.id,
      attempts: ATTEMPTS,
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
    // the same id was enqueued before (an earlier coordinator): it may be finished already
    const state = await job.getState();
    if (state === 'completed') await this.collect(p);
    else if (state === 'failed') {
      // it failed in an earlier run (one failing in this run is finished then, never submitted
      // again): tried again, with its attempts afresh, as the local pool trains a failed run
      // again, for its cause may be gone (the worker's data installed, a crash); no stale
      // failure code (payload.ts) left to give a later failure the old one's class
      await job.updateProgress(0);
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    }
  }

  private listen(): void {
    this.events.on('active', ({ jobId: id }) => {
      const p = this.pending.get(id);
      if (!p || p.slot !== undefined) return;
      let slot = this.slots.indexOf(null);
      if (slot < 0) slot = this.slots.push(null) - 1;
      this.slots[slot] = id;
      p.slot = slot;
      p.cb.onStart?.(slot);
    });
    // back on the queue after a worker took it (refused, put back by a stopped worker, or taken
    // from a dead one): it runs nowhere until a worker takes it again ('active')
    const requeued = ({ jobId: id }: { jobId: string }): void => {
      const p = this.pending.get(id);
      if (p) this.leaveSlot(p);
    };
    this.events.on('waiting', requeued);
    this.events.on('delayed', requeued);
    this.events.on('progress', ({ jobId: id, data }) => {
      const p = this.pending.get(id);
      const refusal = refusalOf(data);
      if (refusal) {
        if (p) this.noteRefusal(p, refusal);
        return;
      }
      const take = takeOf(data);
      if ((data as { type?: unknown } | null)?.type === 'taken') {
        // a worker took the job: from now on only its reports count
        if (p && take !== undefined) p.take = take;
        return;
      }
      if (!isEvent(data)) return;
      if (p && take !== undefined) {
        // a report of another take: a former holder's, which lost the job's lock
        if (p.take !== undefined && p.take !== take) return;
        p.take = take;
      }
      this.madeProgress(p);
      if (p && p.slot !== undefined) {
        const { take: _take, ...event } = data as JobEvent & { take?: string };
        p.cb.onEvent?.(event as JobEvent, p.slot);
      }
    });
    this.events.on('completed', ({ jobId: id }) => {
      this.madeProgress(undefined);
      const p = this.pending.get(id);
      if (p) void this.collect(p).catch((e: Error) => this.finish(p, e));
    });
    this.events.on('failed', ({ jobId: id }) => {
      // a worker ran it (and it failed, or crashed): the grid's jobs can be run
      this.madeProgress(undefined);
      const p = this.pending.get(id);
      if (p) void this.checkFailed(p);
    });
    this.timer = setInterval(() => void this.reconcile(), 2000);
  }

  private madeProgress(p: Pending | undefined): void {
    this.lastProgress = Date.now();
    if (p) p.refused = undefined;
  }

  private noteRefusal(p: Pending, r: { worker: string; reason: string }): void {
    p.refused = { worker: r.worker, reason: r.reason, since: p.refused?.since ?? Date.now() };
    // a refused job runs nowhere: free the slot its 'active' event took
    this.leaveSlot(p);
  }

  /** A job that a worker took and put back (or lost) waits again: its slot is freed, and said so. */
  private leaveSlot(p: Pending): void {
    const slot = p.slot;
    if (slot === undefined) return;
    this.slots[slot] = null;
    p.slot = undefined;
    p.cb.onRequeue?.(slot);
  }

  /**
   * A job refused by the workers that tried it, while no job of the grid made progress for
   * unrunnableSeconds: no worker can run it. Reported (one line: the seconds, the last worker and
   * its reason) for this coordinator, which stops waiting for it; taken off the queue, where the
   * refusing workers would only put it back, unless another coordinator of the grid still waits
   * for it (it decides for itself, by its own limit; the last to give up removes the job). Before,
   * the first to give up removed it from under the others. A job a worker holds at that moment
   * cannot be removed: decided again at the next round (it is back, refused, or it runs).
   */
  private async checkRefused(p: Pending): Promise<void> {
    const limit = 1000 * (this.opts.unrunnableSeconds ?? defaultUnrunnableSeconds());
    if (!p.refused || Date.now() - Math.max(p.refused.since, this.lastProgress) < limit) return;
    const { worker, reason } = p.refused;
    const { left, removed } = await this.withdraw(p.id);
    if (left === 0 && removed !== 1) return;
    const others = left > 0 ? ` (the job stays queued: ${left} other coordinator${left === 1 ? '' : 's'} wait${left === 1 ? 's' : ''} for it)` : '';
    this.finish(
      p,
      new DataError(`no worker could run it for ${Math.round(limit / 1000)} s (the last to try, worker ${worker}: ${reason}); start a worker that has what it needs${others}`),
    );
  }

  /** A failed event may be one attempt of several: only a job in the failed set has failed. */
  private async checkFailed(p: Pending): Promise<void> {
    try {
      const job = await this.queue.getJob(p.id);
      if (job && (await job.getState()) === 'failed') this.finish(p, failure(job));
    } catch {
      // Redis away: the next reconcile round decides
    }
  }

  /** Every pending job, every 2 s: collect what finished, fail what failed, enqueue what was lost. */
  private async reconcile(): Promise<void> {
    if (this.stopping || this.pending.size === 0) return;
    let lost = 0;
    try {
      await this.redis.sadd(GRIDS_KEY, this.opts.name); // Redis may have restarted empty
      for (const p of [...this.pending.values()]) {
        if (p.collecting) continue;
        const state = await this.queue.getJobState(p.id);
        if (state === 'delayed' || state === 'waiting') {
          // a refusal whose event was lost (the coordinator away) is in the job's progress
          if (!p.refused && state === 'delayed') {
            const r = refusalOf((await this.queue.getJob(p.id))?.progress);
            if (r) this.noteRefusal(p, r);
          }
          await this.checkRefused(p);
        } else if (state === 'completed') await this.collect(p);
        else if (state === 'failed') await this.checkFailed(p);
        else if (state === 'unknown') {
          lost++;
          await this.submit(p);
        }
      }
    } catch {
      return; // Redis away: try again in 2 s
    }
    if (lost > 0) this.opts.log?.(`queue ${this.opts.name}: ${lost} job${lost === 1 ? '' : 's'} lost by Redis, enqueued again`);
  }

  /** Write a finished job's files (manifest last), then drop the result from Redis. */
  private async collect(p: Pending): Promise<void> {
    if (p.collecting || !this.pending.has(p.id)) return;
    p.collecting = true;
    try {
      const job: Job | undefined = await this.queue.getJob(p.id);
      const r = job?.returnvalue as QueueJobResult | undefined;
      if (!job || !r || r.status !== 'finished') {
        p.collecting = false;
        return;
      }
      const paths = outputPaths(p.req);
      const files = checkBundle(r.files, Object.keys(paths));
      const names = Object.keys(files);
      const dirs = new Set(names.map((n) => dirname(paths[n]!)));
      /** the set written (a run folder's, or a lone file's): its receipt names the job until the job has left Redis (settle) */
      let receipt: { dir: string; staging?: string } | undefined;
      if (names.length > 1 && dirs.size === 1 && names.every((n) => basename(paths[n]!) === n)) {
        // a run folder: its files together, or a resumed run's new checkpoint could sit beside
        // its old manifest after a crash, and the run could not be resumed again
        const bytes = Object.fromEntries(names.map((n) => [n, Buffer.from(files[n]!, 'base64')]));
        receipt = { dir: [...dirs][0]! };
        await writeFileSet(receipt.dir, bytes, ['manifest.json'], collectCrashHook, p.id);
      } else if (names.length === 1) {
        // a lone file (a distance sample, a t-SNE layout): a set of one, staged beside it, so that
        // a crash after it is in place leaves the job's id for the next run to settle
        const path = paths[names[0]!]!;
        receipt = { dir: dirname(path), staging: singleFileStaging(basename(path)) };
        await writeFileSet(receipt.dir, { [basename(path)]: Buffer.from(files[names[0]!]!, 'base64') }, [], collectCrashHook, p.id, receipt.staging);
      } else {
        for (const n of names) {
          mkdirSync(dirname(paths[n]!), { recursive: true });
          await writeFileAtomic(paths[n]!, Buffer.from(files[n]!, 'base64'));
        }
      }
      collectCrashHook?.();
      const removed = await this.release(job).then(
        () => true,
        () => false,
      );
      if (receipt !== undefined) {
        collectCrashHook?.();
        // a job Redis did not let go: the receipt stays, for the next run to settle
        if (removed) closeFileSet(receipt.dir, receipt.staging);
      }
      this.finish(p, { status: 'finished', ...(r.epochs !== undefined ? { epochs: r.epochs } : {}), ...(typeof r.worker === 'string' ? { worker: r.worker.slice(0, 200) } : {}) });
    } catch (e) {
      p.collecting = false;
      throw e;
    }
  }

  private finish(p: Pending, outcome: JobResult | Error): void {
    if (!this.pending.delete(p.id)) return;
    if (p.slot !== undefined) this.slots[p.slot] = null;
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
  }
}

/** The coordinator of an output folder, whichever run of the command it is (QueueExecutorOptions.owner). */
export function folderOwner(out: string): string {
  return `${hostname()}:${resolve(out)}`;
}

/**
 * Refuse (UsageError, one line) a run whose embeddings.bin the queue could not carry
 * (payload.ts, MAX_EMBEDDINGS_BYTES): compare and sweep check their runs before they start.
 */
export function queueableEmbeddings(snapshotPoints: number, config: Pick<TrainConfig, 'embeddingDim' | 'epochs'>): void {
  const over = embeddingsOverLimit(snapshotPoints, config.embeddingDim, config.epochs);
  if (over) throw new UsageError(over);
}

function isEvent(v: unknown): v is JobEvent {
  return typeof v === 'object' && v !== null && ['batch', 'epoch', 'tsne'].includes((v as { type?: string }).type ?? '');
}

/**
 * A failed job as the coordinator's error: the first line of its reason, as the class the
 * worker's error had (the code the worker left in the job's progress, payload.ts); a plain Error
 * when there is none (a crash, retries exhausted).
 */
export function failure(job: { failedReason?: string; progress?: unknown }): Error {
  const m = (job.failedReason || 'the job failed on a worker').split('\n')[0]!;
  return errorFromCode(failureCode(job.progress), m);
}
