/*
 * Node-API bindings of the native MLP engine (plain C, no npm dependency). Every function
 * checks its arguments and throws a TypeError/RangeError instead of touching bad memory.
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "gemm.h"
#include "siamese.h"
#include "vmath.h"

#define CHECK(call)                                     \
  do {                                                  \
    if ((call) != napi_ok) return throw_last(env);      \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "native call failed");
  return NULL;
}

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

typedef struct {
  void *data;
  size_t length; /* elements */
  napi_typedarray_type type;
} tarray;

static int get_tarray(napi_env env, napi_value v, napi_typedarray_type want, tarray *out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_value buf;
  size_t off;
  if (napi_get_typedarray_info(env, v, &out->type, &out->length, &out->data, &buf, &off) != napi_ok) return 0;
  return out->type == want;
}

static int get_int(napi_env env, napi_value v, int *out) {
  int32_t x;
  if (napi_get_value_int32(env, v, &x) != napi_ok) return 0;
  *out = x;
  return 1;
}

/* A handle is an external holding a slot: the network's kind and a pointer to it, so that
   dispose() can free the network early (later calls see NULL instead of freed memory) and an MLP
   call never takes a CNN. */
enum { NET_MLP = 0, NET_CNN = 1 };
typedef struct {
  int kind;
  void *net;
} net_slot;

static void destroy_net(net_slot *slot) {
  if (!slot->net) return;
  if (slot->kind == NET_MLP) mlp_destroy((mlp *)slot->net);
  else cnn_destroy((cnn *)slot->net);
  slot->net = NULL;
}

static void finalize_model(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  destroy_net((net_slot *)data);
  free(data);
}

static void *get_net(napi_env env, napi_value v, int kind) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) {
    napi_throw_type_error(env, NULL, "expected a native model handle");
    return NULL;
  }
  napi_get_value_external(env, v, &data);
  net_slot *slot = (net_slot *)data;
  if (!slot || slot->kind != kind) {
    napi_throw_type_error(env, NULL, kind == NET_MLP ? "expected a native MLP handle" : "expected a native CNN handle");
    return NULL;
  }
  if (!slot->net) napi_throw_error(env, NULL, "the native model was disposed");
  return slot->net;
}

static mlp *get_model(napi_env env, napi_value v) { return (mlp *)get_net(env, v, NET_MLP); }
static cnn *get_cnn(napi_env env, napi_value v) { return (cnn *)get_net(env, v, NET_CNN); }

static napi_value wrap_net(napi_env env, int kind, void *net) {
  net_slot *slot = (net_slot *)malloc(sizeof(net_slot));
  if (!slot) {
    if (kind == NET_MLP) mlp_destroy((mlp *)net);
    else cnn_destroy((cnn *)net);
    napi_throw_error(env, NULL, "native engine: out of memory");
    return NULL;
  }
  slot->kind = kind;
  slot->net = net;
  napi_value ext;
  if (napi_create_external(env, slot, finalize_model, NULL, &ext) != napi_ok) {
    destroy_net(slot);
    free(slot);
    return throw_last(env);
  }
  return ext;
}

#define ARGS(n)                                                        \
  size_t argc = (n);                                                   \
  napi_value argv[(n) > 0 ? (n) : 1];                                  \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));         \
  if (argc < (n)) return fail(env, "too few arguments");

/* The bindings that serve both networks are registered twice (as "threads" and "cnnThreads", ...)
   with the kind they take as callback data; the MLP's and the CNN's C calls match name for name. */
static const int NET_KINDS[2] = {NET_MLP, NET_CNN};
#define NET_DATA(kind) ((void *)&NET_KINDS[kind])

#define ARGS_NET(n)                                                    \
  size_t argc = (n);                                                   \
  napi_value argv[(n)];                                                \
  void *kind_data = NULL;                                              \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, &kind_data));   \
  if (argc < (n)) return fail(env, "too few arguments");               \
  const int kind = *(const int *)kind_data;                            \
  void *net = get_net(env, argv[0], kind);                             \
  if (!net) return NULL;

/* mlp_FN(net, ...) or cnn_FN(net, ...) by the handle's kind; a field of either struct */
#define NET_CALL(fn, ...) \
  (kind == NET_MLP ? mlp_##fn((mlp *)net, ##__VA_ARGS__) : cnn_##fn((cnn *)net, ##__VA_ARGS__))
#define NET_FIELD(f) (kind == NET_MLP ? ((mlp *)net)->f : ((cnn *)net)->f)
#define NET_EMB_DIM (kind == NET_MLP ? ((mlp *)net)->w[((mlp *)net)->nl] : ((cnn *)net)->C[((cnn *)net)->nb])

/* (dropoutRate, threads) at args[0..1], as both create calls take them: false after throwing */
static bool get_rate_threads(napi_env env, napi_value *args, double *rate, int *threads) {
  if (napi_get_value_double(env, args[0], rate) != napi_ok) {
    throw_last(env);
    return false;
  }
  if (!(*rate >= 0 && *rate < 1)) {
    fail(env, "dropout rate must be in [0, 1)");
    return false;
  }
  if (!get_int(env, args[1], threads) || *threads < 1 || *threads > 256) {
    fail(env, "threads must be in 1..256");
    return false;
  }
  return true;
}

/* create(widths: Int32Array, dropoutRate: number, threads: number) */
static napi_value js_create(napi_env env, napi_callback_info info) {
  ARGS(3);
  tarray w;
  if (!get_tarray(env, argv[0], napi_int32_array, &w) || w.length < 2 || w.length > MAX_LAYERS + 1)
    return fail(env, "widths must be an Int32Array of 2..9 layer widths");
  const int32_t *wd = (const int32_t *)w.data;
  for (size_t i = 0; i < w.length; i++)
    if (wd[i] < 1 || wd[i] > (1 << 20)) return fail(env, "layer widths must be in 1..2^20");
  double rate;
  int threads;
  if (!get_rate_threads(env, argv + 1, &rate, &threads)) return NULL;
  int widths[MAX_LAYERS + 1];
  for (size_t i = 0; i < w.length; i++) widths[i] = wd[i];
  mlp *m = mlp_create(widths, (int)w.length - 1, rate, threads);
  if (!m) return fail(env, "native engine: out of memory");
  return wrap_net(env, NET_MLP, m);
}

static napi_value js_dispose(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *data = NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[0], &t));
  if (t != napi_external) return fail(env, "expected a native model handle");
  CHECK(napi_get_value_external(env, argv[0], &data));
  if (data) destroy_net((net_slot *)data);
  return undef(env);
}

