/*
 * The MLP: forward with dropout (masks drawn from the project's xoshiro128** stream, exactly as
 * src/model/dropout.ts draws them), backward to weight gradients, and the optimizer update,
 * spread over a thread pool.
 *
 * A training step is three parallel phases:
 *   forward  (row blocks)  gather + scale the images, then every layer for those rows;
 *   backward A (row blocks) dZ of every layer, from the last down: dZ_l-1 = (dZ_l W_l^T) * mask * [h > 0];
 *   backward B (weight-row blocks) dW_l rows = X_l^T dZ_l, bias sums, then the optimizer on those rows.
 * Rows never interact in the forward pass or in backward A, and each weight row of backward B
 * sums over all batch rows in order, so results are the same for any thread count.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "siamese.h"

#define ROUND_UP(x, m) ((((x) + (m)-1) / (m)) * (m))

static float u8_scale[256];
static int u8_div_ok = 0;
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

static void init_scale(void) { pthread_once(&u8_once, init_scale_once); }

static void *falloc(size_t n) {
  size_t bytes = ROUND_UP(n * sizeof(float) + 64, 64);
  void *p = aligned_alloc(64, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

/* ---------------------------------------------------------------- GEMM drivers (tails) */

#define NN_CASE(mr, nv) \
  case (mr)*16 + (nv): knn(mr, nv, K, A, lda, B, ldb, C, ldc); break;
#define TN_CASE(mr, nv) \
  case (mr)*16 + (nv): ktn(mr, nv, K, A, lda, B, ldb, C, ldc); break;

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

static void tile_nn(int mr, int nv, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  switch (mr * 16 + nv) { ALL_CASES(NN_CASE) default: break; }
}
static void tile_tn(int mr, int nv, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  switch (mr * 16 + nv) { ALL_CASES(TN_CASE) default: break; }
}

/* C[M x N] = A[M x K] B[K x N]; N a multiple of VW */
static void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  const int nvec = N / VW;
  for (int i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? M - i : MR;
    for (int j = 0; j < nvec; j += NV) {
      const int nv = nvec - j < NV ? nvec - j : NV;
      tile_nn(mr, nv, K, A + (size_t)i * lda, lda, B + j * VW, ldb, C + (size_t)i * ldc + j * VW, ldc);
    }
  }
}

/* C[k0..k0+M) x N] = A[:, k0..k0+M)^T B; A is [K x lda], B [K x N] */
static void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  const int nvec = N / VW;
  for (int i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? M - i : MR;
    for (int j = 0; j < nvec; j += NV) {
      const int nv = nvec - j < NV ? nvec - j : NV;
      tile_tn(mr, nv, K, A + i, lda, B + j * VW, ldb, C + (size_t)i * ldc + j * VW, ldc);
    }
  }
}

/* ---------------------------------------------------------------- model */

static int alloc_rows(mlp *m, int rows) {
  if (rows <= m->cap) return 0;
  int cap = ROUND_UP(rows, 64);
  free(m->X);
  m->X = (float *)falloc((size_t)cap * m->w[0]);
  if (!m->X) return -1;
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
  m->nthreads = threads < 1 ? 1 : threads;
  if (!ok || alloc_rows(m, 256) != 0 || alloc_scratch(m) != 0) {
    mlp_destroy(m);
    return NULL;
  }
  m->pool = pool_create(m->nthreads);
  m->nthreads = pool_threads(m->pool);
  return m;
}

void mlp_destroy(mlp *m) {
  if (!m) return;
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
  free(m->X);
  free(m->scratch);
  free(m);
}

