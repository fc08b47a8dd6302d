/*
 * The convolutional base network (see cnn.h): a training step as three jobs of small tasks on the
 * thread pool, each task taken by whichever thread is free (pool_run):
 *
 *   forward          8 images a task: blocks (im2col, GEMM, bias + ReLU, pooling with argmax),
 *                    dropout masks from the stream's place of its rows, the dense head, the output;
 *   backward A + B   8 images a task: dL/d(embeddings) from the pairs, the head's dZ and input
 *                    gradient, then block by block from the last but the first: the input
 *                    gradient from the pooled gradients (dZ W^T from dZ's non-zeros, then col2im);
 *                    then the filter and bias gradients' partial sums of the chunks of images it
 *                    holds, from dZ's non-zeros;
 *   backward C       48 kernel rows of one layer a task (and one task for every bias): the
 *                    chunks' sums in order, X^T dZ for the head; the optimizer and transposes.
 *
 * Every output element is computed by one task as one sum in a fixed order: any thread count,
 * and any order of the tasks, gives the same bits.
 */
#include "cnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conv.h"
#include "gemm.h"

#define EMBED_BLOCK 16 /* images per inference task */

/*
 * A convolution's gradients sum over every position of every image of the batch (MNIST: 173,056
 * terms for the first block at 256 rows): one float32 sum that long drifts by up to ~1e-4 of
 * its terms' size (TF.js sums the first block's in float64). So they are summed in two levels:
 * each chunk of whole images (about CHUNK_TERMS terms) on its own, then the chunks' sums in
 * order: the error of a few hundred terms, and the order still fixed for any thread count.
 */
#define CHUNK_TERMS 1024

/*
 * A training step is three jobs of small tasks handed out to whichever thread is free (pool_run):
 * the forward pass and backward A + B in tasks of TASK_IMAGES images, backward C in tasks of
 * TASK_ROWS kernel rows. When the host takes a core away from one thread for a while, the other
 * takes on the remaining tasks instead of waiting at a barrier for the first thread's fixed
 * share (see docs/native-cnn.md: no schedule helps when the host gives the process one core).
 * TASK_ROWS: a multiple of 16 (a cache line of floats, for the transposes' columns) and of MR.
 */
#define TASK_IMAGES 8
#define TASK_ROWS 48

#define LIMIT (1 << 14)

const char *cnn_shape_error(int h, int w, int c, int k, int emb, const int *filters, int nb) {
  if (nb < 1 || nb > CNN_MAX_BLOCKS) return "the native cnn takes 1 to 4 convolution blocks";
  if (h < 1 || w < 1 || c < 1 || h > LIMIT || w > LIMIT || c > 64) return "image size must be 1..16384 x 1..16384 x 1..64";
  if (k < 1 || k > 15) return "kernel size must be in 1..15";
  if (emb < 1 || emb > 65536) return "embedding size must be in 1..65536";
  for (int b = 0; b < nb; b++) {
    if (filters[b] < 1 || filters[b] > 4096) return "filters must be in 1..4096";
    const int oh = h - k + 1, ow = w - k + 1;
    if (oh < 2 || ow < 2) return "the images are too small for the convolution blocks (a block leaves nothing)";
    h = oh / 2;
    w = ow / 2;
  }
  if ((double)h * w * filters[nb - 1] > (1 << 24)) return "too many features before the dense head";
  return NULL;
}

static void free_batch(cnn *m) {
  for (int b = 0; b < m->nb; b++) {
    free(m->col[b]);
    free(m->P[b]);
    free(m->A[b]);
    free(m->G[b]);
    free(m->PW[b]);
    free(m->PB[b]);
    m->col[b] = m->P[b] = m->G[b] = m->PW[b] = m->PB[b] = NULL;
    m->A[b] = NULL;
  }
  free(m->X);
  free(m->M);
  free(m->E);
  free(m->DE);
  free(m->DX);
  m->X = m->M = m->E = m->DE = m->DX = NULL;
  m->cap = 0;
}

