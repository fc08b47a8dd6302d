/**
 * The losses that own one learnable vector per class (pytorch-metric-learning's ArcFaceLoss,
 * CosFaceLoss and ProxyAnchorLoss): the cosine C_ic between embedding i and class vector c,
 * both L2-normalised. The class vectors live with the training (on the host, with their own
 * optimizer); these functions only take them and return their gradient.
 */
import type { Rng } from '../rng.ts';
import { type BatchLoss, logSumExp, planeShape, proxyBatchLoss, type ProxyNative } from './batch.ts';
import { positive } from './params.ts';

/**
 * Clamp of the target cosine before acos: PML 0.9's ±(1 − 1e-7), kept so that the gradient stays
 * finite (PML 2.9 clamps to ±1, where d acos is infinite; docs/batch-losses.md, "Where this
 * differs from PML 2.9").
 */
const ACOS_CLAMP = 1 - 1e-7;

/** Softmax cross-entropy of scale·C with the target logit changed by `target`, mean over the batch. */
function marginSoftmax(
  name: string,
  scale: number,
  target: (cos: number) => { logit: number; slope: number },
  native: ProxyNative,
): BatchLoss['compute'] {
  return proxyBatchLoss(name, (c, labels, n, classes, g) => {
    const x = new Float64Array(classes);
    const w = new Float64Array(classes);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      for (let j = 0; j < classes; j++) x[j] = scale * c[i * classes + j]!;
      const t = target(c[i * classes + y]!);
      x[y] = scale * t.logit;
      const slope = t.slope;
      const lse = logSumExp(x, classes, false, w);
      total += lse - x[y]!;
      for (let j = 0; j < classes; j++) g[i * classes + j] = (scale * (w[j]! - (j === y ? 1 : 0)) * (j === y ? slope : 1)) / n;
    }
    return { loss: total / n, g };
  }, native);
}

/** Standard normal weights (PML's default init of the class weights W). */
function normalInit(classes: number, dim: number, rng: Rng, std = 1): Float32Array {
  const w = new Float32Array(classes * dim);
  for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
  return w;
}

/**
 * ArcFace (Deng et al. 2019): softmax cross-entropy of s·cos θ_j with the target's angle
 * widened by m, s·cos(θ_y + m), θ_y = acos(clamp(C_iy, ±(1 − 1e-7))) (for θ_y > π − m,
 * s·(cos θ_y − m·sin m), so the logit keeps falling with the angle); the mean over the batch.
 * margin in degrees (PML 2.x: 28.6° ≈ 0.5 rad), scale 64.
 */
export function arcFaceLoss(opts: { margin?: number; scale?: number } = {}): BatchLoss {
  const marginDeg = opts.margin ?? 28.6;
  const scale = positive('arcface', 'scale', opts.scale ?? 64);
  const m = (marginDeg * Math.PI) / 180;
  const compute = marginSoftmax('arcface', scale, (cos) => {
    const inside = cos > -ACOS_CLAMP && cos < ACOS_CLAMP;
    const theta = Math.acos(Math.min(Math.max(cos, -ACOS_CLAMP), ACOS_CLAMP));
    // past π − m, cos(θ + m) would rise again: PML continues with cos θ − m·sin m (monotonic)
    if (theta > Math.PI - m) return { logit: Math.cos(theta) - m * Math.sin(m), slope: inside ? 1 : 0 };
    // d cos(θ + m)/d cos = sin(θ + m)/sin θ; clamp passes no gradient outside its range
    return { logit: Math.cos(theta + m), slope: inside ? Math.sin(theta + m) / Math.sin(theta) : 0 };
  }, { kind: 0, p1: m, p2: scale });
  const loss = {
    kind: 'batch' as const,
    name: 'arcface',
    formula: `mean CE of ${scale}·[cos(θ_y + ${marginDeg}°), cos θ_j]`,
    params: { margin: marginDeg, scale },
    classWeights: true,
    compute,
    initWeights: (classes: number, dim: number, rng: Rng) => normalInit(classes, dim, rng),
  };
  return { ...loss, ...planeShape(loss) };
}

/** CosFace (Wang et al. 2018): cross-entropy of s·[cos θ_y − m, cos θ_j]; margin 0.35, scale 64. */
export function cosFaceLoss(opts: { margin?: number; scale?: number } = {}): BatchLoss {
  const margin = opts.margin ?? 0.35;
  const scale = positive('cosface', 'scale', opts.scale ?? 64);
  const compute = marginSoftmax('cosface', scale, (cos) => ({ logit: cos - margin, slope: 1 }), { kind: 1, p1: margin, p2: scale });
  const loss = {
    kind: 'batch' as const,
    name: 'cosface',
    formula: `mean CE of ${scale}·[cos θ_y − ${margin}, cos θ_j]`,
    params: { margin, scale },
    classWeights: true,
    compute,
    initWeights: (classes: number, dim: number, rng: Rng) => normalInit(classes, dim, rng),
  };
  return { ...loss, ...planeShape(loss) };
}

/**
 * Proxy-Anchor (Kim et al. 2020): with proxies p and cosines C,
 *   (1/|P⁺|) Σ_{p∈P⁺} log(1 + Σ_{x of p's class} e^(−α(C_xp − δ)))
 *   + (1/|P|) Σ_{p∈P} log(1 + Σ_{x of other classes} e^(α(C_xp + δ))),
 * P⁺ the proxies whose class is in the batch. margin δ 0.1, alpha 32; proxies start
 * Kaiming-normal (fan out: std √(2/classes)), as PML's.
 */
export function proxyAnchorLoss(opts: { margin?: number; alpha?: number } = {}): BatchLoss {
  const delta = opts.margin ?? 0.1;
  const alpha = positive('proxy-anchor', 'alpha', opts.alpha ?? 32);
  const compute = proxyBatchLoss('proxy-anchor', (c, labels, n, classes, g) => {
    const x = new Float64Array(n);
    const w = new Float64Array(n);
    const idx = new Int32Array(n);
    let withPos = 0;
    for (let p = 0; p < classes; p++) {
      let any = false;
      for (let i = 0; i < n && !any; i++) any = labels[i] === p;
      if (any) withPos++;
    }
    let posSum = 0;
    let negSum = 0;
    for (let p = 0; p < classes; p++) {
      for (const pos of [true, false]) {
        let k = 0;
        for (let i = 0; i < n; i++) {
          if ((labels[i] === p) !== pos) continue;
          const v = c[i * classes + p]!;
          x[k] = pos ? -alpha * (v - delta) : alpha * (v + delta);
          idx[k++] = i;
        }
        if (k === 0) continue;
        const lse = logSumExp(x, k, true, w);
        if (pos) posSum += lse;
        else negSum += lse;
        const f = pos ? -alpha / withPos : alpha / classes;
        for (let t = 0; t < k; t++) g[idx[t]! * classes + p] = w[t]! * f;
      }
    }
    return { loss: (withPos > 0 ? posSum / withPos : 0) + negSum / classes, g };
  }, { kind: 2, p1: delta, p2: alpha });
  const loss = {
    kind: 'batch' as const,
    name: 'proxy-anchor',
    formula: `mean_P⁺ log(1 + Σ e^(−${alpha}(s − ${delta}))) + mean_P log(1 + Σ e^(${alpha}(s + ${delta})))`,
    params: { margin: delta, alpha },
    classWeights: true,
    compute,
    initWeights: (classes: number, dim: number, rng: Rng) => normalInit(classes, dim, rng, Math.sqrt(2 / classes)),
  };
  return { ...loss, ...planeShape(loss) };
}
