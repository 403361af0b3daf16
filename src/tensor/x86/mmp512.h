/* AVX-512 VNNI kernels over packed weights (layout in kernels.h): one 512-bit vpdpbusd
 * multiplies 4 columns of 16 weight rows (unsigned codes) by 4 activation codes of one token
 * (signed, broadcast), so a block of 32 columns is 8 instructions per token for 16 outputs and
 * no horizontal sum is ever needed. The code offset (Q8_0 codes stored + 128, Q4_0 codes 0..15
 * for values code - 8) is removed by starting each block's integer sum at -offset * sum(x
 * codes), then the block is scaled in float: y += float(isum) * (d_w * d_x). A tile is 16 rows
 * x up to NT tokens sharing every weight load; each token's outputs follow the same instruction
 * sequence whatever the tile size, so results are batch invariant bitwise. Compiled per level
 * (the including file defines MMP_SUF, the name suffix): mmp_vnni.c (vpdpbusd) and
 * mmp_avx512.c (MMP_EMU: the exact emulation of mmp.h, Q8_0 codes made signed, offset 0). */
#include "tensor/x86/mmp.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define PNAME(t) CAT(CAT(bm_mmp_, t), CAT(_, MMP_SUF))


#define NT 8
#ifndef NT2
#define NT2 4 /* tokens per tile of two groups (NT2 <= NT) */
#endif
#define PR BM_PACK_ROWS

/* One tile: ng (1, 2 or 4) row groups x nt tokens. q4: 1 codes packed 4-bit (two column quads
 * per vector), 2 the same plus a plane of fifth bits (Q5_0), 0 8-bit codes (Q8_0). Decode
 * prefetches the next tile into L2 (a 142 MB matrix: best of 30 runs 3-20% faster than with
 * the hardware prefetchers alone, which the 2-4 short interleaved group streams train poorly).
 * Decode (nt = 1) takes 2 or 4 groups, so each activation broadcast serves 32-64 rows, and two
 * integer chains per group are in flight. */
INLINE void ptile(const bm_mm_args *a, const uint8_t *grp, size_t gb, const int ng, int64_t nb,
                  const int q4, int64_t r, __mmask16 valid0, __mmask16 valid1, int64_t t0,
                  const int nt, const uint8_t *pf) {
    /* Decode: while this tile's ng groups are consumed block by block, the same share of the
     * next tile's (pf, contiguous ng * gb bytes) is prefetched into L2. */
    const size_t pf_step = pf ? ((size_t)ng * gb / (size_t)nb + 63) & ~(size_t)63 : 0;
    const size_t cb = q4 == 2 ? PR * (BM_QK / 2 + 4) : q4 ? PR * BM_QK / 2 : PR * BM_QK;
    const int off = q4 == 2 ? -16 : q4 ? -8 : Q8_OFF;
    __m512 facc[4][NT];
    _Pragma("GCC unroll 4") for (int g = 0; g < ng; g++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) facc[g][j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        /* Decode (one token) splits each integer sum over two chains (exact: the same int32
         * result), so the dependent vpdpbusd latency does not bound the stream. */
        const bool sp = nt == 1;
        __m512i acc[4][NT], acc2[4][NT];
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
            const __m512i init = _mm512_set1_epi32(off * a->xs[(t0 + j) * a->ldd + b]);
            _Pragma("GCC unroll 4") for (int g = 0; g < ng; g++) {
                acc[g][j] = init;
                acc2[g][j] = _mm512_setzero_si512();
            }
        }
        if (pf)
            for (size_t o = 0; o < pf_step; o += 64)
                _mm_prefetch((const char *)pf + (size_t)b * pf_step + o, _MM_HINT_T1);
        const uint8_t *xb = a->xq + t0 * a->ldq + b * BM_QK;
        _Pragma("GCC unroll 4") for (int g = 0; g < ng; g++) {
            const uint8_t *cp = grp + g * gb + (size_t)b * cb;
            if (q4) {
                const __m512i plane =
                    q4 == 2 ? _mm512_load_si512((const void *)(cp + 256)) : _mm512_setzero_si512();
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
                    __m512i w0, w1;
                    nib_codes(_mm512_load_si512((const void *)(cp + 64 * c)), c, q4 == 2, plane,
                              &w0, &w1);
                    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                        if (sp)
                            DP_B2(acc[g][j], acc2[g][j], w0, xb + j * a->ldq + 8 * c, w1,
                                  xb + j * a->ldq + 8 * c + 4);
                        else
                            DP_B2(acc[g][j], acc[g][j], w0, xb + j * a->ldq + 8 * c, w1,
                                  xb + j * a->ldq + 8 * c + 4);
                    }
                }
            } else {
                _Pragma("GCC unroll 8") for (int c = 0; c < 8; c++) {
                    const wq8 w = Q8_PREP(_mm512_load_si512((const void *)(cp + 64 * c)));
                    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                        if (sp && (c & 1))
                            DP_Q8(acc2[g][j], w, xb + j * a->ldq + 4 * c);
                        else
                            DP_Q8(acc[g][j], w, xb + j * a->ldq + 4 * c);
                    }
                }
            }
        }
        _Pragma("GCC unroll 4") for (int g = 0; g < ng; g++) {
            const uint16_t *sc = (const uint16_t *)(grp + g * gb + (size_t)nb * cb);
            const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sc + b * PR)));
            _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                if (sp)
                    acc[g][j] = _mm512_add_epi32(acc[g][j], acc2[g][j]);
                const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(a->xd[(t0 + j) * a->ldd + b]));
                facc[g][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[g][j]), s, facc[g][j]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int g = 0; g < ng; g++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) _mm512_mask_storeu_ps(
            a->y + (t0 + j) * a->ldy + r + g * PR,
            g == 0 ? valid0 : g == ng - 1 ? valid1 : (__mmask16)0xFFFF, facc[g][j]);
}

