/*
 * The batch losses' O(n^2 * dim) products (src/losses/batch.ts), in float64 SIMD: row
 * normalisation, the similarity matrix S = A B^T, the gradient's back-projection (G + G^T) U (or
 * G^T E and G W for the class-weight losses) and the back-projection through the normalisation.
 *
 * Bit for bit the TypeScript reference: every sum runs in the order batch.ts sums it (a dot
 * product in four partial sums over k mod 4, combined as (t0 + t1) + (t2 + t3); the other sums
 * in index order), every product is rounded before it is added (this file is compiled with
 * -ffp-contract=off: no fused multiply-add), and the divisions are divisions. So a loss computed
 * with these kernels is the same number as without them, on any machine and either engine.
 * The vectors run across output columns, never across a sum.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "siamese.h"

#define AI static inline __attribute__((always_inline))

/* VD doubles per vector; aligned(8): loads and stores at any double */
#define VD (VW / 2)
typedef double vd __attribute__((vector_size(VW * 4), aligned(8)));

/* the register tile: TR rows x TN vectors x (up to) 4 partial sums */
#if VW == 16
#define TR 3
#define TN 2
#else
#define TR 2
#define TN 1
#endif

#define VLD(p) (*(const vd *)(const void *)(p))
#define VST(p, v) (*(vd *)(void *)(p) = (v))

/* C[mr x nv*VD] = A[mr x K] (row stride lda) B[K x nv*VD] (row stride ldb), each element summed
   over k in P partial sums (P = 4: t_(k mod 4), the K mod 4 last terms into t0; P = 1: in order) */
AI void tile(const int mr, const int nv, const int P, int K, const double *restrict A, int lda, const double *restrict B,
             int ldb, double *restrict C, int ldc) {
  vd acc[TR][TN][4];
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 4
      for (int p = 0; p < P; p++) acc[r][j][p] = (vd){0};
  int k = 0;
  if (P == 4) {
    const int K4 = K & ~3;
    for (; k < K4; k += 4) {
#pragma GCC unroll 4
      for (int p = 0; p < 4; p++) {
        vd b[TN];
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) b[j] = VLD(B + (size_t)(k + p) * ldb + j * VD);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
          const double a = A[(size_t)r * lda + k + p];
#pragma GCC unroll 8
          for (int j = 0; j < nv; j++) acc[r][j][p] += a * b[j];
        }
      }
    }
  }
  for (; k < K; k++) {
    vd b[TN];
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) b[j] = VLD(B + (size_t)k * ldb + j * VD);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
      const double a = A[(size_t)r * lda + k];
#pragma GCC unroll 8
      for (int j = 0; j < nv; j++) acc[r][j][0] += a * b[j];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++)
      VST(C + (size_t)r * ldc + j * VD, P == 4 ? (acc[r][j][0] + acc[r][j][1]) + (acc[r][j][2] + acc[r][j][3]) : acc[r][j][0]);
}

#define CASE(mr, nv)                                                          \
  case (mr)*16 + (nv):                                                        \
    if (P == 4) tile(mr, nv, 4, K, A, lda, B, ldb, C, ldc);                   \
    else tile(mr, nv, 1, K, A, lda, B, ldb, C, ldc);                          \
    break;
#if TN == 2
#define NV_CASES(mr) CASE(mr, 1) CASE(mr, 2)
#else
#define NV_CASES(mr) CASE(mr, 1)
#endif
#if TR == 3
#define ALL_CASES NV_CASES(1) NV_CASES(2) NV_CASES(3)
#else
#define ALL_CASES NV_CASES(1) NV_CASES(2)
#endif

static void tile_any(int mr, int nv, int P, int K, const double *A, int lda, const double *B, int ldb, double *C, int ldc) {
  switch (mr * 16 + nv) {
    ALL_CASES
    default: break;
  }
}

