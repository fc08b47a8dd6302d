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
import { foldGroups, foldSplit, rankingVerdict, runSweep, type SweepOptions, type SweepResults } from '../../src/experiments/sweep.ts';
import { writeExperimentReport } from '../../src/viz/experimentReport.ts';
import { readResults } from '../../src/viz/readResults.ts';
import { EMBEDDINGS_FILE, readEmbeddingsIndex } from '../../src/train/epochEmbeddings.ts';
import { writeSweepReport } from '../../src/viz/sweepReport.ts';
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

test('siamese report DIR rebuilds a sweep\'s report.md and report.html byte for byte from its results.json', () => {
  // the folder of the test before: finished, so the command trains nothing and writes the report
  const out = join(root, 'killed');
  assert.ok(existsSync(join(out, 'results.json')), 'needs the sweep of the test before');
  const r = siamese(['sweep', ...ARGS, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /report: {2}.*report\.html/);
  const md = readFileSync(join(out, 'report.md'));
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
  const r = siamese(['report', dir]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['report.md', 'report.html']) {
    const committed = readFileSync(join(REPO_ROOT, 'docs', 'sweep-mnist', f));
    assert.ok(readFileSync(join(dir, f)).equals(committed), `${f} differs from docs/sweep-mnist/${f}: rebuild it with node bin/siamese.js report docs/sweep-mnist`);
    // MNIST: training classes 0-4 in the fold groups {0,2,4} and {1,3}; test classes 5-9
    assert.ok(committed.toString().includes('Val MAP@R is not comparable with test MAP@R: it is measured on 2-3 held-out training classes per fold, test MAP@R on the 5 test classes, and MAP@R is higher with fewer classes.'), f);
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

test('bad specs and protocols: one line on stderr, exit 2, nothing written', () => {
  const cases: [string[], RegExp][] = [
    [['--losses', 'contrastive:margin=2..0.2'], /reversed/],
    [['--losses', 'contrastive:margin=1..1'], /empty range/],
    [['--losses', 'contrastive:marginn=0.2..2'], /no parameter "marginn"/],
    [['--losses', 'custom:pos=d^2;neg=1..2'], /not a numeric parameter/],
    [['--losses', 'yukawa:kappa=0..40:log'], /positive low bound/],
    [['--split', 'pairs'], /class-disjoint/],
    [['--folds', '3'], /--folds 3 needs 6 training classes/],
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
    // the test MAP@R with its 95% CI, as percentages
    const ci = `${(100 * l.test.mapAtR.mean).toFixed(2)}% ± ${(100 * l.test.mapAtR.ci95).toFixed(2)}`;
    assert.ok(md.includes(ci) && html.includes(ci), ci);
    assert.equal(md.split('\n').filter((line) => /^\| \d+ \|/.test(line) && md.indexOf(line) > md.indexOf(`## ${l.label}`)).length >= 3, true);
  }
  assert.ok(md.includes(reference.ranking.verdict));
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

test('the verdict says whether tuning changed the ranking, and which differences hold after Holm', () => {
  const sig = { a: 'a', b: 'b', measure: 'mapAtR' as const, meanDiff: 0.05, ci95: 0.01, t: 9, p: 0.001, pHolm: 0.002, tests: 1, seeds: 5, verdict: 'a > b in MAP@R by 5.00 points' };
  const none = { ...sig, p: 0.4, pHolm: 0.4, verdict: 'no significant difference' };
  const changed = rankingVerdict(['a', 'b'], ['b', 'a'], { tuned: [sig], untuned: [none] });
  assert.match(changed, /^Tuning changed the ranking by test MAP@R: tuned a > b; at the defaults b > a\./);
  assert.match(changed, /Tuned, significant after Holm's correction: a > b in MAP@R by 5.00 points\./);
  assert.match(changed, /At the defaults, no difference in MAP@R is significant\./);
  const same = rankingVerdict(['a', 'b'], ['a', 'b'], { tuned: [none], untuned: [none] });
  assert.match(same, /^Tuning did not change the ranking by test MAP@R: a > b both tuned and at the defaults\./);
  assert.match(same, /order may be chance/);
  // a raw p below 0.05 that Holm lifts above it is not significant
  assert.match(rankingVerdict(['a', 'b'], ['a', 'b'], { tuned: [{ ...sig, p: 0.03, pHolm: 0.09 }], untuned: [] }), /Tuned, no difference in MAP@R is significant/);
});
