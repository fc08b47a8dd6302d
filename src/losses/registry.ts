import { UsageError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { type BatchLoss, type BatchLossResult, checkBatch } from './batch.ts';
import { circleLoss } from './circle.ts';
import { multiSimilarityLoss } from './multiSimilarity.ts';
import { ntXentLoss, supConLoss } from './ntXent.ts';
import { arcFaceLoss, cosFaceLoss, proxyAnchorLoss } from './proxies.ts';
import { contrastiveLoss } from './contrastive.ts';
import { customPotentialLoss } from './custom.ts';
import { zeroOrPositive } from './params.ts';
import { coulombLoss, gaussianLoss, lennardJonesLoss, powerLoss, springLoss } from './potentials.ts';
import { softMarginTripletLoss } from './softTriplet.ts';
import { tripletLoss } from './triplet.ts';
import type { Loss } from './types.ts';
import { yukawaLoss } from './yukawa.ts';

/** Options a loss may take from the command line or a config; each loss reads what it knows. */
export type LossParams = Record<string, number | string | boolean | undefined>;

interface LossEntry {
  description: string;
  create(params: LossParams): Loss;
}

const num = (p: LossParams, key: string): number | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  // Number('') is 0: "margin=" would train with margin 0 without a word
  if (typeof v === 'string' && v.trim() === '') throw new UsageError(`loss parameter ${key} has no value`);
  const x = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(x)) throw new UsageError(`loss parameter ${key} must be a number, got "${String(v)}"`);
  return x;
};

const str = (p: LossParams, key: string): string | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new UsageError(`loss parameter ${key} must be a formula in d, got ${String(v)}`);
  return v;
};

