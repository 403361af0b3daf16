/* neon instances of the row kernels (templates mmk_arm.h: Q8_0/Q4_0/Q5_0; mmk_arm_k.h: Q4_1,
 * Q5_1 and the K formats), baseline AArch64 Advanced SIMD: smull/smlal2 give 8 int16 lanes of
 * two products each (|w| <= 128, |x| <= 127, so at most 32512: no overflow), pairwise widened
 * into 4 int32 lanes. */
#include "tensor/arm/neon.h"

INLINE int32x4_t bdot_neon(const int8x16_t w[2], int8x16_t x0, int8x16_t x1) {
    int16x8_t p0 = vmull_s8(vget_low_s8(w[0]), vget_low_s8(x0));
    p0 = vmlal_high_s8(p0, w[0], x0);
    int16x8_t p1 = vmull_s8(vget_low_s8(w[1]), vget_low_s8(x1));
    p1 = vmlal_high_s8(p1, w[1], x1);
    return vpadalq_s16(vpaddlq_s16(p0), p1);
}
/* One 16-code dot: lane i = w x at 2i, 2i + 1, 2i + 8, 2i + 9. */
INLINE int32x4_t dot16_neon(int8x16_t w, int8x16_t x) {
    return vpaddlq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), w, x));
}
INLINE int32x4_t sum16_neon(int8x16_t x) { return vpaddlq_s16(vpaddlq_s8(x)); }

#define MMK_SUF neon
#define BDOT bdot_neon
#define DOT16 dot16_neon
#define SUM16 sum16_neon
#include "tensor/arm/mmk_arm.h"
#include "tensor/arm/mmk_arm_k.h"
