/**
 * The thread that lays out snapshot epochs for `siamese serve` (started by snapshots.ts): t-SNE
 * of 2,000 points takes seconds, which must not stall the server's other requests. One job at
 * a time, in the order sent.
 */
import { parentPort } from 'node:worker_threads';
import { runTsne } from '../viz/tsne.ts';

export interface LayoutJob {
  id: number;
  data: Float32Array;
  rows: number;
  dim: number;
  perplexity: number;
  /** the previous epoch's layout: a warm start */
  init?: Float32Array;
}

export type LayoutReply = { id: number; points: Float32Array } | { id: number; error: string };

/** iterations of a warm-started epoch: one epoch moves an embedding a little, 300 steps settle it */
const WARM_ITERATIONS = 300;

const port = parentPort;
if (!port) throw new Error('layoutWorker.ts runs only as a worker thread (see snapshots.ts)');
port.on('message', (job: LayoutJob) => {
  try {
    const points = runTsne(job.data, job.rows, job.dim, {
      perplexity: job.perplexity,
      seed: 0,
      // warm: no early exaggeration (it would tear the previous layout apart), fewer iterations
      ...(job.init ? { init: job.init, exaggerationIterations: 0, iterations: WARM_ITERATIONS } : {}),
    });
    port.postMessage({ id: job.id, points } satisfies LayoutReply, [points.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: job.id, error: (e as Error).message.split('\n')[0] ?? 'layout failed' } satisfies LayoutReply);
  }
});
