/**
 * The base network as an ONNX model, for deployment outside Node (onnxruntime in Python, the
 * browser, C++). The graph is written from the network's config and its trained weights; the
 * protobuf encoding comes from `onnx-proto` (ONNX's own schema, compiled with protobufjs).
 *
 * Input `images`: float32 [N, height * width * channels], pixel values in [0, 1], each image
 * flattened row-major as height x width x channels (how siamese-lab stores images: MNIST's bytes
 * divided by 255). Output `embeddings`: float32 [N, embeddingDim]. Dropout is a training-time
 * layer and is left out, as at inference in siamese-lab. A run trained with a batch loss gives
 * out L2-normalised embeddings (the loss compares cosines); its model ends in the same
 * normalisation: each row divided by max(|row|, epsilon) (ReduceL2, Max, Div).
 */
import onnxProto from 'onnx-proto';
import { UsageError } from '../errors.ts';
import type { NamedTensor } from './weights.ts';

const { onnx } = onnxProto;

/** ONNX opset and IR version of the files written: supported by onnxruntime 1.14 and later. */
export const ONNX_OPSET = 17;
const IR_VERSION = 8;

/** A base network's config as recorded in manifests (BaseNetwork.config). */
export type OnnxNetworkConfig = Readonly<Record<string, number | string | number[]>>;

export interface OnnxOptions {
  /**
   * When set, the output rows are L2-normalised: divided by max(|row|, this floor), as the
   * trainer does for the batch losses (NORM_EPSILON, 1e-12). Unset: the base network's output.
   */
  normalizeEpsilon?: number;
}

/** Encode a base network (MLP or CNN) with its weights as an ONNX model. */
export function encodeOnnx(config: OnnxNetworkConfig, weights: readonly NamedTensor[], producerVersion = '', opts: OnnxOptions = {}): Uint8Array {
  const g = new GraphBuilder(weights);
  const embeddingDim = num(config, 'embeddingDim');
  const inputSize = config.base === 'cnn' ? num(config, 'height') * num(config, 'width') * num(config, 'channels') : num(config, 'inputSize');
  let x = 'images';
  if (config.base === 'mlp') {
    const layers = (config.hidden as number[]).length + 1;
    for (let l = 1; l <= layers; l++) x = g.denseRelu(x, `dense_${l}`);
  } else if (config.base === 'cnn') {
    const [h, w, c] = [num(config, 'height'), num(config, 'width'), num(config, 'channels')];
    const filters = config.filters as number[];
    // siamese-lab's images are NHWC; ONNX's Conv and MaxPool work on NCHW
    x = g.node('Reshape', [x, g.int64('nhwc_shape', [-1, h, w, c])]);
    x = g.node('Transpose', [x], { perm: [0, 3, 1, 2] });
    for (let i = 1; i <= filters.length; i++) {
      x = g.node('Conv', [x, g.convKernel(`conv_${i}.kernel`), g.weight(`conv_${i}.bias`)]);
      x = g.node('Relu', [x]);
      x = g.node('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
    }
    // back to NHWC before flattening, so the dense head sees features in the order it was trained on
    x = g.node('Transpose', [x], { perm: [0, 2, 3, 1] });
    const features = g.tensor('dense_1.kernel').shape[0]!;
    x = g.node('Reshape', [x, g.int64('flat_shape', [-1, features])]);
    x = g.denseRelu(x, 'dense_1');
  } else {
    throw new UsageError(`ONNX export: unknown base network "${String(config.base)}"`);
  }
  const eps = opts.normalizeEpsilon;
  if (eps !== undefined) {
    if (!(eps > 0 && Number.isFinite(eps))) throw new UsageError(`ONNX export: the normalisation floor must be a positive number, got ${eps}`);
    // opset 17's ReduceL2 takes its axes as an attribute; keepdims defaults to 1: [N, 1]
    const norm = g.node('ReduceL2', [x], { axes: [1] });
    x = g.node('Div', [x, g.node('Max', [norm, g.float('norm_floor', eps)])]);
  }
  g.rename(x, 'embeddings');
  const graph = onnx.GraphProto.create({
    name: `siamese-lab ${String(config.base)} base network`,
    node: g.nodes,
    initializer: g.initializers,
    input: [valueInfo('images', inputSize)],
    output: [valueInfo('embeddings', embeddingDim)],
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'siamese-lab',
    producerVersion,
    docString:
      'Siamese base network: images [N, H*W*C] in [0, 1] (row-major HWC) -> embeddings [N, D]' +
      (eps !== undefined ? `, L2-normalised (rows divided by max(|row|, ${eps}))` : ''),
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

function num(config: OnnxNetworkConfig, key: string): number {
  const v = config[key];
  if (typeof v !== 'number') throw new UsageError(`ONNX export: the network config has no ${key}`);
  return v;
}

function valueInfo(name: string, width: number) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: width }] } } },
  });
}

/** Collects nodes and initializers; names each node's output after the node. */
class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly byName: Map<string, NamedTensor>;
  private count = 0;

  constructor(weights: readonly NamedTensor[]) {
    this.byName = new Map(weights.map((t) => [t.name, t]));
  }

  tensor(name: string): NamedTensor {
    const t = this.byName.get(name);
    if (!t) throw new UsageError(`ONNX export: the weights have no ${name}`);
    return t;
  }

  weight(name: string): string {
    const t = this.tensor(name);
    this.addFloat(name, t.shape, t.data);
    return name;
  }

  /** Keras' HWIO kernel [kh, kw, cin, cout] as ONNX's OIHW [cout, cin, kh, kw]. */
  convKernel(name: string): string {
    const t = this.tensor(name);
    const [kh, kw, ci, co] = t.shape as [number, number, number, number];
    const out = new Float32Array(t.data.length);
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = t.data[((y * kw + x) * ci + i) * co + o]!;
    this.addFloat(name, [co, ci, kh, kw], out);
    return name;
  }

  /** A float32 scalar initializer. */
  float(name: string, value: number): string {
    this.addFloat(name, [], Float32Array.of(value));
    return name;
  }

  int64(name: string, values: number[]): string {
    const raw = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(raw.buffer) }),
    );
    return name;
  }

  /** Dense with ReLU: Gemm(x, W [in, out], b) computes x W + b, the kernel's own layout. */
  denseRelu(x: string, layer: string): string {
    return this.node('Relu', [this.node('Gemm', [x, this.weight(`${layer}.kernel`), this.weight(`${layer}.bias`)])]);
  }

  node(opType: string, input: string[], ints: Record<string, number[]> = {}): string {
    const output = `${opType.toLowerCase()}_${++this.count}`;
    const attribute = Object.entries(ints).map(([name, v]) =>
      onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }),
    );
    this.nodes.push(onnx.NodeProto.create({ name: output, opType, input, output: [output], attribute }));
    return output;
  }

  /** Give the last node's output the graph output's name. */
  rename(from: string, to: string): void {
    const last = this.nodes[this.nodes.length - 1]!;
    if (last.output[0] !== from) throw new Error('ONNX export: the graph output is not the last node');
    last.output = [to];
  }

  private addFloat(name: string, dims: number[], data: Float32Array): void {
    // little-endian raw bytes, as ONNX stores raw_data (every supported host is little-endian)
    const raw = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.push(onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw }));
  }
}
