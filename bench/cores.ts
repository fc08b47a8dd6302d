/**
 * How far apart the machine's cores are: the round trip of one cache line between two threads
 * (a worker and the calling thread, spinning on a shared integer). On a virtual machine the
 * host decides where the virtual CPUs sit; a training split over cores exchanges data every
 * step, so its speedup follows this figure while independent work does not.
 */
import { Worker } from 'node:worker_threads';

/** The fastest of `samples` batches of ping-pong round trips, per round trip, in nanoseconds. */
export async function coreRoundTripNs(trips = 20000, samples = 5): Promise<number> {
  const flag = new Int32Array(new SharedArrayBuffer(64));
  // The worker answers each odd value with the next even one, until it sees -1.
  const code = `const { workerData } = require('node:worker_threads');
    const f = new Int32Array(workerData);
    for (;;) {
      const v = Atomics.load(f, 0);
      if (v === -1) break;
      if ((v & 1) === 1) Atomics.store(f, 0, v + 1);
    }`;
  const w = new Worker(code, { eval: true, workerData: flag.buffer });
  const times: number[] = [];
  try {
    let v = 0;
    // wait until the worker answers at all (it takes a few milliseconds to start)
    Atomics.store(flag, 0, ++v);
    while (Atomics.load(flag, 0) !== v + 1) {
      // spin
    }
    v++;
    for (let s = 0; s < samples + 1; s++) {
      const t0 = performance.now();
      for (let i = 0; i < trips; i++) {
        Atomics.store(flag, 0, ++v);
        while (Atomics.load(flag, 0) !== v + 1) {
          // spin
        }
        v++;
      }
      if (s > 0) times.push(((performance.now() - t0) * 1e6) / trips);
    }
  } finally {
    Atomics.store(flag, 0, -1);
    await w.terminate();
  }
  times.sort((a, b) => a - b);
  return times[0]!;
}
