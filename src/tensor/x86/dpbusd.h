/* The 256-bit vpdpbusd of the int8 kernel bodies (mmk.h, mm_q2k.h, mmp256.h), in the encoding
 * of the including file's ISA: VEX (_mm256_dpbusd_avx_epi32, AVX-VNNI: Alder Lake and later
 * client cores without AVX-512) when BM_DOT_AVXVNNI is defined, else EVEX (_mm256_dpbusd_epi32,
 * AVX512VL + AVX512_VNNI). One operation either way: each int32 lane of acc plus the sum of its
 * 4 products u8 (u) x s8 (s), exact, no saturation. */
#ifndef BAIMO_X86_DPBUSD_H
#define BAIMO_X86_DPBUSD_H

#include <immintrin.h>

#ifdef BM_DOT_AVXVNNI
#define DPBUSD256(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))
#else
#define DPBUSD256(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#endif

#endif
