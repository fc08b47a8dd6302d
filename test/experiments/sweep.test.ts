/**
 * sweep on a tiny data set (8 classes of 12x12 images, 1 epoch on 200 pairs, 3 trials, 2 folds,
 * 2 seeds): the folds are class-disjoint and never touch the test classes; the same sweep twice
 * gives the same trials and results; a sweep whose process is killed (SIGKILL) and then run again
 * ends with the results of an uninterrupted one; `siamese report` rebuilds the sweep's report
 * byte for byte and refuses a bad results.json in one line; bad specs are refused with one line,
 * exit 2.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseSplit, resolveSplit } from '../../src/data/split.ts';
import { resultsJson } from '../../src/experiments/collect.ts';
import { foldGroups, foldSplit, runSweep, type SweepOptions, type SweepResults } from '../../src/experiments/sweep.ts';
import { sweepVerdict, verdictDifferences, verdictText } from '../../src/viz/sweepVerdict.ts';
import { bestThresholdWords } from '../../src/viz/accuracyWords.ts';
import { summaryText } from '../../src/cli/sweep.ts';
import type { PairedComparison } from '../../src/experiments/results.ts';
import { writeExperimentReport } from '../../src/viz/experimentReport.ts';
import { readResults } from '../../src/viz/readResults.ts';
import { EMBEDDINGS_FILE, readEmbeddingsIndex } from '../../src/train/epochEmbeddings.ts';
import { sweepHtml, sweepMarkdown, writeSweepReport } from '../../src/viz/sweepReport.ts';
import { siamese, siameseAsync } from '../cli/run.ts';
import { REPO_ROOT } from '../helpers.ts';
import { writeBandsIdx } from '../data/datasets.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-sweep-'));
after(() => rmSync(root, { recursive: true, force: true }));

const data = join(root, 'data');
writeBandsIdx(data);

const ARGS = ['--data', 'idx', '--data-dir', data, '--trials', '3', '--folds', '2', '--seeds', '2', '--epochs', '1', '--train-pairs', '200', '--workers', '2'];
const options = (out: string): SweepOptions => ({
  data: { name: 'idx', dir: data },
  trials: 3,
  folds: 2,
  seeds: 2,
  epochs: 1,
  trainPairs: 200,
  workers: 2,
  out,
});

/** What must not depend on the run: every number and parameter (paths, dates and timings aside). */
function essence(r: SweepResults): unknown {
  return JSON.parse(
    JSON.stringify({ split: r.split, protocol: r.protocol, losses: r.losses, comparisons: r.comparisons, ranking: r.ranking }, (k, v: unknown) =>
      k === 'runDir' ? undefined : v,
    ),
  );
}

test('folds: class-disjoint groups of the training classes; each fold trains on the rest and never sees a test class', () => {
  assert.deepEqual(foldGroups([0, 1, 2, 3, 4], 2), [[0, 2, 4], [1, 3]]);
  assert.deepEqual(foldGroups([9, 1, 5, 3, 7, 2, 8, 0], 4), [[0, 5], [1, 7], [2, 8], [3, 9]]);
  for (const [train, k] of [[[0, 1, 2, 3, 4], 2], [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 4], [[1, 3, 4, 6, 8, 9], 3]] as const) {
    const groups = foldGroups(train, k);
    const all = groups.flat().sort((a, b) => a - b);
    assert.deepEqual(all, [...train].sort((a, b) => a - b), 'every training class in exactly one group');
    for (const g of groups) {
      assert.ok(g.length >= 2);
      const s = resolveSplit(parseSplit(foldSplit(train, g)), 12);
      assert.deepEqual(s.testClasses, g);
      assert.deepEqual(s.trainClasses, train.filter((c) => !g.includes(c)));
      assert.ok(s.trainClasses.every((c) => !g.includes(c)), 'validation classes never trained on');
      assert.ok([...s.trainClasses, ...s.testClasses].every((c) => (train as readonly number[]).includes(c)), 'only training classes');
    }
  }
});

let reference: SweepResults | undefined;

