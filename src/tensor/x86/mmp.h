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

/* Column quads 2c (w0) and 2c + 1 (w1) of a 64-byte nibble vector (Q4_0 layout) as codes
 * 0..15 in one byte each; with a fifth-bit plane (Q5_0 layout: bit 2c / 2c + 1 of each row's
 * byte per column) 16 is added where the bit is set. */
INLINE void nib_codes(__m512i raw, int c, bool five, __m512i plane, __m512i *w0, __m512i *w1) {
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    *w0 = _mm512_and_si512(raw, lo4);
    *w1 = _mm512_and_si512(_mm512_srli_epi16(raw, 4), lo4);
    if (five) {
        const __m512i k16 = _mm512_set1_epi8(16);
        *w0 = _mm512_mask_add_epi8(
            *w0, _mm512_test_epi8_mask(plane, _mm512_set1_epi8((char)(1 << (2 * c)))), *w0, k16);
        *w1 = _mm512_mask_add_epi8(
            *w1, _mm512_test_epi8_mask(plane, _mm512_set1_epi8((char)(1 << (2 * c + 1)))), *w1,
            k16);
    }
}

/* Mask of the valid rows of a group whose first row is n rows before the range's end. */
INLINE __mmask16 rows_mask(int64_t n) {
    return n >= BM_PACK_ROWS ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1u);
}

#endif
