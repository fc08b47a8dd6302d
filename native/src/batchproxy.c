/*
 * The class-weight batch losses (arcface, cosface, proxy-anchor; src/losses/proxies.ts) in one
 * call per training step, and the trainer's batch accuracy for them (src/train/batchAccuracy.ts).
 *
 * The loss: both sides normalised (float64), C = E W^T (float64), the loss's own arithmetic per
 * entry of C (float64, batched over the whole [n x classes] array so that the exponentials and
 * logarithms run vectorised in vmath.h), the back-projections G W and G^T E (float64) and the way
 * back through both normalisations into float32 gradients. The TypeScript in src/losses/ stays
 * the reference: these are its formulas, but the sums run in another order, with fused
 * multiply-adds (this file is compiled with -ffp-contract=fast), and the softmax weights are
 * divided out of the same exponentials rather than taken a second time, so the results agree
 * with it to rounding (about 1e-13 relative on the loss, 1e-7 on the float32 gradients; see
 * test/losses/batchProxyNative.test.ts), not bit for bit. One build gives the same bits for the
 * same input every time: nothing here depends on threads or on alignment.
 *
 * The accuracy: the cosines of the raw embeddings in float32 (rows normalised in float64 and
 * rounded once, then the network's float32 GEMM, gemm.h, for the pairs i < j only), then the
 * best-threshold sweep over those float32 values (exact for them: buckets by value, only the
 * buckets that could hold a better cut sorted).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"
#include "vmath.h"

/* VD doubles per vector; aligned(8): loads and stores at any double */
#define VD (VW / 2)
typedef double vd __attribute__((vector_size(VW * 4), aligned(8)));
#define DLD(p) (*(const vd *)(const void *)(p))
#define DST(p, v) (*(vd *)(void *)(p) = (v))

static size_t line(size_t doubles) { return (doubles + 7) / 8 * 8; }
static int dpad(int n) { return (n + VD - 1) / VD * VD; }

/* ------------------------------------------------------------------ a small float64 GEMM */

/* the register tile: DR rows x DN vectors */
#define DR 4
#define DN 4

