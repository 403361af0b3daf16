/* Shared by the packed-weight 512-bit kernels (templates mmp512.h, mmpk512.h; built with
 * AVX-512 VNNI flags by mmp_vnni.c and mmp_k_vnni.c, and with AVX-512 F/BW/VL/DQ flags and
 * MMP_EMU by mmp_avx512.c and mmpk_avx512.c) and the AMX kernels (mmp_amx.h). */
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

/* The int8 dots of the packed kernel templates (mmp512.h, mmpk512.h), by level. Operand
 * ranges: weight codes unsigned (Q4_0 / Q4_K 0..15, Q5_0 / Q5_K 0..31, Q6_K 0..63, Q8_0
 * code + 128 = 0..255), activation codes signed with |x| <= 127 (bm_act_q8_ref).
 *   DP_B2(a0, a1, w0, p0, w1, p1): a0 += w0 . x(p0), a1 += w1 . x(p1) (a1 may be a0), for
 *     codes <= 63 only;
 *   wq8 / Q8_PREP / DP_Q8 / Q8_OFF: Q8_0: acc += codes . x(p), where the block's sum starts at
 *     Q8_OFF * sum(x) to remove what the stored form of the codes adds.
 * vnni: vpdpbusd straight into int32 (the stored codes, offset -128). avx512 (MMP_EMU, no
 * VNNI): vpmaddubsw (u8 x s8 -> int16 pair sums, saturating) then vpmaddwd by ones and
 * vpaddd, exact when no pair sum leaves int16:
 *   DP_B2 adds the two vpmaddubsw results in int16 before widening (both into a0; a1 is left
 *     alone): |w0 x0 + w0' x0' + w1 x1 + w1' x1'| <= 4 * 63 * 127 = 32004 <= 32767;
 *   DP_Q8 uses the signed code s = stored - 128 (-128..127): |s| as u8 (<= 128) times x with
 *     the sign of s (negating |x| <= 127 cannot wrap): each pair <= 2 * 128 * 127 = 32512, so
 *     the sum starts at 0 (the stored codes x 127 would reach 2 * 255 * 127 = 64770). */
#ifndef MMP_EMU
#define DP_B2(a0, a1, w0, p0, w1, p1) ((a0) = dp_b((a0), (w0), (p0)), (a1) = dp_b((a1), (w1), (p1)))
typedef __m512i wq8;
#define Q8_PREP(w) (w)
#define DP_Q8(acc, w, p) ((acc) = dp_b((acc), (w), (p)))
#define Q8_OFF (-128)
#else
INLINE __m512i bc_x(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
INLINE __m512i dp2_emu(__m512i acc, __m512i w0, const uint8_t *p0, __m512i w1,
                       const uint8_t *p1) {
    const __m512i s = _mm512_add_epi16(_mm512_maddubs_epi16(w0, bc_x(p0)),
                                       _mm512_maddubs_epi16(w1, bc_x(p1)));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(s, _mm512_set1_epi16(1)));
}
#define DP_B2(a0, a1, w0, p0, w1, p1) ((void)(a1), (a0) = dp2_emu((a0), (w0), (p0), (w1), (p1)))
typedef struct wq8 {
    __m512i mag;   /* |code| as u8 */
    __mmask64 neg; /* code < 0 */
} wq8;
INLINE wq8 q8_prep(__m512i w) {
    const __m512i s = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
    return (wq8){_mm512_abs_epi8(s), _mm512_movepi8_mask(s)};
}
INLINE __m512i dp_q8_emu(__m512i acc, wq8 w, const uint8_t *p) {
    const __m512i x = bc_x(p);
    const __m512i xs = _mm512_mask_sub_epi8(x, w.neg, _mm512_setzero_si512(), x);
    return _mm512_add_epi32(
        acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w.mag, xs), _mm512_set1_epi16(1)));
}
#define Q8_PREP(w) q8_prep(w)
#define DP_Q8(acc, w, p) ((acc) = dp_q8_emu((acc), (w), (p)))
#define Q8_OFF 0
#endif

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
