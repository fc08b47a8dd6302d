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

/** The code of an error, or undefined for one that is not a SiameseError of a known kind. */
export function errorCode(e: unknown): ErrorCode | undefined {
  return e instanceof SiameseError ? e.code : undefined;
}

/** An error of the kind `code` names (anything else: a plain Error), with `message`. */
export function errorFromCode(code: unknown, message: string): Error {
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
