/* Body of the AMX int8 kernels over packed Q8_0 / Q4_0 / Q5_0 weights (layout in kernels.h),
 * included by mmp_amx.c with the real tile intrinsics and by tests/unit/test_amx.c with the
 * software emulation of amx_emu.h. The includer defines TILE_CFG(p), TILE_LOAD(t, p, stride),
 * TILE_ZERO(t), TILE_DPBSUD(c, a, b), TILE_DPBSSD(c, a, b), TILE_STORE(t, p, stride) and
 * TILE_RELEASE(), and is compiled with AVX-512 F/BW/VL + VNNI (the float part and the VNNI
 * fallback are AVX-512).
 *
 * One tile dot product per 32-column block and 16-row group: A = 16 tokens x 32 signed activation
 * codes (BM_ACT_Q8S rows as they are, stride ldq), B = the group's block as packed: 8 rows of 64
 * bytes, row c = column quad c of the 16 weight rows (the AMX "VNNI" B layout for K = 32, N = 16),
 * C = 16 tokens x 16 rows of int32. Q8_0 blocks are loaded straight from the packed buffer as
 * unsigned codes (stored + 128) into signed x unsigned TDPBSUD, and the offset is removed per
 * token as the VNNI kernel does (isum = C - 128 * sum(x codes)); Q4_0 / Q5_0 nibbles have to be
 * spread to one byte per code anyway (a 512-byte buffer per block), so they are made signed there
 * (code - 8 / code - 16: one vpsubb per 64 codes, shared by 16 tokens) for signed x signed
 * TDPBSSD, which saves the per-token offset add. Either way the int32 block sum is exact and every
 * block is scaled in the same float operations, in the same order: y = sum over b of
 * fma(float(isum_b), d_w * d_x, .) from 0. So a token's output is bitwise the VNNI kernel's, and
 * tokens that do not fill a 16-token tile go to the VNNI kernel without breaking batch
 * invariance. */
#ifndef BAIMO_X86_MMP_AMX_H
#define BAIMO_X86_MMP_AMX_H

#include "tensor/x86/mmp.h"

#define AMX_T 16 /* tokens per A tile */

/* Tiles: A, B, C for even blocks (0, 1, 2) and for odd blocks (3, 4, 5), so two independent
 * dot products are in flight. */
INLINE void amx_config(uint8_t cfg[64]) {
    memset(cfg, 0, 64);
    cfg[0] = 1; /* palette 1 */
    for (int s = 0; s < 2; s++) {
        const int ta = 3 * s, tb = 3 * s + 1, tc = 3 * s + 2;
        const uint16_t ca = BM_QK, cb = 64, cc = 64; /* colsb: K bytes, 16 x 4, 16 int32 */
        memcpy(cfg + 16 + 2 * ta, &ca, 2);
        memcpy(cfg + 16 + 2 * tb, &cb, 2);
        memcpy(cfg + 16 + 2 * tc, &cc, 2);
        cfg[48 + ta] = AMX_T;      /* tokens */
        cfg[48 + tb] = BM_QK / 4;  /* K / 4 */
        cfg[48 + tc] = AMX_T;
    }
}

/* The B tile of one block: q4 = 0 the packed Q8_0 block itself (unsigned), else the signed
 * values spread to bytes in buf (row c = column quad c). */
INLINE const uint8_t *amx_btile(const uint8_t *cp, const int q4, uint8_t *buf) {
    if (!q4) return cp;
    const __m512i plane =
        q4 == 2 ? _mm512_load_si512((const void *)(cp + 256)) : _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        const __m512i raw = _mm512_load_si512((const void *)(cp + 64 * c));
        __m512i w0, w1;
        nib_codes(raw, c, q4 == 2, plane, &w0, &w1);
        const __m512i bias = _mm512_set1_epi8(q4 == 2 ? 16 : 8);
        _mm512_store_si512((void *)(buf + 128 * c), _mm512_sub_epi8(w0, bias));
        _mm512_store_si512((void *)(buf + 128 * c + 64), _mm512_sub_epi8(w1, bias));
    }
    return buf;
}

/* Scales block b's int32 tile c (16 tokens x 16 rows) into acc, token by token; off: the
 * weight code offset still in c (-128 for Q8_0, 0 when the codes were made signed). */
INLINE void amx_scale(const bm_mm_args *a, const int32_t *c, __m512 dw, const int off,
                      int64_t b, int64_t t0, __m512 acc[AMX_T]) {
    for (int j = 0; j < AMX_T; j++) {
        const int64_t tb = (t0 + j) * a->ldd + b;
        __m512i isum = _mm512_load_si512((const void *)(c + 16 * j));
        if (off) isum = _mm512_add_epi32(isum, _mm512_set1_epi32(off * a->xs[tb]));
        const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(a->xd[tb]));
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), s, acc[j]);
    }
}

