/* dotprod instances of the Q8_0/Q4_0/Q5_0 row kernels (template in mmk_arm.h), built with
 * -march=armv8.2-a+dotprod and used only when getauxval(AT_HWCAP) has HWCAP_ASIMDDP: two sdot
 * per block (each int32 lane sums 8 products of 4 consecutive codes of both halves). */
#include "tensor/arm/neon.h"

INLINE int32x4_t bdot_dotprod(const int8x16_t w[2], int8x16_t x0, int8x16_t x1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w[0], x0), w[1], x1);
}

#define MMK_SUF dotprod
#define BDOT bdot_dotprod
#include "tensor/arm/mmk_arm.h"
