/* Helpers shared by the AArch64 kernels (src/tensor/arm/): the inline attribute, unaligned
 * f32/f16 loads (byte loads reinterpreted, so any weight misalignment is defined), f16 scalars
 * through __fp16, the block-format weight decoders of Q8_0, Q4_0 and Q5_0 into 32 signed
 * int8 codes (two 16-lane vectors) and their float scale, the 5-bit code unpack shared with
 * Q5_1, and a polynomial exp of 4 floats (SwiGLU, attention). */
#ifndef BAIMO_TENSOR_ARM_NEON_H
#define BAIMO_TENSOR_ARM_NEON_H

#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float f16_at(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}
INLINE float f32_at(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}
/* 4 floats from a byte address. */
INLINE float32x4_t ld4_f32(const uint8_t *p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }
/* 4 halves from a byte address, widened (exact). */
INLINE float32x4_t ld4_f16(const uint8_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

/* Q8_0 (34 bytes): f16 d, int8 codes. */
INLINE void w_q8_0(const uint8_t *p, int8x16_t w[2], float *d) {
    *d = f16_at(p);
    w[0] = vld1q_s8((const int8_t *)(p + 2));
    w[1] = vld1q_s8((const int8_t *)(p + 18));
}
/* Q4_0 (18 bytes): f16 d, then element j in the low nibble of byte j, element j + 16 in its
 * high nibble; value code - 8. */
INLINE void w_q4_0(const uint8_t *p, int8x16_t w[2], float *d) {
    *d = f16_at(p);
    const uint8x16_t raw = vld1q_u8(p + 2);
    const int8x16_t eight = vdupq_n_s8(8);
    w[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), eight);
    w[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
}
/* 32 unsigned 5-bit codes (0..31) from 32 fifth bits (little-endian word at qh, bit j for
 * element j) and 16 bytes of nibbles at qs (element j low nibble of byte j, j + 16 high). */
INLINE void q5_codes(const uint8_t *qh, const uint8_t *qs, int8x16_t w[2]) {
    static const uint8_t bit_of[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bits = vld1q_u8(bit_of), x10 = vdupq_n_u8(0x10);
    const uint8x16_t h0 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    const uint8x16_t h1 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
    const uint8x16_t raw = vld1q_u8(qs);
    const uint8x16_t lo =
        vorrq_u8(vandq_u8(raw, vdupq_n_u8(0x0F)), vandq_u8(vtstq_u8(h0, bits), x10));
    const uint8x16_t hi = vorrq_u8(vshrq_n_u8(raw, 4), vandq_u8(vtstq_u8(h1, bits), x10));
    w[0] = vreinterpretq_s8_u8(lo);
    w[1] = vreinterpretq_s8_u8(hi);
}
/* Q5_0 (22 bytes): f16 d, 32 fifth bits, nibbles as Q4_0 (q5_codes); value code - 16. */
INLINE void w_q5_0(const uint8_t *p, int8x16_t w[2], float *d) {
    *d = f16_at(p);
    q5_codes(p + 2, p + 6, w);
    const int8x16_t sixteen = vdupq_n_s8(16);
    w[0] = vsubq_s8(w[0], sixteen);
    w[1] = vsubq_s8(w[1], sixteen);
}

/* e^x for x clamped to [-87, 88] (so 2^n stays a normal float): n = round(x log2 e),
 * r = x - n ln2 (ln2 split in a part exact in float times n and a correction; |r| <= 0.35),
 * e^r by its Taylor polynomial to degree 7 (truncation < 6e-9 relative), times 2^n built in
 * the exponent field. Relative error a few float ulps. */
INLINE float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.42860682030941723e-6f));
    static const float c[8] = {1.0f,      1.0f,       1.0f / 2,   1.0f / 6,
                               1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040};
    float32x4_t p = vdupq_n_f32(c[7]);
    for (int i = 6; i >= 0; i--) p = vfmaq_f32(vdupq_n_f32(c[i]), p, r);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

#endif
