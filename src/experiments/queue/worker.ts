/**
 * `siamese worker --queue URL`: a member of the fleet. It serves every grid a coordinator
 * registers (or the one named with --queue-name), takes jobs from BullMQ, runs them on its own pool
 * of worker threads (pool.ts), so that training never blocks the event loop that renews BullMQ's
 * job locks, and sends back the files they wrote.
 *
 * After each epoch a training's files (checkpoint, manifest, log, initial weights: about 1.6 MB
 * for the seed's MLP) go to Redis under the job's id. A worker that dies mid-run loses its lock;
 * BullMQ's stalled-job check hands the job to another worker, which restores those files and
 * resumes: the final weights are those of an uninterrupted run, bit for bit.
 *
 * A job that fails by itself (a diverging loss, a bad config, data that differ from the
 * coordinator's) fails once, for good; anything else (a crash, a lost connection) is retried.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Dataset } from '../../data/dataset.ts';
import { loadDataset } from '../../data/registry.ts';
import { DataError, type ErrorCode, errorCode, SiameseError, UsageError } from '../../errors.ts';
import { RUN_FILES } from '../../train/runDir.ts';
import { DISTANCES_FILE, type JobRequest } from '../jobs.ts';
import { WorkerPool } from '../pool.ts';
import { KEY_PREFIX, parseQueueUrl } from './connection.ts';
import { type Bundle, checkBundle, MAX_JOB_BYTES, QUEUE_FILES, type QueueJobData, type QueueJobFailure, type QueueJobResult, readFiles, validateJob } from './payload.ts';
import { checkpointKey, GRIDS_KEY, sleepCountKey } from './keys.ts';

export interface QueueWorkerOptions {
  url: string;
  /** serve this grid only; default: every grid a coordinator registers */
  queueName?: string;
  /** jobs at a time (default 1) */
  concurrency?: number;
  /** native engine threads per training (default: cores / concurrency) */
  threads?: number;
  /** seconds a job's lock lasts without renewal before another worker may take it (default 30) */
  lockSeconds?: number;
  /** one line per event (started, finished, failed) */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const WORKER_ID = `${hostname()}:${process.pid}`;