static int alloc_batch(cnn *m, int rows) {
  if (rows <= m->cap) return 0;
  free_batch(m);
  const int cap = ROUND_UP(rows, 16);
  int ok = 1;
  for (int b = 0; b < m->nb; b++) {
    const size_t conv = (size_t)m->oh[b] * m->ow[b], pooled = (size_t)m->ph[b] * m->pw[b] * m->C[b];
    m->col[b] = (float *)falloc((size_t)cap * conv * m->RP[b]);
    m->A[b] = (int32_t *)falloc((size_t)cap * pooled);
    m->P[b] = b + 1 < m->nb ? (float *)falloc((size_t)cap * pooled) : NULL;
    m->G[b] = b + 1 < m->nb ? (float *)falloc((size_t)cap * pooled) : NULL;
    const size_t chunks = (size_t)(cap + m->ipc[b] - 1) / m->ipc[b];
    m->PW[b] = (float *)falloc(chunks * m->CP[b] * m->RP[b]);
    m->PB[b] = (float *)falloc(chunks * m->CP[b]);
    ok = ok && m->col[b] && m->A[b] && (b + 1 == m->nb || (m->P[b] && m->G[b])) && m->PW[b] && m->PB[b];
  }
  const int F = m->RP[m->nb], E = m->CP[m->nb];
  m->X = (float *)falloc((size_t)cap * F);
  m->M = (float *)falloc((size_t)cap * F);
  m->DX = (float *)falloc((size_t)cap * F);
  m->E = (float *)falloc((size_t)cap * E);
  m->DE = (float *)falloc((size_t)cap * E);
  if (!ok || !m->X || !m->M || !m->DX || !m->E || !m->DE) {
    free_batch(m);
    return -1;
  }
  m->cap = cap;
  return 0;
}

/* per-thread scratch: an image as floats, one image's im2col rows (or their gradient) and
   convolution output, two pooled maps (or their gradients), and a block of inference rows */
typedef struct {
  float *x, *col, *z, *g0, *g1, *X, *E;
} scratch_t;

static size_t scratch_layout(const cnn *m, float *base, scratch_t *s) {
  size_t col = 0, z = 0, g = 0;
  for (int b = 0; b < m->nb; b++) {
    const size_t conv = (size_t)m->oh[b] * m->ow[b];
    if (conv * m->RP[b] > col) col = conv * m->RP[b];
    if (conv * m->CP[b] > z) z = conv * m->CP[b];
    const size_t in = (size_t)m->ih[b] * m->iw[b] * m->ic[b], out = (size_t)m->ph[b] * m->pw[b] * m->C[b];
    if (in > g) g = in;
    if (out > g) g = out;
  }
  const size_t sizes[7] = {(size_t)m->h * m->w * m->c, col, z, g, g, (size_t)EMBED_BLOCK * m->RP[m->nb],
                           (size_t)EMBED_BLOCK * m->CP[m->nb]};
  float **dst[7] = {&s->x, &s->col, &s->z, &s->g0, &s->g1, &s->X, &s->E};
  size_t off = 0;
  for (int i = 0; i < 7; i++) {
    if (base) *dst[i] = base + off;
    off += ROUND_UP(sizes[i], 16);
  }
  return off;
}

static scratch_t thread_scratch(const cnn *m, int tid) {
  scratch_t s;
  scratch_layout(m, m->scratch + (size_t)tid * m->scratch_per_thread, &s);
  return s;
}

static int alloc_threads(cnn *m, int threads) {
  pool_destroy(m->pool);
  free(m->scratch);
  free(m->bad);
  m->pool = pool_create(threads < 1 ? 1 : threads);
  m->nthreads = pool_threads(m->pool);
  scratch_t s;
  m->scratch_per_thread = scratch_layout(m, NULL, &s);
  m->scratch = (float *)falloc(m->scratch_per_thread * (size_t)m->nthreads);
  m->bad = (size_t *)calloc((size_t)m->nthreads * 8, sizeof(size_t));
  m->bad_valid = 0;
  return m->pool && m->scratch && m->bad ? 0 : -1;
}

