/**
 * Stopping a command cleanly. The first SIGINT or SIGTERM (or, under npm, the death of the parent
 * process) aborts `signal`: training stops at the next batch and keeps the checkpoint of its last
 * finished epoch. Our handlers are then removed, so a second signal gets the system's default
 * action: the process ends at once, even in the middle of a synchronous computation.
 */

/** What stopped the command. 'parent': the npm process that started it is gone (treated as SIGTERM). */
export type StopReason = 'SIGINT' | 'SIGTERM' | 'parent';

export interface StopSignal {
  /** aborted on the first stop request */
  readonly signal: AbortSignal;
  reason(): StopReason | undefined;
  /** the shell's convention for the reason: 130 (SIGINT), 143 (SIGTERM, or a vanished parent) */
  exitCode(): number;
  dispose(): void;
}

export interface StopSignalOptions {
  /** called once, at the first stop request, before `signal` aborts (end the progress line here) */
  onStop?: (reason: StopReason) => void;
  /**
   * Poll the parent process id (a cheap getppid) and stop when it changes: `npx` and `npm exec`
   * run the command through a shell and do not pass a signal on, so when npm is killed the
   * command is re-parented and would otherwise train on with nobody to report to.
   */
  watchParent?: boolean;
  /** how often the parent is polled, in ms (default 500) */
  pollMs?: number;
}

export function onStopSignal(o: StopSignalOptions = {}): StopSignal {
  const controller = new AbortController();
  let got: StopReason | undefined;
  const parent = process.ppid;
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  const stop = (why: StopReason): void => {
    if (got) return;
    got = why;
    // from now on the default action applies: a second signal ends the process at once
    release();
    if (why === 'parent') {
      // the terminal or pipe npm held may be gone: a failed write must not crash the clean stop
      // (nor end it early through endQuietlyOnClosedOutput)
      outputGone = true;
      process.stdout.on('error', () => undefined);
      process.stderr.on('error', () => undefined);
    }
    o.onStop?.(why);
    controller.abort();
  };
  const handler = (sig: NodeJS.Signals): void => stop(sig === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  if (o.watchParent) {
    timer = setInterval(() => {
      if (process.ppid !== parent) stop('parent');
    }, o.pollMs ?? 500);
    // the poll alone must never keep the process alive
    timer.unref();
  }
  return {
    signal: controller.signal,
    reason: () => got,
    exitCode: () => (got === 'SIGTERM' || got === 'parent' ? 143 : 130),
    dispose: release,
  };
}

/** Started by npm (npx, npm exec, npm run): npm's environment variables are set. */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['npm_lifecycle_event'] !== undefined || env['npm_command'] !== undefined;
}

/** The reason in words, for messages. */
export function describeStop(why: StopReason): string {
  return why === 'parent' ? 'the end of the parent process (npm)' : why;
}

/**
 * Ctrl-C or SIGTERM for a command with a live display (compare, sweep): the first asks the runs to
 * stop (they save their last finished epoch), the second clears the display and quits at once.
 */
export function onGridStop(progress: { log(text: string): void; stop(): void }, what: string): { signal: AbortSignal; signalled(): string | undefined; dispose(): void } {
  const controller = new AbortController();
  let signalled: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      // leave the terminal clean: no half-erased display above the shell's prompt
      progress.stop();
      process.exit(130);
    }
    signalled = sig;
    progress.log(`${sig}: stopping; ${what} (send it again to quit at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    signalled: () => signalled,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** 128 + SIGPIPE: what a shell reports for a program that wrote into a pipe nobody reads. */
export const CLOSED_OUTPUT_EXIT = 141;

let closedOutputHandled = false;
/** set by a stop after npm vanished: that stop finishes its work and ignores failed writes */
let outputGone = false;

/**
 * `siamese ... | head`: once the reader has quit, every write to stdout fails with EPIPE, which
 * Node raises as an unhandled 'error' event (a stack trace). A C program would be killed by
 * SIGPIPE; Node ignores that signal and cannot restore it, so end the same way by hand: at once,
 * silently, with the exit code a shell shows for SIGPIPE (as `git log | head` does), so that
 * `set -o pipefail` scripts still learn that the output was cut short. A training stopped this way
 * keeps its last finished epoch, as after a kill. Installed once per process (main may run twice).
 */
export function endQuietlyOnClosedOutput(): void {
  if (closedOutputHandled) return;
  closedOutputHandled = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (outputGone) return;
    if (e.code === 'EPIPE') process.exit(CLOSED_OUTPUT_EXIT);
    // another failure of the output itself: one line on stderr, not a stack trace
    process.stderr.write(`siamese: cannot write the output: ${e.message}\n`);
    process.exit(1);
  });
  // `2>&1 | head`, or a failing stderr: nowhere left to say anything
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (!outputGone) process.exit(e.code === 'EPIPE' ? CLOSED_OUTPUT_EXIT : 1);
  });
}
