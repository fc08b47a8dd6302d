/*
 * siamese-lab native engine: a multi-layer perceptron (Dense + ReLU, dropout between layers)
 * trained in float32 on the CPU, with hand-written SIMD kernels and a small thread pool. (The
 * convolutional base is cnn.h's.)
 *
 * Files: gemm.h / gemm.c the register-tiled GEMM kernels and drivers (both networks); mlp.c the
 * MLP and its training step, mlp_kernels.c its first layer's byte and sparse kernels,
 * mlp_schedule.c how two threads share its step; conv.h / conv.c the convolution and pooling
 * kernels, cnn.c the CNN; dropout.c the masks, optim.c the optimizers, pool.c the threads,
 * tail.c the pair distances, batchpair.c the pair-based batch losses whole, batchproxy.c the
 * class-weight ones, batchsweep.c their batch accuracy, addon.c the Node-API bindings.
 *
 * Layout: every activation and weight row is padded to a multiple of the vector width VW (the
 * padding is kept at zero, so it never changes a result). Kernels are [in, out] row-major, as
 * Keras and the TypeScript side store them.
 *
 * Determinism: every output element is computed by exactly one thread, with a summation order
 * that does not depend on how the work is spread over threads. A run with 1 thread and a run
 * with N threads give bit-identical results.
 */
#ifndef SIAMESE_NATIVE_H
#define SIAMESE_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__AVX512F__)
#define VW 16
#define ISA_NAME "avx512"
#elif defined(__AVX__)
#define VW 8
#define ISA_NAME "avx2"
#elif defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__)
#define VW 4
#define ISA_NAME "sse/neon"
#else
#define VW 4
#define ISA_NAME "generic"
#endif

#define MAX_LAYERS 8
#define MAX_SLOTS 2
#define MAX_GROUPS 64 /* column groups of the first layer (one per thread) */
/* how a step is shared (mlp_schedule.c, choose_plan): split, roles, roles with streamed stores */
enum { PLAN_SPLIT = 0, PLAN_ROLES = 1, PLAN_STREAMED = 2, PLANS = 3 };
#define TUNE_TIMED 18 /* steps of each plan that auto mode times (mlp_schedule.c, choose_plan) */

typedef struct pool pool;

/* Optimizer kinds; the per-step float coefficients are computed on the TypeScript side. */
enum {
  OPT_SGD = 0,      /* coef: lr */
  OPT_MOMENTUM = 1, /* coef: lr, mu */
  OPT_NESTEROV = 2, /* coef: lr, mu */
  OPT_RMSPROP = 3,  /* coef: rho, 1-rho, lr, eps */
  OPT_ADAM = 4,     /* coef: b1, 1-b1, b2, 1-b2, lr_t, eps */
  OPT_ADAGRAD = 5   /* coef: lr, eps */
};

typedef struct {
  int kind;
  float c[8];
} optcfg;

