/*
 * The MLP: forward with dropout (masks drawn from the project's xoshiro128** stream, exactly as
 * src/model/dropout.ts draws them), backward to weight gradients, and the optimizer update,
 * spread over a thread pool.
 *
 * A training step runs on every thread of the pool at once, each thread on a fixed share (see
 * forward_each): the first layer by column groups, the others by batch rows, with barriers
 * between the phases; or, on two threads with sparse input, in roles (choose_plan), where the next
 * step's first layer may run ahead (mlp_set_next). The first layer skips the zero pixels of
 * sparse input (layer0_gather). Inference (mlp_embed) hands out row blocks dynamically. Every
 * output element is one sum in a fixed order, so results are the same for any thread count,
 * schedule, first-layer path and run-ahead.
 *
 * The first layer's byte and sparse kernels are in mlp_kernels.c, the choice of schedule (and its
 * timing) in mlp_schedule.c; what they share in mlp_internal.h.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mlp_internal.h"
#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* A first layer run ahead (mlp_set_next) that no forward pass took over: wait for thread 1 to
   end it, and count the next steps' progress on from past its counts. The calls that write
   what it reads, or read what it writes, do this first. */
void mlp_ahead_end(mlp *m) {
  if (!m->ahead) return;
  pool_wait_progress(&m->ahead_done, 1);
  m->ahead = 0;
  m->progress_base = m->ahead_base + m->next_n + 1;
}

/* ---------------------------------------------------------------- model */

/* the first layer's per-group buffers */
static void free_inputs(mlp *m) {
  for (int g = 0; g < MAX_GROUPS; g++) {
    free(m->XB[g]);
    free(m->NZ[g]);
    free(m->UL[g]);
    free(m->TL[g]);
    free(m->TLn[g]);
    m->XB[g] = NULL;
    m->NZ[g] = NULL;
    m->UL[g] = NULL;
    m->TL[g] = NULL;
    m->TLn[g] = NULL;
  }
  free(m->cursor);
  m->cursor = NULL;
}

static int alloc_inputs(mlp *m, int cap) {
  free_inputs(m);
  const int tiles = (m->w[0] + MR - 1) / MR;
  for (int g = 0; g < m->ng; g++) {
    m->XB[g] = (uint8_t *)falloc(((size_t)cap * m->w[0] + 3) / 4);
    m->NZ[g] = (uint64_t *)falloc((size_t)cap * m->nzw * 2);
    m->UL[g] = (int32_t *)falloc((size_t)m->w[0] + 16);
    m->TL[g] = (int32_t *)falloc((size_t)tiles * (cap + 16));
    m->TLn[g] = (int *)falloc((size_t)tiles);
    if (!m->XB[g] || !m->NZ[g] || !m->UL[g] || !m->TL[g] || !m->TLn[g]) return -1;
  }
  m->cursor = (int *)falloc((size_t)tiles * (m->ng > 0 ? m->ng : 1));
  return m->cursor ? 0 : -1;
}

static int alloc_rows(mlp *m, int rows) {
  if (rows <= m->cap) return 0;
  int cap = ROUND_UP(rows, 64);
  if (alloc_inputs(m, cap) != 0) return -1;
  free(m->next_rows);
  free(m->H0next);
  m->next_rows = (int32_t *)falloc((size_t)cap);
  m->H0next = (float *)falloc((size_t)cap * m->wp[1]);
  if (!m->next_rows || !m->H0next) return -1;
  for (int l = 0; l < m->nl; l++) {
    free(m->H[l]);
    free(m->M[l]);
    free(m->D[l]);
    m->H[l] = (float *)falloc((size_t)cap * m->wp[l + 1]);
    m->M[l] = (float *)falloc((size_t)cap * m->wp[l + 1]);
    m->D[l] = (float *)falloc((size_t)cap * m->wp[l + 1]);
    if (!m->H[l] || !m->M[l] || !m->D[l]) return -1;
  }
  m->cap = cap;
  return 0;
}

#define EMBED_BLOCK 48

static int alloc_scratch(mlp *m) {
  int maxw = 0;
  for (int l = 1; l <= m->nl; l++) if (m->wp[l] > maxw) maxw = m->wp[l];
  size_t per = ROUND_UP((size_t)EMBED_BLOCK * m->w[0] + 2 * (size_t)EMBED_BLOCK * maxw, 16);
  free(m->scratch);
  m->scratch = (float *)falloc(per * (size_t)m->nthreads);
  m->scratch_per_thread = per;
  return m->scratch ? 0 : -1;
}

/* column groups of the first layer: one per thread, in whole vectors, at most MAX_GROUPS */
static void set_groups(mlp *m) {
  const int units = m->wp[1] / VW;
  int ng = m->nthreads < units ? m->nthreads : units;
  if (ng > MAX_GROUPS) ng = MAX_GROUPS;
  if (ng < 1) ng = 1;
  m->ng = ng;
  for (int g = 0; g <= ng; g++) m->gc[g] = VW * (int)((long)g * units / ng);
}

