/* Q2_K integer-dot kernel against the 8-bit activation blocks of 32, written once and compiled
 * per ISA level: mm_q2k_avx2.c (signed codes, vpmaddubsw/vpmaddwd), mm_q2k_vnni.c and
 * mm_q2k_avxvnni.c (codes arrive + 128 and are flipped back to signed; EVEX / VEX vpdpbusd,
 * dpbusd.h). Q2_K: 256-element super-blocks of 16
 * groups of 16, value = d * sc_g * q - dmin * m_g (q 2-bit, sc_g and m_g 4-bit). Each 128-bit
 * lane of a 32-element activation block covers exactly one 16-group, so per block two exact
 * int32 lane vectors come out: I = sum sc_g * q * x and M = sum m_g * x (the per-16 activation
 * sums weighted by the mins, computed here from the codes). One vphaddd folds them into one
 * vector, converted and scaled by d_x in float over the super-block, then by (d, d, -dmin,
 * -dmin, ...) once per super-block. Every output element follows one fixed instruction sequence
 * whatever n_tok is: results are batch invariant bitwise. */
#include "tensor/tile_driver.h"
#include "tensor/x86/dpbusd.h"
#include "tensor/x86/wblock.h"

#define NT BM_TILE_NT
#define KNR BM_TILE_NR
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define Q2K_NAME CAT(bm_mm_q2_K_, MMK_SUF)

#ifndef BM_MM_PREFETCH
#define BM_MM_PREFETCH 1
#endif
INLINE void q2k_prefetch(const uint8_t *p) {
#if BM_MM_PREFETCH
    _mm_prefetch((const char *)p, _MM_HINT_T0);
    _mm_prefetch((const char *)(p + 64), _MM_HINT_T0);
#else
    (void)p;
#endif
}

/* Byte selectors into a 16-byte table held in both lanes: group 2j in the low lane, 2j+1 in the
 * high lane (add 2j). S16 zero-extends to int16 (0x80 | k reads as zero). */
#define Q2K_S16                                                                                  \
    _mm256_setr_epi8(0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 1, \
                     -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128)
#define Q2K_S8                                                                                   \
    _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, \
                     1, 1, 1, 1, 1, 1, 1)

#ifdef MMK_VNNI
/* Weights: codes times their group scale as bytes (q * sc <= 45, so vpmullw on byte pairs
 * cannot carry into the neighbour byte); mins as bytes. Activations flipped to signed. */
typedef struct q2w { __m256i w, m; } q2w;
INLINE q2w q2_prep(__m256i codes, __m256i scb, __m256i mb, int g2) {
    const __m256i add = _mm256_set1_epi8((char)g2);
    q2w r = {_mm256_mullo_epi16(codes, _mm256_shuffle_epi8(scb, _mm256_add_epi8(Q2K_S16, add))),
             _mm256_shuffle_epi8(mb, _mm256_add_epi8(Q2K_S8, add))};
    return r;
}
INLINE __m256i q2_x(const bm_mm_args *a, int64_t t, int64_t b) {
    return _mm256_xor_si256(
        _mm256_loadu_si256((const __m256i *)(a->xq + t * a->ldq + b * BM_QK)),
        _mm256_set1_epi8((char)0x80));
}
INLINE __m256i q2_dot_i(q2w w, __m256i x) {
    return DPBUSD256(_mm256_setzero_si256(), w.w, x);
}
INLINE __m256i q2_dot_m(q2w w, __m256i x) {
    return DPBUSD256(_mm256_setzero_si256(), w.m, x);
}
#else
/* Codes (0..3) unsigned into vpmaddubsw (pairs <= 2 * 3 * 127), the group scale and the group
 * min as vpmaddwd multipliers (int16, <= 15): exact int32 lanes. */
typedef struct q2w { __m256i q, sc, m; } q2w;
INLINE q2w q2_prep(__m256i codes, __m256i scb, __m256i mb, int g2) {
    const __m256i sel = _mm256_add_epi8(Q2K_S16, _mm256_set1_epi8((char)g2));
    q2w r = {codes, _mm256_shuffle_epi8(scb, sel), _mm256_shuffle_epi8(mb, sel)};
    return r;
}
INLINE __m256i q2_x(const bm_mm_args *a, int64_t t, int64_t b) {
    return _mm256_loadu_si256((const __m256i *)(a->xq + t * a->ldq + b * BM_QK));
}
INLINE __m256i q2_dot_i(q2w w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.q, x), w.sc);
}
INLINE __m256i q2_dot_m(q2w w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), x), w.m);
}
#endif

/* nr rows x nt tokens (nr * nt <= 4), each element with its own accumulator. */
INLINE void q2k_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0, const int nt) {
    const int64_t ns = a->n_in / BM_QK_K;
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(3);
    __m256 acc[4];
    _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < ns; sb++) {
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {
            const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes +
                               sb * (int64_t)sizeof(bm_block_q2_K);
            if (nt == 1) q2k_prefetch(p + KNR * a->row_bytes);
            /* scales[16]: low nibble scale, high nibble min; qs[64] at 16; d, dmin at 80, 82. */
            const __m256i sraw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
            const __m256i scb = _mm256_and_si256(sraw, lo4);
            const __m256i mb = _mm256_and_si256(_mm256_srli_epi16(sraw, 4), lo4);
            const __m256 sv = _mm256_blend_ps(_mm256_set1_ps(load_f16(p + 80)),
                                              _mm256_set1_ps(-load_f16(p + 82)), 0xCC);
            const __m256i qa = _mm256_loadu_si256((const __m256i *)(p + 16));
            const __m256i qb = _mm256_loadu_si256((const __m256i *)(p + 48));
            __m256 sbacc[4]; /* per super-block: sum over sub-blocks of d_x * (I | M lanes) */
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) sbacc[j] = _mm256_setzero_ps();
            _Pragma("GCC unroll 8") for (int sub = 0; sub < 8; sub++) {
                /* Sub-block sub: 2 bits at shift 2 * (sub % 4) of qs[32 * (sub / 4) + l]. */
                const __m256i qc = sub < 4 ? qa : qb;
                const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(qc, 2 * (sub % 4)), lo2);
                const q2w w = q2_prep(codes, scb, mb, 2 * sub);
                const int64_t b = sb * 8 + sub;
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                    const int64_t t = t0 + j;
                    const __m256i x = q2_x(a, t, b);
                    const __m256i im = _mm256_hadd_epi32(q2_dot_i(w, x), q2_dot_m(w, x));
                    sbacc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(im),
                                               _mm256_set1_ps(a->xd[t * a->ldd + b]), sbacc[j]);
                }
            }
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc[i * nt + j] =
                _mm256_fmadd_ps(sbacc[j], sv, acc[i * nt + j]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)
            a->y[(t0 + j) * a->ldy + r + i] = hsum8(acc[i * nt + j]);
}

/* 1 row x 4 tokens for batches, up to 4 rows x 1 token for the token tail (decode). */
BM_TILE_DRIVER(Q2K_NAME, q2k_tile)
