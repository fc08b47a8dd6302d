import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lossParamsFrom } from '../../src/cli/options.ts';
import { UsageError } from '../../src/errors.ts';
import { siamese } from './run.ts';

/**
 * Options a loss does not take are refused (one line, exit 2) before anything trains. Before the
 * fix they were ignored: these commands trained (a tiny slice, so the test ends either way).
 */
function refused(args: string[], pattern: RegExp): void {
  const r = siamese(['train', ...args, '--epochs', '1', '--train-pairs', '100', '--out', '/nonexistent/never-written'], { timeout: 120_000 });
  assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line for ${args.join(' ')}, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.equal(r.stdout, '');
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

test('compare refuses the same settings with the same check', () => {
  const r = siamese(['compare', '--losses', 'soft-triplet:margin=0.2', '--out', '/nonexistent/never-written']);
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
