import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateSeedArgs } from '../../src/cli/seedCompat.ts';

test("the seed's training command line maps onto train", () => {
  assert.deepEqual(
    translateSeedArgs(['--train=True', '--loss=contrastive', '--epcs=20', '--bs=128', '--opt=RMSprop', '--reset_weights=True']),
    ['train', '--loss=contrastive', '--epochs=20', '--batch-size=128', '--optimizer=RMSprop', '--reset-weights'],
  );
  assert.deepEqual(translateSeedArgs(['--train', 'True', '--loss=potential', '--epcs', '3']), ['train', '--loss=potential', '--epochs', '3']);
});

test("the seed's --train=False means predict, and --reset_weights=False is dropped", () => {
  assert.deepEqual(translateSeedArgs(['--train=False', '--reset_weights=False']), ['predict']);
  assert.deepEqual(translateSeedArgs(['--train=false', '--weights', 'runs/x']), ['predict', '--weights', 'runs/x']);
});

test('modern arguments pass through unchanged', () => {
  assert.deepEqual(translateSeedArgs(['train', '--loss', 'yukawa', '--epochs', '2']), ['train', '--loss', 'yukawa', '--epochs', '2']);
});

test("the seed's = forms pass through as one argument, and predict drops only the seed's training flags", () => {
  assert.deepEqual(
    translateSeedArgs(['--train=False', '--loss=potential', '--epcs=20', '--bs', '128', '--opt=RMSprop', '--reset_weights=True']),
    ['predict', '--loss=potential'],
  );
  // a modern training option given to predict is not silently dropped: commander refuses it
  assert.deepEqual(translateSeedArgs(['--train=False', '--epochs=3']), ['predict', '--epochs=3']);
  assert.deepEqual(translateSeedArgs(['--train=True', '--epcs', '3', '--loss=potential']), ['train', '--epochs', '3', '--loss=potential']);
});

test("a value of the seed's switches other than True/False is refused, not read as False", () => {
  assert.throws(() => translateSeedArgs(['--train=Maybe', '--loss=potential']), { name: 'UsageError', message: /--train=Maybe/ });
  assert.throws(() => translateSeedArgs(['--train=', '--epcs=1']), { name: 'UsageError' });
  assert.throws(() => translateSeedArgs(['--train=True', '--reset_weights=ja']), { name: 'UsageError', message: /--reset_weights=ja/ });
  // the spellings the seed's Python accepted still work
  assert.deepEqual(translateSeedArgs(['--train=0']), ['predict']);
  assert.deepEqual(translateSeedArgs(['--train=yes', '--reset_weights=1']), ['train', '--reset-weights']);
  assert.deepEqual(translateSeedArgs(['--train=no', '--reset_weights=false']), ['predict']);
});
