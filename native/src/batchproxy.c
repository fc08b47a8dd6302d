/*
 * The class-weight batch losses (arcface, cosface, proxy-anchor; src/losses/proxies.ts) in one
 * call per training step, and the trainer's batch accuracy for them (src/train/batchAccuracy.ts),
 * in the same call or alone.
 *
 * The loss: the rows' norms and C = E W^T in float64 (dot products, a block of normalised rows at
 * a time), the loss's own arithmetic per entry of C in float64 (batched over the whole
 * [n x classes] array, so that the exponentials and logarithms run vectorised in vmath.c; the
 * softmax weights divided out of the same exponentials rather than taken a second time), and the
 * back-projections G W and G^T E in float32 straight into the gradients (they only make the
 * float32 gradients), the way back through both normalisations folded into them (the radial
 * part of dL/du_i is sum_j G_ij C_ij, known without a pass over the rows). The TypeScript in
 * src/losses/ stays the reference: these are its formulas, in another order, with fused
 * multiply-adds (this file is compiled with -ffp-contract=fast), so the results agree with it to
 * rounding (the loss to about 1e-15 relative, the gradients to about 1e-7 of their largest
 * entry; test/losses/batchProxyNative.test.ts), not bit for bit. One build gives the same bits
 * for the same input every time: nothing here depends on threads or on alignment.
 *
 * The accuracy: the cosines of the raw embeddings in float32 (the rows over their float64 norms,
 * rounded once, then the network's float32 GEMM, gemm.h, a band of rows at a time below the
 * diagonal), then the best-threshold sweep over those float32 values, exact for them
 * (batchsweep.c, the pair losses' sweep too).
 *
 * Little scratch memory on purpose: the step comes between the network's forward and backward
 * passes, with the caches full of the network's data (measured: a first call after a network
 * step takes about 4 us more than a second one on the same batch).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"
#include "vmath.h"

/* stage marks for bench/batchProxyParts.c, which times the stages from C; nothing otherwise */
#ifndef PROBE
#define PROBE(stage) ((void)0)
#endif

/* VD doubles per vector; aligned(8): loads and stores at any double */
#define VD (VW / 2)
typedef double vd __attribute__((vector_size(VW * 4), aligned(8)));
/* VD floats: what converts to one vd */
typedef float vh __attribute__((vector_size(VW * 2), aligned(4)));
/* VW floats at any float */
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));
#define DLD(p) (*(const vd *)(const void *)(p))
#define DST(p, v) (*(vd *)(void *)(p) = (v))

/* VD floats at p (any alignment) as doubles, and back (rounded to nearest) */
AI vd ld_half(const float *p) {
#if VW == 16 && defined(__AVX512F__)
  return (vd)_mm512_cvtps_pd(_mm256_loadu_ps(p));
#else
  return __builtin_convertvector(*(const vh *)(const void *)p, vd);
#endif
}
AI void st_half(float *p, vd v) {
#if VW == 16 && defined(__AVX512F__)
  _mm256_storeu_ps(p, _mm512_cvtpd_ps((__m512d)v));
#else
  *(vh *)(void *)p = __builtin_convertvector(v, vh);
#endif
}

static size_t line(size_t doubles) { return (doubles + 7) / 8 * 8; }
static size_t fline(size_t floats) { return (floats + 15) / 16 * 16; }
static int dpad(int n) { return (n + VD - 1) / VD * VD; }
/* rows and columns of the matrices of floats or doubles: multiples of 16 (whole vectors, and the
   transposes' blocks; VW divides 16) */
static int qpad(int n) { return (n + 15) / 16 * 16; }

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

/* norms[i] = max(|x_i|, 1e-12) of the float32 rows of x [rows x dim], the squares summed in
   float64 (a pass of its own: a row's chain from its sum through sqrt would stall every row) */
