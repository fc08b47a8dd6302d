/**
 * `siamese worker --queue URL`: a member of the fleet. It serves every grid a coordinator
 * registers (or the one named with --queue-name), takes jobs from BullMQ, runs them on its own pool
 * of worker threads (pool.ts), so that training never blocks the event loop that renews BullMQ's
 * job locks, and sends back the files they wrote.
 *
 * After each epoch a training's files go to Redis under the job's id: the ones rewritten every
 * epoch (checkpoint, weights, manifest, log, distances.jsonl, initial weights: about 2.1 MB for
 * the seed's MLP) whole, embeddings.bin by its new bytes (264 KB an epoch for 2,000 images;
 * TakeoverStore).
 * A worker that dies mid-run loses its lock; BullMQ's stalled-job check hands the job to another
 * worker, which restores those files and resumes: the run folder ends as an uninterrupted run's,
 * bit for bit (weights, per-epoch distances and embeddings of every epoch).
 *
 * A job that fails by itself (a diverging loss, a bad config, a result that could not come
 * back: resultSize.ts, checked before it trains)
 * fails once, for good; anything else (a crash, a lost connection) is retried. A job whose worker
 * is stopped (SIGINT, SIGTERM) goes back to the queue without spending an attempt.
 *
 * A job this worker cannot run for a reason of its own (its data set missing or different, the
 * native engine required but not built here, its disk full) is not the job's fault: it goes back
 * to the queue (delayed a moment) without spending an attempt, for another worker; the refusal is
 * left in the job's progress for the coordinator (payload.ts, QueueJobRefusal), and this worker
 * leaves that grid alone for a while (--backoff-seconds), saying so in one line.
 *
 * A worker that learns it lost a job's lock (it was stopped or cut off longer than the lock, and
 * the stalled-job check handed the job on: BullMQ's lockRenewalFailed) stops that training at its
 * next batch, says so in one line, and sends nothing more for it: no progress, no saved epoch, no
 * result. Every report it sends goes through a script that checks the lock first (progressScriptText),
 * so a worker that has not learnt it yet cannot mix its reports with the new holder's either; and
 * each report names the take it belongs to (a new one each time a worker takes the job, which
 * first resets the job's progress), for the coordinator to ignore a former holder's.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { bullmqScript } from './bullmqScripts.ts';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DelayedError, type Job, QueueKeys, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Dataset } from '../../data/dataset.ts';
import { loadDataset } from '../../data/registry.ts';
import { DataError, type ErrorCode, errorCode, machineFault, SiameseError, UsageError } from '../../errors.ts';
import { EMBEDDINGS_FILE } from '../../train/epochEmbeddings.ts';
import { shapeDifference, shapeText } from '../../train/runDir.ts';
import { DISTANCES_FILE, type JobEvent, type JobRequest, type JobResult, RESUME_FILES, SNAPSHOT_FILES } from '../jobs.ts';
import { WorkerPool } from '../pool.ts';
import { KEY_PREFIX, parseQueueUrl } from './connection.ts';
import { type Bundle, checkBundle, MAX_EMBEDDINGS_BYTES, MAX_JOB_BYTES, QUEUE_FILES, type QueueJobData, type QueueJobFailure, type QueueJobRefusal, type QueueJobResult, type QueueJobTaken, readFiles, validateJob } from './payload.ts';
import { resultOverLimit } from './resultSize.ts';
import { checkpointKey, embeddingsKey, GRIDS_KEY, sleepCountKey } from './keys.ts';

export interface QueueWorkerOptions {
  url: string;
  /** serve this grid only; default: every grid a coordinator registers */
  queueName?: string;
  /** jobs at a time (default 1) */
  concurrency?: number;
  /** native engine threads per training (default, or 0: cores / concurrency, at least 1) */
  threads?: number;
  /** seconds a job's lock lasts without renewal before another worker may take it (default 30) */
  lockSeconds?: number;
  /** one line per event (started, finished, failed) */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** read every job's data set from this folder instead of the coordinator's path */
  dataDir?: string;
  /** seconds this worker leaves a grid alone after a job of it that it cannot run (default 30) */
  backoffSeconds?: number;
}