/* threads(handle, n) / cnnThreads: n > 0 sets the worker count; returns the count */
static napi_value js_threads(napi_env env, napi_callback_info info) {
  ARGS_NET(2);
  int t;
  if (!get_int(env, argv[1], &t)) return fail(env, "threads must be an integer");
  if (t > 0 && NET_CALL(set_threads, t) != 0) return fail(env, "native engine: out of memory");
  napi_value r;
  CHECK(napi_create_int32(env, NET_FIELD(nthreads), &r));
  return r;
}

/* param(handle, kind, slot, idx, array, write) / cnnParam: kind 0 weights, 1 gradients, 2 optimizer slot */
static napi_value js_param(napi_env env, napi_callback_info info) {
  ARGS_NET(6);
  int what, slot, idx;
  bool write;
  if (!get_int(env, argv[1], &what) || !get_int(env, argv[2], &slot) || !get_int(env, argv[3], &idx))
    return fail(env, "bad parameter address");
  CHECK(napi_get_value_bool(env, argv[5], &write));
  if (idx < 0 || idx >= 2 * NET_FIELD(nl) || slot < 0 || slot >= MAX_SLOTS || what < 0 || what > 2)
    return fail(env, "parameter index out of range");
  tarray a;
  if (!get_tarray(env, argv[4], napi_float32_array, &a) || a.length != NET_CALL(param_size, idx))
    return fail(env, "parameter array must be a Float32Array of the parameter's size");
  float *p = (float *)a.data;
  if (what == 0) {
    if (write) NET_CALL(set_param, idx, p);
    else NET_CALL(get_param, idx, p);
  } else if (what == 1) {
    if (write) return fail(env, "gradients are read-only");
    NET_CALL(get_grad, idx, p);
  } else {
    if (write) NET_CALL(set_slot, slot, idx, p);
    else NET_CALL(get_slot, slot, idx, p);
  }
  return undef(env);
}

static napi_value js_zero_slots(napi_env env, napi_callback_info info) {
  ARGS_NET(1);
  NET_CALL(zero_slots);
  return undef(env);
}

static napi_value js_nonfinite(napi_env env, napi_callback_info info) {
  ARGS_NET(1);
  napi_value r;
  CHECK(napi_create_double(env, (double)NET_CALL(nonfinite), &r));
  return r;
}

/* a mode argument: -1 (leave as it is) or 0..max; false after throwing */
static bool get_mode(napi_env env, napi_value v, int max, int *mode) {
  if (get_int(env, v, mode) && *mode >= -1 && *mode <= max) return true;
  fail(env, "unknown mode");
  return false;
}

/* inputMode(handle, mode: -1 | INPUT_AUTO | INPUT_DENSE | INPUT_SPARSE): 1 if this build has the
   sparse path, + 2 if the last training forward pass took it */
static napi_value js_input_mode(napi_env env, napi_callback_info info) {
  ARGS(2);
  mlp *m = get_model(env, argv[0]);
  int mode;
  if (!m || !get_mode(env, argv[1], INPUT_SPARSE, &mode)) return NULL;
  if (mode >= 0) mlp_set_input_mode(m, mode);
  napi_value r;
  CHECK(napi_create_int32(env, (mlp_has_sparse() ? 1 : 0) | (m->sparse ? 2 : 0), &r));
  return r;
}

/* schedule(handle, schedule: -1 | SCHEDULE_AUTO | SCHEDULE_SPLIT | SCHEDULE_ROLES,
            stores: -1 | STORES_AUTO | STORES_PLAIN | STORES_STREAMED): 1 if the last training
   step ran in roles, + 2 if its first layer had run ahead (mlp_set_next), + 4 if it streamed */
static napi_value js_schedule(napi_env env, napi_callback_info info) {
  ARGS(3);
  mlp *m = get_model(env, argv[0]);
  int mode, stores;
  if (!m || !get_mode(env, argv[1], SCHEDULE_ROLES, &mode) || !get_mode(env, argv[2], STORES_STREAMED, &stores))
    return NULL;
  if (mode >= 0) mlp_set_schedule(m, mode);
  if (stores >= 0) mlp_set_stores(m, stores);
  napi_value r;
  CHECK(napi_create_int32(env, (m->roles ? 1 : 0) | (m->ran_ahead ? 2 : 0) | (m->roles && m->streamed ? 4 : 0), &r));
  return r;
}

static int check_rows(napi_env env, const tarray *img, int in_dim, const tarray *rows) {
  if (in_dim < 1) return 0;
  const size_t count = img->length / (size_t)in_dim;
  const int32_t *r = (const int32_t *)rows->data;
  for (size_t i = 0; i < rows->length; i++)
    if (r[i] < 0 || (size_t)r[i] >= count) {
      napi_throw_range_error(env, NULL, "image index out of range");
      return 0;
    }
  return 1;
}

/* (images: Uint8Array, inDim, rows: Int32Array) at args[0..2], inDim the network's input size
   (in_size), rows at least min_rows long: false after throwing (the rows' range is check_rows' to
   test) */
