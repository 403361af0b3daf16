/* dotprod instances of the row kernels (templates mmk_arm.h and mmk_arm_k.h), built with
 * -march=armv8.2-a+dotprod and used only when getauxval(AT_HWCAP) has HWCAP_ASIMDDP: two sdot
 * per block of 32 (each int32 lane sums 8 products of 4 consecutive codes of both halves), one
 * per 16 codes where 16-element scales apply, sdot with ones for code sums. */
#include "tensor/arm/neon.h"

INLINE int32x4_t bdot_dotprod(const int8x16_t w[2], int8x16_t x0, int8x16_t x1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w[0], x0), w[1], x1);
}
INLINE int32x4_t dot16_dotprod(int8x16_t w, int8x16_t x) {
    return vdotq_s32(vdupq_n_s32(0), w, x);
}
INLINE int32x4_t sum16_dotprod(int8x16_t x) {
    return vdotq_s32(vdupq_n_s32(0), x, vdupq_n_s8(1));
}

#define MMK_SUF dotprod
#define BDOT bdot_dotprod
#define DOT16 dot16_dotprod
#define SUM16 sum16_dotprod
#include "tensor/arm/mmk_arm.h"
#include "tensor/arm/mmk_arm_k.h"