/** How long a refused job waits before a worker may take it again. */
const REFUSED_DELAY_MS = 1000;

/** A reason this worker cannot run a job that another worker could: not the job's fault. */
class LocalError extends Error {}

/** The job's lock is no longer this worker's: it ends without a word to Redis (BullMQ's own completion or failure is refused there). */
class LockLostError extends Error {}

/**
 * BullMQ's own script for a job's progress (the one Job.updateProgress runs: KEYS job key, events
 * stream, meta; ARGV job id, progress JSON; answers 0 sent, -1 no such job), with the inputs the
 * worker's progress script passes it, as its header lists them (read as bullmqScripts.ts says).
 */
const UPDATE_PROGRESS_INPUTS = ['KEYS[1] Job id key', 'KEYS[2] event stream key', 'KEYS[3] meta key', 'ARGV[1] id', 'ARGV[2] progress'];

let progressScript: string | undefined;

/**
 * A job's progress, sent only while this worker holds the job's lock (KEYS[4] holds ARGV[3]):
 * a worker that lost it (the job handed on while it was stopped or cut off) must not mix its
 * reports with the new holder's. Answers BullMQ's (0 sent, -1 no job), or -2: the lock is not ours.
 * Defined once per connection (ioredis defineCommand): its hash travels, not its text.
 * DataError when the installed BullMQ has its progress script otherwise.
 */
export function progressScriptText(): string {
  progressScript ??= `
local function updateProgress()
${bullmqScript('updateProgress', 3, UPDATE_PROGRESS_INPUTS, "the queue's worker")}
end
if redis.call('GET', KEYS[4]) ~= ARGV[3] then return -2 end
return updateProgress()`;
  return progressScript;
}

type ProgressCommand = (jobKey: string, events: string, meta: string, lock: string, id: string, progress: string, token: string) => Promise<number>;


export const WORKER_ID = `${hostname()}:${process.pid}`;

