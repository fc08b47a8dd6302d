/*
 * The float GEMM drivers over the register tiles of gemm.h (the MLP's layers after the first,
 * every layer of the CNN): tails of rows and vectors go to the smaller tile shapes.
 */
#include "gemm.h"

#define NN_CASE(mr, nv) \
  case (mr)*16 + (nv): knn(mr, nv, K, NULL, A, lda, NULL, B, ldb, C, ldc); break;
#define TN_CASE(mr, nv) \
  case (mr)*16 + (nv): ktn(mr, nv, K, NULL, A, lda, NULL, B, ldb, C, ldc, 0); break;

static void tile_nn(int mr, int nv, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  switch (mr * 16 + nv) { ALL_CASES(NN_CASE) default: break; }
}
static void tile_tn(int mr, int nv, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  switch (mr * 16 + nv) { ALL_CASES(TN_CASE) default: break; }
}

void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  const int nvec = N / VW;
  for (int i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? M - i : MR;
    for (int j = 0; j < nvec; j += NV) {
      const int nv = nvec - j < NV ? nvec - j : NV;
      tile_nn(mr, nv, K, A + (size_t)i * lda, lda, B + j * VW, ldb, C + (size_t)i * ldc + j * VW, ldc);
    }
  }
}

void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  const int nvec = N / VW;
  for (int i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? M - i : MR;
    for (int j = 0; j < nvec; j += NV) {
      const int nv = nvec - j < NV ? nvec - j : NV;
      tile_tn(mr, nv, K, A + i, lda, B + j * VW, ldb, C + (size_t)i * ldc + j * VW, ldc);
    }
  }
}
