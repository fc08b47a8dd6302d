import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeShapesFolder } from '../data/datasets.ts';
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

/** exit 2, one siamese: line matching `pattern`, nothing on stdout */
function refusedWith(r: ReturnType<typeof siamese>, pattern: RegExp, what: string): void {
  assert.equal(r.code, 2, `exit code for ${what}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line for ${what}, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern, what);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
}

// a slice so small that a command the fix no longer refuses still ends in seconds
const TINY = ['--epochs', '1', '--train-pairs', '50', '--snapshot-points', '0'];
const TINY_GRID = ['--losses', 'contrastive', '--seeds', '1', ...TINY, '--tsne-points', '0', '--workers', '1', '--no-report'];

test('a refused command leaves no folder behind, not even the runs/ of its default output', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'cli-cwd-'));
  // the output lock made runs/<loss>-seed0 (and runs/) before the config was checked; the refusal removed only the inner one
  refusedWith(siamese(['train', '--dropout', '1', ...TINY], { cwd }), /dropout must be in \[0, 1\), got 1/, 'train --dropout 1');
  refusedWith(siamese(['compare', '--losses', ',,'], { cwd }), /loss list ",,": entry 1 is empty/, 'compare --losses ,,');
  refusedWith(siamese(['train', '--out', join(cwd, 'a', 'b', 'c'), '--loss', 'triplet', '--miner', 'nope', ...TINY], { cwd }), /unknown miner "nope"/, 'train --miner nope');
  assert.deepEqual(readdirSync(cwd), []);
});

test('an output folder that cannot be made (under /proc) is one line, not a hang at full CPU', { skip: !existsSync('/proc/self') && 'no /proc here' }, () => {
  // Node's recursive mkdirSync loops for ever when mkdir answers ENOENT under an existing parent
  const r = siamese(['train', '--out', '/proc/siamese-test-out', ...TINY], { timeout: 60_000 });
  refusedWith(r, /^siamese: \/proc\/siamese-test-out: cannot create the output folder: /, 'train --out /proc/...');
  const c = siamese(['compare', '--out', '/proc/siamese-test-out/x', ...TINY_GRID], { timeout: 60_000 });
  refusedWith(c, /cannot create the output folder/, 'compare --out /proc/...');
});

test('--out naming a folder of another kind of result is refused before anything is written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-kind-'));
  const comparison = join(dir, 'cmp');
  const run = join(dir, 'run');
  for (const [d, marker] of [[comparison, 'compare.json'], [run, 'manifest.json']] as const) {
    mkdirSync(d);
    writeFileSync(join(d, marker), '{}');
  }
  refusedWith(siamese(['train', '--out', comparison, ...TINY]), /cmp holds a comparison \(compare\.json\), not a training run: choose another folder/, 'train into a comparison');
  refusedWith(siamese(['compare', '--out', run, ...TINY_GRID]), /run holds a training run \(manifest\.json\), not a comparison/, 'compare into a run');
  refusedWith(
    siamese(['sweep', '--out', comparison, '--losses', 'contrastive:margin=0.5..1', '--trials', '1', '--folds', '2', '--seeds', '1', '--epochs', '1', '--train-pairs', '50', '--workers', '1', '--no-report']),
    /cmp holds a comparison \(compare\.json\), not a sweep/,
    'sweep into a comparison',
  );
  assert.deepEqual(readdirSync(comparison), ['compare.json']);
  assert.deepEqual(readdirSync(run), ['manifest.json']);
});

test('--queue-name without --queue is refused (compare and sweep ignored it and ran here)', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'cli-q-')), 'out');
  refusedWith(siamese(['compare', '--queue-name', 'grid', '--out', out, ...TINY_GRID]), /^siamese: --queue-name needs --queue$/, 'compare');
  refusedWith(siamese(['sweep', '--queue-name', 'grid', '--plan']), /^siamese: --queue-name needs --queue$/, 'sweep');
  assert.equal(existsSync(out), false);
});

test('an embedding size beyond the limit is one line, from the option and from a damaged manifest (was: internal error)', () => {
  refusedWith(siamese(['train', '--embedding-dim', '100000000', ...TINY]), /^siamese: --embedding-dim must be an integer from 1 to 4096, got "100000000"$/, '--embedding-dim');
  const dir = mkdtempSync(join(tmpdir(), 'cli-dim-'));
  const run = join(dir, 'run');
  const t = siamese(['train', '--out', run, '--embedding-dim', '8', '--epochs', '0', '--train-pairs', '50', '--snapshot-points', '0']);
  assert.equal(t.code, 0, t.stderr);
  const path = join(run, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  m.config.embeddingDim = 1e9;
  m.status = 'interrupted';
  writeFileSync(path, JSON.stringify(m));
  refusedWith(siamese(['train', '--resume', run]), /manifest\.json: invalid run manifest: embedding size must be at most 4096, got 1000000000$/, 'resume');
});

test('embed refuses --labels naming the --out file (the labels overwrote the embeddings)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-emb-'));
  const run = join(dir, 'run');
  const t = siamese(['train', '--out', run, '--embedding-dim', '4', '--epochs', '0', '--train-pairs', '50', '--snapshot-points', '0']);
  assert.equal(t.code, 0, t.stderr);
  const out = join(dir, 'e.npy');
  refusedWith(siamese(['embed', '--weights', run, '--out', out, '--labels', join(dir, '.', 'e.npy')]), /--labels and --out name the same file/, 'embed');
  assert.equal(existsSync(out), false);
});

test('an empty file or folder name is refused, for every command (train --out "" wrote its run into the current folder)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'cli-empty-'));
  const cases: [string[], RegExp][] = [
    [['train', '--out', '', ...TINY], /^siamese: --out needs a folder, got ""$/],
    // --resume "" was falsy: a new default run started
    [['train', '--resume', ''], /^siamese: --resume needs a folder, got ""$/],
    [['train', '--init-weights', ' ', ...TINY], /^siamese: --init-weights needs a file, got " "$/],
    [['compare', '--out', '', ...TINY_GRID], /^siamese: --out needs a folder, got ""$/],
    [['predict', '--weights', ''], /^siamese: --weights needs a file, got ""$/],
    [['report', ''], /^siamese: report <run-dir> needs a folder, got ""$/],
    [['serve', '.', '', '--port', '0'], /^siamese: serve \[dir\.\.\.\] needs a folder, got ""$/],
    [['tsne', '--in', 'x.npy', '--out', ''], /^siamese: --out needs a file, got ""$/],
  ];
  for (const [args, pattern] of cases) refusedWith(siamese(args, { cwd, timeout: 60_000 }), pattern, args.join(' '));
  assert.deepEqual(readdirSync(cwd), []);
});

test('train refuses --init-weights with --reset-weights (the second was dropped unsaid)', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'cli-init-')), 'run');
  refusedWith(siamese(['train', '--reset-weights', '--init-weights', 'w.safetensors', '--out', out, ...TINY]), /give --init-weights FILE .* or --reset-weights .*, not both$/, 'both');
  assert.equal(existsSync(out), false);
});

test('a file where a folder belongs is named in words, not by its errno code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-notdir-'));
  writeFileSync(join(dir, 'file'), 'x');
  refusedWith(siamese(['report', join(dir, 'file')]), /file\/results\.json: cannot read \(a part of the path is a file, not a folder\)$/, 'report FILE');
});

test('report refuses a file named figures in the folder (the swap renamed it aside and left it hidden)', async () => {
  const { syntheticResults } = await import('../fixtures/compareResults.ts');
  const dir = mkdtempSync(join(tmpdir(), 'cli-fig-'));
  writeFileSync(join(dir, 'results.json'), JSON.stringify(syntheticResults({ tsne: false, retrieval: false })));
  writeFileSync(join(dir, 'figures'), 'my notes');
  refusedWith(siamese(['report', dir]), /figures: a file, where the report puts its figures folder; move it away and run again$/, 'report');
  assert.deepEqual(readdirSync(dir).sort(), ['figures', 'results.json']);
  assert.equal(readFileSync(join(dir, 'figures'), 'utf8'), 'my notes');
});

test('weights holding NaN or Inf are refused by every command that reads them, naming the file (export wrote them out)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-nan-'));
  const run = join(dir, 'run');
  const t = siamese(['train', '--out', run, '--embedding-dim', '4', '--epochs', '0', '--train-pairs', '50', '--snapshot-points', '0']);
  assert.equal(t.code, 0, t.stderr);
  // the last float of the file is the last bias value: make it NaN, as a flipped exponent byte would
  const bytes = readFileSync(join(run, 'weights.safetensors'));
  bytes.writeFloatLE(Number.NaN, bytes.length - 4);
  const damaged = join(dir, 'damaged.safetensors');
  writeFileSync(damaged, bytes);
  const said = /damaged\.safetensors: 1 of its weights are NaN or Inf \(first in dense_\d\.\w+\): the file is damaged; no network can be run or trained from it$/;
  refusedWith(siamese(['predict', '--weights', damaged, '--embedding-dim', '4', '--no-retrieval']), said, 'predict');
  refusedWith(siamese(['embed', '--weights', damaged, '--embedding-dim', '4', '--out', join(dir, 'e.npy')]), said, 'embed');
  refusedWith(siamese(['export', '--weights', damaged, '--embedding-dim', '4', '--out', join(dir, 'w.onnx')]), said, 'export');
  assert.deepEqual(readdirSync(dir).sort(), ['damaged.safetensors', 'run']);
});

test('export refuses a --format that contradicts the --out extension (onnx was written into a file named .h5)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-fmt-'));
  const run = join(dir, 'run');
  const t = siamese(['train', '--out', run, '--embedding-dim', '4', '--epochs', '0', '--train-pairs', '50', '--snapshot-points', '0']);
  assert.equal(t.code, 0, t.stderr);
  const out = join(dir, 'out');
  mkdirSync(out);
  refusedWith(siamese(['export', '--weights', run, '--format', 'onnx', '--out', join(out, 'x.h5')]), /^siamese: --format onnx but --out .*x\.h5 names a Keras \.h5 file: give --out an \.onnx name, or leave out --format$/, 'onnx into .h5');
  refusedWith(siamese(['export', '--weights', run, '--format', 'keras-h5', '--out', join(out, 'x.SAFETENSORS')]), /^siamese: --format keras-h5 but --out .*x\.SAFETENSORS names a \.safetensors file: give --out a Keras \.h5 name, or leave out --format$/, 'h5 into .safetensors');
  assert.deepEqual(readdirSync(out), []);
  // an --out without a known extension takes the --format, and a matching pair is fine
  const bare = siamese(['export', '--weights', run, '--format', 'onnx', '--out', join(out, 'model.bin')]);
  assert.equal(bare.code, 0, bare.stderr);
  const same = siamese(['export', '--weights', run, '--format', 'keras-h5', '--out', join(out, 'w.hdf5')]);
  assert.equal(same.code, 0, same.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['model.bin', 'w.hdf5']);
});

test('compare --seeds: an empty entry inside the list is refused as --losses refuses one; a trailing comma is the one-seed list ("7," = seed 7)', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'cli-seeds-')), 'cmp');
  refusedWith(siamese(['compare', '--seeds', '1,,2', '--out', out]), /^siamese: seed list "1,,2": entry 2 is empty$/, '1,,2');
  refusedWith(siamese(['compare', '--seeds', ',1', '--out', out]), /^siamese: seed list ",1": entry 1 is empty$/, ',1');
  refusedWith(siamese(['compare', '--seeds', ',', '--out', out]), /^siamese: seed list ",": entry 1 is empty$/, ',');
  refusedWith(siamese(['compare', '--seeds', '1,,', '--out', out]), /^siamese: seed list "1,,": entry 2 is empty$/, '1,,');
  assert.equal(existsSync(out), false);
});

test('an output that is, lies inside or holds the --data-dir folder is refused before anything is written (train --out DATA wrote its run among the data)', () => {
  const root = mkdtempSync(join(tmpdir(), 'cli-datadir-'));
  const data = join(root, 'shapes');
  writeShapesFolder(data, 4);
  // 8 classes: sweep's class split needs 4 training classes for 2 folds
  for (const c of ['circle', 'square', 'star', 'circle']) cpSync(join(data, c), join(data, `${c}-${readdirSync(data).length}`), { recursive: true });
  const before = readdirSync(data, { recursive: true }).sort();
  // another spelling of the same folder: a link to it
  symlinkSync(data, join(root, 'link'));
  const run = join(root, 'run');
  const t = siamese(['train', '--data', 'folder', '--data-dir', data, '--out', run, '--embedding-dim', '4', '--epochs', '0', '--snapshot-points', '0']);
  assert.equal(t.code, 0, t.stderr);
  const dataOpts = ['--data', 'folder', '--data-dir', data];
  const said = (where: string) => new RegExp(`^siamese: \\S+ ${where} \\(--data-dir .*shapes\\): write the output outside it$`);
  const cases: [string[], RegExp, { cwd?: string }?][] = [
    [['train', ...dataOpts, '--out', data, ...TINY], said('is the data set folder')],
    [['train', ...dataOpts, '--out', join(data, 'runs', 'x'), ...TINY], said('lies inside the data set folder')],
    [['train', ...dataOpts, '--out', join(root, 'link', 'r'), ...TINY], said('lies inside the data set folder')],
    [['train', ...dataOpts, '--out', root, ...TINY], said('holds the data set folder')],
    // the default runs/<loss>-seed0, in a data folder that is the current one
    [['train', '--data', 'folder', '--data-dir', '.', ...TINY], /^siamese: runs\/contrastive-seed0 lies inside the data set folder \(--data-dir \.\): write the output outside it$/, { cwd: data }],
    [['compare', ...dataOpts, '--out', join(data, 'cmp'), ...TINY_GRID], said('lies inside the data set folder')],
    [['compare', ...dataOpts, '--resume', data], said('is the data set folder')],
    [['sweep', ...dataOpts, '--out', join(data, 'circle', 'sweep'), '--losses', 'contrastive:margin=0.5..1', '--trials', '1', '--folds', '2', '--seeds', '1', '--epochs', '1', '--train-pairs', '50', '--workers', '1', '--no-report'], said('lies inside the data set folder')],
    [['embed', '--weights', run, ...dataOpts, '--out', join(data, 'e.npy')], said('lies inside the data set folder')],
    [['embed', '--weights', run, ...dataOpts, '--format', 'projector', '--out', join(root, 'link')], said('is the data set folder')],
    [['export', '--weights', run, ...dataOpts, '--out', join(data, 'square', 'w.onnx')], said('lies inside the data set folder')],
  ];
  for (const [args, pattern, opts] of cases) refusedWith(siamese(args, { timeout: 120_000, ...opts }), pattern, args.join(' '));
  assert.deepEqual(readdirSync(data, { recursive: true }).sort(), before);
  assert.deepEqual(readdirSync(root).sort(), ['link', 'run', 'shapes']);
});

test('tsne refuses an --out that is not a .npy, or that names the --in file (the layout overwrote the input matrix)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-tsne-'));
  const input = join(dir, 'm.npy');
  const t = siamese(['train', '--out', join(dir, 'run'), '--embedding-dim', '3', '--epochs', '0', '--train-pairs', '50', '--snapshot-points', '0']);
  assert.equal(t.code, 0, t.stderr);
  const e = siamese(['embed', '--weights', join(dir, 'run'), '--embedding-dim', '3', '--out', input]);
  assert.equal(e.code, 0, e.stderr);
  const before = readFileSync(input);
  refusedWith(siamese(['tsne', '--in', input, '--out', join(dir, '.', 'm.npy'), '--iterations', '10']), /^siamese: --out names the --in file \(.*m\.npy\): write the layout to its own \.npy$/, 'tsne --out = --in');
  refusedWith(siamese(['tsne', '--in', input, '--out', join(dir, 'layout.txt'), '--iterations', '10']), /^siamese: --out must name a \.npy file, got ".*layout\.txt"$/, 'tsne --out .txt');
  assert.deepEqual(readFileSync(input), before);
  assert.deepEqual(readdirSync(dir).sort(), ['m.npy', 'run']);
});

test('an empty --queue-name is refused (queue status and worker took it for every grid, compare named its grid "")', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'cli-qname-')), 'cmp');
  // no Redis is reached: the option is refused first
  for (const args of [
    ['queue', 'status', '--queue', 'redis://127.0.0.1:1', '--queue-name', ''],
    ['queue', 'clean', '--queue', 'redis://127.0.0.1:1', '--queue-name', ' '],
    ['worker', '--queue', 'redis://127.0.0.1:1', '--queue-name', ''],
    ['compare', '--queue', 'redis://127.0.0.1:1', '--queue-name', '', '--out', out],
    ['sweep', '--queue', 'redis://127.0.0.1:1', '--queue-name', '', '--plan'],
  ]) {
    refusedWith(siamese(args), /^siamese: --queue-name needs a name, got " ?"$/, args.join(' '));
  }
  assert.equal(existsSync(out), false);
});
