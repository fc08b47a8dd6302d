/*
 * The pair-based batch losses (multi-similarity, nt-xent, supcon, circle: src/losses/*.ts) in one
 * call: rows of x normalised, S = U U^T, the loss's per-pair arithmetic (its value and
 * G = dL/dS), the back-projection (G + G^T) U and the way back through the normalisation.
 *
 * Products in float32 on the network's register-blocked GEMM (gemm.h, FMA where the CPU has it):
 * not the TypeScript reference's float64 bits, but within a few float32 roundings of them
 * (test/losses/batchPairNative.test.ts states the tolerance). The per-pair arithmetic is float64,
 * as the reference's: log-sum-exps with the max subtracted, the exponentials and logarithms of a
 * row (or of the whole batch) in one vm_exp / vm_log call, every sum in eight lanes combined in
 * a fixed order. One thread, no data-dependent order: the same bits for the same build and input.
 *
 * This file is compiled with -ffp-contract=off: the per-pair arithmetic rounds every product,
 * so given the same S it is the same on every build (the products, compiled in gemm.c, are where
 * builds differ: FMA or not, and the vector width).
 */
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "siamese.h"
#include "vmath.h"

/* the lanes of the per-pair sums (a fixed number, whatever the vector width) */
#define LN 8

static size_t up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* the eight lane sums of a, in one fixed order */
AI double lanes_sum(const double *a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }
AI double lanes_max(const double *a) {
  double m = a[0];
  for (int l = 1; l < LN; l++) m = a[l] > m ? a[l] : m;
  return m;
}

/* the parts of the workspace (offsets in doubles, each on a 64-byte line) */
typedef struct {
  int np;   /* n padded to the vector width (float columns of S, C, U^T) */
  int n8;   /* n padded to the lanes (double rows) */
  size_t ut, s, gut, s64, g, mask, e, a, rowv, tot;
} layout;

static layout layout_of(int n, int dim) {
  layout L;
  L.np = (int)up((size_t)n, VW);
  L.n8 = (int)up((size_t)n, LN);
  size_t o = 0;
#define PART(f, doubles) \
  L.f = o;               \
  o += up((doubles), 8);
  PART(ut, (size_t)dim * L.np / 2 + 1)   /* U^T, float [dim x np] */
  PART(s, (size_t)n * L.np / 2 + 1)      /* S (upper part), then C = G + G^T: float [n x np] */
  PART(gut, (size_t)dim * L.np / 2 + 1)  /* (C U)^T, float [dim x np] */
  PART(s64, (size_t)n * L.n8)            /* S, float64 [n x n8], zero padding */
  PART(g, (size_t)n * L.n8)              /* G = dL/dS before the rows' scale, float64 [n x n8] */
  PART(mask, 2 * (size_t)L.n8)           /* the row's positives and negatives, 1 or 0 */
  PART(e, 2 * (size_t)L.n8 + 8)          /* the row's arguments and exponentials */
  PART(a, (size_t)n * L.n8)              /* values for one batched vm_log (nt-xent: one per positive pair) */
  PART(rowv, 8 * (size_t)L.n8)           /* per-anchor values (norms, maxima, sums, scales) */
#undef PART
  L.tot = o;
  return L;
}

size_t batch_pair_loss_work(int n, int dim) { return layout_of(n, dim).tot; }

/* The row's masks: pos[j] = 1 where j != i has i's label, neg[j] = 1 where it has another (the
   padding neither) */
static void row_masks(const int32_t *labels, int n, int n8, int i, double *pos, double *neg) {
  const int32_t li = labels[i];
  for (int j = 0; j < n; j++) {
    const int same = labels[j] == li;
    pos[j] = same && j != i ? 1.0 : 0.0;
    neg[j] = same ? 0.0 : 1.0;
  }
  for (int j = n; j < n8; j++) pos[j] = neg[j] = 0.0;
}

/* ------------------------------------------------------------------------------ the losses
   Each fills G's rows (every column, zeros where a pair has no gradient: the unscaled dL/dS of
   its anchor) and rs (each row's scale, at rowv + 3 n8), and returns the loss. */

/* multi-similarity (multiSimilarity.ts): per anchor (1/a) log(1 + sum_p e^(-a (s_p - b)))
   + (1/B) log(1 + sum_n e^(B (s_n - b))); the mean over all anchors */
