import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';
import { siamese } from './run.ts';

test('siamese alone shows the help (on stderr, exit 1: commander\'s convention for a missing command)', () => {
  const r = siamese([]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Usage: siamese \[options\] \[command\]/);
  for (const c of ['train', 'predict', 'compare', 'report', 'embed', 'export', 'tsne', 'losses']) assert.match(r.stderr, new RegExp(`^  ${c}\\b`, 'm'));
  assert.equal(r.stdout, '');
});

test('--version prints the version of package.json', () => {
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = siamese([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${version}\n`);
  }
});

test('a mistyped command or option gets a "did you mean", on the one error line', () => {
  for (const [args, hint] of [
    [['trian'], /^siamese: unknown command 'trian' \(did you mean train\?\)$/],
    [['train', '--epoch', '3'], /^siamese: unknown option '--epoch' \(did you mean --epochs\?\)$/],
    [['compare', '--sedes', '2'], /^siamese: unknown option '--sedes' \(did you mean --seeds\?\)$/],
    [['--verison'], /^siamese: unknown option '--verison' \(did you mean --version\?\)$/],
  ] as const) {
    const r = siamese([...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr.trimEnd(), hint);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});
