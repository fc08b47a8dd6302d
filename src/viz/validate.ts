/**
 * Checks that a parsed results.json has the shape of `CompareResults` as far as the charts and
 * the report read it, so a truncated or hand-edited file fails with one clear line instead of a
 * TypeError deep inside a chart. Numbers may be null: JSON has no NaN, so NaN is stored as null.
 */
import { DataError } from '../errors.ts';
import type { CompareResults } from '../experiments/results.ts';

type Json = unknown;

/** Type checks of parsed JSON that fail with one DataError line naming the path and the writer expected. */
export class Checker {
  constructor(
    private readonly source: string,
    private readonly writer = 'siamese compare',
  ) {}

  fail(path: string, what: string): never {
    throw new DataError(`${this.source}: ${path} ${what} (is it a results.json written by \`${this.writer}\`?)`);
  }

  obj(v: Json, path: string): Record<string, Json> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be an object');
    return v as Record<string, Json>;
  }

  arr(v: Json, path: string): Json[] {
    if (!Array.isArray(v)) this.fail(path, 'must be an array');
    return v;
  }

  str(v: Json, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'must be a string');
    return v;
  }

  /** a number, or null standing for NaN */
  num(v: Json, path: string): void {
    if (v !== null && typeof v !== 'number') this.fail(path, 'must be a number');
  }

  nums(v: Json, path: string): void {
    const a = this.arr(v, path);
    for (let i = 0; i < a.length; i++) if (a[i] !== null && typeof a[i] !== 'number') this.fail(`${path}[${i}]`, 'must be a number');
  }

  /** an array of at most `max` entries (the report's loops and charts stay bounded) */
  list(v: Json, path: string, max: number): Json[] {
    const a = this.arr(v, path);
    if (a.length > max) this.fail(path, `has ${a.length} entries, more than the ${max} a real one has`);
    return a;
  }

  stat(v: Json, path: string): void {
    const s = this.obj(v, path);
    for (const k of ['mean', 'ci95', 'std']) this.num(s[k], `${path}.${k}`);
    // [low, high] clipped to [0, 1] on a fraction; absent in files written before it
    if (s['ci'] !== undefined) {
      const ci = this.arr(s['ci'], `${path}.ci`);
      if (ci.length !== 2) this.fail(`${path}.ci`, 'must be [low, high]');
      this.nums(ci, `${path}.ci`);
    }
    this.nums(s['values'], `${path}.values`);
  }
}

const REQUIRED_STATS = [
  'accuracy', 'bestAccuracy', 'bestThreshold', 'auc', 'eer', 'posMean', 'posStd', 'negMean', 'negStd', 'posBelow04Mean', 'posBelow04Std',
];
const OPTIONAL_STATS = ['precisionAt1', 'rPrecision', 'mapAtR', 'knnAccuracy'];

