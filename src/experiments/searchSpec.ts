/**
 * Search spaces for `siamese sweep`: a loss spec (lossSpec.ts) in which a numeric parameter may
 * be a range instead of a value, plus the optimizer's learning rate as the key `lr`:
 *
 *   contrastive:margin=0.2..2
 *   yukawa:kappa=1..40:log;power=1..4
 *   yukawa:kappa=1..40:log;power=1..4:int;lr=1e-4..1e-2:log
 *   triplet:margin=0.05..0.5;miner=semihard
 *
 * RANGE := LO ".." HI [":log"] [":int"]   (LO < HI; :log needs LO > 0; :int needs whole bounds)
 *
 * Fixed values stay fixed (`yukawa:kappa=5;power=1..4` searches only power). Refused with one
 * line: an unknown key, a range for a parameter that is not a number (a formula, a flag, miner,
 * id), an empty or reversed range, a bound the loss itself refuses, a range reaching 0 of a
 * parameter whose 0 means its default (proxy-lr: losses/params.ts).
 */
import { UsageError } from '../errors.ts';
import { rangeRefusal } from '../losses/params.ts';
import { createLoss, type LossParams } from '../losses/registry.ts';
import { type LossSpec, parseLossSpec, splitTopLevel } from './lossSpec.ts';
import type { SearchDim } from './tpe.ts';

/** One loss of a sweep: its fixed settings and the parameters searched. */
export interface SweepLossSpec {
  /** the fixed part, as compare would take it (id and label name the loss, not a trial) */
  spec: LossSpec;
  /** the searched parameters, in the order written; `lr` is the learning rate */
  space: SearchDim[];
  /** a fixed learning rate (`lr=0.001`); unset: the optimizer's default */
  learningRate?: number;
  /** the spec as written, for the report */
  text: string;
}

const NUM = String.raw`[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?`;
const RANGE_RE = new RegExp(String.raw`^(${NUM})\s*\.\.\s*(${NUM})((?:\s*:\s*[A-Za-z]+)*)$`);

/** Parse one sweep spec; every error is one UsageError line quoting the spec. */
export function parseSweepSpec(text: string): SweepLossSpec {
  const src = text.trim();
  const q = JSON.stringify(src.length > 80 ? `${src.slice(0, 77)}...` : src);
  const colon = src.indexOf(':');
  const name = (colon < 0 ? src : src.slice(0, colon)).trim().toLowerCase();
  const body = colon < 0 ? '' : src.slice(colon + 1);
  const kept: string[] = [];
  const ranged: { key: string; lo: number; hi: number; log: boolean; int: boolean }[] = [];
  let lrFixed: number | undefined;
  let lrRange: SearchDim | undefined;
  for (const part of colon < 0 ? [] : splitTopLevel(body, ';')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    const isRange = value.includes('..');
    if (key === 'lr') {
      if (lrFixed !== undefined || lrRange) throw new UsageError(`sweep spec ${q}: lr is given twice`);
      if (isRange) {
        const r = parseRange(value, 'lr', q);
        if (!(r.lo > 0)) throw new UsageError(`sweep spec ${q}: lr must be positive, got ${value}`);
        lrRange = { name: 'lr', ...r };
      } else {
        const v = Number(value);
        if (value === '' || !(v > 0) || !Number.isFinite(v)) throw new UsageError(`sweep spec ${q}: lr must be a positive number or a range LO..HI, got "${value}"`);
        lrFixed = v;
      }
      continue;
    }
    if (!isRange) {
      kept.push(part);
      continue;
    }
    if (key === 'miner' || key === 'id') throw new UsageError(`sweep spec ${q}: ${key} takes one value, not a range`);
    const r = parseRange(value, key, q);
    // a parameter whose 0 means "default": a range reaching 0 would draw the default unseen
    const refusal = rangeRefusal(key, r.lo);
    if (refusal) throw new UsageError(`sweep spec ${q}: ${key}=${value}: ${refusal}`);
    ranged.push({ key, ...r });
  }

  // every key, value and miner checked by parseLossSpec, with each range at one end and then the
  // other (a loss refuses some values: a margin of 0, a negative power, ...)
  const rethrow = (e: unknown, text: string): never => {
    if (e instanceof UsageError) throw new UsageError(e.message.replace(JSON.stringify(text), q));
    throw e;
  };
  const withEnd = (end: 'lo' | 'hi'): string => name + ':' + [...kept, ...ranged.map((r) => `${r.key}=${r[end]}`)].join(';');
  for (const end of ['lo', 'hi'] as const) {
    if (ranged.length === 0) break;
    const t = withEnd(end);
    let full: LossSpec | undefined;
    try {
      full = parseLossSpec(t);
    } catch (e) {
      rethrow(e, t);
    }
    const loss = createLoss(full!.loss, full!.params);
    for (const r of ranged) {
      if (typeof loss.params[r.key] !== 'number') throw new UsageError(`sweep spec ${q}: ${r.key} is not a numeric parameter and takes no range`);
    }
  }
  const fixedText = kept.length ? `${name}:${kept.join(';')}` : name;
  let spec: LossSpec | undefined;
  try {
    spec = parseLossSpec(fixedText);
  } catch (e) {
    rethrow(e, fixedText);
  }
  const space: SearchDim[] = ranged.map((r) => ({ name: r.key, lo: r.lo, hi: r.hi, log: r.log, int: r.int }));
  if (lrRange) space.push(lrRange);
  const out: SweepLossSpec = { spec: spec!, space, text: src };
  if (lrFixed !== undefined) out.learningRate = lrFixed;
  return out;
}

