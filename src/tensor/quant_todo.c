/* TEMPORARY placeholders until quant_legacy.c / quant_k.c land (deleted by that change). */
#include "tensor/quant.h"
#define T(t)                                                                                 \
    void bm_dequant_##t(const void *x, float *y, int64_t n) { BM_ASSERT(!"todo"); }          \
    void bm_quant_##t##_ref(const float *x, void *y, int64_t n) { BM_ASSERT(!"todo"); }
T(q4_0) T(q4_1) T(q5_0) T(q5_1) T(q8_0) T(q8_1) T(q2_K) T(q3_K) T(q4_K) T(q5_K) T(q6_K) T(q8_K)
