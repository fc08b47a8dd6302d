/*
 * What the MLP (mlp*.c) and the CNN (cnn.c) share: zeroed aligned buffers, a range's share of a
 * thread, the byte-to-float table, and dL/d(embeddings) built from pair distances.
 */
#ifndef SIAMESE_COMMON_H
#define SIAMESE_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "siamese.h"

#define ROUND_UP(x, m) ((((x) + (m)-1) / (m)) * (m))

/* n floats, 64-byte aligned and zeroed, with at least 64 bytes to spare past them */
static inline void *falloc(size_t n) {
  const size_t bytes = ROUND_UP(n * sizeof(float) + 64, 64);
  void *p = aligned_alloc(64, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

/* [*lo, *hi): part t of P of [0, n) in whole multiples of `unit` (the last part takes the rest) */
static inline void split(int n, int unit, int t, int P, int *lo, int *hi) {
  const int units = (n + unit - 1) / unit;
  *lo = (int)((long)t * units / P) * unit;
  *hi = (int)((long)(t + 1) * units / P) * unit;
  if (*lo > n) *lo = n;
  if (*hi > n) *hi = n;
}

/* byte b -> b / 255 as TypeScript computes it (a float64 division stored into a Float32Array);
   init_scale fills it once (mlp_kernels.c) */
extern float u8_scale[256];
void init_scale(void);

/* What a backward pass starts from: dL/d(embeddings) given (g, rows x embedding size), or else
   built from pair distances, pairs (ia[i], ib[i]) with coefficients coef[i]; and the optimizer
   update, made where apply */
typedef struct {
  const float *g;
  const int32_t *ia, *ib;
  const float *coef;
  int npairs;
  const optcfg *opt;
  int apply;
} backward_src;

/*
 * Adds to rows [r0, r1) of G (row stride cp) the gradient with respect to the embeddings E from
 * s's pair distances: each pair adds coef (a - b) to row ia and subtracts it from row ib (coef =
 * dL/dD / D, 0 where the distance floor is active), pair after pair, exactly as tail_backprop sums
 * them. Each thread builds its own rows, so the host never writes (or zeroes) a gradient array
 * the threads then read.
 */
static inline void pair_gradient_rows(const float *E, float *G, int dim, int cp, const backward_src *s, int r0, int r1) {
  for (int i = 0; i < s->npairs; i++) {
    const float k = s->coef[i];
    const int a = s->ia[i], b = s->ib[i];
    const int in_a = a >= r0 && a < r1, in_b = b >= r0 && b < r1;
    if (k == 0.0f || (!in_a && !in_b)) continue;
    const float *ea = E + (size_t)a * cp, *eb = E + (size_t)b * cp;
    float *ga = G + (size_t)a * cp, *gb = G + (size_t)b * cp;
    for (int j = 0; j < dim; j++) {
      const float t = k * (ea[j] - eb[j]);
      if (in_a) ga[j] += t;
      if (in_b) gb[j] -= t;
    }
  }
}

#endif
