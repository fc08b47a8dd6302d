/**
 * Loss specifications for `siamese compare --losses`: which losses to train, with which
 * parameters and which miner.
 *
 * Syntax (whitespace around names, keys and values is ignored):
 *
 *   LIST    := SPEC ("," SPEC)*
 *   SPEC    := NAME [":" SETTING (";" SETTING)*]
 *   SETTING := KEY "=" VALUE
 *
 * - NAME is a loss of the registry (contrastive, yukawa, triplet, custom, ...).
 * - KEY is one of that loss's parameters (as listed by `siamese losses`: yukawa has kappa,
 *   power, epsilon; contrastive margin; triplet margin, squared; custom pos, neg; ...), or
 *   - `miner`: an online miner (batch-all, batch-hard, semihard, all for triplet losses,
 *     hard-negative for pair losses);
 *   - `id`: the name of this entry in run directories, results and the report
 *     (letters, digits, ".", "_", "-"; default: derived from the name and settings).
 * - VALUE runs to the next ";" or to the next "," that is not inside parentheses, so formulas
 *   such as `max(d, 0.5)` need no quoting beyond the shell's.
 *
 * Examples:
 *   contrastive,yukawa,triplet
 *   yukawa:kappa=5, yukawa:kappa=20
 *   contrastive:margin=2;id=contrastive-m2
 *   custom:pos=d^3;neg=exp(-10*d)/d
 *   triplet:margin=0.2;miner=batch-hard
 * In a shell, quote lists with ";", "(" or ")":  --losses 'custom:pos=d^3;neg=exp(-10*d)/d'
 *
 * Every spec is checked when parsed: the loss must exist, every key must be one of its
 * parameters, the values must be accepted by the loss (formulas must compile), and the miner
 * must fit the loss. Errors are one-line UsageErrors that quote the offending spec.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.ts';
import { createLoss, type LossParams } from '../losses/registry.ts';
import type { Loss } from '../losses/types.ts';
import { isMinerName, MINER_NAMES } from '../mining/index.ts';

/** One entry of a comparison: the shape of `CompareSpec.losses` in results.ts. */
export interface LossSpec {
  /** unique within a comparison; names run directories (`<id>-seed<S>`) and chart series */
  id: string;
  /** registry name */
  loss: string;
  /** settings as given (numbers where the loss takes numbers, strings otherwise) */
  params: LossParams;
  miner?: string;
  /** human-readable, for tables and charts */
  label: string;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RESERVED = new Set(['miner', 'id']);

/** Split at top-level separators (not inside parentheses). */
export function splitTopLevel(text: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (ch === sep && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);

/** "its parameters: kappa, power, epsilon", or "it takes no parameters". */
export function paramList(known: readonly string[]): string {
  return known.length ? `its parameters: ${known.join(', ')}` : 'it takes no parameters';
}

/**
 * Create loss `name` from raw settings and check that every setting is one of its parameters
 * (a loss ignores keys it does not know, so an unchecked typo would silently do nothing). The one
 * check behind compare --losses, losses --plot and train's loss options; `unknown` words the
 * error for the caller's syntax (a spec key, a command-line option). Values become numbers where
 * the loss keeps a number, text otherwise (formulas, flags).
 */
export function checkLossParams(
  name: string,
  raw: LossParams,
  unknown: (key: string, known: string[]) => string = (key, known) => `loss ${name} has no parameter "${key}" (${paramList(known)})`,
): { loss: Loss; params: Record<string, number | string> } {
  const loss = createLoss(name, raw);
  const known = Object.keys(loss.params);
  const params: Record<string, number | string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (!known.includes(key)) throw new UsageError(unknown(key, known));
    params[key] = typeof loss.params[key] === 'number' ? Number(value) : String(value);
  }
  return { loss, params };
}

/** Parse one spec, e.g. `yukawa:kappa=5` or `custom:pos=d^3;neg=exp(-10*d)/d`. */
export function parseLossSpec(text: string): LossSpec {
  const src = text.trim();
  if (src === '') throw new UsageError('empty loss spec; expected e.g. "yukawa" or "yukawa:kappa=5"');
  const colon = src.indexOf(':');
  const name = (colon < 0 ? src : src.slice(0, colon)).trim().toLowerCase();
  if (!/^[a-z][a-z0-9-]*$/.test(name)) {
    throw new UsageError(`loss spec ${quote(src)}: "${name}" is not a loss name; expected NAME or NAME:KEY=VALUE;KEY=VALUE`);
  }
  const settings: [string, string][] = [];
  if (colon >= 0) {
    const body = src.slice(colon + 1);
    if (body.trim() === '') throw new UsageError(`loss spec ${quote(src)}: nothing after ":"; expected KEY=VALUE`);
    for (const part of splitTopLevel(body, ';')) {
      const eq = part.indexOf('=');
      const key = (eq < 0 ? part : part.slice(0, eq)).trim();
      const value = eq < 0 ? '' : part.slice(eq + 1).trim();
      if (eq < 0 || key === '') throw new UsageError(`loss spec ${quote(src)}: ${quote(part.trim())} is not KEY=VALUE`);
      if (value === '') throw new UsageError(`loss spec ${quote(src)}: ${key} has no value`);
      if (settings.some(([k]) => k === key)) throw new UsageError(`loss spec ${quote(src)}: ${key} is given twice`);
      settings.push([key, value]);
    }
  }

  // no prototype: a key such as "__proto__" must stay a key (and be refused below), not vanish
  const raw = Object.create(null) as LossParams;
  let miner: string | undefined;
  let id: string | undefined;
  for (const [key, value] of settings) {
    if (key === 'miner') miner = value.toLowerCase();
    else if (key === 'id') id = value;
    else raw[key] = value;
  }

  let loss: Loss;
  let params: Record<string, number | string>;
  try {
    ({ loss, params } = checkLossParams(name, raw, (key, known) => `loss ${name} has no parameter "${key}" (${paramList(known)}; also miner, id)`));
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`loss spec ${quote(src)}: ${e.message}`);
    throw e;
  }

