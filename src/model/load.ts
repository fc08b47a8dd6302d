import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { readSafetensors } from '../io/safetensors.ts';
import type { BaseNetwork } from './network.ts';
import { countNonFinite, type NamedTensor } from './weights.ts';

/**
 * Load weights for `net` from a run directory (its weights.safetensors), a safetensors file, or a
 * Keras HDF5 file (either the whole Siamese model or the base network alone). Names and shapes are
 * checked against the network, and a mismatch names the layer, the expected and the found shape.
 */
export async function loadWeights(path: string, net: BaseNetwork): Promise<NamedTensor[]> {
  const weights = await readWeightsFile(path, net);
  // every command reads weights here: predict and embed met NaN as "training cannot start from
  // them", export wrote them out unsaid (a flipped byte in a file without checksums, a hand edit)
  const bad = countNonFinite(weights);
  if (bad.count > 0) {
    throw new DataError(`${path}: ${bad.count} of its weights are NaN or Inf (first in ${bad.first}): the file is damaged; no network can be run or trained from it`);
  }
  return weights;
}

async function readWeightsFile(path: string, net: BaseNetwork): Promise<NamedTensor[]> {
  if (!existsSync(path)) throw new DataError(`${path}: no such file or directory`);
  if (statSync(path).isDirectory()) {
    const p = join(path, 'weights.safetensors');
    if (!existsSync(p)) throw new DataError(notARun(path));
    return readWeightsFile(p, net);
  }
  const { isKerasH5, readKerasWeights } = await import('./keras.ts');
  // an .h5 name goes to the HDF5 reader even without the signature, which then says so
  if (isKerasH5(path) || /\.(h5|hdf5)$/i.test(path)) return readKerasWeights(path, net.weightSpecs());
  // likewise a .safetensors name goes to its reader, which names the fault; any other file must
  // look like one, or it is named for what it is not (not for a nonsense "header length")
  if (!/\.safetensors$/i.test(path) && !looksLikeSafetensors(path)) {
    throw new DataError(`${path}: neither a .safetensors nor a Keras .h5 file (no safetensors header, no HDF5 signature); give a run directory, a .safetensors or an .h5 file`);
  }
  const { tensors } = await readSafetensors(path);
  return matchWeights(tensors, net, path);
}

/** Why a folder holds no weights; for a compare or sweep folder, which folder to give instead. */
function notARun(path: string): string {
  if (existsSync(join(path, 'compare.json'))) {
    const runs = existsSync(join(path, 'runs')) ? readdirSync(join(path, 'runs')).sort() : [];
    const example = runs.length ? join(path, 'runs', runs[0]!) : join(path, 'runs', '<loss>-seed<S>');
    return `${path}: a comparison folder, not a run: give one of its runs, e.g. ${example}`;
  }
  if (existsSync(join(path, 'sweep.json'))) {
    return `${path}: a sweep folder, not a run: give one of its runs, e.g. ${join(path, 'runs', '<loss>', 'tuned-seed0')}`;
  }
  return `${path}: not a run directory with trained weights (no weights.safetensors)`;
}

/** A safetensors file opens with its header's length (8 bytes, little-endian, within the file), then "{". */
function looksLikeSafetensors(path: string): boolean {
  const head = Buffer.alloc(9);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    if (readSync(fd, head, 0, 9, 0) < 9) return false;
    return head.readBigUInt64LE(0) <= BigInt(size - 8) && head[8] === 0x7b;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Order safetensors weights as the network expects them, refusing anything that does not fit. */
export function matchWeights(tensors: readonly NamedTensor[], net: BaseNetwork, file: string): NamedTensor[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return net.weightSpecs().map((s) => {
    const t = byName.get(s.name);
    if (!t) {
      throw new DataError(`${file}: no tensor ${s.name} (the ${net.kind} base network needs ${net.weightSpecs().map((x) => x.name).join(', ')})`);
    }
    if (t.shape.join(',') !== s.shape.join(',')) {
      throw new DataError(`${file}: ${s.name} has shape [${t.shape.join(',')}], the ${net.kind} base network expects [${s.shape.join(',')}]`);
    }
    return t;
  });
}
