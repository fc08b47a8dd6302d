import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { siamese } from './run.ts';

const cwd = mkdtempSync(join(tmpdir(), 'seed-runs-'));
after(() => rmSync(cwd, { recursive: true, force: true }));

/** The seed's README commands, with a slice of the data so that the test stays short. */
const SEED_TRAIN = ['--train=True', '--loss=potential', '--epcs=1', '--bs=128', '--opt=RMSprop', '--reset_weights=True', '--train-pairs=200'];
const manifest = (dir: string) => JSON.parse(readFileSync(join(cwd, dir, 'manifest.json'), 'utf8')) as { status: string; config: { loss: string; threads: number } };

test("the seed's training command runs again into a numbered folder, and --train=False --loss=potential predicts with the newest", () => {
  const first = siamese(SEED_TRAIN, { cwd });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^trained 1 epoch into runs\/potential-seed0\n/);

  // the seed overwrote its weights; here the first run stays, and the second says where it goes.
  // --threads beyond the cores is capped at them, with a warning
  const second = siamese([...SEED_TRAIN, '--threads', '100000'], { cwd });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /^trained 1 epoch into runs\/potential-seed0-2\n/);
  const cores = availableParallelism();
  assert.match(second.stderr, new RegExp(`^siamese: --threads 100000 is more than the ${cores} cores? here; using ${cores}$`, 'm'));
  assert.match(second.stderr, /^siamese: runs\/potential-seed0 holds a finished run; training into runs\/potential-seed0-2 \(choose the folder with --out\)$/m);
  assert.equal(manifest('runs/potential-seed0').status, 'finished');
  assert.equal(manifest('runs/potential-seed0-2').status, 'finished');
  assert.equal(manifest('runs/potential-seed0-2').config.threads, cores);

  // --loss=NAME with = (and the seed's training flags, which its predict ignored too)
  const predict = siamese(['--train=False', '--loss=potential', '--epcs=1', '--bs=128', '--reset_weights=False'], { cwd });
  assert.equal(predict.code, 0, predict.stderr);
  assert.match(predict.stdout, /^weights: runs\/potential-seed0-2\n\* Accuracy on test set: \d+\.\d\d%/);
  const none = siamese(['--train=False', '--loss=contrastive'], { cwd });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^siamese: no --weights given and no trained run of loss contrastive under runs\//);
});

test('an explicit --out that holds a run is refused with what to do', () => {
  const r = siamese(['train', '--loss', 'potential', '--epochs', '1', '--train-pairs', '200', '--out', 'runs/potential-seed0'], { cwd });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^siamese: runs\/potential-seed0 already holds a run\b.*--resume.*--out/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('a resumed training says how many epochs it added and how many the run has in all', () => {
  const out = 'runs/resume-count';
  const first = siamese(['train', '--loss', 'contrastive', '--epochs', '1', '--train-pairs', '200', '--out', out], { cwd });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^trained 1 epoch into runs\/resume-count\n/);
  const more = siamese(['train', '--resume', out, '--epochs', '3'], { cwd });
  assert.equal(more.code, 0, more.stderr);
  assert.match(more.stdout, /^trained 2 more epochs into runs\/resume-count \(3 epochs in all\)\n/);
});