static bool get_batch(napi_env env, napi_value *args, int in_size, size_t min_rows, tarray *img, int *in_dim,
                      tarray *rows) {
  const char *err = NULL;
  if (!get_tarray(env, args[0], napi_uint8_array, img)) err = "images must be a Uint8Array";
  else if (!get_int(env, args[1], in_dim) || *in_dim != in_size) err = "image size does not match the network";
  else if (!get_tarray(env, args[2], napi_int32_array, rows) || rows->length < min_rows) err = "rows must be an Int32Array";
  if (err) fail(env, err);
  return err == NULL;
}

/* forwardTrain(handle, images: Uint8Array, inDim, rows: Int32Array, rng: Uint32Array(4) | null, out: Float32Array) */
static napi_value js_forward_train(napi_env env, napi_callback_info info) {
  ARGS(6);
  mlp *m = get_model(env, argv[0]);
  if (!m) return NULL;
  tarray img, rows, out, rng;
  int in_dim;
  if (!get_batch(env, argv + 1, m->w[0], 1, &img, &in_dim, &rows)) return NULL;
  if (!get_tarray(env, argv[4], napi_uint32_array, &rng) || rng.length != 4) return fail(env, "rng must be a Uint32Array(4)");
  if (!get_tarray(env, argv[5], napi_float32_array, &out) || out.length != rows.length * (size_t)m->w[m->nl])
    return fail(env, "out must be a Float32Array of rows x embedding size");
  if (!check_rows(env, &img, in_dim, &rows)) return NULL;
  if (mlp_forward_train(m, (const uint8_t *)img.data, in_dim, (const int32_t *)rows.data, (int)rows.length,
                        (uint32_t *)rng.data, (float *)out.data) != 0)
    return fail(env, "native forward pass failed (out of memory?)");
  return undef(env);
}

/* (optKind, coef: Float32Array, apply: boolean) at args[0..2]: false after throwing */
static bool get_optimizer(napi_env env, napi_value *args, optcfg *o, bool *apply) {
  tarray coef;
  int kind;
  memset(o, 0, sizeof(*o));
  if (!get_int(env, args[0], &kind) || kind < OPT_SGD || kind > OPT_ADAGRAD) {
    fail(env, "unknown optimizer kind");
    return false;
  }
  if (!get_tarray(env, args[1], napi_float32_array, &coef) || coef.length > 8) {
    fail(env, "bad optimizer coefficients");
    return false;
  }
  if (napi_get_value_bool(env, args[2], apply) != napi_ok) {
    fail(env, "apply must be a boolean");
    return false;
  }
  o->kind = kind;
  memcpy(o->c, coef.data, coef.length * sizeof(float));
  return true;
}

/* backward(handle, dEmb: Float32Array, optKind, coef: Float32Array, apply: boolean) / cnnBackward */
static napi_value js_backward(napi_env env, napi_callback_info info) {
  ARGS_NET(5);
  tarray g;
  if (NET_FIELD(rows) < 1) return fail(env, "backward before a training forward pass");
  if (!get_tarray(env, argv[1], napi_float32_array, &g) || g.length != (size_t)NET_FIELD(rows) * NET_EMB_DIM)
    return fail(env, "dEmb must be a Float32Array of rows x embedding size");
  optcfg o;
  bool apply;
  if (!get_optimizer(env, argv + 2, &o, &apply)) return NULL;
  const float *d = (const float *)g.data;
  const int rc = kind == NET_MLP ? mlp_backward((mlp *)net, d, &o, apply)
                                 : cnn_backward((cnn *)net, d, NULL, NULL, NULL, 0, &o, apply);
  if (rc != 0) return fail(env, "native backward pass failed");
  return undef(env);
}

/* embed(handle, images: Uint8Array, inDim, rows: Int32Array, out: Float32Array) */
static napi_value js_embed(napi_env env, napi_callback_info info) {
  ARGS(5);
  mlp *m = get_model(env, argv[0]);
  if (!m) return NULL;
  tarray img, rows, out;
  int in_dim;
  if (!get_batch(env, argv + 1, m->w[0], 0, &img, &in_dim, &rows)) return NULL;
  if (!get_tarray(env, argv[4], napi_float32_array, &out) || out.length != rows.length * (size_t)m->w[m->nl])
    return fail(env, "out must be a Float32Array of rows x embedding size");
  if (!check_rows(env, &img, in_dim, &rows)) return NULL;
  if (mlp_embed(m, (const uint8_t *)img.data, in_dim, (const int32_t *)rows.data, (int)rows.length, (float *)out.data) != 0)
    return fail(env, "native embedding failed");
  return undef(env);
}

/* embedFloat(handle, x: Float32Array [n x inDim], out: Float32Array) */
static napi_value js_embed_float(napi_env env, napi_callback_info info) {
  ARGS(3);
  mlp *m = get_model(env, argv[0]);
  if (!m) return NULL;
  tarray x, out;
  if (!get_tarray(env, argv[1], napi_float32_array, &x) || x.length % (size_t)m->w[0] != 0)
    return fail(env, "x must be a Float32Array of rows x input size");
  const size_t n = x.length / (size_t)m->w[0];
  if (!get_tarray(env, argv[2], napi_float32_array, &out) || out.length != n * (size_t)m->w[m->nl])
    return fail(env, "out must be a Float32Array of rows x embedding size");
  if (mlp_embed_float(m, (const float *)x.data, (int)n, (float *)out.data) != 0) return fail(env, "native embedding failed");
  return undef(env);
}

