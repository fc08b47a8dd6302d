/**
 * SIGINT/SIGTERM ask training to stop at the next batch; the run then keeps the checkpoint of its
 * last finished epoch. A second signal exits at once.
 */
export function onStopSignal(): { stopped: () => boolean; signal: () => string | undefined; dispose: () => void } {
  let got: string | undefined;
  const handler = (sig: NodeJS.Signals): void => {
    if (got) process.exit(130);
    got = sig;
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stopped: () => got !== undefined,
    signal: () => got,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
