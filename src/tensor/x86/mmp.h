/* Shared by the packed-weight AVX-512 VNNI kernels (mmp_vnni.c, mmp_k_vnni.c; files built
 * with AVX-512 VNNI flags). */
#ifndef BAIMO_X86_MMP_H
#define BAIMO_X86_MMP_H

#include "tensor/x86/wblock.h"

/* acc += w (unsigned codes) . the 4 signed activation codes at p broadcast to every lane, with
 * the broadcast folded into the instruction ({1to16}): the compiler emits a separate
 * vpbroadcastd for _mm512_set1_epi32, which measured 10-20% slower in prefill. */
INLINE __m512i dp_b(__m512i acc, __m512i w, const uint8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)p));
    return acc;
}

/* Mask of the valid rows of a group whose first row is n rows before the range's end. */
INLINE __mmask16 rows_mask(int64_t n) {
    return n >= BM_PACK_ROWS ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1u);
}

#endif