cnn *cnn_create(int h, int w, int c, int k, int emb, const int *filters, int nb, double rate, int threads) {
  if (cnn_shape_error(h, w, c, k, emb, filters, nb)) return NULL;
  init_scale();
  xo_init();
  cnn *m = (cnn *)calloc(1, sizeof(cnn));
  if (!m) return NULL;
  m->h = h;
  m->w = w;
  m->c = c;
  m->k = k;
  m->nb = nb;
  m->nl = nb + 1;
  m->rate = rate;
  int ih = h, iw = w, ic = c;
  for (int b = 0; b < nb; b++) {
    m->ih[b] = ih;
    m->iw[b] = iw;
    m->ic[b] = ic;
    m->oh[b] = ih - k + 1;
    m->ow[b] = iw - k + 1;
    m->ph[b] = m->oh[b] / 2;
    m->pw[b] = m->ow[b] / 2;
    m->R[b] = k * k * ic;
    m->C[b] = filters[b];
    const int per = m->oh[b] * m->ow[b];
    /* a power of two up to TASK_IMAGES, so that a task's images hold whole chunks */
    m->ipc[b] = 1;
    while (m->ipc[b] * 2 <= TASK_IMAGES && m->ipc[b] * 2 * per <= CHUNK_TERMS) m->ipc[b] *= 2;
    ih = m->ph[b];
    iw = m->pw[b];
    ic = filters[b];
  }
  m->R[nb] = ih * iw * ic;
  m->C[nb] = emb;
  int ok = 1;
  for (int l = 0; l < m->nl; l++) {
    m->RP[l] = ROUND_UP(m->R[l], VW);
    m->CP[l] = ROUND_UP(m->C[l], VW);
    const size_t kn = (size_t)m->RP[l] * m->CP[l];
    m->W[l] = (float *)falloc(kn);
    m->GW[l] = (float *)falloc(kn);
    m->WT[l] = l > 0 ? (float *)falloc(kn) : NULL;
    m->B[l] = (float *)falloc(m->CP[l]);
    m->GB[l] = (float *)falloc(m->CP[l]);
    ok = ok && m->W[l] && m->GW[l] && (l == 0 || m->WT[l]) && m->B[l] && m->GB[l];
    for (int s = 0; s < MAX_SLOTS; s++) {
      m->SW[s][l] = (float *)falloc(kn);
      m->SB[s][l] = (float *)falloc(m->CP[l]);
      ok = ok && m->SW[s][l] && m->SB[s][l];
    }
  }
  if (!ok || alloc_threads(m, threads) != 0 || alloc_batch(m, 64) != 0) {
    cnn_destroy(m);
    return NULL;
  }
  return m;
}

void cnn_destroy(cnn *m) {
  if (!m) return;
  pool_destroy(m->pool);
  free_batch(m);
  for (int l = 0; l < m->nl; l++) {
    free(m->W[l]);
    free(m->GW[l]);
    free(m->WT[l]);
    free(m->B[l]);
    free(m->GB[l]);
    for (int s = 0; s < MAX_SLOTS; s++) {
      free(m->SW[s][l]);
      free(m->SB[s][l]);
    }
  }
  free(m->scratch);
  free(m->bad);
  free(m);
}

int cnn_set_threads(cnn *m, int threads) {
  if (threads < 1) threads = 1;
  if (threads == m->nthreads) return 0;
  return alloc_threads(m, threads);
}

/* ---------------------------------------------------------------- parameters */

size_t cnn_param_size(const cnn *m, int idx) {
  const int l = idx / 2;
  if (idx < 0 || l >= m->nl) return 0;
  return idx % 2 == 0 ? (size_t)m->R[l] * m->C[l] : (size_t)m->C[l];
}

/* WT[l] = W[l]^T for kernel rows [k0, k1) */
static void transpose_rows(cnn *m, int l, int k0, int k1) {
  if (l == 0) return;
  const int K = m->RP[l], N = m->CP[l];
  for (int n = 0; n < N; n++)
    for (int k = k0; k < k1; k++) m->WT[l][(size_t)n * K + k] = m->W[l][(size_t)k * N + n];
}

static float *param_ptr(float *const *Ws, float *const *Bs, int idx) { return idx % 2 == 0 ? Ws[idx / 2] : Bs[idx / 2]; }

