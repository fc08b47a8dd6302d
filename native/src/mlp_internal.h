/*
 * What the MLP's files share (mlp.c the network and its training step, mlp_kernels.c the first
 * layer's byte and sparse kernels, mlp_schedule.c how two threads share a step): not part of
 * the addon's interface (siamese.h).
 */
#ifndef SIAMESE_MLP_INTERNAL_H
#define SIAMESE_MLP_INTERNAL_H

#include "common.h"
#include "gemm.h"
#include "siamese.h"

/* ---------------------------------------------------------------- mlp_kernels.c */

/* u8_scale, init_scale: common.h; u8_div_ok: x / 255.0f in float gives u8_scale's value for
   every byte, so the gather may divide in vectors */
extern int u8_div_ok;

/* the first layer: C[M x N] = A8[M x K] B, over the terms idx[0..K) when idx is given */
void gemm_nn8(int M, int N, int K, const int32_t *idx, const uint8_t *A8, int lda, const float *B, int ldb, float *C,
              int ldc);
/* the first layer's kernel gradient (see mlp_kernels.c) */
void gemm_tn8(int M, int N, int r0, int r1, const int32_t *lists, const int *lcount, int lstride, int *cursor,
              int accumulate, const uint8_t *A8, int lda, const float *B, int ldb, float *C, int ldc);
/* images[rows[r]] (rows NULL: images[r]) as floats into dst */
void gather_rows(float *dst, const uint8_t *images, int in_dim, const int32_t *rows, int n);
/* out = relu(out + b) (* mask) over `cols` columns of `rows` rows (row strides ldo, ldm) */
void bias_relu(float *out, int ldo, const float *b, const float *mask, int ldm, int rows, int cols);

#define PREFETCH_AHEAD 4

static inline void prefetch_row(const uint8_t *images, int in_dim, int32_t row) {
  const char *p = (const char *)(images + (size_t)row * in_dim);
  for (int o = 0; o < in_dim; o += 64) __builtin_prefetch(p + o);
}

#if VW == 16 && defined(__AVX512BW__)
#define HAVE_SPARSE 1
#else
#define HAVE_SPARSE 0
#endif
/* auto mode: the sparse path while a tile's sums keep at most this fraction of the terms (with
   more, the index lists cost more than the skipped terms save) */
#define SPARSE_MAX_TERMS 0.8
/* auto mode on dense input: one sparse step this often measures the input again */
#define SPARSE_PROBE 256

#if HAVE_SPARSE
int tile_nonzero(const mlp *m, const uint8_t *x, int r0, int mr, uint64_t *nz, int32_t *idx);
void pixel_tile_lists(mlp *m, int g, int n);
#endif

/* ---------------------------------------------------------------- mlp_schedule.c */

#define ROLE_CHUNK 8 /* row tiles the first layer publishes at a time, in roles (choose_plan) */
/* where a piece of rows handed over in roles ends (forward, backward), and the end of the rows
   handed over from r0 on (waits for at least one) */
int forward_piece_end(int i0, int n);
int backward_piece_end(int r0, int n);
int take_rows(const mlp *m, long base, int r0, int n);
/* the next training step's plan (PLAN_*) and first-layer path; a step's native time recorded for
   auto mode's timing; the plan a step ran with */
int choose_plan(mlp *m, int sparse);
int choose_sparse(mlp *m);
void tune_record(mlp *m, int live, int step, int plan, long ns);
int step_plan(const mlp *m);

/* ---------------------------------------------------------------- mlp.c */

/* wait for a first layer run ahead that no forward pass took over (see mlp.c) */
void mlp_ahead_end(mlp *m);

#endif
