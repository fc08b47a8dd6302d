/**
 * The learnable class weights (proxies) of arcface, cosface and proxy-anchor: kept on the host,
 * stepped by their own optimizer — the network's kind (rmsprop, adam, sgd, adagrad, with the
 * same Keras 2 formulas as optimizers.ts), with its own learning rate (proxy-lr, by default 100
 * times the network's, as is customary for proxies). Both engines share this code, so they
 * agree here exactly; the state goes into checkpoints so a resumed run continues bit for bit.
 */
import { createOptimizer } from '../engine/optimizers.ts';
import { DataError } from '../errors.ts';
import type { BatchLoss } from '../losses/batch.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Rng } from '../rng.ts';

/** Proxies learn this many times faster than the network unless proxy-lr is given. */
export const PROXY_LR_FACTOR = 100;

export class ClassWeights {
  readonly classes: number;
  readonly dim: number;
  /** [classes, dim] row-major */
  weights: Float32Array;
  readonly config: Readonly<Record<string, number | boolean | string>>;
  private readonly slots = new Map<string, Float32Array>();
  private step = 0;

  constructor(loss: BatchLoss, classes: number, dim: number, rng: Rng, optimizer: string, learningRate: number) {
    this.classes = classes;
    this.dim = dim;
    this.weights = loss.initWeights!(classes, dim, rng);
    // the TF.js optimizer's resolved settings (defaults filled in), not its tensors
    const ref = createOptimizer(optimizer, { learningRate });
    this.config = ref.config;
    ref.dispose();
  }

  private slot(name: string): Float32Array {
    let s = this.slots.get(name);
    if (!s) this.slots.set(name, (s = new Float32Array(this.weights.length)));
    return s;
  }

  /** One optimizer step from dL/d(weights). */
  apply(g: Float32Array): void {
    const c = this.config;
    const lr = c['learningRate'] as number;
    const w = this.weights;
    const eps = (c['epsilon'] as number | undefined) ?? 1e-7;
    switch (c['name']) {
      case 'rmsprop': {
        const rho = c['rho'] as number;
        const v = this.slot('v');
        for (let i = 0; i < w.length; i++) {
          v[i] = rho * v[i]! + (1 - rho) * g[i]! * g[i]!;
          w[i] = w[i]! - (lr * g[i]!) / (Math.sqrt(v[i]!) + eps);
        }
        break;
      }
      case 'adam': {
        const b1 = c['beta1'] as number;
        const b2 = c['beta2'] as number;
        this.step++;
        const lrT = (lr * Math.sqrt(1 - b2 ** this.step)) / (1 - b1 ** this.step);
        const m = this.slot('m');
        const v = this.slot('v');
        for (let i = 0; i < w.length; i++) {
          m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
          v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
          w[i] = w[i]! - (lrT * m[i]!) / (Math.sqrt(v[i]!) + eps);
        }
        break;
      }
      case 'sgd': {
        const mu = c['momentum'] as number;
        if (mu === 0) {
          for (let i = 0; i < w.length; i++) w[i] = w[i]! - lr * g[i]!;
          break;
        }
        const u = this.slot('u');
        const nesterov = Boolean(c['nesterov']);
        for (let i = 0; i < w.length; i++) {
          u[i] = mu * u[i]! - lr * g[i]!;
          w[i] = nesterov ? w[i]! + (mu * u[i]! - lr * g[i]!) : w[i]! + u[i]!;
        }
        break;
      }
      case 'adagrad': {
        const a = this.slot('a');
        for (let i = 0; i < w.length; i++) {
          a[i] = a[i]! + g[i]! * g[i]!;
          w[i] = w[i]! - (lr * g[i]!) / (Math.sqrt(a[i]!) + eps);
        }
        break;
      }
      default:
        throw new DataError(`class weights: no host form of optimizer ${String(c['name'])}`);
    }
  }

  /** Weights, optimizer slots and step as tensors (checkpoint names without a prefix). */
  getState(): NamedTensor[] {
    const shape = [this.classes, this.dim];
    const out: NamedTensor[] = [{ name: 'classWeights', shape, data: this.weights.slice() }];
    for (const [k, v] of [...this.slots].sort(([a], [b]) => (a < b ? -1 : 1))) out.push({ name: `optimizer.${k}`, shape, data: v.slice() });
    out.push({ name: 'optimizer.step', shape: [1], data: Float32Array.of(this.step) });
    return out;
  }

  setState(state: readonly NamedTensor[]): void {
    const w = state.find((t) => t.name === 'classWeights');
    if (!w || w.data.length !== this.weights.length) {
      throw new DataError(`the checkpoint holds no class weights of shape [${this.classes}, ${this.dim}] for this loss`);
    }
    this.weights = Float32Array.from(w.data);
    this.slots.clear();
    for (const t of state) {
      if (!t.name.startsWith('optimizer.') || t.name === 'optimizer.step') continue;
      if (t.data.length !== this.weights.length) throw new DataError(`class weights: optimizer slot ${t.name} has the wrong size`);
      this.slots.set(t.name.slice(10), Float32Array.from(t.data));
    }
    this.step = state.find((t) => t.name === 'optimizer.step')?.data[0] ?? 0;
  }
}
