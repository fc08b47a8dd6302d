/*
 * The trainer's per-step batch accuracy (src/train/batchAccuracy.ts): the accuracy of "same
 * class" = s > t over every pair of a batch at the best threshold t, exact for the float32
 * similarities given, the one sweep of both native batch-loss paths (batchpair.c on the loss's
 * own S, batchproxy.c on its float32 cosines). Buckets by value, the cuts between buckets
 * counted, only the few buckets that could hold a better cut sorted and swept; past 64 such
 * buckets, or where the values cannot be bucketed, every pair sorted (a radix sort: qsort took
 * 0.5 ms for a batch's 7140 pairs). The same result as sorting all pairs and sweeping.
 */
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "siamese.h"

/* stage marks for the timing harnesses in bench/ (which include this file after the loss's, the
   sweep's stages numbered from SWEEP_PROBE); nothing otherwise */
#ifndef PROBE
#define PROBE(stage) ((void)0)
#endif
#ifndef SWEEP_PROBE
#define SWEEP_PROBE 0
#endif

/* buckets at most; refined buckets at most, past that one whole sort is as cheap */
#define ACC_MAX_BUCKETS 4096
#define ACC_REFINE 64

/* VW floats or ints at any alignment */
typedef float sweep_vf __attribute__((vector_size(VW * 4), aligned(4)));
typedef int32_t sweep_vi __attribute__((vector_size(VW * 4), aligned(4)));
#define ULOAD(p) (*(const sweep_vf *)(const void *)(p))
#define ULOADI(p) (*(const sweep_vi *)(const void *)(p))

static size_t sweep_line(size_t floats) { return (floats + 15) / 16 * 16; }

size_t batch_sweep_work(int n) {
  const size_t m = (size_t)n * (n > 0 ? n - 1 : 0) / 2;
  /* in floats: padded labels [n + 2 VW] (ints), the refined buckets' values (or every key) [m],
     same flags (bytes) [m], the sort's scratch [m], counts [2 x ACC_MAX_BUCKETS], the buckets'
     potentials [ACC_MAX_BUCKETS] (ints) and marks [ACC_MAX_BUCKETS] (bytes) */
  return sweep_line((size_t)n + 2 * VW) + sweep_line(m) + sweep_line(m / 4 + 1) + sweep_line(m) + sweep_line(4 * ACC_MAX_BUCKETS);
}

/* Row i's pairs: the similarities r[0..count) and the partners' labels l[0..count) (both
   readable VW values past count). ld 0: the packed lower triangle, pairs j < i from s + i(i-1)/2;
   ld > 0: an upper triangle, pairs j > i at s[i ld + j]. */
AI int pair_row(const float *s, size_t ld, int n, const int32_t *lab, int i, const float **r, const int32_t **l) {
  if (ld == 0) {
    *r = s + (size_t)i * (i > 0 ? i - 1 : 0) / 2;
    *l = lab;
    return i;
  }
  *r = s + (size_t)i * ld + i + 1;
  *l = lab + i + 1;
  return n - 1 - i;
}

/* lanes j0 + l < lim of a row: the mask of the lanes to read */
AI vi sweep_lanes(int j0, int lim) {
  vi iota;
#pragma GCC unroll 16
  for (int l = 0; l < VW; l++) iota[l] = l;
  return iota + j0 < lim;
}

/* min(b, top) lane by lane */
AI vi sweep_top(vi b, int top) {
  const vi t = top + (vi){0}, over = b > t;
  return (b & ~over) | (t & over);
}

/* whether any lane is not 0 */
AI int sweep_any(vi v) {
#if VW == 16 && defined(__AVX512F__)
  return _mm512_test_epi32_mask((__m512i)v, (__m512i)v) != 0;
#else
  int any = 0;
  for (int l = 0; l < VW; l++) any |= v[l];
  return any;
#endif
}

#define SWEEP_BLEND(mask, a, b) ((vf)(((vi)(a) & (mask)) | ((vi)(b) & ~(mask))))

/* v[0..k) sorted ascending (no NaN; -0 before +0, which compare equal): insertion for a few
   values, else a radix sort of the floats' bits in three passes of 11 (tmp: k values of scratch) */
static void sort_floats(float *v, int64_t k, uint32_t *tmp) {
  if (k <= 64) {
    for (int64_t a = 1; a < k; a++) {
      const float x = v[a];
      int64_t b = a;
      for (; b > 0 && v[b - 1] > x; b--) v[b] = v[b - 1];
      v[b] = x;
    }
    return;
  }
  uint32_t *a = (uint32_t *)(void *)v, *b = tmp;
  /* the bits as an unsigned key in the floats' order */
  for (int64_t i = 0; i < k; i++) a[i] ^= (uint32_t)((int32_t)a[i] >> 31) | 0x80000000u;
  for (int shift = 0; shift < 33; shift += 11) {
    int64_t cnt[2048] = {0};
    for (int64_t i = 0; i < k; i++) cnt[(a[i] >> shift) & 2047]++;
    for (int64_t d = 0, off = 0; d < 2048; d++) {
      const int64_t c = cnt[d];
      cnt[d] = off;
      off += c;
    }
    for (int64_t i = 0; i < k; i++) b[cnt[(a[i] >> shift) & 2047]++] = a[i];
    uint32_t *t = a;
    a = b;
    b = t;
  }
  /* three passes: the keys are in tmp */
  uint32_t *out = (uint32_t *)(void *)v;
  for (int64_t i = 0; i < k; i++) out[i] = a[i] ^ (a[i] >> 31 ? 0x80000000u : 0xffffffffu);
}

