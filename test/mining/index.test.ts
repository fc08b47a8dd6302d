import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { batchAllTriplets, batchHardTriplets, createMiner, hardNegativePairs, MINER_NAMES, semiHardTriplets } from '../../src/mining/index.ts';
import { randomBatch } from './reference.ts';

test('createMiner: every name, its kind, and the same result as the function', () => {
  const b = randomBatch(9);
  const opts = { margin: 0.5, squared: false };
  const expected = {
    all: batchAllTriplets(b.emb, b.dim, b.labels, opts),
    'batch-all': batchAllTriplets(b.emb, b.dim, b.labels, { ...opts, positiveLossOnly: true }),
    'batch-hard': batchHardTriplets(b.emb, b.dim, b.labels, opts),
    semihard: semiHardTriplets(b.emb, b.dim, b.labels, opts),
    'hard-negative': hardNegativePairs(b.emb, b.dim, b.labels, opts),
  };
  for (const name of MINER_NAMES) {
    const miner = createMiner(name, opts);
    assert.equal(miner.name, name);
    assert.equal(miner.kind, name === 'hard-negative' ? 'pair' : 'triplet');
    assert.deepEqual(miner.mine(b.emb, b.dim, b.labels), expected[name]);
  }
});

test('createMiner: an unknown name lists the valid ones; bad input is refused', () => {
  assert.throws(() => createMiner('hardest'), {
    name: 'UsageError',
    message: 'unknown miner "hardest"; valid miners: all, batch-all, batch-hard, semihard, hard-negative',
  });
  assert.throws(() => createMiner('constructor'), UsageError);
  assert.throws(() => createMiner('semihard', { margin: -1 }).mine(new Float32Array(4), 2, [0, 1]), UsageError);
  assert.throws(() => createMiner('all').mine(new Float32Array(5), 2, [0, 1]), { name: 'DataError' });
});
