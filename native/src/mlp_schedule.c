/*
 * How two threads share an MLP training step (see mlp.c): every phase split between them, or in
 * roles, the first layer on one and the rest on the other, rows handed over piece by piece, with
 * plain or streamed stores; in auto mode the plans are timed and the fastest kept. Also the first
 * layer's path (dense or sparse) for the next step. Every plan gives the same bits.
 */
#include <string.h>

#include "mlp_internal.h"

/*
 * In roles each pass hands rows over piece by piece through the progress counter, and the other
 * thread takes every row handed over so far whenever it comes back for more (take_rows). The
 * pieces' sizes are the trade-off between the waits and the cost of a piece (thread 1 reads and
 * writes its gradient's sums once per pass): ROLE_CHUNK row tiles, but the forward pass's last
 * pieces shrink (halves of what is left over the last two chunks' rows, down to one tile: what
 * thread 0 still has to do once thread 1 is done), and the backward pass's first ones grow (2
 * tiles, then twice the rows so far: thread 1 waits less for its first rows). Against pieces of
 * ROLE_CHUNK tiles throughout, each taken whole (2026-11-30, far vCPUs, C harness, the two ways
 * alternating every 16 steps in one run): the median step 0.4% to 7.7% shorter in 6 runs of
 * 4,000 steps, the most with a busy host.
 */
int forward_piece_end(int i0, int n) {
  const int chunk = ROLE_CHUNK * MR, left = n - i0;
  if (left > 2 * chunk) return i0 + chunk;
  if (left <= MR) return n;
  return i0 + (left / 2 + MR - 1) / MR * MR;
}

int backward_piece_end(int r0, int n) {
  const int chunk = ROLE_CHUNK * MR;
  int size = r0 < MR ? 2 * MR : 2 * r0;
  if (size > chunk) size = chunk;
  return n - r0 <= size ? n : r0 + size;
}

/* the end of the rows handed over from r0 on (waits for at least one) */
int take_rows(const mlp *m, long base, int r0, int n) {
  pool_wait_progress(&m->progress, base + r0 + 1);
  const long got = __atomic_load_n(&m->progress, __ATOMIC_ACQUIRE) - base;
  return got < n ? (int)got : n;
}

/*
 * Two threads in roles (pieces of rows at a time): thread 1 runs the first layer, forward
 * and backward, all its columns; thread 0 the masks, the other layers and the loss gradient.
 * Each layer's weights stay on one core, and the second core starts on the first rows while the
 * first layer works on the next ones. Every sum is the same, so the bits are. When the host
 * tells the next step's rows before a backward pass (mlp_set_next), thread 1 goes on, once its
 * part of that pass is done, with the next step's first layer (into a second buffer, H0next),
 * while thread 0 finishes the other layers and the host works between the calls: the next
 * forward pass finds it done or under way (2026-11-30, far vCPUs, 7 rounds each: 1.61x and
 * 1.64x one thread's speed against 1.52x without, forced roles and auto mode).
 *
 * auto: roles are a candidate when their arithmetic is about even (the seed's MLP on MNIST: 0.9),
 * with plain or streamed stores (role_tmp). Which plan is fastest then depends on where the host
 * put the two vCPUs, and the host moves them now and then: close together, splitting every phase
 * won, and streamed stores made roles 4% slower (the other core's cache was nearer than memory);
 * far apart, roles move less between them and streamed stores made them 3% faster (2026-11-30,
 * C harness, the two stores alternating every 16 steps in one run, 4 and 2 runs). So the engine
 * times the candidates and keeps the fastest for ROLE_KEEP steps, then times them again; with
 * roles forced it times the two stores. A run's first steps are slower (here 2x and more over
 * its first 50 to 150 steps, on one thread as on two), and a plan's first step after a switch
 * pays for moving the data: so the timing starts after ROLE_WARM steps, runs blocks of ROLE_BLOCK
 * steps of each plan in turn, leaves out each block's first step and compares medians. (Timing
 * 20 steps of one schedule and then 20 of the other from the 5th step on measured the first one,
 * split, 1.5x slower than the second, and kept roles where split was 10% faster.)
 */
#define ROLE_WARM 200
#define ROLE_BLOCK 4
#define ROLE_BLOCKS 6
#define ROLE_KEEP 2000
_Static_assert(ROLE_BLOCKS * (ROLE_BLOCK - 1) == TUNE_TIMED, "timed steps per plan");
static int roles_balanced(const mlp *m) {
  const double share = m->term_share < 0 ? 0.5 : m->term_share;
  const double first = share * 2.0 * m->w[0] * m->wp[1];
  double rest = 0;
  for (int l = 1; l < m->nl; l++) rest += 3.0 * m->wp[l] * m->wp[l + 1];
  return first > 0.5 * rest && first < 1.6 * rest;
}