/* unpadded [R x C] (or [C]) <-> padded [RP x CP] (or [CP]); the padding stays zero */
static void put(const cnn *m, int idx, const float *src, float *dst) {
  const int l = idx / 2, R = idx % 2 == 0 ? m->R[l] : 1, C = m->C[l], CP = m->CP[l];
  for (int r = 0; r < R; r++) memcpy(dst + (size_t)r * CP, src + (size_t)r * C, (size_t)C * sizeof(float));
}
static void get(const cnn *m, int idx, const float *src, float *dst) {
  const int l = idx / 2, R = idx % 2 == 0 ? m->R[l] : 1, C = m->C[l], CP = m->CP[l];
  for (int r = 0; r < R; r++) memcpy(dst + (size_t)r * C, src + (size_t)r * CP, (size_t)C * sizeof(float));
}

void cnn_set_param(cnn *m, int idx, const float *src) {
  m->bad_valid = 0;
  put(m, idx, src, param_ptr(m->W, m->B, idx));
  if (idx % 2 == 0) transpose_rows(m, idx / 2, 0, m->RP[idx / 2]);
}
void cnn_get_param(const cnn *m, int idx, float *dst) { get(m, idx, param_ptr(m->W, m->B, idx), dst); }
void cnn_get_grad(const cnn *m, int idx, float *dst) { get(m, idx, param_ptr(m->GW, m->GB, idx), dst); }
void cnn_get_slot(const cnn *m, int slot, int idx, float *dst) { get(m, idx, param_ptr(m->SW[slot], m->SB[slot], idx), dst); }
void cnn_set_slot(cnn *m, int slot, int idx, const float *src) { put(m, idx, src, param_ptr(m->SW[slot], m->SB[slot], idx)); }

void cnn_zero_slots(cnn *m) {
  for (int s = 0; s < MAX_SLOTS; s++)
    for (int l = 0; l < m->nl; l++) {
      memset(m->SW[s][l], 0, (size_t)m->RP[l] * m->CP[l] * sizeof(float));
      memset(m->SB[s][l], 0, (size_t)m->CP[l] * sizeof(float));
    }
}

size_t cnn_nonfinite(const cnn *m) {
  size_t bad = 0;
  if (m->bad_valid) {
    for (int t = 0; t < m->nthreads; t++) bad += m->bad[(size_t)t * 8];
    return bad;
  }
  for (int l = 0; l < m->nl; l++) {
    const size_t kn = (size_t)m->RP[l] * m->CP[l];
    for (size_t i = 0; i < kn; i++) bad += nonfinite(m->W[l][i]);
    for (int i = 0; i < m->CP[l]; i++) bad += nonfinite(m->B[l][i]);
  }
  return bad;
}

/* ---------------------------------------------------------------- forward */

static void image_floats(const cnn *m, const uint8_t *img, float *x) {
  const int n = m->h * m->w * m->c;
  for (int j = 0; j < n; j++) x[j] = u8_scale[img[j]];
}

/*
 * The blocks of one image x: block b builds its im2col rows in col[b], its convolution output in
 * z[b], pools into pin[b] (the last block into out, the flattened features) with the argmax in
 * arg[b] (arg NULL: none kept).
 */
static void blocks_forward(const cnn *m, const float *x, float *const *col, float *const *z, float *const *pin,
                           int32_t *const *arg, float *out) {
  const float *in = x;
  for (int b = 0; b < m->nb; b++) {
    const int P = m->oh[b] * m->ow[b], K = m->RP[b], N = m->CP[b];
    conv_im2col(in, m->ih[b], m->iw[b], m->ic[b], m->k, col[b], K);
    /* over the R real terms: the padding columns of col and rows of W are zeros */
    gemm_nn(P, N, m->R[b], col[b], K, m->W[b], N, z[b], N);
    conv_bias_relu(z[b], P, N, m->B[b]);
    float *o = b + 1 == m->nb ? out : pin[b];
    pool2_forward(z[b], m->oh[b], m->ow[b], N, m->C[b], o, arg ? arg[b] : NULL);
    in = o;
  }
}