int mlp_set_threads(mlp *m, int threads) {
  if (threads < 1) threads = 1;
  if (threads == m->nthreads) return 0;
  pool_destroy(m->pool);
  m->pool = pool_create(threads);
  m->nthreads = pool_threads(m->pool);
  return alloc_scratch(m);
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

static void update_transpose_rows(mlp *m, int l, int k0, int k1) {
  if (l == 0) return;
  const int K = m->wp[l], N = m->wp[l + 1];
  const float *W = m->W[l];
  float *T = m->WT[l];
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
  if (idx % 2 == 0) unpad_copy(dst, src, m->w[l], m->w[l + 1], m->wp[l + 1]);
  else memcpy(dst, src, (size_t)m->w[l + 1] * sizeof(float));
}
static void set_padded(const mlp *m, int idx, const float *src, float *dst) {
  int l = idx / 2;
  if (idx % 2 == 0) pad_copy(dst, src, m->w[l], m->w[l + 1], m->wp[l + 1]);
  else {
    memcpy(dst, src, (size_t)m->w[l + 1] * sizeof(float));
    for (int c = m->w[l + 1]; c < m->wp[l + 1]; c++) dst[c] = 0.0f;
  }
}

void mlp_set_param(mlp *m, int idx, const float *src) {
  set_padded(m, idx, src, param_ptr(m, idx, m->W, m->B));
  if (idx % 2 == 0) update_transpose_rows(m, idx / 2, 0, m->wp[idx / 2]);
}
void mlp_get_param(const mlp *m, int idx, float *dst) { get_padded(m, idx, param_ptr(m, idx, m->W, m->B), dst); }
void mlp_get_grad(const mlp *m, int idx, float *dst) { get_padded(m, idx, param_ptr(m, idx, m->GW, m->GB), dst); }
void mlp_get_slot(const mlp *m, int slot, int idx, float *dst) {
  get_padded(m, idx, param_ptr(m, idx, m->SW[slot], m->SB[slot]), dst);
}
void mlp_set_slot(mlp *m, int slot, int idx, const float *src) {
  set_padded(m, idx, src, param_ptr(m, idx, m->SW[slot], m->SB[slot]));
}
void mlp_zero_slots(mlp *m) {
  for (int s = 0; s < MAX_SLOTS; s++)
    for (int l = 0; l < m->nl; l++) {
      memset(m->SW[s][l], 0, (size_t)m->wp[l] * m->wp[l + 1] * sizeof(float));
      memset(m->SB[s][l], 0, (size_t)m->wp[l + 1] * sizeof(float));
    }
}

/* NaN or Inf: all exponent bits set. A bit test, not isfinite(), so the compiler vectorises it:
 * the trainer scans the weights after every batch. */
static size_t count_nonfinite(const float *x, size_t n) {
  const uint32_t *u = (const uint32_t *)(const void *)x;
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += (u[i] & 0x7f800000u) == 0x7f800000u;
  return bad;
}

size_t mlp_nonfinite(const mlp *m) {
  size_t bad = 0;
  for (int l = 0; l < m->nl; l++) {
    bad += count_nonfinite(m->W[l], (size_t)m->wp[l] * m->wp[l + 1]);
    bad += count_nonfinite(m->B[l], (size_t)m->wp[l + 1]);
  }
  return bad;
}

/* ---------------------------------------------------------------- forward */

/*
 * Rows of a byte image set as float32 in [0, 1]. x / 255.0f in float equals TypeScript's
 * byte / 255 (computed in float64, then stored in a Float32Array) for all 256 bytes, which
 * check_scale() verifies once; the division is then vectorized. Rows come from all over a large
 * array (a shuffled batch), so the next rows are prefetched while this one converts.
 */
typedef uint8_t vb __attribute__((vector_size(VW)));

#define PREFETCH_AHEAD 4

static void gather_rows(float *dst, const uint8_t *images, int in_dim, const int32_t *rows, int n) {
  const vf d255 = (vf){0} + 255.0f;
  for (int r = 0; r < n; r++) {
    if (r + PREFETCH_AHEAD < n) {
      const char *ahead = (const char *)(images + (size_t)rows[r + PREFETCH_AHEAD] * in_dim);
      for (int o = 0; o < in_dim; o += 64) __builtin_prefetch(ahead + o);
    }
    const uint8_t *src = images + (size_t)rows[r] * in_dim;
    float *d = dst + (size_t)r * in_dim;
    int j = 0;
    if (u8_div_ok) {
      for (; j + VW <= in_dim; j += VW) {
        vb b;
        __builtin_memcpy(&b, src + j, sizeof b);
        const vf x = __builtin_convertvector(b, vf) / d255;
        __builtin_memcpy(d + j, &x, sizeof x);
      }
    }
    for (; j < in_dim; j++) d[j] = u8_scale[src[j]];
  }
}

/* out = relu(out + b) (* mask), one row block */
static void bias_relu(float *out, const float *b, const float *mask, int rows, int cols_p) {
  for (int r = 0; r < rows; r++) {
    float *o = out + (size_t)r * cols_p;
    const float *mk = mask ? mask + (size_t)r * cols_p : NULL;
    for (int c = 0; c < cols_p; c += VW) {
      vf v = VLOAD(o + c) + VLOAD(b + c);
      v = VSELECT(v > 0.0f, v);
      if (mk) v = v * VLOAD(mk + c);
      VSTORE(o + c, v);
    }
  }
}

/* layers of one row block; x [n x in_dim]; writes outs[l] (row stride wp[l+1]) */
static void forward_block(const mlp *m, const float *x, int n, float *const *outs, const float *const *masks) {
  const float *in = x;
  int lda = m->w[0];
  for (int l = 0; l < m->nl; l++) {
    const int N = m->wp[l + 1];
    gemm_nn(n, N, l == 0 ? m->w[0] : m->wp[l], in, lda, m->W[l], N, outs[l], N);
    bias_relu(outs[l], m->B[l], masks ? masks[l] : NULL, n, N);
    in = outs[l];
    lda = N;
  }
}

static void copy_out(const mlp *m, float *dst, const float *src, int n) {
  unpad_copy(dst, src, n, m->w[m->nl], m->wp[m->nl]);
}

typedef struct {
  mlp *m;
  const uint8_t *images;
  const float *xf;
  int in_dim;
  const int32_t *rows;
  int n, block;
  float *out;
  const float *g;
  const optcfg *opt;
  int apply;
  uint32_t rng0[4];
  /* backward B task table */
  int ntask_w[MAX_LAYERS];
} step_ctx;

/* rows per task: about 4 equal tasks per thread (tasks are handed out dynamically), at least
   2 register tiles, at most 96 rows (the block's activations stay in L2) */
static int block_rows(int n, int threads) {
  int tasks = 4 * threads;
  if (n / tasks > 96) tasks = (n + 95) / 96;
  int per = (n + tasks - 1) / tasks;
  if (per < 2 * MR) per = 2 * MR;
  return per;
}

static void fwd_train_task(void *vctx, int t, int tid) {
  (void)tid;
  step_ctx *c = (step_ctx *)vctx;
  mlp *m = c->m;
  const int r0 = t * c->block;
  const int n = c->n - r0 < c->block ? c->n - r0 : c->block;
  if (m->has_masks) {
    /* this block's masks, each layer from its own place in the dropout stream */
    const double keep = 1.0 - m->rate;
    const uint64_t thr = (uint64_t)ceil(keep * 4294967296.0);
    const float scale = (float)(1.0 / keep);
    uint64_t off = 0;
    for (int l = 0; l + 1 < m->nl; l++) {
      uint32_t s[4] = {c->rng0[0], c->rng0[1], c->rng0[2], c->rng0[3]};
      xo_jump(s, off + (uint64_t)r0 * m->w[l + 1]);
      xo_masks(s, n, m->w[l + 1], m->wp[l + 1], thr, scale, m->M[l] + (size_t)r0 * m->wp[l + 1]);
      off += (uint64_t)c->n * m->w[l + 1];
    }
  }
  float *x = m->X + (size_t)r0 * m->w[0];
  gather_rows(x, c->images, m->w[0], c->rows + r0, n);
  float *outs[MAX_LAYERS];
  const float *masks[MAX_LAYERS];
  for (int l = 0; l < m->nl; l++) {
    outs[l] = m->H[l] + (size_t)r0 * m->wp[l + 1];
    masks[l] = (m->has_masks && l + 1 < m->nl) ? m->M[l] + (size_t)r0 * m->wp[l + 1] : NULL;
  }
  forward_block(m, x, n, outs, masks);
  copy_out(m, c->out + (size_t)r0 * m->w[m->nl], outs[m->nl - 1], n);
}

int mlp_forward_train(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, uint32_t rng[4],
                      float *emb_out) {
  if (in_dim != m->w[0] || n < 1) return -1;
  if (alloc_rows(m, n) != 0) return -2;
  m->rows = n;
  m->has_masks = m->rate > 0 && m->nl > 1;
  step_ctx c = {0};
  memcpy(c.rng0, rng, sizeof c.rng0);
  c.m = m;
  c.images = images;
  c.in_dim = in_dim;
  c.rows = rows;
  c.n = n;
  c.block = block_rows(n, m->nthreads);
  c.out = emb_out;
  pool_run(m->pool, fwd_train_task, &c, (n + c.block - 1) / c.block);
  if (m->has_masks) {
    uint64_t total = 0;
    for (int l = 0; l + 1 < m->nl; l++) total += (uint64_t)n * m->w[l + 1];
    xo_jump(rng, total);
  }
  return 0;
}

/* ---------------------------------------------------------------- backward */

static void bwd_rows_task(void *vctx, int t, int tid) {
  (void)tid;
  step_ctx *c = (step_ctx *)vctx;
  mlp *m = c->m;
  const int r0 = t * c->block;
  const int n = c->n - r0 < c->block ? c->n - r0 : c->block;
  const int L = m->nl;
  /* last layer: dZ = g * [h > 0] */
  {
    const int cols = m->w[L], cp = m->wp[L];
    for (int r = r0; r < r0 + n; r++) {
      const float *g = c->g + (size_t)r * cols;
      const float *h = m->H[L - 1] + (size_t)r * cp;
      float *d = m->D[L - 1] + (size_t)r * cp;
      for (int j = 0; j < cols; j++) d[j] = h[j] > 0.0f ? g[j] : 0.0f;
      for (int j = cols; j < cp; j++) d[j] = 0.0f;
    }
  }
  for (int l = L - 1; l >= 1; l--) {
    const int N = m->wp[l + 1], K = m->wp[l];
    float *dprev = m->D[l - 1] + (size_t)r0 * K;
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
        VSTORE(dprev + o, v);
      }
    }
  }
}

