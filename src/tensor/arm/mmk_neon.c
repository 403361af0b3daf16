/* neon instances of the Q8_0/Q4_0/Q5_0 row kernels (template in mmk_arm.h), baseline AArch64
 * Advanced SIMD: per block, smull/smlal2 give 8 int16 lanes of two products each (|w| <= 128,
 * |x| <= 127, so at most 32512: no overflow), pairwise widened into 4 int32 lanes. */
#include "tensor/arm/neon.h"

INLINE int32x4_t bdot_neon(const int8x16_t w[2], int8x16_t x0, int8x16_t x1) {
    int16x8_t p0 = vmull_s8(vget_low_s8(w[0]), vget_low_s8(x0));
    p0 = vmlal_high_s8(p0, w[0], x0);
    int16x8_t p1 = vmull_s8(vget_low_s8(w[1]), vget_low_s8(x1));
    p1 = vmlal_high_s8(p1, w[1], x1);
    return vpadalq_s16(vpaddlq_s16(p0), p1);
}

#define MMK_SUF neon
#define BDOT bdot_neon
#include "tensor/arm/mmk_arm.h"