/** Serve until the signal aborts; then stop the running jobs (they go back to the queue) and return. */
export async function runQueueWorker(opts: QueueWorkerOptions): Promise<void> {
  const { connection, display } = parseQueueUrl(opts.url);
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`--concurrency must be an integer from 1 to 64, got ${concurrency}`);
  const redis = new Redis({ ...(connection as object), lazyConnect: true });
  redis.on('error', () => {}); // reconnects by itself; the first connect below reports
  await connectOrExplain(redis, display);

  const pool = new WorkerPool(concurrency);
  const datasets = new Map<string, Promise<Dataset>>();
  const workers = new Map<string, Worker>();
  const lockMs = Math.round(1000 * (opts.lockSeconds ?? 30));

  const serve = (name: string): void => {
    if (workers.has(name)) return;
    const w = new Worker(name, (job: Job) => processJob(job, name), {
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
    workers.set(name, w);
    log(`worker ${WORKER_ID}: serving grid ${name}`);
  };

  const processJob = async (job: Job, queueName: string): Promise<QueueJobResult> => {
    let data: QueueJobData;
    try {
      data = validateJob(job.data);
    } catch (e) {
      // a config the worker refuses is a usage error; anything else wrong with the job, data
      await failWith(job, errorCode(e) ?? 'data');
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
      await checkData(data, datasets);
      const result = await runLocally(job, queueName, data, dir);
      log(`worker ${WORKER_ID}: ${job.id} finished`);
      return result;
    } catch (e) {
      const message = e instanceof Error ? (e.message.split('\n')[0] ?? '').trim() : String(e);
      log(`worker ${WORKER_ID}: ${job.id} failed: ${message}`);
      // the job's own fault: retrying elsewhere would fail the same way
      if (e instanceof SiameseError) {
        const code = errorCode(e);
        if (code) await failWith(job, code);
        throw new UnrecoverableError(`worker ${WORKER_ID}: ${message}`);
      }
      throw new Error(`worker ${WORKER_ID}: ${message}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const runLocally = async (job: Job, queueName: string, data: Exclude<QueueJobData, { type: 'sleep' }>, dir: string): Promise<QueueJobResult> => {
    const threads = opts.threads ?? 0;
    if (data.type === 'train') {
      const run = join(dir, 'run');
      mkdirSync(run);
      const key = checkpointKey(queueName, job.id!);
      const stored = await redis.getBuffer(key);
      let resume = data.resume;
      if (stored) {
        // another worker trained this job before: continue from its last epoch
        writeBundle(run, checkBundle(JSON.parse(stored.toString('utf8')), Object.values(RUN_FILES)));
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
        snapshot: true,
      };
      let lastProgress = 0;
      const r = await pool.run(req, {
        onEvent: (ev) => {
          if (ev.type === 'snapshot') {
            const bundle: Bundle = Object.fromEntries(Object.entries(ev.files).map(([n, b]) => [n, Buffer.from(b).toString('base64')]));
            const text = JSON.stringify(bundle);
            if (text.length <= MAX_JOB_BYTES) void redis.set(key, text, 'EX', 7 * 24 * 3600).catch(() => {});
            return;
          }
          const now = performance.now();
          // every epoch, and a batch update at most once a second: Redis carries all of them
          if (ev.type === 'epoch' || now - lastProgress >= 1000) {
            lastProgress = now;
            void job.updateProgress(ev as object).catch(() => {});
          }
        },
      });
      if (r.status !== 'finished') throw new Error('the worker was stopped; the job goes back to the queue');
      const files = readFiles(run, [...Object.values(RUN_FILES), DISTANCES_FILE]);
      await redis.del(key).catch(() => {});
      return { status: 'finished', epochs: r.epochs, files, worker: WORKER_ID };
    }
    if (data.type === 'distances') {
      const run = join(dir, 'run');
      mkdirSync(run);
      writeBundle(run, data.files);
      const r = await pool.run({ type: 'distances', runDir: run, distanceSample: data.distanceSample });
      if (r.status !== 'finished') throw new Error('the worker was stopped; the job goes back to the queue');
      return { status: 'finished', files: readFiles(run, [DISTANCES_FILE]), worker: WORKER_ID };
    }
    writeBundle(dir, data.files);
    const out = join(dir, QUEUE_FILES.tsne);
    const r = await pool.run({
      type: 'tsne',
      weights: join(dir, QUEUE_FILES.weights),
      config: { ...data.config, threads },
      indices: data.indices,
      params: data.params,
      out,
      key: data.key,
    });
    if (r.status !== 'finished') throw new Error('the worker was stopped; the job goes back to the queue');
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
  await pool.close();
  redis.disconnect();
}

/**
 * Record the kind of the error that fails `job` for good (payload.ts, QueueJobFailure). When Redis
 * does not take it, the coordinator sees a plain failure with the same message.
 */
async function failWith(job: Job, code: ErrorCode): Promise<void> {
  const failure: QueueJobFailure = { type: 'failure', code };
  await job.updateProgress(failure).catch(() => {});
}

/** The job's data must be this worker's data, byte for byte (checksums of images and labels). */
async function checkData(data: Exclude<QueueJobData, { type: 'sleep' }>, cache: Map<string, Promise<Dataset>>): Promise<void> {
  const spec = 'config' in data ? (data.config.data ?? { name: 'mnist' }) : { name: data.data.name };
  const k = JSON.stringify(spec);
  let p = cache.get(k);
  if (!p) {
    p = loadDataset(spec);
    cache.set(k, p);
    p.catch(() => cache.delete(k));
  }
  const ds = await p;
  if (ds.train.checksum !== data.data.trainChecksum || ds.test.checksum !== data.data.testChecksum) {
    throw new DataError(`its data set ${data.data.name} differs from the coordinator's (checksums of the images and labels); install the same data on this worker`);
  }
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
