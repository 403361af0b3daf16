/* Kernels over packed Q4_K / Q5_K / Q6_K weights for CPUs without AVX-512 (layout in
 * kernels.h, each 16-row group read as two 256-bit halves of 8 rows), written once and compiled
 * per level like mmp256.h: mmpk_avx2.c, mmpk_avxvnni.c (VEX vpdpbusd) and mmpk_vnni256_vnni.c
 * (EVEX vpdpbusd: the tested twin of the avxvnni build). Per row and 32-column sub-block the
 * integer sum and its float scaling are those of the AVX-512 kernel (mmp_k_vnni.c):
 *   Q4_K / Q5_K: isum = sum q x; per super-block S = sum_sub isum * (sc d_x) and
 *     M = sum_sub m * (d_x xs), then y += S d - M dmin;
 *   Q6_K: A_h = sum over 16-column half h of q x - 32 x; y += (sc_0 A_0 + sc_1 A_1) (d d_x).
 * Without vpdpbusd the products go through vpmaddubsw (unsigned code x signed activation code,
 * int16 pair sums) and are widened with vpmaddwd by ones before they can saturate, |x| <= 127:
 *   Q4_K: codes <= 15, 2 x 15 x 127 = 3,810 per pair, 8 pairs summed per sub-block: 30,480;
 *   Q5_K: codes <= 31, 2 x 31 x 127 = 7,874 per pair, widened every 4 (31,496);
 *   Q6_K: codes <= 63, 2 x 63 x 127 = 16,002 per pair, widened every 2 (32,004);
 * all < 32,767, so every int32 sum is exact and equals the vpdpbusd one. Tiles of one group x
 * up to NT tokens; each token follows the same instruction sequence whatever the tile (the
 * decode-only second vpdpbusd chain gives the same exact int32): batch invariant bitwise. */
#include "tensor/x86/dpbusd.h"
#include "tensor/x86/wblock.h"

#define NT 4
#define PR BM_PACK_ROWS
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define PNAME(t) CAT(CAT(bm_mmp_, t), CAT(_, MMP_SUF))

enum { K4 = 0, K6 = 1, K5 = 2 };

INLINE __m256i kbc4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* 8 bytes (one per row of a half) widened to int32 (sign: int8, else uint8). */
INLINE __m256i kbytes8(const uint8_t *p, int sign) {
    const __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return sign ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

/* Sum of the first 16 signed codes at p. */
INLINE int32_t ksum16(const uint8_t *p) {
    const __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8(-128));
    const __m128i s = _mm_sad_epu8(v, _mm_setzero_si128());
    return _mm_cvtsi128_si32(s) + _mm_extract_epi16(s, 4) - 16 * 128;
}