/* C[mr x nv*VD] = A[mr x K] (row stride lda) B[K x nv*VD] (row stride ldb), each sum in k order */
AI void dtile(const int mr, const int nv, int K, const double *restrict A, int lda, const double *restrict B, int ldb,
              double *restrict C, int ldc) {
  vd acc[DR][DN];
#pragma GCC unroll 4
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
    for (int j = 0; j < nv; j++) acc[r][j] = (vd){0};
  for (int k = 0; k < K; k++) {
    vd b[DN];
#pragma GCC unroll 4
    for (int j = 0; j < nv; j++) b[j] = DLD(B + (size_t)k * ldb + j * VD);
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
      const double a = A[(size_t)r * lda + k];
#pragma GCC unroll 4
      for (int j = 0; j < nv; j++) acc[r][j] += a * b[j];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
    for (int j = 0; j < nv; j++) DST(C + (size_t)r * ldc + j * VD, acc[r][j]);
}

#define DCASE(mr, nv) \
  case (mr)*8 + (nv): dtile(mr, nv, K, A, lda, B, ldb, C, ldc); break;
#define DROWS(mr) DCASE(mr, 1) DCASE(mr, 2) DCASE(mr, 3) DCASE(mr, 4)

static void dtile_any(int mr, int nv, int K, const double *A, int lda, const double *B, int ldb, double *C, int ldc) {
  switch (mr * 8 + nv) {
    DROWS(1) DROWS(2) DROWS(3) DROWS(4)
    default: break;
  }
}

/* C[M x N] = A[M x K] B[K x N] (N a multiple of VD) */
static void dmm(int M, int N, int K, const double *A, int lda, const double *B, int ldb, double *C, int ldc) {
  const int nvec = N / VD;
  for (int j = 0; j < nvec; j += DN) {
    const int nv = nvec - j < DN ? nvec - j : DN;
    for (int i = 0; i < M; i += DR) {
      const int mr = M - i < DR ? M - i : DR;
      dtile_any(mr, nv, K, A + (size_t)i * lda, lda, B + (size_t)j * VD, ldb, C + (size_t)i * ldc + (size_t)j * VD, ldc);
    }
  }
}

/* ------------------------------------------------------------------ normalisation */

/* Math.max(r, 1e-12) as JavaScript has it: NaN stays NaN */
AI double floor_norm(double r) { return r >= BATCH_NORM_EPSILON || r != r ? r : BATCH_NORM_EPSILON; }

/* the sum of a vector's lanes */
AI double hsum(vd v) {
  double s = 0;
#pragma GCC unroll 8
  for (int l = 0; l < VD; l++) s += v[l];
  return s;
}

/* a . b over dp doubles (a multiple of VD), in two vector partial sums */
AI double ddot(const double *a, const double *b, int dp) {
  vd s0 = {0}, s1 = {0};
  int k = 0;
  for (; k + 2 * VD <= dp; k += 2 * VD) {
    s0 += DLD(a + k) * DLD(b + k);
    s1 += DLD(a + k + VD) * DLD(b + k + VD);
  }
  if (k < dp) s0 += DLD(a + k) * DLD(b + k);
  return hsum(s0 + s1);
}

/* u [rows x dp] = rows of x over their norms (zero padding past dim), norms[i] = max(|x_i|, 1e-12) */
static void normalize_rows(const float *x, int rows, int dim, int dp, double *u, double *norms) {
  for (int i = 0; i < rows; i++) {
    const float *xr = x + (size_t)i * dim;
    double *ur = u + (size_t)i * dp;
    for (int k = 0; k < dim; k++) ur[k] = xr[k];
    for (int k = dim; k < dp; k++) ur[k] = 0;
    const double nrm = floor_norm(sqrt(ddot(ur, ur, dp)));
    norms[i] = nrm;
    const double inv = 1 / nrm;
    for (int k = 0; k < dp; k += VD) DST(ur + k, DLD(ur + k) * inv);
  }
}

/* out[i] (float32) = (g_i - (g_i . u_i) u_i) / norms[i] (no projection where the norm is the
   floor: F.normalize divides by the constant there) */
static void back_normalize(const double *gu, const double *u, const double *norms, int rows, int dim, int dp, float *out) {
  for (int i = 0; i < rows; i++) {
    const double *gr = gu + (size_t)i * dp, *ur = u + (size_t)i * dp;
    const double nrm = norms[i];
    const double d = nrm > BATCH_NORM_EPSILON ? ddot(gr, ur, dp) : 0;
    const double inv = 1 / nrm;
    float *o = out + (size_t)i * dim;
    for (int k = 0; k < dim; k++) o[k] = (float)((gr[k] - d * ur[k]) * inv);
  }
}

/* ------------------------------------------------------------------ the losses' arithmetic */

/* The clamp of the target cosine before acos (proxies.ts, ACOS_CLAMP) */
#define ACOS_CLAMP (1 - 1e-7)

/* Softmax cross-entropy of scale * C with the target logit changed (arcface: cos(theta + m), past
   pi - m cos theta - m sin m; cosface: cos theta - m), mean over the rows: the loss, and g =
   dL/dC [n x cp] (zero past the classes). c [n x cp]; t: 2n doubles of scratch. */
static double margin_softmax(int arc, double margin, double scale, const double *c, int cp, const int32_t *labels, int n,
                             int classes, double *g, double *t) {
  double *xy = t, *slope = t + n, *rowm = t + 2 * n;
  const double cm = cos(margin), sm = sin(margin), msm = margin * sin(margin);
  /* theta > pi - m  <=>  cos theta < cos(pi - m), with theta in (0, pi) */
  const double past = M_PI - margin;
  const int always = past <= 0, never = past >= M_PI;
  const double below = cos(past);
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    const double *ci = c + (size_t)i * cp;
    double *gi = g + (size_t)i * cp;
    const double cy = ci[y];
    double logit, sl;
    if (arc) {
      const int inside = cy > -ACOS_CLAMP && cy < ACOS_CLAMP;
      const double cc = cy < -ACOS_CLAMP ? -ACOS_CLAMP : cy > ACOS_CLAMP ? ACOS_CLAMP : cy; /* NaN stays NaN */
      if (always || (!never && cc < below)) {
        logit = cc - msm;
        sl = inside ? 1 : 0;
      } else {
        /* sin theta from (1 - c)(1 + c): exact factors near the clamp */
        const double st = sqrt((1 - cc) * (1 + cc));
        logit = cc * cm - st * sm;
        sl = inside ? (st * cm + cc * sm) / st : 0;
      }
    } else {
      logit = cy - margin;
      sl = 1;
    }
    double m = -INFINITY;
    for (int j = 0; j < classes; j++) {
      const double x = j == y ? scale * logit : scale * ci[j];
      gi[j] = x;
      if (x > m) m = x;
    }
    xy[i] = gi[y];
    slope[i] = sl;
    rowm[i] = m;
    for (int j = 0; j < classes; j++) gi[j] -= m;
    for (int j = classes; j < cp; j++) gi[j] = -INFINITY;
  }
  vm_exp(g, g, n * cp);
  double *sum = t + 3 * n, *lsum = t + 4 * n;
  for (int i = 0; i < n; i++) {
    const double *gi = g + (size_t)i * cp;
    double s = 0;
    for (int j = 0; j < classes; j++) s += gi[j];
    sum[i] = s;
  }
  vm_log(sum, lsum, n);
  double total = 0;
  const double f = scale / n;
  for (int i = 0; i < n; i++) {
    total += rowm[i] + lsum[i] - xy[i];
    const int y = labels[i];
    double *gi = g + (size_t)i * cp;
    const double inv = 1 / sum[i];
    const double py = gi[y] * inv;
    for (int j = 0; j < classes; j++) gi[j] = f * (gi[j] * inv);
    gi[y] = f * (py - 1) * slope[i];
  }
  return total / n;
}