/* first-layer matrices: unpadded row-major [w0 x w1] <-> column groups (padding columns zero) */
static void l0_pack(const mlp *m, float *dst, const float *src) {
  const int K = m->w[0], n1 = m->w[1];
  for (int g = 0; g < m->ng; g++) {
    const int c0 = m->gc[g], cw = m->gc[g + 1] - c0;
    float *blk = dst + (size_t)K * c0;
    for (int k = 0; k < K; k++)
      for (int c = 0; c < cw; c++) blk[(size_t)k * cw + c] = c0 + c < n1 ? src[(size_t)k * n1 + c0 + c] : 0.0f;
  }
}
static void l0_unpack(const mlp *m, float *dst, const float *src) {
  const int K = m->w[0], n1 = m->w[1];
  for (int g = 0; g < m->ng; g++) {
    const int c0 = m->gc[g], cw = m->gc[g + 1] - c0;
    const float *blk = src + (size_t)K * c0;
    for (int k = 0; k < K; k++)
      for (int c = 0; c < cw && c0 + c < n1; c++) dst[(size_t)k * n1 + c0 + c] = blk[(size_t)k * cw + c];
  }
}

mlp *mlp_create(const int *widths, int nlayers, double rate, int threads) {
  if (nlayers < 1 || nlayers > MAX_LAYERS) return NULL;
  init_scale();
  xo_init();
  mlp *m = (mlp *)calloc(1, sizeof(mlp));
  if (!m) return NULL;
  m->nl = nlayers;
  m->rate = rate;
  for (int l = 0; l <= nlayers; l++) {
    m->w[l] = widths[l];
    m->wp[l] = l == 0 ? widths[0] : ROUND_UP(widths[l], VW);
  }
  int ok = 1;
  for (int l = 0; l < nlayers; l++) {
    size_t kn = (size_t)m->wp[l] * m->wp[l + 1];
    m->W[l] = (float *)falloc(kn);
    m->B[l] = (float *)falloc(m->wp[l + 1]);
    m->GW[l] = (float *)falloc(kn);
    m->GB[l] = (float *)falloc(m->wp[l + 1]);
    m->WT[l] = l > 0 ? (float *)falloc(kn) : NULL;
    ok = ok && m->W[l] && m->B[l] && m->GW[l] && m->GB[l] && (l == 0 || m->WT[l]);
    for (int s = 0; s < MAX_SLOTS; s++) {
      m->SW[s][l] = (float *)falloc(kn);
      m->SB[s][l] = (float *)falloc(m->wp[l + 1]);
      ok = ok && m->SW[s][l] && m->SB[s][l];
    }
  }
  m->term_share = -1;
  m->nzw = (m->w[0] + 63) / 64;
  m->nthreads = threads < 1 ? 1 : threads;
  m->pool = pool_create(m->nthreads);
  m->nthreads = pool_threads(m->pool);
  set_groups(m);
  m->bad = (size_t *)calloc((size_t)m->nthreads * 8, sizeof(size_t));
  if (!ok || !m->pool || !m->bad || alloc_rows(m, 256) != 0 || alloc_scratch(m) != 0) {
    mlp_destroy(m);
    return NULL;
  }
  return m;
}

void mlp_destroy(mlp *m) {
  if (!m) return;
  mlp_ahead_end(m);
  pool_destroy(m->pool);
  for (int l = 0; l < m->nl; l++) {
    free(m->W[l]);
    free(m->B[l]);
    free(m->WT[l]);
    free(m->GW[l]);
    free(m->GB[l]);
    free(m->H[l]);
    free(m->M[l]);
    free(m->D[l]);
    for (int s = 0; s < MAX_SLOTS; s++) {
      free(m->SW[s][l]);
      free(m->SB[s][l]);
    }
  }
  free_inputs(m);
  free(m->next_rows);
  free(m->H0next);
  free(m->bad);
  free(m->scratch);
  free(m);
}

size_t mlp_param_size(const mlp *m, int idx) {
  int l = idx / 2;
  if (l < 0 || l >= m->nl) return 0;
  return idx % 2 == 0 ? (size_t)m->w[l] * m->w[l + 1] : (size_t)m->w[l + 1];
}

/* padded [rows x cols_p] <-> unpadded [rows x cols] */
static void pad_copy(float *dst, const float *src, int rows, int cols, int cols_p) {
  for (int r = 0; r < rows; r++) {
    memcpy(dst + (size_t)r * cols_p, src + (size_t)r * cols, (size_t)cols * sizeof(float));
    for (int c = cols; c < cols_p; c++) dst[(size_t)r * cols_p + c] = 0.0f;
  }
}
static void unpad_copy(float *dst, const float *src, int rows, int cols, int cols_p) {
  for (int r = 0; r < rows; r++) memcpy(dst + (size_t)r * cols, src + (size_t)r * cols_p, (size_t)cols * sizeof(float));
}

/* WT[l] = W[l]^T for rows [k0, k1) of W[l] */
static void update_transpose_rows(mlp *m, int l, int k0, int k1) {
  if (l == 0) return;
  const int K = m->wp[l], N = m->wp[l + 1];
  const float *W = m->W[l];
  float *T = m->WT[l];
#if VW == 16 && defined(__AVX512F__)
  /* in 16 x 16 blocks (the padded widths are multiples of 16): the scalar loop's strided
     stores took a fifth of the small layers' backward */
  for (; k0 + 16 <= k1; k0 += 16)
    for (int n = 0; n < N; n += 16) {
      __m512 v[16];
      for (int i = 0; i < 16; i++) v[i] = _mm512_loadu_ps(W + (size_t)(k0 + i) * N + n);
      transpose16(v);
      for (int j = 0; j < 16; j++) _mm512_storeu_ps(T + (size_t)(n + j) * K + k0, v[j]);
    }
#endif
  for (int n = 0; n < N; n++)
    for (int k = k0; k < k1; k++) T[(size_t)n * K + k] = W[(size_t)k * N + n];
}

static float *param_ptr(const mlp *m, int idx, float *const *Ws, float *const *Bs) {
  (void)m;
  int l = idx / 2;
  return idx % 2 == 0 ? Ws[l] : Bs[l];
}