/* the most pairs right at any cut of sorted pos[0..np) and neg[0..nn), from `correct` with the
   cut below them all (batchAccuracy.ts, sweepFrom; no NaN here) */
static int64_t sweep_from(const float *pos, int64_t np, const float *neg, int64_t nn, int64_t correct) {
  int64_t best = correct, i = 0, j = 0;
  while (i < np || j < nn) {
    const float a = i < np ? pos[i] : INFINITY, b = j < nn ? neg[j] : INFINITY;
    const float t = a < b ? a : b;
    while (i < np && pos[i] == t) i++, correct++;
    while (j < nn && neg[j] == t) j++, correct--;
    if (correct > best) best = correct;
  }
  return best;
}

/* every pair's key sorted at once: the sweep over all cuts */
static int64_t sorted_sweep(const float *s, size_t ld, int n, const int32_t *lab, float *vals, uint8_t *same, uint32_t *tmp) {
  int64_t m = 0, npos = 0;
  for (int i = 0; i < n; i++) {
    const float *r;
    const int32_t *l;
    const int cnt = pair_row(s, ld, n, lab, i, &r, &l);
    for (int j = 0; j < cnt; j++, m++) {
      vals[m] = -r[j];
      same[m] = l[j] == lab[i];
      npos += same[m];
    }
  }
  /* positives to the front, negatives to the back, in place: two sorts */
  int64_t a = 0, b = m;
  while (a < b) {
    if (same[a]) a++;
    else {
      b--;
      const float t = vals[a];
      vals[a] = vals[b];
      vals[b] = t;
      const uint8_t u = same[a];
      same[a] = same[b];
      same[b] = u;
    }
  }
  sort_floats(vals, npos, tmp);
  sort_floats(vals + npos, m - npos, tmp);
  return sweep_from(vals, npos, vals + npos, m - npos, m - npos);
}

/* The best-threshold accuracy over the pairs of n rows (pair_row's layout: ld 0, or the row
   stride of an upper triangle), "same" where the labels match; the similarities' range where the
   caller has it (range[0] the least, range[1] the greatest), else NULL: found here, and -1 where a
   similarity is NaN (the caller then sweeps in TypeScript). work: batch_sweep_work floats,
   64-byte aligned. */
