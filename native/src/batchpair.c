/*
 * The pair-based batch losses (multi-similarity, nt-xent, supcon, circle: the .ts files in src/losses) in one
 * call: rows of x normalised, S = U U^T, the loss's per-pair arithmetic (its value and
 * G = dL/dS), the back-projection (G + G^T) U and the way back through the normalisation.
 *
 * Products in float32 on the network's register-blocked GEMM (gemm.h, FMA where the CPU has it;
 * S only in the tiles on or above its diagonal): not the TypeScript reference's float64 bits, but
 * within a few float32 roundings of them (test/losses/batchPairNative.test.ts states the
 * tolerance). The per-pair arithmetic is float64, as the reference's (log-sum-exps with the max
 * subtracted), except the exponentials: a row's max-shifted arguments (at most 0) go through one
 * vm_expf call, in float (2 ulp, far below what the float32 products leave in S); the few
 * logarithms of the batch through one vm_log. Every sum and maximum runs in eight lanes combined
 * in a fixed order (nt-xent's sums over an anchor's positives: one by one, in row order). One
 * thread, no data-dependent order: the same bits for the same build and input.
 *
 * Compiled with -ffp-contract=off (every product rounded: given the same S, the per-pair
 * arithmetic is the same on every build; the products, compiled in gemm.c, are where builds
 * differ: FMA or not, the vector width) and -fno-trapping-math (the masks' selects vectorise).
 */
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "siamese.h"
#include "vmath.h"

/* a stage's end, for a timing harness (bench/batchPairParts.c); nothing in the addon */
#ifndef PROBE
#define PROBE(stage) ((void)0)
#endif

/* the lanes of the per-pair sums (a fixed number, whatever the vector width) */
#define LN 8

static size_t up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Eight lanes of doubles (GCC's vector extension: one AVX-512 vector, two AVX2 or four SSE2
   ones, the same lane-wise arithmetic on each): the per-pair sums and maxima run in them, lane l
   taking the columns j = l mod 8, the lanes combined in one fixed order at the end. */
typedef double v8d __attribute__((vector_size(64), aligned(8)));
typedef long long v8l __attribute__((vector_size(64)));
#define LD8(p) (*(const v8d *)(const void *)(p))
#define ST8(p, v) (*(v8d *)(void *)(p) = (v))
AI v8d vsel(v8l m, v8d a, v8d b) { return (v8d)(((v8l)a & m) | ((v8l)b & ~m)); }
AI v8d vmax(v8d a, v8d b) { return vsel(a > b, a, b); }
AI v8d splat(double x) { return (v8d){x, x, x, x, x, x, x, x}; }

/* eight floats (unaligned loads), widened to doubles lane for lane */
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define LD8F(p) (*(const v8f *)(const void *)(p))
#define ST8F(p, v) (*(v8f *)(void *)(p) = (v))
AI v8d widen(v8f v) { return __builtin_convertvector(v, v8d); }
AI v8f narrow(v8d v) { return __builtin_convertvector(v, v8f); }
/* the lanes where a mask array (1 or 0) is set */
#define SET(p) (LD8(p) != 0)

AI double lanes_sum(v8d a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }
AI double lanes_max(v8d a) {
  double m = a[0];
  for (int l = 1; l < LN; l++) m = a[l] > m ? a[l] : m;
  return m;
}

/* the 8 x 8 block at a (row stride lda) transposed into b (row stride ldb); a != b: one body for
   doubles (transpose8) and floats (transpose8f), three rounds of lane shuffles */
