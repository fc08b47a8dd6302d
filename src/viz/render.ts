/**
 * Chart rendering in Node: Vega-Lite spec -> Vega spec -> SVG (vega's headless View), and
 * SVG -> PNG with resvg. resvg draws text only with a font it has loaded, and a bare machine may
 * have none, so the DejaVu TrueType files shipped by the npm package `dejavu-fonts-ttf` are
 * loaded explicitly and system fonts are never consulted: the PNGs look the same everywhere.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { DataError } from '../errors.ts';
import { type FontMetrics, loadFontMetrics } from './fontMetrics.ts';

/**
 * A Vega-Lite spec as the chart builders produce it: plain JSON. Typed loosely on purpose
 * (vega-lite's own types are checked at compile time by vega-lite itself).
 */
export interface VegaLiteSpec {
  $schema?: string;
  title?: string | { text: string | string[]; subtitle?: string | string[]; [k: string]: unknown };
  [key: string]: unknown;
}

/** The font every chart names; resvg maps it to the loaded DejaVu Sans. */
export const CHART_FONT = 'DejaVu Sans';

const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf', 'DejaVuSans-BoldOblique.ttf'];

let fontPaths: string[] | undefined;

/** Paths of the DejaVu Sans TrueType files from the npm package `dejavu-fonts-ttf`. */
export function chartFontFiles(): string[] {
  if (fontPaths) return fontPaths;
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  } catch {
    throw new DataError('the npm package dejavu-fonts-ttf is not installed: run `npm ci` in the project');
  }
  const paths = FONT_FILES.map((f) => join(dir, f));
  const missing = paths.find((p) => !existsSync(p));
  if (missing) throw new DataError(`${missing}: font file missing from the package dejavu-fonts-ttf (reinstall it)`);
  fontPaths = paths;
  return paths;
}

/** The fields of a vega text item that its width depends on. */
interface TextItem {
  fontSize?: number | string | null;
  fontWeight?: number | string | null;
}

let metricsInstalled = false;

/**
 * Make vega measure text with DejaVu Sans's real advance widths (regular and bold) instead of
 * its canvas-less estimate. vega supports a user-defined `textMetrics.width`; it receives the
 * raw text (vega's own truncation to a label limit calls back into it), so it must not truncate.
 */
function installTextMetrics(): void {
  if (metricsInstalled) return;
  const [regularPath, boldPath] = chartFontFiles();
  const regular: FontMetrics = loadFontMetrics(regularPath!);
  const bold: FontMetrics = loadFontMetrics(boldPath!);
  // exported at run time (vega re-exports vega-scenegraph) but missing from vega's type declarations
  const metrics = (vega as unknown as { textMetrics?: { width: (item: TextItem, text: unknown) => number } }).textMetrics;
  if (!metrics) throw new Error('vega no longer exports textMetrics: chart text cannot be measured');
  metrics.width = (item: TextItem, text: unknown): number => {
    const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
    const t = text == null ? '' : String(text).trim();
    if (size <= 0 || t === '') return 0;
    const w = item.fontWeight;
    const isBold = w === 'bold' || w === 'bolder' || (w != null && Number(w) >= 600);
    return (isBold ? bold : regular).width(t, size);
  };
  metricsInstalled = true;
}

/** Compile a Vega-Lite spec and render it to an SVG string, headless (no canvas, no DOM). */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<string> {
  installTextMetrics();
  const vgSpec = compile(spec as unknown as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', logLevel: 0 });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface PngOptions {
  /** zoom factor from SVG pixels to PNG pixels (default 2, for sharp text) */
  scale?: number;
  /** background colour behind transparent areas (default white) */
  background?: string;
}

function rasterise(svg: string, opts: PngOptions) {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: opts.scale ?? 2 },
    background: opts.background ?? 'white',
    font: {
      fontFiles: chartFontFiles(),
      loadSystemFonts: false,
      defaultFontFamily: CHART_FONT,
      sansSerifFamily: CHART_FONT,
    },
  });
  return resvg.render();
}

/** Rasterise an SVG string to PNG bytes with resvg and the bundled DejaVu fonts. */
export function svgToPng(svg: string, opts: PngOptions = {}): Uint8Array {
  return new Uint8Array(rasterise(svg, opts).asPng());
}

/** Rasterise an SVG string to raw RGBA pixels (row-major), e.g. to inspect what was drawn. */
export function svgToPixels(svg: string, opts: PngOptions = {}): { width: number; height: number; rgba: Uint8Array } {
  const img = rasterise(svg, opts);
  return { width: img.width, height: img.height, rgba: new Uint8Array(img.pixels) };
}
