import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** ../shared beside the checkout: the original project's files (Keras weights). */
export const SHARED = resolve(REPO_ROOT, '../shared');
export const KERAS_FIXTURES = join(SHARED, 'fixtures', 'keras-h5');
export const hasShared = existsSync(KERAS_FIXTURES);
export const SHARED_ABSENT_MESSAGE = `../shared is absent (${SHARED}): the Keras fixture tests need the original project's files`;

/**
 * The seed's base network, 784 -> 128 -> 128 -> 128, written out here rather than taken from
 * mlpNetwork(): the Keras tests check our reader against this independent expectation.
 */
export const SEED_MLP_SPECS: { name: string; shape: number[] }[] = [
  { name: 'dense_1.kernel', shape: [784, 128] },
  { name: 'dense_1.bias', shape: [128] },
  { name: 'dense_2.kernel', shape: [128, 128] },
  { name: 'dense_2.bias', shape: [128] },
  { name: 'dense_3.kernel', shape: [128, 128] },
  { name: 'dense_3.bias', shape: [128] },
];

/**
 * Every file under dir, by path, with its SHA-256 (names `skip` left out): what a refused command
 * must leave as it was.
 */
export function snapshotFiles(dir: string, skip: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!skip.includes(e.name)) out.set(p, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}
