/* AVX-512 VNNI kernels over packed Q4_K / Q5_K / Q6_K weights (layout in kernels.h), built like the
 * Q8_0 / Q4_0 ones in mmp_vnni.c: one vpdpbusd multiplies 4 columns of 16 rows (unsigned codes)
 * by 4 broadcast activation codes of one token, a tile is 16 rows x up to NT tokens
 * (decode: the next group prefetched into L2). Per 32-column block the integer sum is exact:
 *   Q4_K: isum = sum q x (q 0..15); per super-block S = sum_sub isum * (sc d_x) and
 *         M = sum_sub m * (d_x xs), then y += S * d - M * dmin (3 multiplies per sub-block
 *         and token on the FMA pipes, which vpdpbusd shares, where scaling each sub-block by
 *         d sc and dmin m took 5: Q4_K decode is 8 vpdpbusd + 3 per 256 code bytes);
 *   Q5_K: the same with q 0..31 (16 added where the column's bit in the fifth-bit plane is
 *         set, as the Q5_0 kernel does);
 *   Q6_K: per 16-column half h, A_h = sum q x - 32 sum x (the half's code sum computed here
 *         from the activation codes), isum = sc_0 A_0 + sc_1 A_1; y += isum * (d d_x).
 * Each token's outputs follow the same instruction sequence whatever the tile: batch
 * invariant bitwise. Compiled per level (the including file defines MMP_SUF, the name suffix):
 * mmp_k_vnni.c (vpdpbusd) and mmpk_avx512.c (MMP_EMU: the exact emulation of mmp.h). */
#include "tensor/x86/mmp.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define PNAME(t) CAT(CAT(bm_mmp_, t), CAT(_, MMP_SUF))


#define NT 8
#define PR BM_PACK_ROWS


/* 16 bytes (one per row) widened to int32 (sign: int8, else uint8). */
INLINE __m512i bytes16(const uint8_t *p, int sign) {
    const __m128i v = _mm_load_si128((const __m128i *)p);
    return sign ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

/* Sum of the first 16 signed codes at p. */
INLINE int32_t sum16(const uint8_t *p) {
    const __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8(-128));
    const __m128i s = _mm_sad_epu8(v, _mm_setzero_si128());
    return _mm_cvtsi128_si32(s) + _mm_extract_epi16(s, 4) - 16 * 128;
}

enum { K4 = 0, K6 = 1, K5 = 2 };