/* c += a . b: unsigned Q8_0 codes, signed 4- and 5-bit values. */
#define AMX_DP(c, x, y)                                                                        \
    do {                                                                                       \
        if (q4) TILE_DPBSSD(c, x, y);                                                          \
        else TILE_DPBSUD(c, x, y);                                                             \
    } while (0)

/* One group (16 rows at r, valid rows masked) x tokens [t0, t0 + 16). Tiles configured. */
INLINE void amx_tile(const bm_mm_args *a, const uint8_t *grp, int64_t nb, const int q4,
                     int64_t r, __mmask16 valid, int64_t t0) {
    const size_t cb = q4 == 2 ? BM_PACK_ROWS * (BM_QK / 2 + 4)
                              : q4 ? BM_PACK_ROWS * BM_QK / 2 : BM_PACK_ROWS * BM_QK;
    const int off = q4 ? 0 : -128;
    const uint16_t *sc = (const uint16_t *)(grp + (size_t)nb * cb);
    _Alignas(64) int32_t c0[AMX_T * 16], c1[AMX_T * 16];
    _Alignas(64) uint8_t b0[512], b1[512];
    __m512 acc[AMX_T];
    for (int j = 0; j < AMX_T; j++) acc[j] = _mm512_setzero_ps();
    const uint8_t *xq = a->xq + t0 * a->ldq;
    const long ldq = (long)a->ldq;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        TILE_LOAD(1, amx_btile(grp + (size_t)b * cb, q4, b0), 64);
        TILE_LOAD(0, xq + b * BM_QK, ldq);
        TILE_ZERO(2);
        AMX_DP(2, 0, 1);
        TILE_LOAD(4, amx_btile(grp + (size_t)(b + 1) * cb, q4, b1), 64);
        TILE_LOAD(3, xq + (b + 1) * BM_QK, ldq);
        TILE_ZERO(5);
        AMX_DP(5, 3, 4);
        TILE_STORE(2, c0, 64);
        TILE_STORE(5, c1, 64);
        amx_scale(a, c0, _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sc + b * 16))),
                  off, b, t0, acc);
        amx_scale(a, c1,
                  _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sc + (b + 1) * 16))),
                  off, b + 1, t0, acc);
    }
    if (b < nb) {
        TILE_LOAD(1, amx_btile(grp + (size_t)b * cb, q4, b0), 64);
        TILE_LOAD(0, xq + b * BM_QK, ldq);
        TILE_ZERO(2);
        AMX_DP(2, 0, 1);
        TILE_STORE(2, c0, 64);
        amx_scale(a, c0, _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sc + b * 16))),
                  off, b, t0, acc);
    }
    for (int j = 0; j < AMX_T; j++)
        _mm512_mask_storeu_ps(a->y + (t0 + j) * a->ldy + r, valid, acc[j]);
}

/* Rows [r0, r1) (r0 a multiple of 16) x all tokens: whole 16-token tiles on the tiles, the
 * remaining n_tok % 16 tokens (all of them when n_tok < 16) through the VNNI kernel vnni,
 * which gives the same bits per token. */
INLINE void amx_drive(const bm_mm_args *a, int64_t r0, int64_t r1, const int q4, bm_mm_fn vnni) {
    const int64_t nb = a->n_in / BM_QK, full = a->n_tok / AMX_T * AMX_T;
    if (full > 0) {
        const size_t gb =
            bm_pack_group_bytes(q4 == 2 ? BM_Q5_0 : q4 ? BM_Q4_0 : BM_Q8_0, a->n_in);
        _Alignas(64) uint8_t cfg[64];
        amx_config(cfg);
        TILE_CFG(cfg);
        for (int64_t r = r0; r < r1; r += BM_PACK_ROWS) {
            const uint8_t *grp = a->w + (size_t)(r / BM_PACK_ROWS) * gb;
            const __mmask16 valid = rows_mask(r1 - r);
            for (int64_t t0 = 0; t0 < full; t0 += AMX_T) amx_tile(a, grp, nb, q4, r, valid, t0);
        }
        TILE_RELEASE();
    }
    if (full < a->n_tok) {
        bm_mm_args rest = *a;
        rest.xq += full * a->ldq;
        rest.xd += full * a->ldd;
        rest.xs += full * a->ldd;
        if (rest.xm) rest.xm += full * a->ldd;
        rest.y += full * a->ldy;
        rest.n_tok = a->n_tok - full;
        vnni(&rest, r0, r1);
    }
}

#endif
