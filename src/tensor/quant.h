/* Block layouts of the quantized dtypes, byte-identical to ggml/GGUF (ggml-common.h in the
 * ggml specification), and the per-type row converters wired into the traits table.
 * Halves are stored as raw uint16_t (IEEE binary16) to keep the structs ABI-exact. */
#ifndef BAIMO_TENSOR_QUANT_H
#define BAIMO_TENSOR_QUANT_H

#include "baimo/tensor.h"

typedef struct { uint16_t d; uint8_t qs[BM_QK / 2]; } bm_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[BM_QK / 2]; } bm_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[BM_QK / 2]; } bm_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[BM_QK / 2]; } bm_block_q5_1;
typedef struct { uint16_t d; int8_t qs[BM_QK]; } bm_block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[BM_QK]; } bm_block_q8_1;
typedef struct {
    uint8_t scales[BM_QK_K / 16]; /* 4-bit scale | 4-bit min per 16 */
    uint8_t qs[BM_QK_K / 4];
    uint16_t d, dmin;
} bm_block_q2_K;
typedef struct {
    uint8_t hmask[BM_QK_K / 8];
    uint8_t qs[BM_QK_K / 4];
    uint8_t scales[12]; /* 16 6-bit scales */
    uint16_t d;
} bm_block_q3_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12]; /* 8 6-bit scales and mins */
    uint8_t qs[BM_QK_K / 2];
} bm_block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[BM_QK_K / 8];
    uint8_t qs[BM_QK_K / 2];
} bm_block_q5_K;
typedef struct {
    uint8_t ql[BM_QK_K / 2];
    uint8_t qh[BM_QK_K / 4];
    int8_t scales[BM_QK_K / 16];
    uint16_t d;
} bm_block_q6_K;
typedef struct {
    float d;
    int8_t qs[BM_QK_K];
    int16_t bsums[BM_QK_K / 16];
} bm_block_q8_K;

_Static_assert(sizeof(bm_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(bm_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(bm_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(bm_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(bm_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(bm_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(bm_block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(bm_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(bm_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(bm_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(bm_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(bm_block_q8_K) == 292, "q8_K layout");

/* Exact dequantization of n elements (n a multiple of the block size). x may be unaligned. */
#define BM_QUANT_DECL(t)                                                                     \
    void bm_dequant_##t(const void *x, float *y, int64_t n);                                 \
    void bm_quant_##t##_ref(const float *x, void *y, int64_t n);
BM_QUANT_DECL(q4_0)
BM_QUANT_DECL(q4_1)
BM_QUANT_DECL(q5_0)
BM_QUANT_DECL(q5_1)
BM_QUANT_DECL(q8_0)
BM_QUANT_DECL(q8_1)
BM_QUANT_DECL(q2_K)
BM_QUANT_DECL(q3_K)
BM_QUANT_DECL(q4_K)
BM_QUANT_DECL(q5_K)
BM_QUANT_DECL(q6_K)
BM_QUANT_DECL(q8_K)
#undef BM_QUANT_DECL

#endif
