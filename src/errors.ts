/**
 * Typed errors. The library throws them; only the CLI prints them (one line) and sets the exit code.
 * - UsageError: the caller asked for something invalid (unknown option, bad value).
 * - DataError: a file or data set is missing, corrupt or does not fit.
 * - TrainingError: training cannot go on (NaN/Inf, divergence).
 */

/**
 * The kind of a SiameseError as data. An error that crosses a thread or a machine (the worker
 * pool, the queue) travels as { code, message } and is rebuilt as the same kind on the other side.
 */
export type ErrorCode = 'usage' | 'data' | 'training';

export class SiameseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }

  /** the kind (each subclass says which; subclasses of those keep their parent's) */
  get code(): ErrorCode | undefined {
    return undefined;
  }
}
export class UsageError extends SiameseError {
  override get code(): ErrorCode {
    return 'usage';
  }
}
export class DataError extends SiameseError {
  override get code(): ErrorCode {
    return 'data';
  }
}
export class TrainingError extends SiameseError {
  override get code(): ErrorCode {
    return 'training';
  }
}

/**
 * Why this machine, not the job, cannot run a job: its disk is full, or the job asks for the
 * native engine and it is not built (or not loadable) here. Another machine may run the job: a
 * fleet's worker puts such a job back for the others (experiments/queue/worker.ts). Carried by the
 * errors below, and across threads beside the code (experiments/pool.ts).
 */
export type MachineFault = 'disk-full' | 'native-engine-missing';

/** A write failed for want of space (ENOSPC): a data error to the command, this machine's fault to a fleet. */
export class DiskFullError extends DataError {
  get fault(): MachineFault {
    return 'disk-full';
  }
}

/** The native engine is asked for and not available here: a usage error to the command, this machine's fault to a fleet. */
export class NativeUnavailableError extends UsageError {
  get fault(): MachineFault {
    return 'native-engine-missing';
  }
}

/**
 * The machine's fault an error stands for, if any: the one place that decides it, by type (and,
 * for a file-system error as Node throws it, by its errno code), never by a message's words.
 */
export function machineFault(e: unknown): MachineFault | undefined {
  if (e instanceof DiskFullError || e instanceof NativeUnavailableError) return e.fault;
  return e instanceof Error && (e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'disk-full' : undefined;
}

/** The code of an error, or undefined for one that is not a SiameseError of a known kind. */
export function errorCode(e: unknown): ErrorCode | undefined {
  return e instanceof SiameseError ? e.code : undefined;
}

/**
 * An error of the kind `code` names (anything else: a plain Error), with `message`; with a
 * machine's `fault` (machineFault), the class that carries it.
 */
export function errorFromCode(code: unknown, message: string, fault?: MachineFault): Error {
  if (fault === 'disk-full') return new DiskFullError(message);
  if (fault === 'native-engine-missing') return new NativeUnavailableError(message);
  switch (code) {
    case 'usage':
      return new UsageError(message);
    case 'data':
      return new DataError(message);
    case 'training':
      return new TrainingError(message);
    default:
      return new Error(message);
  }
}