static void get_padded(const mlp *m, int idx, const float *src, float *dst) {
  int l = idx / 2;
  if (idx == 0) l0_unpack(m, dst, src);
  else if (idx % 2 == 0) unpad_copy(dst, src, m->w[l], m->w[l + 1], m->wp[l + 1]);
  else memcpy(dst, src, (size_t)m->w[l + 1] * sizeof(float));
}
static void set_padded(const mlp *m, int idx, const float *src, float *dst) {
  int l = idx / 2;
  if (idx == 0) l0_pack(m, dst, src);
  else if (idx % 2 == 0) pad_copy(dst, src, m->w[l], m->w[l + 1], m->wp[l + 1]);
  else {
    memcpy(dst, src, (size_t)m->w[l + 1] * sizeof(float));
    for (int c = m->w[l + 1]; c < m->wp[l + 1]; c++) dst[c] = 0.0f;
  }
}

void mlp_set_param(mlp *m, int idx, const float *src) {
  mlp_ahead_end(m);
  m->bad_valid = 0;
  set_padded(m, idx, src, param_ptr(m, idx, m->W, m->B));
  if (idx % 2 == 0) update_transpose_rows(m, idx / 2, 0, m->wp[idx / 2]);
}
void mlp_get_param(const mlp *m, int idx, float *dst) { get_padded(m, idx, param_ptr(m, idx, m->W, m->B), dst); }
void mlp_get_grad(const mlp *m, int idx, float *dst) { get_padded(m, idx, param_ptr(m, idx, m->GW, m->GB), dst); }
void mlp_get_slot(const mlp *m, int slot, int idx, float *dst) {
  get_padded(m, idx, param_ptr(m, idx, m->SW[slot], m->SB[slot]), dst);
}
void mlp_set_slot(mlp *m, int slot, int idx, const float *src) {
  mlp_ahead_end(m);
  set_padded(m, idx, src, param_ptr(m, idx, m->SW[slot], m->SB[slot]));
}
int mlp_set_threads(mlp *m, int threads) {
  if (threads < 1) threads = 1;
  mlp_ahead_end(m);
  if (threads == m->nthreads) return 0;
  /* the first layer's storage follows the thread count: repack it */
  const size_t kn = (size_t)m->w[0] * m->w[1];
  float *tmp = (float *)malloc((2 + MAX_SLOTS) * kn * sizeof(float) + 1);
  size_t *bad = (size_t *)calloc((size_t)threads * 8, sizeof(size_t));
  if (!tmp || !bad) {
    free(tmp);
    free(bad);
    return -1;
  }
  float *const mats[2 + MAX_SLOTS] = {m->W[0], m->GW[0], m->SW[0][0], m->SW[1][0]};
  for (int i = 0; i < 2 + MAX_SLOTS; i++) l0_unpack(m, tmp + i * kn, mats[i]);
  pool_destroy(m->pool);
  m->pool = pool_create(threads);
  m->nthreads = pool_threads(m->pool);
  set_groups(m);
  for (int i = 0; i < 2 + MAX_SLOTS; i++) l0_pack(m, mats[i], tmp + i * kn);
  free(tmp);
  free(m->bad);
  m->bad = bad;
  m->bad_valid = 0;
  if (!m->pool || alloc_inputs(m, m->cap) != 0) return -1;
  return alloc_scratch(m);
}

void mlp_zero_slots(mlp *m) {
  mlp_ahead_end(m);
  for (int s = 0; s < MAX_SLOTS; s++)
    for (int l = 0; l < m->nl; l++) {
      memset(m->SW[s][l], 0, (size_t)m->wp[l] * m->wp[l + 1] * sizeof(float));
      memset(m->SB[s][l], 0, (size_t)m->wp[l + 1] * sizeof(float));
    }
}

/* NaN or Inf: all exponent bits set. A bit test, not isfinite(), so the compiler vectorises it:
 * the trainer scans the weights after every batch. */
static size_t count_nonfinite(const float *x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += nonfinite(x[i]);
  return bad;
}

size_t mlp_nonfinite(const mlp *m) {
  if (m->bad_valid) {
    size_t bad = 0;
    for (int t = 0; t < m->nthreads; t++) bad += m->bad[(size_t)t * 8];
    return bad;
  }
  size_t bad = 0;
  for (int l = 0; l < m->nl; l++) {
    bad += count_nonfinite(m->W[l], (size_t)m->wp[l] * m->wp[l + 1]);
    bad += count_nonfinite(m->B[l], (size_t)m->wp[l + 1]);
  }
  return bad;
}

/* ---------------------------------------------------------------- forward */

/* the first layer's pre-activations for columns of group g: out[:, gc[g]..) = x W0[:, gc[g]..) */
static void layer0_group(const mlp *m, int g, const float *x, int n, float *out) {
  const int K = m->w[0], c0 = m->gc[g], cw = m->gc[g + 1] - c0;
  gemm_nn(n, cw, K, x, K, m->W[0] + (size_t)K * c0, cw, out + c0, m->wp[1]);
}

