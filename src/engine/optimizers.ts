import * as tf from '@tensorflow/tfjs-core';
import { UsageError } from '../errors.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Tensor, Variable } from '../tensor.ts';

/** Options shared by every optimizer; each reads what it knows. */
export interface OptimizerOptions {
  learningRate?: number;
  /** RMSprop's decay (default 0.9) */
  rho?: number;
  /** Adam's beta1/beta2 (0.9, 0.999) */
  beta1?: number;
  beta2?: number;
  /** default 1e-7 (Keras' K.epsilon()) */
  epsilon?: number;
  /** SGD momentum (default 0) and Nesterov flag */
  momentum?: number;
  nesterov?: boolean;
}

/**
 * An optimizer updates variables in place from their gradients. Its state (slots and step count)
 * can be saved and restored, so a resumed run continues exactly.
 */
export interface Optimizer {
  readonly name: string;
  readonly config: Readonly<Record<string, number | boolean | string>>;
  apply(vars: readonly Variable[], grads: readonly Tensor[]): void;
  getState(): NamedTensor[];
  setState(state: readonly NamedTensor[]): void;
  dispose(): void;
}

/** Per-variable slot tensors (accumulators), created lazily as zeros. */
class Slots {
  private slots = new Map<string, tf.Variable[]>();
  constructor(private readonly names: string[]) {}

  get(vars: readonly tf.Variable[]): tf.Variable[][] {
    return this.names.map((n) => {
      let s = this.slots.get(n);
      if (!s) {
        s = vars.map((v) => tf.variable(tf.zerosLike(v), false));
        this.slots.set(n, s);
      }
      return s;
    });
  }

  toState(extra: Record<string, number>): NamedTensor[] {
    const out: NamedTensor[] = [];
    for (const [n, vs] of this.slots) {
      vs.forEach((v, i) => out.push({ name: `${n}.${i}`, shape: [...v.shape], data: v.dataSync() as Float32Array }));
    }
    for (const [k, v] of Object.entries(extra)) out.push({ name: k, shape: [1], data: Float32Array.of(v) });
    return out;
  }

  fromState(state: readonly NamedTensor[]): void {
    this.dispose();
    const groups = new Map<string, NamedTensor[]>();
    for (const t of state) {
      const dot = t.name.lastIndexOf('.');
      if (dot < 0) continue;
      const n = t.name.slice(0, dot);
      if (!this.names.includes(n)) continue;
      const g = groups.get(n) ?? [];
      g[Number(t.name.slice(dot + 1))] = t;
      groups.set(n, g);
    }
    for (const [n, g] of groups) this.slots.set(n, g.map((t) => tf.variable(tf.tensor(t.data, t.shape), false)));
  }

  dispose(): void {
    for (const vs of this.slots.values()) vs.forEach((v) => v.dispose());
    this.slots.clear();
  }
}

const scalarOf = (state: readonly NamedTensor[], name: string): number => state.find((t) => t.name === name)?.data[0] ?? 0;

/** RMSprop with Keras 2 semantics: v = ρv + (1−ρ)g²; w −= lr·g / (sqrt(v) + ε) (ε outside the root). */
function rmsprop(o: OptimizerOptions): Optimizer {
  const lr = o.learningRate ?? 0.001;
  const rho = o.rho ?? 0.9;
  const eps = o.epsilon ?? 1e-7;
  const slots = new Slots(['v']);
  return {
    name: 'rmsprop',
    config: { name: 'rmsprop', learningRate: lr, rho, epsilon: eps },
    apply(vars: readonly tf.Variable[], grads: readonly tf.Tensor[]) {
      const [v] = slots.get(vars) as [tf.Variable[]];
      tf.tidy(() => {
        vars.forEach((w, i) => {
          const g = grads[i]!;
          const nv = tf.add(tf.mul(rho, v[i]!), tf.mul(1 - rho, tf.square(g)));
          v[i]!.assign(nv);
          w.assign(tf.sub(w, tf.div(tf.mul(lr, g), tf.add(tf.sqrt(nv), eps))));
        });
      });
    },
    getState: () => slots.toState({}),
    setState: (s) => slots.fromState(s),
    dispose: () => slots.dispose(),
  };
}

