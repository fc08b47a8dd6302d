/*
 * Where the time of one pair-based batch loss step goes in native/src/batchpair.c, timed from C
 * (no Node): a 120 x 128 batch of 10 classes (the bench's), each loss 2000 times, the median of
 * each stage. Build and run:
 *
 *   S=native/src; gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=fast -I$S -c $S/gemm.c -o /tmp/gemm.o
 *   gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=off -fno-trapping-math -I$S -c $S/vmath.c -o /tmp/vmath.o
 *   gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=off -fno-trapping-math -I$S bench/batchPairParts.c /tmp/gemm.o /tmp/vmath.o -o /tmp/parts -lm
 *   /tmp/parts [n] [dim]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static double stamp[8];
#define PROBE(stage) (stamp[(stage) + 1] = now_us())
#include "../native/src/batchpair.c"

#define REPS 2000
static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int m) {
  qsort(v, (size_t)m, sizeof *v, cmp);
  return v[m / 2];
}

int main(int argc, char **argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 120, dim = argc > 2 ? atoi(argv[2]) : 128;
  float *x = malloc(sizeof(float) * n * dim), *grad = malloc(sizeof(float) * n * dim);
  int32_t *lab = malloc(sizeof(int32_t) * n);
  unsigned long long st = 88172645463325252ULL;
  for (int i = 0; i < n * dim; i++) {
    st ^= st << 13, st ^= st >> 7, st ^= st << 17;
    x[i] = (float)((double)(st >> 11) / 9007199254740992.0 - 0.5);
  }
  for (int i = 0; i < n; i++) lab[i] = i % 10;
  double *sims = malloc(sizeof(double) * n * n);
  double *work = aligned_alloc(64, (batch_pair_loss_work(n, dim) * 8 + 63) / 64 * 64);
  const double prm[4][3] = {{2, 50, 0.5}, {0.07}, {0.1}, {0.4, 80}};
  const char *names[4] = {"multi-similarity", "nt-xent", "supcon", "circle"};
  const char *stages[7] = {"normalise", "S = UU^T", "S to float64", "per-pair loss", "C = G + G^T", "C U", "back-normalise"};
  static double t[8][REPS];
  printf("n %d, dim %d, vector width %d floats; medians of %d calls, us\n", n, dim, VW, REPS);
  for (int kind = 0; kind < 4; kind++) {
    for (int r = 0; r < REPS; r++) {
      stamp[0] = now_us();
      batch_pair_loss(kind, prm[kind], x, lab, n, dim, grad, sims, work);
      for (int k = 0; k < 7; k++) t[k][r] = stamp[k + 1] - stamp[k];
      t[7][r] = stamp[7] - stamp[0];
    }
    printf("%-16s whole %6.1f |", names[kind], median(t[7], REPS));
    for (int k = 0; k < 7; k++) printf(" %s %.1f%s", stages[k], median(t[k], REPS), k < 6 ? "," : "\n");
  }
  return 0;
}
