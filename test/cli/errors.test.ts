import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { siamese } from './run.ts';

/** Bad input: exit code 2, exactly one line on stderr, no stack trace. */
function expectUsageError(args: string[], pattern: RegExp): void {
  const r = siamese(args);
  assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line for ${args.join(' ')}, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^siamese: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/);
}

test('invalid options and values give one clear line and exit code 2', () => {
  expectUsageError(['train', '--loss', 'hinge'], /unknown loss "hinge"; valid losses: contrastive, yukawa/);
  expectUsageError(['train', '--batch-size', '0'], /--batch-size must be an integer >= 1, got "0"/);
  expectUsageError(['train', '--epochs', '-3'], /--epochs must be an integer >= 0/);
  expectUsageError(['train', '--epochs', 'many'], /--epochs must be an integer/);
  expectUsageError(['train', '--optimizer', 'lbfgs', '--epochs', '1'], /unknown optimizer "lbfgs"/);
  expectUsageError(['train', '--colour', 'red'], /unknown option '--colour'/);
  expectUsageError(['fly'], /unknown command 'fly'/);
});

test('a missing or corrupt weights file gives one clear line and exit code 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  expectUsageError(['predict', '--weights', join(dir, 'nope.safetensors')], /no such file/);
  writeFileSync(join(dir, 'bad.safetensors'), 'not a safetensors file at all');
  expectUsageError(['predict', '--weights', join(dir, 'bad.safetensors')], /bad\.safetensors: .*safetensors/);
  writeFileSync(join(dir, 'bad.h5'), '\x89HDF\r\n\x1a\n then garbage');
  expectUsageError(['predict', '--weights', join(dir, 'bad.h5')], /bad\.h5/);
  writeFileSync(join(dir, 'text.h5'), 'plain text, no HDF5 signature');
  expectUsageError(['predict', '--weights', join(dir, 'text.h5')], /text\.h5: not an HDF5 file \(no HDF5 signature\)/);
  // nothing half-written next to them
  assert.deepEqual(readdirSync(dir).sort(), ['bad.h5', 'bad.safetensors', 'text.h5']);
});

test('--help works for the program and every command', () => {
  for (const args of [['--help'], ['train', '--help'], ['predict', '--help']]) {
    const r = siamese(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /Usage: siamese/);
  }
  assert.match(siamese(['train', '--help']).stdout, /--reset-weights/);
});

test("the queue command's own subcommands give one line too (not commander's \"error:\" line as well)", () => {
  // no Redis is reached: the option errors come first
  expectUsageError(['queue', 'clean', '--queue', 'redis://127.0.0.1:1'], /^siamese: required option '--queue-name <name>' not specified$/);
  expectUsageError(['queue', 'status'], /^siamese: required option '--queue <url>' not specified$/);
  expectUsageError(['queue', 'status', '--queue', 'redis://127.0.0.1:1', '--qeue-name', 'x'], /^siamese: unknown option '--qeue-name' \(did you mean --queue-name\?\)$/);
});

test('--resume given a file (not the folder) says so, not "cannot create the output folder"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const file = join(dir, 'results.json');
  writeFileSync(file, '{}');
  expectUsageError(['train', '--resume', file], /: not a run folder but a file: --resume takes the folder the run was written to$/);
  expectUsageError(['compare', '--resume', file], /: not a comparison folder but a file: --resume takes the folder compare wrote$/);
  assert.deepEqual(readdirSync(dir), ['results.json']);
});

test('compare and sweep: --workers beside --queue (the fleet trains, the threads would be ignored) and --queue-name alone are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  for (const cmd of ['compare', 'sweep']) {
    // no Redis is reached: the options are refused before anything connects or is written
    expectUsageError([cmd, '--queue', 'redis://127.0.0.1:9', '--workers', '2', '--out', join(dir, cmd)], /--workers .*through --queue.*siamese worker --concurrency/);
    expectUsageError([cmd, '--queue-name', 'study', '--out', join(dir, cmd)], /--queue-name needs --queue/);
  }
  assert.deepEqual(readdirSync(dir), []);
});