static double multi_similarity(const double *prm, const int32_t *labels, int n, const layout *L, double *w) {
  const double alpha = prm[0], beta = prm[1], base = prm[2];
  const int n8 = L->n8;
  double *pos = w + L->mask, *neg = pos + n8, *x = w + L->e, *sums = w + L->a, *rv = w + L->rowv;
  double *mp = rv, *mn = rv + n8, *cnt = rv + 2 * n8, *rs = rv + 3 * n8;
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = w + L->s64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    /* the log-sum-exps' maxima, the 1 term's 0 included */
    double ap[LN] = {0}, an[LN] = {0}, cp[LN] = {0}, cn[LN] = {0};
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) {
        const double v = s[j + l] - base;
        const double xp = -alpha * v, xn = beta * v;
        if (pos[j + l] != 0 && xp > ap[l]) ap[l] = xp;
        if (neg[j + l] != 0 && xn > an[l]) an[l] = xn;
        cp[l] += pos[j + l];
        cn[l] += neg[j + l];
      }
    const double Mp = lanes_max(ap), Mn = lanes_max(an);
    for (int j = 0; j < n8; j++) {
      const double v = s[j] - base;
      x[j] = pos[j] != 0 ? -alpha * v - Mp : neg[j] != 0 ? beta * v - Mn : -INFINITY;
    }
    x[n8] = -Mp;
    x[n8 + 1] = -Mn;
    vm_exp(x, x, n8 + 2);
    double sp[LN] = {0}, sn[LN] = {0};
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) {
        sp[l] += pos[j + l] * x[j + l];
        sn[l] += neg[j + l] * x[j + l];
      }
    const double Sp = x[n8] + lanes_sum(sp), Sn = x[n8 + 1] + lanes_sum(sn);
    /* d/ds of (1/k) LSE = -w for the positives, +w for the negatives (w: the softmax weight) */
    const double fp = -1 / Sp, fn = 1 / Sn;
    for (int j = 0; j < n8; j++) g[j] = x[j] * (pos[j] != 0 ? fp : neg[j] != 0 ? fn : 0);
    mp[i] = Mp;
    mn[i] = Mn;
    cnt[i] = lanes_sum(cp);
    cnt[n8 + i] = lanes_sum(cn);
    sums[2 * i] = Sp;
    sums[2 * i + 1] = Sn;
    rs[i] = 1.0 / n;
  }
  vm_log(sums, sums, 2 * n);
  double total = 0;
  for (int i = 0; i < n; i++) {
    if (cnt[i] > 0) total += (mp[i] + sums[2 * i]) / alpha;
    if (cnt[n8 + i] > 0) total += (mn[i] + sums[2 * i + 1]) / beta;
  }
  return total / n;
}

/* nt-xent (ntXent.ts): one loss per ordered positive pair (i, p),
   -log(e^(s_p/t) / (e^(s_p/t) + sum_n e^(s_n/t))); the mean over the positive pairs. With
   M = max_n s_n/t and N = sum_n e^(s_n/t - M) (N >= 1), a pair's e = e^(-|x_p - M|) gives all:
   x_p >= M: T = 1 + N e, loss log T, softmax weights 1/T (the pair) and e/T (the negatives);
   x_p < M:  T = e + N, loss M - x_p + log T, weights e/T and 1/T. */
static double nt_xent(const double *prm, const int32_t *labels, int n, const layout *L, double *w) {
  const double tau = prm[0];
  const int n8 = L->n8;
  double *pos = w + L->mask, *neg = pos + n8, *x = w + L->e, *logs = w + L->a, *rs = w + L->rowv + 3 * (size_t)n8;
  size_t pairs = 0;
  int any_neg = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      if (labels[j] == labels[i]) pairs++;
      else any_neg = 1;
    }
  if (pairs == 0 || !any_neg) {
    memset(w + L->g, 0, (size_t)n * n8 * sizeof(double));
    for (int i = 0; i < n; i++) rs[i] = 0;
    return 0;
  }
  const double f = 1 / (tau * (double)pairs);
  size_t t = 0; /* the positive pairs' T so far, for the one vm_log at the end */
  double direct = 0; /* the sum of the M - x_p terms */
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = w + L->s64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    rs[i] = f;
    double am[LN], cn[LN] = {0};
    for (int l = 0; l < LN; l++) am[l] = -INFINITY;
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) {
        const double v = s[j + l] / tau;
        if (neg[j + l] != 0 && v > am[l]) am[l] = v;
        cn[l] += neg[j + l];
      }
    if (lanes_sum(cn) == 0) {
      /* no negatives: each of the anchor's pairs has loss 0 and gradient 0 */
      memset(g, 0, (size_t)n8 * sizeof(double));
      continue;
    }
    const double M = lanes_max(am);
    for (int j = 0; j < n8; j++) {
      const double v = s[j] / tau - M;
      x[j] = neg[j] != 0 ? v : pos[j] != 0 ? -fabs(v) : -INFINITY;
    }
    vm_exp(x, x, n8);
    double sn[LN] = {0};
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) sn[l] += neg[j + l] * x[j + l];
    const double N = lanes_sum(sn);
    /* A: the weight every negative gets, summed over the anchor's positive pairs */
    double A = 0;
    for (int j = 0; j < n; j++) {
      if (pos[j] == 0) {
        g[j] = 0;
        continue;
      }
      const double e = x[j], xp = s[j] / tau;
      double T;
      if (xp >= M) {
        T = 1 + N * e;
        A += e / T;
        g[j] = -N * e / T; /* 1/T - 1 */
      } else {
        T = e + N;
        A += 1 / T;
        g[j] = -N / T; /* e/T - 1 */
        direct += M - xp;
      }
      logs[t++] = T;
    }
    for (int j = 0; j < n8; j++)
      if (neg[j] != 0) g[j] = x[j] * A;
    for (int j = n; j < n8; j++) g[j] = 0;
  }
  vm_log(logs, logs, (int)t);
  double sl[LN] = {0};
  size_t k = 0;
  for (; k + LN <= t; k += LN)
    for (int l = 0; l < LN; l++) sl[l] += logs[k + l];
  for (; k < t; k++) sl[k % LN] += logs[k];
  return (direct + lanes_sum(sl)) / (double)pairs;
}

