import { queueClean, queueStatus } from '../experiments/queue/admin.ts';
import { UsageError } from '../errors.ts';

/** `siamese queue status`: one block per grid: counts, active jobs with their workers, failures. */
export async function queueStatusCommand(o: { queue: string; queueName?: string }): Promise<void> {
  const grids = await queueStatus(o.queue, o.queueName);
  if (grids.length === 0) {
    process.stdout.write('no grids on this queue\n');
    return;
  }
  for (const g of grids) {
    const c = g.counts;
    process.stdout.write(
      `${g.name}: ${c.waiting} waiting, ${c.active} active, ${c.completed} done, ${c.failed} failed` +
        `${c.delayed ? `, ${c.delayed} delayed (retry)` : ''}; ${g.workers.length} worker${g.workers.length === 1 ? '' : 's'}` +
        `${g.workers.length ? ` (${g.workers.join(', ')})` : ''}\n`,
    );
    for (const a of g.active) process.stdout.write(`  active  ${a.id} on ${a.worker}${a.progress ? `: ${a.progress}` : ''}\n`);
    for (const f of g.failed) process.stdout.write(`  failed  ${f.id}: ${f.reason}\n`);
  }
}

/** `siamese queue clean`: remove a finished grid's keys. */
export async function queueCleanCommand(o: { queue: string; queueName?: string; force?: boolean }): Promise<void> {
  if (!o.queueName) throw new UsageError('queue clean needs --queue-name NAME (see siamese queue status)');
  await queueClean(o.queue, o.queueName, o.force);
  process.stdout.write(`removed grid ${o.queueName}\n`);
}