/* the dense head over n rows of features X (row stride RP), into E (row stride CP) */
static void head_forward(const cnn *m, const float *X, int n, float *E) {
  const int L = m->nb, K = m->RP[L], N = m->CP[L];
  gemm_nn(n, N, m->R[L], X, K, m->W[L], N, E, N);
  conv_bias_relu(E, n, N, m->B[L]);
}

static void copy_out(const cnn *m, float *dst, const float *E, int n) {
  const int C = m->C[m->nb], CP = m->CP[m->nb];
  for (int r = 0; r < n; r++) memcpy(dst + (size_t)r * C, E + (size_t)r * CP, (size_t)C * sizeof(float));
}

typedef struct {
  cnn *m;
  const uint8_t *images;
  const int32_t *rows;
  int n, in_dim;
  float *out;
  uint32_t rng0[4];
  backward_src bw; /* what the backward pass starts from (common.h) */
} step_ctx;

/* a pass over images[rows[0..n)] into out (embeddings), the rest zero */
static step_ctx images_ctx(cnn *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, float *out) {
  return (step_ctx){.m = m, .images = images, .rows = rows, .n = n, .in_dim = in_dim, .out = out};
}

/* the masks of rows [r0, r1), from the stream's place of row r0 (as src/model/dropout.ts draws
   them, row after row), in blocks of 256 rows (see draw_masks in mlp.c) */
static void draw_masks(cnn *m, const step_ctx *c, int r0, int r1) {
  const int F = m->R[m->nb], FP = m->RP[m->nb];
  const double keep = 1.0 - m->rate;
  const uint64_t thr = (uint64_t)ceil(keep * 4294967296.0);
  const float scale = (float)(1.0 / keep);
  uint32_t s[4] = {c->rng0[0], c->rng0[1], c->rng0[2], c->rng0[3]};
  xo_jump(s, (uint64_t)r0 * F);
  for (int b = r0; b < r1; b += 256) xo_masks(s, r1 - b < 256 ? r1 - b : 256, F, FP, thr, scale, m->M + (size_t)b * FP);
}

/* forward task t: images [t*TASK_IMAGES, ...): blocks, dropout, the head */
static void forward_task(void *vctx, int t, int tid) {
  step_ctx *c = (step_ctx *)vctx;
  cnn *m = c->m;
  const int r0 = t * TASK_IMAGES, r1 = r0 + TASK_IMAGES < c->n ? r0 + TASK_IMAGES : c->n;
  const scratch_t s = thread_scratch(m, tid);
  const int FP = m->RP[m->nb];
  for (int i = r0; i < r1; i++) {
    float *col[CNN_MAX_BLOCKS], *z[CNN_MAX_BLOCKS], *pin[CNN_MAX_BLOCKS];
    int32_t *arg[CNN_MAX_BLOCKS];
    for (int b = 0; b < m->nb; b++) {
      const size_t conv = (size_t)m->oh[b] * m->ow[b], pooled = (size_t)m->ph[b] * m->pw[b] * m->C[b];
      col[b] = m->col[b] + (size_t)i * conv * m->RP[b];
      z[b] = s.z; /* needed only until it is pooled */
      arg[b] = m->A[b] + (size_t)i * pooled;
      pin[b] = m->P[b] ? m->P[b] + (size_t)i * pooled : NULL;
    }
    image_floats(m, c->images + (size_t)c->rows[i] * c->in_dim, s.x);
    blocks_forward(m, s.x, col, z, pin, arg, m->X + (size_t)i * FP);
  }
  if (m->has_masks) {
    draw_masks(m, c, r0, r1);
    for (size_t o = (size_t)r0 * FP; o < (size_t)r1 * FP; o += VW) VSTORE(m->X + o, VLOAD(m->X + o) * VLOAD(m->M + o));
  }
  const int EP = m->CP[m->nb];
  head_forward(m, m->X + (size_t)r0 * FP, r1 - r0, m->E + (size_t)r0 * EP);
  copy_out(m, c->out + (size_t)r0 * m->C[m->nb], m->E + (size_t)r0 * EP, r1 - r0);
}

static int image_tasks(int n) { return (n + TASK_IMAGES - 1) / TASK_IMAGES; }

