/**
 * A worker of `npm run bench`: one single-thread native training, measured while others like it
 * run beside it. It loads MNIST, says 'ready', waits for the go, then reports its throughput.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadMnist } from '../src/data/mnist.ts';
import { initBackend } from '../src/engine/backend.ts';
import { throughput } from './throughput.ts';

const { warm, steps } = workerData as { warm: number; steps: number };
await initBackend('wasm');
const ds = await loadMnist();
parentPort!.once('message', () => {
  const r = throughput(ds, 'native', 1, warm, steps);
  parentPort!.postMessage({ pairsPerSecond: r.pairsPerSecond });
});
parentPort!.postMessage('ready');
