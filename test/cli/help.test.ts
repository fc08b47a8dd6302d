import assert from 'node:assert/strict';
import { test } from 'node:test';
import { siamese } from './run.ts';

/**
 * What each command uses, written out by hand from what its library call reads: the help must
 * list exactly these (an option listed but ignored is a trap, an option read but unlisted is
 * hidden). The network options (--base, --embedding-dim) shape a bare weights file's network;
 * --pair-seed and --threshold make and score test pairs, which only train, predict and compare
 * do; --data is the images embed embeds, and export's bare weights file's image size.
 */
const NETWORK = ['--base', '--embedding-dim'];
const PAIRS = ['--pair-seed', '--threshold'];
const DATA = ['--data', '--data-dir'];
const EXPECTED: Record<string, string[]> = {
  '': ['--version', '--debug', '--help'],
  train: [
    '--loss', '--epochs', '--batch-size', '--optimizer', '--lr', '--seed', '--margin', '--kappa', '--power', '--pos', '--neg', '--param',
    '--miner', '--per-class', '--train-pairs', '--dropout', '--engine', '--threads', '--proxy-lr', ...NETWORK, ...PAIRS, ...DATA, '--split',
    '--out', '--resume', '--init-weights', '--reset-weights', '--snapshot-points', '--help',
  ],
  predict: [...NETWORK, ...PAIRS, ...DATA, '--split', '--weights', '--loss', '--no-retrieval', '--help'],
  compare: [
    ...NETWORK, ...PAIRS, '--losses', '--seeds', '--epochs', '--batch-size', '--optimizer', '--lr', '--train-pairs', '--out', '--resume',
    '--workers', '--quick', '--tsne-points', '--snapshot-points', '--no-retrieval', '--no-report', '--engine', ...DATA, '--split', '--queue', '--queue-name', '--help',
  ],
  worker: ['--queue', '--queue-name', '--concurrency', '--threads', '--data-dir', '--help'],
  queue: ['--help'],
  serve: ['--port', '--host', '--help'],
  doctor: ['--json', '--help'],
  sweep: [
    ...NETWORK, ...PAIRS, '--losses', '--trials', '--folds', '--seeds', '--search-seed', '--epochs', '--batch-size', '--optimizer', '--lr',
    '--train-pairs', '--out', '--workers', '--queue', '--queue-name', '--quick', '--plan', '--no-report', '--engine', ...DATA, '--split', '--help',
  ],
  report: ['--help'],
  embed: [...NETWORK, '--weights', '--split', '--out', '--labels', '--format', ...DATA, '--help'],
  export: [...NETWORK, '--weights', '--out', '--format', ...DATA, '--help'],
  tsne: ['--in', '--out', '--perplexity', '--theta', '--iterations', '--seed', '--help'],
  losses: ['--plot', '--losses', '--pos', '--neg', '--out', '--help'],
};

/** The long flags of a help text's Options section (two spaces, then the flag). */
function listedOptions(help: string): string[] {
  const section = help.split(/^Options:\n/m)[1]!.split(/^\n?Commands:\n/m)[0]!;
  return [...section.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!);
}

test('every command\'s --help lists exactly the options that command uses', () => {
  for (const [command, expected] of Object.entries(EXPECTED)) {
    const r = siamese(command ? [command, '--help'] : ['--help']);
    assert.equal(r.code, 0, command);
    assert.deepEqual(listedOptions(r.stdout).sort(), [...expected].sort(), `siamese ${command} --help`);
  }
  // and every command is in the table
  const commands = [...siamese(['--help']).stdout.split(/^Commands:\n/m)[1]!.matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]!);
  assert.deepEqual(commands.filter((c) => c !== 'help').sort(), Object.keys(EXPECTED).filter(Boolean).sort());
});

test('train --help names every miner', () => {
  const help = siamese(['train', '--help']).stdout.replace(/\s+/g, ' ');
  // the miners of src/mining (MINER_NAMES), the seed's naive `all` included
  assert.match(help, /online miner: all, batch-all, batch-hard, semihard, hard-negative/);
});

test('no --help points at a source file: the installed package has no src/', () => {
  for (const command of Object.keys(EXPECTED)) {
    const help = siamese(command ? [command, '--help'] : ['--help']).stdout;
    assert.doesNotMatch(help, /\bsrc\//, `siamese ${command} --help`);
  }
});

test('sweep --help: its --split says classes is the default and pairs is refused (train\'s says pairs is the default)', () => {
  const split = (command: string): string => {
    const help = siamese([command, '--help']).stdout;
    return help.split(/^ {2}--split <spec> +/m)[1]!.split(/^ {2}--/m)[0]!.replace(/\s+/g, ' ');
  };
  assert.match(split('sweep'), /^classes \(train on the first half of the classes, test on the rest; the default\)/);
  assert.match(split('sweep'), /pairs is refused/);
  assert.doesNotMatch(split('sweep'), /pairs \(every class on both sides, default\)/);
  assert.match(split('train'), /^pairs \(every class on both sides, default\)/);
});
