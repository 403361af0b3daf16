/* Weight block loaders shared by the x86 kernels (included by files compiled with at least
 * AVX2 + F16C): each returns the 32 codes of one block as signed int8 and its scale, plus the
 * horizontal sums every kernel reduces with in one fixed order. */
#ifndef BAIMO_X86_WBLOCK_H
#define BAIMO_X86_WBLOCK_H

#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* Kernel NAME over rows [r0, r1), one row at a time: TILE(a, r, t0, nt) on tiles of NT tokens
 * (NT <= 4, defined by the including file), the rest as one smaller tile. */
#define ROW_DRIVER(NAME, TILE)                                                                 \
    void NAME(const bm_mm_args *a, int64_t r0, int64_t r1) {                                   \
        for (int64_t r = r0; r < r1; r++) {                                                    \
            int64_t t = 0;                                                                     \
            for (; t + NT <= a->n_tok; t += NT) TILE(a, r, t, NT);                             \
            switch (a->n_tok - t) {                                                            \
            case 3: TILE(a, r, t, 3); break;                                                   \
            case 2: TILE(a, r, t, 2); break;                                                   \
            case 1: TILE(a, r, t, 1); break;                                                   \
            default: break;                                                                    \
            }                                                                                  \
        }                                                                                      \
    }

/* The last rem (< MAXNT <= 8) tokens of a range as one tile: TILE(nt) with nt a compile-time
 * constant, so an always-inline tile function is specialised for each count. */
#define NT_REST(rem, MAXNT, TILE)                                                              \
    do {                                                                                       \
        switch (rem) {                                                                         \
        case 7: if (7 < (MAXNT)) TILE(7); break;                                              \
        case 6: if (6 < (MAXNT)) TILE(6); break;                                              \
        case 5: if (5 < (MAXNT)) TILE(5); break;                                              \
        case 4: if (4 < (MAXNT)) TILE(4); break;                                              \
        case 3: if (3 < (MAXNT)) TILE(3); break;                                              \
        case 2: if (2 < (MAXNT)) TILE(2); break;                                              \
        case 1: TILE(1); break;                                                                \
        default: break;                                                                        \
        }                                                                                      \
    } while (0)

/* Stores the 16 outputs of one packed row group (lo: rows 0-7, hi: rows 8-15), only the first
 * nv (< 16 for the last group of a range). */
INLINE void store_group16(float *y, __m256 lo, __m256 hi, int64_t nv) {
    if (nv == BM_PACK_ROWS) {
        _mm256_storeu_ps(y, lo);
        _mm256_storeu_ps(y + 8, hi);
        return;
    }
    float tmp[BM_PACK_ROWS];
    _mm256_storeu_ps(tmp, lo);
    _mm256_storeu_ps(tmp + 8, hi);
    memcpy(y, tmp, sizeof(float) * (size_t)nv);
}

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x), 8 lanes: 0 below -87.3 (where float would go subnormal), x clamped to 88 above;
 * x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 as a float-exact high part plus a low
 * part), e^r by its degree-7 Taylor polynomial (truncation < 5e-9 relative), times 2^n through
 * the exponent bits. Shared by SwiGLU and attention. */
INLINE __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* ---- weight block loaders: 32 signed codes and the block scale ---------------------------- */

INLINE float load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INLINE __m256i w_q8_0(const uint8_t *p, float *d) {
    *d = load_f16(p);
    return _mm256_loadu_si256((const __m256i *)(p + 2));
}

/* Low nibbles are elements 0..15, high nibbles 16..31. */
INLINE __m256i nibbles(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

INLINE __m256i w_q4_0(const uint8_t *p, float *d) {
    *d = load_f16(p);
    return _mm256_sub_epi8(nibbles(p + 2), _mm256_set1_epi8(8));
}

/* Bit j of the 32-bit qh as 0x10 in byte j. */
INLINE __m256i high_bits(const uint8_t *qhp) {
    uint32_t qh;
    memcpy(&qh, qhp, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)qh),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                         3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

INLINE __m256i w_q5_0(const uint8_t *p, float *d) {
    *d = load_f16(p);
    const __m256i q = _mm256_or_si256(nibbles(p + 6), high_bits(p + 2));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(16));
}

#endif
