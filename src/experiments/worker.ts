/**
 * A comparison worker thread: runs the jobs of jobs.ts one at a time, as the pool sends them.
 * Started by pool.ts. The stop flag is shared memory, because a training epoch keeps this
 * thread busy: a message would only be read after the epoch, the flag is read between batches.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorCode, machineFault } from '../errors.ts';
import { cachedDatasets, type JobRequest, runJob } from './jobs.ts';
import type { FromWorker } from './pool.ts';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread (see pool.ts)');
// [0]: every job stops (requestStop); [1 + slot]: this thread's job stops (pool.ts, run's signal)
const { stop, slot } = workerData as { stop: SharedArrayBuffer; slot: number };
const stopFlag = new Int32Array(stop);
// each job names its data set in its config; a thread keeps every one it has loaded
const dataset = cachedDatasets();
const post = (m: FromWorker): void => port.postMessage(m);

port.on('message', (msg: { id: number; req: JobRequest }) => {
  const { id, req } = msg;
  runJob(req, {
    emit: (event) => post({ type: 'event', id, event }),
    shouldStop: () => Atomics.load(stopFlag, 0) !== 0 || Atomics.load(stopFlag, 1 + slot) !== 0,
    dataset,
  }).then(
    (result) => post({ type: 'result', id, result }),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      const message = (err.message.split('\n')[0] ?? '').trim() || err.name;
      // a machine's fault (a full disk, no native engine) crosses as such, not as its words
      post({ type: 'error', id, code: errorCode(err), fault: machineFault(err), message });
    },
  );
});
post({ type: 'ready' });
