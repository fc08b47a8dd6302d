/** `siamese queue status` and `siamese queue clean`: what a grid's queue holds, and removing it. */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { UsageError } from '../../errors.ts';
import { KEY_PREFIX, parseQueueUrl } from './connection.ts';
import { checkpointPattern, GRIDS_KEY, waitersPattern } from './keys.ts';
import { connectOrExplain } from './worker.ts';

export interface GridStatus {
  name: string;
  counts: { waiting: number; active: number; completed: number; failed: number; delayed: number };
  /** active jobs and the worker (host:pid) running each */
  active: { id: string; worker: string; progress: string }[];
  failed: { id: string; reason: string }[];
  /** workers connected to this grid's queue */
  workers: string[];
}

async function withRedis<T>(url: string, f: (r: Redis, connection: ReturnType<typeof parseQueueUrl>['connection']) => Promise<T>): Promise<T> {
  const { connection, display } = parseQueueUrl(url);
  const redis = new Redis({ ...(connection as object), lazyConnect: true });
  redis.on('error', () => {});
  await connectOrExplain(redis, display);
  try {
    return await f(redis, connection);
  } finally {
    redis.disconnect();
  }
}

/** The status of one grid, or of every registered grid. */
export async function queueStatus(url: string, name?: string): Promise<GridStatus[]> {
  return withRedis(url, async (redis, connection) => {
    const names = name ? [name] : (await redis.smembers(GRIDS_KEY)).sort();
    const out: GridStatus[] = [];
    for (const n of names) {
      const q = new Queue(n, { connection, prefix: KEY_PREFIX });
      try {
        const c = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
        const active = await q.getJobs(['active'], 0, 99);
        const failed = await q.getJobs(['failed'], 0, 99);
        const workers = await q.getWorkers();
        out.push({
          name: n,
          counts: { waiting: c.waiting ?? 0, active: c.active ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0, delayed: c.delayed ?? 0 },
          active: active.map((j) => ({ id: j.id ?? '?', worker: j.processedBy ?? '?', progress: describeProgress(j.progress) })),
          failed: failed.map((j) => ({ id: j.id ?? '?', reason: (j.failedReason ?? '').split('\n')[0]! })),
          workers: workers.map(workerName),
        });
      } finally {
        await q.close();
      }
    }
    return out;
  });
}

/**
 * A worker's own name (siamese worker's host:pid). BullMQ's getWorkers replaces `name` with the
 * queue's; the connection's client name, `rawname`, ends in `:w:` and the name the worker gave.
 */
function workerName(w: Record<string, string | undefined>): string {
  const raw = w['rawname'] ?? '';
  const at = raw.indexOf(':w:');
  return at >= 0 ? raw.slice(at + 3) : String(w['name'] ?? w['id'] ?? '?');
}

/** Remove a grid's queue, its checkpoints, its jobs' waiting coordinators and its registration; refused while jobs run, unless forced. */
export async function queueClean(url: string, name: string, force = false): Promise<void> {
  await withRedis(url, async (redis, connection) => {
    // a mistyped name must not report "removed": a grid is registered or has keys of its own
    const registered = (await redis.sismember(GRIDS_KEY, name)) === 1;
    if (!registered && !(await anyKey(redis, `${KEY_PREFIX}:${name.replace(/[*?[\]\\]/g, '\\$&')}:*`))) {
      throw new UsageError(`no grid ${name} on this queue (siamese queue status lists them)`);
    }
    const q = new Queue(name, { connection, prefix: KEY_PREFIX });
    try {
      const c = await q.getJobCounts('active', 'waiting');
      if (!force && (c.active ?? 0) + (c.waiting ?? 0) > 0) {
        throw new UsageError(`grid ${name} still has ${c.active ?? 0} active and ${c.waiting ?? 0} waiting jobs; add --force to remove it anyway`);
      }
      await q.obliterate({ force: true });
    } finally {
      await q.close();
    }
    for (const pattern of [checkpointPattern(name), waitersPattern(name)]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
    await redis.srem(GRIDS_KEY, name);
  });
}

/** whether any key matches (SCAN walks the whole key space; one page may hold no match) */
async function anyKey(redis: Redis, pattern: string): Promise<boolean> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length) return true;
    cursor = next;
  } while (cursor !== '0');
  return false;
}

function describeProgress(p: unknown): string {
  if (typeof p !== 'object' || p === null) return '';
  const e = p as { type?: string; log?: { epoch?: number }; info?: { epoch?: number; batch?: number; batches?: number } };
  // a worker has just taken it (worker.ts): a former holder's last batch is not this one's
  if (e.type === 'taken') return 'starting';
  if (e.type === 'epoch') return `epoch ${e.log?.epoch} done`;
  if (e.type === 'batch') return `epoch ${e.info?.epoch}, batch ${e.info?.batch}/${e.info?.batches}`;
  return '';
}