#define TRANSPOSE8(name, T, V, I, LD, ST)                                          \
  AI void name(const T *a, size_t lda, T *b, size_t ldb) {                         \
    const I lo2 = {0, 8, 2, 10, 4, 12, 6, 14}, hi2 = {1, 9, 3, 11, 5, 13, 7, 15};  \
    const I lo4 = {0, 1, 8, 9, 4, 5, 12, 13}, hi4 = {2, 3, 10, 11, 6, 7, 14, 15};  \
    const I lo8 = {0, 1, 2, 3, 8, 9, 10, 11}, hi8 = {4, 5, 6, 7, 12, 13, 14, 15};  \
    V r[8], t[8], u[8];                                                            \
    for (int k = 0; k < 8; k++) r[k] = LD(a + k * lda);                            \
    for (int k = 0; k < 8; k += 2) {                                               \
      t[k] = __builtin_shuffle(r[k], r[k + 1], lo2);                               \
      t[k + 1] = __builtin_shuffle(r[k], r[k + 1], hi2);                           \
    }                                                                              \
    for (int k = 0; k < 8; k += 4) {                                               \
      u[k] = __builtin_shuffle(t[k], t[k + 2], lo4);                               \
      u[k + 2] = __builtin_shuffle(t[k], t[k + 2], hi4);                           \
      u[k + 1] = __builtin_shuffle(t[k + 1], t[k + 3], lo4);                       \
      u[k + 3] = __builtin_shuffle(t[k + 1], t[k + 3], hi4);                       \
    }                                                                              \
    for (int k = 0; k < 4; k++) {                                                  \
      ST(b + k * ldb, __builtin_shuffle(u[k], u[k + 4], lo8));                     \
      ST(b + (k + 4) * ldb, __builtin_shuffle(u[k], u[k + 4], hi8));               \
    }                                                                              \
  }
TRANSPOSE8(transpose8, double, v8d, v8l, LD8, ST8)
TRANSPOSE8(transpose8f, float, v8f, v8i, LD8F, ST8F)

/* the parts of the workspace (offsets in doubles, each on a 64-byte line) */
typedef struct {
  int np;   /* n padded to the vector width (float columns of S, U^T) */
  int dp;   /* dim padded to the vector width (float columns of U, dL/dU) */
  int n8;   /* n padded to the lanes (double rows) */
  size_t u, ut, s, c, gu, s64, g, gt, mask, grp, e, ef, a, rowv, tot;
} layout;

