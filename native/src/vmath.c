/*
 * Vectorisable exp and log (see vmath.h). Written by hand because no library serves it: libm's
 * exp/log are scalar, and glibc's libmvec needs -ffast-math, which would also let the compiler
 * reorder the losses' sums. Both are range reduction to a small interval, a series there, and a
 * power of two put back through the exponent bits; every step is a plain IEEE operation or an
 * integer operation on the bits, so the loops vectorise (AVX-512, AVX2, SSE2 alike) and give the
 * same bits whatever the vector width (compiled with -ffp-contract=off).
 */
#include <stdint.h>
#include <string.h>

#include "vmath.h"

static inline uint64_t bits_of(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static inline double from_bits(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* 1.5 * 2^52: x + SHIFT rounds x to an integer held in the low mantissa bits */
#define SHIFT 0x1.8p52
/* ln 2 in two parts: the high part has 32 significant bits, so k * LN2_HI is exact for |k| < 2^21 */
#define LN2_HI 0x1.62e42fee00000p-1
#define LN2_LO 0x1.a39ef35793c76p-33

/* exp: x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor series to r^13 (the remainder is
   below 2^-57 of the result), times 2^k built in the exponent bits, in two halves so that results
   down to the subnormals (and overflow to inf) come out right. */
void vm_exp(const double *x, double *y, int n) {
  for (int i = 0; i < n; i++) {
    const double v = x[i];
    /* beyond +-1000 the result is 0 or inf anyway; NaN passes (both comparisons false) */
    const double c = v < -1000.0 ? -1000.0 : (v > 1000.0 ? 1000.0 : v);
    const double t = c * 0x1.71547652b82fep0 + SHIFT;
    const double kd = t - SHIFT;
    const int64_t k = (int64_t)(bits_of(t) - bits_of(SHIFT));
    const double r = (c - kd * LN2_HI) - kd * LN2_LO;
    double q = 1.0 / 6227020800.0;
    q = q * r + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r + 1.0;
    const double p = 1.0 + q * r;
    /* 2^k = 2^k1 * 2^k2, each half a normal number for |k| <= 1443; k1 = round(k / 2) by the
       same shift (no 64-bit arithmetic shift on AVX2) */
    const int64_t k1 = (int64_t)(bits_of(kd * 0.5 + SHIFT) - bits_of(SHIFT));
    const int64_t k2 = k - k1;
    const double s1 = from_bits((uint64_t)(k1 + 1023) << 52);
    const double s2 = from_bits((uint64_t)(k2 + 1023) << 52);
    const double e = (p * s1) * s2;
    y[i] = v != v ? v : e;
  }
}

/* log: x = 2^e m with sqrt(1/2) <= m < sqrt(2), log(m) = log(1 + f) = 2 atanh(s) with
   s = f / (2 + f), |s| < 0.172: f - (f^2/2 - s (f^2/2 + R)), R = sum_k 2 s^2k / (2k + 1) to k = 11
   (the remainder is below 2^-60 of the result), plus e ln2 in two parts. */
void vm_log(const double *x, double *y, int n) {
  for (int i = 0; i < n; i++) {
    const double v = x[i];
    /* subnormals scaled into the normal range first */
    const int sub = v < 0x1p-1022;
    const double w = sub ? v * 0x1p54 : v;
    const uint64_t u = bits_of(w);
    /* e = the exponent of w / sqrt(1/2), from the bits; offset by 1024 so the shift is logical */
    const uint64_t uu = u - 0x3fe6a09e667f3bcdULL + (1024ULL << 52);
    const int64_t e = (int64_t)(uu >> 52) - 1024;
    const double m = from_bits(u - ((uint64_t)e << 52));
    const double ed = from_bits(bits_of(SHIFT) + (uint64_t)(e - (sub ? 54 : 0))) - SHIFT;
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    double R = 2.0 / 23.0;
    R = R * z + 2.0 / 21.0;
    R = R * z + 2.0 / 19.0;
    R = R * z + 2.0 / 17.0;
    R = R * z + 2.0 / 15.0;
    R = R * z + 2.0 / 13.0;
    R = R * z + 2.0 / 11.0;
    R = R * z + 2.0 / 9.0;
    R = R * z + 2.0 / 7.0;
    R = R * z + 2.0 / 5.0;
    R = R * z + 2.0 / 3.0;
    R = R * z;
    const double hfsq = 0.5 * f * f;
    const double l = ed * LN2_HI + (f - (hfsq - (s * (hfsq + R) + ed * LN2_LO)));
    y[i] = v > 0 ? (v < __builtin_inf() ? l : v) : (v == 0 ? -__builtin_inf() : __builtin_nan(""));
  }
}

static inline uint32_t fbits_of(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static inline float ffrom_bits(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* 1.5 * 2^23, and ln 2 in two parts (the high part has 16 significant bits: k * LN2F_HI exact) */
#define SHIFTF 0x1.8p23f
#define LN2F_HI 0x1.62e4p-1f
#define LN2F_LO 0x1.7f7d1cp-20f

/* expf: as vm_exp in float, the series to r^7 (remainder below 2^-27 of the result) */
void vm_expf(const float *x, float *y, int n) {
  for (int i = 0; i < n; i++) {
    const float v = x[i];
    const float c = v < -150.0f ? -150.0f : (v > 150.0f ? 150.0f : v);
    const float t = c * 0x1.715476p0f + SHIFTF;
    const float kd = t - SHIFTF;
    const int32_t k = (int32_t)(fbits_of(t) - fbits_of(SHIFTF));
    const float r = (c - kd * LN2F_HI) - kd * LN2F_LO;
    float q = 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    q = q * r + 1.0f;
    const float p = 1.0f + q * r;
    const int32_t k1 = (int32_t)(fbits_of(kd * 0.5f + SHIFTF) - fbits_of(SHIFTF));
    const int32_t k2 = k - k1;
    const float s1 = ffrom_bits((uint32_t)(k1 + 127) << 23);
    const float s2 = ffrom_bits((uint32_t)(k2 + 127) << 23);
    const float e = (p * s1) * s2;
    y[i] = v != v ? v : e;
  }
}