/** Adam (Kingma & Ba) as Keras 2: lr_t = lr·sqrt(1−β2^t)/(1−β1^t); w −= lr_t·m / (sqrt(v) + ε). */
function adam(o: OptimizerOptions): Optimizer {
  const lr = o.learningRate ?? 0.001;
  const b1 = o.beta1 ?? 0.9;
  const b2 = o.beta2 ?? 0.999;
  const eps = o.epsilon ?? 1e-7;
  const slots = new Slots(['m', 'v']);
  let t = 0;
  return {
    name: 'adam',
    config: { name: 'adam', learningRate: lr, beta1: b1, beta2: b2, epsilon: eps },
    apply(vars: readonly tf.Variable[], grads: readonly tf.Tensor[]) {
      const [m, v] = slots.get(vars) as [tf.Variable[], tf.Variable[]];
      t++;
      const lrT = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      tf.tidy(() => {
        vars.forEach((w, i) => {
          const g = grads[i]!;
          const nm = tf.add(tf.mul(b1, m[i]!), tf.mul(1 - b1, g));
          const nv = tf.add(tf.mul(b2, v[i]!), tf.mul(1 - b2, tf.square(g)));
          m[i]!.assign(nm);
          v[i]!.assign(nv);
          w.assign(tf.sub(w, tf.div(tf.mul(lrT, nm), tf.add(tf.sqrt(nv), eps))));
        });
      });
    },
    getState: () => slots.toState({ step: t }),
    setState: (s) => {
      slots.fromState(s);
      t = scalarOf(s, 'step');
    },
    dispose: () => slots.dispose(),
  };
}

/** SGD with optional (Nesterov) momentum, as Keras 2: u = μu − lr·g; w += u (or w += μu − lr·g). */
function sgd(o: OptimizerOptions): Optimizer {
  const lr = o.learningRate ?? 0.01;
  const mu = o.momentum ?? 0;
  const nesterov = o.nesterov ?? false;
  const slots = new Slots(['u']);
  return {
    name: 'sgd',
    config: { name: 'sgd', learningRate: lr, momentum: mu, nesterov },
    apply(vars: readonly tf.Variable[], grads: readonly tf.Tensor[]) {
      if (mu === 0) {
        tf.tidy(() => vars.forEach((w, i) => w.assign(tf.sub(w, tf.mul(lr, grads[i]!)))));
        return;
      }
      const [u] = slots.get(vars) as [tf.Variable[]];
      tf.tidy(() => {
        vars.forEach((w, i) => {
          const nu = tf.sub(tf.mul(mu, u[i]!), tf.mul(lr, grads[i]!));
          u[i]!.assign(nu);
          w.assign(nesterov ? tf.add(w, tf.sub(tf.mul(mu, nu), tf.mul(lr, grads[i]!))) : tf.add(w, nu));
        });
      });
    },
    getState: () => slots.toState({}),
    setState: (s) => slots.fromState(s),
    dispose: () => slots.dispose(),
  };
}

/** Adagrad as Keras 2: a += g²; w −= lr·g / (sqrt(a) + ε). */
function adagrad(o: OptimizerOptions): Optimizer {
  const lr = o.learningRate ?? 0.01;
  const eps = o.epsilon ?? 1e-7;
  const slots = new Slots(['a']);
  return {
    name: 'adagrad',
    config: { name: 'adagrad', learningRate: lr, epsilon: eps },
    apply(vars: readonly tf.Variable[], grads: readonly tf.Tensor[]) {
      const [a] = slots.get(vars) as [tf.Variable[]];
      tf.tidy(() => {
        vars.forEach((w, i) => {
          const g = grads[i]!;
          const na = tf.add(a[i]!, tf.square(g));
          a[i]!.assign(na);
          w.assign(tf.sub(w, tf.div(tf.mul(lr, g), tf.add(tf.sqrt(na), eps))));
        });
      });
    },
    getState: () => slots.toState({}),
    setState: (s) => slots.fromState(s),
    dispose: () => slots.dispose(),
  };
}

const OPTIMIZERS: Record<string, (o: OptimizerOptions) => Optimizer> = { rmsprop, adam, sgd, adagrad };

export function optimizerNames(): string[] {
  return Object.keys(OPTIMIZERS);
}

/** Optimizer by name, case-insensitive (the seed writes `RMSprop`). */
export function createOptimizer(name: string, opts: OptimizerOptions = {}): Optimizer {
  const make = OPTIMIZERS[name.toLowerCase()];
  if (!make) throw new UsageError(`unknown optimizer "${name}"; valid optimizers: ${optimizerNames().join(', ')}`);
  if (opts.learningRate !== undefined && !(opts.learningRate > 0 && Number.isFinite(opts.learningRate))) {
    throw new UsageError(`learning rate must be a positive number, got ${opts.learningRate}`);
  }
  return make(opts);
}
