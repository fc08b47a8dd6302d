import { UsageError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { type BaseNetwork, glorotUniform, type Layer } from './network.ts';
import type { NamedTensor, TensorSpec } from './weights.ts';

export interface CnnOptions {
  /** image height, width and channels (default 28 x 28 x 1) */
  height?: number;
  width?: number;
  channels?: number;
  /** filters of the two convolution blocks; default [32, 64] */
  filters?: number[];
  /** square kernel size of every convolution; default 3 */
  kernelSize?: number;
  /** default 128 */
  embeddingDim?: number;
  /** dropout on the flattened features before the dense head, training only; default 0.1 */
  dropout?: number;
}

/**
 * A small convolutional base network, the "CNN" the seed's text speaks of:
 *
 *   Conv 3x3 (32, valid) + ReLU → MaxPool 2x2 → Conv 3x3 (64, valid) + ReLU → MaxPool 2x2 →
 *   Flatten → Dropout(0.1) → Dense(embeddingDim, ReLU)
 *
 * On 28x28 images: 26x26x32 → 13x13x32 → 11x11x64 → 5x5x64 = 1,600 features → 128, with
 * 320 + 18,496 + 204,928 = 223,744 parameters. The head ends in a ReLU like the seed's MLP, so the
 * two bases produce embeddings on the same footing (non-negative, the same distance scale) and the
 * losses' margins and the 0.5 accuracy threshold mean the same for both.
 * Keras' defaults: Glorot-uniform kernels (fan-in k·k·cIn, fan-out k·k·cOut), zero biases.
 * Weights are named conv_1.kernel [k, k, cIn, cOut] (Keras' HWIO layout), conv_1.bias, conv_2.*,
 * dense_1.kernel [features, embeddingDim], dense_1.bias. Input rows are images flattened
 * row-major as height x width x channels (how every ImageSplit stores them).
 */
export function cnnNetwork(opts: CnnOptions = {}): BaseNetwork {
  const height = opts.height ?? 28;
  const width = opts.width ?? 28;
  const channels = opts.channels ?? 1;
  const filters = opts.filters ?? [32, 64];
  const k = opts.kernelSize ?? 3;
  const embeddingDim = opts.embeddingDim ?? 128;
  const rate = opts.dropout ?? 0.1;
  const positiveInt = (what: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`${what} must be a positive integer, got ${v}`);
  };
  positiveInt('image height', height);
  positiveInt('image width', width);
  positiveInt('image channels', channels);
  positiveInt('kernel size', k);
  positiveInt('embedding size', embeddingDim);
  if (filters.length < 1) throw new UsageError('the cnn base needs at least one convolution block');
  for (const f of filters) positiveInt('convolution filters', f);
  if (!(rate >= 0 && rate < 1)) throw new UsageError(`dropout must be in [0, 1), got ${rate}`);

  // spatial size after each block; every block needs at least one pooled output
  let h = height;
  let w = width;
  for (let i = 0; i < filters.length; i++) {
    [h, w] = convPoolOutputSize(h, w, k);
    if (h < 1 || w < 1) {
      throw new UsageError(
        `the cnn base cannot take ${height}x${width} images: block ${i + 1} (conv ${k}x${k} + pool 2x2) leaves nothing; ` +
          `use images of at least ${minimumSize(filters.length, k)}x${minimumSize(filters.length, k)} or --base mlp`,
      );
    }
  }
  const features = h * w * filters[filters.length - 1]!;
  const specs: TensorSpec[] = [];
  let cin = channels;
  filters.forEach((f, i) => {
    specs.push({ name: `conv_${i + 1}.kernel`, shape: [k, k, cin, f] });
    specs.push({ name: `conv_${i + 1}.bias`, shape: [f] });
    cin = f;
  });
  specs.push({ name: 'dense_1.kernel', shape: [features, embeddingDim] });
  specs.push({ name: 'dense_1.bias', shape: [embeddingDim] });
  const inputSize = height * width * channels;
  const layers: Layer[] = [
    { type: 'image', height, width, channels },
    // the input images need no gradient: skip that convolution in the first block
    ...filters.map((f, i): Layer => ({ type: 'convReluPool', kernelSize: k, filters: f, inputGradient: i > 0 })),
    { type: 'flatten', features },
    { type: 'dropout', rate },
    { type: 'dense', inputs: features, units: embeddingDim, relu: true },
  ];

  return {
    kind: 'cnn',
    inputSize,
    embeddingDim,
    config: { base: 'cnn', height, width, channels, filters: [...filters], kernelSize: k, embeddingDim, dropout: rate },
    layers,
    weightSpecs: () => specs.map((s) => ({ name: s.name, shape: [...s.shape] })),
    initWeights(rng: Rng): NamedTensor[] {
      return specs.map((s) => {
        const size = s.shape.reduce((a, b) => a * b, 1);
        let data: Float32Array;
        if (s.shape.length === 4) {
          const [kh, kw, ci, co] = s.shape as [number, number, number, number];
          data = glorotUniform(rng, kh * kw * ci, kh * kw * co, size);
        } else if (s.shape.length === 2) {
          data = glorotUniform(rng, s.shape[0]!, s.shape[1]!, size);
        } else {
          data = new Float32Array(size);
        }
        return { name: s.name, shape: [...s.shape], data };
      });
    },
  };
}

/** Output height and width of a block (conv k x k valid, pool 2x2) for an input of h x w (0 when too small). */
export function convPoolOutputSize(h: number, w: number, k: number): [number, number] {
  return [Math.max(0, Math.floor((h - k + 1) / 2)), Math.max(0, Math.floor((w - k + 1) / 2))];
}

/** The smallest square image the blocks accept. */
function minimumSize(blocks: number, k: number): number {
  let s = 1;
  for (let i = 0; i < blocks; i++) s = 2 * s + k - 1;
  return s;
}
