import { UsageError } from '../errors.ts';
import { contrastiveLoss } from './contrastive.ts';
import { customPotentialLoss } from './custom.ts';
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
};

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