/* the mean of the per-anchor losses above 0 (AvgNonZeroReducer): each row's scale times
   1/count where counted, 0 elsewhere */
static double avg_non_zero(const double *per, double *rs, int n) {
  int count = 0;
  double total = 0;
  for (int i = 0; i < n; i++)
    if (per[i] > 0) {
      count++;
      total += per[i];
    }
  for (int i = 0; i < n; i++) rs[i] = per[i] > 0 ? rs[i] / count : 0;
  return count > 0 ? total / count : 0;
}

/* supcon (ntXent.ts, supConLoss): per anchor -(1/|P|) sum_p log(e^(s_p/t) / sum_{j != i} e^(s_j/t));
   the mean over the anchors whose loss is above 0 */
static double supcon(const double *prm, const int32_t *labels, int n, const layout *L, double *w) {
  const double tau = prm[0];
  const int n8 = L->n8;
  double *pos = w + L->mask, *neg = pos + n8, *x = w + L->e, *sums = w + L->a, *rv = w + L->rowv;
  double *mx = rv, *mean = rv + n8, *per = rv + 2 * n8, *rs = rv + 3 * n8;
  int any_pos = 0, any_neg = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (j != i) {
        if (labels[j] == labels[i]) any_pos = 1;
        else any_neg = 1;
      }
  if (!any_pos || !any_neg) {
    memset(w + L->g, 0, (size_t)n * n8 * sizeof(double));
    for (int i = 0; i < n; i++) rs[i] = 0;
    return 0;
  }
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = w + L->s64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    double am[LN], cp[LN] = {0}, xp[LN] = {0};
    for (int l = 0; l < LN; l++) am[l] = -INFINITY;
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) {
        const double v = s[j + l] / tau;
        const double in = pos[j + l] + neg[j + l];
        if (in != 0 && v > am[l]) am[l] = v;
        cp[l] += pos[j + l];
        xp[l] += pos[j + l] * v;
      }
    const double np = lanes_sum(cp);
    sums[i] = 1;
    rs[i] = 0;
    per[i] = 0;
    if (np == 0) {
      memset(g, 0, (size_t)n8 * sizeof(double));
      continue;
    }
    const double M = lanes_max(am);
    for (int j = 0; j < n8; j++) x[j] = pos[j] + neg[j] != 0 ? s[j] / tau - M : -INFINITY;
    vm_exp(x, x, n8);
    double se[LN] = {0};
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) se[l] += x[j + l];
    const double S = lanes_sum(se);
    /* d per_i / d x_j = w_j - [j positive] / |P|, w the softmax over j != i */
    const double is = 1 / S, ip = 1 / np;
    for (int j = 0; j < n8; j++) g[j] = x[j] * is - pos[j] * ip;
    mx[i] = M;
    mean[i] = lanes_sum(xp) / np;
    sums[i] = S;
    rs[i] = 1 / tau;
  }
  vm_log(sums, sums, n);
  /* per_i = lse - mean_p x_p */
  for (int i = 0; i < n; i++)
    if (rs[i] != 0) per[i] = mx[i] + sums[i] - mean[i];
  return avg_non_zero(per, rs, n);
}