/*
 * The training forward's first layer, column groups [g0, g1) of rows [i0, i1) (whole tiles of MR
 * rows), with the gather folded in: the batch's rows are copied into x (bytes, kept for the
 * backward pass; the kernels scale them) one register tile of rows at a time, just before the
 * tile is multiplied, while the image rows of the tiles ahead are prefetched. The rows come from
 * all over the image set, so fetching them is bound by memory latency: here it overlaps the
 * arithmetic, instead of running as a phase of its own. Sums are those of layer0_group.
 *
 * Sparse input (m->sparse): most of an MNIST image is background, about 4 pixels in 5 are 0. A
 * tile's sums then run only over the pixels where one of its rows is not 0 (44% of them for 6
 * MNIST rows), and each row's non-zero pattern is kept (m->NZ) for the backward pass. The
 * skipped products are x * w with x = 0, exactly 0 for a finite w, and adding 0 leaves a sum
 * as it was: the result is the dense one, bit for bit. Returns the number of terms summed. The
 * ReLU follows tile by tile (its dropout waits for the masks, in forward 2).
 */
#define L0_AHEAD (2 * MR)
static size_t layer0_gather(const mlp *m, int g0, int g1, const uint8_t *images, const int32_t *rows, int n, int i0,
                            int i1, uint8_t *x, uint64_t *nz, int32_t *ul, float *out, float *tile) {
  const int K = m->w[0], ldo = m->wp[1];
  size_t terms = 0;
  for (int r = i0; r < i0 + L0_AHEAD && r < n; r++) prefetch_row(images, K, rows[r]);
  for (int i = i0; i < i1; i += MR) {
    const int mr = i1 - i < MR ? i1 - i : MR;
    for (int r = i + L0_AHEAD; r < i + L0_AHEAD + mr && r < n; r++) prefetch_row(images, K, rows[r]);
    uint8_t *xt = x + (size_t)i * K;
    for (int r = 0; r < mr; r++) memcpy(xt + (size_t)r * K, images + (size_t)rows[i + r] * K, (size_t)K);
    const int32_t *idx = NULL;
    int cnt = K;
#if HAVE_SPARSE
    if (m->l0sparse) {
      cnt = tile_nonzero(m, xt, i, mr, nz, ul);
      idx = ul;
    }
#else
    (void)nz;
    (void)ul;
#endif
    terms += (size_t)cnt;
    for (int g = g0; g < g1; g++) {
      const int c0 = m->gc[g], cw = m->gc[g + 1] - c0;
      float *o = (tile ? tile : out + (size_t)i * ldo) + c0;
      gemm_nn8(mr, cw, cnt, idx, xt, K, m->W[0] + (size_t)K * c0, cw, o, ldo);
      bias_relu(o, ldo, m->B[0] + c0, NULL, 0, mr, cw);
    }
    if (tile)
      for (int r = 0; r < mr; r++)
        for (int j = m->gc[g0]; j < m->gc[g1]; j += VW) VSTREAM(out + (size_t)(i + r) * ldo + j, VLOAD(tile + (size_t)r * ldo + j));
  }
  return terms;
}

/* layers of one row block; x [n x in_dim]; writes outs[l] (row stride wp[l+1]) */
static void forward_block(const mlp *m, const float *x, int n, float *const *outs, const float *const *masks) {
  for (int g = 0; g < m->ng; g++) layer0_group(m, g, x, n, outs[0]);
  for (int l = 0; l < m->nl; l++) {
    const int N = m->wp[l + 1];
    if (l > 0) gemm_nn(n, N, m->wp[l], outs[l - 1], m->wp[l], m->W[l], N, outs[l], N);
    bias_relu(outs[l], N, m->B[l], masks ? masks[l] : NULL, N, n, N);
  }
}

static void copy_out(const mlp *m, float *dst, const float *src, int n) {
  unpad_copy(dst, src, n, m->w[m->nl], m->wp[m->nl]);
}

typedef struct {
  mlp *m;
  const uint8_t *images;
  const float *xf;
  const int32_t *rows;
  int n;
  float *out;
  backward_src bw; /* what the backward pass starts from (common.h) */
  uint32_t rng0[4];
  /* roles (two threads): where this step's progress counter starts; whether the first layer
     runs ahead (backward: of the next step; forward: this step's, already) */
  long base;
  int ahead;
} step_ctx;

/* these rows' dropout masks, each layer from its own place in the dropout stream */
static void draw_masks(mlp *m, const step_ctx *c, int r0, int r1) {
  const int n = c->n, nr = r1 - r0;
  if (!m->has_masks || nr <= 0) return;
  const double keep = 1.0 - m->rate;
  const uint64_t thr = (uint64_t)ceil(keep * 4294967296.0);
  const float scale = (float)(1.0 / keep);
  uint64_t off = 0;
  for (int l = 0; l + 1 < m->nl; l++) {
    uint32_t s[4] = {c->rng0[0], c->rng0[1], c->rng0[2], c->rng0[3]};
    xo_jump(s, off + (uint64_t)r0 * m->w[l + 1]);
    /* in blocks of at most 256 rows: each call's SIMD lanes write rows far apart, which alias
       in the L1 cache when too far */
    for (int b = 0; b < nr; b += 256)
      xo_masks(s, nr - b < 256 ? nr - b : 256, m->w[l + 1], m->wp[l + 1], thr, scale, m->M[l] + (size_t)(r0 + b) * m->wp[l + 1]);
    off += (uint64_t)n * m->w[l + 1];
  }
}

