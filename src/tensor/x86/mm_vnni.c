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
    ROW_DRIVER(bm_mm_##T##_vnni, T##_tile)

Q_KERNEL(q8_0, sizeof(bm_block_q8_0), w_q8_0)
Q_KERNEL(q4_0, sizeof(bm_block_q4_0), w_q4_0)
Q_KERNEL(q5_0, sizeof(bm_block_q5_0), w_q5_0)

/* Peak probes (benchmarks): 12 independent 512-bit chains, no memory traffic. The empty asm
 * names every accumulator as read and written each round, so none is folded, hoisted or CSE'd,
 * and "v" lets them live in any of the 32 zmm registers (no spills). Zen 4 runs a 512-bit op
 * as two 256-bit halves, so this is also the 256-bit peak there; on cores with two 512-bit
 * ports it is twice the 256-bit one. Returns ops (a multiply-add counts 2). */
#define PROBE_CHAINS 12
#define PROBE_KEEP(a)                                                                          \
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]),         \
                     "+v"(a[5]), "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]),  \
                     "+v"(a[11]))

double bm_probe_int8_vnni(int64_t iters) {
    __m512i a[PROBE_CHAINS];
    const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-2);
    _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm512_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] =
            _mm512_dpbusd_epi32(a[i], u, v);
        PROBE_KEEP(a);
    }
    __m512i s = a[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < PROBE_CHAINS; i++) s = _mm512_add_epi32(s, a[i]);
    /* vector adds (wrapping), not _mm512_reduce_add_epi32 (scalar int adds: UB on overflow) */
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    volatile int32_t sink = _mm256_extract_epi32(h, 0);
    (void)sink;
    return (double)iters * PROBE_CHAINS * 64 * 2;
}

double bm_probe_fma_vnni(int64_t iters) {
    __m512 a[PROBE_CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] =
            _mm512_fmadd_ps(a[i], m, c);
        PROBE_KEEP(a);
    }
    __m512 s = a[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < PROBE_CHAINS; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * PROBE_CHAINS * 16 * 2;
}
