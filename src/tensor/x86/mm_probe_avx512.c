/* AVX-512 F/BW peak probes (benchmarks; template in probe512.h) for the avx512 level: the int8
 * one counts the vnni level's unit of work (64 u8 x s8 products into 16 int32 lanes) done as
 * vpmaddubsw + vpmaddwd (by ones) + vpaddd, the sequence the level's int8 kernels use. The
 * vpmaddubsw is a volatile asm: its operands are loop invariant, so the compiler would
 * otherwise hoist the products out of the loop. */
#include <immintrin.h>

static inline __attribute__((always_inline)) __m512i probe_dot(__m512i acc, __m512i u,
                                                               __m512i s) {
    __m512i p;
    __asm__ volatile("vpmaddubsw %2, %1, %0" : "=v"(p) : "v"(u), "v"(s));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
}

#define PROBE_SUF avx512
#define PROBE_DOT(acc, u, s) probe_dot((acc), (u), (s))
#include "tensor/x86/probe512.h"