static layout layout_of(int n, int dim) {
  layout L;
  /* whole vectors and whole 8 x 8 blocks */
  L.np = (int)up((size_t)n, VW > 8 ? VW : 8);
  L.dp = (int)up((size_t)dim, VW > 8 ? VW : 8);
  L.n8 = (int)up((size_t)n, LN);
  size_t o = 0;
#define PART(f, doubles) \
  L.f = o;               \
  o += up((doubles), 8);
  PART(u, (size_t)L.np * L.dp / 2 + 1)   /* U, float [np x dp] */
  PART(ut, (size_t)L.dp * L.np / 2 + 1)  /* U^T, float [dp x np] */
  PART(s, (size_t)n * L.np / 2 + 1)      /* S (upper part), float [n x np] */
  PART(c, (size_t)L.n8 * L.n8 / 2 + 1)  /* C = G + G^T, float [n8 x n8] */
  PART(gu, (size_t)n * L.dp / 2 + 1)     /* dL/dU = C U, float [n x dp] */
  PART(s64, (size_t)L.n8 * L.n8)         /* S, float64 [n8 x n8], zero padding */
  PART(g, (size_t)L.n8 * L.n8)           /* G = dL/dS before the rows' scale, float64 [n8 x n8] */
  PART(gt, 64)                           /* a transposed 8 x 8 block */
  PART(mask, 2 * (size_t)L.n8)           /* the row's positives and negatives, 1 or 0 */
  PART(grp, 2 * (size_t)L.n8)            /* nt-xent: the rows by label, int [3 n8] (label_groups) */
  PART(e, (size_t)L.n8)                  /* circle: the row's logits' slopes */
  PART(ef, (size_t)L.n8 / 2 + 8)         /* the row's arguments and exponentials, float */
  /* values for one batched vm_log: two per anchor, or for nt-xent one product per eight of an
     anchor's positives (at most n8 / 8 each; the labels cannot change during the call, addon.c
     copies them) and a vector's padding */
  PART(a, (size_t)n * (L.n8 / 8 > 2 ? L.n8 / 8 : 2) + LN)
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

/* The rows grouped by label, each group in ascending order: order[start[k] .. start[k + 1]) the
   rows of group k, of[i] row i's group (n times the groups' count of label comparisons) */
static void label_groups(const int32_t *labels, int n, int *order, int *start, int *of) {
  for (int i = 0; i < n; i++) of[i] = -1;
  int groups = 0, o = 0;
  for (int i = 0; i < n; i++) {
    if (of[i] >= 0) continue;
    start[groups] = o;
    for (int j = i; j < n; j++)
      if (labels[j] == labels[i]) {
        of[j] = groups;
        order[o++] = j;
      }
    groups++;
  }
  start[groups] = o;
}

/* the ordered pairs (i, j != i) of one label: (n^2 - those) pairs have two */
static size_t same_pairs(const int32_t *labels, int n) {
  size_t same = 0;
  for (int i = 0; i < n; i++) {
    const int32_t li = labels[i];
    int c = 0;
    for (int j = 0; j < n; j++) c += labels[j] == li;
    same += (size_t)c - 1;
  }
  return same;
}

/* ------------------------------------------------------------------------------ the losses
   Each reads S from S64 (float64 rows of n8) and fills G's rows (every column, zeros where a
   pair has no gradient: the unscaled dL/dS of its anchor) and rs (each row's scale, at
   rowv + 3 n8), and returns the loss. */

/* multi-similarity (multiSimilarity.ts): per anchor (1/a) log(1 + sum_p e^(-a (s_p - b)))
   + (1/B) log(1 + sum_n e^(B (s_n - b))); the mean over all anchors */
static double multi_similarity(const double *prm, const int32_t *labels, int n, const double *S64, const layout *L, double *w) {
  const double alpha = prm[0], beta = prm[1], base = prm[2];
  const int n8 = L->n8;
  /* the row's arguments, then their exponentials, in float: vm_expf (the arguments are at most
     0, the max subtracted; float's 2 ulp are far below what the float32 products leave in S) */
  float *x = (float *)(w + L->ef);
  double *pos = w + L->mask, *neg = pos + n8, *sums = w + L->a, *rv = w + L->rowv;
  /* cnt: the positives' counts, then the negatives' (2 n8 values, clear of rs) */
  double *mp = rv, *mn = rv + n8, *rs = rv + 3 * n8, *cnt = rv + 4 * n8;
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = S64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    /* the log-sum-exps' maxima, the 1 term's 0 included */
    v8d ap = splat(0), an = splat(0), cp = splat(0), cn = splat(0);
    for (int j = 0; j < n8; j += LN) {
      const v8d v = LD8(s + j) - base, P = LD8(pos + j), N = LD8(neg + j);
      ap = vmax(vsel(P != 0, -alpha * v, splat(0)), ap);
      an = vmax(vsel(N != 0, beta * v, splat(0)), an);
      cp += P;
      cn += N;
    }
    const double Mp = lanes_max(ap), Mn = lanes_max(an);
    /* (the per-element loops in vectors of eight, selects for the branches: the same values) */
    for (int j = 0; j < n8; j += LN) {
      const v8d v = LD8(s + j) - base;
      ST8F(x + j, narrow(vsel(SET(pos + j), -alpha * v - Mp, vsel(SET(neg + j), beta * v - Mn, splat(-INFINITY)))));
    }
    x[n8] = (float)-Mp;
    x[n8 + 1] = (float)-Mn;
    vm_expf(x, x, n8 + 2);
    v8d sp = splat(0), sn = splat(0);
    for (int j = 0; j < n8; j += LN) {
      const v8d e = widen(LD8F(x + j));
      sp += LD8(pos + j) * e;
      sn += LD8(neg + j) * e;
    }
    const double Sp = x[n8] + lanes_sum(sp), Sn = x[n8 + 1] + lanes_sum(sn);
    /* d/ds of (1/k) LSE = -w for the positives, +w for the negatives (w: the softmax weight) */
    const double fp = -1 / Sp, fn = 1 / Sn;
    for (int j = 0; j < n8; j += LN)
      ST8(g + j, widen(LD8F(x + j)) * vsel(SET(pos + j), splat(fp), vsel(SET(neg + j), splat(fn), splat(0))));
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
static double nt_xent(const double *prm, const int32_t *labels, int n, const double *S64, const layout *L, double *w) {
  /* s/t as s times 1/t (within an ulp; vector divisions cost ten multiplications) */
  const double tau = prm[0], it = 1 / tau;
  const int n8 = L->n8;
  /* the row's arguments, then their exponentials, in float: vm_expf (the arguments are at most
     0, the max subtracted; float's 2 ulp are far below what the float32 products leave in S) */
  float *x = (float *)(w + L->ef);
  double *pos = w + L->mask, *neg = pos + n8, *logs = w + L->a, *rs = w + L->rowv + 3 * (size_t)n8;
  const size_t pairs = same_pairs(labels, n);
  const int any_neg = pairs < (size_t)n * (n - 1);
  if (pairs == 0 || !any_neg) {
    memset(w + L->g, 0, (size_t)n * n8 * sizeof(double));
    for (int i = 0; i < n; i++) rs[i] = 0;
    return 0;
  }
  const double f = 1 / (tau * (double)pairs);
  int *order = (int *)(w + L->grp), *start = order + n8, *of = start + n8 + 8;
  label_groups(labels, n, order, start, of);
  size_t t = 0; /* the positive pairs' T so far, for the one vm_log at the end */
  double direct = 0; /* the sum of the M - x_p terms */
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = S64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    rs[i] = f;
    v8d am = splat(-INFINITY), cn = splat(0);
    for (int j = 0; j < n8; j += LN) {
      const v8d N = LD8(neg + j);
      am = vmax(vsel(N != 0, LD8(s + j) * it, splat(-INFINITY)), am);
      cn += N;
    }
    if (lanes_sum(cn) == 0) {
      /* no negatives: each of the anchor's pairs has loss 0 and gradient 0 */
      memset(g, 0, (size_t)n8 * sizeof(double));
      continue;
    }
    const double M = lanes_max(am);
    for (int j = 0; j < n8; j += LN) {
      const v8d v = LD8(s + j) * it - M, nabs = (v8d)((v8l)v | (v8l)splat(-0.0)); /* -|v| */
      ST8F(x + j, narrow(vsel(SET(neg + j), v, vsel(SET(pos + j), nabs, splat(-INFINITY)))));
    }
    vm_expf(x, x, n8);
    v8d sn = splat(0);
    for (int j = 0; j < n8; j += LN) sn += LD8(neg + j) * widen(LD8F(x + j));
    const double N = lanes_sum(sn);
    /* G's row: e for the negatives (times A below), 0 elsewhere; then the positives, one by one
       from the label's group (a tenth of the row in a class-balanced batch: the vector loop
       over the whole row spent its time in divisions whose lanes it threw away). A: the weight
       every negative gets, summed over the anchor's positive pairs. The loss terms log T as logs
       of products of (at most) eight T's, 1 <= T <= n + 1: a product of eight stays below 2^124 */
    for (int j = 0; j < n8; j += LN) ST8(g + j, LD8(neg + j) * widen(LD8F(x + j)));
    double A = 0, prod = 1;
    int k = 0;
    const int grp = of[i];
    for (int q = start[grp]; q < start[grp + 1]; q++) {
      const int j = order[q];
      if (j == i) continue;
      const double e = x[j], xp = s[j] * it;
      const int above = xp >= M;
      const double T = above ? 1 + N * e : e + N;
      /* 1/T - 1 and e/T - 1 without the cancellation */
      const double wT = (above ? e : 1) / T;
      A += wT;
      g[j] = -N * wT;
      if (!above) direct += M - xp;
      prod *= T;
      if (++k == 8) {
        logs[t++] = prod;
        prod = 1;
        k = 0;
      }
    }
    if (k) logs[t++] = prod;
    for (int j = 0; j < n8; j += LN) ST8(g + j, vsel(SET(neg + j), LD8(g + j) * A, LD8(g + j)));
  }
  vm_log(logs, logs, (int)t);
  for (size_t k = t; k % LN; k++) logs[k] = 0;
  v8d sl = splat(0);
  for (size_t k = 0; k < t; k += LN) sl += LD8(logs + k);
  return (direct + lanes_sum(sl)) / (double)pairs;
}

/* the mean of the per-anchor losses above 0 (AvgNonZeroReducer): each row's scale times
   1/count where counted, 0 elsewhere */
static double avg_non_zero(const double *per, double *rs, int n) {
  int count = 0;
  double total = 0;
  for (int i = 0; i < n; i++) {
    /* a NaN anchor loss (a NaN or infinite embedding) makes the loss NaN, so the trainer stops
       the run, where "above 0" would silently drop it */
    if (per[i] != per[i]) return per[i];
    if (per[i] > 0) {
      count++;
      total += per[i];
    }
  }
  for (int i = 0; i < n; i++) rs[i] = per[i] > 0 ? rs[i] / count : 0;
  return count > 0 ? total / count : 0;
}

/* supcon (ntXent.ts, supConLoss): per anchor -(1/|P|) sum_p log(e^(s_p/t) / sum_{j != i} e^(s_j/t));
   the mean over the anchors whose loss is above 0 */
static double supcon(const double *prm, const int32_t *labels, int n, const double *S64, const layout *L, double *w) {
  const double tau = prm[0], it = 1 / tau;
  const int n8 = L->n8;
  /* the row's arguments, then their exponentials, in float: vm_expf (the arguments are at most
     0, the max subtracted; float's 2 ulp are far below what the float32 products leave in S) */
  float *x = (float *)(w + L->ef);
  double *pos = w + L->mask, *neg = pos + n8, *sums = w + L->a, *rv = w + L->rowv;
  double *mx = rv, *mean = rv + n8, *per = rv + 2 * n8, *rs = rv + 3 * n8;
  const size_t same = same_pairs(labels, n);
  if (same == 0 || same == (size_t)n * (n - 1)) {
    memset(w + L->g, 0, (size_t)n * n8 * sizeof(double));
    for (int i = 0; i < n; i++) rs[i] = 0;
    return 0;
  }
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = S64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    v8d am = splat(-INFINITY), cp = splat(0), xp = splat(0);
    for (int j = 0; j < n8; j += LN) {
      const v8d v = LD8(s + j) * it, P = LD8(pos + j);
      am = vmax(vsel(P + LD8(neg + j) != 0, v, splat(-INFINITY)), am);
      cp += P;
      xp += P * v;
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
    for (int j = 0; j < n8; j += LN)
      ST8F(x + j, narrow(vsel(LD8(pos + j) + LD8(neg + j) != 0, LD8(s + j) * it - M, splat(-INFINITY))));
    vm_expf(x, x, n8);
    v8d se = splat(0);
    for (int j = 0; j < n8; j += LN) se += widen(LD8F(x + j));
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
static double circle(const double *prm, const int32_t *labels, int n, const double *S64, const layout *L, double *w) {
  const double m = prm[0], gamma = prm[1];
  const int n8 = L->n8;
  /* the row's arguments, then their exponentials, in float: vm_expf (the arguments are at most
     0, the max subtracted; float's 2 ulp are far below what the float32 products leave in S) */
  float *x = (float *)(w + L->ef);
  double *pos = w + L->mask, *neg = pos + n8, *lg = w + L->a, *rv = w + L->rowv;
  double *mp = rv, *mn = rv + n8, *per = rv + 2 * n8, *rs = rv + 3 * n8, *z = rv + 4 * n8, *u = rv + 5 * n8;
  for (int i = 0; i < n; i++) {
    row_masks(labels, n, n8, i, pos, neg);
    const double *s = S64 + (size_t)i * n8;
    double *g = w + L->g + (size_t)i * n8;
    v8d ap = splat(-INFINITY), an = splat(-INFINITY), cp = splat(0), cn = splat(0);
    /* the logits into g (scratch: G's row is written below), their slopes into k */
    double *k = w + L->e;
    for (int j = 0; j < n8; j += LN) {
      const v8d v = LD8(s + j), P = LD8(pos + j), N = LD8(neg + j);
      const v8d a1 = (1 + m) - v, a2 = v + m;
      const v8d kp = -gamma * vmax(a1, splat(0)), kn = gamma * vmax(a2, splat(0));
      const v8d lp = kp * (v - (1 - m)), lnn = kn * (v - m);
      const v8l isp = P != 0, isn = N != 0;
      ST8(g + j, vsel(isp, lp, lnn));
      ST8(k + j, vsel(isp, kp, vsel(isn, kn, splat(0))));
      ap = vmax(vsel(isp, lp, splat(-INFINITY)), ap);
      an = vmax(vsel(isn, lnn, splat(-INFINITY)), an);
      cp += P;
      cn += N;
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
    for (int j = 0; j < n8; j += LN)
      ST8F(x + j, narrow(vsel(SET(pos + j), LD8(g + j) - Mp, vsel(SET(neg + j), LD8(g + j) - Mn, splat(-INFINITY)))));
    vm_expf(x, x, n8);
    v8d sp = splat(0), sn = splat(0);
    for (int j = 0; j < n8; j += LN) {
      const v8d e = widen(LD8F(x + j));
      sp += LD8(pos + j) * e;
      sn += LD8(neg + j) * e;
    }
    const double Sp = lanes_sum(sp), Sn = lanes_sum(sn);
    const double fp = 1 / Sp, fn = 1 / Sn;
    /* the softmax weight times the logit's slope; sigmoid(z) joins in the row's scale */
    for (int j = 0; j < n8; j += LN) ST8(g + j, widen(LD8F(x + j)) * LD8(k + j) * vsel(SET(pos + j), splat(fp), splat(fn)));
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

/* x's rows over their norms, float: U [np x dp] and U^T [dp x np] (zero padding);
   norms[i] = max(|x_i|, 1e-12) (times the reciprocal: within an ulp of the division). The squares
   summed in four times eight lanes (four independent chains), the square roots in a pass of their
   own (a row's chain through sqrt stalled the next row's sums), the scaling in vectors. */
static void normalize(const float *x, int n, int dim, int dp, int np, float *u, float *ut, double *norms) {
  for (int i = 0; i < n; i++) {
    const float *restrict xr = x + (size_t)i * dim;
    v8d q0 = splat(0), q1 = splat(0), q2 = splat(0), q3 = splat(0);
    int k = 0;
    for (; k + 4 * LN <= dim; k += 4 * LN) {
      const v8d a = widen(LD8F(xr + k)), b = widen(LD8F(xr + k + LN)), c = widen(LD8F(xr + k + 2 * LN)),
                d = widen(LD8F(xr + k + 3 * LN));
      q0 += a * a;
      q1 += b * b;
      q2 += c * c;
      q3 += d * d;
    }
    for (; k + LN <= dim; k += LN) {
      const v8d a = widen(LD8F(xr + k));
      q0 += a * a;
    }
    for (; k < dim; k++) q0[k % LN] += (double)xr[k] * xr[k];
    norms[i] = lanes_sum((q0 + q1) + (q2 + q3));
  }
  for (int i = 0; i < n; i++) {
    const double r = sqrt(norms[i]);
    norms[i] = r >= BATCH_NORM_EPSILON || r != r ? r : BATCH_NORM_EPSILON;
  }
  for (int i = 0; i < n; i++) {
    const float *restrict xr = x + (size_t)i * dim;
    const double inv = 1 / norms[i];
    float *restrict ur = u + (size_t)i * dp;
    int k = 0;
    for (; k + LN <= dim; k += LN) ST8F(ur + k, __builtin_convertvector(widen(LD8F(xr + k)) * inv, v8f));
    for (; k < dim; k++) ur[k] = (float)(xr[k] * inv);
    for (; k < dp; k++) ur[k] = 0;
  }
  memset(u + (size_t)n * dp, 0, (size_t)(np - n) * dp * sizeof(float));
  for (int i0 = 0; i0 < np; i0 += 8)
    for (int k0 = 0; k0 < dp; k0 += 8) transpose8f(u + (size_t)i0 * dp + k0, dp, ut + (size_t)k0 * np + i0, np);
}

/* The loss of one batch (kind: BATCH_PAIR_*, prm: its parameters), dL/dx into grad [n x dim]
   (float32) and, where sims is not NULL, S into sims [n x n] (float64; without it the loss reads
   its own float64 copy in work: the same values, so the same results). With acc, also the
   batch's best-threshold pair accuracy into acc[0], swept over the float32 S the loss used
   (batchsweep.c; the float64 sims are those values widened, so the same ranking), or -1 where S
   holds a NaN. work:
   batch_pair_loss_work doubles (and, with acc, batch_sweep_work floats past them), 64-byte
   aligned. */
double batch_pair_loss(int kind, const double *prm, const float *x, const int32_t *labels, int n, int dim, float *grad,
                       double *sims, double *acc, double *work) {
  const layout L = layout_of(n, dim);
  const int np = L.np, n8 = L.n8, dp = L.dp;
  float *u = (float *)(work + L.u), *ut = (float *)(work + L.ut), *s = (float *)(work + L.s), *gu = (float *)(work + L.gu);
  /* S in float64 rows of n8: straight into sims where n is a multiple of 8 */
  double *s64 = sims && n == n8 ? sims : work + L.s64, *G = work + L.g;
  double *norms = work + L.rowv + 6 * (size_t)n8;
  normalize(x, n, dim, dp, np, u, ut, norms);
  PROBE(0);
  /* S = U U^T: the tiles that reach the diagonal or right of it, by groups of VW rows (every
     element one sum in k order: S_ij and S_ji would be the same bits anyway) */
  for (int i0 = 0; i0 < n; i0 += VW) {
    const int m = n - i0 < VW ? n - i0 : VW;
    gemm_tn(m, np - i0, dim, ut + i0, np, ut + i0, np, s + (size_t)i0 * np + i0, np);
  }
  PROBE(1);
  /* S as float64 [n8 x n8]: the upper blocks converted, the lower ones their transposes */
  for (int i = 0; i < n8; i++) {
    double *r = s64 + (size_t)i * n8;
    const float *f = s + (size_t)i * np;
    const int j0 = i / 8 * 8;
    if (i < n)
      for (int j = j0; j < n; j++) r[j] = f[j];
    else
      for (int j = j0; j < n; j++) r[j] = 0;
    for (int j = n > j0 ? n : j0; j < n8; j++) r[j] = 0;
  }
  double *blk = work + L.gt;
  for (int i0 = 0; i0 < n8; i0 += 8) {
    for (int j0 = 0; j0 < i0; j0 += 8) transpose8(s64 + (size_t)j0 * n8 + i0, n8, s64 + (size_t)i0 * n8 + j0, n8);
    /* the diagonal block: its lower half from its upper */
    for (int i = i0 + 1; i < i0 + 8; i++)
      for (int j = i0; j < i; j++) s64[(size_t)i * n8 + j] = s64[(size_t)j * n8 + i];
  }
  if (sims && s64 != sims)
    for (int i = 0; i < n; i++) memcpy(sims + (size_t)i * n, s64 + (size_t)i * n8, (size_t)n * sizeof(double));
  PROBE(2);
  double loss;
  switch (kind) {
    case BATCH_PAIR_MULTI_SIMILARITY: loss = multi_similarity(prm, labels, n, s64, &L, work); break;
    case BATCH_PAIR_NT_XENT: loss = nt_xent(prm, labels, n, s64, &L, work); break;
    case BATCH_PAIR_SUPCON: loss = supcon(prm, labels, n, s64, &L, work); break;
    default: loss = circle(prm, labels, n, s64, &L, work); break;
  }
  PROBE(3);
  /* C = H + H^T with H = diag(rs) G, a zero diagonal, float [n8 x n8], in one pass by 8 x 8
     blocks (each block of G and its mirror's transpose scaled as they are added; zeros past n).
     (The radial part of dL/du_i is also sum_j C_ij S_ij, but not the float32 C U's own: the
     projection must take out what the product made, or a radial gradient leaves rounding.) */
  const double *rs = work + L.rowv + 3 * (size_t)n8;
  double *rsp = work + L.rowv + 7 * (size_t)n8;
  for (int i = 0; i < n8; i++) rsp[i] = i < n ? rs[i] : 0;
  float *c = (float *)(work + L.c);
  const v8d lane = {0, 1, 2, 3, 4, 5, 6, 7}, zero = splat(0);
  for (int i0 = 0; i0 < n8; i0 += 8)
    for (int j0 = 0; j0 < n8; j0 += 8) {
      transpose8(G + (size_t)j0 * n8 + i0, n8, blk, 8);
      const v8d rj = LD8(rsp + j0), jl = lane + (double)j0;
      const v8l jin = jl < (double)n;
      for (int i = 0; i < 8; i++) {
        const size_t o = (size_t)(i0 + i) * n8 + j0;
        const v8l keep = i0 + i < n ? jin & (jl != (double)(i0 + i)) : (v8l){0};
        const v8d v = vsel(keep, rsp[i0 + i] * LD8(G + o) + rj * LD8(blk + i * 8), zero);
        ST8F(c + o, __builtin_convertvector(v, v8f));
      }
    }
  PROBE(4);
  /* dL/dU = C U: [n x dp] */
  gemm_nn(n, dp, n, c, n8, u, dp, gu, dp);
  PROBE(5);
  /* back through the normalisation: (g - (g . u) u) / |x| per row (no projection where the
     norm is the floor: F.normalize divides by the constant there) */
  for (int i = 0; i < n; i++) {
    const float *restrict gr = gu + (size_t)i * dp, *restrict ur = u + (size_t)i * dp;
    v8d d = splat(0);
    for (int k = 0; k < dp; k += LN) d += widen(LD8F(gr + k)) * widen(LD8F(ur + k));
    const double nrm = norms[i], dot = nrm > BATCH_NORM_EPSILON ? lanes_sum(d) : 0, inv = 1 / nrm;
    float *restrict o = grad + (size_t)i * dim;
    for (int k = 0; k < dim; k++) o[k] = (float)((gr[k] - dot * ur[k]) * inv);
  }
  PROBE(6);
  /* the accuracy: S's rows above the diagonal, as the GEMM left them (row stride np) */
  if (acc) *acc = batch_sweep(s, (size_t)np, n, labels, NULL, (float *)(work + L.tot));
  return loss;
}