/* the median of n step times (n > 0; sorts them in place), or a huge time for none */
static long median_ns(long *t, int n) {
  if (n < 1) return 1L << 62;
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
      const long x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  return t[n / 2];
}

/* the plans a step may take (c, the first one the default), as the schedule and stores asked
   for allow; returns how many */
static int plan_candidates(const mlp *m, int sparse, int *c) {
  int n = 0;
  if (m->nthreads != 2 || m->ng != 2 || m->schedule == SCHEDULE_SPLIT ||
      (m->schedule == SCHEDULE_AUTO && (!sparse || !roles_balanced(m)))) {
    c[0] = PLAN_SPLIT;
    return 1;
  }
  if (m->schedule == SCHEDULE_AUTO) c[n++] = PLAN_SPLIT;
  if (m->stores != STORES_STREAMED) c[n++] = PLAN_ROLES;
  if (m->stores != STORES_PLAIN) c[n++] = PLAN_STREAMED;
  return n;
}

/* the next training step's plan: the only candidate, or as timed */
int choose_plan(mlp *m, int sparse) {
  int c[PLANS];
  const int nc = plan_candidates(m, sparse, c);
  m->tune_live = 0;
  if (nc == 1) return c[0];
  /* steps [0, WARM) the first candidate; then blocks of each in turn (TIMING steps); then the
     fastest until KEEP more, and the timing again (without the warm-up). The choice waits a
     step, for the last timed step's record (a backward pass that decides the next step records
     its own step after that) */
  const int timing = nc * ROLE_BLOCKS * ROLE_BLOCK;
  m->tune_live = 1;
  m->tune_timing = timing;
  const int k = m->tune_step++ - ROLE_WARM;
  if (k < 0) return c[0];
  if (k < timing) return c[(k / ROLE_BLOCK) % nc];
  if (k == timing + 1) {
    long best = 0;
    for (int i = 0; i < nc; i++) {
      const long t = median_ns(m->tune_ns[c[i]], m->tune_n[c[i]]);
      if (i == 0 || t < best) {
        best = t;
        m->tune_plan = c[i];
      }
    }
    memset(m->tune_n, 0, sizeof m->tune_n);
  }
  if (k >= timing + ROLE_KEEP) m->tune_step = ROLE_WARM;
  for (int i = 0; i < nc; i++)
    if (c[i] == m->tune_plan) return c[i];
  return c[0];
}

/* a step's native time, for the plan it ran with, while auto mode times them; live and step:
   choose_plan's tune_live and tune_step after it decided that step (the backward pass may decide
   the next step before it records this one) */
void tune_record(mlp *m, int live, int step, int plan, long ns) {
  const int k = step - 1 - ROLE_WARM;
  if (!live || k < 0 || k >= m->tune_timing || k % ROLE_BLOCK == 0) return;
  if (m->tune_n[plan] < TUNE_TIMED) m->tune_ns[plan][m->tune_n[plan]++] = ns;
}

/* a new schedule or stores: the timing starts over */
static void tune_reset(mlp *m) {
  mlp_ahead_end(m);
  m->pre_valid = 0;
  m->tune_step = 0;
  m->tune_plan = PLAN_SPLIT;
  memset(m->tune_n, 0, sizeof m->tune_n);
}

void mlp_set_schedule(mlp *m, int schedule) {
  tune_reset(m);
  m->schedule = schedule == SCHEDULE_SPLIT || schedule == SCHEDULE_ROLES ? schedule : SCHEDULE_AUTO;
}

void mlp_set_stores(mlp *m, int stores) {
  tune_reset(m);
  m->stores = stores == STORES_PLAIN || stores == STORES_STREAMED ? stores : STORES_AUTO;
}

/* the plan a step ran with */
int step_plan(const mlp *m) { return !m->roles ? PLAN_SPLIT : m->streamed ? PLAN_STREAMED : PLAN_ROLES; }

/* the first layer's path for the next training step (both give the same bits) */
int choose_sparse(mlp *m) {
  if (!HAVE_SPARSE || m->sparse_mode == INPUT_DENSE) return 0;
  if (m->sparse_mode == INPUT_SPARSE || m->term_share < 0 || m->term_share <= SPARSE_MAX_TERMS) return 1;
  if (++m->since_probe < SPARSE_PROBE) return 0;
  m->since_probe = 0;
  return 1;
}

void mlp_set_input_mode(mlp *m, int mode) {
  mlp_ahead_end(m);
  m->pre_valid = 0;
  m->sparse_mode = mode == INPUT_DENSE || mode == INPUT_SPARSE ? mode : INPUT_AUTO;
}

int mlp_has_sparse(void) { return HAVE_SPARSE; }