INLINE void ktile2(const bm_mm_args *a, const uint8_t *grp, int64_t nsb, const int kind,
                   int64_t r, int64_t nv, int64_t t0, const int nt, const uint8_t *pf) {
    const int q6 = kind == K6, q5 = kind == K5;
    const size_t sbb = q6 ? BM_PACK_Q6_K_SB : q5 ? BM_PACK_Q5_K_SB : BM_PACK_Q4_K_SB;
    const size_t cb = q6 ? 384 : q5 ? 320 : 256; /* code bytes per 32-column sub-block */
    const __m256i lo4 = _mm256_set1_epi8(0x0F), hi2 = _mm256_set1_epi8(0x30);
#ifndef MMP_DPBUSD
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    /* Q6_K accumulates y in facc; Q4_K / Q5_K in memory (y itself, or ybuf for a last group
     * of fewer than 16 rows), read and written once per super-block. */
    __m256 facc[2][NT], sacc[2][NT];
    float ybuf[NT][PR];
    float *yb[NT];
    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
        facc[0][j] = facc[1][j] = _mm256_setzero_ps();
        yb[j] = nv == PR ? a->y + (t0 + j) * a->ldy + r : ybuf[j];
        if (!q6) {
            _mm256_storeu_ps(yb[j], facc[0][j]);
            _mm256_storeu_ps(yb[j] + 8, facc[1][j]);
        }
    }
    for (int64_t s = 0; s < nsb; s++) {
        /* Decode: the same super-block of the next group into L2 (as mmp256.h per block). */
        if (pf)
            for (size_t o = 0; o < sbb; o += 64)
                _mm_prefetch((const char *)pf + (size_t)s * sbb + o, _MM_HINT_T1);
        const uint8_t *sp = grp + (size_t)s * sbb + 8 * cb; /* the super-block's scales */
        __m256 dv[2], mv[2];
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            if (q6) {
                dv[h] = _mm256_loadu_ps((const float *)(sp + 16 * PR) + 8 * h);
                mv[h] = _mm256_setzero_ps();
            } else {
                dv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 16 * h)));
                mv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 2 * PR + 16 * h)));
            }
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) sacc[0][j] = sacc[1][j] =
            _mm256_setzero_ps();
        for (int sub = 0; sub < 8; sub++) {
            const int64_t b = s * 8 + sub;
            const uint8_t *xb = a->xq + t0 * a->ldq + b * BM_QK;
            const uint8_t *cp = grp + (size_t)s * sbb + (size_t)sub * cb;
            /* acc: the sum (Q6_K: of half 0), acc1: Q6_K's half 1, or with vpdpbusd in decode
             * a second chain of the same sum. */
            __m256i acc[2][NT], acc1[2][NT];
#ifndef MMP_DPBUSD
            __m256i s16[2][NT];
#endif
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                __m256i i0 = _mm256_setzero_si256(), i1 = i0;
                if (q6) {
                    const int32_t x0 = ksum16(xb + j * a->ldq);
                    const int32_t x1 = a->xs[(t0 + j) * a->ldd + b] - x0;
                    i0 = _mm256_set1_epi32(-32 * x0);
                    i1 = _mm256_set1_epi32(-32 * x1);
                }
                acc[0][j] = acc[1][j] = i0;
                acc1[0][j] = acc1[1][j] = i1;
#ifndef MMP_DPBUSD
                s16[0][j] = s16[1][j] = _mm256_setzero_si256();
#endif
            }
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                const __m256i plane = q5 ? _mm256_loadu_si256((const __m256i *)(cp + 256 + 32 * h))
                                         : _mm256_setzero_si256();
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
                    const __m256i raw =
                        _mm256_loadu_si256((const __m256i *)(cp + 64 * c + 32 * h));
                    __m256i w0 = _mm256_and_si256(raw, lo4);
                    __m256i w1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4);
                    if (q6) { /* high bits: vector c / 2; quads 4 h' + 0..3 at bits 4, 6, 0, 2 */
                        const __m256i hb = _mm256_loadu_si256(
                            (const __m256i *)(cp + 256 + 64 * (c / 2) + 32 * h));
                        const __m256i h0 = c % 2 ? _mm256_slli_epi16(hb, 4) : hb;
                        const __m256i h1 =
                            c % 2 ? _mm256_slli_epi16(hb, 2) : _mm256_srli_epi16(hb, 2);
                        w0 = _mm256_or_si256(w0, _mm256_and_si256(h0, hi2));
                        w1 = _mm256_or_si256(w1, _mm256_and_si256(h1, hi2));
                    }
                    if (q5) { /* 16 where bit 2c (2c + 1) of the plane byte is set */
                        const __m256i m0 = _mm256_set1_epi8((char)(1 << (2 * c)));
                        const __m256i m1 = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
                        const __m256i k16 = _mm256_set1_epi8(16);
                        w0 = _mm256_or_si256(
                            w0, _mm256_and_si256(
                                    _mm256_cmpeq_epi8(_mm256_and_si256(plane, m0), m0), k16));
                        w1 = _mm256_or_si256(
                            w1, _mm256_and_si256(
                                    _mm256_cmpeq_epi8(_mm256_and_si256(plane, m1), m1), k16));
                    }
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                        const uint8_t *xj = xb + j * a->ldq + 8 * c;
                        __m256i *ap = q6 && c >= 2 ? &acc1[h][j] : &acc[h][j];
#ifdef MMP_DPBUSD
                        __m256i *bp = !q6 && nt == 1 ? &acc1[h][j] : ap;
                        *ap = DPBUSD256(*ap, w0, kbc4(xj));
                        *bp = DPBUSD256(*bp, w1, kbc4(xj + 4));