function parseRange(value: string, key: string, q: string): { lo: number; hi: number; log: boolean; int: boolean } {
  const m = RANGE_RE.exec(value);
  if (!m) throw new UsageError(`sweep spec ${q}: ${key}=${value} is not a range; expected LO..HI, LO..HI:log or LO..HI:int`);
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  const flags = (m[3] ?? '')
    .split(':')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f !== '');
  for (const f of flags) if (f !== 'log' && f !== 'int') throw new UsageError(`sweep spec ${q}: ${key}: unknown range flag ":${f}" (valid: :log, :int)`);
  const log = flags.includes('log');
  const int = flags.includes('int');
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new UsageError(`sweep spec ${q}: ${key}=${value}: the bounds must be finite numbers`);
  if (lo === hi) throw new UsageError(`sweep spec ${q}: ${key}=${value} is an empty range (give a fixed value instead: ${key}=${lo})`);
  if (lo > hi) throw new UsageError(`sweep spec ${q}: ${key}=${value} is reversed (the low bound comes first: ${key}=${hi}..${lo})`);
  if (log && !(lo > 0)) throw new UsageError(`sweep spec ${q}: ${key}=${value}: a :log range needs a positive low bound`);
  if (int && !(Number.isInteger(lo) && Number.isInteger(hi))) throw new UsageError(`sweep spec ${q}: ${key}=${value}: an :int range needs whole bounds`);
  return { lo, hi, log, int };
}

/** Parse a comma-separated list (commas inside parentheses belong to formulas); ids must be unique. */
export function parseSweepList(text: string): SweepLossSpec[] {
  if (text.trim() === '') throw new UsageError('no losses given; expected e.g. contrastive:margin=0.2..2,yukawa:kappa=1..40:log');
  const specs = splitTopLevel(text, ',').map((part, i) => {
    if (part.trim() === '') throw new UsageError(`loss list ${JSON.stringify(text)}: entry ${i + 1} is empty`);
    return parseSweepSpec(part);
  });
  const ids = new Set<string>();
  for (const s of specs) {
    if (ids.has(s.spec.id)) throw new UsageError(`loss list: two entries have the id "${s.spec.id}"; give one of them another id, e.g. ${s.spec.loss}:id=${s.spec.id}-2`);
    ids.add(s.spec.id);
  }
  return specs;
}

/** The loss parameters and learning rate of one trial (fixed settings plus the searched values). */
export function trialSettings(l: SweepLossSpec, x: Record<string, number>): { lossParams: LossParams; learningRate?: number } {
  const lossParams: LossParams = { ...l.spec.params };
  let learningRate = l.learningRate;
  for (const d of l.space) {
    if (d.name === 'lr') learningRate = x[d.name];
    else lossParams[d.name] = x[d.name]!;
  }
  return learningRate === undefined ? { lossParams } : { lossParams, learningRate };
}
