/** Redis keys siamese-lab keeps beside BullMQ's own (all under the one prefix). */
import { KEY_PREFIX } from './connection.ts';

/** The set of grids (queue names) that coordinators have registered: workers serve each. */
export const GRIDS_KEY = `${KEY_PREFIX}:grids`;

/** A training job's last epoch's files, for the worker that takes the job over. */
export function checkpointKey(queue: string, jobId: string): string {
  return `${KEY_PREFIX}:checkpoint:${queue}:${jobId}`;
}

/**
 * The same job's embeddings.bin, as raw bytes: it only grows, so each epoch appends its new bytes
 * instead of sending the whole file again. Under the checkpoint's key, so that checkpointPattern
 * (and `queue clean`) finds it too.
 */
export function embeddingsKey(queue: string, jobId: string): string {
  return `${checkpointKey(queue, jobId)}:embeddings`;
}

/** Every checkpoint key of a grid (for `queue clean`). */
export function checkpointPattern(queue: string): string {
  return `${KEY_PREFIX}:checkpoint:${queue}:*`;
}

/**
 * The coordinators that wait for a job's result (a set, one member per output folder): two
 * coordinators of one grid enqueue the same job (payload.ts, jobId), and its result leaves Redis
 * once the last of them has written it (coordinator.ts, release).
 */
export function waitersKey(queue: string, jobId: string): string {
  return `${KEY_PREFIX}:waiters:${queue}:${jobId}`;
}

/** Every waiters key of a grid (for `queue clean`). */
export function waitersPattern(queue: string): string {
  return `${KEY_PREFIX}:waiters:${queue}:*`;
}

/** Executions per tag of the load test's sleep jobs. */
export function sleepCountKey(queue: string): string {
  return `${KEY_PREFIX}:sleeps:${queue}`;
}