/* circle (circle.ts): per anchor with a positive and a negative,
   softplus(LSE_n(g a_n (s_n - m)) + LSE_p(-g a_p (s_p - (1 - m)))), a_p = [1 + m - s_p]+,
   a_n = [s_n + m]+ held constant; the mean over the anchors whose loss is above 0 */
static double circle(const double *prm, const int32_t *labels, int n, const layout *L, double *w) {
  const double m = prm[0], gamma = prm[1];
  const int n8 = L->n8;
  double *pos = w + L->mask, *neg = pos + n8, *x = w + L->e, *lg = w + L->a, *rv = w + L->rowv;
  double *mp = rv, *mn = rv + n8, *per = rv + 2 * n8, *rs = rv + 3 * n8, *z = rv + 4 * n8, *u = rv + 5 * n8;
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = w + L->s64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    double ap[LN], an[LN], cp[LN] = {0}, cn[LN] = {0};
    for (int l = 0; l < LN; l++) ap[l] = an[l] = -INFINITY;
    /* the logits into g (scratch: G's row is written below), their slopes into x's second half */
    double *k = x + n8;
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) {
        const double v = s[j + l];
        const double a1 = 1 + m - v, a2 = v + m;
        const double aP = a1 > 0 ? a1 : 0, aN = a2 > 0 ? a2 : 0;
        const double kp = -gamma * aP, kn = gamma * aN;
        const double lp = kp * (v - (1 - m)), lnn = kn * (v - m);
        const double isp = pos[j + l], isn = neg[j + l];
        g[j + l] = isp != 0 ? lp : lnn;
        k[j + l] = isp != 0 ? kp : isn != 0 ? kn : 0;
        if (isp != 0 && lp > ap[l]) ap[l] = lp;
        if (isn != 0 && lnn > an[l]) an[l] = lnn;
        cp[l] += isp;
        cn[l] += isn;
      }
    lg[2 * i] = lg[2 * i + 1] = 1;
    rs[i] = 0;
    per[i] = 0;
    z[i] = 0;
    if (lanes_sum(cp) == 0 || lanes_sum(cn) == 0) {
      memset(g, 0, (size_t)n8 * sizeof(double));
      continue;
    }
    const double Mp = lanes_max(ap), Mn = lanes_max(an);
    for (int j = 0; j < n8; j++) x[j] = pos[j] != 0 ? g[j] - Mp : neg[j] != 0 ? g[j] - Mn : -INFINITY;
    vm_exp(x, x, n8);
    double sp[LN] = {0}, sn[LN] = {0};
    for (int j = 0; j < n8; j += LN)
      for (int l = 0; l < LN; l++) {
        sp[l] += pos[j + l] * x[j + l];
        sn[l] += neg[j + l] * x[j + l];
      }
    const double Sp = lanes_sum(sp), Sn = lanes_sum(sn);
    const double fp = 1 / Sp, fn = 1 / Sn;
    /* the softmax weight times the logit's slope; sigmoid(z) joins in the row's scale */
    for (int j = 0; j < n8; j++) g[j] = x[j] * k[j] * (pos[j] != 0 ? fp : fn);
    mp[i] = Mp;
    mn[i] = Mn;
    lg[2 * i] = Sp;
    lg[2 * i + 1] = Sn;
    rs[i] = 1;
  }
  vm_log(lg, lg, 2 * n);
  /* t = e^(-|z|): softplus(z) = max(z, 0) + log1p(t), sigmoid(z) = 1/(1 + t) or t/(1 + t) */
  for (int i = 0; i < n; i++) {
    z[i] = rs[i] != 0 ? mp[i] + lg[2 * i] + mn[i] + lg[2 * i + 1] : 0;
    u[i] = -fabs(z[i]);
  }
  vm_exp(u, u, n);
  double *lu = lg; /* log(1 + t), the logs no longer needed */
  for (int i = 0; i < n; i++) lu[i] = 1 + u[i];
  vm_log(lu, lu, n);
  for (int i = 0; i < n; i++) {
    if (rs[i] == 0) continue;
    const double t = u[i], v = 1 + t;
    /* log1p(t) from log(1 + t): exact to a few ulp where 1 + t rounds (t/(v - 1) corrects it) */
    const double l1p = v == 1 ? t : lu[i] * (t / (v - 1));
    per[i] = (z[i] > 0 ? z[i] : 0) + l1p;
    rs[i] = z[i] > 0 ? 1 / v : t / v;
  }
  return avg_non_zero(per, rs, n);
}

/* -------------------------------------------------------------------------- the whole step */

