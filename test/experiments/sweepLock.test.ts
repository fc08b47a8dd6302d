/**
 * sweep checks its class split before it takes the output folder's lock (sweep.ts, runSweep):
 * that check reads the options and the data set, never the folder, so with another process
 * writing in the folder a bad --split or --folds gets the very refusal it gets alone, and nothing
 * is created; a good sweep into the busy folder is refused by the lock, and writes nothing either.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { siamese } from '../cli/run.ts';
import { writeBandsIdx } from '../data/datasets.ts';
import { REPO_ROOT } from '../helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-sweep-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
const data = join(root, 'data');
writeBandsIdx(data); // 8 classes: the default split trains on 4

const sweep = (out: string, extra: string[]) =>
  siamese(['sweep', '--data', 'idx', '--data-dir', data, '--trials', '1', '--folds', '2', '--seeds', '1', '--epochs', '1', '--train-pairs', '100', '--out', out, ...extra]);

const BAD: [string[], RegExp][] = [
  [['--split', 'pairs'], /^siamese: sweep needs class-disjoint classes: --split classes or classes=C1,C2,\.\.\. \(not pairs\)$/],
  [['--split', 'classes=3,4,5,6,7'], /^siamese: sweep needs at least 4 training classes for 2 folds; --split gives 3$/],
  [['--folds', '6'], /^siamese: --folds 6 needs at least 6 training classes .*use --folds 4 or fewer$/],
];

test('a bad class split is refused alike whether or not another process holds the folder; nothing is written', async () => {
  const alone = join(root, 'alone');
  const alike: string[] = [];
  for (const [extra, why] of BAD) {
    const r = sweep(alone, extra);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), why);
    assert.equal(existsSync(alone), false, `${extra.join(' ')}: ${alone} was made`);
    alike.push(r.stderr);
  }

  const busy = join(root, 'busy');
  const holder = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'fixtures', 'holdLock.ts'), busy], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res, rej) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && res());
      holder.on('exit', (code) => rej(new Error(`the lock holder ended (${code}) before it held ${busy}`)));
    });
    const held = readdirSync(busy);
    for (const [i, [extra]] of BAD.entries()) {
      const r = sweep(busy, extra);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, alike[i], `${extra.join(' ')}: the refusal depends on the folder being in use`);
      assert.deepEqual(readdirSync(busy), held, `${extra.join(' ')} wrote into the folder`);
    }
    // a sweep that passes the check meets the lock: refused, and nothing of it is written
    const r = sweep(busy, []);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), /^siamese: .*busy is in use by another siamese holder \(pid \d+ on .*\); wait for it to end or stop it$/);
    assert.deepEqual(readdirSync(busy), held);
  } finally {
    holder.stdin!.end();
    await new Promise((res) => (holder.exitCode === null ? holder.on('exit', res) : res(undefined)));
  }
});