static int check_pairs(napi_env env, const tarray *emb, int dim, const tarray *ia, const tarray *ib) {
  if (dim < 1 || emb->length % (size_t)dim != 0 || ia->length != ib->length) {
    napi_throw_range_error(env, NULL, "embedding rows and pair indices do not fit");
    return 0;
  }
  const size_t rows = emb->length / (size_t)dim;
  const int32_t *a = (const int32_t *)ia->data, *b = (const int32_t *)ib->data;
  for (size_t i = 0; i < ia->length; i++)
    if (a[i] < 0 || (size_t)a[i] >= rows || b[i] < 0 || (size_t)b[i] >= rows) {
      napi_throw_range_error(env, NULL, "pair index out of range");
      return 0;
    }
  return 1;
}

/* distances(emb: Float32Array, dim, ia: Int32Array, ib: Int32Array, floor, d: Float32Array, sq: Float64Array) */
static napi_value js_distances(napi_env env, napi_callback_info info) {
  ARGS(7);
  tarray emb, ia, ib, d, sq;
  int dim;
  double floor_;
  if (!get_tarray(env, argv[0], napi_float32_array, &emb) || !get_int(env, argv[1], &dim) ||
      !get_tarray(env, argv[2], napi_int32_array, &ia) || !get_tarray(env, argv[3], napi_int32_array, &ib))
    return fail(env, "distances: bad arguments");
  CHECK(napi_get_value_double(env, argv[4], &floor_));
  if (!get_tarray(env, argv[5], napi_float32_array, &d) || !get_tarray(env, argv[6], napi_float64_array, &sq) ||
      d.length != ia.length || sq.length != ia.length)
    return fail(env, "distances: output arrays must hold one value per pair");
  if (!check_pairs(env, &emb, dim, &ia, &ib)) return NULL;
  tail_distances((const float *)emb.data, dim, (const int32_t *)ia.data, (const int32_t *)ib.data, (int)ia.length,
                 floor_, (float *)d.data, (double *)sq.data);
  return undef(env);
}

/* backpropDistances(emb, dim, ia, ib, floor, d: Float32Array, sq: Float64Array, g: Float64Array, gEmb: Float32Array) */
static napi_value js_backprop(napi_env env, napi_callback_info info) {
  ARGS(9);
  tarray emb, ia, ib, d, sq, g, ge;
  int dim;
  double floor_;
  if (!get_tarray(env, argv[0], napi_float32_array, &emb) || !get_int(env, argv[1], &dim) ||
      !get_tarray(env, argv[2], napi_int32_array, &ia) || !get_tarray(env, argv[3], napi_int32_array, &ib))
    return fail(env, "backpropDistances: bad arguments");
  CHECK(napi_get_value_double(env, argv[4], &floor_));
  if (!get_tarray(env, argv[5], napi_float32_array, &d) || !get_tarray(env, argv[6], napi_float64_array, &sq) ||
      !get_tarray(env, argv[7], napi_float64_array, &g) || !get_tarray(env, argv[8], napi_float32_array, &ge) ||
      d.length != ia.length || sq.length != ia.length || g.length != ia.length || ge.length != emb.length)
    return fail(env, "backpropDistances: array sizes do not fit");
  if (!check_pairs(env, &emb, dim, &ia, &ib)) return NULL;
  tail_backprop((const float *)emb.data, dim, (const int32_t *)ia.data, (const int32_t *)ib.data, (int)ia.length, floor_,
                (const float *)d.data, (const double *)sq.data, (const double *)g.data, (float *)ge.data);
  return undef(env);
}

/* ---------------------------------------------------------------- the batch losses' shared helpers */

/* msg as a TypeError (an argument of another type) or, with range, a RangeError (another size
   or value); NULL */