static void row_norms(const float *x, int rows, int dim, double *norms) {
  for (int i = 0; i < rows; i++) {
    const float *xr = x + (size_t)i * dim;
    vd q0 = {0}, q1 = {0};
    int k = 0;
    for (; k + VW <= dim; k += VW) {
      const vd lo = ld_half(xr + k), hi = ld_half(xr + k + VD);
      q0 = lo * lo + q0;
      q1 = hi * hi + q1;
    }
    double q = hsum(q0 + q1);
    for (; k < dim; k++) q += (double)xr[k] * xr[k];
    norms[i] = q;
  }
  for (int i = 0; i < rows; i++) norms[i] = floor_norm(sqrt(norms[i]));
}

/* rows r0..r0+mr of x over their norms, in float64, into u [mr x dq] (zero padding) */
static void normalized_block(const float *x, int r0, int mr, int dim, int dq, const double *norms, double *u) {
  for (int r = 0; r < mr; r++) {
    const float *xr = x + (size_t)(r0 + r) * dim;
    double *ur = u + (size_t)r * dq;
    const double inv = 1 / norms[r0 + r];
    int k = 0;
    for (; k + VD <= dim; k += VD) DST(ur + k, ld_half(xr + k) * inv);
    for (; k < dim; k++) ur[k] = xr[k] * inv;
    for (; k < dq; k++) ur[k] = 0;
  }
}

/* ------------------------------------------------------------------ the losses' arithmetic */

/* The clamp of the target cosine before acos (proxies.ts, ACOS_CLAMP) */
#define ACOS_CLAMP (1 - 1e-7)

/* Softmax cross-entropy of scale * C with the target logit changed (arcface: cos(theta + m), past
   pi - m cos theta - m sin m; cosface: cos theta - m), mean over the rows: the loss, and g =
   dL/dC [n x classes]. c [n x cp]; t: 2n doubles of scratch. */
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
    double *gi = g + (size_t)i * classes;
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
  }
  vm_exp(g, g, n * classes);
  double *sum = t + 3 * n, *lsum = t + 4 * n;
  for (int i = 0; i < n; i++) {
    const double *gi = g + (size_t)i * classes;
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
    double *gi = g + (size_t)i * classes;
    const double inv = 1 / sum[i];
    const double py = gi[y] * inv;
    for (int j = 0; j < classes; j++) gi[j] = f * (gi[j] * inv);
    gi[y] = f * (py - 1) * slope[i];
  }
  return total / n;
}

/* Proxy-anchor: per proxy p, log(1 + sum over its class's rows of e^(-alpha (C - delta))) over
   the proxies with rows, and log(1 + sum over the other rows of e^(alpha (C + delta))) over all;
   g = dL/dC [n x classes]. t: 8 classes doubles of scratch. */
static double proxy_anchor(double delta, double alpha, const double *c, int cp, const int32_t *labels, int n, int classes,
                           double *g, double *t) {
  /* per group (p: the positives of proxy p, p + classes: its negatives): max (from 0: the 1
     term), count, sum. Every row holds one positive (its label's column): the loops run over
     whole rows as negatives (vectorisable), the positive entry apart. */
  double *mx = t, *cnt = t + 2 * classes, *sum = t + 4 * classes, *lsum = t + 6 * classes;
  double *mneg = mx + classes, *sneg = sum + classes;
  for (int q = 0; q < 2 * classes; q++) mx[q] = 0, cnt[q] = 0;
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    const double *ci = c + (size_t)i * cp;
    double *gi = g + (size_t)i * classes;
    for (int p = 0; p < classes; p++) {
      const double x = alpha * (ci[p] + delta);
      gi[p] = x;
      const double v = p == y ? -INFINITY : x;
      mneg[p] = v > mneg[p] ? v : mneg[p];
    }
    const double x = -alpha * (ci[y] - delta);
    gi[y] = x;
    if (x > mx[y]) mx[y] = x;
    cnt[y] += 1;
  }
  for (int p = 0; p < classes; p++) cnt[p + classes] = n - cnt[p];
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    double *gi = g + (size_t)i * classes;
    const double xy = gi[y];
    for (int p = 0; p < classes; p++) gi[p] -= mneg[p];
    gi[y] = xy - mx[y];
  }
  /* the 1 terms, e^(0 - max) */
  for (int q = 0; q < 2 * classes; q++) sum[q] = -mx[q];
  vm_exp(sum, sum, 2 * classes);
  vm_exp(g, g, n * classes);
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    const double *gi = g + (size_t)i * classes;
    for (int p = 0; p < classes; p++) sneg[p] += p == y ? 0 : gi[p];
    sum[y] += gi[y];
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
  double *fac = lsum, *fneg = lsum + classes;
  for (int p = 0; p < classes; p++) {
    fac[p] = (-alpha / withPos) / sum[p];
    fneg[p] = (alpha / classes) / sneg[p];
  }
  for (int i = 0; i < n; i++) {
    const int y = labels[i];
    double *gi = g + (size_t)i * classes;
    const double ey = gi[y];
    for (int p = 0; p < classes; p++) gi[p] *= fneg[p];
    gi[y] = ey * fac[y];
  }
  return (withPos > 0 ? pos / withPos : 0) + neg / classes;
}