double batch_sweep(const float *s, size_t ld, int n, const int32_t *labels, const float *range, float *work) {
  const int64_t m = (int64_t)n * (n > 0 ? n - 1 : 0) / 2;
  if (m == 0) return 0;
  int32_t *lab = (int32_t *)work;
  float *vals = work + sweep_line((size_t)n + 2 * VW);
  uint8_t *same = (uint8_t *)(vals + sweep_line((size_t)m));
  uint32_t *tmp = (uint32_t *)(void *)((float *)same + sweep_line((size_t)m / 4 + 1));
  int32_t *cnt = (int32_t *)(tmp + sweep_line((size_t)m));
  /* the labels, padded: a row's partners' labels are read VW at a time */
  memcpy(lab, labels, (size_t)n * sizeof(int32_t));
  memset(lab + n, 0, 2 * VW * sizeof(int32_t));
  float lo, hi;
  if (range) {
    lo = range[0];
    hi = range[1];
  } else {
    vf vlo = INFINITY - (vf){0}, vhi = -INFINITY - (vf){0};
    vi nan = {0};
    for (int i = 0; i < n; i++) {
      const float *r;
      const int32_t *l;
      const int c = pair_row(s, ld, n, lab, i, &r, &l);
      for (int j0 = 0; j0 < c; j0 += VW) {
        const vi ok = sweep_lanes(j0, c);
        const vf v = (vf)ULOAD(r + j0);
        nan |= ok & (v != v);
        const vf a = SWEEP_BLEND(ok, v, vlo), b = SWEEP_BLEND(ok, v, vhi);
        vlo = SWEEP_BLEND(a < vlo, a, vlo);
        vhi = SWEEP_BLEND(b > vhi, b, vhi);
      }
    }
    if (sweep_any(nan)) return -1;
    lo = INFINITY;
    hi = -INFINITY;
    for (int l = 0; l < VW; l++) {
      lo = vlo[l] < lo ? vlo[l] : lo;
      hi = vhi[l] > hi ? vhi[l] : hi;
    }
  }
  /* about sixteen pairs a bucket; bucket b = (hi - s) * scale: ascending in -s, the order of a
     distance (rounding keeps the map monotone) */
  int buckets = 2;
  while (buckets < ACC_MAX_BUCKETS && buckets < m / 16) buckets *= 2;
  const float scale = (float)buckets / (hi - lo);
  const int top = buckets - 1;
  /* one value, or a range too small or too large to divide: sort them all */
  if (!(scale > 0 && scale < INFINITY)) return (double)sorted_sweep(s, ld, n, lab, vals, same, tmp) / (double)m;
  /* counts: negatives of bucket b at 2b, positives at 2b + 1 */
  const size_t cb = 2 * (size_t)buckets;
  memset(cnt, 0, cb * sizeof(int32_t));
  const vf vhiv = hi - (vf){0};
  for (int i = 0; i < n; i++) {
    const float *r;
    const int32_t *l;
    const int c = pair_row(s, ld, n, lab, i, &r, &l);
    const vi li = lab[i] - (vi){0};
    for (int j0 = 0; j0 < c; j0 += VW) {
      const vf f = (vhiv - (vf)ULOAD(r + j0)) * scale;
      const vi b = sweep_top(__builtin_convertvector(f, vi), top);
      const vi idx = 2 * b + (((vi)ULOADI(l + j0) == li) & 1);
      if (c - j0 >= VW) {
#pragma GCC unroll 16
        for (int q = 0; q < VW; q++) cnt[idx[q]]++;
      } else
        for (int q = 0; q < c - j0; q++) cnt[idx[q]]++;
    }
  }
  PROBE(SWEEP_PROBE);
  int64_t npos = 0;
  for (int b = 0; b < buckets; b++) npos += cnt[2 * b + 1];
  const int64_t nneg = m - npos;
  /* one pass: the best cut between buckets, and for each bucket the most a cut inside it could
     get right (all of its pairs besides the others' best) */
  int32_t *pot = cnt + cb;
  int64_t best = nneg, below = 0, above = nneg;
  for (int b = 0; b < buckets; b++) {
    pot[b] = (int32_t)(below + cnt[2 * b + 1] + above);
    below += cnt[2 * b + 1];
    above -= cnt[2 * b];
    if (below + above > best) best = below + above;
  }
  /* the buckets that could hold a better cut, their slots in vals, marked (slot + 1) */
  uint8_t *mark = (uint8_t *)(pot + buckets);
  int refine[ACC_REFINE];
  int64_t from[ACC_REFINE], off[ACC_REFINE + 1], pa[ACC_REFINE], na[ACC_REFINE];
  int nr = 0;
  off[0] = 0;
  for (int b = 0; b < buckets; b++) {
    mark[b] = 0;
    if (pot[b] > best) {
      if (nr == ACC_REFINE) return (double)sorted_sweep(s, ld, n, lab, vals, same, tmp) / (double)m;
      refine[nr] = b;
      from[nr] = pot[b] - cnt[2 * b + 1];
      off[nr + 1] = off[nr] + cnt[2 * b] + cnt[2 * b + 1];
      pa[nr] = off[nr];
      na[nr] = off[nr + 1];
      mark[b] = (uint8_t)++nr;
    }
  }
  PROBE(SWEEP_PROBE + 1);
  if (nr == 0) return (double)best / (double)m;
  /* the refined buckets' keys (-s), found again by the same map: only similarities within (a
     margin of) the refined buckets' range are mapped; positives from the front of each slot,
     negatives from its back */
  const float span = 2 / scale + 1e-6f * (fabsf(hi) + fabsf(lo));
  const vf rlo = (hi - (refine[nr - 1] + 1) / scale - span) - (vf){0}, rhi = (hi - refine[0] / scale + span) - (vf){0};
  for (int i = 0; i < n; i++) {
    const float *r;
    const int32_t *l;
    const int c = pair_row(s, ld, n, lab, i, &r, &l);
    for (int j0 = 0; j0 < c; j0 += VW) {
      const vf v = (vf)ULOAD(r + j0);
      const vi near = (v >= rlo) & (v <= rhi) & sweep_lanes(j0, c);
      if (!sweep_any(near)) continue;
      const vi b = sweep_top(__builtin_convertvector((vhiv - v) * scale, vi), top);
      for (int q = 0; q < VW; q++) {
        const int k = near[q] ? mark[b[q]] - 1 : -1;
        if (k < 0) continue;
        if (l[j0 + q] == lab[i]) vals[pa[k]++] = -v[q];
        else vals[--na[k]] = -v[q];
      }
    }
  }
  for (int k = 0; k < nr; k++) {
    float *pos = vals + off[k], *neg = vals + pa[k];
    const int64_t a = pa[k] - off[k], c = off[k + 1] - pa[k];
    sort_floats(pos, a, tmp);
    sort_floats(neg, c, tmp);
    const int64_t got = sweep_from(pos, a, neg, c, from[k]);
    if (got > best) best = got;
  }
  PROBE(SWEEP_PROBE + 2);
  return (double)best / (double)m;
}