/* forward 2 for rows [r0, r1), their masks drawn: the first layer's dropout, the other layers */
static void forward_rows(mlp *m, const step_ctx *c, int r0, int r1) {
  const int nr = r1 - r0;
  if (nr <= 0) return;
  if (m->has_masks) {
    const int N = m->wp[1];
    for (int r = r0; r < r1; r++)
      for (int j = 0; j < N; j += VW) {
        const size_t o = (size_t)r * N + j;
        VSTORE(m->H[0] + o, VLOAD(m->H[0] + o) * VLOAD(m->M[0] + o));
      }
  }
  for (int l = 1; l < m->nl; l++) {
    const int K = m->wp[l], N = m->wp[l + 1];
    float *out = m->H[l] + (size_t)r0 * N;
    gemm_nn(nr, N, K, m->H[l - 1] + (size_t)r0 * K, K, m->W[l], N, out, N);
    bias_relu(out, N, m->B[l], (m->has_masks && l + 1 < m->nl) ? m->M[l] + (size_t)r0 * N : NULL, N, nr, N);
  }
  copy_out(m, c->out + (size_t)r0 * m->w[m->nl], m->H[m->nl - 1] + (size_t)r0 * m->wp[m->nl], nr);
}

/*
 * A training step runs on every thread at once (pool_run_each), each thread on a fixed part of
 * the work, so that what a thread writes in one phase it mostly reads itself in the next:
 *
 *   forward 1   first layer, the thread's column group, all rows: each thread fetches the whole
 *               batch into an input copy of its own (layer0_gather);
 *   forward 2   the thread's rows: dropout masks, the first layer's mask, the other layers;
 *   backward A  the thread's rows: dZ of every layer, from the last down;
 *   backward B  the thread's columns of the first layer's kernel and its rows of the others':
 *               weight gradients, bias sums, the optimizer, the non-finite count.
 *
 * A barrier separates 1 from 2 and A from B. Every output element is still one sum in a fixed
 * order, so results are the same for any number of threads. (A dynamic split of the same work
 * measured 1.3x on two cores: the first layer's kernel and the input moved between the cores'
 * caches every step.) In roles (two threads, see choose_plan) forward 1 and 2 overlap instead,
 * piece by piece of rows, and so do backward A and B.
 */
/*
 * Streamed stores (the plan PLAN_STREAMED): what one thread of roles writes for the other, the
 * first layer's output (thread 1) and its dZ (thread 0), it computes into its own scratch and
 * streams out with non-temporal stores, past its caches. A plain store must first fetch each line
 * from the other core, which read it a step or two before; with the vCPUs far apart that crossing
 * is as slow as memory and costs both threads. The other thread then reads the rows from memory,
 * in order, which the prefetcher serves. (2026-11-30, far vCPUs, C harness, streamed and plain
 * stores alternating every 16 steps in one run: the median step 2.5% to 3.9% shorter for the
 * first layer's output in 7 runs, and 0.5% to 1.1% more for dZ in 3. With the vCPUs close, 4%
 * longer: see choose_plan.)
 */
static float *role_tmp(const mlp *m, int t) { return m->scratch + (size_t)t * m->scratch_per_thread; }

/* thread 1's part of the forward pass in roles: the first layer, all its columns, piece by piece
   of rows, into out, each piece published through the progress counter from base */
static void layer0_role(mlp *m, const uint8_t *images, const int32_t *rows, int n, long base, float *out, int stream) {
  size_t terms = 0;
  for (int i0 = 0, i1; i0 < n; i0 = i1) {
    i1 = forward_piece_end(i0, n);
    terms += layer0_gather(m, 0, m->ng, images, rows, n, i0, i1, m->XB[0], m->NZ[0], m->UL[0], out,
                           stream ? role_tmp(m, 1) : NULL);
    if (stream) STREAM_FENCE();
    __atomic_store_n(&m->progress, base + i1, __ATOMIC_RELEASE);
  }
  m->terms = terms;
#if HAVE_SPARSE
  if (m->l0sparse) pixel_tile_lists(m, 0, n);
#endif
}

static void forward_each(void *vctx, int t, int tid) {
  (void)tid;
  step_ctx *c = (step_ctx *)vctx;
  mlp *m = c->m;
  const int P = m->nthreads, n = c->n;
  if (m->roles) {
    /* two threads in roles: thread 1 the first layer, all its columns, in pieces of rows;
       thread 0 the masks, then each piece's other layers as soon as it is there */
    if (t == 1) {
      /* (run ahead: done already, or going on in the backward pass's task) */
      if (!c->ahead) layer0_role(m, c->images, c->rows, n, c->base, m->H[0], m->streamed);
    } else {
      draw_masks(m, c, 0, n);
      for (int i0 = 0, i1; i0 < n; i0 = i1) {
        i1 = take_rows(m, c->base, i0, n);
        forward_rows(m, c, i0, i1);
      }
    }
    return;
  }
  if (t < m->ng) {
    const size_t terms = layer0_gather(m, t, t + 1, c->images, c->rows, n, 0, n, m->XB[t], m->NZ[t], m->UL[t], m->H[0], NULL);
    if (t == 0) m->terms = terms;
  }
  pool_barrier(m->pool);
#if HAVE_SPARSE
  /* the backward pass's lists: each group's thread builds them all for itself (a few
     microseconds; reading half of them from the other core in the backward pass cost more) */
  if (m->l0sparse && t < m->ng) pixel_tile_lists(m, t, n);
#endif
  int r0, r1;
  split(n, 1, t, P, &r0, &r1);
  draw_masks(m, c, r0, r1);
  forward_rows(m, c, r0, r1);
}

