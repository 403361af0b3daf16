/* 512-bit peak probes (benchmarks), compiled per level: mm_vnni.c (PROBE_DOT = vpdpbusd) and
 * mm_probe_avx512.c (PROBE_DOT = its exact vpmaddubsw + vpmaddwd + vpaddd emulation). The
 * including file defines PROBE_SUF (name suffix) and PROBE_DOT(acc, u8, s8). */
#include "tensor/x86/wblock.h"

#define PROBE_CAT2(a, b) a##b
#define PROBE_CAT(a, b) PROBE_CAT2(a, b)
#define PROBE_NAME(k) PROBE_CAT(PROBE_CAT(bm_probe_, k), PROBE_CAT(_, PROBE_SUF))

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

double PROBE_NAME(int8)(int64_t iters) {
    __m512i a[PROBE_CHAINS];
    const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-2);
    _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm512_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] =
            PROBE_DOT(a[i], u, v);
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

double PROBE_NAME(fma)(int64_t iters) {
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
