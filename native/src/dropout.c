/*
 * Dropout masks from the project's PRNG (xoshiro128**, src/rng.ts), bit for bit the masks that
 * src/model/dropout.ts draws: layer after layer, row after row, one draw per unit; a unit is kept
 * (multiplier 1/keep) when next() = u32 / 2^32 < keep, else dropped (0).
 *
 * The draws are sequential in the stream, but xoshiro128**'s state transition is linear over
 * GF(2), so the state n draws ahead is a 128x128 bit matrix T^n times the state. With the powers
 * T^(2^i) tabulated once, any row block (in any thread) jumps straight to its place in the stream,
 * and inside a block VW interleaved sub-streams run in SIMD lanes. The result is the same
 * sequence, drawn in parallel.
 */
#include <pthread.h>
#include <string.h>

#include "siamese.h"
#include "simd.h"

typedef uint32_t v4u __attribute__((vector_size(16)));

/* a 128x128 GF(2) matrix as 128 columns: col[j] = image of the unit state with bit j set */
typedef struct {
  v4u col[128];
} gf2mat;

#define POW_LEVELS 48
static gf2mat pow2[POW_LEVELS]; /* pow2[i] = T^(2^i) */
static pthread_once_t pow2_once = PTHREAD_ONCE_INIT;

static inline uint32_t rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/* the state transition of xoshiro128** (linear; the output function is not needed here) */
static void step_state(uint32_t s[4]) {
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl32(s[3], 11);
}

static inline v4u matvec(const gf2mat *m, v4u s) {
  v4u acc = {0, 0, 0, 0};
  for (int w = 0; w < 4; w++) {
    const uint32_t x = s[w];
    const v4u *c = m->col + 32 * w;
    for (int b = 0; b < 32; b++) {
      const uint32_t bit = 0u - ((x >> b) & 1u);
      acc ^= c[b] & (v4u){bit, bit, bit, bit};
    }
  }
  return acc;
}

static void matmul(gf2mat *out, const gf2mat *a, const gf2mat *b) {
  for (int j = 0; j < 128; j++) out->col[j] = matvec(a, b->col[j]);
}

static void init_pow2(void) {
  for (int j = 0; j < 128; j++) {
    uint32_t s[4] = {0, 0, 0, 0};
    s[j / 32] = 1u << (j % 32);
    step_state(s);
    pow2[0].col[j] = (v4u){s[0], s[1], s[2], s[3]};
  }
  for (int i = 1; i < POW_LEVELS; i++) matmul(&pow2[i], &pow2[i - 1], &pow2[i - 1]);
}

void xo_init(void) { pthread_once(&pow2_once, init_pow2); }

/* the state n draws after s */
void xo_jump(uint32_t s[4], uint64_t n) {
  xo_init();
  v4u v = {s[0], s[1], s[2], s[3]};
  for (int i = 0; n && i < POW_LEVELS; i++, n >>= 1)
    if (n & 1) v = matvec(&pow2[i], v);
  s[0] = v[0];
  s[1] = v[1];
  s[2] = v[2];
  s[3] = v[3];
}

typedef uint32_t vu __attribute__((vector_size(VW * 4)));

typedef float vfl __attribute__((vector_size(VW * 4)));

/* one draw in every lane (xoshiro128** output, then the state steps): scale where kept, else 0 */
static inline vfl lane_draw(vu *s0, vu *s1, vu *s2, vu *s3, vu thr, vfl sc, int always) {
  const vu x = *s1 * 5u;
  const vu res = ((x << 7) | (x >> 25)) * 9u;
  const vu t = *s1 << 9;
  *s2 ^= *s0;
  *s3 ^= *s1;
  *s1 ^= *s2;
  *s0 ^= *s3;
  *s2 ^= t;
  *s3 = (*s3 << 11) | (*s3 >> 21);
  const vu keepm = always ? (vu){0} - 1u : (vu)(res < thr);
  return (vfl)((vu)sc & keepm);
}

/*
 * Masks of `rows` rows x `cols` units (row stride cp, padding set to 0), drawn from state s,
 * which is left n = rows * cols draws ahead. keep_thr: a draw u keeps its unit when u < keep_thr
 * (keep_thr = ceil(keep * 2^32), which is exactly next() < keep).
 */
void xo_masks(uint32_t s[4], int rows, int cols, int cp, uint64_t keep_thr, float scale, float *M) {
  xo_init();
  const int lanes = rows >= VW ? VW : 1;
  const int per = rows / lanes; /* rows per lane */
  int done = 0;
  if (lanes > 1) {
    uint32_t st[VW][4];
    memcpy(st[0], s, sizeof st[0]);
    for (int k = 1; k < VW; k++) {
      memcpy(st[k], st[k - 1], sizeof st[k]);
      xo_jump(st[k], (uint64_t)per * cols);
    }
    vu s0, s1, s2, s3;
    for (int k = 0; k < VW; k++) {
      s0[k] = st[k][0];
      s1[k] = st[k][1];
      s2[k] = st[k][2];
      s3[k] = st[k][3];
    }
    const int always = keep_thr > 0xffffffffull;
    const vu thr = (vu){0} + (uint32_t)(always ? 0xffffffffu : keep_thr);
    const vfl sc = (vfl){0} + scale;
    for (int r = 0; r < per; r++) {
      int c = 0;
#if VW == 16 && defined(__AVX512F__)
      /* 16 draws per lane, then a 16 x 16 transpose: whole-row vector stores instead of 256
         scattered scalar ones (the stores bounded this loop) */
      for (; c + 16 <= cols; c += 16) {
        __m512 v[16];
        for (int j = 0; j < 16; j++) {
          v[j] = (__m512)lane_draw(&s0, &s1, &s2, &s3, thr, sc, always);
        }
        transpose16(v);
        for (int k = 0; k < 16; k++) _mm512_store_ps(M + (size_t)(k * per + r) * cp + c, v[k]);
      }
#endif
      for (; c < cols; c++) {
        const vfl out = lane_draw(&s0, &s1, &s2, &s3, thr, sc, always);
        for (int k = 0; k < VW; k++) M[(size_t)(k * per + r) * cp + c] = out[k];
      }
    }
    /* the last lane ends where the remaining rows start */
    s[0] = s0[VW - 1];
    s[1] = s1[VW - 1];
    s[2] = s2[VW - 1];
    s[3] = s3[VW - 1];
    done = VW * per;
  }
  for (int r = done; r < rows; r++) {
    float *row = M + (size_t)r * cp;
    for (int c = 0; c < cols; c++) {
      const uint32_t res = rotl32(s[1] * 5u, 7) * 9u;
      step_state(s);
      row[c] = (uint64_t)res < keep_thr ? scale : 0.0f;
    }
  }
  for (int r = 0; r < rows; r++)
    for (int c = cols; c < cp; c++) M[(size_t)r * cp + c] = 0.0f;
}