int mlp_forward_train(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, uint32_t rng[4],
                      float *emb_out) {
  if (in_dim != m->w[0] || n < 1) return -1;
  const int ahead = m->ahead && images == m->next_images && n == m->next_n &&
                    memcmp(rows, m->next_rows, (size_t)n * sizeof(int32_t)) == 0;
  if (!ahead) mlp_ahead_end(m);
  if (alloc_rows(m, n) != 0) return -2;
  m->rows = n;
  m->has_masks = m->rate > 0 && m->nl > 1;
  if (ahead) {
    /* thread 1 writes the first layer into H0next, on the path decided for this step */
    m->sparse = m->pre_sparse;
    m->roles = 1;
    m->streamed = m->pre_plan == PLAN_STREAMED;
    float *h = m->H[0];
    m->H[0] = m->H0next;
    m->H0next = h;
  } else {
    int plan = m->pre_plan;
    if (m->pre_valid) {
      m->sparse = m->pre_sparse;
    } else {
      m->sparse = choose_sparse(m);
      plan = choose_plan(m, m->sparse);
    }
    m->roles = plan != PLAN_SPLIT;
    m->streamed = plan == PLAN_STREAMED;
  }
  if (!ahead) m->l0sparse = m->sparse;
  m->pre_valid = 0;
  m->ran_ahead = ahead;
  step_ctx c = {0};
  c.ahead = ahead;
  memcpy(c.rng0, rng, sizeof c.rng0);
  c.m = m;
  c.images = images;
  c.rows = rows;
  c.n = n;
  c.out = emb_out;
  c.base = m->progress_base;
  const long t0 = clock_ns();
  pool_run_each(m->pool, forward_each, &c);
  m->ahead = 0;
  m->step_ns = clock_ns() - t0;
  m->progress_base += n + 1;
  if (m->sparse) m->term_share = (double)m->terms / ((double)((n + MR - 1) / MR) * m->w[0]);
  if (m->has_masks) {
    uint64_t total = 0;
    for (int l = 0; l + 1 < m->nl; l++) total += (uint64_t)n * m->w[l + 1];
    xo_jump(rng, total);
  }
  return 0;
}

/* ---------------------------------------------------------------- backward */

/* the gradient with respect to the embeddings, rows [r0, r1), from pair distances (see
   pair_gradient_rows) */
static void pair_gradient(const mlp *m, const step_ctx *c, int r0, int r1) {
  const int L = m->nl, cp = m->wp[L];
  float *G = m->D[L - 1];
  memset(G + (size_t)r0 * cp, 0, (size_t)(r1 - r0) * cp * sizeof(float));
  pair_gradient_rows(m->H[L - 1], G, m->w[L], cp, &c->bw, r0, r1);
}

/* dZ of every layer for rows [r0, r0 + n) */
static void backward_rows(mlp *m, const step_ctx *c, int r0, int n) {
  const int L = m->nl;
  if (!c->bw.g) {
    /* last layer: dZ = dEmb * [h > 0], dEmb from the pairs */
    pair_gradient(m, c, r0, r0 + n);
    const int cp = m->wp[L];
    for (int r = r0; r < r0 + n; r++) {
      const float *h = m->H[L - 1] + (size_t)r * cp;
      float *d = m->D[L - 1] + (size_t)r * cp;
      for (int j = 0; j < cp; j += VW) VSTORE(d + j, VSELECT(VLOAD(h + j) > 0.0f, VLOAD(d + j)));
    }
  } else {
    /* last layer: dZ = g * [h > 0] */
    const float *demb = c->bw.g;
    const int cols = m->w[L], cp = m->wp[L];
    for (int r = r0; r < r0 + n; r++) {
      const float *g = demb + (size_t)r * cols;
      const float *h = m->H[L - 1] + (size_t)r * cp;
      float *d = m->D[L - 1] + (size_t)r * cp;
      for (int j = 0; j < cols; j++) d[j] = h[j] > 0.0f ? g[j] : 0.0f;
      for (int j = cols; j < cp; j++) d[j] = 0.0f;
    }
  }
  for (int l = L - 1; l >= 1; l--) {
    const int N = m->wp[l + 1], K = m->wp[l];
    /* (in roles the first layer's dZ is for thread 1: streamed, see role_tmp) */
    const int stream = l == 1 && m->roles && m->streamed && (size_t)n * K <= m->scratch_per_thread;
    float *dst = m->D[l - 1] + (size_t)r0 * K;
    float *dprev = stream ? role_tmp(m, 0) : dst;
    /* dH_{l-1} = dZ_l W_l^T */
    gemm_nn(n, K, N, m->D[l] + (size_t)r0 * N, N, m->WT[l], K, dprev, K);
    const float *h = m->H[l - 1] + (size_t)r0 * K;
    const float *mk = m->has_masks ? m->M[l - 1] + (size_t)r0 * K : NULL;
    for (int r = 0; r < n; r++) {
      for (int j = 0; j < K; j += VW) {
        const size_t o = (size_t)r * K + j;
        vf v = VLOAD(dprev + o);
        if (mk) v = v * VLOAD(mk + o);
        v = VSELECT(VLOAD(h + o) > 0.0f, v);
        if (stream)
          VSTREAM(dst + o, v);
        else
          VSTORE(dprev + o, v);
      }
    }
  }
}

/* bias gradient of layer l, columns [j0, j1): sums over the batch rows in order; then the update */
static size_t bias_update(mlp *m, const step_ctx *c, int l, int j0, int j1) {
  const int N = m->wp[l + 1];
  float *gb = m->GB[l];
  const float *D = m->D[l];
  for (int j = j0; j < j1; j += VW) {
    vf s = (vf){0};
    for (int r = 0; r < c->n; r++) s += VLOAD(D + (size_t)r * N + j);
    VSTORE(gb + j, s);
  }
  if (!c->bw.apply || j1 <= j0) return 0;
  return opt_update(c->bw.opt, m->B[l] + j0, gb + j0, m->SB[0][l] + j0, m->SB[1][l] + j0, (size_t)(j1 - j0));
}