#else
                        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w0, kbc4(xj)),
                                                           _mm256_maddubs_epi16(w1, kbc4(xj + 4)));
                        if (q6) { /* 32,004 at most: widen at once */
                            *ap = _mm256_add_epi32(*ap, _mm256_madd_epi16(p, ones));
                        } else {
                            s16[h][j] = _mm256_add_epi16(s16[h][j], p);
                            if (c == 3 || (q5 && c == 1)) {
                                *ap = _mm256_add_epi32(*ap, _mm256_madd_epi16(s16[h][j], ones));
                                s16[h][j] = _mm256_setzero_si256();
                            }
                        }
#endif
                    }
                }
            }
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                if (q6) {
                    const __m256i s0 = kbytes8(sp + (2 * sub) * PR + 8 * h, 1);
                    const __m256i s1 = kbytes8(sp + (2 * sub + 1) * PR + 8 * h, 1);
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                        const __m256i isum = _mm256_add_epi32(_mm256_mullo_epi32(acc[h][j], s0),
                                                              _mm256_mullo_epi32(acc1[h][j], s1));
                        const __m256 f =
                            _mm256_mul_ps(dv[h], _mm256_set1_ps(a->xd[(t0 + j) * a->ldd + b]));
                        facc[h][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), f, facc[h][j]);
                    }
                } else {
                    const __m256 sc =
                        _mm256_cvtepi32_ps(kbytes8(sp + 4 * PR + sub * PR + 8 * h, 0));
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                        const __m256 f =
                            _mm256_mul_ps(sc, _mm256_set1_ps(a->xd[(t0 + j) * a->ldd + b]));
#ifdef MMP_DPBUSD
                        const __m256i isum =
                            nt == 1 ? _mm256_add_epi32(acc[h][j], acc1[h][j]) : acc[h][j];
#else
                        const __m256i isum = acc[h][j];
#endif
                        sacc[h][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), f, sacc[h][j]);
                    }
                }
            }
        }
        if (!q6) /* the mins, then y += S d - M dmin (as the AVX-512 kernel) */
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                __m256 macc[NT];
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) macc[j] =
                    _mm256_setzero_ps();
                _Pragma("GCC unroll 8") for (int sub = 0; sub < 8; sub++) {
                    const __m256 m =
                        _mm256_cvtepi32_ps(kbytes8(sp + 12 * PR + sub * PR + 8 * h, 0));
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) macc[j] =
                        _mm256_fmadd_ps(m, _mm256_set1_ps(a->xm[(t0 + j) * a->ldd + s * 8 + sub]),
                                        macc[j]);
                }
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                    float *yh = yb[j] + 8 * h;
                    const __m256 y = _mm256_fmadd_ps(sacc[h][j], dv[h], _mm256_loadu_ps(yh));
                    _mm256_storeu_ps(yh, _mm256_fnmadd_ps(macc[j], mv[h], y));
                }
            }
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
        if (q6)
            store_group16(a->y + (t0 + j) * a->ldy + r, facc[0][j], facc[1][j], nv);
        else if (nv < PR)
            memcpy(a->y + (t0 + j) * a->ldy + r, ybuf[j], sizeof(float) * (size_t)nv);
    }
}

INLINE void kdrive2(const bm_mm_args *a, int64_t r0, int64_t r1, const int kind) {
    const int64_t nsb = a->n_in / BM_QK_K;
    const size_t gb =
        bm_pack_group_bytes(kind == K6 ? BM_Q6_K : kind == K5 ? BM_Q5_K : BM_Q4_K, a->n_in);
    for (int64_t r = r0; r < r1; r += PR) {
        const uint8_t *grp = a->w + (size_t)(r / PR) * gb;
        const int64_t nv = r1 - r < PR ? r1 - r : PR;
        const uint8_t *pf = a->n_tok == 1 && r + 2 * PR <= r1 ? grp + gb : NULL;
        int64_t t0;
#define TILE(nt) ktile2(a, grp, nsb, kind, r, nv, t0, nt, pf)
        for (t0 = 0; t0 + NT <= a->n_tok; t0 += NT) TILE(NT);
        NT_REST(a->n_tok - t0, NT, TILE);
#undef TILE
    }
}

void PNAME(q4_K)(const bm_mm_args *a, int64_t r0, int64_t r1) { kdrive2(a, r0, r1, K4); }
void PNAME(q5_K)(const bm_mm_args *a, int64_t r0, int64_t r1) { kdrive2(a, r0, r1, K5); }
void PNAME(q6_K)(const bm_mm_args *a, int64_t r0, int64_t r1) { kdrive2(a, r0, r1, K6); }
