/*
 * Register-blocked float32 GEMM micro-kernels written with GCC/Clang vector extensions (they
 * compile to AVX-512, AVX2, SSE or NEON, whichever -march allows). Two shapes cover an MLP:
 *
 *   gemm_nn: C[i, :] = sum_p A[i, p] * B[p, :]      (forward, and dX = dZ * W^T with W^T stored)
 *   gemm_tn: C[k, :] = sum_p A[p, k] * B[p, :]      (weight gradients dW = X^T * dZ)
 *
 * B and C rows are VW-aligned and their widths multiples of VW. Every output element is one
 * dot product summed in p order, so the result does not depend on how rows are split. (Splitting the
 * 784-term sums into L1-sized chunks measured slower here, so the sums run whole.)
 */
#ifndef SIAMESE_GEMM_H
#define SIAMESE_GEMM_H

#include "siamese.h"

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

/* keep the lanes of v where cond is true (cond: a vector comparison), zero elsewhere */
#define VSELECT(cond, v) ((vf)((vi)(v) & (vi)(cond)))

#define VLOAD(p) (*(const vf *)(const void *)(p))
#define VSTORE(p, v) (*(vf *)(void *)(p) = (v))

/* a store that goes past this core's caches (x86 non-temporal), for rows the other thread reads
   next (see "streamed" in mlp.c), and the fence that orders such stores before a release store
   (elsewhere a plain store, and no fence needed) */
#if VW == 16 && defined(__AVX512F__)
#include <immintrin.h>
#define VSTREAM(p, v) _mm512_stream_ps((float *)(void *)(p), (__m512)(v))
#define STREAM_FENCE() _mm_sfence()
#elif VW == 8 && defined(__AVX__)
#include <immintrin.h>
#define VSTREAM(p, v) _mm256_stream_ps((float *)(void *)(p), (__m256)(v))
#define STREAM_FENCE() _mm_sfence()
#elif VW == 4 && defined(__SSE__)
#include <immintrin.h>
#define VSTREAM(p, v) _mm_stream_ps((float *)(void *)(p), (__m128)(v))
#define STREAM_FENCE() _mm_sfence()
#else
#define VSTREAM(p, v) VSTORE(p, v)
#define STREAM_FENCE() ((void)0)
#endif

#if VW == 16
#define MR 6
#define NV 4
#elif VW == 8
#define MR 6
#define NV 2
#else
#define MR 4
#define NV 2
#endif

#define AI static inline __attribute__((always_inline))

/*
 * The kernels take the input A as floats (scale NULL) or, for the first layer, as the batch's
 * image bytes (row stride lda bytes), each byte b standing for scale[b] = b / 255: the same
 * floats, so the same sums, without a float copy of the batch (4x the bytes) to write and read
 * back. With an index list idx (not NULL), p runs over idx[0..K) instead of 0..K-1: on sparse
 * input the first layer passes the terms where some A value of the tile is not zero. The skipped
 * terms are exact zeros, so the sums are the same bits (see mlp.c, "sparse input"). The callers
 * pass idx and scale as constants where they can, and the unused branches compile away.
 */
#define A_AT(A, off) (scale ? scale[((const uint8_t *)(A))[off]] : ((const float *)(A))[off])
#define A_ROW(A, p) ((const char *)(A) + (size_t)(p) * lda * (scale ? 1 : sizeof(float)))

/* C[mr x nv*VW] = A[mr x K] (row stride lda) * B[K x nv*VW] (row stride ldb) */
AI void knn(const int mr, const int nv, int K, const int32_t *idx, const void *restrict A, int lda,
            const float *restrict scale, const float *restrict B, int ldb, float *restrict C, int ldc) {
  vf acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) acc[r][j] = (vf){0};
  for (int q = 0; q < K; q++) {
    const int p = idx ? idx[q] : q;
    vf b[NV];
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) b[j] = VLOAD(B + (size_t)p * ldb + j * VW);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
      const float a = A_AT(A, (size_t)r * lda + p);
#pragma GCC unroll 8
      for (int j = 0; j < nv; j++) acc[r][j] += a * b[j];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) VSTORE(C + (size_t)r * ldc + j * VW, acc[r][j]);
}

/* C[mr x nv*VW] = A^T, A[K x lda] read at columns k..k+mr, times B[K x nv*VW]; accumulate: the
   sums go on from C (rows taken in parts, in order: the same sums) */
AI void ktn(const int mr, const int nv, int K, const int32_t *idx, const void *restrict A, int lda,
            const float *restrict scale, const float *restrict B, int ldb, float *restrict C, int ldc,
            int accumulate) {
  vf acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) acc[r][j] = accumulate ? VLOAD(C + (size_t)r * ldc + j * VW) : (vf){0};
  for (int q = 0; q < K; q++) {
    const int p = idx ? idx[q] : q;
    vf b[NV];
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) b[j] = VLOAD(B + (size_t)p * ldb + j * VW);
    const void *ap = A_ROW(A, p);
    if (!idx) {
      /* A's rows are far apart (a column block of the input): fetch a few rows ahead */
      __builtin_prefetch(A_ROW(A, p + 8));
    } else if (q + 8 < K) {
      /* listed rows skip ahead unpredictably: fetch both operands' rows (B's may sit in the
         other core's cache) */
      __builtin_prefetch(A_ROW(A, idx[q + 8]));
#pragma GCC unroll 8
      for (int j = 0; j < nv; j++) __builtin_prefetch(B + (size_t)idx[q + 8] * ldb + j * VW);
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
      const float a = A_AT(ap, r);
#pragma GCC unroll 8
      for (int j = 0; j < nv; j++) acc[r][j] += a * b[j];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) VSTORE(C + (size_t)r * ldc + j * VW, acc[r][j]);
}

/* the register tiles a driver dispatches to: one case per (rows, vectors) shape */
#if NV == 4
#define NV_CASES(X, mr) X(mr, 1) X(mr, 2) X(mr, 3) X(mr, 4)
#else
#define NV_CASES(X, mr) X(mr, 1) X(mr, 2)
#endif
#if MR == 6
#define ALL_CASES(X) NV_CASES(X, 1) NV_CASES(X, 2) NV_CASES(X, 3) NV_CASES(X, 4) NV_CASES(X, 5) NV_CASES(X, 6)
#else
#define ALL_CASES(X) NV_CASES(X, 1) NV_CASES(X, 2) NV_CASES(X, 3) NV_CASES(X, 4)
#endif

/* float drivers (gemm.c), shared by the networks: every C element is one sum in p order, so a
   split of M (rows) between threads does not change a bit */
/* C[M x N] = A[M x K] B[K x N]; N a multiple of VW */
void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);
/* C[M x N] = A[:, 0..M)^T B, A [K x lda] (pass A + k0 for the columns k0..k0+M), B [K x N] */
void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

#endif
