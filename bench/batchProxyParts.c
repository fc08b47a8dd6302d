/*
 * Where the time of one class-weight batch loss step goes in native/src/batchproxy.c (the loss,
 * both gradients and the batch accuracy in one call, as the trainer makes it; the accuracy's
 * sweep in native/src/batchsweep.c), timed from C (no
 * Node): a 120 x 128 batch of 10 classes, 12 rows each, round a centre per class (the bench's
 * shape), each loss 2000 times, the median of each stage. Build and run:
 *
 *   S=native/src; gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=fast -I$S -c $S/gemm.c -o /tmp/gemm.o
 *   gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=off -fno-trapping-math -I$S -c $S/vmath.c -o /tmp/vmath.o
 *   gcc -std=gnu11 -O3 -march=native -fno-math-errno -ffp-contract=fast -I$S bench/batchProxyParts.c /tmp/gemm.o /tmp/vmath.o -o /tmp/proxyparts -lm
 *   /tmp/proxyparts [n] [dim] [classes]
 */
#define _GNU_SOURCE
#define STAGES 12
#include "parts.h"
#define SWEEP_PROBE 9
#include "../native/src/batchproxy.c"
#include "../native/src/batchsweep.c"

static unsigned long long st = 88172645463325252ULL;
static double uniform(void) {
  st ^= st << 13, st ^= st >> 7, st ^= st << 17;
  return (double)(st >> 11) / 9007199254740992.0 - 0.5;
}

int main(int argc, char **argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 120, dim = argc > 2 ? atoi(argv[2]) : 128, classes = argc > 3 ? atoi(argv[3]) : 10;
  float *x = malloc(sizeof(float) * n * dim), *grad = malloc(sizeof(float) * n * dim);
  float *w = malloc(sizeof(float) * classes * dim), *wgrad = malloc(sizeof(float) * classes * dim);
  double *centre = malloc(sizeof(double) * classes * dim);
  int32_t *lab = malloc(sizeof(int32_t) * n);
  for (int q = 0; q < classes * dim; q++) centre[q] = uniform(), w[q] = (float)uniform();
  for (int i = 0; i < n; i++) {
    lab[i] = i % classes;
    for (int k = 0; k < dim; k++) x[(size_t)i * dim + k] = (float)(centre[(size_t)lab[i] * dim + k] + 2.5 * uniform());
  }
  const size_t words = batch_proxy_loss_work(n, classes, dim) + (batch_cosine_accuracy_work(n, dim) + 1) / 2;
  double *work = aligned_alloc(64, (words * 8 + 63) / 64 * 64);
  const double prm[3][2] = {{28.6 * M_PI / 180, 64}, {0.35, 64}, {0.1, 32}};
  const char *names[3] = {"arcface", "cosface", "proxy-anchor"};
  const char *stages[STAGES] = {"row norms", "W normalised", "C = EW^T (f64)", "per-entry", "coefficients", "GW (f32)",
                                "G^TE (f32)", "acc: transpose", "cosines (f32 GEMM)", "histogram", "scan", "refine"};
  static double t[STAGES + 1][REPS];
  int got[STAGES];
  printf("n %d, dim %d, %d classes, vector width %d floats; medians of %d calls, us\n", n, dim, classes, VW, REPS);
  for (int kind = 0; kind < 3; kind++) {
    for (int k = 0; k < STAGES; k++) got[k] = 0;
    double acc = 0;
    for (int r = 0; r < REPS; r++) {
      for (int k = 1; k <= STAGES; k++) stamp[k] = 0;
      stamp[0] = now_us();
      batch_proxy_loss(kind, prm[kind][0], prm[kind][1], x, lab, n, w, classes, dim, grad, wgrad, &acc, work);
      const double end = now_us();
      /* a stage the call skipped (the sweep's early ends) is not counted */
      for (int k = 0; k < STAGES; k++)
        if (stamp[k + 1] > 0) t[k][got[k]++] = stamp[k + 1] - stamp[k];
      t[STAGES][r] = end - stamp[0];
    }
    printf("%-12s whole %6.1f (accuracy %.4f) |", names[kind], median(t[STAGES], REPS), acc);
    for (int k = 0; k < STAGES; k++) printf(" %s %.1f%s", stages[k], median(t[k], got[k]), k < STAGES - 1 ? "," : "\n");
  }
  return 0;
}
