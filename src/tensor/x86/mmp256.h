/* Kernels over packed Q4_0 / Q5_0 (and, with vpdpbusd, Q8_0) weights for CPUs without AVX-512
 * (the layout of kernels.h, read as two 256-bit halves of 8 rows each), written once and
 * compiled per level: mmp_avx2.c, mmp_avxvnni.c (VEX vpdpbusd) and mmp_vnni256_vnni.c (the same
 * source with EVEX vpdpbusd: the tested twin of the avxvnni build). The including file defines
 * MMP_SUF (name suffix) and, for vpdpbusd, MMP_DPBUSD (plus BM_DOT_AVXVNNI for VEX, dpbusd.h).
 * Products are unsigned weight codes x 4 signed activation codes broadcast to every lane.
 * vpdpbusd adds them straight into exact int32 lanes. Without it they are vpmaddubsw (int16
 * pairs) then vpmaddwd by ones; the int16 pair sums are added across column quads before
 * widening: at most 15 x 127 x 2 per pair for Q4_0 (8 quads: 30,480 < 32,767) and 31 x 127 x 2
 * for Q5_0 (4 quads: 31,496), so nothing saturates and every block's int32 sum is exact; Q8_0
 * codes (0..255) would saturate vpmaddubsw, so AVX2 has no packed Q8_0. The code offset (Q8_0
 * + 128, Q4_0 8, Q5_0 16) is removed by starting each block's sum at -offset * sum(x codes).
 * Tiles of one group x up to NT tokens; each token follows the same instruction sequence
 * whatever the tile: batch invariant. */
#include "tensor/x86/dpbusd.h"
#include "tensor/x86/wblock.h"

#define NT 4
#define PR BM_PACK_ROWS
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define PNAME(t) CAT(CAT(bm_mmp_, t), CAT(_, MMP_SUF))

INLINE __m256i bc4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* kind: 0 Q8_0 (8-bit codes, vpdpbusd only), 1 Q4_0, 2 Q5_0 (a plane of fifth bits follows
 * the nibbles). */
INLINE void ptile2(const bm_mm_args *a, const uint8_t *grp, int64_t nb, const int kind,
                   int64_t r, int64_t nv, int64_t t0, const int nt, const uint8_t *pf,
                   size_t pf_step) {
    const int q5 = kind == 2;
    const size_t cb = kind == 2 ? PR * (BM_QK / 2 + 4) : kind ? PR * BM_QK / 2 : PR * BM_QK;
    const int off = kind == 2 ? -16 : kind ? -8 : -128;
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    __m256 facc[2][NT];
    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) facc[0][j] = facc[1][j] =
        _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *cp = grp + (size_t)b * cb;
        /* Decode: the same share of the next group (pf) into L2 per block. Measured against
         * the 1 KiB-ahead L1 prefetch it replaces, 0.5B Q4_0 at the avx2 level, alternating:
         * 55-68 -> 83-97 tok/s (the unpacked kernel: 66). */
        if (pf)
            for (size_t o = 0; o < pf_step; o += 64)
                _mm_prefetch((const char *)pf + (size_t)b * pf_step + o, _MM_HINT_T1);
        const uint8_t *xb = a->xq + t0 * a->ldq + b * BM_QK;
        __m256i s32[2][NT];
#ifdef MMP_DPBUSD
        /* Decode (one token) splits each sum over two chains (the same exact int32 result) so
         * the dependent vpdpbusd latency does not bound the stream. */
        const bool sp = nt == 1;
        __m256i s2[2][NT];
#else
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i s16[2][NT];
#endif
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
            const __m256i init = _mm256_set1_epi32(off * a->xs[(t0 + j) * a->ldd + b]);
            s32[0][j] = s32[1][j] = init;
#ifdef MMP_DPBUSD
            s2[0][j] = s2[1][j] = _mm256_setzero_si256();
#else
            s16[0][j] = s16[1][j] = _mm256_setzero_si256();
#endif
        }
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
#ifdef MMP_DPBUSD
            if (kind == 0) {
                _Pragma("GCC unroll 8") for (int c = 0; c < 8; c++) {
                    const __m256i w = _mm256_loadu_si256((const __m256i *)(cp + 64 * c + 32 * h));
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                        const __m256i xv = bc4(xb + j * a->ldq + 4 * c);
                        if (sp && (c & 1))
                            s2[h][j] = DPBUSD256(s2[h][j], w, xv);
                        else
                            s32[h][j] = DPBUSD256(s32[h][j], w, xv);
                    }
                }
                continue;
            }
