import { extname } from 'node:path';
import { UsageError } from '../errors.ts';
import type { CompareResults } from '../experiments/results.ts';
import { lossShape } from '../experiments/lossShape.ts';
import { type LossSpec, parseLossList } from '../experiments/lossSpec.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { createLoss, describeLosses } from '../losses/registry.ts';
import { resolveConfig } from '../train/config.ts';

/** One registered loss, as `siamese losses` lists it. */
export interface LossInfo {
  name: string;
  kind: 'pair' | 'triplet' | 'batch';
  /** the formula with the default parameters filled in */
  formula: string;
  /** the registry's description: the general formula and the parameters with their defaults */
  description: string;
  /** parameter names and default values (custom: the two formulas, which have no default) */
  params: Record<string, number | string>;
}

/** Every registered loss, in registry order. */
export function listLosses(): LossInfo[] {
  return describeLosses().map(({ name, description }) => {
    if (name === 'custom') {
      // the only loss without defaults: its two potentials are the user's formulas
      return { name, kind: 'pair', formula: 'Y·pos(D) + (1−Y)·neg(D)', description, params: { pos: '(formula in d)', neg: '(formula in d)' } };
    }
    const l = createLoss(name, {});
    return { name, kind: l.kind, formula: l.formula, description, params: { ...l.params } };
  });
}

/** The listing, as plain text for a terminal. */
export function formatLossList(infos: readonly LossInfo[]): string {
  const width = Math.max(...infos.map((i) => i.name.length));
  const lines = [
    'Pair losses charge a pair at distance D: L = Y·L_pos(D) + (1−Y)·L_neg(D), Y = 1 for the same class.',
    'Triplet losses charge an (anchor, positive, negative) triplet from D_ap and D_an.',
    'Batch losses charge a whole class-balanced batch from cosine similarities s of L2-normalised embeddings.',
    '',
  ];
  for (const i of infos) {
    const pad = ' '.repeat(width + 2);
    lines.push(`${i.name.padEnd(width)}  ${i.kind.padEnd(7)}  ${i.formula}`);
    lines.push(`${pad}${' '.repeat(9)}${i.description}`);
    const ps = Object.entries(i.params).map(([k, v]) => `${k}=${v}`);
    lines.push(`${pad}${' '.repeat(9)}${ps.length ? `parameters: ${ps.join(', ')}` : 'no parameters'}`);
  }
  lines.push(
    '',
    'Set parameters with --margin, --kappa, --power, --param KEY=VALUE (train) or NAME:KEY=VALUE (compare --losses);',
    'custom losses take --pos and --neg, formulas in d, e.g. --loss custom --pos "d^3" --neg "exp(-10*d)/d".',
    'Draw them: siamese losses --plot [--losses contrastive,yukawa,...] [--pos EXPR --neg EXPR] [--out losses.svg|.png]',
  );
  return lines.join('\n');
}

/** The losses drawn when --plot names none: the seed's two and the triplet loss. */
export const DEFAULT_PLOT_LOSSES = 'contrastive,yukawa,triplet';

/** L_pos(D) and L_neg(D) on [0, 1.5] for one loss spec: the same sampling as compare's report. */
export const sampleLossShape = lossShape;

export interface LossPlotOptions {
  /** a loss list in compare's syntax, e.g. "contrastive,yukawa:kappa=5,custom:pos=d^3;neg=exp(-10*d)/d" */
  losses?: string;
  /** a custom loss from two formulas in d, added to the list */
  pos?: string;
  neg?: string;
}

/** The loss specs a plot draws: the list (or the default one), plus --pos/--neg as a custom loss. */
export function plotSpecs(o: LossPlotOptions): LossSpec[] {
  if ((o.pos === undefined) !== (o.neg === undefined)) {
    throw new UsageError('a custom loss needs both --pos and --neg, e.g. --pos "d^3" --neg "exp(-10*d)/d"');
  }
  const specs = o.losses !== undefined ? parseLossList(o.losses) : o.pos !== undefined ? [] : parseLossList(DEFAULT_PLOT_LOSSES);
  if (o.pos !== undefined) {
    createLoss('custom', { pos: o.pos, neg: o.neg }); // checks that both formulas compile
    const id = specs.some((s) => s.id === 'custom') ? `custom-${specs.length + 1}` : 'custom';
    specs.push({ id, loss: 'custom', params: { pos: o.pos, neg: o.neg! }, label: `custom: pos = ${o.pos}, neg = ${o.neg}` });
  }
  return specs;
}

/**
 * The report's loss-shape chart (viz/charts.ts lossShapeChart) for any set of losses: the chart
 * reads a CompareResults, so this builds one that holds only the losses and their shapes.
 */
export async function lossPlotSpec(specs: LossSpec[]) {
  const { lossShapeChart } = await import('../viz/charts.ts');
  const { loss: _l, lossParams: _p, seed: _s, miner: _m, ...config } = resolveConfig({});
  const results: CompareResults = {
    tool: 'siamese-lab',
    version: '',
    createdAt: new Date(0).toISOString(),
    spec: { losses: specs, seeds: [], config },
    machine: { cpu: '', cores: 0, node: process.version, workers: 0, wallSeconds: 0, date: '' },
    // not a digit data set: the panels speak of same-class / different-class pairs
    dataset: { name: 'any', source: '', trainPairs: 0, testPairs: 0, testImages: 0 },
    runs: [],
    summary: [],
    comparisons: [],
    lossShapes: specs.map(sampleLossShape),
  };
  return lossShapeChart(results);
}

export interface LossesCommandOptions extends LossPlotOptions {
  plot?: boolean;
  /** .svg or .png (default losses.svg) */
  out?: string;
  /** print to stdout (default true; tests turn it off) */
  print?: boolean;
}

export interface LossesCommandResult {
  losses: LossInfo[];
  /** the file written with --plot */
  file?: string;
  plotted?: string[];
}

/**
 * `siamese losses`: list every registered loss with its formula and parameters; with --plot (or
 * any of --losses, --pos, --neg, --out) draw L_pos(D) and L_neg(D) on [0, 1.5] into an SVG or PNG.
 */
export async function lossesCommand(o: LossesCommandOptions = {}): Promise<LossesCommandResult> {
  const print = o.print ?? true;
  const infos = listLosses();
  const plot = o.plot || o.losses !== undefined || o.pos !== undefined || o.neg !== undefined || o.out !== undefined;
  if (!plot) {
    if (print) process.stdout.write(formatLossList(infos) + '\n');
    return { losses: infos };
  }
  const out = o.out ?? 'losses.svg';
  const ext = extname(out).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') throw new UsageError(`--out ${out}: the plot is written as .svg or .png; name the file accordingly`);
  const specs = plotSpecs(o);
  const { renderVegaLite, svgToPng } = await import('../viz/render.ts');
  const svg = await renderVegaLite(await lossPlotSpec(specs));
  await writeFileAtomic(out, ext === '.svg' ? svg : svgToPng(svg));
  if (print) process.stdout.write(`wrote ${out} (${specs.map((s) => s.label).join('; ')})\n`);
  return { losses: infos, file: out, plotted: specs.map((s) => s.id) };
}
