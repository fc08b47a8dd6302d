/**
 * A resumed run keeps its loss parameters: a different one is refused naming that parameter and
 * the option that sets it (the message showed the whole parameter objects, `{}` against
 * `{"proxy-lr":0.5}`, under a list of options that left out --proxy-lr).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { resolveConfig, resumeConfig } from '../../src/train/config.ts';

const refusal = (saved: Parameters<typeof resolveConfig>[0], given: Parameters<typeof resolveConfig>[0]): string => {
  try {
    resumeConfig(resolveConfig(saved), given, 'runs/r');
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e.message;
  }
  assert.fail('not refused');
};

test('resume: a changed loss parameter is refused naming it and its option', () => {
  assert.equal(
    refusal({ loss: 'proxy-anchor' }, { lossParams: { 'proxy-lr': 0.5 } }),
    'runs/r was trained with proxy-lr (default), and a resumed run keeps it (only --epochs, --lr, --engine and --threads may change): drop --proxy-lr 0.5, or start a new run with another --out',
  );
  assert.equal(
    refusal({ loss: 'contrastive', lossParams: { margin: 2 } }, { lossParams: { margin: 1.5 } }),
    'runs/r was trained with margin 2, and a resumed run keeps it (only --epochs, --lr, --engine and --threads may change): drop --margin 1.5, or start a new run with another --out',
  );
  assert.equal(
    refusal({ loss: 'circle' }, { lossParams: { gamma: 256 } }),
    'runs/r was trained with gamma (default), and a resumed run keeps it (only --epochs, --lr, --engine and --threads may change): drop --param gamma=256, or start a new run with another --out',
  );
  // the saved values given again are no change
  assert.doesNotThrow(() => resumeConfig(resolveConfig({ loss: 'contrastive', lossParams: { margin: 2 } }), { lossParams: { margin: 2 } }, 'runs/r'));
});