/* ------------------------------------------------------------------ the loss step */

/* the rows of C = E W^T normalised at a time: four of them, in float64, in L1 */
#define CBLOCK 4

/* the register tile of the back-projections: BR rows x BN vectors */
#define BR 2
#define BN 8

/* out[r][k0..k0+nv*VW) = sum_p A[r][p] B[p][k0..] (+ bo[r] own[r][k0..] where own is not NULL) for
   r < mr, sums in p order, the own term last (unaligned rows) */
AI void btile(const int mr, const int nv, int K, const float *restrict A, int lda, const float *restrict B, int ldb,
              const float *restrict own, int ldown, const float *restrict bo, float *restrict out, int ldo) {
  vf acc[BR][BN];
#pragma GCC unroll 2
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) acc[r][v] = (vf){0};
  for (int p = 0; p < K; p++) {
    vf b[BN];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) b[v] = *(const vfu *)(const void *)(B + (size_t)p * ldb + v * VW);
#pragma GCC unroll 2
    for (int r = 0; r < mr; r++) {
      const float a = A[(size_t)r * lda + p];
#pragma GCC unroll 8
      for (int v = 0; v < nv; v++) acc[r][v] = a * b[v] + acc[r][v];
    }
  }
  if (own)
#pragma GCC unroll 2
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
      for (int v = 0; v < nv; v++) acc[r][v] = bo[r] * *(const vfu *)(const void *)(own + (size_t)r * ldown + v * VW) + acc[r][v];
#pragma GCC unroll 2
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) *(vfu *)(void *)(out + (size_t)r * ldo + v * VW) = acc[r][v];
}

#define BCASE(mr, nv) \
  case (mr)*16 + (nv): btile(mr, nv, K, A, lda, B, ldb, own, ldown, bo, out, ldo); break;
#define BROWS(mr) BCASE(mr, 1) BCASE(mr, 2) BCASE(mr, 3) BCASE(mr, 4) BCASE(mr, 5) BCASE(mr, 6) BCASE(mr, 7) BCASE(mr, 8)

static void btile_any(int mr, int nv, int K, const float *A, int lda, const float *B, int ldb, const float *own, int ldown,
                      const float *bo, float *out, int ldo) {
  switch (mr * 16 + nv) {
    BROWS(1) BROWS(2)
    default: break;
  }
}

/* out [rows x dim] = A [rows x K] B [K x dim] + diag(bo) own [rows x dim] in float32, sums in p
   order, the own term last; B, own and out rows of stride ldb, dim and ldo at any float (the
   back-projections G W and G^T E with the way back through the normalisation folded in: one of
   K and rows is the classes) */
static void back_project(int rows, int K, const float *A, int lda, const float *B, int ldb, int dim, const float *own,
                         const float *bo, float *out, int ldo) {
  const int nvec = dim / VW;
  for (int i = 0; i < rows; i += BR) {
    const int mr = rows - i < BR ? rows - i : BR;
    for (int v = 0; v < nvec; v += BN) {
      const int nv = nvec - v < BN ? nvec - v : BN;
      btile_any(mr, nv, K, A + (size_t)i * lda, lda, B + (size_t)v * VW, ldb, own + (size_t)i * dim + (size_t)v * VW, dim, bo + i,
                out + (size_t)i * ldo + (size_t)v * VW, ldo);
    }
    for (int r = 0; r < mr; r++)
      for (int k = nvec * VW; k < dim; k++) {
        float acc = 0;
        for (int p = 0; p < K; p++) acc = A[(size_t)(i + r) * lda + p] * B[(size_t)p * ldb + k] + acc;
        out[(size_t)(i + r) * ldo + k] = bo[i + r] * own[(size_t)(i + r) * dim + k] + acc;
      }
  }
}

