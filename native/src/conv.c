/*
 * The convolutional base's own kernels (see conv.h). The forward convolution is im2col + GEMM
 * (gemm.h's register tiles, every output element one sum in a fixed order). (A direct
 * convolution would need hand-tuned loops of its own; the im2col copy is k*k times the input,
 * small beside the product.) The backward pass skips dZ's zeros, three in four after the
 * pooling: the input gradient's im2col rows are W^T rows times the pooled gradients
 * (pool2_input_rows), then col2im.
 */
#include "conv.h"

#include <string.h>

#include "gemm.h"

/* n floats; a kernel row of the first block is 3 to 15 floats, too short for a memcpy call */
static inline void copy_floats(float *restrict d, const float *restrict s, int n) {
  int j = 0;
  for (; j + 4 <= n; j += 4) memcpy(d + j, s + j, 4 * sizeof(float));
  /* (not a loop, which the compiler would turn back into a memcpy call) */
  if (j < n) d[j] = s[j];
  if (j + 1 < n) d[j + 1] = s[j + 1];
  if (j + 2 < n) d[j + 2] = s[j + 2];
}

void conv_im2col(const float *x, int h, int w, int c, int k, float *col, int ldc) {
  const int oh = h - k + 1, ow = w - k + 1, span = k * c;
  for (int oy = 0; oy < oh; oy++)
    for (int ox = 0; ox < ow; ox++) {
      float *dst = col + (size_t)(oy * ow + ox) * ldc;
      /* one kernel row ky covers k*c consecutive input floats */
      for (int ky = 0; ky < k; ky++) copy_floats(dst + ky * span, x + ((size_t)(oy + ky) * w + ox) * c, span);
    }
}

void conv_col2im(const float *dcol, int ldc, int h, int w, int c, int k, float *dx) {
  const int oh = h - k + 1, ow = w - k + 1, span = k * c;
  memset(dx, 0, (size_t)h * w * c * sizeof(float));
  for (int oy = 0; oy < oh; oy++)
    for (int ox = 0; ox < ow; ox++) {
      const float *src = dcol + (size_t)(oy * ow + ox) * ldc;
      for (int ky = 0; ky < k; ky++) {
        float *d = dx + ((size_t)(oy + ky) * w + ox) * c;
        const float *s = src + ky * span;
        for (int j = 0; j < span; j++) d[j] += s[j];
      }
    }
}

void conv_bias_relu(float *z, int P, int ldz, const float *b) {
  for (int p = 0; p < P; p++) {
    float *row = z + (size_t)p * ldz;
    for (int j = 0; j < ldz; j += VW) {
      const vf v = VLOAD(row + j) + VLOAD(b + j);
      VSTORE(row + j, VSELECT(v > 0.0f, v));
    }
  }
}

void pool2_forward(const float *z, int oh, int ow, int ldz, int c, float *out, int32_t *arg) {
  const int ph = oh / 2, pw = ow / 2;
  for (int py = 0; py < ph; py++)
    for (int px = 0; px < pw; px++) {
      const int32_t p0 = 2 * py * ow + 2 * px;
      const int32_t pos[4] = {p0, p0 + 1, p0 + ow, p0 + ow + 1};
      float *o = out + (size_t)(py * pw + px) * c;
      int32_t *a = arg ? arg + (size_t)(py * pw + px) * c : NULL;
      /* ties go to the last of equals, as TF.js' MaxPoolWithArgmax (wasm) sends them: equal
         maxima occur (a constant patch of input, a ReLU's zeros), and the gradient follows */
      for (int ch = 0; ch < c; ch++) {
        int32_t best = pos[0];
        float v = z[(size_t)best * ldz + ch];
        for (int q = 1; q < 4; q++) {
          const float x = z[(size_t)pos[q] * ldz + ch];
          if (x >= v) {
            v = x;
            best = pos[q];
          }
        }
        o[ch] = v;
        if (a) a[ch] = best;
      }
    }
}

/*
 * dst[0..K) = (keep ? dst : 0) + g[0] rows[0] + g[1] rows[1] + ..., each element summed in list
 * order (one multiply-add per term, as `d += g * x` row after row would): the sums kept in
 * registers over the whole list, K in blocks of up to 8 vectors, instead of a read and a write
 * of dst per term (dst and the rows are L2-sized).
 */
#define SUM_BLOCK(NVEC)                                                    \
  for (; k + (NVEC)*VW <= K; k += (NVEC)*VW) {                             \
    vf acc[NVEC];                                                          \
    _Pragma("GCC unroll 8") for (int v = 0; v < (NVEC); v++) acc[v] =      \
        keep ? VLOAD(dst + k + v * VW) : (vf){0};                          \
    for (int i = 0; i < n; i++) {                                          \
      const vf gv = (vf){0} + g[i];                                        \
      const float *x = rows[i] + k;                                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < (NVEC); v++) acc[v] +=   \
          gv * VLOAD(x + v * VW);                                          \
    }                                                                      \
    _Pragma("GCC unroll 8") for (int v = 0; v < (NVEC); v++)               \
        VSTORE(dst + k + v * VW, acc[v]);                                  \
  }

