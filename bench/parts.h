/*
 * The stage timer both bench/batch*Parts.c share: the file defines STAGES (how many), includes
 * this, then the kernel's source, whose PROBE(stage) marks (compiled away in the addon) stamp
 * the end of each stage; median() of a stage's REPS times.
 */
#ifndef SIAMESE_BENCH_PARTS_H
#define SIAMESE_BENCH_PARTS_H
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef STAGES
#error "define STAGES before including parts.h"
#endif

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static double stamp[STAGES + 1];
#define PROBE(stage) (stamp[(stage) + 1] = now_us())

#define REPS 2000
static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int m) {
  if (m == 0) return 0;
  qsort(v, (size_t)m, sizeof *v, cmp);
  return v[m / 2];
}
#endif
