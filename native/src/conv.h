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
   the index into z of each maximum, the last of equals in the order (0,0) (0,1) (1,0) (1,1)
   (as TF.js' wasm backend picks it) */
void pool2_forward(const float *z, int oh, int ow, int ldz, int c, float *out, int32_t *arg);
/* dcol = dZ W^T for one image, dZ the pooling's and the ReLU's gradient: g[i] at arg[i] where
   out[i] > 0, zero elsewhere (ldz columns), W^T [ldz x ldw]: row p of dcol sums WT[ch] * g over the pooled values whose argmax
   is at position p (channel ch = arg % ldz), in channel order: dZ's zero terms skipped, the
   same sums. dcol (P rows of ldw) zeroed first */
void pool2_input_rows(const float *g, const float *out, const int32_t *arg, int np, int ldz, const float *WT, int ldw,
                      float *dcol, size_t P);
/* s[j] = sum over rows r in order of D[r*ld + j], for j in [j0, j1) (multiples of VW) */
void col_sums(const float *D, size_t rows, int ld, int j0, int j1, float *s);

#endif