/** Serve until the signal aborts; then stop the running jobs (they go back to the queue) and return. */
export async function runQueueWorker(opts: QueueWorkerOptions): Promise<void> {
  const { connection, display } = parseQueueUrl(opts.url);
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`--concurrency must be an integer from 1 to 64, got ${concurrency}`);
  const progressLua = progressScriptText();
  const redis = new Redis({ ...(connection as object), lazyConnect: true });
  redis.on('error', () => {}); // reconnects by itself; the first connect below reports
  await connectOrExplain(redis, display);
  redis.defineCommand('siameseProgress', { numberOfKeys: 4, lua: progressLua });
  const progressCommand = (redis as unknown as { siameseProgress: ProgressCommand }).siameseProgress.bind(redis);
  const bullKeys = new QueueKeys(KEY_PREFIX);

  const pool = new WorkerPool(concurrency);
  const datasets = new Map<string, Promise<Dataset>>();
  const workers = new Map<string, Worker>();
  const lockMs = Math.round(1000 * (opts.lockSeconds ?? 30));
  const backoffMs = Math.round(1000 * (opts.backoffSeconds ?? 30));
  const dataDir = opts.dataDir === undefined ? undefined : resolve(opts.dataDir);
  /** grids this worker left alone after a job it could not run: until when */
  const leftUntil = new Map<string, number>();
  const closing = new Set<Promise<void>>();

  const serve = (name: string): void => {
    if (workers.has(name) || (leftUntil.get(name) ?? 0) > Date.now()) return;
    // three parameters: BullMQ then hands each job an AbortSignal, aborted by cancelJob (below)
    const w = new Worker(name, (job: Job, token?: string, signal?: AbortSignal) => processJob(job, name, token, signal), {
      connection,
      prefix: KEY_PREFIX,
      concurrency,
      name: WORKER_ID,
      lockDuration: lockMs,
      stalledInterval: Math.max(1000, Math.round(lockMs / 2)),
      // a job whose worker died is handed on up to 3 times
      maxStalledCount: 3,
    });
    w.on('error', () => {}); // connection errors: ioredis reconnects, BullMQ resumes
    // Redis refused to extend these jobs' locks: they are another worker's now, or soon
    w.on('lockRenewalFailed', (ids: string[]) => {
      for (const id of ids) w.cancelJob(id, 'lock lost');
    });
    w.on('completed', (job: Job) => {
      if ((job.data as { type?: string } | undefined)?.type === 'train') void redis.del(checkpointKey(name, job.id!), embeddingsKey(name, job.id!)).catch(() => {});
    });
    workers.set(name, w);
    log(`worker ${WORKER_ID}: serving grid ${name}`);
  };

  /**
   * Send `progress` for a job this worker holds (progressScriptText): 0 sent, -1 no such job, -2 its
   * lock is not ours, -3 not sent (Redis away for a moment: the report is lost, not the job).
   */
  const sendProgress = async (job: Job, queueName: string, token: string | undefined, progress: object): Promise<number> => {
    if (token === undefined) return -3;
    try {
      const jobKey = bullKeys.toKey(queueName, job.id!);
      const keys = bullKeys.getKeys(queueName);
      return Number(await progressCommand(jobKey, keys['events']!, keys['meta']!, `${jobKey}:lock`, job.id!, JSON.stringify(progress), token));
    } catch {
      return -3;
    }
  };

  const processJob = async (job: Job, queueName: string, token: string | undefined, signal?: AbortSignal): Promise<QueueJobResult> => {
    // aborted when this worker learns the job's lock is no longer its own: BullMQ's signal
    // (lockRenewalFailed, above), or a report Redis refused for the lock (sendProgress)
    const lost = new AbortController();
    const onLost = (): void => lost.abort(new LockLostError('lock lost'));
    if (signal?.aborted) onLost();
    signal?.addEventListener('abort', onLost, { once: true });
    lost.signal.addEventListener('abort', () => log(`worker ${WORKER_ID}: ${job.id} lost its lock (this worker was stopped or cut off longer than the lock, and the job went back to the queue): stopped, nothing more sent for it`), { once: true });
    // a new take: the job's progress starts again, named by it (payload.ts, QueueJobTaken)
    const take = `${WORKER_ID}/${randomUUID()}`;
    let over = false;
    const report = async (progress: object): Promise<boolean> => {
      if (lost.signal.aborted) return false;
      const r = await sendProgress(job, queueName, token, progress);
      // refused for the lock: the job is another's (unless it has just ended here: a late report)
      if (r === -2 && !over) onLost();
      return r === 0;
    };
    try {
      const taken: QueueJobTaken = { type: 'taken', worker: WORKER_ID, take };
      await report(taken);
      if (lost.signal.aborted) throw new LockLostError('lock lost');
      return await processTaken(job, queueName, token, lost.signal, take, report);
    } catch (e) {
      // the job is another's (or back on the queue): BullMQ's failure, refused by Redis, spends nothing
      if (lost.signal.aborted) throw new LockLostError(`worker ${WORKER_ID}: lost the lock of ${job.id}`);
      throw e;
    } finally {
      over = true;
      signal?.removeEventListener('abort', onLost);
    }
  };

  const processTaken = async (job: Job, queueName: string, token: string | undefined, lost: AbortSignal, take: string, report: (progress: object) => Promise<boolean>): Promise<QueueJobResult> => {
    let data: QueueJobData;
    try {
      data = validateJob(job.data);
    } catch (e) {
      // a config the worker refuses is a usage error; anything else wrong with the job, data
      await failWith(report, errorCode(e) ?? 'data');
      throw new UnrecoverableError(`worker ${WORKER_ID}: bad job: ${(e as Error).message}`);
    }
    if (data.type === 'sleep') {
      await new Promise((r) => setTimeout(r, data.ms));
      // count executions per tag, so that a load test can see a job run twice
      await redis.hincrby(sleepCountKey(queueName), data.tag, 1);
      return { status: 'finished', files: {}, worker: WORKER_ID };
    }
    log(`worker ${WORKER_ID}: ${job.id} started (${data.type}${'config' in data ? `, ${data.config.loss}, seed ${data.config.seed}` : ''})`);
    const dir = mkdtempSync(join(tmpdir(), 'siamese-job-'));
    try {
      const ds = await checkData(data, datasets, dataDir);
      // its own bound of the result, before any training: a result over the limit would be refused
      // by the coordinator after the work (a coordinator without the check, or a hand-made job)
      if (data.type === 'train') {
        const over = resultOverLimit(data, { classes: ds.classes.length, testImages: ds.test.labels.length }, MAX_JOB_BYTES);
        if (over) throw new UsageError(over);
      }
      const result = await runLocally(job, queueName, data, dir, token, lost, take, report);
      log(`worker ${WORKER_ID}: ${job.id} finished`);
      return result;
    } catch (e) {
      if (lost.aborted) throw e;
      if (e instanceof WaitingError) {
        log(`worker ${WORKER_ID}: ${job.id} stopped, back on the queue`);
        throw e;
      }
      const message = e instanceof Error ? (e.message.split('\n')[0] ?? '').trim() : String(e);
      const own = localReason(e, message);
      if (own !== undefined) return refuse(job, queueName, token, own, report);
      log(`worker ${WORKER_ID}: ${job.id} failed: ${message}`);
      // the job's own fault: retrying elsewhere would fail the same way
      if (e instanceof SiameseError) {
        const code = errorCode(e);
        if (code) await failWith(report, code);
        throw new UnrecoverableError(`worker ${WORKER_ID}: ${message}`);
      }
      throw new Error(`worker ${WORKER_ID}: ${message}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  /**
   * A job this worker cannot run (localReason): back to the queue for another worker, no attempt
   * spent, the reason in its progress for the coordinator; this grid left alone for a while.
   */
  const refuse = async (job: Job, queueName: string, token: string | undefined, reason: string, report: (progress: object) => Promise<boolean>): Promise<never> => {
    const refusal: QueueJobRefusal = { type: 'refused', worker: WORKER_ID, reason };
    await report(refusal);
    try {
      if (token === undefined) throw new Error('no lock token');
      await job.moveToDelayed(Date.now() + REFUSED_DELAY_MS, token);
    } catch {
      // Redis did not take the move: a plain failure, an attempt spent, retried elsewhere
      throw new Error(`worker ${WORKER_ID}: ${reason}`);
    }
    log(`worker ${WORKER_ID}: cannot run ${job.id}: ${reason}; left to other workers, grid ${queueName} left alone for ${backoffMs / 1000} s`);
    leftUntil.set(queueName, Date.now() + backoffMs);
    const w = workers.get(queueName);
    if (w) {
      workers.delete(queueName);
      // not awaited here: closing waits for this very job, which ends with the throw below
      const c = w.close().catch(() => {});
      closing.add(c);
      void c.then(() => closing.delete(c));
    }
    throw new DelayedError();
  };

  const runLocally = async (
    job: Job,
    queueName: string,
    data: Exclude<QueueJobData, { type: 'sleep' }>,
    dir: string,
    token: string | undefined,
    lost: AbortSignal,
    take: string,
    report: (progress: object) => Promise<boolean>,
  ): Promise<QueueJobResult> => {
    // a job whose lock was lost stops at its next batch (the pool's signal); its result is never sent
    const ended = (r: JobResult): Promise<never> | undefined => {
      if (lost.aborted) throw new LockLostError('lock lost');
      return r.status === 'finished' ? undefined : backToQueue(job, token);
    };
    // the cores shared out between the jobs this worker runs at once (never oversubscribed)
    // 0, like train's "every core", means the default share: a job's training would otherwise get
    // one thread in its pool thread while its manifest said 0
    const threads = opts.threads || Math.max(1, Math.floor(availableParallelism() / (opts.concurrency ?? 1)));
    if (data.type === 'train') {
      const run = join(dir, 'run');
      mkdirSync(run);
      const key = checkpointKey(queueName, job.id!);
      const embKey = embeddingsKey(queueName, job.id!);
      const [stored, storedEmb] = await Promise.all([redis.getBuffer(key), redis.getBuffer(embKey)]);
      let resume = data.resume;
      if (stored) {
        // another worker trained this job before: continue from its last epoch, with the per-epoch
        // files of the epochs before (stored with that epoch's checkpoint, TakeoverStore)
        writeBundle(run, checkBundle(JSON.parse(stored.toString('utf8')), SNAPSHOT_FILES));
        if (storedEmb && storedEmb.length <= MAX_EMBEDDINGS_BYTES) writeFileSync(join(run, EMBEDDINGS_FILE), storedEmb);
        resume = true;
      } else if (data.resume) writeBundle(run, data.files);
      else writeFileSync(join(dir, QUEUE_FILES.reset), Buffer.from(data.files[QUEUE_FILES.reset]!, 'base64'));
      const req: JobRequest = {
        type: 'train',
        out: run,
        config: { ...data.config, threads },
        resetWeights: join(dir, QUEUE_FILES.reset),
        resume,
        retrieval: data.retrieval,
        distanceSample: data.distanceSample,
        snapshotPoints: data.snapshotPoints ?? 0,
        snapshot: true,
      };
      let lastProgress = 0;
      const store = new TakeoverStore(redis, key, embKey, join(run, EMBEDDINGS_FILE), token === undefined ? undefined : { key: `${bullKeys.toKey(queueName, job.id!)}:lock`, token });
      let r: JobResult;
      try {
        r = await pool.run(
          req,
          {
            onEvent: (ev) => {
              // nothing more of a job whose lock was lost: no saved epoch over the new holder's, no report
              if (lost.aborted) return;
              if (ev.type === 'snapshot') return store.save(ev);
              const now = performance.now();
              // every epoch, and a batch update at most once a second: Redis carries all of them
              if (ev.type === 'epoch' || now - lastProgress >= 1000) {
                lastProgress = now;
                void report({ ...ev, take });
              }
            },
          },
          lost,
        );
      } finally {
        // the last saves read the run folder, which goes once the job ends
        await store.flush();
      }
      await ended(r);
      const files = readFiles(run, [...RESUME_FILES, DISTANCES_FILE]);
      // the saved epochs stay until Redis holds the result ('completed', below): a completion it
      // refuses (a lost lock, a lost connection) puts the job back, to resume from them
      return { status: 'finished', epochs: r.epochs, files, worker: WORKER_ID };
    }
    if (data.type === 'distances') {
      const run = join(dir, 'run');
      mkdirSync(run);
      writeBundle(run, data.files);
      const r = await pool.run({ type: 'distances', runDir: run, distanceSample: data.distanceSample }, {}, lost);
      await ended(r);
      return { status: 'finished', files: readFiles(run, [DISTANCES_FILE]), worker: WORKER_ID };
    }
    writeBundle(dir, data.files);
    const out = join(dir, QUEUE_FILES.tsne);
    const r = await pool.run(
      {
        type: 'tsne',
        weights: join(dir, QUEUE_FILES.weights),
        config: { ...data.config, threads },
        indices: data.indices,
        params: data.params,
        out,
        key: data.key,
      },
      {},
      lost,
    );
    await ended(r);
    return { status: 'finished', files: { [QUEUE_FILES.tsne]: readFileSync(out).toString('base64') }, worker: WORKER_ID };
  };

  // grids: the one named, or every one a coordinator registers (looked up every 2 s)
  const discover = async (): Promise<void> => {
    if (opts.queueName) return serve(opts.queueName);
    try {
      for (const name of await redis.smembers(GRIDS_KEY)) serve(name);
    } catch {
      // Redis away for a moment: the next round finds the grids
    }
  };
  await discover();
  if (!opts.queueName) log(`worker ${WORKER_ID}: waiting for grids on ${display}`);
  const timer = setInterval(() => void discover(), 2000);

  await new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(timer);
  // running trainings save their last epoch and end as interrupted; their jobs go back to the queue
  pool.requestStop();
  await Promise.all([...workers.values()].map((w) => w.close()));
  await Promise.all([...closing]);
  await pool.close();
  redis.disconnect();
}

/**
 * A job this worker was stopped in the middle of (SIGINT, SIGTERM: its training saved its last
 * epoch, in Redis too) goes back to the queue without spending one of its attempts: a job is
 * failed for good after ATTEMPTS failures, and a fleet restarted three times over must not fail
 * its jobs. Where Redis does not take the move, a plain failure: retried, an attempt spent.
 */
async function backToQueue(job: Job, token: string | undefined): Promise<never> {
  try {
    if (token === undefined) throw new Error('no lock token');
    await job.moveToWait(token);
  } catch {
    throw new Error('the worker was stopped; the job goes back to the queue');
  }
  throw new WaitingError();
}

/**
 * Record the kind of the error that fails `job` for good (payload.ts, QueueJobFailure). When Redis
 * does not take it, the coordinator sees a plain failure with the same message.
 */
async function failWith(report: (progress: object) => Promise<boolean>, code: ErrorCode): Promise<void> {
  const failure: QueueJobFailure = { type: 'failure', code };
  await report(failure);
}

/**
 * The job's data must be this worker's data, byte for byte (checksums of images and labels), read
 * as images of the same shape where the job names one (the same bytes could be other images). A
 * data set this worker lacks or holds otherwise is a LocalError (another worker may have it); a
 * data set no worker knows (its name) is the job's fault. With `dir`, the data set is read there.
 */
async function checkData(data: Exclude<QueueJobData, { type: 'sleep' }>, cache: Map<string, Promise<Dataset>>, dir?: string): Promise<Dataset> {
  const asked = 'config' in data ? (data.config.data ?? { name: 'mnist' }) : { name: data.data.name };
  const spec = dir === undefined ? asked : { ...asked, dir };
  const k = JSON.stringify(spec);
  let p = cache.get(k);
  if (!p) {
    p = loadDataset(spec);
    cache.set(k, p);
    p.catch(() => cache.delete(k));
  }
  let ds: Dataset;
  try {
    ds = await p;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new LocalError(`cannot load its data set ${data.data.name}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (ds.train.checksum !== data.data.trainChecksum || ds.test.checksum !== data.data.testChecksum) {
    throw new LocalError(`its data set ${data.data.name} differs from the coordinator's (checksums of the images and labels); install the same data on this worker`);
  }
  const shape = shapeDifference(data.data.imageShape, ds);
  if (shape) {
    throw new LocalError(
      `its data set ${data.data.name} holds images of ${shapeText(shape.now)} pixels here, the coordinator's of ${shapeText(shape.was)} (the same bytes read as other images); install the same data on this worker`,
    );
  }
  return ds;
}

/**
 * Why this worker, not the job, is at fault (another worker may run it), or undefined: its data
 * (LocalError), or the machine's fault the error carries (errors.ts, machineFault: a full disk,
 * the native engine required but not built here), decided by type, never by the message's words.
 */
function localReason(e: unknown, message: string): string | undefined {
  if (e instanceof LocalError) return message;
  switch (machineFault(e)) {
    case 'disk-full':
      return `its disk is full (${message})`;
    case 'native-engine-missing':
      return message;
    default:
      return undefined;
  }
}

/** How long a job's takeover files stay in Redis without a new epoch. */
const TAKEOVER_TTL_S = 7 * 24 * 3600;

/**
 * Replace or extend a job's embeddings and set its bundle, atomically (a script runs alone in
 * Redis): Redis never holds one epoch's checkpoint beside another epoch's embeddings. Extending
 * (offset >= 0) happens only when the stored embeddings end exactly there; otherwise (Redis
 * restarted empty, the key expired) nothing is written and the script answers 0, and the caller
 * sends the whole file instead, so that a takeover never gets a file with a hole. With a lock
 * (ARGV[5] not empty), nothing is written unless the job's lock (KEYS[3]) holds it (answers -1):
 * a worker that lost the job must not overwrite its new holder's epochs.
 * KEYS: bundle, embeddings, lock. ARGV: bundle text, ttl, offset (-1: replace, -2: no embeddings), bytes, lock token.
 */
const SAVE_SCRIPT = `
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[5] then return -1 end
local offset = tonumber(ARGV[3])
if offset == -2 then
  redis.call('DEL', KEYS[2])
elseif offset < 0 then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[2])
else
  if redis.call('STRLEN', KEYS[2]) ~= offset then return 0 end
  redis.call('SETRANGE', KEYS[2], offset, ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`;

/**
 * A training's last epoch in Redis, for the worker that takes the job over: the files rewritten
 * every epoch as one JSON bundle (at most MAX_JOB_BYTES), and embeddings.bin, which only grows
 * (264 KB an epoch for 2,000 images of 128 dimensions), by its new bytes since the last save: a
 * 20-epoch run sends its 5.5 MB once, not 20 times over. The file is bounded (MAX_EMBEDDINGS_BYTES,
 * checked when the job is made and again when a worker reads it), so Redis holds at most that
 * per running job. Saves run one after another; a failed one (Redis away) is made up by the next,
 * which sends every byte since the last stored one. An epoch whose files exceed the bounds is not
 * stored: a takeover then resumes from the last epoch that was.
 */
export class TakeoverStore {
  private chain: Promise<void> = Promise.resolve();
  /** bytes of embeddings.bin that Redis holds from this worker; -1: none yet (the first save sends the whole file) */
  private stored = -1;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly embKey: string,
    private readonly embPath: string,
    /** the job's lock and this worker's token: saves are refused once the lock is another's */
    private readonly lock?: { key: string; token: string },
  ) {}

  private run(offset: number, text: string, bytes: Buffer | string): Promise<unknown> {
    return this.redis.eval(SAVE_SCRIPT, 3, this.key, this.embKey, this.lock?.key ?? this.key, text, TAKEOVER_TTL_S, offset, bytes, this.lock?.token ?? '');
  }

  save(ev: Extract<JobEvent, { type: 'snapshot' }>): void {
    this.chain = this.chain.then(() => this.write(ev)).catch(() => {});
  }

  flush(): Promise<void> {
    return this.chain;
  }

  private async write(ev: Extract<JobEvent, { type: 'snapshot' }>): Promise<void> {
    const bundle: Bundle = Object.fromEntries(Object.entries(ev.files).map(([n, b]) => [n, Buffer.from(b).toString('base64')]));
    const text = JSON.stringify(bundle);
    const size = ev.embeddingsBytes;
    if (text.length > MAX_JOB_BYTES || (size ?? 0) > MAX_EMBEDDINGS_BYTES) return;
    if (size === undefined) {
      // no embeddings (none asked for): none may be restored beside this epoch's checkpoint either
      await this.run(-2, text, '');
      return;
    }
    // the file's bytes up to `size` are final (it only grows while the job runs)
    if (this.stored >= 0 && this.stored <= size) {
      const tail = await readRange(this.embPath, this.stored, size - this.stored);
      const r = await this.run(this.stored, text, tail);
      if (r === -1) return; // the job is another's
      if (r === 1) {
        this.stored = size;
        return;
      }
    }
    this.stored = -1;
    if ((await this.run(-1, text, await readRange(this.embPath, 0, size))) === 1) this.stored = size;
  }
}

async function readRange(path: string, start: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const fh = await open(path, 'r');
  try {
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, start + got);
      if (bytesRead === 0) throw new Error(`${path} ends early`);
      got += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return buf;
}

function writeBundle(dir: string, files: Bundle): void {
  for (const [name, b64] of Object.entries(files)) writeFileSync(join(dir, name), Buffer.from(b64, 'base64'));
}

/** Connect once, or explain in one line why not (wrong password, nothing listening, ...). */
export async function connectOrExplain(redis: Redis, display: string): Promise<void> {
  // ioredis reports an authentication failure as an 'error' event, then "Connection is closed"
  const seen: string[] = [];
  const onError = (e: Error): void => void seen.push(e.message);
  redis.on('error', onError);
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000)),
    ]);
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    const all = [...seen, (e as Error).message].join('\n');
    const why = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(all)
      ? 'the password was refused'
      : /ECONNREFUSED/.test(all)
        ? 'nothing listens there'
        : // the first real cause (a certificate refused, a host not found) beats "Connection is closed"
          ([...seen, (e as Error).message].find((m) => !/Connection is closed/i.test(m)) ?? (e as Error).message).split('\n')[0];
    throw new UsageError(`cannot connect to the queue at ${display}: ${why}`);
  } finally {
    redis.off('error', onError);
  }
}