/* the first layer's kernel update, column group g, its gradient computed */
static size_t layer0_kernel_update(mlp *m, const step_ctx *c, int g) {
  const int K = m->w[0], c0 = m->gc[g], cw = m->gc[g + 1] - c0;
  const size_t o = (size_t)K * c0, len = (size_t)K * cw;
  if (!c->bw.apply) return 0;
  return opt_update(c->bw.opt, m->W[0] + o, m->GW[0] + o, m->SW[0][0] + o, m->SW[1][0] + o, len);
}

/* the first layer's bias and kernel update, column group g, its kernel gradient computed */
static size_t layer0_update(mlp *m, const step_ctx *c, int g) {
  return bias_update(m, c, 0, m->gc[g], m->gc[g + 1]) + layer0_kernel_update(m, c, g);
}

/* the first layer's kernel gradient, column group g, over the batch rows [r0, r1) (going on from
   the rows before r0), from the batch bytes x and, on the sparse path, the pixel tiles' row lists
   tl/tln (cursor: where the rows before r0 ended in them, or NULL for the whole batch) */
static void layer0_grad(const mlp *m, int g, int r0, int r1, const uint8_t *x, const int32_t *tl, const int *tln,
                        int *cursor) {
  const int K = m->w[0], N = m->wp[1], c0 = m->gc[g], cw = m->gc[g + 1] - c0;
  gemm_tn8(K, cw, r0, r1, m->l0sparse ? tl : NULL, tln, m->cap + 16, cursor, r0 > 0, x, K, m->D[0] + c0, N,
           m->GW[0] + (size_t)K * c0, cw);
}

/* the first layer's gradient and update, column group g, the whole batch */
static size_t layer0_backward(mlp *m, const step_ctx *c, int g, const uint8_t *x, const int32_t *tl, const int *tln) {
  /* the bias first: its sums stream through this group's columns of dZ, rows of which other
     cores wrote, before the kernel's gradient reads them in the sparse path's order */
  const size_t bad = bias_update(m, c, 0, m->gc[g], m->gc[g + 1]);
  layer0_grad(m, g, 0, c->n, x, tl, tln, NULL);
  return bad + layer0_kernel_update(m, c, g);
}

/* the other layers' gradients and updates: part t of P of each kernel's rows (whole cache lines
   of W^T) and of each bias */
static size_t small_backward(mlp *m, const step_ctx *c, int t, int P) {
  size_t bad = 0;
  for (int l = 1; l < m->nl; l++) {
    const int K = m->wp[l], N = m->wp[l + 1];
    int k0, k1, j0, j1;
    split(K, 16, t, P, &k0, &k1);
    split(N, VW, t, P, &j0, &j1);
    if (k1 > k0) {
      gemm_tn(k1 - k0, N, c->n, m->H[l - 1] + k0, K, m->D[l], N, m->GW[l] + (size_t)k0 * N, N);
      if (c->bw.apply) {
        const size_t o = (size_t)k0 * N, len = (size_t)(k1 - k0) * N;
        bad += opt_update(c->bw.opt, m->W[l] + o, m->GW[l] + o, m->SW[0][l] + o, m->SW[1][l] + o, len);
        update_transpose_rows(m, l, k0, k1);
      }
    }
    if (j1 > j0) bad += bias_update(m, c, l, j0, j1);
  }
  return bad;
}

/* thread 1, its part of a backward pass in roles done (and the count of bad weights written):
   the next step's first layer, while thread 0 finishes the other layers and the host works */
static void run_ahead(mlp *m) {
  m->l0sparse = m->pre_sparse;
  /* read before detaching: from then on the caller may take the next forward pass over, which
     swaps H0next with H[0] */
  const uint8_t *images = m->next_images;
  const int32_t *rows = m->next_rows;
  const int n = m->next_n;
  const long base = m->ahead_base;
  float *out = m->H0next;
  const int stream = m->pre_plan == PLAN_STREAMED;
  pool_detach();
  layer0_role(m, images, rows, n, base, out, stream);
  __atomic_store_n(&m->ahead_done, 1, __ATOMIC_RELEASE);
}

static void backward_each(void *vctx, int t, int tid) {
  (void)tid;
  step_ctx *c = (step_ctx *)vctx;
  mlp *m = c->m;
  const int P = m->nthreads, n = c->n;
  size_t bad = 0;
  if (m->roles) {
    /* thread 0 the rows' dZ, piece by piece, then the other layers; thread 1 the first layer's
       gradient over the rows handed over so far, pass after pass, then its update */
    if (t == 0) {
      for (int r0 = 0, r1; r0 < n; r0 = r1) {
        r1 = backward_piece_end(r0, n);
        backward_rows(m, c, r0, r1 - r0);
        if (m->streamed) STREAM_FENCE();
        __atomic_store_n(&m->progress, c->base + r1, __ATOMIC_RELEASE);
      }
      bad += small_backward(m, c, 0, 1);
    } else {
      const int tiles = (m->w[0] + MR - 1) / MR;
      memset(m->cursor, 0, (size_t)tiles * m->ng * sizeof(int));
      for (int r0 = 0, r1; r0 < n; r0 = r1) {
        r1 = take_rows(m, c->base, r0, n);
        /* the new rows' dZ, in order, before the pixel tiles' lists read them out of order (from
           memory or the other core's cache: 1.3% to 2.6% off the median step, far vCPUs, 4
           in-process A/B runs of the C harness; the same for the first layer's output in thread
           0's forward pass changed nothing) */
        for (int r = r0; r < r1; r++)
          for (int j = 0; j < m->wp[1]; j += 64 / (int)sizeof(float)) __builtin_prefetch(m->D[0] + (size_t)r * m->wp[1] + j);
        for (int g = 0; g < m->ng; g++)
          layer0_grad(m, g, r0, r1, m->XB[0], m->TL[0], m->TLn[0], m->cursor + (size_t)g * tiles);
      }
      for (int g = 0; g < m->ng; g++) bad += layer0_update(m, c, g);
    }
    m->bad[(size_t)t * 8] = bad;
    if (t == 1 && c->ahead) run_ahead(m);
    return;
  }
  int r0, r1;
  split(n, 1, t, P, &r0, &r1);
  if (r1 > r0) backward_rows(m, c, r0, r1 - r0);
  pool_barrier(m->pool);
  if (t < m->ng) bad += layer0_backward(m, c, t, m->XB[t], m->TL[t], m->TLn[t]);
  bad += small_backward(m, c, t, P);
  m->bad[(size_t)t * 8] = bad;
}