/* C[M x N] = A[M x K] B[K x N], B's and C's rows holding ceil(N / VD) whole vectors (padding
   columns computed too, and ignored). upper: only the tiles that reach column i or past it from
   row i (the caller mirrors a symmetric result). Column panels outside, rows inside: a panel of B
   (K x TN vectors, 16 KB at K = 128) stays in L1 while every row tile passes over it. */
static void mm(int M, int N, int K, int P, const double *A, int lda, const double *B, int ldb, double *C, int ldc, int upper) {
  const int nvec = (N + VD - 1) / VD;
  for (int j = 0; j < nvec; j += TN) {
    const int nv = nvec - j < TN ? nvec - j : TN;
    /* row tiles whose first row's own column vector is at most this panel's last */
    const int rows = upper ? ((j + nv) * VD < M ? (j + nv) * VD : M) : M;
    for (int i = 0; i < rows; i += TR) {
      const int mr = M - i < TR ? M - i : TR;
      tile_any(mr, nv, P, K, A + (size_t)i * lda, lda, B + (size_t)j * VD, ldb, C + (size_t)i * ldc + (size_t)j * VD, ldc);
    }
  }
}

static int padded(int n) { return (n + VD - 1) / VD * VD; }

/* Workspace: the callers pass one 64-byte-aligned buffer (addon.c keeps one per thread, grown as
   needed: allocating and freeing ~100 KB per call made glibc hand the pages back and fault them in
   again, ten times the products' own time). Its parts start on cache lines too, so the kernels'
   vector loads of B never straddle two lines (half the speed when they do). */
static size_t line(size_t doubles) { return (doubles + 7) / 8 * 8; }

/* Math.max(r, 1e-12) as JavaScript has it: NaN stays NaN */
AI double floor_norm(double r) { return r >= BATCH_NORM_EPSILON || r != r ? r : BATCH_NORM_EPSILON; }

/* norms[i] = max(|x_i|, 1e-12) of the float32 rows of x: the sum of squares in k order, eight
   rows at a time (eight independent chains) */
static void row_norms(const float *x, int rows, int dim, double *norms) {
  for (int i0 = 0; i0 < rows; i0 += 8) {
    const int m = rows - i0 < 8 ? rows - i0 : 8;
    double s[8] = {0};
    if (m == 8) {
      for (int k = 0; k < dim; k++)
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
          const double v = x[(size_t)(i0 + r) * dim + k];
          s[r] += v * v;
        }
    } else {
      for (int k = 0; k < dim; k++)
        for (int r = 0; r < m; r++) {
          const double v = x[(size_t)(i0 + r) * dim + k];
          s[r] += v * v;
        }
    }
    for (int r = 0; r < m; r++) norms[i0 + r] = floor_norm(sqrt(s[r]));
  }
}

/* Rows of x (float32) normalised into u (float64), with their norms */
void batch_normalize(const float *x, int rows, int dim, double *u, double *norms) {
  row_norms(x, rows, dim, norms);
  for (int i = 0; i < rows; i++) {
    const double nrm = norms[i];
    const float *xr = x + (size_t)i * dim;
    double *ur = u + (size_t)i * dim;
    for (int k = 0; k < dim; k++) ur[k] = (double)xr[k] / nrm;
  }
}

/* B^T [cols x rows] into t [cols x padded(rows)], zero padding */
static void transpose_into(const double *b, int rows, int cols, double *t) {
  const int np = padded(rows);
  memset(t, 0, (size_t)cols * np * sizeof(double));
  for (int j = 0; j < rows; j++)
    for (int k = 0; k < cols; k++) t[(size_t)k * np + j] = b[(size_t)j * cols + k];
}

size_t batch_similarities_work(int ra, int rb, int dim) {
  return line((size_t)dim * padded(rb)) + (rb % VD ? line((size_t)ra * padded(rb)) : 0);
}

/* s [ra x rb] = a b^T, a [ra x dim], b [rb x dim]; when a is b (same pointer and rows), computed
   once per pair and mirrored. Sums in four partial sums (P = 4) or in order (P = 1). work:
   batch_similarities_work doubles. */