size_t cnn_row_bytes(const cnn *m) {
  size_t floats = 3 * (size_t)m->RP[m->nb] + 2 * (size_t)m->CP[m->nb];
  for (int b = 0; b < m->nb; b++) {
    const size_t conv = (size_t)m->oh[b] * m->ow[b], pooled = (size_t)m->ph[b] * m->pw[b] * m->C[b];
    floats += conv * m->RP[b] + pooled * (b + 1 < m->nb ? 3 : 1) + (size_t)m->CP[b] * (m->RP[b] + 1) / m->ipc[b] + 1;
  }
  return floats * sizeof(float);
}

int cnn_forward_train(cnn *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, uint32_t rng[4],
                      float *emb_out) {
  if (in_dim != m->h * m->w * m->c || n < 1) return -1;
  if ((double)ROUND_UP(n, 16) * cnn_row_bytes(m) > CNN_BATCH_BYTES) return -3;
  if (alloc_batch(m, n) != 0) return -2;
  m->rows = n;
  m->has_masks = m->rate > 0;
  step_ctx c = images_ctx(m, images, in_dim, rows, n, emb_out);
  memcpy(c.rng0, rng, sizeof c.rng0);
  pool_run(m->pool, forward_task, &c, image_tasks(n));
  if (m->has_masks) xo_jump(rng, (uint64_t)n * m->R[m->nb]);
  return 0;
}

/* ---------------------------------------------------------------- backward */

/* dL/d(embeddings) of rows [r0, r1) into DE: the given rows, or from the pairs, pair after pair
   (as tail_backprop sums them); then the head's ReLU */
static void embedding_gradient(cnn *m, const step_ctx *c, int r0, int r1) {
  const int dim = m->C[m->nb], cp = m->CP[m->nb];
  float *G = m->DE;
  memset(G + (size_t)r0 * cp, 0, (size_t)(r1 - r0) * cp * sizeof(float));
  if (c->bw.g) {
    for (int r = r0; r < r1; r++) memcpy(G + (size_t)r * cp, c->bw.g + (size_t)r * dim, (size_t)dim * sizeof(float));
  } else {
    pair_gradient_rows(m->E, G, dim, cp, &c->bw, r0, r1);
  }
  for (size_t o = (size_t)r0 * cp; o < (size_t)r1 * cp; o += VW) VSTORE(G + o, VSELECT(VLOAD(m->E + o) > 0.0f, VLOAD(G + o)));
}

/* block b's pooled map of image i (the last block's: the features after dropout, positive
   exactly where the map is wherever the mask lets a gradient through) */
static const float *pooled_map(const cnn *m, int b, int i) {
  const size_t np = (size_t)m->ph[b] * m->pw[b] * m->C[b];
  return b + 1 == m->nb ? m->X + (size_t)i * m->RP[m->nb] : m->P[b] + (size_t)i * np;
}

/* backward A for images [r0, r1): DE, DX, and the gradient of every block's pooled map (G) */
static void backward_rows(cnn *m, const step_ctx *c, int r0, int r1, const scratch_t *s) {
  const int L = m->nb, FP = m->RP[L], EP = m->CP[L];
  embedding_gradient(m, c, r0, r1);
  gemm_nn(r1 - r0, FP, EP, m->DE + (size_t)r0 * EP, EP, m->WT[L], FP, m->DX + (size_t)r0 * FP, FP);
  if (m->has_masks)
    for (size_t o = (size_t)r0 * FP; o < (size_t)r1 * FP; o += VW) VSTORE(m->DX + o, VLOAD(m->DX + o) * VLOAD(m->M + o));
  for (int i = r0; i < r1; i++)
    for (int b = L - 1; b >= 1; b--) {
      /* dcol = dZ W^T, from dZ's non-zeros only (the pooling leaves at most one in four), then
         col2im: the gradient of the previous block's pooled map */
      const size_t np = (size_t)m->ph[b] * m->pw[b] * m->C[b];
      const float *g = b + 1 == L ? m->DX + (size_t)i * FP : m->G[b] + (size_t)i * np;
      pool2_input_rows(g, pooled_map(m, b, i), m->A[b] + (size_t)i * np, m->oh[b], m->ow[b], m->C[b], m->WT[b], m->RP[b], s->col);
      conv_col2im(s->col, m->RP[b], m->ih[b], m->iw[b], m->ic[b], m->k, m->G[b - 1] + (size_t)i * m->ih[b] * m->iw[b] * m->ic[b]);
    }
}

