/* AVX-512 VNNI (256-bit, AVX512VL encoding) matmul kernels for the 32-element block formats.
 * Activation codes arrive as u = q + 128 (unsigned), so one vpdpbusd per token and block gives
 * sum(u * w) = sum(q * w) + 128 * sum(w); the accumulator starts at -128 * sum(w), computed
 * once per weight block and shared by the token tile. The int32 lanes equal the AVX2 kernel's
 * exactly, and each output element follows one fixed instruction sequence whatever n_tok is
 * (batch invariant). */
#include "tensor/x86/wblock.h"

#define NT 4 /* tokens per tile */

#define Q_KERNEL(T, BS, LOADW)                                                                 \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, int64_t t0, const int nt) {           \
        const uint8_t *wr = a->w + (size_t)r * a->row_bytes;                                   \
        const int64_t nb = a->n_in / BM_QK;                                                    \
        const __m256i k128 = _mm256_set1_epi8((char)0x80);                                     \
        __m256 acc[NT];                                                                        \
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) acc[j] = _mm256_setzero_ps();    \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            float dw;                                                                          \
            const __m256i w = LOADW(wr + b * (BS), &dw);                                       \
            const __m256i corr = _mm256_sub_epi32(                                             \
                _mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), k128, w)); \
            _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {                             \
                const int64_t t = t0 + j;                                                      \
                const __m256i xv =                                                             \
                    _mm256_loadu_si256((const __m256i *)(a->xq + t * a->ldq + b * BM_QK));     \
                const __m256i p = _mm256_dpbusd_epi32(corr, xv, w);                            \
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a->xd[t * a->ldd + b]),           \
                                         _mm256_cvtepi32_ps(p), acc[j]);                       \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) a->y[(t0 + j) * a->ldy + r] =     \
            hsum8(acc[j]);                                                                     \
    }                                                                                          \
    void bm_mm_##T##_vnni(const bm_mm_args *a, int64_t r0, int64_t r1) {                       \
        for (int64_t r = r0; r < r1; r++) {                                                    \
            int64_t t = 0;                                                                     \
            for (; t + NT <= a->n_tok; t += NT) T##_tile(a, r, t, NT);                         \
            switch (a->n_tok - t) {                                                            \
            case 3: T##_tile(a, r, t, 3); break;                                               \
            case 2: T##_tile(a, r, t, 2); break;                                               \
            case 1: T##_tile(a, r, t, 1); break;                                               \
            default: break;                                                                    \
            }                                                                                  \
        }                                                                                      \
    }

Q_KERNEL(q8_0, sizeof(bm_block_q8_0), w_q8_0)
Q_KERNEL(q4_0, sizeof(bm_block_q4_0), w_q4_0)
Q_KERNEL(q5_0, sizeof(bm_block_q5_0), w_q5_0)

/* Peak probe (benchmarks): independent vpdpbusd chains; returns int8 ops (2 per multiply-add). */
double bm_probe_int8_vnni(int64_t iters) {
    __m256i a[10];
    const __m256i u = _mm256_set1_epi8(3), v = _mm256_set1_epi8(-2);
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 10") for (int i = 0; i < 10; i++) a[i] =
            _mm256_dpbusd_epi32(a[i], u, v);
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]));
    }
    __m256i s = a[0];
    for (int i = 1; i < 10; i++) s = _mm256_add_epi32(s, a[i]);
    volatile int32_t sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return (double)iters * 10 * 32 * 2;
}