/* weight rows per backward-B task: small for the big first layer (load balance); for layers
   with a transpose a multiple of 16 floats, so two tasks never write one cache line of W^T */
static int wblock(int l) { return l == 0 ? MR * 4 : MR * 8; }

static void bwd_weights_task(void *vctx, int t, int tid) {
  (void)tid;
  step_ctx *c = (step_ctx *)vctx;
  mlp *m = c->m;
  const int n = c->n;
  int l = 0;
  while (l < m->nl && t >= c->ntask_w[l]) {
    t -= c->ntask_w[l];
    l++;
  }
  if (l < m->nl) {
    const int K = m->wp[l], N = m->wp[l + 1];
    const int k0 = t * wblock(l);
    const int k1 = k0 + wblock(l) < K ? k0 + wblock(l) : K;
    const float *A = l == 0 ? m->X : m->H[l - 1];
    gemm_tn(k1 - k0, N, n, A + k0, K, m->D[l], N, m->GW[l] + (size_t)k0 * N, N);
    if (c->apply) {
      const size_t o = (size_t)k0 * N, len = (size_t)(k1 - k0) * N;
      opt_update(c->opt, m->W[l] + o, m->GW[l] + o, m->SW[0][l] + o, m->SW[1][l] + o, len);
      update_transpose_rows(m, l, k0, k1);
    }
    return;
  }
  /* bias tasks, one per layer */
  l = t;
  const int N = m->wp[l + 1];
  float *gb = m->GB[l];
  const float *D = m->D[l];
  for (int j = 0; j < N; j += VW) {
    vf s = (vf){0};
    for (int r = 0; r < n; r++) s += VLOAD(D + (size_t)r * N + j);
    VSTORE(gb + j, s);
  }
  if (c->apply) opt_update(c->opt, m->B[l], gb, m->SB[0][l], m->SB[1][l], (size_t)N);
}