void batch_similarities(const double *a, int ra, const double *b, int rb, int dim, int P, double *s, double *work) {
  const int same = a == b && ra == rb;
  const int np = padded(rb);
  double *bt = work;
  transpose_into(b, rb, dim, bt);
  /* rows of whole vectors: straight into s, else into the workspace and copied */
  double *c = rb % VD ? work + line((size_t)dim * np) : s;
  mm(ra, rb, dim, P, a, dim, bt, np, c, rb % VD ? np : rb, same);
  if (c != s)
    for (int i = 0; i < ra; i++) memcpy(s + (size_t)i * rb, c + (size_t)i * np, (size_t)rb * sizeof(double));
  if (same)
    for (int i = 1; i < ra; i++)
      for (int j = 0; j < i; j++) s[(size_t)i * rb + j] = s[(size_t)j * rb + i];
}

/* out[i] (float32) = (g_i - (g_i . u_i) u_i) / norms[i] (the dot in k order, eight rows at a
   time; none where the norm is the floor: F.normalize divides by the constant there) */
static void back_normalize(const double *gu, const double *u, const double *norms, int rows, int dim, float *out) {
  for (int i0 = 0; i0 < rows; i0 += 8) {
    const int m = rows - i0 < 8 ? rows - i0 : 8;
    double dot[8] = {0};
    if (m == 8) {
      for (int k = 0; k < dim; k++)
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) dot[r] += gu[(size_t)(i0 + r) * dim + k] * u[(size_t)(i0 + r) * dim + k];
    } else {
      for (int k = 0; k < dim; k++)
        for (int r = 0; r < m; r++) dot[r] += gu[(size_t)(i0 + r) * dim + k] * u[(size_t)(i0 + r) * dim + k];
    }
    for (int r = 0; r < m; r++) {
      const double nrm = norms[i0 + r];
      const double d = nrm > BATCH_NORM_EPSILON ? dot[r] : 0;
      const double *gr = gu + (size_t)(i0 + r) * dim;
      const double *ur = u + (size_t)(i0 + r) * dim;
      float *o = out + (size_t)(i0 + r) * dim;
      for (int k = 0; k < dim; k++) o[k] = (float)((gr[k] - d * ur[k]) / nrm);
    }
  }
}

size_t batch_pair_backward_work(int n, int dim) { return 2 * line((size_t)n * padded(dim)); }

/* dL/dx [n x dim] (float32) of a pairwise loss from G = dL/dS [n x n]: G becomes G + G^T with a
   zero diagonal (in place), dL/du = G u in four partial sums over j, then back through the
   normalisation. work: batch_pair_backward_work doubles. */
void batch_pair_backward(double *g, int n, const double *u, const double *norms, int dim, float *out, double *work) {
  for (int i = 0; i < n; i++) {
    g[(size_t)i * n + i] = 0;
    for (int j = i + 1; j < n; j++) {
      const double c = g[(size_t)i * n + j] + g[(size_t)j * n + i];
      g[(size_t)i * n + j] = c;
      g[(size_t)j * n + i] = c;
    }
  }
  /* u copied to rows of whole vectors (zero padding), on cache lines */
  const int dp = padded(dim);
  double *b = work;
  double *gu = work + line((size_t)n * dp);
  if (dp != dim) memset(b, 0, (size_t)n * dp * sizeof(double));
  for (int j = 0; j < n; j++) memcpy(b + (size_t)j * dp, u + (size_t)j * dim, (size_t)dim * sizeof(double));
  mm(n, dim, n, 4, g, n, b, dp, gu, dp, 0);
  if (dp != dim)
    for (int i = 1; i < n; i++) memmove(gu + (size_t)i * dim, gu + (size_t)i * dp, (size_t)dim * sizeof(double));
  back_normalize(gu, u, norms, n, dim, out);
}