/* the backward pass with dL/d(embeddings) given (g) or built from pairs (ia, ib, coef) */
static int backward(mlp *m, const float *g, const int32_t *ia, const int32_t *ib, const float *coef, int npairs,
                    const optcfg *opt, int apply) {
  if (m->rows < 1) return -1;
  mlp_ahead_end(m); /* (a second backward pass of the same rows) */
  step_ctx c = {0};
  c.m = m;
  c.n = m->rows;
  c.bw = (backward_src){g, ia, ib, coef, npairs, opt, apply};
  c.base = m->progress_base;
  const int tune_live = m->tune_live, tune_step = m->tune_step;
  if (m->next_valid) {
    /* the next step's path and schedule, decided now; its first layer runs ahead in roles */
    m->next_valid = 0;
    m->pre_sparse = choose_sparse(m);
    m->pre_plan = choose_plan(m, m->pre_sparse);
    m->pre_valid = 1;
    if (m->roles && m->pre_plan != PLAN_SPLIT) {
      c.ahead = 1;
      m->ahead_done = 0;
      m->ahead_base = c.base + m->rows + 1;
    }
  }
  const long t0 = clock_ns();
  pool_run_each(m->pool, backward_each, &c);
  m->ahead = c.ahead;
  tune_record(m, tune_live, tune_step, step_plan(m), m->step_ns + (clock_ns() - t0));
  m->progress_base += m->rows + 1;
  /* the counts cover every weight only after an update */
  m->bad_valid = apply;
  return 0;
}

int mlp_set_next(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n) {
  mlp_ahead_end(m);
  m->next_valid = 0;
  if (in_dim != m->w[0] || n < 1 || n > m->cap) return 0;
  memcpy(m->next_rows, rows, (size_t)n * sizeof(int32_t));
  m->next_images = images;
  m->next_n = n;
  m->next_valid = 1;
  return 1;
}

int mlp_backward(mlp *m, const float *demb, const optcfg *opt, int apply) {
  return backward(m, demb, NULL, NULL, NULL, 0, opt, apply);
}

int mlp_backward_pairs(mlp *m, const int32_t *ia, const int32_t *ib, const float *coef, int npairs,
                       const optcfg *opt, int apply) {
  return backward(m, NULL, ia, ib, coef, npairs, opt, apply);
}

/* ---------------------------------------------------------------- inference */

static void embed_task(void *vctx, int t, int tid) {
  step_ctx *c = (step_ctx *)vctx;
  mlp *m = c->m;
  const int r0 = t * EMBED_BLOCK;
  const int n = c->n - r0 < EMBED_BLOCK ? c->n - r0 : EMBED_BLOCK;
  float *base = m->scratch + (size_t)tid * m->scratch_per_thread;
  int maxw = 0;
  for (int l = 1; l <= m->nl; l++) if (m->wp[l] > maxw) maxw = m->wp[l];
  float *x = base;
  float *ping = base + (size_t)EMBED_BLOCK * m->w[0];
  float *pong = ping + (size_t)EMBED_BLOCK * maxw;
  const float *xin;
  if (c->images) {
    gather_rows(x, c->images, m->w[0], c->rows ? c->rows + r0 : NULL, n);
    xin = x;
  } else {
    xin = c->xf + (size_t)r0 * m->w[0];
  }
  float *outs[MAX_LAYERS];
  for (int l = 0; l < m->nl; l++) outs[l] = l % 2 == 0 ? ping : pong;
  forward_block(m, xin, n, outs, NULL);
  copy_out(m, c->out + (size_t)r0 * m->w[m->nl], outs[m->nl - 1], n);
}

/* embeddings of images[rows] (bytes) or of x (floats), in row blocks over the pool */
static void embed(mlp *m, const uint8_t *images, const int32_t *rows, const float *x, int n, float *out) {
  mlp_ahead_end(m);
  if (n < 1) return;
  step_ctx c = {0};
  c.m = m;
  c.images = images;
  c.rows = rows;
  c.xf = x;
  c.n = n;
  c.out = out;
  pool_run(m->pool, embed_task, &c, (n + EMBED_BLOCK - 1) / EMBED_BLOCK);
}

int mlp_embed(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, float *out) {
  if (in_dim != m->w[0]) return -1;
  embed(m, images, rows, NULL, n, out);
  return 0;
}

int mlp_embed_float(mlp *m, const float *x, int n, float *out) {
  embed(m, NULL, NULL, x, n, out);
  return 0;
}
