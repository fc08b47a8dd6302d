/**
 * Where the jobs of a comparison (or a sweep) run. Two implementations: the local pool of worker
 * threads (pool.ts, the default) and the Redis queue of a fleet of workers (queue/coordinator.ts).
 * Both take the same local job requests and leave the same files behind, so everything after the
 * execution (collecting results, statistics, the report) cannot tell them apart.
 */
import type { JobEvent, JobRequest, JobResult } from './jobs.ts';

export interface ExecutorCallbacks {
  /** the job started, on display line `slot` (0-based; stable while the job runs) */
  onStart?: (slot: number) => void;
  onEvent?: (event: JobEvent, slot: number) => void;
  /**
   * the job left display line `slot` without ending: back on a queue, waiting (a worker refused
   * it, was stopped or died); onStart comes again when a worker takes it. The local pool never does.
   */
  onRequeue?: (slot: number) => void;
}

export interface Executor {
  /** Run a job; resolves with its result once its files are in place, rejects with a one-line error. */
  run(req: JobRequest, cb?: ExecutorCallbacks): Promise<JobResult>;
  /** Stop soon: running jobs save what they have; the promises resolve as interrupted. */
  requestStop(): void;
  close(): Promise<void>;
}