#if VD == 8
typedef int64_t vl __attribute__((vector_size(64)));

/* the lane sums of a[0..7] in one vector: lanes a0 a4 a2 a6 a1 a5 a3 a7 */
AI vd hsum8(const vd *a) {
  vd b[4], cc[2];
#pragma GCC unroll 4
  for (int p = 0; p < 4; p++)
    b[p] = __builtin_shuffle(a[2 * p], a[2 * p + 1], (vl){0, 1, 2, 3, 8, 9, 10, 11}) +
           __builtin_shuffle(a[2 * p], a[2 * p + 1], (vl){4, 5, 6, 7, 12, 13, 14, 15});
#pragma GCC unroll 2
  for (int q = 0; q < 2; q++)
    cc[q] = __builtin_shuffle(b[2 * q], b[2 * q + 1], (vl){0, 1, 8, 9, 4, 5, 12, 13}) +
            __builtin_shuffle(b[2 * q], b[2 * q + 1], (vl){2, 3, 10, 11, 6, 7, 14, 15});
  return __builtin_shuffle(cc[0], cc[1], (vl){0, 8, 2, 10, 4, 12, 6, 14}) + __builtin_shuffle(cc[0], cc[1], (vl){1, 9, 3, 11, 5, 13, 7, 15});
}
#endif

/* c[r][j] = e_r . w_j for the CBLOCK rows of e [CBLOCK x dq] and the classes rows of w
   [classes x dq] (float64, dq a multiple of 16; w holds zero rows up to a multiple of 4, c room
   for them), into c (row stride ldc): dot products in VD partial sums, four rows by four
   classes at a time with their lane sums taken together */
static void cdots(const double *e, const double *w, int classes, int dq, double *c, int ldc) {
#if VD == 8
  for (int j = 0; j < classes; j += 4) {
    vd a[16];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) a[q] = (vd){0};
    const double *w0 = w + (size_t)j * dq;
    for (int k = 0; k < dq; k += VD) {
      vd ev[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) ev[r] = DLD(e + (size_t)r * dq + k);
#pragma GCC unroll 4
      for (int q = 0; q < 4; q++) {
        const vd wv = DLD(w0 + (size_t)q * dq + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) a[4 * r + q] = ev[r] * wv + a[4 * r + q];
      }
    }
    /* a[4r + q]: rows r, r + 1 in one group of eight: lanes (r, q) at 0 4 2 6 | 1 5 3 7 of d */
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      const vd d = hsum8(a + 8 * h);
      double *c0 = c + (size_t)(2 * h) * ldc + j, *c1 = c0 + ldc;
      c0[0] = d[0], c0[1] = d[4], c0[2] = d[2], c0[3] = d[6];
      c1[0] = d[1], c1[1] = d[5], c1[2] = d[3], c1[3] = d[7];
    }
  }
#else
  for (int j = 0; j < classes; j++)
    for (int r = 0; r < CBLOCK; r++) {
      vd a0 = {0}, a1 = {0};
      const double *er = e + (size_t)r * dq, *wj = w + (size_t)j * dq;
      int k = 0;
      for (; k + 2 * VD <= dq; k += 2 * VD) {
        a0 = DLD(er + k) * DLD(wj + k) + a0;
        a1 = DLD(er + k + VD) * DLD(wj + k + VD) + a1;
      }
      for (; k < dq; k += VD) a0 = DLD(er + k) * DLD(wj + k) + a0;
      c[(size_t)r * ldc + j] = hsum(a0 + a1);
    }
#endif
}

/* the class rows of W in float64: a multiple of 4 (cdots) */
static int wrows(int classes) { return (classes + 3) / 4 * 4; }