typedef struct mlp {
  int nl;                  /* layers */
  int w[MAX_LAYERS + 1];   /* widths: w[0] input, w[l + 1] output of layer l */
  int wp[MAX_LAYERS + 1];  /* padded widths (wp[0] = w[0]: the input is never padded) */
  double rate;             /* dropout rate after every layer but the last */
  float *W[MAX_LAYERS], *B[MAX_LAYERS];   /* [wp[l] x wp[l+1]], [wp[l+1]] */
  float *WT[MAX_LAYERS];                  /* transposes [wp[l+1] x wp[l]], layers >= 1 */
  float *GW[MAX_LAYERS], *GB[MAX_LAYERS]; /* gradients of the last backward pass */
  float *SW[MAX_SLOTS][MAX_LAYERS], *SB[MAX_SLOTS][MAX_LAYERS]; /* optimizer slots */
  /* saved by the training forward pass, capacity cap rows */
  int cap, rows;
  int has_masks;
  /* The first layer is split by output columns: thread g owns columns [gc[g], gc[g+1]) of its
     kernel, gradient and slots, stored as one [w[0] x width] row-major block at offset
     w[0] * gc[g] (so a thread's columns never share a cache line with another's), and gathers
     the batch's image bytes into an input buffer of its own, XB[g] [cap x w[0]]. (Sharing the
     fetch, a thread each share of the rows, cost more: writing a shared buffer that the other
     core had read invalidates its lines, and the copy needs a barrier of its own.) */
  int ng;
  int gc[MAX_GROUPS + 1];
  uint8_t *XB[MAX_GROUPS];
  /* sparse input (mlp.c), each group's own: the rows' non-zero patterns [nzw x cap], an index
     list, and the batch rows of every tile of MR pixels, TL [tiles x (cap + 16)] with counts
     TLn, built in forward 2 for the backward pass */
  int sparse_mode;   /* INPUT_AUTO, INPUT_DENSE or INPUT_SPARSE */
  int sparse;        /* the path of the last training forward pass */
  int l0sparse;      /* the path of the first layer's current work (thread 1's, running ahead) */
  double term_share; /* terms summed / dense terms in the last sparse pass (-1: none yet) */
  size_t terms;
  int since_probe;
  int nzw;
  uint64_t *NZ[MAX_GROUPS];
  int32_t *UL[MAX_GROUPS];
  int32_t *TL[MAX_GROUPS];
  int *TLn[MAX_GROUPS];
  /* two threads in roles (mlp_schedule.c, choose_plan): whether the last step ran so, and with streamed
     stores, the schedule and stores asked for, and the first layer's progress in rows, counted
     on from step to step */
  int roles, streamed, schedule, stores;
  /* auto mode's timing of the plans (choose_plan): the step count in the current round, the
     choice, whether the step last decided counts, the timing's length in steps, the native ns
     of each plan's timed steps (tune_n of them), the last forward pass's ns */
  int tune_step, tune_plan, tune_live, tune_timing;
  long tune_ns[PLANS][TUNE_TIMED], step_ns;
  int tune_n[PLANS];
  int *cursor; /* the backward pass's place in each pixel tile's row list, per group */
  /* the next step's first layer run ahead (mlp_set_next): its rows as asked for (next_valid
     until the backward pass takes them); the next step's path and schedule, decided then
     (pre_valid); whether thread 1 runs or ran it (ahead), into H0next, its progress counted
     from ahead_base, and ahead_done, set by thread 1 when it ends */
  const uint8_t *next_images;
  int32_t *next_rows;
  int next_n, next_valid;
  int pre_valid, pre_sparse, pre_plan;
  int ahead, ran_ahead; /* ran_ahead: the last forward pass took a run ahead over */
  long ahead_base;
  float *H0next;
  _Alignas(64) volatile long ahead_done;
  char pad2_[64 - sizeof(long)];
  long progress_base;
  _Alignas(64) volatile long progress;
  char pad_[64 - sizeof(long)];
  float *H[MAX_LAYERS];    /* [cap x wp[l+1]] layer outputs (after ReLU and dropout) */
  float *M[MAX_LAYERS];    /* [cap x wp[l+1]] dropout multipliers (0 or 1/keep) */
  float *D[MAX_LAYERS];    /* [cap x wp[l+1]] gradients w.r.t. pre-activations */
  /* non-finite weights counted by the threads during the last update (per thread, one cache
     line each), valid until the weights are set from outside */
  size_t *bad;
  int bad_valid;
  /* per-thread scratch for embedding */
  int nthreads;
  float *scratch;
  size_t scratch_per_thread;
  pool *pool;
} mlp;

enum { INPUT_AUTO = 0, INPUT_DENSE = 1, INPUT_SPARSE = 2 };
enum { SCHEDULE_AUTO = 0, SCHEDULE_SPLIT = 1, SCHEDULE_ROLES = 2 };
enum { STORES_AUTO = 0, STORES_PLAIN = 1, STORES_STREAMED = 2 };

/* model lifetime */
mlp *mlp_create(const int *widths, int nlayers, double rate, int threads);
void mlp_destroy(mlp *m);
int mlp_set_threads(mlp *m, int threads);
/* the first layer's training path: from the input's sparsity (INPUT_AUTO), or forced; both give
   the same bits. m->sparse tells the last step's path. */
void mlp_set_input_mode(mlp *m, int mode);
/* whether this build has the sparse path */
int mlp_has_sparse(void);
/* how two threads share a training step: every phase split between them (SCHEDULE_SPLIT), or
   in roles, the first layer on one and the rest on the other (SCHEDULE_ROLES), or the fastest as
   timed, roles with each of their stores (SCHEDULE_AUTO, see choose_plan in mlp_schedule.c); the same bits. m->roles tells the
   last step's schedule. */
void mlp_set_schedule(mlp *m, int schedule);
/* how roles hand rows over: plain stores (STORES_PLAIN), non-temporal ones (STORES_STREAMED), or
   the faster as timed (STORES_AUTO); the same bits. m->streamed tells the last step's. */
void mlp_set_stores(mlp *m, int stores);

/* parameters: idx 2l = kernel of layer l, 2l + 1 = bias; unpadded row-major copies */
size_t mlp_param_size(const mlp *m, int idx);
void mlp_set_param(mlp *m, int idx, const float *src);
void mlp_get_param(const mlp *m, int idx, float *dst);
void mlp_get_grad(const mlp *m, int idx, float *dst);
void mlp_get_slot(const mlp *m, int slot, int idx, float *dst);
void mlp_set_slot(mlp *m, int slot, int idx, const float *src);
void mlp_zero_slots(mlp *m);
size_t mlp_nonfinite(const mlp *m);

/* training: forward with dropout (rng: xoshiro128** state, advanced in place), then backward */
int mlp_forward_train(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n,
                      uint32_t rng[4], float *emb_out);
int mlp_backward(mlp *m, const float *demb, const optcfg *opt, int apply);
/* the rows of the next training step, told before this step's backward pass: on two threads in
   roles, thread 1 then computes their first layer as soon as its part of the backward pass is
   done, while thread 0 finishes it and the host works. The next mlp_forward_train with the same
   images and rows takes that over (images must stay valid until then); any other call waits for
   it to end first, and a forward pass with other rows computes its own. Same bits either way.
   Returns 1 when taken, 0 when the rows do not fit (ignored). */