/** Every loss by its CLI name. `potential` is the seed's own name for Yukawa. */
const LOSSES: Record<string, LossEntry> = {
  contrastive: {
    description: 'Y·D² + (1−Y)·max(m − D, 0)², margin m (default 1)',
    create: (p) => contrastiveLoss({ margin: num(p, 'margin') }),
  },
  yukawa: {
    description: 'Y·D^p + (1−Y)·exp(−κD)/D, kappa (10), power (3)',
    create: (p) => yukawaLoss({ kappa: num(p, 'kappa'), power: num(p, 'power'), epsilon: num(p, 'epsilon') }),
  },
  potential: {
    description: 'alias of yukawa (the seed\'s name)',
    create: (p) => yukawaLoss({ kappa: num(p, 'kappa'), power: num(p, 'power'), epsilon: num(p, 'epsilon') }),
  },
  triplet: {
    description: 'max(D_ap² − D_an² + m, 0), margin (0.85)',
    create: (p) => tripletLoss({ margin: num(p, 'margin') ?? 0.85, squared: p['squared'] !== false && p['squared'] !== 'false' }),
  },
  'triplet-plain': {
    description: 'max(D_ap − D_an + m, 0) on plain distances, margin (0.85)',
    create: (p) => tripletLoss({ margin: num(p, 'margin') ?? 0.85, squared: false }),
  },
  'soft-triplet': {
    description: 'log(1 + exp(D_ap − D_an)): no margin, a smooth hinge (Hermans et al. 2017\'s soft margin); squared (false)',
    create: (p) => softMarginTripletLoss({ squared: p['squared'] === true || p['squared'] === 'true' }),
  },
  spring: {
    description: 'Y·max(D − mp, 0)² + (1−Y)·max(mn − D, 0)², posMargin mp (0.1), negMargin mn (1)',
    create: (p) => springLoss({ posMargin: num(p, 'posMargin'), negMargin: num(p, 'negMargin') ?? num(p, 'margin') }),
  },
  coulomb: {
    description: 'Y·D² + (1−Y)·q/D, charge q (0.1), guarded by max(D, epsilon)',
    create: (p) => coulombLoss({ charge: num(p, 'charge'), epsilon: num(p, 'epsilon') }),
  },
  'lennard-jones': {
    description: 'Y·D² + (1−Y)·ε[(σ/D)¹² − 2(σ/D)⁶ + 1] for D < σ, sigma (1), depth ε (1)',
    create: (p) => lennardJonesLoss({ sigma: num(p, 'sigma'), depth: num(p, 'depth') }),
  },
  gaussian: {
    description: 'Y·(1 − exp(−D²/s²)) + (1−Y)·exp(−D²/s²), scale s (0.5)',
    create: (p) => gaussianLoss({ scale: num(p, 'scale') }),
  },
  power: {
    description: 'Y·D^p + (1−Y)·a·D^(−q), p (2), q (1), a (0.1)',
    create: (p) => powerLoss({ p: num(p, 'p'), q: num(p, 'q'), a: num(p, 'a') }),
  },
  custom: {
    description: 'Y·V_pos(D) + (1−Y)·V_neg(D) from formulas in d, e.g. pos="d^2" neg="exp(-10*d)/d"',
    create: (p) => customPotentialLoss({ pos: str(p, 'pos') as string, neg: str(p, 'neg') as string }),
  },
  // The field's baselines, on whole class-balanced batches with cosine similarity of
  // L2-normalised embeddings; names and defaults of pytorch-metric-learning 2.9.
  'multi-similarity': {
    description: 'batch: multi-similarity (Wang et al. 2019), alpha (2), beta (50), base (0.5)',
    create: (p) => multiSimilarityLoss({ alpha: num(p, 'alpha'), beta: num(p, 'beta'), base: num(p, 'base') }),
  },
  'nt-xent': {
    description: 'batch: NT-Xent / InfoNCE per positive pair, temperature (0.07)',
    create: (p) => ntXentLoss({ temperature: num(p, 'temperature') }),
  },
  supcon: {
    description: 'batch: supervised contrastive (Khosla et al. 2020), temperature (0.1)',
    create: (p) => supConLoss({ temperature: num(p, 'temperature') }),
  },
  circle: {
    description: 'batch: circle loss (Sun et al. 2020), m (0.4), gamma (80)',
    create: (p) => circleLoss({ m: num(p, 'm'), gamma: num(p, 'gamma') }),
  },
  arcface: {
    description: 'batch, class weights: ArcFace, margin (28.6 degrees), scale (64), proxy-lr (0 = 100x the network\'s)',
    create: (p) => withProxyLr(arcFaceLoss({ margin: num(p, 'margin'), scale: num(p, 'scale') }), p),
  },
  cosface: {
    description: 'batch, class weights: CosFace, margin (0.35), scale (64), proxy-lr (0 = 100x the network\'s)',
    create: (p) => withProxyLr(cosFaceLoss({ margin: num(p, 'margin'), scale: num(p, 'scale') }), p),
  },
  'proxy-anchor': {
    description: 'batch, proxies: Proxy-Anchor (Kim et al. 2020), margin (0.1), alpha (32), proxy-lr (0 = 100x the network\'s)',
    create: (p) => withProxyLr(proxyAnchorLoss({ margin: num(p, 'margin'), alpha: num(p, 'alpha') }), p),
  },
};

/**
 * The learning rate of a loss's class weights, recorded with its parameters: 0 (the default)
 * means 100 times the network's, as is customary for proxies.
 */
function withProxyLr(loss: BatchLoss, p: LossParams): BatchLoss {
  const lr = zeroOrPositive('proxy-lr', num(p, 'proxy-lr') ?? 0);
  return { ...loss, params: { ...loss.params, 'proxy-lr': lr } };
}

export function lossNames(): string[] {
  return Object.keys(LOSSES);
}

export function describeLosses(): { name: string; description: string }[] {
  return Object.entries(LOSSES).map(([name, e]) => ({ name, description: e.description }));
}

/** Register a loss under a new name (used by loss families and by library users). */
export function registerLoss(name: string, description: string, create: (params: LossParams) => Loss): void {
  LOSSES[name.toLowerCase()] = { description, create };
}

export function createLoss(name: string, params: LossParams = {}): Loss {
  const key = name.toLowerCase();
  // own properties only: "constructor" or "__proto__" must not resolve to Object.prototype members
  const entry = Object.hasOwn(LOSSES, key) ? LOSSES[key] : undefined;
  if (!entry) throw new UsageError(`unknown loss "${name}"; valid losses: ${lossNames().join(', ')}`);
  return entry.create(params);
}