size_t batch_proxy_loss_work(int n, int classes, int dim) {
  const size_t dq = (size_t)qpad(dim), cp = (size_t)dpad(classes), cw = (size_t)wrows(classes);
  /* doubles: a block of E [CBLOCK x dq], W [classes x dq], C and G [n x cp],
     norms and inverse norms of both, scratch; floats: W [classes x dq], G over the rows' norms
     [n x cp], G^T over both norms [classes x n], the projections' coefficients [n], [classes] */
  return line(CBLOCK * dq) + line(cw * dq) + line(((size_t)n + CBLOCK) * cp) + line((size_t)n * cp) +
         2 * line((size_t)n) + 2 * line((size_t)classes) + line(5 * (size_t)n + 8 * (size_t)classes) +
         line(((size_t)classes * dq + (size_t)n * cp + (size_t)classes * n + (size_t)n + (size_t)classes) / 2 + 48);
}

/* The loss of kind BATCH_PROXY_* (p1, p2: arcface margin in radians and scale; cosface margin
   and scale; proxy-anchor margin delta and alpha) of the float32 embeddings x [n x dim] with
   labels in [0, classes) and class weights w [classes x dim]; dL/dx into grad [n x dim] and
   dL/dw into wgrad [classes x dim] (float32); where acc is not NULL, the batch's accuracy
   (batch_cosine_accuracy) into *acc, and then work needs batch_cosine_accuracy_work floats more.
   C and the loss in float64; the back-projections G W and G^T E in float32 (they only make the
   float32 gradients), straight into grad and wgrad. work: batch_proxy_loss_work doubles,
   64-byte aligned. */
double batch_proxy_loss(int kind, double p1, double p2, const float *x, const int32_t *labels, int n, const float *w,
                        int classes, int dim, float *grad, float *wgrad, double *acc, double *work) {
  const int dq = qpad(dim), cp = dpad(classes);
  double *eb = work;
  double *wd = eb + line(CBLOCK * (size_t)dq);
  double *c = wd + line((size_t)wrows(classes) * dq);
  double *g = c + line(((size_t)n + CBLOCK) * cp);
  double *en = g + line((size_t)n * cp);
  double *einv = en + line((size_t)n);
  double *wn = einv + line((size_t)n);
  double *winv = wn + line((size_t)classes);
  double *t = winv + line((size_t)classes);
  float *wf = (float *)(t + line(5 * (size_t)n + 8 * (size_t)classes));
  float *gf = wf + fline((size_t)classes * dq);
  float *gtf = gf + fline((size_t)n * cp);
  row_norms(x, n, dim, en);
  row_norms(w, classes, dim, wn);
  for (int i = 0; i < n; i++) einv[i] = 1 / en[i];
  for (int j = 0; j < classes; j++) winv[j] = 1 / wn[j];
  PROBE(0);
  /* W normalised, in float64 and float32 */
  normalized_block(w, 0, classes, dim, dq, wn, wd);
  memset(wd + (size_t)classes * dq, 0, (size_t)(wrows(classes) - classes) * dq * sizeof(double));
  for (size_t q = 0; q < (size_t)classes * dq; q++) wf[q] = (float)wd[q];
  PROBE(1);
  /* C = E W^T, E normalised a block of rows at a time */
  for (int i0 = 0; i0 < n; i0 += CBLOCK) {
    const int mr = n - i0 < CBLOCK ? n - i0 : CBLOCK;
    normalized_block(x, i0, mr, dim, dq, en, eb);
    if (mr < CBLOCK) memset(eb + (size_t)mr * dq, 0, (size_t)(CBLOCK - mr) * dq * sizeof(double));
    cdots(eb, wd, classes, dq, c + (size_t)i0 * cp, cp);
  }
  PROBE(2);
  const double loss = kind == BATCH_PROXY_ANCHOR ? proxy_anchor(p1, p2, c, cp, labels, n, classes, g, t)
                                                 : margin_softmax(kind == BATCH_PROXY_ARCFACE, p1, p2, c, cp, labels, n, classes, g, t);
  PROBE(3);
  /* dL/dx_i = (dL/du_i - (dL/du_i . u_i) u_i) / |x_i| with dL/du_i = sum_j G_ij w_j, and
     dL/du_i . u_i = sum_j G_ij C_ij: so dL/dx_i = sum_j (G_ij / |x_i|) w_j - (d_i / |x_i|^2) x_i,
     one back-projection with the projection folded in (none where the norm is the floor:
     F.normalize divides by the constant there). The same for dL/dw_j with the rows of E. */
  float *be = gtf + fline((size_t)classes * n), *bw = be + fline((size_t)n);
  double *dw = t;
  for (int j = 0; j < classes; j++) dw[j] = 0;
  for (int i = 0; i < n; i++) {
    const double *gi = g + (size_t)i * classes, *ci = c + (size_t)i * cp;
    double d = 0;
    for (int j = 0; j < classes; j++) {
      const double v = gi[j];
      d += v * ci[j];
      dw[j] += v * ci[j];
      gf[(size_t)i * cp + j] = (float)(v * einv[i]);
      gtf[(size_t)j * n + i] = (float)(v * einv[i] * winv[j]);
    }
    be[i] = en[i] > BATCH_NORM_EPSILON ? (float)(-d * einv[i] * einv[i]) : 0;
  }
  for (int j = 0; j < classes; j++) bw[j] = wn[j] > BATCH_NORM_EPSILON ? (float)(-dw[j] * winv[j] * winv[j]) : 0;
  PROBE(4);
  back_project(n, classes, gf, cp, wf, dq, dim, x, be, grad, dim);
  PROBE(5);
  back_project(classes, n, gtf, n, x, dim, dim, w, bw, wgrad, dim);
  PROBE(6);
  /* the batch accuracy with the same norms, in the workspace past the loss's */
  if (acc) *acc = batch_cosine_accuracy(x, labels, n, dim, en, NULL, (float *)(work + batch_proxy_loss_work(n, classes, dim)));
  return loss;
}

