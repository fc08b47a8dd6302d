/*
 * The convolutional base network on the native engine (cnn.c), as src/model/cnn.ts builds it:
 *
 *   blocks:  Conv k x k (valid, stride 1) + ReLU -> MaxPool 2 x 2    (one block per filter count)
 *   head:    Flatten -> Dropout(rate) -> Dense(embedding) + ReLU
 *
 * Parameter layer l < nb is block l's convolution, l = nb the dense head. Each kernel is kept as
 * [RP[l] x CP[l]] (rows k*k*cin or the features, columns the filters or the embedding, both
 * padded to the vector width with zeros), the bias as [CP[l]]. Idx 2l is a kernel, 2l + 1 its
 * bias, in Keras' order and layout (HWIO), as weightSpecs() lists them.
 *
 * Determinism: a training step is tasks of images (forward, backward to dZ and the filter
 * gradients' partial sums) and of kernel rows (the sums of the partials, updates), taken by any
 * thread; every output element is one sum in a fixed order, so 1 and N threads give the same bits.
 */
#ifndef SIAMESE_CNN_H
#define SIAMESE_CNN_H

#include "siamese.h"

#define CNN_MAX_BLOCKS 4
#define CNN_LAYERS (CNN_MAX_BLOCKS + 1)

typedef struct cnn {
  int h, w, c, k, nb, nl; /* input, kernel size, blocks, parameter layers (nb + 1) */
  /* block b: input ih x iw x ic, convolution oh x ow x co (padded cop), pooled ph x pw x co */
  int ih[CNN_MAX_BLOCKS], iw[CNN_MAX_BLOCKS], ic[CNN_MAX_BLOCKS];
  int oh[CNN_MAX_BLOCKS], ow[CNN_MAX_BLOCKS], ph[CNN_MAX_BLOCKS], pw[CNN_MAX_BLOCKS];
  /* parameter layer l: kernel rows R (padded RP), columns C (padded CP) */
  int R[CNN_LAYERS], RP[CNN_LAYERS], C[CNN_LAYERS], CP[CNN_LAYERS];
  double rate;
  float *W[CNN_LAYERS], *B[CNN_LAYERS], *WT[CNN_LAYERS]; /* WT [CP x RP], layers >= 1 */
  float *GW[CNN_LAYERS], *GB[CNN_LAYERS];
  float *SW[MAX_SLOTS][CNN_LAYERS], *SB[MAX_SLOTS][CNN_LAYERS];
  /* the training forward pass's batch, capacity cap images: each block's im2col rows, the argmax of every pooled
     value, the pooled maps of all blocks but the last; the flattened features after dropout X,
     the masks M, the embeddings E, the gradients DE (dense dZ) and DX (of X) */
  int cap, rows, has_masks;
  float *col[CNN_MAX_BLOCKS], *P[CNN_MAX_BLOCKS];
  int32_t *A[CNN_MAX_BLOCKS];
  /* the backward pass: the gradient of each block's pooled map but the last's (that is DX), and
     the filter and bias gradients' partial sums of each chunk of ipc[b] images (a power of two
     up to 8), [CP x RP] and [CP] (see chunk_partials in cnn.c); A holds positions in the
     convolution output */
  float *G[CNN_MAX_BLOCKS], *PW[CNN_MAX_BLOCKS], *PB[CNN_MAX_BLOCKS];
  int ipc[CNN_MAX_BLOCKS];
  float *X, *M, *E, *DE, *DX;
  size_t *bad; /* non-finite weights written by each thread's updates (one cache line each) */
  int bad_valid;
  int nthreads;
  float *scratch;
  size_t scratch_per_thread;
  pool *pool;
} cnn;

/* dims: input h, w, c, kernel size k, embedding size, then nb filter counts; NULL for a shape
   the network cannot take (cnn_shape_error says why) or out of memory */
const char *cnn_shape_error(int h, int w, int c, int k, int emb, const int *filters, int nb);
cnn *cnn_create(int h, int w, int c, int k, int emb, const int *filters, int nb, double rate, int threads);
void cnn_destroy(cnn *m);
int cnn_set_threads(cnn *m, int threads);
size_t cnn_param_size(const cnn *m, int idx);
void cnn_set_param(cnn *m, int idx, const float *src);
void cnn_get_param(const cnn *m, int idx, float *dst);
void cnn_get_grad(const cnn *m, int idx, float *dst);
void cnn_get_slot(const cnn *m, int slot, int idx, float *dst);
void cnn_set_slot(cnn *m, int slot, int idx, const float *src);
void cnn_zero_slots(cnn *m);
size_t cnn_nonfinite(const cnn *m);
/* the training batch's buffers per image, and their limit: a batch that needs more is refused
   (-3) rather than allocated (the seed's CNN: about 280 KB an image, 73 MB at 128 pairs) */
#define CNN_BATCH_BYTES ((double)(2u << 30))
size_t cnn_row_bytes(const cnn *m);
/* training forward pass of images[rows] (bytes / 255) with dropout drawn from rng (advanced
   by n x features draws, as src/model/dropout.ts draws them); emb_out [n x embedding] */
int cnn_forward_train(cnn *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, uint32_t rng[4],
                      float *emb_out);
/* backward of the last forward pass from dL/d(embeddings) g [rows x embedding], or from pairs:
   coef[i] (e[ia] - e[ib]) added to row ia[i], subtracted from row ib[i]; then the update */
int cnn_backward(cnn *m, const float *g, const int32_t *ia, const int32_t *ib, const float *coef, int npairs,
                 const optcfg *opt, int apply);
/* inference, no dropout */
int cnn_embed(cnn *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, float *out);

#endif
