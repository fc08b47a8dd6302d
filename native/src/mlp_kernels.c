/*
 * The MLP's first-layer kernels: the GEMM drivers over the batch's image bytes (dense, or over
 * the index lists of the sparse path), the gather of byte rows as floats, bias + ReLU (+ dropout
 * mask), and the sparse path's non-zero patterns and pixel-tile row lists (see "sparse input" in
 * mlp.c). The register tiles themselves are gemm.h's.
 */
#include <pthread.h>
#include <string.h>

#include "mlp_internal.h"
#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

float u8_scale[256];
int u8_div_ok = 0;
static pthread_once_t u8_once = PTHREAD_ONCE_INIT;

static void init_scale_once(void) {
  /* the same value as TypeScript's byte / 255 stored into a Float32Array */
  int ok = 1;
  for (int i = 0; i < 256; i++) {
    u8_scale[i] = (float)((double)i / 255.0);
    volatile float x = (float)i;
    if (x / 255.0f != u8_scale[i]) ok = 0;
  }
  u8_div_ok = ok;
}

void init_scale(void) { pthread_once(&u8_once, init_scale_once); }

/* ---------------------------------------------------------------- GEMM drivers (tails) */

#define NN8_CASE(mr, nv) \
  case (mr)*16 + (nv): \
    if (idx) knn(mr, nv, K, idx, A8, lda, u8_scale, B, ldb, C, ldc); \
    else knn(mr, nv, K, NULL, A8, lda, u8_scale, B, ldb, C, ldc); \
    break;
#define TN8_CASE(mr, nv) \
  case (mr)*16 + (nv): \
    if (idx) ktn(mr, nv, K, idx, A8, lda, u8_scale, B, ldb, C, ldc, acc); \
    else ktn(mr, nv, K, NULL, A8, lda, u8_scale, B, ldb, C, ldc, acc); \
    break;

/* the first layer's byte kernels, specialised twice: dense (idx NULL, a constant there) and over
   an index list */

static void tile_nn8(int mr, int nv, int K, const int32_t *idx, const uint8_t *A8, int lda, const float *B, int ldb,
                     float *C, int ldc) {
  switch (mr * 16 + nv) { ALL_CASES(NN8_CASE) default: break; }
}
static void tile_tn8(int mr, int nv, int K, const int32_t *idx, const uint8_t *A8, int lda, const float *B, int ldb,
                     float *C, int ldc, int acc) {
  switch (mr * 16 + nv) { ALL_CASES(TN8_CASE) default: break; }
}

/* the first layer: C[M x N] = A8[M x K] B, over the terms idx[0..K) when idx is given */
void gemm_nn8(int M, int N, int K, const int32_t *idx, const uint8_t *A8, int lda, const float *B, int ldb,
                     float *C, int ldc) {
  const int nvec = N / VW;
  for (int i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? M - i : MR;
    for (int j = 0; j < nvec; j += NV) {
      const int nv = nvec - j < NV ? nvec - j : NV;
      tile_nn8(mr, nv, K, idx, A8 + (size_t)i * lda, lda, B + j * VW, ldb, C + (size_t)i * ldc + j * VW, ldc);
    }
  }
}

/*
 * The first layer's kernel gradient: C[k0..k0+M) x N] = A8[:, k0..k0+M)^T B over the batch rows
 * [r0, r1), A8 [rows x lda] bytes, B [rows x ldb]; with lists, the i-th tile of MR rows of C sums
 * over its listed rows (lists + i * lstride, lcount[i] of them, ascending) in [r0, r1), from
 * cursor[i] on when cursor is given (which then moves past them). accumulate: the sums go on
 * from C, so that rows taken in consecutive parts give the sums of one pass.
 */
void gemm_tn8(int M, int N, int r0, int r1, const int32_t *lists, const int *lcount, int lstride, int *cursor,
                     int accumulate, const uint8_t *A8, int lda, const float *B, int ldb, float *C, int ldc) {
  const int nvec = N / VW;
  for (int i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? M - i : MR;
    const int32_t *idx = NULL;
    int terms = r1 - r0;
    const uint8_t *a = A8 + (size_t)r0 * lda + i;
    const float *b = B + (size_t)r0 * ldb;
    if (lists) {
      const int32_t *list = lists + (size_t)(i / MR) * lstride;
      const int from = cursor ? cursor[i / MR] : 0;
      int to = from;
      while (to < lcount[i / MR] && list[to] < r1) to++;
      if (cursor) cursor[i / MR] = to;
      idx = list + from;
      terms = to - from;
      a = A8 + i;
      b = B;
    }
    /* nothing to add (a pixel tile that is 0 in every row of this part): the sums stay as they
       are, so their part of C need not be read and written back */
    if (accumulate && terms == 0) continue;
    for (int j = 0; j < nvec; j += NV) {
      const int nv = nvec - j < NV ? nvec - j : NV;
      tile_tn8(mr, nv, terms, idx, a, lda, b + j * VW, ldb, C + (size_t)i * ldc + j * VW, ldc, accumulate);
    }
  }
}

/*
 * Rows of a byte image set as float32 in [0, 1]. x / 255.0f in float equals TypeScript's
 * byte / 255 (computed in float64, then stored in a Float32Array) for all 256 bytes, which
 * check_scale() verifies once; the division is then vectorized. Rows come from all over a large
 * array (a shuffled batch), so the next rows are prefetched while this one converts.
 */
typedef uint8_t vb __attribute__((vector_size(VW)));