/* One tile: the row group grp x nt tokens; kind: K4 (Q4_K), K5 (Q5_K) or K6 (Q6_K). */
INLINE void ktile(const bm_mm_args *a, const uint8_t *grp, int64_t nsb, const int kind,
                  int64_t r, __mmask16 valid, int64_t t0, const int nt, const uint8_t *pf) {
    const int q6 = kind == K6, q5 = kind == K5;
    const size_t sbb = q6 ? BM_PACK_Q6_K_SB : q5 ? BM_PACK_Q5_K_SB : BM_PACK_Q4_K_SB;
    const size_t cb = q6 ? 384 : q5 ? 320 : 256; /* code bytes per 32-column block */
    const __m512i hi2 = _mm512_set1_epi8(0x30);
    /* Q6_K accumulates y in facc; Q4_K / Q5_K in y itself, read and written once per
     * super-block (their sacc would otherwise leave too few registers for 8 tokens). */
    __m512 facc[NT], sacc[NT];
    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) facc[j] = _mm512_setzero_ps();
    if (!q6)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)
            _mm512_mask_storeu_ps(a->y + (t0 + j) * a->ldy + r, valid, facc[j]);
    /* Decode (pf: the next group): each super-block step prefetches the same share of it into
     * L2 (Qwen3-0.6B decode, alternating runs: Q4_K 44-51 -> 53-56
     * tok/s, Q6_K 35 -> 37-39, over the 4 KiB-ahead L1 prefetch it replaces). */
    for (int64_t s = 0; s < nsb; s++) {
        if (pf)
            for (size_t o = 0; o < sbb; o += 64)
                _mm_prefetch((const char *)pf + (size_t)s * sbb + o, _MM_HINT_T1);
        const uint8_t *sp = grp + s * sbb + 8 * cb; /* the super-block's scales */
        __m512 dv, mv = _mm512_setzero_ps();
        if (q6) {
            dv = _mm512_load_ps((const float *)(sp + 16 * PR));
        } else {
            dv = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)sp));
            mv = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sp + 2 * PR)));
        }
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) sacc[j] = _mm512_setzero_ps();
        for (int sub = 0; sub < 8; sub++) {
            const int64_t b = s * 8 + sub;
            const uint8_t *xb = a->xq + t0 * a->ldq + b * BM_QK;
            __m512i acc[NT], acc1[NT];
            _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                if (q6) {
                    const int32_t x0 = sum16(xb + j * a->ldq);
                    const int32_t x1 = a->xs[(t0 + j) * a->ldd + b] - x0;
                    acc[j] = _mm512_set1_epi32(-32 * x0);
                    acc1[j] = _mm512_set1_epi32(-32 * x1);
                } else {
                    acc[j] = acc1[j] = _mm512_setzero_si512();
                }
            }
            {
                const uint8_t *cp = grp + s * sbb + (size_t)sub * cb;
                const __m512i plane =
                    q5 ? _mm512_load_si512((const void *)(cp + 256)) : _mm512_setzero_si512();
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
                    __m512i w0, w1;
                    nib_codes(_mm512_load_si512((const void *)(cp + 64 * c)), c, q5, plane, &w0,
                              &w1);
                    if (q6) {
                        /* High bits: vector c / 2; quads 4h + 0..3 at bits 4, 6, 0, 2. */
                        const __m512i h =
                            _mm512_load_si512((const void *)(cp + 256 + 64 * (c / 2)));
                        const __m512i h0 = c % 2 ? _mm512_slli_epi16(h, 4) : h;
                        const __m512i h1 =
                            c % 2 ? _mm512_slli_epi16(h, 2) : _mm512_srli_epi16(h, 2);
                        w0 = _mm512_ternarylogic_epi32(w0, h0, hi2, 0xF8); /* a | (b & c) */
                        w1 = _mm512_ternarylogic_epi32(w1, h1, hi2, 0xF8);
                    }
                    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                        /* Q6_K: one sum per 16-column half. Q4_K/Q5_K decode: two chains (the
                         * same int32 sum) so vpdpbusd latency does not bound the stream. */
                        __m512i *ap = q6 && c >= 2 ? &acc1[j] : &acc[j];
                        __m512i *bp = !q6 && nt == 1 ? &acc1[j] : ap;
                        DP_B2(*ap, *bp, w0, xb + j * a->ldq + 8 * c, w1,
                              xb + j * a->ldq + 8 * c + 4);
                    }
                }
            }
            {
                if (q6) {
                    const __m512i s0 = bytes16(sp + (2 * sub) * PR, 1);
                    const __m512i s1 = bytes16(sp + (2 * sub + 1) * PR, 1);
                    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                        const __m512i isum = _mm512_add_epi32(_mm512_mullo_epi32(acc[j], s0),
                                                              _mm512_mullo_epi32(acc1[j], s1));
                        const __m512 f =
                            _mm512_mul_ps(dv, _mm512_set1_ps(a->xd[(t0 + j) * a->ldd + b]));
                        facc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), f, facc[j]);
                    }
                } else {
                    const __m512 sc = _mm512_cvtepi32_ps(bytes16(sp + 4 * PR + sub * PR, 0));
                    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                        const __m512 f =
                            _mm512_mul_ps(sc, _mm512_set1_ps(a->xd[(t0 + j) * a->ldd + b]));
                        const __m512i isum =
                            nt == 1 ? _mm512_add_epi32(acc[j], acc1[j]) : acc[j];
                        sacc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), f, sacc[j]);
                    }
                }
            }
        }
        if (!q6) {
            /* The mins: M = sum_sub m * (d_x xs) per token, each m widened once and used for
             * every token; then y += S d - M dmin, y read once and written once (reading it
             * back right after a masked store stalls the load). */
            __m512 macc[NT];
            _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) macc[j] = _mm512_setzero_ps();
            _Pragma("GCC unroll 8") for (int sub = 0; sub < 8; sub++) {
                const __m512 m = _mm512_cvtepi32_ps(bytes16(sp + 12 * PR + sub * PR, 0));
                _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) macc[j] = _mm512_fmadd_ps(
                    m, _mm512_set1_ps(a->xm[(t0 + j) * a->ldd + s * 8 + sub]), macc[j]);
            }
            _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
                float *yj = a->y + (t0 + j) * a->ldy + r;
                const __m512 y = _mm512_fmadd_ps(sacc[j], dv, _mm512_maskz_loadu_ps(valid, yj));
                _mm512_mask_storeu_ps(yj, valid, _mm512_fnmadd_ps(macc[j], mv, y));
            }
        }
    }
    if (q6)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)
            _mm512_mask_storeu_ps(a->y + (t0 + j) * a->ldy + r, valid, facc[j]);
}

/* Row groups one at a time, each over tiles of up to NT tokens. Decode (one token) prefetches
 * the next group into L2 while this one is read: one code stream in flight per thread. Decode
 * tiles of 2 and 4 groups (more activation reuse) streamed slower: Qwen3-0.6B Q4_K 54-66 tok/s
 * with 4 and 65-68 with 2 vs 72-84 with 1; the 256-bit kernel this replaced for decode streamed
 * as fast as 1 from DRAM, but 1.5-1.9x slower from L2 (bench_matmul 1536 x 256, 1 thread:
 * Q4_K 33 vs 49 GB/s, Q5_K 22 vs 42, Q6_K 31 vs 48). */
INLINE void kdrive(const bm_mm_args *a, int64_t r0, int64_t r1, const int kind) {
    const int64_t nsb = a->n_in / BM_QK_K;
    const size_t gb =
        bm_pack_group_bytes(kind == K6 ? BM_Q6_K : kind == K5 ? BM_Q5_K : BM_Q4_K, a->n_in);
    for (int64_t r = r0; r < r1; r += PR) {
        const uint8_t *grp = a->w + (size_t)(r / PR) * gb;
        const __mmask16 valid = rows_mask(r1 - r);
        const uint8_t *pf = a->n_tok == 1 && r + 2 * PR <= r1 ? grp + gb : NULL;
        int64_t t0;
#define TILE1(nt) ktile(a, grp, nsb, kind, r, valid, t0, nt, pf)
        for (t0 = 0; t0 + NT <= a->n_tok; t0 += NT) TILE1(NT);
        NT_REST(a->n_tok - t0, NT, TILE1);
#undef TILE1
    }
}

void PNAME(q4_K)(const bm_mm_args *a, int64_t r0, int64_t r1) { kdrive(a, r0, r1, K4); }
void PNAME(q5_K)(const bm_mm_args *a, int64_t r0, int64_t r1) { kdrive(a, r0, r1, K5); }
void PNAME(q6_K)(const bm_mm_args *a, int64_t r0, int64_t r1) { kdrive(a, r0, r1, K6); }
