/* AVX-512 (512-bit) kernels for float weights with f32 activations: F32, F16 (vcvtph2ps zmm)
 * and BF16 (a 16-bit shift to f32; the kernel for CPUs without AVX512_BF16). Each output
 * element has one 16-lane FMA accumulator fed 16 columns per step, a masked step for the last
 * n_in % 16 columns (masked-out lanes add 0 * 0), then the fixed _mm512_reduce_add_ps order:
 * the same instruction sequence whatever the tile (mm_float_tile.h) or n_tok, so results are
 * batch invariant bitwise. AVX-512F only: compiled per level by mm_float_vnni.c and
 * mm_float_avx512.c, which define MMF_SUF (the name suffix). */
#include "tensor/x86/mm_float_tile.h"

#define MMF_CAT2(a, b) a##b
#define MMF_CAT(a, b) MMF_CAT2(a, b)
#define MMF_NAME(t) MMF_CAT(MMF_CAT(bm_mm_, t), MMF_CAT(_, MMF_SUF))

INLINE __m512 ld_f32(const uint8_t *w, int64_t k) {
    return _mm512_loadu_ps((const float *)w + k);
}
INLINE __m512 ldm_f32(const uint8_t *w, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const float *)w + k);
}
INLINE __m512 ld_f16(const uint8_t *w, int64_t k) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * k)));
}
INLINE __m512 ldm_f16(const uint8_t *w, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * k));
}
INLINE __m512 ld_bf16(const uint8_t *w, int64_t k) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + 2 * k)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
INLINE __m512 ldm_bf16(const uint8_t *w, int64_t k, __mmask16 m) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w + 2 * k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

#define F_CORE(T, ESZ)                                                                         \
    INLINE void T##_core(const bm_mm_args *a, int64_t r, int64_t t0, const uint8_t *pf,        \
                         const int nr, const int nt) {                                         \
        const int64_t n = a->n_in;                                                             \
        const uint8_t *w[MMF_RT1];                                                             \
        const float *x[MMF_TT];                                                                \
        __m512 acc[MMF_RT1][MMF_TT];                                                           \
        _Pragma("GCC unroll 8") for (int i = 0; i < nr; i++) {                                 \
            w[i] = a->w + (size_t)(r + i) * a->row_bytes;                                      \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc[i][j] =                   \
                _mm512_setzero_ps();                                                           \
        }                                                                                      \
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) x[j] = a->x + (t0 + j) * n;       \
        int64_t k = 0;                                                                         \
        for (; k + 16 <= n; k += 16) {                                                         \
            if (pf) mmf_prefetch(pf + k * nr * ESZ, 16 * nr * ESZ);                            \
            __m512 xv[MMF_TT];                                                                 \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) xv[j] =                       \
                _mm512_loadu_ps(x[j] + k);                                                     \
            _Pragma("GCC unroll 8") for (int i = 0; i < nr; i++) {                             \
                const __m512 wv = ld_##T(w[i], k);                                             \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc[i][j] =               \
                    _mm512_fmadd_ps(wv, xv[j], acc[i][j]);                                     \
            }                                                                                  \
        }                                                                                      \
        if (k < n) {                                                                           \
            const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);                              \
            __m512 xv[MMF_TT];                                                                 \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) xv[j] =                       \
                _mm512_maskz_loadu_ps(m, x[j] + k);                                            \
            _Pragma("GCC unroll 8") for (int i = 0; i < nr; i++) {                             \
                const __m512 wv = ldm_##T(w[i], k, m);                                         \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc[i][j] =               \
                    _mm512_fmadd_ps(wv, xv[j], acc[i][j]);                                     \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int i = 0; i < nr; i++)                                   \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                               \
                a->y[(t0 + j) * a->ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);             \
    }                                                                                          \
    MMF_DRIVER(T, T##_core, MMF_NAME(T), 4, 4)

F_CORE(f32, 4)
F_CORE(f16, 2)
F_CORE(bf16, 2)