static napi_value fail_arg(napi_env env, bool range, const char *msg) {
  if (range) napi_throw_range_error(env, NULL, msg);
  else napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* a typed array of the wanted type and exactly `need` elements: 0; 1 where it is not one of that
   type, 2 where it has another length */
static int get_exact(napi_env env, napi_value v, napi_typedarray_type want, size_t need, tarray *t) {
  if (!get_tarray(env, v, want, t)) return 1;
  return t->length == need ? 0 : 2;
}

/* The kernels' workspace, one per Node environment (the main thread and each worker thread:
   calls of one never overlap), freed with the environment. It grows to a call's need and keeps
   it for the next call of that size (a trainer: the same batch every step, no allocation per
   step), but does not keep a large call's memory for the process's life: it shrinks to the need
   after WORKSPACE_SHRINK_CALLS calls in a row that each needed under a quarter of what it held,
   and where it holds more than WORKSPACE_KEEP_BYTES it is freed after a call unless that call
   needed what the one before did. */
#define WORKSPACE_SHRINK_CALLS 8
#define WORKSPACE_KEEP_BYTES ((size_t)64 << 20)
typedef struct {
  double *p;
  size_t cap;       /* doubles */
  size_t need[2];   /* the last call's need and the one's before, doubles */
  int small;        /* calls in a row that needed under cap / 4 */
  int64_t allocs;   /* allocations so far (workspaceAllocations, for the tests) */
} workspace;

static void free_workspace(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(((workspace *)data)->p);
  free(data);
}

/* this environment's workspace, created empty on first use; NULL after throwing (create) or
   without one (!create) */
static workspace *workspace_of(napi_env env, bool create) {
  workspace *w = NULL;
  if (napi_get_instance_data(env, (void **)&w) != napi_ok) w = NULL;
  if (w || !create) return w;
  w = (workspace *)calloc(1, sizeof *w);
  if (!w || napi_set_instance_data(env, w, free_workspace, NULL) != napi_ok) {
    free(w);
    fail(env, "native batch loss kernel: out of memory");
    return NULL;
  }
  return w;
}

/* at least n doubles, 64-byte aligned; NULL after throwing */
static double *workspace_for(napi_env env, size_t n) {
  workspace *w = workspace_of(env, true);
  if (!w) return NULL;
  w->small = n < w->cap / 4 ? w->small + 1 : 0;
  w->need[1] = w->need[0];
  w->need[0] = n;
  if (w->cap < n || w->small >= WORKSPACE_SHRINK_CALLS) {
    /* the old block freed first: the peak is the larger of the two, not their sum */
    free(w->p);
    w->p = NULL;
    w->cap = 0;
    w->small = 0;
    const size_t cap = (n + 7) / 8 * 8;
    double *p = (double *)aligned_alloc(64, cap * sizeof(double));
    if (!p) {
      fail(env, "native batch loss kernel: out of memory");
      return NULL;
    }
    w->p = p;
    w->cap = cap;
    w->allocs++;
  }
  return w->p;
}

/* after a call: a workspace above WORKSPACE_KEEP_BYTES freed unless the call needed what the one
   before it did */
static void workspace_done(napi_env env) {
  workspace *w = workspace_of(env, false);
  if (w && w->cap * sizeof(double) > WORKSPACE_KEEP_BYTES && w->need[0] != w->need[1]) {
    free(w->p);
    w->p = NULL;
    w->cap = 0;
  }
}

/* The call's workspace: `need` doubles for the kernel, then the labels' copy, each value read
   once, whole, here (a SharedArrayBuffer's may change while the call runs: the checks and the
   kernels read only the copy, so a value checked is the value used); NULL after throwing */
static double *workspace_with_labels(napi_env env, size_t need, const tarray *labels, int32_t **lab) {
  double *work = workspace_for(env, need + (labels->length + 1) / 2);
  if (!work) return NULL;
  int32_t *l = (int32_t *)(work + need);
  const volatile int32_t *src = (const volatile int32_t *)labels->data;
  for (size_t i = 0; i < labels->length; i++) l[i] = src[i];
  *lab = l;
  return work;
}

/* workspaceBytes(): the bytes the workspace holds now; workspaceAllocations(): how many times it
   was allocated (both for the tests) */
static napi_value js_workspace_bytes(napi_env env, napi_callback_info info) {
  (void)info;
  const workspace *w = workspace_of(env, false);
  napi_value r;
  CHECK(napi_create_double(env, w ? (double)(w->cap * sizeof(double)) : 0, &r));
  return r;
}

static napi_value js_workspace_allocations(napi_env env, napi_callback_info info) {
  (void)info;
  const workspace *w = workspace_of(env, false);
  napi_value r;
  CHECK(napi_create_double(env, w ? (double)w->allocs : 0, &r));
  return r;
}

/* ---------------------------------------------------------------- the class-weight losses (batchproxy.c) */

/* batchProxyLoss(kind, p1, p2, x: Float32Array [n x dim], labels: Int32Array [n], w: Float32Array
   [classes x dim], dim, grad: Float32Array [n x dim], wgrad: Float32Array [classes x dim], acc:
   Float64Array [1] or undefined): the loss; kind 0 arcface (margin in radians, scale), 1 cosface
   (margin, scale), 2 proxy-anchor (margin, alpha); with acc, the batch's accuracy
   (batchCosineAccuracy's) into acc[0]. Every array of exactly its size. */
static napi_value js_batch_proxy_loss(napi_env env, napi_callback_info info) {
  ARGS(10);
  int kind, dim;
  double p1, p2;
  tarray x, labels, w, grad, wgrad, acc = {0};
  if (!get_int(env, argv[0], &kind) || kind < BATCH_PROXY_ARCFACE || kind > BATCH_PROXY_ANCHOR)
    return fail(env, "batchProxyLoss: kind must be 0 (arcface), 1 (cosface) or 2 (proxy-anchor)");
  if (napi_get_value_double(env, argv[1], &p1) != napi_ok || napi_get_value_double(env, argv[2], &p2) != napi_ok)
    return fail_arg(env, false, "batchProxyLoss: the loss's two parameters must be numbers");
  if (!get_int(env, argv[6], &dim) || dim < 1) return fail_arg(env, true, "batchProxyLoss: dim must be a positive integer");
  if (!get_tarray(env, argv[3], napi_float32_array, &x) || !get_tarray(env, argv[4], napi_int32_array, &labels) ||
      !get_tarray(env, argv[5], napi_float32_array, &w) || !get_tarray(env, argv[7], napi_float32_array, &grad) ||
      !get_tarray(env, argv[8], napi_float32_array, &wgrad))
    return fail_arg(env, false, "batchProxyLoss: x, w, grad and wgrad must be Float32Arrays and labels an Int32Array");
  const size_t n = labels.length, classes = w.length / (size_t)dim;
  if (n < 1 || n > (1 << 20) || classes < 1 || classes > (1 << 20) || w.length != classes * dim || x.length != n * dim ||
      n * dim >= (1u << 29) || classes * dim >= (1u << 29) || n * classes > INT32_MAX || grad.length != n * dim ||
      wgrad.length != classes * dim)
    return fail_arg(env, true, "batchProxyLoss: array sizes do not fit: x n x dim, w classes x dim (each below 2^29 values), grad and wgrad as x and w, n = labels.length >= 1");
  napi_valuetype at;
  CHECK(napi_typeof(env, argv[9], &at));
  const int bad = at == napi_undefined ? 0 : !get_tarray(env, argv[9], napi_float64_array, &acc) ? 1 : acc.length != 1 || n > 46340 ? 2 : 0;
  if (bad) return fail_arg(env, bad == 2, "batchProxyLoss: acc must be a Float64Array of one value (and labels at most 46340) or undefined");
  const size_t need = batch_proxy_loss_work((int)n, (int)classes, dim) + (acc.data ? (batch_cosine_accuracy_work((int)n, dim) + 1) / 2 : 0);
  int32_t *lab;
  double *work = workspace_with_labels(env, need, &labels, &lab);
  if (!work) return NULL;
  for (size_t i = 0; i < n; i++)
    if (lab[i] < 0 || (size_t)lab[i] >= classes) {
      workspace_done(env);
      return fail_arg(env, true, "batchProxyLoss: a label is not a class index in [0, classes)");
    }
  const double loss = batch_proxy_loss(kind, p1, p2, (const float *)x.data, lab, (int)n, (const float *)w.data, (int)classes, dim,
                                       (float *)grad.data, (float *)wgrad.data, (double *)acc.data, work);
  workspace_done(env);
  napi_value r;
  CHECK(napi_create_double(env, loss, &r));
  return r;
}

/* batchCosineAccuracy(x: Float32Array [n x dim], dim, labels: Int32Array [n], cos?: Float32Array
   [n x n]): the best-threshold accuracy over the pairs i < j ranked by their float32 cosines
   (written to cos where given), or -1 where x holds an infinite or NaN value */
static napi_value js_batch_cosine_accuracy(napi_env env, napi_callback_info info) {
  ARGS(4);
  int dim;
  tarray x, labels, cs = {0};
  if (!get_int(env, argv[1], &dim) || dim < 1) return fail_arg(env, true, "batchCosineAccuracy: dim must be a positive integer");
  int bad = !get_tarray(env, argv[2], napi_int32_array, &labels) ? 1 : labels.length > 46340 ? 2 : 0;
  if (bad) return fail_arg(env, bad == 2, "batchCosineAccuracy: labels must be an Int32Array of at most 46340 values");
  const size_t n = labels.length;
  bad = get_exact(env, argv[0], napi_float32_array, n * dim, &x);
  if (bad || n * dim >= (1u << 29))
    return fail_arg(env, bad != 1, "batchCosineAccuracy: x must be a Float32Array of labels.length x dim values (below 2^29)");
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[3], &t));
  if (t != napi_undefined && (bad = get_exact(env, argv[3], napi_float32_array, n * n, &cs)) != 0)
    return fail_arg(env, bad == 2, "batchCosineAccuracy: cos must be a Float32Array of n x n values");
  napi_value r;
  if (n == 0) {
    CHECK(napi_create_double(env, 0, &r));
    return r;
  }
  int32_t *lab;
  double *work = workspace_with_labels(env, (batch_cosine_accuracy_work((int)n, dim) + 1) / 2, &labels, &lab);
  if (!work) return NULL;
  const double acc = batch_cosine_accuracy((const float *)x.data, lab, (int)n, dim, NULL, (float *)cs.data, (float *)work);
  workspace_done(env);
  CHECK(napi_create_double(env, acc, &r));
  return r;
}

