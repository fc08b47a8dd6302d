/*
 * exp and log over arrays of doubles for the batch losses' per-pair arithmetic (batchpair.c,
 * batchproxy.c): a step takes 15 to 30 thousand of them, and libm's are scalar calls (glibc's
 * vector variants are reachable only under -ffast-math). Within 2 ulp of the exact values
 * (test/engine/vmath.test.ts checks them against V8's Math.exp and Math.log), and the same bits
 * on every -march: vmath.c has no branches and no fused multiply-adds.
 */
#ifndef SIAMESE_VMATH_H
#define SIAMESE_VMATH_H

/* y[i] = exp(x[i]) for i < n; y may be x. -inf -> 0, +inf -> +inf, NaN -> NaN. */
void vm_exp(const double *x, double *y, int n);
/* y[i] = log(x[i]) for i < n; y may be x. 0 -> -inf, negative or NaN -> NaN, +inf -> +inf. */
void vm_log(const double *x, double *y, int n);

/* y[i] = expf(x[i]), within 2 ulp of float; the same contract as vm_exp. About 8x cheaper per
   value than vm_exp here (16 lanes, a shorter series): the per-pair arithmetic of a batch
   (n^2 values) fits the losses' time budget only in float (vm_exp: ~1.1 ns per value on this VM,
   15 us for 120 x 120). */
void vm_expf(const float *x, float *y, int n);

#endif