int mlp_set_next(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n);
/* the same, with dL/d(embeddings) from pair distances: coef[i] (a - b) added to row ia[i] and
   subtracted from row ib[i] (rows of the last forward pass) */
int mlp_backward_pairs(mlp *m, const int32_t *ia, const int32_t *ib, const float *coef, int npairs,
                       const optcfg *opt, int apply);
/* inference: no dropout, nothing saved */
int mlp_embed(mlp *m, const uint8_t *images, int in_dim, const int32_t *rows, int n, float *out);
int mlp_embed_float(mlp *m, const float *x, int n, float *out);

/* host tail helpers: pair distances and their backward pass (tail.c) */
void tail_distances(const float *emb, int dim, const int32_t *ia, const int32_t *ib, int n, double floor_,
                    float *d, double *sq);
void tail_backprop(const float *emb, int dim, const int32_t *ia, const int32_t *ib, int n, double floor_,
                   const float *d, const double *sq, const double *g, float *gemb);

#define BATCH_NORM_EPSILON 1e-12

/* the batch's best-threshold pair accuracy over float32 similarities (batchsweep.c; exactly the
   sorted sweep of src/train/batchAccuracy.ts); ld 0: the packed lower triangle (row i's pairs
   j < i from s + i(i-1)/2), else the rows of an upper triangle (pair i < j at s[i ld + j]);
   range: the least and greatest similarity, or NULL (then -1 where one is NaN); work:
   batch_sweep_work(n) floats, 64-byte aligned */
size_t batch_sweep_work(int n);
double batch_sweep(const float *s, size_t ld, int n, const int32_t *labels, const float *range, float *work);

/* the class-weight batch losses' whole step and their batch accuracy (batchproxy.c; to rounding
   src/losses/proxies.ts and src/train/batchAccuracy.ts) */
enum { BATCH_PROXY_ARCFACE = 0, BATCH_PROXY_COSFACE = 1, BATCH_PROXY_ANCHOR = 2 };
size_t batch_proxy_loss_work(int n, int classes, int dim);
double batch_proxy_loss(int kind, double p1, double p2, const float *x, const int32_t *labels, int n, const float *w,
                        int classes, int dim, float *grad, float *wgrad, double *acc, double *work);
size_t batch_cosine_accuracy_work(int n, int dim);
double batch_cosine_accuracy(const float *x, const int32_t *labels, int n, int dim, const double *norms, float *cos_out,
                             float *work);

/* the pair-based batch losses in one call (batchpair.c; float32 products, within a tolerance of
   src/losses/batch.ts); params: multi-similarity alpha, beta, base; nt-xent and supcon the
   temperature; circle m, gamma */
enum { BATCH_PAIR_MULTI_SIMILARITY = 0, BATCH_PAIR_NT_XENT = 1, BATCH_PAIR_SUPCON = 2, BATCH_PAIR_CIRCLE = 3, BATCH_PAIR_KINDS = 4 };
size_t batch_pair_loss_work(int n, int dim);
double batch_pair_loss(int kind, const double *params, const float *x, const int32_t *labels, int n, int dim, float *grad,
                       double *sims, double *acc, double *work);

/* 1 for an infinite or NaN float (all exponent bits set) */
static inline uint32_t nonfinite(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return (u & 0x7f800000u) == 0x7f800000u;
}

/* optimizer update of n contiguous elements (optim.c, compiled without FMA contraction); returns
   how many of the weights it wrote are infinite or NaN (nonfinite) */
size_t opt_update(const optcfg *o, float *w, const float *g, float *s0, float *s1, size_t n);

/* dropout masks from xoshiro128** (dropout.c) */
void xo_init(void);
void xo_jump(uint32_t s[4], uint64_t n);
void xo_masks(uint32_t s[4], int rows, int cols, int cp, uint64_t keep_thr, float scale, float *M);

/* thread pool (pool.c) */
typedef void (*task_fn)(void *ctx, int task, int tid);
pool *pool_create(int nthreads);
void pool_destroy(pool *p);
int pool_threads(const pool *p);
void pool_run(pool *p, task_fn fn, void *ctx, int ntasks);
/* every thread t of the pool runs fn(ctx, t, t) once, all at the same time, so that the task may
   wait in pool_barrier for the others */
void pool_run_each(pool *p, task_fn fn, void *ctx);
void pool_barrier(pool *p);
/* called by a worker's pool_run_each task: count the task as done now, so that the caller's
   pool_run_each returns while the task goes on (it must not wait for the caller). The worker
   takes its part of the next job when the task returns; what the task still writes is the
   caller's to synchronise. */
void pool_detach(void);
/* CLOCK_MONOTONIC in nanoseconds */
long clock_ns(void);
/* wait until *counter (published with release order) reaches want */
void pool_wait_progress(const volatile long *counter, long want);

#endif
