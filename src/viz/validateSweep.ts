/**
 * Checks that a parsed results.json has the shape of `SweepResults` as far as the sweep's report
 * reads it, so that a truncated, hand-edited or foreign file fails with one clear line instead of
 * a TypeError inside the report. Numbers may be null (JSON's NaN). Lists are bounded by what a
 * sweep can write (`--trials` and `--folds` at most 1,000, `--seeds` at most 100), so that the
 * report's loops and charts stay small whatever the file says.
 */
import type { SweepResults } from '../experiments/sweep.ts';
import { Checker } from './validate.ts';

const MAX_LOSSES = 100;
const MAX_DIMS = 50;
const MAX_TRIALS = 1000;
const MAX_FOLDS = 1000;
const MAX_SEEDS = 100;
const MAX_COMPARISONS = MAX_LOSSES * (MAX_LOSSES - 1);

type Json = unknown;

/** Validate a parsed sweep results.json (kind "sweep"); returns it typed. Throws DataError naming the first problem. */
export function validateSweepResults(value: Json, source = 'results.json'): SweepResults {
  const c = new Checker(source, 'siamese sweep');
  const r = c.obj(value, 'the file');
  if (r['tool'] !== 'siamese-lab') c.fail('"tool"', 'must be "siamese-lab"');
  if (r['kind'] !== 'sweep') c.fail('"kind"', 'must be "sweep"');
  c.str(c.obj(r['dataset'], 'dataset')['name'], 'dataset.name');
  const split = c.obj(r['split'], 'split');
  for (const k of ['trainClasses', 'testClasses']) c.nums(c.list(split[k], `split.${k}`, 100_000), `split.${k}`);
  const protocol = c.obj(r['protocol'], 'protocol');
  for (const k of ['trials', 'folds', 'seeds']) c.num(protocol[k], `protocol.${k}`);
  c.list(protocol['groups'], 'protocol.groups', MAX_FOLDS).forEach((g, i) => c.nums(g, `protocol.groups[${i}]`));
  const config = c.obj(protocol['config'], 'protocol.config');
  for (const k of ['epochs', 'batchSize', 'trainPairs']) c.num(config[k], `protocol.config.${k}`);
  c.str(config['optimizer'], 'protocol.config.optimizer');
  const machine = c.obj(r['machine'], 'machine');
  for (const k of ['cores', 'workers', 'wallSeconds', 'trainings', 'trainedNow']) c.num(machine[k], `machine.${k}`);
  c.str(machine['node'], 'machine.node');
  if (machine['summarisedAgain'] !== undefined) {
    const again = c.obj(machine['summarisedAgain'], 'machine.summarisedAgain');
    c.num(again['wallSeconds'], 'machine.summarisedAgain.wallSeconds');
    for (const k of ['node', 'version']) c.str(again[k], `machine.summarisedAgain.${k}`);
  }

  const measure = (v: Json, path: string): void => {
    const m = c.obj(v, path);
    for (const k of ['mean', 'ci95', 'std']) c.num(m[k], `${path}.${k}`);
    c.nums(c.list(m['values'], `${path}.values`, MAX_FOLDS), `${path}.values`);
  };
  const scalars = (v: Json, path: string): void => {
    for (const [k, x] of Object.entries(c.obj(v, path))) if (typeof x !== 'number' && typeof x !== 'string' && x !== null) c.fail(`${path}.${k}`, 'must be a number or a string');
  };
  c.list(r['losses'], 'losses', MAX_LOSSES).forEach((x, i) => {
    const p = `losses[${i}]`;
    const l = c.obj(x, p);
    for (const k of ['id', 'label', 'loss', 'spec']) c.str(l[k], `${p}.${k}`);
    scalars(l['fixed'], `${p}.fixed`);
    c.list(l['space'], `${p}.space`, MAX_DIMS).forEach((y, j) => {
      const d = c.obj(y, `${p}.space[${j}]`);
      c.str(d['name'], `${p}.space[${j}].name`);
      c.num(d['lo'], `${p}.space[${j}].lo`);
      c.num(d['hi'], `${p}.space[${j}].hi`);
    });
    c.list(l['trials'], `${p}.trials`, MAX_TRIALS).forEach((y, j) => {
      const t = c.obj(y, `${p}.trials[${j}]`);
      c.num(t['trial'], `${p}.trials[${j}].trial`);
      scalars(t['params'], `${p}.trials[${j}].params`);
      const v = c.obj(t['validation'], `${p}.trials[${j}].validation`);
      c.num(v['mapAtR'], `${p}.trials[${j}].validation.mapAtR`);
      c.list(v['folds'], `${p}.trials[${j}].validation.folds`, MAX_FOLDS).forEach((z, k) => c.num(c.obj(z, `${p}.trials[${j}].validation.folds[${k}]`)['mapAtR'], `${p}.trials[${j}].validation.folds[${k}].mapAtR`));
    });
    const best = c.obj(l['best'], `${p}.best`);
    c.num(best['trial'], `${p}.best.trial`);
    scalars(best['params'], `${p}.best.params`);
    c.num(c.obj(best['validation'], `${p}.best.validation`)['mapAtR'], `${p}.best.validation.mapAtR`);
    const test = c.obj(l['test'], `${p}.test`);
    for (const k of ['mapAtR', 'precisionAt1', 'rPrecision', 'knnAccuracy', 'accuracy', 'auc']) measure(test[k], `${p}.test.${k}`);
    // written since the like-for-like accuracy (older files lack them)
    if (test['bestAccuracy'] !== undefined) measure(test['bestAccuracy'], `${p}.test.bestAccuracy`);
    if (test['accuracyAt'] !== undefined && test['accuracyAt'] !== 'threshold' && test['accuracyAt'] !== 'best') c.fail(`${p}.test.accuracyAt`, 'must be "threshold" or "best"');
    c.list(test['seeds'], `${p}.test.seeds`, MAX_SEEDS);
    measure(c.obj(c.obj(l['untuned'], `${p}.untuned`)['test'], `${p}.untuned.test`)['mapAtR'], `${p}.untuned.test.mapAtR`);
    const fm = c.obj(l['foldModels'], `${p}.foldModels`);
    measure(c.obj(fm['separate'], `${p}.foldModels.separate`)['mapAtR'], `${p}.foldModels.separate.mapAtR`);
    c.num(c.obj(fm['concatenated'], `${p}.foldModels.concatenated`)['mapAtR'], `${p}.foldModels.concatenated.mapAtR`);
  });
  const comparisons = c.obj(r['comparisons'], 'comparisons');
  for (const k of ['tuned', 'untuned']) {
    c.list(comparisons[k], `comparisons.${k}`, MAX_COMPARISONS).forEach((x, i) => {
      const cmp = c.obj(x, `comparisons.${k}[${i}]`);
      c.str(cmp['measure'], `comparisons.${k}[${i}].measure`);
      c.str(cmp['verdict'], `comparisons.${k}[${i}].verdict`);
      // the verdict's list reads these
      for (const f of ['a', 'b']) c.str(cmp[f], `comparisons.${k}[${i}].${f}`);
      for (const f of ['meanDiff', 'ci95', 'p', 'seeds']) c.num(cmp[f], `comparisons.${k}[${i}].${f}`);
      for (const f of ['pHolm', 'tests']) if (cmp[f] !== undefined) c.num(cmp[f], `comparisons.${k}[${i}].${f}`);
    });
  }
  const ranking = c.obj(r['ranking'], 'ranking');
  c.str(ranking['verdict'], 'ranking.verdict');
  for (const k of ['tuned', 'untuned']) c.list(ranking[k], `ranking.${k}`, MAX_LOSSES).forEach((x, i) => c.str(x, `ranking.${k}[${i}]`));
  return r as unknown as SweepResults;
}