/*
 * The filter and bias gradients' partial sums of chunk q (images [q*ipc, (q+1)*ipc)) of block
 * b, from dZ's non-zeros (chunk_filter_sums): rows [C x RP] of PW (W's transpose) and PB.
 */
static void chunk_partials(cnn *m, int b, int q, int n) {
  const int L = m->nb, K = m->RP[b], N = m->CP[b];
  const size_t conv = (size_t)m->oh[b] * m->ow[b], np = (size_t)m->ph[b] * m->pw[b] * m->C[b];
  const int i0 = q * m->ipc[b], i1 = (q + 1) * m->ipc[b] < n ? (q + 1) * m->ipc[b] : n;
  const float *g[TASK_IMAGES], *out[TASK_IMAGES], *col[TASK_IMAGES];
  const int32_t *arg[TASK_IMAGES];
  for (int i = i0; i < i1; i++) {
    g[i - i0] = b + 1 == L ? m->DX + (size_t)i * m->RP[L] : m->G[b] + (size_t)i * np;
    out[i - i0] = pooled_map(m, b, i);
    arg[i - i0] = m->A[b] + (size_t)i * np;
    col[i - i0] = m->col[b] + (size_t)i * conv * K;
  }
  chunk_filter_sums(g, out, arg, col, i1 - i0, (int)np, m->C[b], K, m->PW[b] + (size_t)q * N * K, m->PB[b] + (size_t)q * N);
}

/* backward A and B, task t: images [t*TASK_IMAGES, ...) down to every block's pooled gradient,
   then the partial sums of the chunks they hold (whole chunks: ipc divides TASK_IMAGES) */
static void backward_task(void *vctx, int t, int tid) {
  step_ctx *c = (step_ctx *)vctx;
  cnn *m = c->m;
  const int r0 = t * TASK_IMAGES, r1 = r0 + TASK_IMAGES < c->n ? r0 + TASK_IMAGES : c->n;
  const scratch_t s = thread_scratch(m, tid);
  backward_rows(m, c, r0, r1, &s);
  for (int b = 0; b < m->nb; b++)
    for (int q = r0 / m->ipc[b]; q * m->ipc[b] < r1; q++) chunk_partials(m, b, q, c->n);
}

/* block b's kernel gradient from the chunks' partial sums, in chunk order: rows [k0, k1) (a
   multiple of VW, or the padded end) */
static void reduce_partials(cnn *m, int b, int n, int k0, int k1) {
  const int K = m->RP[b], N = m->CP[b], chunks = (n + m->ipc[b] - 1) / m->ipc[b];
  const float *PW = m->PW[b];
  for (int ch = 0; ch < N; ch++)
    for (int k = k0; k < k1; k += VW) {
      vf sum = VLOAD(PW + (size_t)ch * K + k);
      for (int q = 1; q < chunks; q++) sum += VLOAD(PW + ((size_t)q * N + ch) * K + k);
      float v[VW];
      VSTORE(v, sum);
      const int e = k1 - k < VW ? k1 - k : VW;
      for (int j = 0; j < e; j++) m->GW[b][(size_t)(k + j) * N + ch] = v[j];
    }
}

/* backward C tasks: per layer, its kernel's real rows in TASK_ROWS-row tasks (layer l's first
   task is first[l]), then one task for every bias (first[nl]) */
static int weight_tasks(const cnn *m, int *first) {
  int t = 0;
  for (int l = 0; l < m->nl; l++) {
    first[l] = t;
    t += (m->R[l] + TASK_ROWS - 1) / TASK_ROWS;
  }
  first[m->nl] = t;
  return t + 1;
}