test('a tiny sweep: results.json as documented; the same sweep twice gives the same trials and results', async () => {
  const a = await runSweep(options(join(root, 'a')));
  const b = await runSweep(options(join(root, 'b')));
  assert.equal(a.status, 'finished');
  assert.equal(a.failures.length, 0);
  const r = a.results!;
  reference = r;
  const file = JSON.parse(readFileSync(join(root, 'a', 'results.json'), 'utf8')) as SweepResults;
  assert.equal(file.kind, 'sweep');
  assert.deepEqual(file.split, { spec: 'classes', trainClasses: [0, 1, 2, 3], testClasses: [4, 5, 6, 7] });
  assert.deepEqual(file.losses.map((l) => l.id), ['contrastive', 'yukawa']);
  for (const l of file.losses) {
    assert.equal(l.trials.length, 3);
    assert.deepEqual(l.space.map((d) => d.name), l.id === 'contrastive' ? ['margin'] : ['kappa', 'power']);
    for (const t of l.trials) {
      assert.equal(t.validation.folds.length, 2);
      const mean = (t.validation.folds[0]!.mapAtR! + t.validation.folds[1]!.mapAtR!) / 2;
      assert.ok(Math.abs(t.validation.mapAtR! - mean) < 1e-12);
      for (const d of l.space) assert.ok(t.params[d.name]! >= d.lo && t.params[d.name]! <= d.hi);
    }
    // the best trial is the one with the highest validation MAP@R
    assert.equal(l.best.validation.mapAtR, Math.max(...l.trials.map((t) => t.validation.mapAtR!)));
    assert.equal(l.test.seeds.length, 2);
    assert.ok(l.test.mapAtR.ci[0] <= l.test.mapAtR.mean && l.test.mapAtR.mean <= l.test.mapAtR.ci[1]);
    for (const v of [l.test.mapAtR.mean, l.test.precisionAt1.mean, l.test.accuracy.mean, l.foldModels.concatenated.mapAtR, l.untuned.test.mapAtR.mean]) {
      assert.ok(v >= 0 && v <= 1, String(v));
    }
    assert.equal(l.foldModels.concatenated.dim, 2 * 128);
    // the best-threshold pair accuracy of every final run, as its result.json has it
    // a searched loss: its defaults are trained apart (sharesFinals), from their own folders
    assert.equal(l.untuned.sameAsTuned, undefined);
    assert.deepEqual(l.untuned.test.seeds.map((x) => x.runDir), [0, 1].map((s) => join(root, 'a', 'runs', l.id, `default-seed${s}`)));
    assert.notDeepEqual(l.untuned.test.mapAtR.values, l.test.mapAtR.values);
    for (const [kind, t] of [['tuned', l.test], ['default', l.untuned.test]] as const) {
      const want = t.seeds.map((x) => (JSON.parse(readFileSync(join(root, 'a', 'runs', l.id, `${kind}-seed${x.seed}`, 'result.json'), 'utf8')) as { evaluation: { pairs: { best: { accuracy: number } } } }).evaluation.pairs.best.accuracy);
      assert.deepEqual(t.seeds.map((x) => x.bestAccuracy), want, `${l.id} ${kind}: per seed`);
      assert.deepEqual(t.bestAccuracy!.values, want, `${l.id} ${kind}: the measure`);
      assert.ok(Math.abs(t.bestAccuracy!.mean - (want[0]! + want[1]!) / 2) < 1e-12);
      assert.equal(t.accuracyAt, 'threshold', 'contrastive and Yukawa: at D < 0.5');
    }
    // trial 1 is the same for every run of the loss: the trials differ only by their parameters
    const manifest = JSON.parse(readFileSync(join(root, 'a', 'runs', l.id, 'trial00', 'fold1', 'manifest.json'), 'utf8')) as { config: { split: string } };
    assert.equal(manifest.config.split, 'train=0,2;test=1,3');
    // per-epoch embeddings: the final runs store them (of the test classes), the trials do not
    assert.equal(existsSync(join(root, 'a', 'runs', l.id, 'trial00', 'fold1', EMBEDDINGS_FILE)), false, 'a trial stores no embeddings');
    for (const kind of ['tuned', 'default']) {
      const emb = readEmbeddingsIndex(join(root, 'a', 'runs', l.id, `${kind}-seed0`, EMBEDDINGS_FILE));
      assert.deepEqual(emb.epochs, [0, 1]);
      assert.deepEqual([...new Set(emb.header.labels)].sort(), [4, 5, 6, 7], `${kind}: the test classes' images`);
    }
  }
  assert.deepEqual(essence(b.results!), essence(r));
  // the paired tests: like for like, the best-threshold pair accuracy and MAP@R
  for (const list of [r.comparisons.tuned, r.comparisons.untuned]) assert.deepEqual(list.map((c) => c.measure), ['bestAccuracy', 'mapAtR']);
  // the trials differ from each other (the search explores)
  assert.notDeepEqual(r.losses[0]!.trials[0]!.params, r.losses[0]!.trials[1]!.params);
});

test('killed with SIGKILL mid-sweep, the same command resumes and ends with the results of an uninterrupted sweep', async () => {
  assert.ok(reference, 'needs the sweep of the test before');
  const out = join(root, 'killed');
  const child = siameseAsync(['sweep', ...ARGS, '--out', out, '--no-report']);
  let err = '';
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      // a few trainings done, others under way: kill without warning
      if ((err.match(/finished in/g) ?? []).length >= 5 && child.exitCode === null && !child.killed) {
        child.kill('SIGKILL');
      }
    });
    child.on('exit', () => resolve());
  });
  assert.equal(child.signalCode, 'SIGKILL', `the sweep ended before it could be killed:\n${err}`);
  assert.ok(!readdirSync(out).includes('results.json'));
  const r = siamese(['sweep', ...ARGS, '--out', out, '--no-report']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /sweep: 2 losses x \(3 trials x 2 folds \+ 2 tuned \+ 2 default seeds\) = 20 trainings, [1-9]\d* finished already/);
  const resumed = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SweepResults;
  assert.deepEqual(essence(resumed), essence(reference));
  // and once finished, the same command trains nothing
  const again = siamese(['sweep', ...ARGS, '--out', out, '--no-report']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /nothing left to train/);
  assert.deepEqual(essence(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SweepResults), essence(reference));
});