/** Whether a registered loss works on whole labelled batches (the field's baselines). */
export function isBatchLossName(name: string): boolean {
  const key = name.toLowerCase();
  if (!Object.hasOwn(LOSSES, key)) return false;
  try {
    return createLoss(key, {}).kind === 'batch';
  } catch {
    return false; // a loss without defaults (custom) is a pair loss
  }
}

/**
 * A batch loss of a spec, `NAME` or `NAME:KEY=VALUE;KEY=VALUE` (e.g. `circle:m=0.25;gamma=256`),
 * on a batch of `labels.length` embeddings of size `dim`, with the loss's default reduction.
 * `opts.weights` (classes x dim, row-major) are the class weights or proxies of arcface, cosface
 * and proxy-anchor; without them those losses start from their own initialisation (seed 0) with
 * max(label) + 1 classes. Returns the loss, dL/d(embeddings) and, for those three, dL/d(weights).
 */
export function lossOnBatch(
  spec: string,
  embeddings: Float32Array,
  labels: Int32Array,
  dim: number,
  opts: { weights?: Float32Array } = {},
): BatchLossResult {
  if (typeof spec !== 'string') throw new UsageError(`lossOnBatch: the loss spec must be a string such as "nt-xent" or "circle:m=0.25", got ${spec === null ? 'null' : typeof spec}`);
  if (typeof opts !== 'object' || opts === null) throw new UsageError(`lossOnBatch: the options must be an object ({ weights }), got ${opts === null ? 'null' : typeof opts}`);
  // an option misspelt ("weigths") would leave the loss on its default class weights without a word
  const unknownOption = Object.keys(opts).find((k) => k !== 'weights');
  if (unknownOption !== undefined) throw new UsageError(`lossOnBatch: unknown option "${unknownOption}" (the options are: weights)`);
  const colon = spec.indexOf(':');
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  // no prototype: "__proto__" stays a key (refused below as unknown), never sets one
  const params = Object.create(null) as LossParams;
  if (colon >= 0) {
    const body = spec.slice(colon + 1);
    if (body.trim() === '') throw new UsageError(`loss spec "${spec}": nothing after ":"; expected KEY=VALUE`);
    for (const part of body.split(';')) {
      const eq = part.indexOf('=');
      const key = part.slice(0, eq).trim();
      if (eq <= 0 || key === '') throw new UsageError(`loss spec "${spec}": "${part.trim()}" is not KEY=VALUE`);
      // as compare's specs: a repeated key is a typo, not "the last one wins"
      if (Object.hasOwn(params, key)) throw new UsageError(`loss spec "${spec}": ${key} is given twice`);
      params[key] = part.slice(eq + 1).trim();
    }
  }
  const loss = createLoss(name, params);
  if (loss.kind !== 'batch') throw new UsageError(`loss "${name}" is a ${loss.kind} loss, not a batch loss; batch losses: ${lossNames().filter(isBatchLossName).join(', ')}`);
  for (const k of Object.keys(params)) {
    if (!Object.hasOwn(loss.params, k)) throw new UsageError(`loss ${name} has no parameter "${k}" (its parameters: ${Object.keys(loss.params).join(', ')})`);
  }
  if (!loss.classWeights && opts.weights !== undefined) {
    const owners = lossNames().filter((n) => isBatchLossName(n) && (createLoss(n) as BatchLoss).classWeights);
    throw new UsageError(`lossOnBatch: loss ${name} has no class weights; only ${owners.slice(0, -1).join(', ')} and ${owners.at(-1)} take opts.weights`);
  }
  // the arguments' types and shape, before the default class weights read the labels
  checkBatch(name, embeddings, labels, dim);
  let weights = opts.weights;
  if (loss.classWeights && !weights) {
    let classes = 0;
    for (let i = 0; i < labels.length; i++) classes = Math.max(classes, labels[i]! + 1);
    weights = loss.initWeights!(Math.max(classes, 1), dim, new Rng(0));
  }
  return loss.compute(embeddings, labels, dim, loss.classWeights ? weights : undefined);
}
