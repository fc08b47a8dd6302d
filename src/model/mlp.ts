import { UsageError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { type BaseNetwork, glorotUniform, type Layer } from './network.ts';
import type { NamedTensor, TensorSpec } from './weights.ts';

export interface MlpOptions {
  inputSize?: number;
  /** widths of the hidden layers; default [128, 128] */
  hidden?: number[];
  /** default 128 */
  embeddingDim?: number;
  /** dropout after each hidden layer, training only; default 0.1 */
  dropout?: number;
}

/**
 * The seed's base network: Flatten(784) → Dense(128, ReLU) → Dropout(0.1) → Dense(128, ReLU) →
 * Dropout(0.1) → Dense(128, ReLU). 133,504 parameters. Weights are named dense_1.kernel,
 * dense_1.bias, ... (kernels [in, out], as Keras stores them).
 */
export function mlpNetwork(opts: MlpOptions = {}): BaseNetwork {
  const inputSize = opts.inputSize ?? 784;
  const hidden = opts.hidden ?? [128, 128];
  const embeddingDim = opts.embeddingDim ?? 128;
  const rate = opts.dropout ?? 0.1;
  if (!(rate >= 0 && rate < 1)) throw new UsageError(`dropout must be in [0, 1), got ${rate}`);
  for (const w of [...hidden, embeddingDim]) {
    if (!Number.isInteger(w) || w < 1) throw new UsageError(`layer widths must be positive integers, got ${w}`);
  }
  const widths = [inputSize, ...hidden, embeddingDim];
  const specs: TensorSpec[] = [];
  const layers: Layer[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    specs.push({ name: `dense_${l + 1}.kernel`, shape: [widths[l]!, widths[l + 1]!] });
    specs.push({ name: `dense_${l + 1}.bias`, shape: [widths[l + 1]!] });
    layers.push({ type: 'dense', inputs: widths[l]!, units: widths[l + 1]!, relu: true });
    // Dropout follows every layer but the last (the embedding).
    if (l + 2 < widths.length) layers.push({ type: 'dropout', rate });
  }
  return {
    kind: 'mlp',
    inputSize,
    embeddingDim,
    config: { base: 'mlp', inputSize, hidden, embeddingDim, dropout: rate },
    layers,
    weightSpecs: () => specs.map((s) => ({ name: s.name, shape: [...s.shape] })),
    initWeights(rng: Rng): NamedTensor[] {
      return specs.map((s) => {
        const size = s.shape.reduce((a, b) => a * b, 1);
        const data = s.shape.length === 2 ? glorotUniform(rng, s.shape[0]!, s.shape[1]!, size) : new Float32Array(size);
        return { name: s.name, shape: [...s.shape], data };
      });
    },
  };
}