/* batchPairLoss(kind, params: Float64Array, x: Float32Array [n x dim], labels: Int32Array [n], dim,
   grad: Float32Array [n x dim], sims: Float64Array [n x n] or null/undefined, acc: Float64Array [1]
   or undefined): the loss (batchpair.c); S into sims where given; with acc, the batch's best-threshold
   pair accuracy over the loss's similarities into acc[0] (-1 where one is NaN). Every array of
   exactly its size. */
static napi_value js_batch_pair_loss(napi_env env, napi_callback_info info) {
  ARGS(8);
  static const int nparams[BATCH_PAIR_KINDS] = {3, 1, 1, 2};
  int kind, dim, bad;
  tarray prm, x, labels, grad, sims = {0}, acc = {0};
  if (!get_int(env, argv[0], &kind) || kind < 0 || kind >= BATCH_PAIR_KINDS)
    return fail(env, "batchPairLoss: kind must be 0 (multi-similarity), 1 (nt-xent), 2 (supcon) or 3 (circle)");
  if ((bad = get_exact(env, argv[1], napi_float64_array, (size_t)nparams[kind], &prm)) != 0)
    return fail_arg(env, bad == 2, "batchPairLoss: params must be a Float64Array of the loss's parameters");
  bad = !get_tarray(env, argv[3], napi_int32_array, &labels) ? 1 : labels.length < 1 || labels.length > 46340 ? 2 : 0;
  if (bad) return fail_arg(env, bad == 2, "batchPairLoss: labels must be an Int32Array of 1 to 46340 values");
  const int n = (int)labels.length;
  if (!get_int(env, argv[4], &dim) || dim < 1 || (int64_t)n * dim > INT32_MAX / 4)
    return fail_arg(env, true, "batchPairLoss: dim must be a positive integer (and n x dim below 2^29)");
  const size_t m = (size_t)n * dim;
  napi_valuetype st;
  CHECK(napi_typeof(env, argv[6], &st));
  if ((bad = get_exact(env, argv[2], napi_float32_array, m, &x)) != 0 || (bad = get_exact(env, argv[5], napi_float32_array, m, &grad)) != 0 ||
      (st != napi_undefined && st != napi_null && (bad = get_exact(env, argv[6], napi_float64_array, (size_t)n * n, &sims)) != 0))
    return fail_arg(env, bad == 2, "batchPairLoss: x and grad (Float32Array) must hold n x dim values and sims (Float64Array) n x n or be null, n = labels.length");
  napi_valuetype at;
  CHECK(napi_typeof(env, argv[7], &at));
  if (at != napi_undefined && (bad = get_exact(env, argv[7], napi_float64_array, 1, &acc)) != 0)
    return fail_arg(env, bad == 2, "batchPairLoss: acc must be a Float64Array of one value or undefined");
  int32_t *lab;
  double *work = workspace_with_labels(env, batch_pair_loss_work(n, dim) + (acc.data ? (batch_sweep_work(n) + 1) / 2 : 0), &labels, &lab);
  if (!work) return NULL;
  const double loss = batch_pair_loss(kind, (const double *)prm.data, (const float *)x.data, lab, n, dim, (float *)grad.data,
                                      (double *)sims.data, (double *)acc.data, work);
  workspace_done(env);
  napi_value r;
  CHECK(napi_create_double(env, loss, &r));
  return r;
}
/* vmath(op, x, y): y = exp(x) (op 0, Float64Arrays), log(x) (op 1, Float64Arrays) or expf(x)
   (op 2, Float32Arrays): vmath.c's functions, for the tests */