static void weights_task(void *vctx, int t, int tid) {
  step_ctx *c = (step_ctx *)vctx;
  cnn *m = c->m;
  int first[CNN_LAYERS + 1];
  weight_tasks(m, first);
  size_t bad = 0;
  if (t == first[m->nl]) {
    /* the biases: the chunks' sums in order, the head's column sums; the updates */
    for (int l = 0; l < m->nl; l++) {
      const int N = m->CP[l];
      if (l < m->nb) {
        const int chunks = (c->n + m->ipc[l] - 1) / m->ipc[l];
        for (int ch = 0; ch < N; ch++) {
          float sum = m->PB[l][ch];
          for (int q = 1; q < chunks; q++) sum += m->PB[l][(size_t)q * N + ch];
          m->GB[l][ch] = sum;
        }
      } else {
        col_sums(m->DE, (size_t)c->n, N, 0, N, m->GB[l]);
      }
      if (c->bw.apply) bad += opt_update(c->bw.opt, m->B[l], m->GB[l], m->SB[0][l], m->SB[1][l], (size_t)N);
    }
  } else {
    int l = 0;
    while (t >= first[l + 1]) l++;
    const int N = m->CP[l], k0 = (t - first[l]) * TASK_ROWS, k1 = k0 + TASK_ROWS < m->R[l] ? k0 + TASK_ROWS : m->R[l];
    if (l < m->nb) {
      reduce_partials(m, l, c->n, k0, k1);
    } else {
      /* the head: X^T DE over the batch's rows */
      const int K = m->RP[l];
      gemm_tn(k1 - k0, N, c->n, m->X + k0, K, m->DE, N, m->GW[l] + (size_t)k0 * N, N);
    }
    if (c->bw.apply) {
      const size_t o = (size_t)k0 * N, len = (size_t)(k1 - k0) * N;
      bad += opt_update(c->bw.opt, m->W[l] + o, m->GW[l] + o, m->SW[0][l] + o, m->SW[1][l] + o, len);
      transpose_rows(m, l, k0, k1);
    }
  }
  m->bad[(size_t)tid * 8] += bad;
}

int cnn_backward(cnn *m, const float *g, const int32_t *ia, const int32_t *ib, const float *coef, int npairs,
                 const optcfg *opt, int apply) {
  if (m->rows < 1) return -1;
  step_ctx c = {0};
  c.m = m;
  c.n = m->rows;
  c.bw = (backward_src){g, ia, ib, coef, npairs, opt, apply};
  pool_run(m->pool, backward_task, &c, image_tasks(c.n));
  for (int t = 0; t < m->nthreads; t++) m->bad[(size_t)t * 8] = 0;
  int first[CNN_LAYERS + 1];
  pool_run(m->pool, weights_task, &c, weight_tasks(m, first));
  m->bad_valid = apply;
  return 0;
}

/* ---------------------------------------------------------------- inference */

static void embed_task(void *vctx, int t, int tid) {
  step_ctx *c = (step_ctx *)vctx;
  cnn *m = c->m;
  const int r0 = t * EMBED_BLOCK, n = c->n - r0 < EMBED_BLOCK ? c->n - r0 : EMBED_BLOCK;
  const scratch_t s = thread_scratch(m, tid);
  const int FP = m->RP[m->nb];
  float *col[CNN_MAX_BLOCKS], *z[CNN_MAX_BLOCKS], *pin[CNN_MAX_BLOCKS];
  for (int b = 0; b < m->nb; b++) {
    col[b] = s.col;
    z[b] = s.z;
    pin[b] = b % 2 == 0 ? s.g0 : s.g1;
  }
  for (int i = 0; i < n; i++) {
    image_floats(m, c->images + (size_t)c->rows[r0 + i] * c->in_dim, s.x);
    blocks_forward(m, s.x, col, z, pin, NULL, s.X + (size_t)i * FP);
  }
  head_forward(m, s.X, n, s.E);
  copy_out(m, c->out + (size_t)r0 * m->C[m->nb], s.E, n);
}

int cnn_embed(cnn *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, float *out) {
  if (in_dim != m->h * m->w * m->c) return -1;
  if (n < 1) return 0;
  step_ctx c = images_ctx(m, images, in_dim, rows, n, out);
  pool_run(m->pool, embed_task, &c, (n + EMBED_BLOCK - 1) / EMBED_BLOCK);
  return 0;
}