/** Validate a parsed results.json; returns it typed. Throws DataError naming the first problem. */
export function validateCompareResults(value: Json, source = 'results.json'): CompareResults {
  const c = new Checker(source);
  const r = c.obj(value, 'the file');
  if (r['tool'] !== 'siamese-lab') c.fail('"tool"', 'must be "siamese-lab"');
  const spec = c.obj(r['spec'], 'spec');
  const ids = new Set<string>();
  c.arr(spec['losses'], 'spec.losses').forEach((l, i) => {
    const o = c.obj(l, `spec.losses[${i}]`);
    ids.add(c.str(o['id'], `spec.losses[${i}].id`));
    c.str(o['loss'], `spec.losses[${i}].loss`);
    c.str(o['label'], `spec.losses[${i}].label`);
    c.obj(o['params'], `spec.losses[${i}].params`);
    if (o['miner'] !== undefined && o['miner'] !== null) c.str(o['miner'], `spec.losses[${i}].miner`);
  });
  if (ids.size === 0) c.fail('spec.losses', 'is empty');
  c.nums(spec['seeds'], 'spec.seeds');
  const config = c.obj(spec['config'], 'spec.config');
  for (const k of ['epochs', 'batchSize', 'threshold', 'pairSeed', 'testPairs']) c.num(config[k], `spec.config.${k}`);
  if (typeof config['threshold'] !== 'number') c.fail('spec.config.threshold', 'must be a number');
  const machine = c.obj(r['machine'], 'machine');
  c.str(machine['cpu'], 'machine.cpu');
  c.num(machine['wallSeconds'], 'machine.wallSeconds');
  const dataset = c.obj(r['dataset'], 'dataset');
  c.str(dataset['name'], 'dataset.name');
  c.arr(r['runs'], 'runs').forEach((x, i) => {
    const run = c.obj(x, `runs[${i}]`);
    const id = c.str(run['lossId'], `runs[${i}].lossId`);
    if (!ids.has(id)) c.fail(`runs[${i}].lossId`, `"${id}" is not a loss in spec.losses`);
    c.num(run['seed'], `runs[${i}].seed`);
    c.arr(run['history'], `runs[${i}].history`);
    const d = c.obj(run['distances'], `runs[${i}].distances`);
    c.nums(d['pos'], `runs[${i}].distances.pos`);
    c.nums(d['neg'], `runs[${i}].distances.neg`);
  });
  c.arr(r['summary'], 'summary').forEach((x, i) => {
    const s = c.obj(x, `summary[${i}]`);
    const id = c.str(s['lossId'], `summary[${i}].lossId`);
    if (!ids.has(id)) c.fail(`summary[${i}].lossId`, `"${id}" is not a loss in spec.losses`);
    c.num(s['seeds'], `summary[${i}].seeds`);
    for (const k of REQUIRED_STATS) c.stat(s[k], `summary[${i}].${k}`);
    for (const k of OPTIONAL_STATS) if (s[k] !== undefined) c.stat(s[k], `summary[${i}].${k}`);
    if (s['accuracyAt'] !== undefined && s['accuracyAt'] !== 'threshold' && s['accuracyAt'] !== 'best') c.fail(`summary[${i}].accuracyAt`, 'must be "threshold" or "best"');
    c.arr(s['curves'], `summary[${i}].curves`).forEach((y, j) => {
      const cv = c.obj(y, `summary[${i}].curves[${j}]`);
      c.num(cv['epoch'], `summary[${i}].curves[${j}].epoch`);
      for (const k of ['loss', 'trainAccuracy', 'testAccuracy']) c.stat(cv[k], `summary[${i}].curves[${j}].${k}`);
    });
  });
  c.arr(r['comparisons'], 'comparisons').forEach((x, i) => {
    const p = c.obj(x, `comparisons[${i}]`);
    c.str(p['a'], `comparisons[${i}].a`);
    c.str(p['b'], `comparisons[${i}].b`);
    c.str(p['measure'], `comparisons[${i}].measure`);
    c.str(p['verdict'], `comparisons[${i}].verdict`);
    for (const k of ['meanDiff', 'ci95', 't', 'p', 'seeds']) c.num(p[k], `comparisons[${i}].${k}`);
    for (const k of ['pHolm', 'tests']) if (p[k] !== undefined) c.num(p[k], `comparisons[${i}].${k}`);
  });
  c.arr(r['lossShapes'], 'lossShapes').forEach((x, i) => {
    const s = c.obj(x, `lossShapes[${i}]`);
    c.str(s['loss'], `lossShapes[${i}].loss`);
    c.str(s['label'], `lossShapes[${i}].label`);
    for (const k of ['d', 'pos', 'neg']) c.nums(s[k], `lossShapes[${i}].${k}`);
  });
  if (r['tsne'] !== undefined && r['tsne'] !== null) {
    const t = c.obj(r['tsne'], 'tsne');
    c.nums(t['indices'], 'tsne.indices');
    c.nums(t['labels'], 'tsne.labels');
    c.arr(t['panels'], 'tsne.panels').forEach((x, i) => {
      const p = c.obj(x, `tsne.panels[${i}]`);
      c.str(p['title'], `tsne.panels[${i}].title`);
      c.nums(p['points'], `tsne.panels[${i}].points`);
    });
    c.obj(t['params'], 'tsne.params');
  } else if (r['tsne'] === null) {
    delete r['tsne'];
  }
  if (r['notes'] !== undefined && r['notes'] !== null) {
    c.arr(r['notes'], 'notes').forEach((n, i) => c.str(n, `notes[${i}]`));
  } else if (r['notes'] === null) {
    delete r['notes'];
  }
  return r as unknown as CompareResults;
}

/** A sweep's measure: mean, ci [low, high], ci95, std, values. */
function measure(c: Checker, v: Json, path: string): void {
  const m = c.obj(v, path);
  for (const k of ['mean', 'ci95', 'std']) c.num(m[k], `${path}.${k}`);
  const ci = c.arr(m['ci'], `${path}.ci`);
  if (ci.length !== 2) c.fail(`${path}.ci`, 'must be [low, high]');
  c.nums(ci, `${path}.ci`);
  c.nums(m['values'], `${path}.values`);
}

/** Parse and validate the text of a results.json. */
export function parseCompareResults(text: string, source = 'results.json'): CompareResults {
  let value: Json;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${source}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return validateCompareResults(value, source);
}

/**
 * An upper estimate of the memory JSON.parse takes for `bytes` (a JSON text), found by one pass
 * over the bytes without allocating: V8 spends ~64 bytes on an object, ~32 on an array, ~16 on
 * each element or property slot and on each number, and a string's length plus ~24. The size of
 * the text alone says little: "[[],[],...]" takes ten times its size, a list of numbers two.
 */
export function estimateJsonMemory(bytes: Uint8Array): number {
  let objects = 0;
  let arrays = 0;
  let commas = 0;
  let numbers = 0;
  let strings = 0;
  let stringBytes = 0;
  let inString = false;
  let inNumber = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
      else stringBytes++;
      continue;
    }
    const numeric = (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2b || b === 0x2e || b === 0x65 || b === 0x45;
    if (numeric) {
      if (!inNumber) numbers++;
      inNumber = true;
      continue;
    }
    inNumber = false;
    if (b === 0x22) {
      inString = true;
      strings++;
    } else if (b === 0x7b) objects++;
    else if (b === 0x5b) arrays++;
    else if (b === 0x2c) commas++;
  }
  return 64 * objects + 32 * arrays + 16 * (commas + objects + arrays) + 16 * numbers + stringBytes + 24 * strings;
}
