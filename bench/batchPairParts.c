/*
 * Where the time of one pair-based batch loss step goes in native/src/batchpair.c, with the
 * batch accuracy the trainer asks for in the same call (native/src/batchsweep.c), timed from C
 * (no Node): a 120 x 128 batch of 10 classes, 12 rows each (the bench's shape), the rows
 * uniform noise plus `signal` times a centre per class (default 0: rows unrelated to the
 * labels), each loss 2000 times, the median of each stage. A noisy batch of two classes (2 0.2)
 * is the case where many buckets could hold the best cut and the sweep sorts every pair (a qsort
 * there took 0.7 ms in the float64 sweep this replaced). Build and run:
 *
 *   S=native/src; gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=fast -I$S -c $S/gemm.c -o /tmp/gemm.o
 *   gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=off -fno-trapping-math -I$S -c $S/vmath.c -o /tmp/vmath.o
 *   gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=off -fno-trapping-math -I$S bench/batchPairParts.c /tmp/gemm.o /tmp/vmath.o -o /tmp/parts -lm
 *   /tmp/parts [n] [dim] [classes] [signal] [sims]
 *
 * sims 0: the call without the float64 copy of S (as the trainer calls it: BatchWorkspace
 * similarities false); default 1, with it.
 */
#define _GNU_SOURCE
#define STAGES 10
#include "parts.h"
#define SWEEP_PROBE 7
#include "../native/src/batchpair.c"
#include "../native/src/batchsweep.c"

int main(int argc, char **argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 120, dim = argc > 2 ? atoi(argv[2]) : 128, classes = argc > 3 ? atoi(argv[3]) : 10;
  const double signal = argc > 4 ? atof(argv[4]) : 0;
  const int keep = argc > 5 ? atoi(argv[5]) : 1;
  float *x = malloc(sizeof(float) * n * dim), *grad = malloc(sizeof(float) * n * dim);
  double *centre = malloc(sizeof(double) * classes * dim);
  int32_t *lab = malloc(sizeof(int32_t) * n);
  unsigned long long st = 88172645463325252ULL;
#define UNIFORM() (st ^= st << 13, st ^= st >> 7, st ^= st << 17, (double)(st >> 11) / 9007199254740992.0 - 0.5)
  for (int q = 0; q < classes * dim; q++) centre[q] = UNIFORM();
  for (int i = 0; i < n; i++) lab[i] = i % classes;
  for (int i = 0; i < n * dim; i++) x[i] = (float)(signal * centre[(size_t)lab[i / dim] * dim + i % dim] + UNIFORM());
  double *sims = keep ? malloc(sizeof(double) * n * n) : NULL;
  const size_t words = batch_pair_loss_work(n, dim) + (batch_sweep_work(n) + 1) / 2;
  double *work = aligned_alloc(64, (words * 8 + 63) / 64 * 64);
  const double prm[4][3] = {{2, 50, 0.5}, {0.07}, {0.1}, {0.4, 80}};
  const char *names[4] = {"multi-similarity", "nt-xent", "supcon", "circle"};
  const char *stages[STAGES] = {"normalise", "S = UU^T", "S to float64", "per-pair loss", "C = G + G^T", "C U", "back-normalise",
                                "acc: histogram", "acc: scan", "acc: refine"};
  static double t[STAGES + 1][REPS];
  int got[STAGES];
  printf("n %d, dim %d, %d classes, signal %g, S %s, vector width %d floats; medians of %d calls, us (a stage the call skipped\n"
         "is not counted: where the sweep sorts every pair, that sort is in whole only)\n", n, dim, classes, signal,
         keep ? "copied out" : "not copied out", VW, REPS);
  for (int kind = 0; kind < 4; kind++) {
    for (int k = 0; k < STAGES; k++) got[k] = 0;
    double acc = 0;
    for (int r = 0; r < REPS; r++) {
      for (int k = 1; k <= STAGES; k++) stamp[k] = 0;
      stamp[0] = now_us();
      batch_pair_loss(kind, prm[kind], x, lab, n, dim, grad, sims, &acc, work);
      const double end = now_us();
      for (int k = 0; k < STAGES; k++)
        if (stamp[k + 1] > 0) t[k][got[k]++] = stamp[k + 1] - stamp[k];
      t[STAGES][r] = end - stamp[0];
    }
    printf("%-16s whole %6.1f (accuracy %.4f) |", names[kind], median(t[STAGES], REPS), acc);
    for (int k = 0; k < STAGES; k++) printf(" %s %.1f%s", stages[k], median(t[k], got[k]), k < STAGES - 1 ? "," : "\n");
  }
  return 0;
}
