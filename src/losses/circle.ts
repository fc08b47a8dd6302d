import { avgNonZero, type BatchLoss, logSumExp, pairwiseBatchLoss, planeShape } from './batch.ts';
import { positive } from './params.ts';

/**
 * Circle loss (Sun et al. 2020), as pytorch-metric-learning's CircleLoss on all pairs of the
 * batch: per anchor with at least one positive and one negative,
 *   softplus(LSE_n(γ·a_n·(s_n − m)) + LSE_p(−γ·a_p·(s_p − (1 − m)))),
 * a_p = [1 + m − s_p]₊, a_n = [s_n + m]₊ held constant for the gradient; the mean over
 * the anchors whose loss is above 0 (AvgNonZeroReducer). Defaults m = 0.4, γ = 80.
 */
export function circleLoss(opts: { m?: number; gamma?: number } = {}): BatchLoss {
  const m = opts.m ?? 0.4;
  const gamma = positive('circle', 'gamma', opts.gamma ?? 80);
  const compute = pairwiseBatchLoss('circle', (s, labels, n, g) => {
    const xp = new Float64Array(n);
    const xn = new Float64Array(n);
    const wp = new Float64Array(n);
    const wn = new Float64Array(n);
    const kp = new Float64Array(n);
    const kn = new Float64Array(n);
    const ip = new Int32Array(n);
    const ineg = new Int32Array(n);
    const per = new Float64Array(n);
    const sig = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let cp = 0;
      let cn = 0;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const v = s[i * n + j]!;
        if (labels[j] === labels[i]) {
          const a = Math.max(1 + m - v, 0);
          kp[cp] = -gamma * a; // d logit / d s
          xp[cp] = -gamma * a * (v - (1 - m));
          ip[cp++] = j;
        } else {
          const a = Math.max(v + m, 0);
          kn[cn] = gamma * a;
          xn[cn] = gamma * a * (v - m);
          ineg[cn++] = j;
        }
      }
      if (cp === 0 || cn === 0) continue;
      const z = logSumExp(xp, cp, false, wp) + logSumExp(xn, cn, false, wn);
      per[i] = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
      sig[i] = 1 / (1 + Math.exp(-z));
      for (let t = 0; t < cp; t++) g[i * n + ip[t]!] = sig[i]! * wp[t]! * kp[t]!;
      for (let t = 0; t < cn; t++) g[i * n + ineg[t]!] = sig[i]! * wn[t]! * kn[t]!;
    }
    return avgNonZero(per, g, n);
  }, { kind: 3, params: [m, gamma] });
  const loss = {
    kind: 'batch' as const,
    name: 'circle',
    formula: `mean over anchors with loss > 0: softplus(LSE_n(${gamma}·[s_n + ${m}]₊·(s_n − ${m})) + LSE_p(−${gamma}·[${1 + m} − s_p]₊·(s_p − ${1 - m})))`,
    params: { m, gamma },
    classWeights: false,
    compute,
  };
  return { ...loss, ...planeShape(loss) };
}
