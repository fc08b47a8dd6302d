import { UsageError } from '../errors.ts';
import type { TrainConfig } from '../train/config.ts';
import { exportWeights, type WeightsFormat } from '../train/run.ts';

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
    throw new UsageError(`--format must be ${FORMATS.join(' or ')}, got "${o.format}"`);
  }
  const r = await exportWeights({ weights: o.weights, out: o.out, format: format as WeightsFormat | undefined, config: o.config });
  process.stdout.write(`wrote ${r.tensors} tensors of ${o.weights} as ${r.format}: ${r.file}\n`);
}
