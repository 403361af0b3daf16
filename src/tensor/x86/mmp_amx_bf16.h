/* Body of the AMX-BF16 kernel over packed BF16 weights (layout in kernels.h), included by
 * mmp_amx.c with the real tile intrinsics and by tests/unit/test_amx.c with the software
 * emulation of amx_emu.h. The includer defines TILE_CFG, TILE_LOAD, TILE_ZERO, TILE_STORE,
 * TILE_RELEASE (as for mmp_amx.h) and TILE_DPBF16PS(c, a, b), and compiles it with AVX-512 F/BW.
 *
 * The activations (f32 rows, a->x) are rounded to bf16 with round to nearest even, bitwise as
 * bm_f32_to_bf16 (integer AVX-512, so no AVX512_BF16 is needed), into a buffer of 32 tokens x
 * n_in padded with zeros to a multiple of 32 columns, once per 32 tokens per call. Tiles (palette
 * 1, all 64 bytes wide): C0..C3 = tmm0..3 (tokens x 16 output rows fp32), A0, A1 = tmm4, 5
 * (tokens x 32 bf16), B0, B1 = tmm6, 7 (one packed 1024-byte k-block of a row group: 16 pairs x
 * 16 rows). For 2 token tiles x 2 row groups, every 32-column block kb in order is one
 * TDPBF16PS per (A, B) pair, accumulating in the C tiles over the whole row, then the C tiles
 * are stored. So each output element is produced by the same TDPBF16PS sequence (k-blocks
 * 0, 1, ... on its own token row and weight column) whatever n_tok, its slot in the tile, the
 * row chunk or the pairing of tiles: the results are bitwise batch invariant, decode included
 * (with n_tok < 16 the A and C tiles are configured with n_tok rows; above, the last tile's
 * missing tokens are zero rows that are never stored). Zero-padded columns and rows add zero
 * products. */
#ifndef BAIMO_X86_MMP_AMX_BF16_H
#define BAIMO_X86_MMP_AMX_BF16_H

#include "tensor/x86/mmp.h"

#include <stdlib.h>

#define AMXB_K 32       /* bf16 columns per tile dot product */
#define AMXB_BLK 1024   /* bytes of one packed k-block of a group: 16 pairs x 16 rows x 4 */
#define AMXB_T 16       /* tokens per A tile (most) */

/* Tile configuration: C (tmm0..3) and A (tmm4, 5) with rows token rows, B (tmm6, 7) 16 pair
 * rows; all 64 bytes wide. */
INLINE void amxb_config(uint8_t cfg[64], int rows) {
    memset(cfg, 0, 64);
    cfg[0] = 1; /* palette 1 */
    const uint16_t cb = 64;
    for (int t = 0; t < 8; t++) {
        memcpy(cfg + 16 + 2 * t, &cb, 2);
        cfg[48 + t] = (uint8_t)(t < 6 ? rows : AMXB_K / 2);
    }
}

/* 16 floats to bf16, round to nearest even, NaN made quiet: bm_f32_to_bf16 lane by lane. */
INLINE __m256i amxb_rne16(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb,
                                                   _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    r = _mm512_mask_mov_epi32(r, nan,
                              _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* Columns [k0, k0 + nk) of token row x (n_in floats) as bf16 at out (nk a multiple of 32),
 * zero past n_in. */
INLINE void amxb_cvt_row(const float *x, int64_t n_in, int64_t k0, int64_t nk, uint16_t *out) {
    for (int64_t k = k0; k < k0 + nk; k += 16) {
        const int64_t left = n_in - k;
        __m512 v;
        if (left >= 16) v = _mm512_loadu_ps(x + k);
        else if (left > 0) v = _mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1u), x + k);
        else v = _mm512_setzero_ps();
        _mm256_storeu_si256((__m256i *)(out + (k - k0)), amxb_rne16(v));
    }
}

/* The A rows of tokens [t0, t0 + nt) and columns [k0, k0 + nk) into buf (row stride ld bf16);
 * rows nt .. nrow - 1 zero. */
INLINE void amxb_cvt(const bm_mm_args *a, int64_t t0, int nt, int nrow, int64_t k0, int64_t nk,
                     uint16_t *buf, int64_t ld) {
    for (int j = 0; j < nrow; j++) {
        if (j < nt) amxb_cvt_row(a->x + (t0 + j) * a->n_in, a->n_in, k0, nk, buf + j * ld);
        else memset(buf + j * ld, 0, (size_t)nk * 2);
    }
}

/* Stores C tile tc's token rows [0, nt) (of rows configured) x output rows [r, r + nr) to y. */
#define AMXB_STORE(tc, t, nt, rows, r, nr)                                                     \
    do {                                                                                       \
        if ((nt) == (rows) && (nr) == 16) {                                                    \
            TILE_STORE(tc, a->y + (t) * a->ldy + (r), (long)a->ldy * 4);                       \
        } else {                                                                               \
            _Alignas(64) float ct_[AMXB_T * 16];                                               \
            TILE_STORE(tc, ct_, 64);                                                           \
            for (int j_ = 0; j_ < (nt); j_++)                                                  \
                memcpy(a->y + ((t) + j_) * a->ldy + (r), ct_ + 16 * j_, (size_t)(nr) * 4);    \
        }                                                                                      \
    } while (0)

