/**
 * Is the process that wrote a file still running? Used by the output-folder lock (lock.ts) and by
 * the cleaning of temporary files that killed writers left behind (atomic.ts).
 */
import { readFileSync } from 'node:fs';

function readProc(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** True when a process with this pid exists on this host (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Start time of a process in clock ticks since boot (Linux /proc/PID/stat field 22), or
 * undefined where unknown. With the pid it names one process: a reused pid has another start.
 */
export function processStartTick(pid: number): string | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // the command name (field 2) may hold spaces and parentheses: count the fields after the last ')'
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19]; // field 22 is the 20th after field 2
}

/** This boot's id (Linux): a process recorded under another boot id has ended. */
export function bootId(): string | undefined {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim();
}
