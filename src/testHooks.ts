/**
 * TEST HOOKS: not features, never set in use. The one place production code looks at a test-only
 * environment variable, once, when this module loads; everything else gets the hook from here
 * (test/structure/testHooks.test.ts keeps it so).
 *
 * SIAMESE_TEST_COLLECT_CRASH_AFTER=k: the queue coordinator's collect kills its own process
 * (SIGKILL, as a power cut would) after the k-th step that changes the disk, so that the crash
 * tests (test/queue/collectCrash.test.ts) can stop it at every point of writing a result.
 */
const crashAfter = Number(process.env['SIAMESE_TEST_COLLECT_CRASH_AFTER'] ?? 0);
let collectSteps = 0;

/** Called after each disk-changing step of a collect; undefined unless a crash test set the variable. */
export const collectCrashHook: (() => void) | undefined =
  crashAfter > 0
    ? () => {
        if (++collectSteps >= crashAfter) process.kill(process.pid, 'SIGKILL');
      }
    : undefined;

/**
 * Set by a test that runs the queue coordinator in its own process (test/queue/withdraw.test.ts),
 * never by an environment variable: awaited when a coordinator has decided to leave a job (it has
 * its result, or gives up on it) and the job is about to leave Redis unless another coordinator
 * waits for it, so that the test can bring a second coordinator in at that very point.
 */
export const queueHooks: {
  beforeWithdraw?: (jobId: string) => Promise<void>;
  /** and told what came of it: coordinators still waiting, and BullMQ's removal (1 removed, 0 locked, -1 not tried) */
  afterWithdraw?: (jobId: string, left: number, removed: number) => void;
} = {};
