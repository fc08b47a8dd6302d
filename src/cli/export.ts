import { UsageError } from '../errors.ts';
import { lockOutput } from '../io/lock.ts';
import type { TrainConfig } from '../train/config.ts';
import { exportWeights, type WeightsFormat } from '../train/run.ts';
import { count } from '../words.ts';

export interface ExportCommandOptions {
  weights: string;
  out: string;
  format?: string;
  config: Partial<TrainConfig>;
}

const FORMATS: readonly WeightsFormat[] = ['keras-h5', 'safetensors', 'onnx'];

/** `siamese export`: trained weights as a Keras 2 weight file of the base network, safetensors, or an ONNX model. */
export async function exportCommand(o: ExportCommandOptions): Promise<void> {
  const format = o.format?.toLowerCase();
  if (format !== undefined && !FORMATS.includes(format as WeightsFormat)) {
    throw new UsageError(`--format must be ${FORMATS.slice(0, -1).join(', ')} or ${FORMATS.at(-1)}, got "${o.format}"`);
  }
  const lock = lockOutput(o.out, { command: 'export', file: true, dataDir: o.config.data?.dir });
  let r: Awaited<ReturnType<typeof exportWeights>>;
  try {
    r = await exportWeights({ weights: o.weights, out: o.out, format: format as WeightsFormat | undefined, config: o.config });
  } finally {
    lock.release();
  }
  process.stdout.write(`wrote ${count(r.tensors, 'tensor')} of ${o.weights} as ${r.format}: ${r.file}\n`);
}