/* Proxy-anchor: per proxy p, log(1 + sum over its class's rows of e^(-alpha (C - delta))) over
   the proxies with rows, and log(1 + sum over the other rows of e^(alpha (C + delta))) over all;
   g = dL/dC [n x cp]. t: 8 classes doubles of scratch. */
static double proxy_anchor(double delta, double alpha, const double *c, int cp, const int32_t *labels, int n, int classes,
                           double *g, double *t) {
  /* per group (p, then p + classes for the negatives): max (from 0: the 1 term), count, sum */
  double *mx = t, *cnt = t + 2 * classes, *sum = t + 4 * classes, *lsum = t + 6 * classes;
  for (int q = 0; q < 2 * classes; q++) mx[q] = 0, cnt[q] = 0;
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    const double *ci = c + (size_t)i * cp;
    double *gi = g + (size_t)i * cp;
    for (int p = 0; p < classes; p++) {
      const int q = p == y ? p : p + classes;
      const double x = p == y ? -alpha * (ci[p] - delta) : alpha * (ci[p] + delta);
      gi[p] = x;
      if (x > mx[q]) mx[q] = x;
      cnt[q] += 1;
    }
  }
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    double *gi = g + (size_t)i * cp;
    for (int p = 0; p < classes; p++) gi[p] -= mx[p == y ? p : p + classes];
    for (int p = classes; p < cp; p++) gi[p] = -INFINITY;
  }
  /* the 1 terms, e^(0 - max) */
  for (int q = 0; q < 2 * classes; q++) sum[q] = -mx[q];
  vm_exp(sum, sum, 2 * classes);
  vm_exp(g, g, n * cp);
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    const double *gi = g + (size_t)i * cp;
    for (int p = 0; p < classes; p++) sum[p == y ? p : p + classes] += gi[p];
  }
  vm_log(sum, lsum, 2 * classes);
  int withPos = 0;
  for (int p = 0; p < classes; p++) withPos += cnt[p] > 0;
  double pos = 0, neg = 0;
  for (int p = 0; p < classes; p++) {
    if (cnt[p] > 0) pos += mx[p] + lsum[p];
    if (cnt[p + classes] > 0) neg += mx[p + classes] + lsum[p + classes];
  }
  /* the factor of each group's softmax weights: d loss / d C */
  double *fac = lsum;
  for (int p = 0; p < classes; p++) {
    fac[p] = (-alpha / withPos) / sum[p];
    fac[p + classes] = (alpha / classes) / sum[p + classes];
  }
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    double *gi = g + (size_t)i * cp;
    for (int p = 0; p < classes; p++) gi[p] *= fac[p == y ? p : p + classes];
    for (int p = classes; p < cp; p++) gi[p] = 0;
  }
  return (withPos > 0 ? pos / withPos : 0) + neg / classes;
}

/* ------------------------------------------------------------------ the loss step */

size_t batch_proxy_loss_work(int n, int classes, int dim) {
  const size_t dp = (size_t)dpad(dim), cp = (size_t)dpad(classes);
  /* eu, gu [n x dp]; wu, gw [classes x dp]; wt [dim x cp]; c, g [n x cp]; gt [classes x n]; norms; scratch */
  return 2 * line((size_t)n * dp) + 2 * line((size_t)classes * dp) + line((size_t)dim * cp) + 2 * line((size_t)n * cp) +
         line((size_t)classes * n) + line((size_t)n) + line((size_t)classes) + line(5 * (size_t)n + 8 * (size_t)classes);
}

