/* AVX-VNNI int8 peak probe (benchmarks): 12 independent chains of VEX-encoded 256-bit vpdpbusd,
 * no memory traffic. The empty asm names every accumulator as read and written each round, so
 * none is folded, hoisted or CSE'd. Returns ops (a multiply-add counts 2). */
#include "tensor/x86/wblock.h"

#define PROBE_CHAINS 12

double bm_probe_int8_avxvnni(int64_t iters) {
    __m256i a[PROBE_CHAINS];
    const __m256i u = _mm256_set1_epi8(3), v = _mm256_set1_epi8(-2);
    _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm256_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] =
            _mm256_dpbusd_avx_epi32(a[i], u, v);
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]),
                         "+x"(a[5]), "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]),
                         "+x"(a[11]));
    }
    __m256i s = a[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < PROBE_CHAINS; i++) s = _mm256_add_epi32(s, a[i]);
    volatile int32_t sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return (double)iters * PROBE_CHAINS * 32 * 2;
}
