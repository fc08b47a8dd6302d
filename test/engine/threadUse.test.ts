/**
 * A training at `threads: T` computes on T threads and starts no others: `compare`, `sweep` and
 * `siamese worker` run one training per core at T = cores / workers and count on it. Counted
 * from the kernel's list of this process's threads (/proc/self/task) while the training runs,
 * for every kind of step (pairs, triplets, each miner, a batch loss, the CNN): the native engine
 * adds T − 1 threads (its pool; the caller is the first), and nothing else does: the miners and
 * the batch losses run on the calling thread, and TF.js's WebAssembly backend runs single-threaded
 * in Node (its threaded build is for browsers). A guard: no version before this test broke it.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { before, test } from 'node:test';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/engine/backend.ts';
import { nativeStatus } from '../../src/engine/native.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { Training } from '../../src/train/trainer.ts';
import { syntheticDataset } from './synthetic.ts';

const native = nativeStatus().available;

before(async () => {
  await initBackend('wasm');
});

const ds = syntheticDataset(400, 200);
const osThreads = (): number => readdirSync('/proc/self/task').length;

const CASES: Partial<TrainConfig>[] = [
  { loss: 'contrastive' },
  { loss: 'triplet' },
  { loss: 'triplet', miner: 'semihard' },
  { loss: 'triplet', miner: 'batch-hard' },
  { loss: 'triplet', miner: 'batch-all' },
  { loss: 'contrastive', miner: 'hard-negative' },
  { loss: 'multi-similarity' },
  { loss: 'proxy-anchor' },
  { loss: 'contrastive', base: 'cnn', embeddingDim: 16 },
];

/** The most threads the process had while a Training at `threads` was built and ran 4 steps, over the count before. */
function threadsAdded(c: Partial<TrainConfig>, engine: 'native' | 'tfjs', threads: number): { added: number; engineThreads: number } {
  // everything between the two counts is synchronous: no thread of Node's own (libuv's pool,
  // V8's helpers, started with the process) can appear in between
  const start = osThreads();
  const t = new Training(ds, resolveConfig({ trainPairs: 640, testPairs: 100, batchSize: 40, ...c, engine, threads }));
  let most = osThreads();
  const stop = new AbortController();
  t.runEpoch(
    (b) => {
      most = Math.max(most, osThreads());
      if (b.batch >= 4) stop.abort();
    },
    { signal: stop.signal },
  );
  const engineThreads = t.engine.threads;
  t.dispose();
  return { added: most - start, engineThreads };
}

test('the TF.js WebAssembly backend computes on one thread in Node', () => {
  assert.equal(getThreadsCount(), 1);
});

test(`a training at threads 1 starts no thread, at threads 2 one (${native ? 'native' : 'TF.js'} engine), whatever the loss or miner`, (t) => {
  if (!native) t.diagnostic(`native engine not available (${nativeStatus().detail}): TF.js alone, which starts none`);
  const engine = native ? 'native' : 'tfjs';
  for (const c of CASES) {
    for (const threads of [1, 2]) {
      const r = threadsAdded(c, engine, threads);
      const what = `${JSON.stringify(c)} at threads ${threads}`;
      if (native) assert.equal(r.engineThreads, threads, what);
      assert.equal(r.added, native ? threads - 1 : 0, `${what}: ${r.added} threads started`);
    }
  }
  // the reference engine starts none at any count
  for (const c of [CASES[2]!, CASES[6]!]) assert.equal(threadsAdded(c, 'tfjs', 2).added, 0, JSON.stringify(c));
});