static napi_value js_vmath(napi_env env, napi_callback_info info) {
  ARGS(3);
  int op;
  tarray x, y;
  if (!get_int(env, argv[0], &op) || op < 0 || op > 2) return fail(env, "vmath: op must be 0 (exp), 1 (log) or 2 (expf)");
  const napi_typedarray_type t = op == 2 ? napi_float32_array : napi_float64_array;
  if (!get_tarray(env, argv[1], t, &x) || !get_tarray(env, argv[2], t, &y) || y.length != x.length || x.length > INT32_MAX)
    return fail(env, "vmath: x and y must be arrays of the same length (Float64Array, or Float32Array for op 2)");
  if (op == 0) vm_exp((const double *)x.data, (double *)y.data, (int)x.length);
  else if (op == 1) vm_log((const double *)x.data, (double *)y.data, (int)x.length);
  else vm_expf((const float *)x.data, (float *)y.data, (int)x.length);
  return undef(env);
}

/* backwardPairs(handle, ia: Int32Array, ib: Int32Array, coef: Float32Array, optKind, coef: Float32Array, apply)
   / cnnBackwardPairs */
static napi_value js_backward_pairs(napi_env env, napi_callback_info info) {
  ARGS_NET(7);
  tarray ia, ib, k;
  const int rows = NET_FIELD(rows);
  if (rows < 1) return fail(env, "backward before a training forward pass");
  if (!get_tarray(env, argv[1], napi_int32_array, &ia) || !get_tarray(env, argv[2], napi_int32_array, &ib) ||
      !get_tarray(env, argv[3], napi_float32_array, &k) || ib.length != ia.length || k.length != ia.length)
    return fail(env, "backwardPairs: ia, ib and coef must be arrays of one length");
  const int32_t *a = (const int32_t *)ia.data, *b = (const int32_t *)ib.data;
  for (size_t i = 0; i < ia.length; i++)
    if (a[i] < 0 || a[i] >= rows || b[i] < 0 || b[i] >= rows) {
      napi_throw_range_error(env, NULL, "pair index out of range");
      return NULL;
    }
  optcfg o;
  bool apply;
  if (!get_optimizer(env, argv + 4, &o, &apply)) return NULL;
  const float *c = (const float *)k.data;
  const int n = (int)ia.length;
  const int rc = kind == NET_MLP ? mlp_backward_pairs((mlp *)net, a, b, c, n, &o, apply)
                                 : cnn_backward((cnn *)net, NULL, a, b, c, n, &o, apply);
  if (rc != 0) return fail(env, "native backward pass failed");
  return undef(env);
}

/* setNext(handle, images: Uint8Array, inDim, rows: Int32Array): boolean (see mlp_set_next) */
static napi_value js_set_next(napi_env env, napi_callback_info info) {
  ARGS(4);
  mlp *m = get_model(env, argv[0]);
  if (!m) return NULL;
  tarray img, rows;
  int in_dim;
  if (!get_batch(env, argv + 1, m->w[0], 1, &img, &in_dim, &rows)) return NULL;
  if (!check_rows(env, &img, in_dim, &rows)) return NULL;
  const int taken = mlp_set_next(m, (const uint8_t *)img.data, in_dim, (const int32_t *)rows.data, (int)rows.length);
  napi_value r;
  CHECK(napi_get_boolean(env, taken != 0, &r));
  return r;
}

/* ---------------------------------------------------------------- the CNN (cnn.h) */

/* cnnCreate(dims: Int32Array [h, w, c, k, embedding, filters...], dropoutRate, threads) */
static napi_value js_cnn_create(napi_env env, napi_callback_info info) {
  ARGS(3);
  tarray d;
  if (!get_tarray(env, argv[0], napi_int32_array, &d) || d.length < 6 || d.length > 5 + 64)
    return fail(env, "cnn dims must be an Int32Array [height, width, channels, kernel, embedding, filter counts]");
  const int32_t *v = (const int32_t *)d.data;
  const int nb = (int)d.length - 5;
  const char *err = cnn_shape_error(v[0], v[1], v[2], v[3], v[4], v + 5, nb);
  if (err) return fail(env, err);
  double rate;
  int threads;
  if (!get_rate_threads(env, argv + 1, &rate, &threads)) return NULL;
  cnn *m = cnn_create(v[0], v[1], v[2], v[3], v[4], v + 5, nb, rate, threads);
  if (!m) return fail(env, "native engine: out of memory");
  return wrap_net(env, NET_CNN, m);
}

/* (images: Uint8Array, inDim, rows: Int32Array) of a CNN's input size, at args[0..2], rows in range */
static bool get_cnn_batch(napi_env env, napi_value *args, const cnn *m, tarray *img, int *in_dim, tarray *rows) {
  return get_batch(env, args, m->h * m->w * m->c, 0, img, in_dim, rows) && check_rows(env, img, *in_dim, rows);
}