/* ------------------------------------------------------------------ the batch accuracy */

size_t batch_cosine_accuracy_work(int n, int dim) {
  const size_t np = (size_t)qpad(n), m = (size_t)n * (n > 0 ? n - 1 : 0) / 2;
  const size_t dq = (size_t)qpad(dim);
  /* in floats: inverse norms [np], T [dq x np], a band of S [MR x np], the pairs' cosines
     [m + VW], the rows' norms where the caller has none [np] (doubles), the sweep's
     (batchsweep.c) */
  return fline(np) + fline(dq * np) + fline(MR * np) + fline(m + VW) + fline(2 * np) + batch_sweep_work(n);
}

/* t [dq x np] = x^T, x [n x dim] (n <= np, dim <= dq, both multiples of 16), each column i times
   inv[i] (inv: np values, 0 past n): zero past x */
static void transpose_rows(const float *x, const float *inv, int n, int dim, int np, int dq, float *t) {
  for (int i0 = 0; i0 < np; i0 += 16)
    for (int k0 = 0; k0 < dq; k0 += 16) {
#if VW == 16 && defined(__AVX512F__)
      const __mmask16 km = dim - k0 >= 16 ? 0xffff : (__mmask16)((1u << (dim - k0 > 0 ? dim - k0 : 0)) - 1);
      __m512 v[16];
      for (int r = 0; r < 16; r++)
        v[r] = i0 + r < n && km ? _mm512_maskz_loadu_ps(km, x + (size_t)(i0 + r) * dim + k0) : _mm512_setzero_ps();
      transpose16(v);
      const __m512 s = _mm512_load_ps(inv + i0);
      for (int r = 0; r < 16; r++) _mm512_store_ps(t + (size_t)(k0 + r) * np + i0, _mm512_mul_ps(v[r], s));
#else
      for (int c = 0; c < 16; c++)
        for (int r = 0; r < 16; r++)
          t[(size_t)(k0 + c) * np + i0 + r] = i0 + r < n && k0 + c < dim ? x[(size_t)(i0 + r) * dim + k0 + c] * inv[i0 + r] : 0;
#endif
    }
}