#endif
            const __m256i plane = q5 ? _mm256_loadu_si256((const __m256i *)(cp + 256 + 32 * h))
                                     : _mm256_setzero_si256();
            _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(cp + 64 * c + 32 * h));
                __m256i w0 = _mm256_and_si256(raw, lo4);
                __m256i w1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4);
                if (q5) { /* 16 where bit 2c (2c + 1) of the plane byte is set */
                    const __m256i m0 = _mm256_set1_epi8((char)(1 << (2 * c)));
                    const __m256i m1 = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
                    const __m256i k16 = _mm256_set1_epi8(16);
                    w0 = _mm256_or_si256(
                        w0,
                        _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(plane, m0), m0), k16));
                    w1 = _mm256_or_si256(
                        w1,
                        _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(plane, m1), m1), k16));
                }
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
                    const uint8_t *xj = xb + j * a->ldq + 8 * c;
#ifdef MMP_DPBUSD
                    s32[h][j] = DPBUSD256(s32[h][j], w0, bc4(xj));
                    if (sp)
                        s2[h][j] = DPBUSD256(s2[h][j], w1, bc4(xj + 4));
                    else
                        s32[h][j] = DPBUSD256(s32[h][j], w1, bc4(xj + 4));
#else
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bc4(xj)),
                                                       _mm256_maddubs_epi16(w1, bc4(xj + 4)));
                    s16[h][j] = _mm256_add_epi16(s16[h][j], p);
                    if (q5 && c == 1) { /* widen after 4 quads: 31 x 127 x 2 x 4 fits int16 */
                        s32[h][j] = _mm256_add_epi32(s32[h][j], _mm256_madd_epi16(s16[h][j], ones));
                        s16[h][j] = _mm256_setzero_si256();
                    }
#endif
                }
            }
        }
        const uint16_t *sc = (const uint16_t *)(grp + (size_t)nb * cb) + b * PR;
        const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sc));
        const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + 8)));
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
            const __m256 dx = _mm256_set1_ps(a->xd[(t0 + j) * a->ldd + b]);
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
#ifdef MMP_DPBUSD
                const __m256i isum = _mm256_add_epi32(s32[h][j], s2[h][j]);
#else
                const __m256i isum =
                    _mm256_add_epi32(s32[h][j], _mm256_madd_epi16(s16[h][j], ones));
#endif
                facc[h][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                                             _mm256_mul_ps(h ? dw1 : dw0, dx), facc[h][j]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)
        store_group16(a->y + (t0 + j) * a->ldy + r, facc[0][j], facc[1][j], nv);
}

INLINE void pdrive2(const bm_mm_args *a, int64_t r0, int64_t r1, const int kind) {
    const int64_t nb = a->n_in / BM_QK;
    const size_t gb =
        bm_pack_group_bytes(kind == 2 ? BM_Q5_0 : kind ? BM_Q4_0 : BM_Q8_0, a->n_in);
    for (int64_t r = r0; r < r1; r += PR) {
        const uint8_t *grp = a->w + (size_t)(r / PR) * gb;
        const int64_t nv = r1 - r < PR ? r1 - r : PR;
        int64_t t0;
        const uint8_t *pf = a->n_tok == 1 && r + 2 * PR <= r1 ? grp + gb : NULL;
        const size_t pf_step = (gb / (size_t)nb + 63) & ~(size_t)63;
#define TILE(nt) ptile2(a, grp, nb, kind, r, nv, t0, nt, pf, pf_step)
        for (t0 = 0; t0 + NT <= a->n_tok; t0 += NT) TILE(NT);
        NT_REST(a->n_tok - t0, NT, TILE);
#undef TILE
    }
}

#ifdef MMP_DPBUSD
void PNAME(q8_0)(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive2(a, r0, r1, 0); }
#endif
void PNAME(q4_0)(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive2(a, r0, r1, 1); }
void PNAME(q5_0)(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive2(a, r0, r1, 2); }