/* cnnForwardTrain(handle, images, inDim, rows, rng: Uint32Array(4), out: Float32Array) */
static napi_value js_cnn_forward_train(napi_env env, napi_callback_info info) {
  ARGS(6);
  cnn *m = get_cnn(env, argv[0]);
  if (!m) return NULL;
  tarray img, rows, out, rng;
  int in_dim;
  if (!get_cnn_batch(env, argv + 1, m, &img, &in_dim, &rows)) return NULL;
  if (rows.length < 1 || rows.length > (1 << 20)) return fail(env, "a training batch needs 1..2^20 rows");
  if (!get_tarray(env, argv[4], napi_uint32_array, &rng) || rng.length != 4) return fail(env, "rng must be a Uint32Array(4)");
  if (!get_tarray(env, argv[5], napi_float32_array, &out) || out.length != rows.length * (size_t)m->C[m->nb])
    return fail(env, "out must be a Float32Array of rows x embedding size");
  const int rc = cnn_forward_train(m, (const uint8_t *)img.data, in_dim, (const int32_t *)rows.data, (int)rows.length,
                                  (uint32_t *)rng.data, (float *)out.data);
  if (rc == -3) {
    char msg[200];
    snprintf(msg, sizeof msg, "a training batch of %zu images needs %.0f MB of native buffers, over the %.0f MB limit: use a smaller --batch-size",
             rows.length, (double)rows.length * cnn_row_bytes(m) / 1048576.0, CNN_BATCH_BYTES / 1048576.0);
    return fail(env, msg);
  }
  if (rc != 0) return fail(env, "native forward pass failed (out of memory?)");
  return undef(env);
}

/* cnnEmbed(handle, images, inDim, rows, out: Float32Array) */
static napi_value js_cnn_embed(napi_env env, napi_callback_info info) {
  ARGS(5);
  cnn *m = get_cnn(env, argv[0]);
  if (!m) return NULL;
  tarray img, rows, out;
  int in_dim;
  if (!get_cnn_batch(env, argv + 1, m, &img, &in_dim, &rows)) return NULL;
  if (!get_tarray(env, argv[4], napi_float32_array, &out) || out.length != rows.length * (size_t)m->C[m->nb])
    return fail(env, "out must be a Float32Array of rows x embedding size");
  if (cnn_embed(m, (const uint8_t *)img.data, in_dim, (const int32_t *)rows.data, (int)rows.length, (float *)out.data) != 0)
    return fail(env, "native embedding failed");
  return undef(env);
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  char buf[160];
  snprintf(buf, sizeof buf, "{\"isa\":\"%s\",\"vectorWidth\":%d,\"tile\":\"%dx%d\",\"abi\":12}", ISA_NAME, VW, MR,
           NV * VW);
  napi_value s;
  CHECK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &s));
  return s;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"dispose", NULL, js_dispose, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, js_threads, NULL, NULL, NULL, napi_default, NET_DATA(NET_MLP)},
      {"inputMode", NULL, js_input_mode, NULL, NULL, NULL, napi_default, NULL},
      {"schedule", NULL, js_schedule, NULL, NULL, NULL, napi_default, NULL},
      {"param", NULL, js_param, NULL, NULL, NULL, napi_default, NET_DATA(NET_MLP)},
      {"zeroSlots", NULL, js_zero_slots, NULL, NULL, NULL, napi_default, NET_DATA(NET_MLP)},
      {"nonFinite", NULL, js_nonfinite, NULL, NULL, NULL, napi_default, NET_DATA(NET_MLP)},
      {"forwardTrain", NULL, js_forward_train, NULL, NULL, NULL, napi_default, NULL},
      {"backward", NULL, js_backward, NULL, NULL, NULL, napi_default, NET_DATA(NET_MLP)},
      {"backwardPairs", NULL, js_backward_pairs, NULL, NULL, NULL, napi_default, NET_DATA(NET_MLP)},
      {"setNext", NULL, js_set_next, NULL, NULL, NULL, napi_default, NULL},
      {"embed", NULL, js_embed, NULL, NULL, NULL, napi_default, NULL},
      {"embedFloat", NULL, js_embed_float, NULL, NULL, NULL, napi_default, NULL},
      {"distances", NULL, js_distances, NULL, NULL, NULL, napi_default, NULL},
      {"backpropDistances", NULL, js_backprop, NULL, NULL, NULL, napi_default, NULL},
      {"batchProxyLoss", NULL, js_batch_proxy_loss, NULL, NULL, NULL, napi_default, NULL},
      {"batchCosineAccuracy", NULL, js_batch_cosine_accuracy, NULL, NULL, NULL, napi_default, NULL},
      {"batchPairLoss", NULL, js_batch_pair_loss, NULL, NULL, NULL, napi_default, NULL},
      {"workspaceBytes", NULL, js_workspace_bytes, NULL, NULL, NULL, napi_default, NULL},
      {"workspaceAllocations", NULL, js_workspace_allocations, NULL, NULL, NULL, napi_default, NULL},
      {"vmath", NULL, js_vmath, NULL, NULL, NULL, napi_default, NULL},
      {"cnnCreate", NULL, js_cnn_create, NULL, NULL, NULL, napi_default, NULL},
      {"cnnThreads", NULL, js_threads, NULL, NULL, NULL, napi_default, NET_DATA(NET_CNN)},
      {"cnnParam", NULL, js_param, NULL, NULL, NULL, napi_default, NET_DATA(NET_CNN)},
      {"cnnZeroSlots", NULL, js_zero_slots, NULL, NULL, NULL, napi_default, NET_DATA(NET_CNN)},
      {"cnnNonFinite", NULL, js_nonfinite, NULL, NULL, NULL, napi_default, NET_DATA(NET_CNN)},
      {"cnnForwardTrain", NULL, js_cnn_forward_train, NULL, NULL, NULL, napi_default, NULL},
      {"cnnBackward", NULL, js_backward, NULL, NULL, NULL, napi_default, NET_DATA(NET_CNN)},
      {"cnnBackwardPairs", NULL, js_backward_pairs, NULL, NULL, NULL, napi_default, NET_DATA(NET_CNN)},
      {"cnnEmbed", NULL, js_cnn_embed, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
