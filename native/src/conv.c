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

void conv_im2col(const float *x, int h, int w, int c, int k, float *col, int ldc) {
  const int oh = h - k + 1, ow = w - k + 1, span = k * c;
  for (int oy = 0; oy < oh; oy++)
    for (int ox = 0; ox < ow; ox++) {
      float *dst = col + (size_t)(oy * ow + ox) * ldc;
      /* one kernel row ky covers k*c consecutive input floats */
      for (int ky = 0; ky < k; ky++) memcpy(dst + ky * span, x + ((size_t)(oy + ky) * w + ox) * c, (size_t)span * sizeof(float));
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
      const int32_t base = (int32_t)(((size_t)(2 * py) * ow + 2 * px) * ldz);
      const int32_t off[4] = {0, ldz, ow * ldz, (ow + 1) * ldz};
      float *o = out + (size_t)(py * pw + px) * c;
      int32_t *a = arg ? arg + (size_t)(py * pw + px) * c : NULL;
      /* ties go to the last of equals, as TF.js' MaxPoolWithArgmax (wasm) sends them: equal
         maxima occur (a constant patch of input, a ReLU's zeros), and the gradient follows */
      for (int ch = 0; ch < c; ch++) {
        int32_t best = base + ch;
        float v = z[best];
        for (int q = 1; q < 4; q++) {
          const int32_t i = base + off[q] + ch;
          if (z[i] >= v) {
            v = z[i];
            best = i;
          }
        }
        o[ch] = v;
        if (a) a[ch] = best;
      }
    }
}

void pool2_input_rows(const float *g, const float *out, const int32_t *arg, int np, int ldz, const float *WT, int ldw,
                      float *dcol, size_t P) {
  memset(dcol, 0, P * ldw * sizeof(float));
  for (int i = 0; i < np; i++) {
    if (!(out[i] > 0.0f)) continue;
    const int32_t ch = arg[i] % ldz;
    float *d = dcol + (size_t)(arg[i] / ldz) * ldw;
    const float *w = WT + (size_t)ch * ldw;
    const vf gv = (vf){0} + g[i];
    for (int j = 0; j < ldw; j += VW) VSTORE(d + j, VLOAD(d + j) + gv * VLOAD(w + j));
  }
}

void col_sums(const float *D, size_t rows, int ld, int j0, int j1, float *s) {
  for (int j = j0; j < j1; j += VW) {
    vf acc = (vf){0};
    for (size_t r = 0; r < rows; r++) acc += VLOAD(D + r * ld + j);
    VSTORE(s + j, acc);
  }
}