  if (miner !== undefined) {
    if (!isMinerName(miner)) throw new UsageError(`loss spec ${quote(src)}: unknown miner "${miner}"; valid miners: ${MINER_NAMES.join(', ')}`);
    const minerKind = miner === 'hard-negative' ? 'pair' : 'triplet';
    if (minerKind !== loss.kind) {
      throw new UsageError(`loss spec ${quote(src)}: miner ${miner} yields ${minerKind}s, but loss ${name} is a ${loss.kind} loss`);
    }
  }
  if (id !== undefined && !ID_RE.test(id)) {
    throw new UsageError(`loss spec ${quote(src)}: id "${id}" must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }

  const spec: LossSpec = { id: id ?? defaultId(name, params, miner), loss: name, params, label: '' };
  if (miner !== undefined) spec.miner = miner;
  spec.label = id ?? defaultLabel(name, params, miner);
  return spec;
}

/** Parse a comma-separated list of specs; ids must be unique. */
export function parseLossList(text: string): LossSpec[] {
  if (text.trim() === '') throw new UsageError('no losses given; expected e.g. contrastive,yukawa,triplet');
  const specs = splitTopLevel(text, ',').map((part, i) => {
    if (part.trim() === '') throw new UsageError(`loss list ${quote(text)}: entry ${i + 1} is empty`);
    return parseLossSpec(part);
  });
  const seen = new Map<string, string>();
  for (const s of specs) {
    const canon = canonicalSpec(s);
    const prev = seen.get(s.id);
    if (prev !== undefined) {
      throw new UsageError(
        prev === canon
          ? `loss list: ${quote(canon)} is listed twice`
          : `loss list: two entries have the id "${s.id}"; give one of them another id, e.g. ${s.loss}:id=${s.id}-2`,
      );
    }
    seen.set(s.id, canon);
  }
  return specs;
}

/** The spec written back in the --losses syntax (ids included only when not the default). */
export function canonicalSpec(s: LossSpec): string {
  const settings = Object.entries(s.params).map(([k, v]) => `${k}=${v}`);
  if (s.miner) settings.push(`miner=${s.miner}`);
  if (s.id !== defaultId(s.loss, s.params, s.miner)) settings.push(`id=${s.id}`);
  return settings.length ? `${s.loss}:${settings.join(';')}` : s.loss;
}

/**
 * `yukawa`, `yukawa-kappa5`, `triplet-margin0.2-batch-hard`; when the settings do not make a
 * short, file-name-safe id (formulas), the name plus 8 hex digits of their hash: `custom-3f2a9c1e`.
 */
function defaultId(name: string, params: LossParams, miner?: string): string {
  const parts = Object.entries(params).map(([k, v]) => `${k}${v}`);
  if (miner) parts.push(miner);
  if (parts.length === 0) return name;
  const id = [name, ...parts].join('-');
  if (ID_RE.test(id) && id.length <= 40) return id;
  const hash = createHash('sha256')
    .update(JSON.stringify([name, Object.entries(params), miner ?? null]))
    .digest('hex')
    .slice(0, 8);
  return `${name}-${hash}`;
}

function defaultLabel(name: string, params: LossParams, miner?: string): string {
  const settings = Object.entries(params).map(([k, v]) => `${k}=${v}`);
  return `${name}${settings.length ? ` (${settings.join(', ')})` : ''}${miner ? ` + ${miner}` : ''}`;
}