/* U^T [dim x np] (float, zero padding) of x's rows over their norms; norms[i] = max(|x_i|, 1e-12) */
static void normalize_t(const float *x, int n, int dim, int np, float *ut, double *norms) {
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * dim;
    double q[LN] = {0};
    int k = 0;
    for (; k + LN <= dim; k += LN)
      for (int l = 0; l < LN; l++) q[l] += (double)xr[k + l] * xr[k + l];
    for (; k < dim; k++) q[k % LN] += (double)xr[k] * xr[k];
    const double r = sqrt(lanes_sum(q));
    norms[i] = r >= BATCH_NORM_EPSILON || r != r ? r : BATCH_NORM_EPSILON;
  }
  for (int k = 0; k < dim; k++) {
    float *row = ut + (size_t)k * np;
    for (int i = 0; i < n; i++) row[i] = (float)(x[(size_t)i * dim + k] / norms[i]);
    for (int i = n; i < np; i++) row[i] = 0;
  }
}

/* The loss of one batch (kind: BATCH_PAIR_*, prm: its parameters), dL/dx into grad [n x dim]
   (float32) and S into sims [n x n] (float64). work: batch_pair_loss_work doubles, 64-byte
   aligned. */
double batch_pair_loss(int kind, const double *prm, const float *x, const int32_t *labels, int n, int dim, float *grad,
                       double *sims, double *work) {
  const layout L = layout_of(n, dim);
  const int np = L.np, n8 = L.n8;
  float *ut = (float *)(work + L.ut), *s = (float *)(work + L.s), *gut = (float *)(work + L.gut);
  double *s64 = work + L.s64, *G = work + L.g;
  double *norms = work + L.rowv + 6 * (size_t)n8;
  normalize_t(x, n, dim, np, ut, norms);
  /* S = U U^T: the tiles that reach the diagonal or right of it, by groups of VW rows (every
     element one sum in k order: S_ij and S_ji would be the same bits anyway) */
  for (int i0 = 0; i0 < n; i0 += VW) {
    const int m = n - i0 < VW ? n - i0 : VW;
    gemm_tn(m, np - i0, dim, ut + i0, np, ut + i0, np, s + (size_t)i0 * np + i0, np);
  }
  for (int i = 0; i < n; i++) {
    double *r = s64 + (size_t)i * n8;
    for (int j = 0; j < i; j++) r[j] = s64[(size_t)j * n8 + i];
    for (int j = i; j < n; j++) r[j] = s[(size_t)i * np + j];
    for (int j = n; j < n8; j++) r[j] = 0;
    memcpy(sims + (size_t)i * n, r, (size_t)n * sizeof(double));
  }
  double loss;
  switch (kind) {
    case BATCH_PAIR_MULTI_SIMILARITY: loss = multi_similarity(prm, labels, n, &L, work); break;
    case BATCH_PAIR_NT_XENT: loss = nt_xent(prm, labels, n, &L, work); break;
    case BATCH_PAIR_SUPCON: loss = supcon(prm, labels, n, &L, work); break;
    default: loss = circle(prm, labels, n, &L, work); break;
  }
  /* C = diag(rs) G + (diag(rs) G)^T with a zero diagonal, float, into S's place */
  const double *rs = work + L.rowv + 3 * (size_t)n8;
  float *c = s;
  for (int i = 0; i < n; i++) {
    const double ri = rs[i];
    c[(size_t)i * np + i] = 0;
    for (int j = i + 1; j < n; j++) {
      const float v = (float)(ri * G[(size_t)i * n8 + j] + rs[j] * G[(size_t)j * n8 + i]);
      c[(size_t)i * np + j] = v;
      c[(size_t)j * np + i] = v;
    }
    for (int j = n; j < np; j++) c[(size_t)i * np + j] = 0;
  }
  /* (C U)^T = U^T C (C symmetric): [dim x np] */
  gemm_nn(dim, np, n, ut, np, c, np, gut, np);
  /* back through the normalisation: (g - (g . u) u) / |x| per row (no projection where the
     norm is the floor: F.normalize divides by the constant there) */
  double *dot = work + L.rowv + 7 * (size_t)n8;
  for (int i = 0; i < n; i++) dot[i] = 0;
  for (int k = 0; k < dim; k++) {
    const float *gr = gut + (size_t)k * np, *ur = ut + (size_t)k * np;
    for (int i = 0; i < n; i++) dot[i] += (double)gr[i] * ur[i];
  }
  for (int i = 0; i < n; i++) {
    const double nrm = norms[i], d = nrm > BATCH_NORM_EPSILON ? dot[i] : 0;
    float *o = grad + (size_t)i * dim;
    for (int k = 0; k < dim; k++) o[k] = (float)((gut[(size_t)k * np + i] - d * ut[(size_t)k * np + i]) / nrm);
  }
  return loss;
}