INLINE void pdrive(const bm_mm_args *a, int64_t r0, int64_t r1, const int q4) {
    const int64_t nb = a->n_in / BM_QK;
    const size_t gb = bm_pack_group_bytes(q4 == 2 ? BM_Q5_0 : q4 ? BM_Q4_0 : BM_Q8_0, a->n_in);
#define GRP (a->w + (size_t)(r / PR) * gb)
    int64_t r = r0;
    if (a->n_tok == 1) {
        /* 4-bit codes: 4 groups per tile (more streams in flight; measured +3-10%); Q8_0
         * measured slower with 4 and keeps 2. */
        /* next tile's groups when they are still in this range, else none */
#define NEXT(ng) (r + 2 * (ng) * PR <= r1 ? GRP + (size_t)(ng) * gb : NULL)
        if (q4)
            for (; r + 3 * PR < r1; r += 4 * PR)
                ptile(a, GRP, gb, 4, nb, q4, r, 0xFFFF, rows_mask(r1 - r - 3 * PR), 0, 1,
                      NEXT(4));
        for (; r + PR < r1; r += 2 * PR)
            ptile(a, GRP, gb, 2, nb, q4, r, 0xFFFF, rows_mask(r1 - r - PR), 0, 1, NEXT(2));
        if (r < r1) ptile(a, GRP, gb, 1, nb, q4, r, rows_mask(r1 - r), 0, 0, 1, NULL);
#undef NEXT
        return;
    }
    /* Prefill: pairs of groups (each activation broadcast serves 32 rows) x NT2 tokens, then
     * a last single group x NT tokens. */
    int64_t t0;
    for (; r + PR < r1; r += 2 * PR) {
        const __mmask16 v1 = rows_mask(r1 - r - PR);
#define TILE2(nt) ptile(a, GRP, gb, 2, nb, q4, r, 0xFFFF, v1, t0, nt, NULL)
        for (t0 = 0; t0 + NT2 <= a->n_tok; t0 += NT2) TILE2(NT2);
        NT_REST(a->n_tok - t0, NT2, TILE2);
#undef TILE2
    }
    for (; r < r1; r += PR) {
        const __mmask16 valid = rows_mask(r1 - r);
#define TILE1(nt) ptile(a, GRP, gb, 1, nb, q4, r, valid, 0, t0, nt, NULL)
        for (t0 = 0; t0 + NT <= a->n_tok; t0 += NT) TILE1(NT);
        NT_REST(a->n_tok - t0, NT, TILE1);
#undef TILE1
    }
#undef GRP
}

void PNAME(q8_0)(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive(a, r0, r1, 0); }
void PNAME(q4_0)(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive(a, r0, r1, 1); }
void PNAME(q5_0)(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive(a, r0, r1, 2); }
