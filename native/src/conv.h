/*
 * Kernels of the convolutional base (conv.c): a k x k valid, stride-1 convolution as im2col and a
 * GEMM (gemm.h), its adjoint col2im for the input gradient, bias + ReLU, 2 x 2 max-pooling with
 * the argmax kept for the backward pass, the input gradient's rows from the pooled gradients,
 * and column sums for the head's bias gradient. Layouts: an
 * image or feature map is [height x width x channels] (NHWC), a kernel [k*k*cin x cout] (Keras'
 * HWIO, flattened), so that an im2col row (ky, kx, ci) meets kernel row (ky*k + kx)*cin + ci.
 */
#ifndef SIAMESE_CONV_H
#define SIAMESE_CONV_H

#include <stddef.h>
#include <stdint.h>

/* col[(oy*ow + ox)*ldc + (ky*k + kx)*c + ci] = x[((oy + ky)*w + ox + kx)*c + ci] for one
   image x [h x w x c], ow = w - k + 1; the columns [k*k*c, ldc) are left as they are (zero) */
void conv_im2col(const float *x, int h, int w, int c, int k, float *col, int ldc);
/* the adjoint: dx = sum of dcol's entries over the places im2col copied them from, each dx
   element summed in (oy, ox) order; dx [h x w x c] is overwritten */
void conv_col2im(const float *dcol, int ldc, int h, int w, int c, int k, float *dx);
/* z[p*ldz + j] = max(z[p*ldz + j] + b[j], 0) for p < P, j < ldz (ldz a multiple of VW) */
void conv_bias_relu(float *z, int P, int ldz, const float *b);
/* 2 x 2 valid max-pooling of z [oh x ow x ldz] (channels c <= ldz): out[(py*pw + px)*c + ch],
   ph = oh / 2, pw = ow / 2 (a last odd row or column dropped, as Keras does); arg (if not NULL)
   the position (oy*ow + ox) of each maximum in z, the last of equals in the order (0,0) (0,1)
   (1,0) (1,1) (as TF.js' wasm backend picks it) */
void pool2_forward(const float *z, int oh, int ow, int ldz, int c, float *out, int32_t *arg);
/* the longest list of rows one register-held sum takes before it is stored and resumed */
#define SUM_LIST 256
/* dcol = dZ W^T for one image, dZ the pooling's and the ReLU's gradient: g[i] at position arg[i]
   where out[i] > 0, zero elsewhere (pooled maps [ph x pw x c] of a convolution output oh x ow),
   W^T [>= c rows of ldw]: row p of dcol sums WT[ch] * g over the pooled values whose argmax is
   at position p, in channel order: dZ's zero terms skipped, the same sums. Every row of dcol
   (oh*ow of ldw) is written */
void pool2_input_rows(const float *g, const float *out, const int32_t *arg, int oh, int ow, int c, const float *WT,
                      int ldw, float *dcol);
/* the filter and bias gradients' partial sums over nimg images (image i: pooled gradient g[i],
   pooled map out[i], argmax positions arg[i], np = pooled values, c channels, im2col rows col[i]
   of K floats): row ch of pw [c x K] sums g * (the im2col row at its argmax) over the pooled
   values of channel ch whose map value is positive, pb[ch] their g, images in order and the
   pooled values in theirs: dZ's zero terms skipped. pw's rows and pb [0, c) are overwritten */
void chunk_filter_sums(const float *const *g, const float *const *out, const int32_t *const *arg, const float *const *col,
                       int nimg, int np, int c, int K, float *pw, float *pb);
/* s[j] = sum over rows r in order of D[r*ld + j], for j in [j0, j1) (multiples of VW) */
void col_sums(const float *D, size_t rows, int ld, int j0, int j1, float *s);

#endif
