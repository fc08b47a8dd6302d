/*
 * A tiny fork-join thread pool. The caller is thread 0 and runs tasks too; tasks are handed out
 * through an atomic counter (pool_run), or each thread runs the task of its own number, all at
 * once, so that the task may wait for the others in pool_barrier (pool_run_each). Idle workers
 * spin for a while (a training step issues a new job every few hundred microseconds) and then
 * sleep on a condition variable, so an idle pool costs no CPU.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "siamese.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* how long an idle worker spins before it sleeps: longer than the host's work between the
   forward and the backward pass of a training step (tens of microseconds), so that a worker is
   awake when the next phase starts; a futex wake-up costs about as much as the phase saves */
#define SPIN_NS 1000000L

/*
 * Jobs alternate between two slots (by generation parity). A worker announces itself on a slot
 * (users) before reading it and re-checks the generation, so the caller never rewrites a slot
 * that a worker is reading, and never waits for a worker that has not woken up yet: it waits
 * only until every task of its job is done.
 */
typedef struct {
  atomic_int next;
  atomic_int done;
  atomic_int users;
  int ntasks;
  int each; /* pool_run_each: thread t runs task t, once */
  task_fn fn;
  void *ctx;
} job;

struct pool {
  int n;
  pthread_t *th;
  atomic_uint gen;
  atomic_int sleepers;
  atomic_int quit;
  job jobs[2];
  /* pool_barrier, on cache lines of their own */
  _Alignas(64) atomic_int bar_count;
  _Alignas(64) atomic_uint bar_gen;
  _Alignas(64) pthread_mutex_t mu;
  pthread_cond_t cv;
};

typedef struct {
  pool *p;
  int tid;
} worker_arg;

long clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* the pool_run_each job this thread runs a task of, and whether the task detached from it */
static __thread job *cur_job;
static __thread int detached;

static void run_tasks(job *j, int tid) {
  if (j->each) {
    if (tid < j->ntasks) {
      cur_job = j;
      detached = 0;
      j->fn(j->ctx, tid, tid);
      if (!detached) atomic_fetch_add(&j->done, 1);
      cur_job = NULL;
      detached = 0;
    }
    return;
  }
  for (;;) {
    int i = atomic_fetch_add(&j->next, 1);
    if (i >= j->ntasks) break;
    j->fn(j->ctx, i, tid);
    atomic_fetch_add(&j->done, 1);
  }
}

static void *worker(void *arg) {
  worker_arg *wa = (worker_arg *)arg;
  pool *p = wa->p;
  int tid = wa->tid;
  free(wa);
  /* gen starts at 0 before any worker exists: a worker that starts late (after jobs, or after
     pool_destroy) still sees that gen moved */
  unsigned seen = 0;
  for (;;) {
    if (atomic_load(&p->gen) == seen) {
      long t0 = clock_ns();
      int k = 0;
      while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) {
        CPU_RELAX();
        if ((++k & 63) == 0 && clock_ns() - t0 > SPIN_NS) {
          pthread_mutex_lock(&p->mu);
          atomic_fetch_add(&p->sleepers, 1);
          while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
          atomic_fetch_sub(&p->sleepers, 1);
          pthread_mutex_unlock(&p->mu);
        }
      }
    }
    if (atomic_load(&p->quit)) break;
    unsigned g = atomic_load(&p->gen);
    job *j = &p->jobs[g & 1];
    atomic_fetch_add(&j->users, 1);
    if (atomic_load(&p->gen) == g) run_tasks(j, tid);
    atomic_fetch_sub(&j->users, 1);
    seen = g;
  }
  return NULL;
}

pool *pool_create(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  pool *p = (pool *)calloc(1, sizeof(pool));
  if (!p) return NULL;
  p->n = nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (nthreads > 1) {
    p->th = (pthread_t *)calloc((size_t)nthreads, sizeof(pthread_t));
    for (int t = 1; t < nthreads; t++) {
      worker_arg *wa = (worker_arg *)malloc(sizeof(worker_arg));
      wa->p = p;
      wa->tid = t;
      if (!wa || pthread_create(&p->th[t], NULL, worker, wa) != 0) {
        free(wa);
        p->n = t; /* fewer threads than asked: still correct */
        break;
      }
    }
  }
  return p;
}

void pool_destroy(pool *p) {
  if (!p) return;
  if (p->n > 1) {
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++) pthread_join(p->th[t], NULL);
  }
  free(p->th);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

int pool_threads(const pool *p) { return p ? p->n : 1; }

void pool_wait_progress(const volatile long *counter, long want) {
  int k = 0;
  while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < want) {
    CPU_RELAX();
    if ((++k & 1023) == 0) sched_yield();
  }
}

static void start_job(pool *p, task_fn fn, void *ctx, int ntasks, int each);

void pool_run(pool *p, task_fn fn, void *ctx, int ntasks) {
  if (ntasks <= 0) return;
  if (!p || p->n == 1 || ntasks == 1) {
    for (int i = 0; i < ntasks; i++) fn(ctx, i, 0);
    return;
  }
  start_job(p, fn, ctx, ntasks, 0);
}

void pool_run_each(pool *p, task_fn fn, void *ctx) {
  if (!p || p->n == 1) {
    fn(ctx, 0, 0);
    return;
  }
  start_job(p, fn, ctx, p->n, 1);
}

void pool_detach(void) {
  if (!cur_job || detached) return;
  detached = 1;
  atomic_fetch_add(&cur_job->done, 1);
}

void pool_barrier(pool *p) {
  if (!p || p->n == 1) return;
  /* read the generation before arriving: the last thread to arrive resets the count, then
     moves the generation on, which releases the others */
  const unsigned g = atomic_load(&p->bar_gen);
  if (atomic_fetch_add(&p->bar_count, 1) == p->n - 1) {
    atomic_store(&p->bar_count, 0);
    atomic_fetch_add(&p->bar_gen, 1);
    return;
  }
  int k = 0;
  while (atomic_load(&p->bar_gen) == g) {
    CPU_RELAX();
    if ((++k & 1023) == 0) sched_yield();
  }
}

static void start_job(pool *p, task_fn fn, void *ctx, int ntasks, int each) {
  unsigned g = atomic_load(&p->gen) + 1;
  job *j = &p->jobs[g & 1];
  /* a worker may still be leaving this slot's previous job (it finds no task there) */
  while (atomic_load(&j->users) > 0) CPU_RELAX();
  j->fn = fn;
  j->ctx = ctx;
  j->ntasks = ntasks;
  j->each = each;
  atomic_store(&j->next, 0);
  atomic_store(&j->done, 0);
  atomic_store(&p->gen, g);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  run_tasks(j, 0);
  /* the last tasks may still run on a worker; yield now and then in case it was descheduled */
  int k = 0;
  while (atomic_load(&j->done) < ntasks) {
    CPU_RELAX();
    if ((++k & 255) == 0) sched_yield();
  }
}
