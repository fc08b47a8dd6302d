import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lossParamsFrom } from '../../src/cli/options.ts';
import { UsageError } from '../../src/errors.ts';
import { LOSS_PARAM_OPTIONS } from '../../src/train/config.ts';
import { siamese } from './run.ts';

/**
 * Options a loss does not take are refused (one line, exit 2) before anything trains. Before the
 * fix they were ignored: these commands trained (a tiny slice, so the test ends either way).
 */
/** an output folder of this test's own that must never be made (a fixed path could hold another test's run) */
function neverWritten(): string {
  return join(mkdtempSync(join(tmpdir(), 'train-options-')), 'never-written');
}

function refused(args: string[], pattern: RegExp): void {
  const out = neverWritten();
  const r = siamese(['train', ...args, '--epochs', '1', '--train-pairs', '100', '--out', out], { timeout: 120_000 });
  assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line for ${args.join(' ')}, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.equal(r.stdout, '');
  assert.equal(existsSync(out), false, `${out} was made`);
}

test('train refuses loss options that the loss does not take, naming its parameters', () => {
  // the parameters as `siamese losses` lists them (registry: contrastive margin; yukawa kappa,
  // power, epsilon; coulomb charge, epsilon; soft-triplet squared only, no margin)
  refused(['--pos', 'd^2', '--neg', 'exp(-d)'], /--pos and --neg are for --loss custom; loss contrastive .*its parameters: margin\)/);
  refused(['--loss', 'coulomb', '--param', 'chrge=0.2'], /--param chrge=0\.2: loss coulomb has no parameter "chrge" \(its parameters: charge, epsilon\)/);
  refused(['--loss', 'yukawa', '--margin', '2'], /--margin: loss yukawa has no parameter "margin" \(its parameters: kappa, power, epsilon\)/);
  refused(['--kappa', '5'], /--kappa: loss contrastive has no parameter "kappa" \(its parameters: margin\)/);
  refused(['--loss', 'soft-triplet', '--margin', '0.2'], /--margin: loss soft-triplet has no parameter "margin" \(its parameters: squared\)/);
  refused(['--margin', '2', '--param', 'margin=3'], /--margin and --param margin=\.\.\. set the same parameter/);
  // only the losses that learn class weights have their learning rate
  refused(['--proxy-lr', '1'], /--proxy-lr: loss contrastive has no parameter "proxy-lr" \(its parameters: margin\)/);
  // a parameter with no value is not 0 (Number('') is): cosface trained without its margin
  refused(['--loss', 'cosface', '--param', 'margin='], /^siamese: loss parameter margin has no value$/);
});

test('the loss parameters with an option of their own are one list: train has each option, reads it by that name, and says which was typed', () => {
  const help = siamese(['train', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.deepEqual([...LOSS_PARAM_OPTIONS], ['margin', 'kappa', 'power', 'pos', 'neg', 'proxy-lr']);
  for (const key of LOSS_PARAM_OPTIONS) {
    assert.match(help.stdout, new RegExp(`^  --${key} <`, 'm'), `train --${key}`);
    // commander keeps --proxy-lr as proxyLr: the option given both ways is caught, so it was read
    const own = key === 'proxy-lr' ? { proxyLr: 1 } : { [key]: 1 };
    assert.throws(() => lossParamsFrom('contrastive', { ...own, param: { [key]: '1' } }), new RegExp(`^UsageError: --${key} and --param ${key}=\\.\\.\\. set the same parameter`));
  }
  // a parameter the loss lacks, set with --param: the refusal names the --param, not the option of that name
  assert.throws(() => lossParamsFrom('yukawa', { param: { margin: '2' } }), /^UsageError: --param margin=2: loss yukawa has no parameter "margin"/);
});

test('compare refuses the same settings with the same check', () => {
  const r = siamese(['compare', '--losses', 'soft-triplet:margin=0.2', '--out', neverWritten()]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /loss soft-triplet has no parameter "margin" \(its parameters: squared/);
});

test('the loss options a loss takes become its parameters, numbers as numbers', () => {
  assert.deepEqual(lossParamsFrom('coulomb', { param: { charge: '0.2' } }), { charge: 0.2 });
  assert.deepEqual(lossParamsFrom('potential', { kappa: 5, power: 2 }), { kappa: 5, power: 2 });
  assert.deepEqual(lossParamsFrom('triplet', { margin: 0.2, param: { squared: 'false' } }), { margin: 0.2, squared: 'false' });
  assert.deepEqual(lossParamsFrom('custom', { pos: 'd^3', neg: 'exp(-10*d)/d' }), { pos: 'd^3', neg: 'exp(-10*d)/d' });
  assert.deepEqual(lossParamsFrom('contrastive', {}), {});
  assert.throws(() => lossParamsFrom('gaussian', { margin: 1 }), (e: Error) => e instanceof UsageError && /its parameters: scale\)/.test(e.message));
});

test('a loss parameter whose sign turns the loss round is refused before training (it trained, and collapsed or ran backwards)', () => {
  // contrastive: max(m - D, 0) is 0 for every D >= 0 when m <= 0, nothing keeps negatives apart
  refused(['--margin', '-1'], /^siamese: contrastive loss: margin must be a number > 0, got -1$/);
  refused(['--param', 'margin=0'], /^siamese: contrastive loss: margin must be a number > 0, got 0$/);
  // yukawa: exp(-kD)/D grows with D for k < 0; D^p pushes positives apart for p < 0
  refused(['--loss', 'yukawa', '--kappa', '-1'], /^siamese: yukawa loss: kappa must be a number >= 0, got -1$/);
  refused(['--loss', 'potential', '--power', '0'], /^siamese: yukawa loss: power must be a number > 0, got 0$/);
  refused(['--loss', 'yukawa', '--param', 'epsilon=-1e-7'], /^siamese: yukawa loss: epsilon must be a number > 0, got -1e-7$/);
  // kappa 0 is plain Coulomb repulsion: still allowed
  assert.deepEqual(lossParamsFrom('yukawa', { kappa: 0 }), { kappa: 0 });
  const c = siamese(['compare', '--losses', 'yukawa:kappa=-2', '--out', neverWritten()]);
  assert.equal(c.code, 2, c.stderr);
  assert.match(c.stderr, /^siamese: loss spec "yukawa:kappa=-2": yukawa loss: kappa must be a number >= 0, got -2\n$/);
});