/* lanes j0 + l < lim of a row: the mask of the lanes to read */
AI vi lanes_below(int j0, int lim) {
  vi iota;
#pragma GCC unroll 16
  for (int l = 0; l < VW; l++) iota[l] = l;
  return iota + j0 < lim;
}

#define VBLEND(mask, a, b) ((vf)(((vi)(a) & (mask)) | ((vi)(b) & ~(mask))))

/* The best-threshold accuracy over the pairs i < j of the float32 rows x [n x dim] ranked by
   their cosine (higher: "same"), the cosines computed in float32 as the header says; -1 where a
   row is not finite (the caller then sweeps in TypeScript). norms: the rows' norms
   max(|x_i|, 1e-12) where the caller has them (batch_proxy_loss), else NULL. cos: where not
   NULL, the n x n cosines used (both triangles; 1 on the diagonal). work:
   batch_cosine_accuracy_work floats, 64-byte aligned. */
double batch_cosine_accuracy(const float *x, const int32_t *labels, int n, int dim, const double *norms, float *cos_out,
                             float *work) {
  const int np = qpad(n);
  const int64_t m = (int64_t)n * (n - 1) / 2;
  const int dq = qpad(dim);
  float *inv = work;
  float *T = inv + fline((size_t)np);
  float *band = T + fline((size_t)dq * np);
  float *cs = band + fline((size_t)MR * np);
  double *own = (double *)(void *)(cs + fline((size_t)m + VW));
  float *sweep = (float *)own + fline(2 * (size_t)np);
  /* T = x^T [dq x np] (zero padding), then each column over its row's norm */
  if (!norms) {
    row_norms(x, n, dim, own);
    norms = own;
  }
  for (int i = 0; i < n; i++) {
    if (!(norms[i] <= 1e300)) return -1; /* inf or NaN */
    inv[i] = (float)(1 / norms[i]);
  }
  for (int i = n; i < np; i++) inv[i] = 0;
  transpose_rows(x, inv, n, dim, np, dq, T);
  PROBE(7);
  /* the cosines below the diagonal, a band of MR rows of S = T^T T at a time (the column
     vectors up to the one holding its last row's last column), into cs row after row; and
     their range */
  vf vlo = INFINITY - (vf){0}, vhi = -INFINITY - (vf){0};
  for (int i0 = 0; i0 < n; i0 += MR) {
    const int mr = n - i0 < MR ? n - i0 : MR;
    const int last = i0 + mr - 2; /* the last column (j < i) a row of the band reads */
    if (last < 0) continue;
    gemm_tn(mr, (last / VW + 1) * VW, dim, T + i0, np, T, np, band, np);
    for (int r = 0; r < mr; r++) {
      const int i = i0 + r;
      const float *si = band + (size_t)r * np;
      float *ci = cs + (size_t)i * (i - 1) / 2;
      for (int j0 = 0; j0 < i; j0 += VW) {
        const vi ok = lanes_below(j0, i);
        const vf v = VLOAD(si + j0);
        *(vfu *)(void *)(ci + j0) = v; /* lanes past i: overwritten by the next row, or spare */
        const vf a = VBLEND(ok, v, vlo), b = VBLEND(ok, v, vhi);
        vlo = VBLEND(a < vlo, a, vlo);
        vhi = VBLEND(b > vhi, b, vhi);
      }
    }
  }
  PROBE(8);
  if (cos_out) {
    const float *c = cs;
    for (int i = 0; i < n; i++) {
      cos_out[(size_t)i * n + i] = 1;
      for (int j = 0; j < i; j++, c++) cos_out[(size_t)i * n + j] = cos_out[(size_t)j * n + i] = *c;
    }
  }
  float range[2] = {INFINITY, -INFINITY};
  for (int l = 0; l < VW; l++) {
    range[0] = vlo[l] < range[0] ? vlo[l] : range[0];
    range[1] = vhi[l] > range[1] ? vhi[l] : range[1];
  }
  /* the sweep over the packed lower triangle (batchsweep.c) */
  return batch_sweep(cs, 0, n, labels, range, sweep);
}
