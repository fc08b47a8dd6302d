import { type BatchLoss, logSumExp, pairwiseBatchLoss, planeShape } from './batch.ts';
import { positive } from './params.ts';

export interface MultiSimilarityOptions {
  /** weight of positive pairs (default 2) */
  alpha?: number;
  /** weight of negative pairs (default 50) */
  beta?: number;
  /** similarity offset λ (default 0.5) */
  base?: number;
}

/**
 * Multi-similarity loss (Wang et al. 2019), as pytorch-metric-learning's MultiSimilarityLoss:
 * per anchor i, (1/α)·log(1 + Σ_{p} exp(−α(s_ip − λ))) + (1/β)·log(1 + Σ_{n} exp(β(s_in − λ)))
 * over its positives p ≠ i and negatives n; the mean over every anchor of the batch
 * (MeanReducer; an anchor without positives or negatives has 0 for that term).
 */
export function multiSimilarityLoss(opts: MultiSimilarityOptions = {}): BatchLoss {
  const alpha = positive('multi-similarity', 'alpha', opts.alpha ?? 2);
  const beta = positive('multi-similarity', 'beta', opts.beta ?? 50);
  const base = opts.base ?? 0.5;
  const compute = pairwiseBatchLoss('multi-similarity', (s, labels, n, g) => {
    const x = new Float64Array(n);
    const w = new Float64Array(n);
    const idx = new Int32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let side = 0; side < 2; side++) {
        const pos = side === 0;
        let c = 0;
        for (let j = 0; j < n; j++) {
          if (j === i || (labels[j] === labels[i]) !== pos) continue;
          const v = s[i * n + j]! - base;
          x[c] = pos ? -alpha * v : beta * v;
          idx[c++] = j;
        }
        if (c === 0) continue;
        const k = pos ? alpha : beta;
        total += logSumExp(x, c, true, w) / k;
        // d/ds of (1/k)·LSE = (1/k)·w·(∓k) = ∓w, over the n anchors of the mean
        for (let t = 0; t < c; t++) g[i * n + idx[t]!] = ((pos ? -1 : 1) * w[t]!) / n;
      }
    }
    return { loss: total / n, g };
  }, { kind: 0, params: [alpha, beta, base] });
  const loss = {
    kind: 'batch' as const,
    name: 'multi-similarity',
    formula: `mean over anchors: (1/${alpha})·log(1 + Σ_p exp(−${alpha}(s_p − ${base}))) + (1/${beta})·log(1 + Σ_n exp(${beta}(s_n − ${base})))`,
    params: { alpha, beta, base },
    classWeights: false,
    compute,
  };
  return { ...loss, ...planeShape(loss) };
}
