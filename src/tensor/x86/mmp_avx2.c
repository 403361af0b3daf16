/* AVX2 kernels over packed Q4_0 / Q5_0 weights (the layout of kernels.h, read as two 256-bit
 * halves of 8 rows each), for CPUs without AVX-512. Without vpdpbusd the int8 dot is
 * vpmaddubsw (unsigned codes x signed activation codes -> int16 pairs) then vpmaddwd by ones;
 * the int16 pair sums are added across column quads before widening: at most 15 x 127 x 2 per
 * pair for Q4_0 (8 quads: 30,480 < 32,767) and 31 x 127 x 2 for Q5_0 (4 quads: 31,496), so
 * nothing saturates and every block's int32 sum is exact. Q8_0 codes (0..255) would saturate
 * vpmaddubsw, so Q8_0 keeps the unpacked AVX2 kernel. Tiles of one group x up to NT tokens;
 * each token follows the same instruction sequence whatever the tile: batch invariant. */
#include "tensor/x86/wblock.h"

#define NT 4
#define PR BM_PACK_ROWS

INLINE __m256i bc4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* q5: the fifth-bit plane follows the nibbles (Q5_0). */
INLINE void ptile2(const bm_mm_args *a, const uint8_t *grp, int64_t nb, const int q5, int64_t r,
                   int64_t nv, int64_t t0, const int nt) {
    const size_t cb = q5 ? PR * (BM_QK / 2 + 4) : PR * BM_QK / 2;
    const int off = q5 ? -16 : -8;
    const __m256i lo4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 facc[2][NT];
    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) facc[0][j] = facc[1][j] =
        _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *cp = grp + (size_t)b * cb;
        if (nt == 1) /* decode: fetch 1 KiB ahead (measured 51 -> 56-61 tok/s, 0.5B Q4_0) */
            for (size_t o = 0; o < cb; o += 64)
                _mm_prefetch((const char *)(cp + 1024 + o), _MM_HINT_T0);
        const uint8_t *xb = a->xq + t0 * a->ldq + b * BM_QK;
        __m256i s16[2][NT], s32[2][NT];
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
            const __m256i init = _mm256_set1_epi32(off * a->xs[(t0 + j) * a->ldd + b]);
            s32[0][j] = s32[1][j] = init;
            s16[0][j] = s16[1][j] = _mm256_setzero_si256();
        }
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
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
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bc4(xj)),
                                                       _mm256_maddubs_epi16(w1, bc4(xj + 4)));
                    s16[h][j] = _mm256_add_epi16(s16[h][j], p);
                    if (q5 && c == 1) { /* widen after 4 quads: 31 x 127 x 2 x 4 fits int16 */
                        s32[h][j] = _mm256_add_epi32(s32[h][j], _mm256_madd_epi16(s16[h][j], ones));
                        s16[h][j] = _mm256_setzero_si256();
                    }
                }
            }
        }
        const uint16_t *sc = (const uint16_t *)(grp + (size_t)nb * cb) + b * PR;
        const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sc));
        const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + 8)));
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
            const __m256 dx = _mm256_set1_ps(a->xd[(t0 + j) * a->ldd + b]);
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                const __m256i isum =
                    _mm256_add_epi32(s32[h][j], _mm256_madd_epi16(s16[h][j], ones));
                facc[h][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                                             _mm256_mul_ps(h ? dw1 : dw0, dx), facc[h][j]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {
        float *y = a->y + (t0 + j) * a->ldy + r;
        if (nv == PR) {
            _mm256_storeu_ps(y, facc[0][j]);
            _mm256_storeu_ps(y + 8, facc[1][j]);
        } else {
            float tmp[PR];
            _mm256_storeu_ps(tmp, facc[0][j]);
            _mm256_storeu_ps(tmp + 8, facc[1][j]);
            memcpy(y, tmp, sizeof(float) * (size_t)nv);
        }
    }
}

INLINE void pdrive2(const bm_mm_args *a, int64_t r0, int64_t r1, const int q5) {
    const int64_t nb = a->n_in / BM_QK;
    const size_t gb = bm_pack_group_bytes(q5 ? BM_Q5_0 : BM_Q4_0, a->n_in);
    for (int64_t r = r0; r < r1; r += PR) {
        const uint8_t *grp = a->w + (size_t)(r / PR) * gb;
        const int64_t nv = r1 - r < PR ? r1 - r : PR;
        int64_t t0;
#define TILE(nt) ptile2(a, grp, nb, q5, r, nv, t0, nt)
        for (t0 = 0; t0 + NT <= a->n_tok; t0 += NT) TILE(NT);
        NT_REST(a->n_tok - t0, NT, TILE);
#undef TILE
    }
}

void bm_mmp_q4_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive2(a, r0, r1, 0); }
void bm_mmp_q5_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1) { pdrive2(a, r0, r1, 1); }