size_t batch_proxy_backward_work(int n, int classes, int dim) { return line((size_t)n * dim) + line((size_t)classes * dim); }

/* dL/dx [n x dim] and dL/dw [classes x dim] (float32) of a class-weight loss from G = dL/dC
   [n x classes]: dL/du_i = sum_j G_ij w_j, dL/dw_j = sum_i G_ij e_i, both in index order and
   skipping zero entries, as batch.ts does; then back through both normalisations. work:
   batch_proxy_backward_work doubles. */
void batch_proxy_backward(const double *g, int n, int classes, const double *eu, const double *enorms, const double *wu,
                          const double *wnorms, int dim, float *grad, float *wgrad, double *work) {
  double *gu = work;
  double *gw = work + line((size_t)n * dim);
  memset(gu, 0, (size_t)n * dim * sizeof(double));
  memset(gw, 0, (size_t)classes * dim * sizeof(double));
  for (int i = 0; i < n; i++) {
    double *gi = gu + (size_t)i * dim;
    const double *ei = eu + (size_t)i * dim;
    for (int j = 0; j < classes; j++) {
      const double v = g[(size_t)i * classes + j];
      if (v == 0) continue;
      const double *wj = wu + (size_t)j * dim;
      double *gj = gw + (size_t)j * dim;
      for (int k = 0; k < dim; k++) gi[k] += v * wj[k];
      for (int k = 0; k < dim; k++) gj[k] += v * ei[k];
    }
  }
  back_normalize(gu, eu, enorms, n, dim, grad);
  back_normalize(gw, wu, wnorms, classes, dim, wgrad);
}

size_t batch_raw_cosines_work(int n, int dim) { return line((size_t)n * dim) + line((size_t)n) + batch_similarities_work(n, n, dim); }

/* The trainer's batch accuracy for losses that give no similarities (trainer.ts,
   batchPairAccuracy): s_ij = (x_i . x_j) / (|x_i| |x_j|) of the raw float32 rows, the dot and
   the squares summed in k order (P = 1), each norm floored at 1e-12. work:
   batch_raw_cosines_work doubles. */
void batch_raw_cosines(const float *x, int n, int dim, double *s, double *work) {
  double *a = work;
  double *norms = work + line((size_t)n * dim);
  for (size_t i = 0; i < (size_t)n * dim; i++) a[i] = x[i];
  row_norms(x, n, dim, norms);
  batch_similarities(a, n, a, n, dim, 1, s, norms + line((size_t)n));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) s[(size_t)i * n + j] /= norms[i] * norms[j];
}

/* ---------------------------------------------------------------- the batch's pair accuracy */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* the most pairs right at any cut of sorted pos[0..np) and neg[0..nn), from `correct` with the
   cut below them all (batchAccuracy.ts, sweepFrom; no NaN here) */
static int64_t sweep_from(const double *pos, int64_t np, const double *neg, int64_t nn, int64_t correct) {
  int64_t best = correct, i = 0, j = 0;
  while (i < np || j < nn) {
    const double a = i < np ? pos[i] : INFINITY, b = j < nn ? neg[j] : INFINITY;
    const double t = a < b ? a : b;
    while (i < np && pos[i] == t) i++, correct++;
    while (j < nn && neg[j] == t) j++, correct--;
    if (correct > best) best = correct;
  }
  return best;
}

/* buckets at most; refined buckets at most, past that one whole sort is as cheap */
#define ACC_BUCKETS 4096
#define ACC_REFINED 8

size_t batch_pair_accuracy_work(int n) {
  const size_t m = (size_t)n * (n - 1) / 2;
  /* keys, sorted values, bucket numbers (ints), same flags (bytes), counts (2 x ACC_BUCKETS ints) */
  return 2 * line(m) + line(m / 2 + 1) + line(m / 8 + 1) + line(ACC_BUCKETS);
}

