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

/** IDX files of 8 classes of 12x12 images (40 train, 15 test each): a noisy bright band, rows for classes 0-3, columns for 4-7. */
export function writeBandsIdx(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(7);
  const K = 8;
  const S = 12;
  for (const [prefix, per] of [['train', 40], ['t10k', 15]] as const) {
    const n = K * per;
    const images = new Uint8Array(n * S * S);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % K;
      labels[i] = c;
      for (let p = 0; p < S * S; p++) {
        const row = Math.floor(p / S);
        const col = p % S;
        const on = c < 4 ? row >= 3 * c && row < 3 * c + 3 : col >= 3 * (c - 4) && col < 3 * (c - 4) + 3;
        images[i * S * S + p] = on ? 90 + rng.int(120) : rng.int(150);
      }
    }
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idxFile([n, S, S], images));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idxFile([n], labels));
  }
}