/* VW bytes to floats. GCC 12 turns the generic __builtin_convertvector from bytes into a
   lane-by-lane loop (it made the gather ~6x slower), so x86 gets the widening instructions. */
static inline vf bytes_to_vf(const uint8_t *src) {
#if VW == 16 && defined(__AVX512F__)
  return (vf)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)src)));
#elif VW == 8 && defined(__AVX2__)
  return (vf)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)src)));
#else
  vb b;
  __builtin_memcpy(&b, src, sizeof b);
  return __builtin_convertvector(b, vf);
#endif
}

/* images[rows[r]] (rows NULL: images[r]) as floats into dst, prefetching PREFETCH_AHEAD rows ahead */
void gather_rows(float *dst, const uint8_t *images, int in_dim, const int32_t *rows, int n) {
  const vf d255 = (vf){0} + 255.0f;
  for (int r = 0; r < n; r++) {
    if (rows && r + PREFETCH_AHEAD < n) prefetch_row(images, in_dim, rows[r + PREFETCH_AHEAD]);
    const uint8_t *src = images + (size_t)(rows ? rows[r] : r) * in_dim;
    float *d = dst + (size_t)r * in_dim;
    int j = 0;
    if (u8_div_ok) {
      for (; j + VW <= in_dim; j += VW) {
        const vf x = bytes_to_vf(src + j) / d255;
        __builtin_memcpy(d + j, &x, sizeof x);
      }
    }
    for (; j < in_dim; j++) d[j] = u8_scale[src[j]];
  }
}

/* out = relu(out + b) (* mask) over `cols` columns of `rows` rows (row strides ldo, ldm) */
void bias_relu(float *out, int ldo, const float *b, const float *mask, int ldm, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    float *o = out + (size_t)r * ldo;
    const float *mk = mask ? mask + (size_t)r * ldm : NULL;
    for (int c = 0; c < cols; c += VW) {
      vf v = VLOAD(o + c) + VLOAD(b + c);
      v = VSELECT(v > 0.0f, v);
      if (mk) v = v * VLOAD(mk + c);
      VSTORE(o + c, v);
    }
  }
}

/* ---------------------------------------------------------------- sparse input */

#if HAVE_SPARSE
/* the non-zero pattern of the batch rows [r0, r0 + mr), their bytes at x (bit k of word k / 64:
   pixel k is not 0) into nz,
   stored word-major ([nzw x cap]), and the pixels where any of them is not 0 into idx, in
   order; returns their number */
int tile_nonzero(const mlp *m, const uint8_t *x, int r0, int mr, uint64_t *nz, int32_t *idx) {
  const int K = m->w[0];
  int cnt = 0;
  for (int w = 0; w < m->nzw; w++) {
    const int k0 = w * 64, left = K - k0;
    const __mmask64 lm = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
    uint64_t any = 0;
    for (int r = 0; r < mr; r++) {
      const __m512i v = _mm512_maskz_loadu_epi8(lm, x + (size_t)r * K + k0);
      const uint64_t bits = _mm512_test_epi8_mask(v, v);
      nz[(size_t)w * m->cap + r0 + r] = bits;
      any |= bits;
    }
    /* the set bits' pixels, 16 at a time (bit by bit, this loop took a third of the gather's
       time); the list has 16 spare entries */
    for (int q = 0; q < 64 && any >> q; q += 16) {
      const __mmask16 k = (__mmask16)(any >> q);
      if (k) cnt = append_indices(idx, cnt, k, k0 + q);
    }
  }
  return cnt;
}

/* for the first layer's kernel gradient on sparse input: for every tile of MR pixels (the row
   tiles of gemm_tn), the batch rows where one of its pixels is not 0, 16 rows at a time, from
   group g's copy of the patterns into its own lists */
void pixel_tile_lists(mlp *m, int g, int n) {
  const int K = m->w[0], tiles = (K + MR - 1) / MR;
  const uint64_t *nz = m->NZ[g];
  for (int i = 0; i < tiles; i++) {
    const int k0 = i * MR, mr = K - k0 < MR ? K - k0 : MR, w = k0 >> 6, s = k0 & 63;
    const __m512i want = _mm512_set1_epi64((long long)(((uint64_t)1 << mr) - 1));
    const __m128i sr = _mm_cvtsi32_si128(s), sl = _mm_cvtsi32_si128(64 - s);
    const uint64_t *lo = nz + (size_t)w * m->cap;
    const uint64_t *hi = s + mr > 64 && w + 1 < m->nzw ? nz + (size_t)(w + 1) * m->cap : NULL;
    int32_t *list = m->TL[g] + (size_t)i * (m->cap + 16);
    int cnt = 0;
    for (int p = 0; p < n; p += 16) {
      __m512i a = _mm512_srl_epi64(_mm512_loadu_si512(lo + p), sr);
      __m512i b = _mm512_srl_epi64(_mm512_loadu_si512(lo + p + 8), sr);
      if (hi) {
        a = _mm512_or_si512(a, _mm512_sll_epi64(_mm512_loadu_si512(hi + p), sl));
        b = _mm512_or_si512(b, _mm512_sll_epi64(_mm512_loadu_si512(hi + p + 8), sl));
      }
      __mmask16 k = (__mmask16)(_mm512_test_epi64_mask(a, want) | (_mm512_test_epi64_mask(b, want) << 8));
      if (n - p < 16) k &= (__mmask16)((1u << (n - p)) - 1);
      cnt = append_indices(list, cnt, k, p); /* (the list has 16 spare entries) */
    }
    m->TLn[g][i] = cnt;
  }
}
#endif