static void sum_rows(float *dst, int K, int keep, const float *const *rows, const float *g, int n) {
  int k = 0;
  SUM_BLOCK(8)
  SUM_BLOCK(4)
  SUM_BLOCK(1)
}

void pool2_input_rows(const float *g, const float *out, const int32_t *arg, int oh, int ow, int c, const float *WT,
                      int ldw, float *dcol) {
  const int ph = oh / 2, pw = ow / 2;
  /* the positions no window covers (a last odd row or column) get no gradient */
  if (oh % 2) memset(dcol + (size_t)(oh - 1) * ow * ldw, 0, (size_t)ow * ldw * sizeof(float));
  if (ow % 2)
    for (int oy = 0; oy < 2 * ph; oy++) memset(dcol + ((size_t)oy * ow + ow - 1) * ldw, 0, (size_t)ldw * sizeof(float));
  const float *rows[4][SUM_LIST];
  float gs[4][SUM_LIST];
  for (int py = 0; py < ph; py++)
    for (int px = 0; px < pw; px++) {
      const int32_t p0 = 2 * py * ow + 2 * px;
      const int32_t pos[4] = {p0, p0 + 1, p0 + ow, p0 + ow + 1};
      const size_t cell = (size_t)(py * pw + px) * c;
      /* the window's channels in order, up to SUM_LIST at a time, sorted by their argmax */
      for (int c0 = 0; c0 < c; c0 += SUM_LIST) {
        const int c1 = c - c0 < SUM_LIST ? c : c0 + SUM_LIST;
        int cnt[4] = {0, 0, 0, 0};
        for (int ch = c0; ch < c1; ch++) {
          if (!(out[cell + ch] > 0.0f)) continue;
          const int q = arg[cell + ch] == pos[0] ? 0 : arg[cell + ch] == pos[1] ? 1 : arg[cell + ch] == pos[2] ? 2 : 3;
          rows[q][cnt[q]] = WT + (size_t)ch * ldw;
          gs[q][cnt[q]++] = g[cell + ch];
        }
        for (int q = 0; q < 4; q++) sum_rows(dcol + (size_t)pos[q] * ldw, ldw, c0 > 0, rows[q], gs[q], cnt[q]);
      }
    }
}

void chunk_filter_sums(const float *const *g, const float *const *out, const int32_t *const *arg, const float *const *col,
                       int nimg, int np, int c, int K, float *pw, float *pb) {
  if (K == VW) {
    /* one vector a row (the first block's 9 or 25 terms): no lists, and a select in place of
       the branch on each pooled value's sign (a term g = 0 adds +0 to a sum that is never -0:
       the same bits) */
    int ch = 0;
    /* four channels at a time: four independent chains of multiply-adds, each in its order */
    for (; ch + 4 <= c; ch += 4) {
      vf acc[4] = {{0}, {0}, {0}, {0}};
      float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int i = 0; i < nimg; i++)
        for (size_t e = (size_t)ch; e < (size_t)np; e += (size_t)c)
          for (int j = 0; j < 4; j++) {
            const float gi = out[i][e + j] > 0.0f ? g[i][e + j] : 0.0f;
            acc[j] += ((vf){0} + gi) * VLOAD(col[i] + (size_t)arg[i][e + j] * K);
            b[j] += gi;
          }
      for (int j = 0; j < 4; j++) {
        VSTORE(pw + (size_t)(ch + j) * K, acc[j]);
        pb[ch + j] = b[j];
      }
    }
    for (; ch < c; ch++) {
      vf acc = (vf){0};
      float b = 0.0f;
      for (int i = 0; i < nimg; i++)
        for (size_t e = (size_t)ch; e < (size_t)np; e += (size_t)c) {
          const float gi = out[i][e] > 0.0f ? g[i][e] : 0.0f;
          acc += ((vf){0} + gi) * VLOAD(col[i] + (size_t)arg[i][e] * K);
          b += gi;
        }
      VSTORE(pw + (size_t)ch * K, acc);
      pb[ch] = b;
    }
    return;
  }
  /* image by image, so that the image's im2col rows stay in cache across the channels */
  const float *rows[SUM_LIST];
  float gs[SUM_LIST];
  for (int ch = 0; ch < c; ch++) pb[ch] = 0.0f;
  for (int i = 0; i < nimg; i++)
    for (int ch = 0; ch < c; ch++) {
      int n = 0, keep = i > 0;
      float b = pb[ch];
      for (size_t e = (size_t)ch; e < (size_t)np; e += (size_t)c) {
        if (!(out[i][e] > 0.0f)) continue;
        rows[n] = col[i] + (size_t)arg[i][e] * K;
        gs[n++] = g[i][e];
        b += g[i][e];
        if (n == SUM_LIST) {
          sum_rows(pw + (size_t)ch * K, K, keep, rows, gs, n);
          n = 0;
          keep = 1;
        }
      }
      sum_rows(pw + (size_t)ch * K, K, keep, rows, gs, n);
      pb[ch] = b;
    }
}

void col_sums(const float *D, size_t rows, int ld, int j0, int j1, float *s) {
  for (int j = j0; j < j1; j += VW) {
    vf acc = (vf){0};
    for (size_t r = 0; r < rows; r++) acc += VLOAD(D + r * ld + j);
    VSTORE(s + j, acc);
  }
}
