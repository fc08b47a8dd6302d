/**
 * Typed errors. The library throws them; only the CLI prints them (one line) and sets the exit code.
 * - UsageError: the caller asked for something invalid (unknown option, bad value).
 * - DataError: a file or data set is missing, corrupt or does not fit.
 * - TrainingError: training cannot go on (NaN/Inf, divergence).
 */
export class SiameseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
export class UsageError extends SiameseError {}
export class DataError extends SiameseError {}
export class TrainingError extends SiameseError {}