/* Tokens [t0, t0 + nt) (nt <= 32; A tiles: 1 when nt <= 16) x the groups at g0 (rows
 * [r, r + nr0)) and g1 (nr1 rows, 0: none). xb: the converted activations of these tokens
 * (row stride ldb), or NULL: converted here per k-block (the same bits, slower). */
INLINE void amxb_block(const bm_mm_args *a, const uint16_t *xb, int64_t ldb, int64_t t0, int nt,
                       int rows, const uint8_t *g0, const uint8_t *g1, int64_t r, int nr0,
                       int nr1) {
    const int64_t nkb = (a->n_in + AMXB_K - 1) / AMXB_K;
    const bool two_a = nt > AMXB_T, two_b = nr1 > 0;
    _Alignas(64) uint16_t tmp[2 * AMXB_T * AMXB_K];
    TILE_ZERO(0);
    if (two_b) TILE_ZERO(1);
    if (two_a) TILE_ZERO(2);
    if (two_a && two_b) TILE_ZERO(3);
    for (int64_t kb = 0; kb < nkb; kb++) {
        const uint16_t *ap = tmp;
        int64_t ld = AMXB_K;
        if (xb) {
            ap = xb + kb * AMXB_K;
            ld = ldb;
        } else {
            amxb_cvt(a, t0, nt, two_a ? 2 * AMXB_T : rows, kb * AMXB_K, AMXB_K, tmp, AMXB_K);
        }
        TILE_LOAD(4, ap, (long)ld * 2);
        if (two_a) TILE_LOAD(5, ap + AMXB_T * ld, (long)ld * 2);
        TILE_LOAD(6, g0 + kb * AMXB_BLK, 64);
        if (two_b) TILE_LOAD(7, g1 + kb * AMXB_BLK, 64);
        TILE_DPBF16PS(0, 4, 6);
        if (two_b) TILE_DPBF16PS(1, 4, 7);
        if (two_a) TILE_DPBF16PS(2, 5, 6);
        if (two_a && two_b) TILE_DPBF16PS(3, 5, 7);
    }
    const int n0 = two_a ? AMXB_T : nt, n1 = nt - n0;
    AMXB_STORE(0, t0, n0, rows, r, nr0);
    if (two_b) AMXB_STORE(1, t0, n0, rows, r + 16, nr1);
    if (two_a) AMXB_STORE(2, t0 + AMXB_T, n1, rows, r, nr0);
    if (two_a && two_b) AMXB_STORE(3, t0 + AMXB_T, n1, rows, r + 16, nr1);
}

/* Rows [r0, r1) (r0 a multiple of 16) x all tokens of packed BF16 weights, f32 activations. */
INLINE void amxb_drive(const bm_mm_args *a, int64_t r0, int64_t r1) {
    if (a->n_tok <= 0 || r1 <= r0) return;
    const int64_t nkb = (a->n_in + AMXB_K - 1) / AMXB_K;
    const int64_t ldb = nkb * AMXB_K + AMXB_K; /* + 64 bytes: rows not 4 KiB apart */
    const size_t gb = (size_t)nkb * AMXB_BLK;
    const int rows = a->n_tok < AMXB_T ? (int)a->n_tok : AMXB_T;
    /* Prefill converts each token's row once into xb; below 16 tokens (decode) every k-block
     * is converted on the stack as it is used (the same bits), so no call of a decode step
     * allocates. NULL (also when out of memory): per k-block. */
    uint16_t *xb = a->n_tok >= AMXB_T ? malloc((size_t)ldb * 2 * (2 * AMXB_T)) : NULL;
    _Alignas(64) uint8_t cfg[64];
    amxb_config(cfg, rows);
    TILE_CFG(cfg);
    for (int64_t t0 = 0; t0 < a->n_tok; t0 += 2 * AMXB_T) {
        const int nt = a->n_tok - t0 < 2 * AMXB_T ? (int)(a->n_tok - t0) : 2 * AMXB_T;
        if (xb) amxb_cvt(a, t0, nt, nt > AMXB_T ? 2 * AMXB_T : rows, 0, nkb * AMXB_K, xb, ldb);
        for (int64_t r = r0; r < r1; r += 2 * BM_PACK_ROWS) {
            const uint8_t *g0 = a->w + (size_t)(r / BM_PACK_ROWS) * gb;
            const int64_t left = r1 - r;
            const int nr0 = left < 16 ? (int)left : 16;
            const int nr1 = left <= 16 ? 0 : left < 32 ? (int)(left - 16) : 16;
            amxb_block(a, xb, ldb, t0, nt, rows, g0, g0 + gb, r, nr0, nr1);
        }
    }
    TILE_RELEASE();
    free(xb);
}

#endif
