/**
 * The committed studies' reports are what the current code makes of their results.json: report.md
 * and every figure's SVG rebuild byte for byte (the content of a chart: its marks, numbers and
 * text; Vega's clip-path ids renumbered). The PNGs are compared by their size only: the committed ones were re-encoded losslessly
 * after they were written (RGB or a palette where the report writes RGBA; every pixel the same),
 * so their bytes say nothing about their content. docs/sweep-mnist rebuilds byte for byte too.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { reportCommand } from '../../src/cli/report.ts';
import { REPO_ROOT } from '../helpers.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Vega numbers the clip paths of a chart from a counter of the process (clip1 in a fresh one,
 * clip13 after another report): renumbered by first appearance, an SVG reads the same in any process.
 */
function sameIds(svg: string): string {
  const ids = new Map<string, string>();
  return svg.replace(/\bclip\d+\b/g, (m) => {
    if (!ids.has(m)) ids.set(m, `clip#${ids.size}`);
    return ids.get(m)!;
  });
}

/** width and height from a PNG's IHDR */
function pngSize(path: string): [number, number] {
  const b = readFileSync(path);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

for (const name of ['study', 'study-cnn', 'sweep-mnist']) {
  it(`docs/${name}: rebuilt from its results.json, report.md and the figures' SVGs are the committed ones`, async () => {
    const committed = join(REPO_ROOT, 'docs', name);
    const dir = mkdtempSync(join(tmpdir(), 'siamese-docs-'));
    dirs.push(dir);
    for (const f of ['results.json', 'compare.json', 'sweep.json']) if (existsSync(join(committed, f))) cpSync(join(committed, f), join(dir, f));
    await reportCommand({ runDir: dir, print: false });
    assert.equal(readFileSync(join(dir, 'report.md'), 'utf8'), readFileSync(join(committed, 'report.md'), 'utf8'), 'report.md');
    if (!existsSync(join(committed, 'figures'))) {
      assert.equal(readFileSync(join(dir, 'report.html'), 'utf8'), readFileSync(join(committed, 'report.html'), 'utf8'), 'report.html');
      return;
    }
    const figures = readdirSync(join(committed, 'figures')).sort();
    assert.deepEqual(readdirSync(join(dir, 'figures')).sort(), figures);
    for (const f of figures) {
      const a = join(dir, 'figures', f);
      const b = join(committed, 'figures', f);
      if (f.endsWith('.svg')) assert.ok(sameIds(readFileSync(a, 'utf8')) === sameIds(readFileSync(b, 'utf8')), `${name}/figures/${f} differs from a rebuild`);
      else assert.deepEqual(pngSize(a), pngSize(b), `${name}/figures/${f} size`);
    }
  });
}