/* The loss of kind BATCH_PROXY_* (p1, p2: arcface margin in radians and scale; cosface margin
   and scale; proxy-anchor margin delta and alpha) of the float32 embeddings x [n x dim] with
   labels in [0, classes) and class weights w [classes x dim]; dL/dx into grad [n x dim] and
   dL/dw into wgrad [classes x dim] (float32). work: batch_proxy_loss_work doubles, 64-byte
   aligned. */
double batch_proxy_loss(int kind, double p1, double p2, const float *x, const int32_t *labels, int n, const float *w,
                        int classes, int dim, float *grad, float *wgrad, double *work) {
  const int dp = dpad(dim), cp = dpad(classes);
  double *eu = work;
  double *gu = eu + line((size_t)n * dp);
  double *wu = gu + line((size_t)n * dp);
  double *gw = wu + line((size_t)classes * dp);
  double *wt = gw + line((size_t)classes * dp);
  double *c = wt + line((size_t)dim * cp);
  double *g = c + line((size_t)n * cp);
  double *gt = g + line((size_t)n * cp);
  double *en = gt + line((size_t)classes * n);
  double *wn = en + line((size_t)n);
  double *t = wn + line((size_t)classes);
  normalize_rows(x, n, dim, dp, eu, en);
  normalize_rows(w, classes, dim, dp, wu, wn);
  /* W^T, zero past the classes */
  for (int k = 0; k < dim; k++) {
    double *r = wt + (size_t)k * cp;
    for (int j = 0; j < classes; j++) r[j] = wu[(size_t)j * dp + k];
    for (int j = classes; j < cp; j++) r[j] = 0;
  }
  dmm(n, cp, dim, eu, dp, wt, cp, c, cp);
  const double loss = kind == BATCH_PROXY_ANCHOR ? proxy_anchor(p1, p2, c, cp, labels, n, classes, g, t)
                                                 : margin_softmax(kind == BATCH_PROXY_ARCFACE, p1, p2, c, cp, labels, n, classes, g, t);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < classes; j++) gt[(size_t)j * n + i] = g[(size_t)i * cp + j];
  dmm(n, dp, classes, g, cp, wu, dp, gu, dp);
  dmm(classes, dp, n, gt, n, eu, dp, gw, dp);
  back_normalize(gu, eu, en, n, dim, dp, grad);
  back_normalize(gw, wu, wn, classes, dim, dp, wgrad);
  return loss;
}

/* ------------------------------------------------------------------ the batch accuracy */

/* buckets at most; refined buckets at most, past that one whole sort is as cheap */
#define ACC_MAX_BUCKETS 4096
#define ACC_REFINE 8

/* rows and columns of the float matrices: multiples of 16 (the transposes' blocks; VW divides 16) */
static int fpad(int n) { return (n + 15) / 16 * 16; }
static size_t fline(size_t floats) { return (floats + 15) / 16 * 16; }

size_t batch_cosine_accuracy_work(int n, int dim) {
  const size_t np = (size_t)fpad(n), m = (size_t)n * (n > 0 ? n - 1 : 0) / 2;
  /* in floats: U [np x dq], T [dq x np], S [n x np], keys, sorted values, bucket numbers, same flags (bytes),
     counts and marks (ints) */
  const size_t dq = ((size_t)dim + 15) / 16 * 16;
  return 2 * fline(dq * np) + fline((size_t)n * np) + 2 * fline(m) + fline(m) + fline(m / 4 + 1) + fline(3 * ACC_MAX_BUCKETS);
}

/* t [cols x rows] = u^T, u [rows x cols], both dimensions multiples of 16 */
static void transpose_blocks(const float *u, int rows, int cols, float *t) {
  for (int i0 = 0; i0 < rows; i0 += 16)
    for (int k0 = 0; k0 < cols; k0 += 16) {
#if VW == 16 && defined(__AVX512F__)
      __m512 v[16];
      for (int r = 0; r < 16; r++) v[r] = _mm512_loadu_ps(u + (size_t)(i0 + r) * cols + k0);
      transpose16(v);
      for (int r = 0; r < 16; r++) _mm512_storeu_ps(t + (size_t)(k0 + r) * rows + i0, v[r]);
#else
      for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) t[(size_t)(k0 + c) * rows + i0 + r] = u[(size_t)(i0 + r) * cols + k0 + c];
#endif
    }
}

