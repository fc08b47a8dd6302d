import { runQueueWorker } from '../experiments/queue/worker.ts';

export interface WorkerCommandOptions {
  queue: string;
  queueName?: string;
  concurrency?: number;
  threads?: number;
  lockSeconds?: number;
  dataDir?: string;
  backoffSeconds?: number;
}

/**
 * `siamese worker`: serve a fleet's queue until SIGINT/SIGTERM; then running trainings save their
 * last epoch and their jobs go back to the queue for another worker.
 */
export async function workerCommand(o: WorkerCommandOptions): Promise<void> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(sig === 'SIGTERM' ? 143 : 130);
    process.stderr.write(`${sig}: stopping; running jobs save their last epoch and go back to the queue (send it again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runQueueWorker({ url: o.queue, queueName: o.queueName, concurrency: o.concurrency, threads: o.threads, lockSeconds: o.lockSeconds, dataDir: o.dataDir, backoffSeconds: o.backoffSeconds, signal: controller.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