#ifdef SIAMESE_PROFILE
#include <time.h>
double prof_phase[4];
static double prof_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}
#define PROF_MARK(i, t0)                 \
  do {                                   \
    double t1_ = prof_now();             \
    prof_phase[i] += t1_ - (t0);         \
    (t0) = t1_;                          \
  } while (0)
#else
#define PROF_MARK(i, t0) ((void)0)
#endif

int mlp_backward(mlp *m, const float *demb, const optcfg *opt, int apply) {
  if (m->rows < 1) return -1;
#ifdef SIAMESE_PROFILE
  double pt = prof_now();
#endif
  step_ctx c = {0};
  c.m = m;
  c.n = m->rows;
  c.block = block_rows(c.n, m->nthreads);
  c.g = demb;
  c.opt = opt;
  c.apply = apply;
  pool_run(m->pool, bwd_rows_task, &c, (c.n + c.block - 1) / c.block);
  PROF_MARK(0, pt);
  int tasks = 0;
  for (int l = 0; l < m->nl; l++) {
    c.ntask_w[l] = (m->wp[l] + wblock(l) - 1) / wblock(l);
    tasks += c.ntask_w[l];
  }
  pool_run(m->pool, bwd_weights_task, &c, tasks + m->nl);
  PROF_MARK(1, pt);
  return 0;
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

int mlp_embed(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, float *out) {
  if (in_dim != m->w[0]) return -1;
  if (n < 1) return 0;
  step_ctx c = {0};
  c.m = m;
  c.images = images;
  c.in_dim = in_dim;
  c.rows = rows;
  c.n = n;
  c.out = out;
  pool_run(m->pool, embed_task, &c, (n + EMBED_BLOCK - 1) / EMBED_BLOCK);
  return 0;
}

int mlp_embed_float(mlp *m, const float *x, int n, float *out) {
  if (n < 1) return 0;
  step_ctx c = {0};
  c.m = m;
  c.xf = x;
  c.n = n;
  c.out = out;
  pool_run(m->pool, embed_task, &c, (n + EMBED_BLOCK - 1) / EMBED_BLOCK);
  return 0;
}

/* ---------------------------------------------------------------- host tail helpers */

/* D[i] = sqrt(max(sum_j (e[ia[i]] - e[ib[i]])^2, floor)), sums in float64 (sq), in 8 partial sums */
typedef double vd8 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));

void tail_distances(const float *emb, int dim, const int32_t *ia, const int32_t *ib, int n, double floor_,
                    float *d, double *sq) {
  for (int i = 0; i < n; i++) {
    const float *a = emb + (size_t)ia[i] * dim;
    const float *b = emb + (size_t)ib[i] * dim;
    vd8 acc = {0};
    int j = 0;
    for (; j + 8 <= dim; j += 8) {
      vf8 x, y;
      __builtin_memcpy(&x, a + j, sizeof x);
      __builtin_memcpy(&y, b + j, sizeof y);
      const vd8 t = __builtin_convertvector(x, vd8) - __builtin_convertvector(y, vd8);
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