static int cmp_float(const void *a, const void *b) {
  const float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static void sort_floats(float *v, int64_t k) {
  if (k > 24) {
    qsort(v, (size_t)k, sizeof(float), cmp_float);
    return;
  }
  for (int64_t a = 1; a < k; a++) {
    const float x = v[a];
    int64_t b = a;
    for (; b > 0 && v[b - 1] > x; b--) v[b] = v[b - 1];
    v[b] = x;
  }
}

/* the most pairs right at any cut of sorted pos[0..np) and neg[0..nn), from `correct` with the
   cut below them all (batchAccuracy.ts, sweepFrom; no NaN here) */
static int64_t sweep_from(const float *pos, int64_t np, const float *neg, int64_t nn, int64_t correct) {
  int64_t best = correct, i = 0, j = 0;
  while (i < np || j < nn) {
    const float a = i < np ? pos[i] : INFINITY, b = j < nn ? neg[j] : INFINITY;
    const float t = a < b ? a : b;
    while (i < np && pos[i] == t) i++, correct++;
    while (j < nn && neg[j] == t) j++, correct--;
    if (correct > best) best = correct;
  }
  return best;
}

/* every key sorted at once: the sweep over all cuts */
static int64_t sorted_sweep(const float *keys, const uint8_t *same, int64_t m, int64_t np, float *vals) {
  float *pos = vals, *neg = vals + np;
  for (int64_t k = 0, a = 0, b = 0; k < m; k++) {
    if (same[k]) pos[a++] = keys[k];
    else neg[b++] = keys[k];
  }
  qsort(pos, (size_t)np, sizeof(float), cmp_float);
  qsort(neg, (size_t)(m - np), sizeof(float), cmp_float);
  return sweep_from(pos, np, neg, m - np, m - np);
}


/* The best-threshold accuracy over the pairs i < j of the float32 rows x [n x dim] ranked by
   their cosine (higher: "same"), the cosines computed in float32 as the header says; -1 where a
   row is not finite (the caller then sweeps in TypeScript). cos: where not NULL, the n x n
   cosines used (both triangles; the diagonal as computed). work: batch_cosine_accuracy_work
   floats, 64-byte aligned. */
double batch_cosine_accuracy(const float *x, const int32_t *labels, int n, int dim, float *cos_out, float *work) {
  const int np = fpad(n);
  const int64_t m = (int64_t)n * (n - 1) / 2;
  const int dq = (dim + 15) / 16 * 16;
  float *U = work;
  float *T = U + fline((size_t)np * dq);
  float *S = T + fline((size_t)dq * np);
  float *keys = S + fline((size_t)n * np);
  float *vals = keys + fline((size_t)m);
  int32_t *bucket = (int32_t *)(vals + fline((size_t)m));
  uint8_t *same = (uint8_t *)(bucket + fline((size_t)m));
  int32_t *cnt = (int32_t *)((float *)same + fline((size_t)m / 4 + 1));
  /* U = the normalised rows [np x dq], zero padding; T = U^T [dq x np] */
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * dim;
    float *ur = U + (size_t)i * dq;
    /* the sum of squares in float64, in VW partial sums */
    double q[VW] = {0};
    int k = 0;
    for (; k + VW <= dim; k += VW)
#pragma GCC unroll 16
      for (int l = 0; l < VW; l++) q[l] += (double)xr[k + l] * xr[k + l];
    for (; k < dim; k++) q[0] += (double)xr[k] * xr[k];
    double s = 0;
    for (int l = 0; l < VW; l++) s += q[l];
    if (!(s <= 1e300)) return -1; /* inf or NaN */
    const double inv = 1 / floor_norm(sqrt(s));
    for (k = 0; k < dim; k++) ur[k] = (float)(xr[k] * inv);
    for (; k < dq; k++) ur[k] = 0;
  }
  memset(U + (size_t)n * dq, 0, (size_t)(np - n) * dq * sizeof(float));
  transpose_blocks(U, np, dq, T);
  /* S = T^T T: for each band of MR rows the column vectors from the one holding its first row */
  for (int i0 = 0; i0 < n; i0 += MR) {
    const int mr = n - i0 < MR ? n - i0 : MR;
    const int c0 = i0 / VW * VW;
    gemm_tn(mr, np - c0, dim, T + i0, np, T + c0, np, S + (size_t)i0 * np + c0, np);
  }
  if (cos_out)
    for (int i = 0; i < n; i++)
      for (int j = i; j < n; j++) cos_out[(size_t)i * n + j] = cos_out[(size_t)j * n + i] = S[(size_t)i * np + j];
  if (m == 0) return 0;
  /* the pairs' keys -s (the order of a distance) and whether they are of one class */
  int64_t npos = 0, t = 0;
  for (int i = 0; i < n; i++) {
    const float *si = S + (size_t)i * np;
    const int32_t li = labels[i];
    for (int j = i + 1; j < n; j++, t++) {
      keys[t] = -si[j];
      const uint8_t p = labels[j] == li;
      same[t] = p;
      npos += p;
    }
  }
  float lo = INFINITY, hi = -INFINITY;
  {
    vf vlo = lo - (vf){0}, vhi = hi - (vf){0};
    int64_t k = 0;
    for (; k + VW <= m; k += VW) {
      const vf v = VLOAD(keys + k);
      const vi lt = v < vlo, gt = v > vhi;
      vlo = (vf)(((vi)v & lt) | ((vi)vlo & ~lt));
      vhi = (vf)(((vi)v & gt) | ((vi)vhi & ~gt));
    }
    for (int l = 0; l < VW; l++) {
      lo = vlo[l] < lo ? vlo[l] : lo;
      hi = vhi[l] > hi ? vhi[l] : hi;
    }
    for (; k < m; k++) {
      lo = keys[k] < lo ? keys[k] : lo;
      hi = keys[k] > hi ? keys[k] : hi;
    }
  }
  const int64_t nneg = m - npos;
  /* about eight pairs a bucket */
  int buckets = 2;
  while (buckets < ACC_MAX_BUCKETS && buckets < m / 8) buckets *= 2;
  const float scale = (float)buckets / (hi - lo);
  /* one value, or a range too small or too large to divide: sort them all */
  if (!(scale > 0 && scale < INFINITY)) return (double)sorted_sweep(keys, same, m, npos, vals) / (double)m;
  /* counts: pos of bucket b at 2b + 1, neg at 2b; marks after them */
  memset(cnt, 0, 2 * (size_t)buckets * sizeof(int32_t));
  const int top = buckets - 1;
  for (int64_t k = 0; k < m; k++) {
    const int b = (int)((keys[k] - lo) * scale); /* rounding keeps the map monotone */
    bucket[k] = b < top ? b : top;
  }
  for (int64_t k = 0; k < m; k++) cnt[2 * bucket[k] + same[k]]++;
  int64_t best = nneg, below = 0, above = nneg;
  for (int b = 0; b < buckets; b++) {
    below += cnt[2 * b + 1];
    above -= cnt[2 * b];
    if (below + above > best) best = below + above;
  }
  /* a cut inside bucket b gets at most all of its pairs right besides the others' best */
  int refine[ACC_REFINE];
  int64_t from[ACC_REFINE], off[ACC_REFINE + 1];
  int r = 0;
  below = 0;
  above = nneg;
  off[0] = 0;
  for (int b = 0; b < buckets; b++) {
    if (below + cnt[2 * b + 1] + above > best) {
      if (r == ACC_REFINE) return (double)sorted_sweep(keys, same, m, npos, vals) / (double)m;
      refine[r] = b;
      from[r] = below + above;
      off[r + 1] = off[r] + cnt[2 * b] + cnt[2 * b + 1];
      r++;
    }
    below += cnt[2 * b + 1];
    above -= cnt[2 * b];
  }
  if (r == 0) return (double)best / (double)m;
  /* the refined buckets' values, positives from the front of each slot, negatives from its back */
  uint8_t *mark = (uint8_t *)(cnt + 2 * buckets);
  memset(mark, 0, (size_t)buckets);
  int64_t pa[ACC_REFINE], na[ACC_REFINE];
  for (int q = 0; q < r; q++) {
    mark[refine[q]] = (uint8_t)(q + 1);
    pa[q] = off[q];
    na[q] = off[q + 1];
  }
  for (int64_t k = 0; k < m; k++) {
    const int q = mark[bucket[k]];
    if (q) {
      if (same[k]) vals[pa[q - 1]++] = keys[k];
      else vals[--na[q - 1]] = keys[k];
    }
  }
  for (int q = 0; q < r; q++) {
    float *pos = vals + off[q], *neg = vals + pa[q];
    const int64_t a = pa[q] - off[q], c = off[q + 1] - pa[q];
    sort_floats(pos, a);
    sort_floats(neg, c);
    const int64_t got = sweep_from(pos, a, neg, c, from[q]);
    if (got > best) best = got;
  }
  return (double)best / (double)m;
}
