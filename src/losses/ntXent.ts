import { avgNonZero, type BatchLoss, logSumExp, pairwiseBatchLoss, planeShape } from './batch.ts';
import { positive } from './params.ts';

/**
 * NT-Xent / InfoNCE (as pytorch-metric-learning's NTXentLoss): one loss per ordered positive
 * pair (i, p), −log(exp(s_ip/τ) / (exp(s_ip/τ) + Σ_n exp(s_in/τ))) over i's negatives n (i's
 * other positives are not in the denominator); the mean over positive pairs (MeanReducer).
 * Default temperature τ = 0.07. A batch without a positive or without a negative pair has loss 0.
 */
export function ntXentLoss(opts: { temperature?: number } = {}): BatchLoss {
  const tau = positive('nt-xent', 'temperature', opts.temperature ?? 0.07);
  const compute = pairwiseBatchLoss('nt-xent', (s, labels, n, g) => {
    let pairs = 0;
    let anyNeg = false;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        if (labels[j] === labels[i]) pairs++;
        else anyNeg = true;
      }
    }
    if (pairs === 0 || !anyNeg) return { loss: 0, g };
    // Per anchor, the negatives' part of the denominator is one sum, N = Σ_n e^(x_n − M) with
    // M = max x_n, shared by all its positive pairs: O(n²) instead of O(n²·positives).
    const f = 1 / (tau * pairs);
    const en = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      let M = -Infinity;
      for (let j = 0; j < n; j++) if (labels[j] !== labels[i]) M = Math.max(M, s[i * n + j]! / tau);
      let N = 0;
      for (let j = 0; j < n; j++) if (labels[j] !== labels[i]) N += (en[j] = Math.exp(s[i * n + j]! / tau - M));
      // A = Σ_p e^(M − lse_p): the weight every negative gets, summed over the anchor's positive pairs
      let A = 0;
      for (let p = 0; p < n; p++) {
        if (p === i || labels[p] !== labels[i]) continue;
        const xp = s[i * n + p]! / tau;
        let lse: number;
        if (N === 0) lse = xp; // no negatives for this anchor: the loss term is 0
        else {
          const m = Math.max(xp, M);
          lse = m + Math.log(Math.exp(xp - m) + N * Math.exp(M - m));
          A += Math.exp(M - lse);
        }
        total += lse - xp;
        g[i * n + p]! += (Math.exp(xp - lse) - 1) * f;
      }
      if (A > 0) for (let j = 0; j < n; j++) if (labels[j] !== labels[i]) g[i * n + j]! += en[j]! * A * f;
    }
    return { loss: total / pairs, g };
  }, { kind: 1, params: [tau] });
  const loss = {
    kind: 'batch' as const,
    name: 'nt-xent',
    formula: `mean over positive pairs: −log(e^(s_p/${tau}) / (e^(s_p/${tau}) + Σ_n e^(s_n/${tau})))`,
    params: { temperature: tau },
    classWeights: false,
    compute,
  };
  return { ...loss, ...planeShape(loss) };
}

/**
 * Supervised contrastive loss (Khosla et al. 2020, as pytorch-metric-learning's SupConLoss):
 * per anchor i, −(1/|P_i|) Σ_{p∈P_i} log(exp(s_ip/τ) / Σ_{j≠i} exp(s_ij/τ)); averaged over the
 * anchors whose loss is above 0 (AvgNonZeroReducer; anchors without positives have 0).
 * Default temperature τ = 0.1.
 */
export function supConLoss(opts: { temperature?: number } = {}): BatchLoss {
  const tau = positive('supcon', 'temperature', opts.temperature ?? 0.1);
  const compute = pairwiseBatchLoss('supcon', (s, labels, n, g) => {
    const x = new Float64Array(n);
    const w = new Float64Array(n);
    const idx = new Int32Array(n);
    let anyPos = false;
    let anyNeg = false;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (j !== i) (labels[j] === labels[i] ? (anyPos = true) : (anyNeg = true));
    if (!anyPos || !anyNeg) return { loss: 0, g };
    const per = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let c = 0;
      let np = 0;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        x[c] = s[i * n + j]! / tau;
        idx[c++] = j;
        if (labels[j] === labels[i]) np++;
      }
      if (np === 0) continue;
      const lse = logSumExp(x, c, false, w);
      let sum = 0;
      for (let t = 0; t < c; t++) if (labels[idx[t]!] === labels[i]) sum += x[t]! - lse;
      per[i] = -sum / np;
      // d per_i / d x_t = w_t − [t positive]/|P|  (the log-softmax over j ≠ i)
      for (let t = 0; t < c; t++) g[i * n + idx[t]!] = (w[t]! - (labels[idx[t]!] === labels[i] ? 1 / np : 0)) / tau;
    }
    return avgNonZero(per, g, n);
  }, { kind: 2, params: [tau] });
  const loss = {
    kind: 'batch' as const,
    name: 'supcon',
    formula: `mean over anchors with loss > 0: −mean_p log(e^(s_p/${tau}) / Σ_{j≠i} e^(s_j/${tau}))`,
    params: { temperature: tau },
    classWeights: false,
    compute,
  };
  return { ...loss, ...planeShape(loss) };
}
