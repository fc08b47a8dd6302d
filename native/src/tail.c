/*
 * Host tail helpers of the native engine, independent of the network: pair distances and their
 * backward pass (lossTail.ts' rowDistances and backpropDistances, in C).
 */
#include <math.h>

#include "siamese.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- host tail helpers */

/* D[i] = sqrt(max(sum_j (e[ia[i]] - e[ib[i]])^2, floor)), sums in float64 (sq), in 8 partial sums */
typedef double vd8 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));

/* 8 floats to doubles (the generic conversion compiles lane by lane with GCC 12, as above) */
static inline vd8 f8_to_d8(const float *p) {
#if defined(__AVX512F__)
  return (vd8)_mm512_cvtps_pd(_mm256_loadu_ps(p));
#else
  vf8 x;
  __builtin_memcpy(&x, p, sizeof x);
  return __builtin_convertvector(x, vd8);
#endif
}

void tail_distances(const float *emb, int dim, const int32_t *ia, const int32_t *ib, int n, double floor_,
                    float *d, double *sq) {
  for (int i = 0; i < n; i++) {
    const float *a = emb + (size_t)ia[i] * dim;
    const float *b = emb + (size_t)ib[i] * dim;
    vd8 acc = {0};
    int j = 0;
    for (; j + 8 <= dim; j += 8) {
      const vd8 t = f8_to_d8(a + j) - f8_to_d8(b + j);
      acc += t * t;
    }
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < dim; j++) {
      const double t = (double)a[j] - (double)b[j];
      s += t * t;
    }
    sq[i] = s;
    d[i] = (float)sqrt(s > floor_ ? s : floor_);
  }
}

/* g_emb[ia[i]] += c (a - b), g_emb[ib[i]] -= c (a - b), c = g[i] / D[i] where the floor is not active */
void tail_backprop(const float *emb, int dim, const int32_t *ia, const int32_t *ib, int n, double floor_,
                   const float *d, const double *sq, const double *g, float *gemb) {
  for (int i = 0; i < n; i++) {
    if (!(sq[i] >= floor_) || g[i] == 0) continue;
    const float c = (float)(g[i] / d[i]);
    const float *a = emb + (size_t)ia[i] * dim;
    const float *b = emb + (size_t)ib[i] * dim;
    float *ga = gemb + (size_t)ia[i] * dim;
    float *gb = gemb + (size_t)ib[i] * dim;
    for (int j = 0; j < dim; j++) {
      const float t = c * (a[j] - b[j]);
      ga[j] += t;
      gb[j] -= t;
    }
  }
}
