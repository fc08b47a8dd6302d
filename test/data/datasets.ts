/** Small data sets that tests write themselves: IDX files and folders of PNGs. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../src/rng.ts';
import { encodeTestPng } from './pngEncoder.ts';

/** A big-endian IDX file of unsigned bytes. */
export function idxFile(dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0800 | dims.length, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** 3 classes (circle, square, star) of 12x12 PNGs: a bright bar whose row depends on the class, plus noise. */
export function writeShapesFolder(dir: string, perClass: number): void {
  const rng = new Rng(1);
  for (const [label, name] of ['circle', 'square', 'star'].entries()) {
    mkdirSync(join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Array.from({ length: 144 }, (_, p) => (Math.floor(p / 12) === 2 + 4 * label ? 220 : rng.int(40)));
      writeFileSync(join(dir, name, `${i}.png`), encodeTestPng(px, 12, 12, { color: 0, depth: 8 }));
    }
  }
}