test('the same --out with other settings is refused in one line that names them; the folder is untouched', () => {
  const out = join(root, 'a');
  assert.ok(existsSync(join(out, 'results.json')), 'needs the folder of the tiny-sweep test');
  const before = readFileSync(join(out, 'sweep.json'), 'utf8');
  const listing = readdirSync(out).sort();
  const args = ARGS.map((a, i) => (ARGS[i - 1] === '--folds' ? '3' : ARGS[i - 1] === '--epochs' ? '2' : a));
  const r = siamese(['sweep', ...args, '--out', out, '--no-report']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /holds a sweep with other settings \(folds: 2 there, 3 here; epochs: 1 there, 2 here; see /);
  assert.equal(readFileSync(join(out, 'sweep.json'), 'utf8'), before);
  assert.deepEqual(readdirSync(out).sort(), listing);
});

test('siamese report DIR rebuilds a sweep\'s report.md and report.html byte for byte from its results.json', () => {
  // the folder of the test before: finished, so the command trains nothing and writes the report
  const out = join(root, 'killed');
  assert.ok(existsSync(join(out, 'results.json')), 'needs the sweep of the test before');
  const trainedBy = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SweepResults).machine;
  const r = siamese(['sweep', ...ARGS, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /report: {2}.*report\.html/);
  // summarised again, nothing trained: the facts of the invocation that trained are kept, and the re-summary said
  const again = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SweepResults).machine;
  assert.ok(trainedBy.trainedNow > 0);
  assert.deepEqual({ ...again, summarisedAgain: undefined }, { ...trainedBy, summarisedAgain: undefined });
  assert.ok(again.summarisedAgain && again.summarisedAgain.wallSeconds > 0);
  assert.match(r.stdout, /\(0 trained now, 20 reused\), summarised again in \d+ s \(trained in \d+ s\)/);
  const md = readFileSync(join(out, 'report.md'));
  assert.match(md.toString(), new RegExp(`trained ${trainedBy.trainedNow} of them .* Summarised again from the stored runs .* nothing retrained\\.`));
  const html = readFileSync(join(out, 'report.html'));
  assert.match(md.toString(), /^# Sweep report/);
  // beside the table that shows both: the two MAP@R are of 2 classes per fold (groups {0,2} and
  // {1,3} of the training classes 0-3) and of the 4 test classes 4-7, not comparable
  const unlike = 'Val MAP@R is not comparable with test MAP@R: it is measured on 2 held-out training classes per fold, test MAP@R on the 4 test classes, and MAP@R is higher with fewer classes.';
  for (const text of [md.toString(), html.toString()]) {
    assert.equal(text.split(unlike).length, 2, 'the sentence, once');
    assert.ok(text.indexOf(unlike) > text.indexOf('test MAP@R (95% CI)'), 'after the table with both columns');
  }
  rmSync(join(out, 'report.md'));
  rmSync(join(out, 'report.html'));
  const rebuilt = siamese(['report', out]);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.equal(rebuilt.stdout, `wrote ${join(out, 'report.html')}\nwrote ${join(out, 'report.md')}\n`);
  assert.ok(readFileSync(join(out, 'report.md')).equals(md), 'report.md differs from the one sweep wrote');
  assert.ok(readFileSync(join(out, 'report.html')).equals(html), 'report.html differs from the one sweep wrote');
});

test('siamese report rebuilds the committed docs/sweep-mnist report byte for byte, which says its two MAP@R are not comparable', () => {
  const dir = join(root, 'sweep-mnist');
  mkdirSync(dir);
  copyFileSync(join(REPO_ROOT, 'docs', 'sweep-mnist', 'results.json'), join(dir, 'results.json'));
  const stored = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as SweepResults;
  for (const l of stored.losses) assert.ok(l.test.bestAccuracy && l.untuned.test.bestAccuracy && l.test.seeds.every((x) => typeof x.bestAccuracy === 'number'), l.id);
  for (const c of [...stored.comparisons.tuned, ...stored.comparisons.untuned]) assert.notEqual(c.measure, 'accuracy');
  const r = siamese(['report', dir]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['report.md', 'report.html']) {
    const committed = readFileSync(join(REPO_ROOT, 'docs', 'sweep-mnist', f));
    assert.ok(readFileSync(join(dir, f)).equals(committed), `${f} differs from docs/sweep-mnist/${f}: rebuild it with node bin/siamese.js report docs/sweep-mnist`);
    // MNIST: training classes 0-4, 4 folds validating on the pairs {0,1} {2,3} {0,4} {1,2}; test classes 5-9
    assert.ok(committed.toString().includes('(validation groups {0,1} {2,3} {0,4} {1,2}: too few training classes for disjoint groups, so pairs that overlap between folds)'), f);
    // pair accuracy like for like: the best threshold's for every loss, not triplet's 50% at D < 0.5 beside a batch loss's best
    assert.ok(committed.toString().includes('pair accuracy, best threshold'), f);
    assert.ok(committed.toString().includes('Pair accuracy is tested at each loss'), f);
    assert.ok(committed.toString().includes('Val MAP@R is not comparable with test MAP@R: it is measured on 2 held-out training classes per fold, test MAP@R on the 5 test classes, and MAP@R is higher with fewer classes.'), f);
  }
});

test('siamese report on a bad, corrupt or foreign sweep results.json: one line, exit 2, the old report untouched', () => {
  const src = join(root, 'killed', 'results.json');
  assert.ok(existsSync(src), 'needs the sweep of the test before');
  const good = JSON.parse(readFileSync(src, 'utf8')) as Record<string, unknown> & { losses: Record<string, unknown>[] };
  const dir = join(root, 'bad-report');
  mkdirSync(dir);
  writeFileSync(join(dir, 'report.md'), 'old md');
  writeFileSync(join(dir, 'report.html'), 'old html');
  const cases: [string, RegExp][] = [
    [readFileSync(src, 'utf8').slice(0, 500), /results\.json: not valid JSON/],
    [JSON.stringify({ ...good, losses: [{ ...good.losses[0], trials: 'many' }] }), /results\.json: losses\[0\]\.trials must be an array \(is it a results\.json written by `siamese sweep`\?\)/],
    [JSON.stringify({ ...good, ranking: {} }), /ranking\.verdict must be a string/],
    [JSON.stringify({ ...good, losses: [{ ...good.losses[0], trials: Array.from({ length: 1001 }, () => ({})) }] }), /losses\[0\]\.trials has 1001 entries, more than the 1000/],
    [JSON.stringify({ ...good, tool: 'other' }), /"tool" must be "siamese-lab"/],
    [JSON.stringify({ ...good, kind: 'benchmark' }), /"kind" is "benchmark", not a comparison's \(no kind\) or a sweep's/],
  ];
  for (const [text, why] of cases) {
    writeFileSync(join(dir, 'results.json'), text);
    const r = siamese(['report', dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, why);
    assert.equal(readFileSync(join(dir, 'report.md'), 'utf8'), 'old md');
    assert.equal(readFileSync(join(dir, 'report.html'), 'utf8'), 'old html');
    assert.deepEqual(readdirSync(dir).sort(), ['report.html', 'report.md', 'results.json']);
  }
});

test('sweep whose report cannot be written: results.json complete, one line naming the rebuild command, exit 1', () => {
  const out = join(root, 'killed');
  rmSync(join(out, 'report.html'));
  mkdirSync(join(out, 'report.html')); // a folder where the file goes
  try {
    const r = siamese(['sweep', ...ARGS, '--out', out]);
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(last, new RegExp(`^siamese: the report could not be written: .*report\\.html.*; rebuild it with: siamese report ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.match(r.stdout, /report: {2}not written/);
    assert.equal((JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SweepResults).kind, 'sweep');
  } finally {
    rmSync(join(out, 'report.html'), { recursive: true, force: true });
  }
});

test('folds: with fewer than 2K training classes, K distinct pairs of classes, each validated on about equally often, never a fold\'s own training class', () => {
  // MNIST's 5 training classes and the default 4 folds, by hand
  assert.deepEqual(foldGroups([0, 1, 2, 3, 4], 4), [[0, 1], [2, 3], [0, 4], [1, 2]]);
  assert.deepEqual(foldGroups([3, 1, 0, 2], 4), [[0, 1], [2, 3], [1, 2], [0, 3]]);
  // brute force over sizes: distinct pairs, balanced within one, the rest trains
  for (let n = 4; n <= 13; n++) {
    const train = Array.from({ length: n }, (_, i) => 2 * i + 1);
    for (let k = Math.floor(n / 2) + 1; k <= n; k++) {
      const groups = foldGroups(train, k);
      assert.equal(groups.length, k);
      assert.equal(new Set(groups.map((g) => g.join(','))).size, k, `n=${n} k=${k}: distinct pairs`);
      const counts = new Map(train.map((c) => [c, 0]));
      for (const g of groups) {
        assert.equal(g.length, 2);
        assert.ok(g[0]! < g[1]! && g.every((c) => train.includes(c)));
        for (const c of g) counts.set(c, counts.get(c)! + 1);
        const s = resolveSplit(parseSplit(foldSplit(train, g)), 30);
        assert.deepEqual(s.testClasses, g);
        assert.equal(s.trainClasses.length, n - 2);
        assert.ok(s.trainClasses.every((c) => !g.includes(c)));
      }
      const c = [...counts.values()];
      assert.ok(Math.max(...c) - Math.min(...c) <= 1, `n=${n} k=${k}: ${c.join(',')}`);
    }
  }
});

test('a sweep with more folds than disjoint pairs allow: each fold trains on the other classes and validates on its pair, as its run folder records', async () => {
  const out = join(root, 'overlap');
  let notes: string[] = [];
  const o = await runSweep({ ...options(out), losses: 'contrastive:margin=0.5..1', trials: 1, folds: 3, seeds: 1 }, { onSweepPlan: (p) => (notes = p.notes) });
  assert.equal(o.status, 'finished');
  const r = o.results!;
  // 4 training classes, 3 folds: starts 0, 2, then 1 (the odd starts of the second round)
  assert.deepEqual(r.protocol.groups, [[0, 1], [2, 3], [1, 2]]);
  assert.ok(notes.some((n) => n.includes('3 folds on 4 training classes') && n.includes('{0,1} {2,3} {1,2}')), notes.join('\n'));
  const l = r.losses[0]!;
  const folds = l.trials[0]!.validation.folds;
  assert.equal(folds.length, 3);
  const want = [
    { train: [2, 3], test: [0, 1] },
    { train: [0, 1], test: [2, 3] },
    { train: [0, 3], test: [1, 2] },
  ];
  folds.forEach((f, k) => {
    const dir = join(out, 'runs', 'contrastive', 'trial00', `fold${k}`);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { split: { trainClasses: number[]; testClasses: number[] } };
    assert.deepEqual({ train: m.split.trainClasses, test: m.split.testClasses }, want[k], `fold ${k}`);
    // the fold's score is the MAP@R its own run measured on its validation pair
    const res = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { evaluation: { retrieval: { mapAtR: number } } };
    assert.equal(f.mapAtR, res.evaluation.retrieval.mapAtR, `fold ${k}`);
  });
  assert.ok(Math.abs(l.trials[0]!.validation.mapAtR! - folds.reduce((a, f) => a + f.mapAtR!, 0) / 3) < 1e-12);
  assert.equal(l.foldModels.concatenated.dim, 3 * 128);
  assert.equal(l.foldModels.separate.folds.length, 3);
});

test('bad specs and protocols: one line on stderr, exit 2, nothing written', () => {
  const cases: [string[], RegExp][] = [
    [['--losses', 'contrastive:margin=2..0.2'], /reversed/],
    [['--losses', 'contrastive:margin=1..1'], /empty range/],
    [['--losses', 'contrastive:marginn=0.2..2'], /no parameter "marginn"/],
    [['--losses', 'custom:pos=d^2;neg=1..2'], /not a numeric parameter/],
    [['--losses', 'yukawa:kappa=0..40:log'], /positive low bound/],
    [['--split', 'pairs'], /class-disjoint/],
    [['--folds', '6'], /--folds 6 needs at least 6 training classes/],
  ];
  for (const [extra, why] of cases) {
    const out = join(root, 'never', String(cases.findIndex((c) => c[0] === extra)));
    const args = ['sweep', '--data', 'idx', '--data-dir', data, '--trials', '1', '--epochs', '1', '--train-pairs', '100', '--out', out, ...extra];
    const r = siamese(args);
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, why);
    assert.ok(!existsSync(out), `${extra.join(' ')}: ${out} was created`);
  }
});

test('the report: per loss the chosen parameters, the search trace, test measures with CIs, the paired tests and the verdict; self-contained HTML', async () => {
  assert.ok(reference, 'needs the sweep of the tiny-sweep test');
  const dir = join(root, 'report');
  mkdirSync(dir);
  const files = await writeSweepReport(reference, dir);
  const md = readFileSync(files.md, 'utf8');
  const html = readFileSync(files.html, 'utf8');
  for (const l of reference.losses) {
    const chosen = Object.entries(l.best.params).map(([k, v]) => `${k}=${v}`).join(', ');
    assert.ok(md.includes(chosen) && html.includes(chosen), chosen);
    assert.ok(html.includes(`aria-label="search trace of ${l.label}"`));
    assert.ok(html.includes(`aria-label="parallel coordinates of ${l.label}"`));
    // one line per scored trial in the parallel coordinates
    const pc = html.split(`aria-label="parallel coordinates of ${l.label}"`)[1]!.split('</svg>')[0]!;
    assert.equal(pc.match(/<polyline/g)?.length, l.trials.length);
    // the test MAP@R with its 95% CI, as percentages: mean ± half-width where that lies in [0, 100]
    // (the tiny sweep's 2 seeds gave 52.84% ± 88.58 once, shown as such), else results.json's clipped ci
    const m = l.test.mapAtR;
    const end = (x: number): string => (x === 0 || x === 1 ? String(100 * x) : (100 * x).toFixed(2));
    const fits = m.mean - m.ci95 >= 0 && m.mean + m.ci95 <= 1;
    const ci = fits ? `${(100 * m.mean).toFixed(2)}% ± ${(100 * m.ci95).toFixed(2)}` : `${(100 * m.mean).toFixed(2)}% (${end(m.ci[0])} to ${end(m.ci[1])})`;
    assert.ok(md.includes(ci) && html.includes(ci), ci);
    assert.equal(md.split('\n').filter((line) => /^\| \d+ \|/.test(line) && md.indexOf(line) > md.indexOf(`## ${l.label}`)).length >= 3, true);
  }
  assert.ok(md.includes(sweepVerdict(reference).summary));
  assert.equal(reference.ranking.verdict, verdictText(sweepVerdict(reference)));
  for (const c of reference.comparisons.tuned) assert.ok(md.includes(c.verdict));
  // nothing fetched from elsewhere
  assert.doesNotMatch(html, /<script|src=|href=|@import|url\(/);
});

test('the report is made from the results as results.json holds them: a NaN (null in the file) reads the same fresh and rebuilt', async () => {
  assert.ok(reference, 'needs the sweep of the tiny-sweep test');
  const r = JSON.parse(JSON.stringify(reference)) as SweepResults;
  // a training that scored nothing and a CI that could not be computed
  r.losses[0]!.trials[1]!.validation.mapAtR = NaN;
  r.losses[0]!.test.mapAtR.ci95 = NaN;
  const fresh = join(root, 'nan-fresh');
  const rebuilt = join(root, 'nan-rebuilt');
  mkdirSync(fresh);
  mkdirSync(rebuilt);
  await writeSweepReport(r, fresh);
  writeFileSync(join(rebuilt, 'results.json'), resultsJson(r));
  const loaded = await readResults(rebuilt);
  assert.equal((loaded as SweepResults).losses[0]!.test.mapAtR.ci95, null);
  await writeExperimentReport(loaded, rebuilt);
  for (const f of ['report.md', 'report.html']) assert.equal(readFileSync(join(rebuilt, f), 'utf8'), readFileSync(join(fresh, f), 'utf8'), f);
  // shown as a dash, not as "NaN" or as a CI of 0.00
  const md = readFileSync(join(fresh, 'report.md'), 'utf8');
  assert.doesNotMatch(md, /NaN/);
  assert.match(md, new RegExp(`\\| ${(100 * r.losses[0]!.test.mapAtR.mean).toFixed(2)}% ± - \\|`));
});

/** A hand-made sweep's verdict input: contrastive, Yukawa and NT-Xent, 5 seeds, 3 tests per measure. */
function handMade(): Parameters<typeof sweepVerdict>[0] {
  const loss = (id: string, name: string, tuned: number, untuned: number) => ({ id, label: id, loss: name, fixed: {}, test: { mapAtR: { mean: tuned } }, untuned: { test: { mapAtR: { mean: untuned } } } });
  const cmp = (a: string, b: string, measure: PairedComparison['measure'], meanDiff: number, ci95: number, p: number, pHolm: number): PairedComparison => ({ a, b, measure, meanDiff, ci95, t: 0, p, pHolm, tests: 3, seeds: 5, verdict: '(the test)' });
  return {
    losses: [loss('contrastive', 'contrastive', 0.1866, 0.1761), loss('yukawa', 'yukawa', 0.1906, 0.1853), loss('nt-xent', 'nt-xent', 0.2527, 0.2347)],
    ranking: { tuned: ['nt-xent', 'yukawa', 'contrastive'], untuned: ['nt-xent', 'yukawa', 'contrastive'] },
    comparisons: {
      tuned: [
        cmp('contrastive', 'yukawa', 'mapAtR', -0.0039, 0.0231, 0.66, 1),
        cmp('contrastive', 'nt-xent', 'mapAtR', -0.0661, 0.0163, 0.0004, 0.005),
        cmp('contrastive', 'nt-xent', 'bestAccuracy', -0.05, 0.01, 0.0001, 0.0003), // pair accuracy: not in the verdict's list
        cmp('yukawa', 'nt-xent', 'mapAtR', -0.0622, 0.0259, 0.012, 0.024),
      ],
      untuned: [cmp('contrastive', 'yukawa', 'mapAtR', -0.0092, 0.0339, 0.49, 0.98), cmp('yukawa', 'nt-xent', 'mapAtR', -0.0494, 0.0361, 0.02, 0.06)],
    },
  };
}

test('the verdict: the rankings in plain words, whether tuning changed them, Yukawa against contrastive, then one line per significant MAP@R difference', () => {
  const v = sweepVerdict(handMade());
  assert.equal(
    v.summary,
    'Ranking by test MAP@R, tuned and at the defaults alike: nt-xent > yukawa > contrastive. Tuning did not change it. ' +
      "Only the differences listed below are significant after Holm's correction; the rest of the order may be chance. " +
      'Yukawa against contrastive, test MAP@R: 19.06% against 18.66% tuned, no significant difference (Holm p = 1.00); 18.53% against 17.61% at the defaults, no significant difference (Holm p = 0.98).',
  );
  assert.deepEqual(v.tuned, ['nt-xent > contrastive: +6.61 ± 1.63 points MAP@R, Holm p = 0.005', 'nt-xent > yukawa: +6.22 ± 2.59 points MAP@R, Holm p = 0.02']);
  assert.deepEqual(v.untuned, [], 'a raw p of 0.02 that Holm lifts to 0.06 is not significant');
  assert.equal(v.family, '3 tests of MAP@R, 5 seeds');
  assert.equal(
    verdictText(v),
    `${v.summary} Significant differences in MAP@R after Holm's correction (3 tests of MAP@R, 5 seeds): tuned: nt-xent > contrastive: +6.61 ± 1.63 points MAP@R, Holm p = 0.005; nt-xent > yukawa: +6.22 ± 2.59 points MAP@R, Holm p = 0.02; at the defaults: none.`,
  );
  // changed, nothing significant, no seed pair
  const h = handMade();
  h.ranking.untuned = ['yukawa', 'nt-xent', 'contrastive'];
  h.comparisons.tuned = h.comparisons.tuned.map((c) => ({ ...c, pHolm: 0.2 }));
  h.losses[1]!.loss = 'triplet';
  const w = sweepVerdict(h);
  assert.equal(
    w.summary,
    'Ranking by test MAP@R, tuned: nt-xent > yukawa > contrastive; at the defaults: yukawa > nt-xent > contrastive. Tuning changed it. ' +
      "No difference in MAP@R is significant after Holm's correction: the order may be chance.",
  );
});

test('the verdict of a sweep with one seed: no paired test could run, and it says so rather than counting untested pairs as tests', () => {
  const h = handMade();
  const oneSeed = (c: (typeof h.comparisons.tuned)[number]) => ({ ...c, seeds: 1, ci95: NaN, t: NaN, p: NaN, pHolm: NaN, verdict: 'one seed: no test' });
  h.comparisons.tuned = h.comparisons.tuned.map(oneSeed);
  h.comparisons.untuned = h.comparisons.untuned.map(oneSeed);
  const v = sweepVerdict(h);
  assert.equal(v.family, 'no paired tests: one seed');
  assert.match(v.summary, /Tuning did not change it\. With one seed per loss no difference can be tested: the order may be chance\. /);
  assert.doesNotMatch(v.summary, /significant after Holm/);
  assert.deepEqual([v.tuned, v.untuned], [[], []]);
});

test('a sweep of one loss: the verdict says once that there is nothing to compare, with no heading over an empty list (terminal, report, results.json)', () => {
  assert.ok(reference, 'needs the sweep of the tiny-sweep test');
  const r = JSON.parse(JSON.stringify(reference)) as SweepResults;
  const only = r.losses[0]!;
  r.losses = [only];
  r.ranking = { ...r.ranking, tuned: [only.id], untuned: [only.id], changed: false };
  r.comparisons = { tuned: [], untuned: [] };
  const v = sweepVerdict(r);
  const said = 'One loss only: nothing to rank or compare.';
  assert.equal(v.summary, said);
  assert.equal(verdictDifferences(v), undefined);
  assert.equal(verdictText(v), said);
  // the terminal: the summary line, then the totals; no heading, no "none"
  const text = summaryText({ status: 'finished', out: root, results: r, resultsPath: join(root, 'results.json'), failures: [], trained: 0, reused: 0 });
  const lines = text.split('\n');
  const at = lines.indexOf(said);
  assert.ok(at > 0, text);
  assert.equal(lines[at + 1], '', 'a blank line, then the totals');
  assert.doesNotMatch(text, /Significant differences|^\s*none/m);
  // the report: the verdict section is that one sentence
  const md = sweepMarkdown(r);
  assert.ok(md.includes(`## Verdict\n\n${said}\n\n## Paired tests`), md);
  assert.doesNotMatch(md, /Significant differences|^- none/m);
  const html = sweepHtml(r);
  assert.ok(html.includes(`<h2>Verdict</h2>`) && html.includes(`<p>${said}</p>`));
  assert.doesNotMatch(html, /Significant differences|<li>none/);
  // two losses still get the heading and the list (with its "none" when nothing is significant)
  const two = verdictDifferences(sweepVerdict(handMade()))!;
  assert.equal(two.heading, "Significant differences in MAP@R after Holm's correction (3 tests of MAP@R, 5 seeds):");
  assert.deepEqual(two.items, ['tuned: nt-xent > contrastive: +6.61 ± 1.63 points MAP@R, Holm p = 0.005', 'tuned: nt-xent > yukawa: +6.22 ± 2.59 points MAP@R, Holm p = 0.02']);
});

test('the note under the sweep table names the batch losses the sweep has, and none where it has none', () => {
  assert.ok(reference, 'needs the sweep of the tiny-sweep test');
  assert.deepEqual(reference.losses.map((l) => l.test.accuracyAt), ['threshold', 'threshold'], 'contrastive and Yukawa: no batch loss');
  const md = sweepMarkdown(reference);
  const t = reference.protocol.config.threshold ?? 0.5;
  const fixed = reference.losses.map((l) => `${l.label} ${(100 * l.test.accuracy.mean).toFixed(2)}%`).join(', ');
  assert.ok(
    md.includes(`Pair accuracy: at the threshold that classifies the test-class pairs best (in-sample, so optimistic), for every loss alike. At the fixed D < ${t}: ${fixed} (results.json: test.accuracy).`),
    md,
  );
  assert.doesNotMatch(md, /batch loss/);
  assert.doesNotMatch(sweepHtml(reference), /batch loss/);
  // the words alone, for one, two and three batch losses
  assert.equal(bestThresholdWords([]), 'for every loss alike');
  assert.equal(bestThresholdWords(['nt-xent']), 'for every loss alike; nt-xent sets no absolute distance scale, so a fixed threshold means nothing for it');
  assert.equal(bestThresholdWords(['nt-xent', 'arcface']), 'for every loss alike; nt-xent and arcface set no absolute distance scale, so a fixed threshold means nothing for them');
  assert.equal(bestThresholdWords(['a', 'b', 'c']), 'for every loss alike; a, b and c set no absolute distance scale, so a fixed threshold means nothing for them');
});

test('the sweep report with a batch loss: pair accuracy at the best threshold for every loss, labelled; the fixed-threshold figures said beside', async () => {
  assert.ok(reference, 'needs the sweep of the tiny-sweep test');
  const r = JSON.parse(JSON.stringify(reference)) as SweepResults;
  const m = (mean: number, ci95: number): SweepResults['losses'][number]['test']['accuracy'] => ({ mean, ci95, ci: [mean - ci95, mean + ci95], std: 0, values: [mean, mean] });
  // contrastive at D < 0.5 62.20%, at its best threshold 66.03%; a batch loss has only its best threshold's, 66.72%
  Object.assign(r.losses[0]!.test, { accuracyAt: 'threshold', accuracy: m(0.622, 0.0121), bestAccuracy: m(0.6603, 0.0109) });
  Object.assign(r.losses[1]!, { id: 'nt-xent', label: 'nt-xent', loss: 'nt-xent' });
  Object.assign(r.losses[1]!.test, { accuracyAt: 'best', accuracy: m(0.6672, 0.0142), bestAccuracy: m(0.6672, 0.0142) });
  const md = readFileSync((await writeSweepReport(r, mkdtempSync(join(root, 'batch-')))).md, 'utf8');
  const head = md.split('\n').find((line) => line.startsWith('| loss |'))!.split(' | ');
  const col = head.indexOf('pair accuracy, best threshold');
  assert.ok(col > 0, head.join('|'));
  const row = (id: string): string[] => md.split('\n').find((line) => line.startsWith(`| ${id} |`))!.split(' | ');
  assert.equal(row('contrastive')[col], '66.03% ± 1.09');
  assert.equal(row('nt-xent')[col], '66.72% ± 1.42');
  assert.ok(!row('contrastive').includes('62.20% ± 1.21'), 'not the D < 0.5 accuracy in the table');
  assert.ok(
    md.includes('Pair accuracy: at the threshold that classifies the test-class pairs best (in-sample, so optimistic), for every loss alike; nt-xent sets no absolute distance scale, so a fixed threshold means nothing for it. At the fixed D < 0.5: contrastive 62.20% (results.json: test.accuracy).'),
    md,
  );
  assert.match(md, /Pair accuracy is tested at each loss's best threshold/);
});

test('a sweep results.json from before the best-threshold accuracy still loads: its report says what is missing and how to add it', async () => {
  assert.ok(reference, 'needs the sweep of the tiny-sweep test');
  const old = JSON.parse(resultsJson(reference)) as SweepResults & { losses: Record<string, unknown>[] };
  for (const l of old.losses) {
    for (const t of [l.test, l.untuned.test]) {
      delete t.bestAccuracy;
      delete t.accuracyAt;
      for (const x of t.seeds) delete x.bestAccuracy;
    }
  }
  for (const c of [...old.comparisons.tuned, ...old.comparisons.untuned]) if (c.measure === 'bestAccuracy') c.measure = 'accuracy';
  old.ranking.verdict = 'Tuning did not change the ranking by test MAP@R: (the old paragraph).';
  const dir = join(root, 'old-format');
  mkdirSync(dir);
  writeFileSync(join(dir, 'results.json'), JSON.stringify(old, null, 2));
  const r = siamese(['report', dir]);
  assert.equal(r.code, 0, r.stderr);
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.match(md, /This results\.json was written before the best-threshold pair accuracy was kept: run the same sweep command on this folder again to add it \(nothing is retrained\)\./);
  assert.match(md, new RegExp(`\\| ${reference.losses[0]!.label} \\|.*\\| - \\|`));
  // the verdict in today's words, from the file's rankings and tests, not the stored paragraph
  assert.ok(md.includes(sweepVerdict(old).summary) && !md.includes('(the old paragraph)'));
  assert.match(md, /pair accuracy \(each loss's own threshold convention, a file from before like-for-like tests\)/);
});