/* every key sorted at once: the sweep over all cuts */
static int64_t sorted_sweep(const double *keys, const uint8_t *same, int64_t m, int64_t np, double *vals) {
  double *pos = vals, *neg = vals + np;
  for (int64_t k = 0, a = 0, b = 0; k < m; k++) {
    if (same[k]) pos[a++] = keys[k];
    else neg[b++] = keys[k];
  }
  qsort(pos, (size_t)np, sizeof(double), cmp_double);
  qsort(neg, (size_t)(m - np), sizeof(double), cmp_double);
  return sweep_from(pos, np, neg, m - np, m - np);
}

/* The best-threshold accuracy over the pairs i < j of S [n x n], ranked by -S_ij, "same" when
   the labels match: batchAccuracy.ts' pairSweep (buckets by value, the cuts between them counted,
   the few buckets that could hold a better cut sorted and swept: the sorted sweep's exact
   result). -1 where S holds a NaN (the caller sweeps that itself). work:
   batch_pair_accuracy_work doubles. */
double batch_pair_accuracy(const double *s, const int32_t *labels, int n, double *work) {
  const int64_t m = (int64_t)n * (n - 1) / 2;
  if (m <= 0) return 0;
  double *keys = work;
  double *vals = keys + line((size_t)m);
  int32_t *bucket = (int32_t *)(vals + line((size_t)m));
  uint8_t *same = (uint8_t *)((double *)bucket + line((size_t)m / 2 + 1));
  int32_t *cnt = (int32_t *)((double *)same + line((size_t)m / 8 + 1));
  double lo = INFINITY, hi = -INFINITY;
  int64_t np = 0, t = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++, t++) {
      const double v = -s[(size_t)i * n + j];
      if (v != v) return -1;
      keys[t] = v;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      same[t] = labels[i] == labels[j];
      np += same[t];
    }
  const int64_t nn = m - np;
  int buckets = 2;
  while (buckets < ACC_BUCKETS && buckets < m / 4.0) buckets *= 2;
  const double scale = buckets / (hi - lo);
  /* one value, or a range too small or too large to divide: sort them all */
  if (!(scale > 0 && scale < INFINITY)) return (double)sorted_sweep(keys, same, m, np, vals) / (double)m;
  int32_t *posC = cnt, *negC = cnt + buckets;
  memset(cnt, 0, 2 * (size_t)buckets * sizeof(int32_t));
  for (int64_t k = 0; k < m; k++) {
    const double f = floor((keys[k] - lo) * scale);
    const int b = f < buckets - 1 ? (int)f : buckets - 1;
    bucket[k] = b;
    if (same[k]) posC[b]++;
    else negC[b]++;
  }
  int64_t best = nn, below = 0, above = nn;
  for (int b = 0; b < buckets; b++) {
    below += posC[b];
    above -= negC[b];
    if (below + above > best) best = below + above;
  }
  /* a cut inside bucket b gets at most all of its pairs right besides the others' best */
  int refine[ACC_REFINED];
  int64_t from[ACC_REFINED];
  int r = 0;
  below = 0;
  above = nn;
  for (int b = 0; b < buckets; b++) {
    if (below + posC[b] + above > best) {
      if (r == ACC_REFINED) return (double)sorted_sweep(keys, same, m, np, vals) / (double)m;
      refine[r] = b;
      from[r++] = below + above;
    }
    below += posC[b];
    above -= negC[b];
  }
  for (int q = 0; q < r; q++) {
    const int b = refine[q];
    double *pos = vals, *neg = vals + posC[b];
    int64_t a = 0, c = 0;
    for (int64_t k = 0; k < m; k++)
      if (bucket[k] == b) {
        if (same[k]) pos[a++] = keys[k];
        else neg[c++] = keys[k];
      }
    qsort(pos, (size_t)a, sizeof(double), cmp_double);
    qsort(neg, (size_t)c, sizeof(double), cmp_double);
    const int64_t got = sweep_from(pos, a, neg, c, from[q]);
    if (got > best) best = got;
  }
  return (double)best / (double)m;
}
