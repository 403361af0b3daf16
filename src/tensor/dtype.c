/* dtype traits table (block sizes and bytes per ggml's type layout), half/bfloat16
 * conversions, row sizes, and row access for any supported dtype. The per-type converters
 * live in quant_*.c; this table only wires them in. */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <math.h>
#include <string.h>
#include <strings.h>

float bm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00); /* NaN */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds to inf */
    if (ax < 0x38800000u) { /* subnormal or zero in half: round-to-nearest-even of ax*2^24 */
        float a;
        memcpy(&a, &ax, 4);
        float r = a * 16777216.0f; /* exact scaling; value in [0, 1024) */
        float rn = nearbyintf(r);  /* default rounding mode: nearest-even */
        return (uint16_t)(sign | (uint16_t)rn);
    }
    uint32_t e = ((ax >> 23) - 127 + 15), m = ax & 0x7FFFFF;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rest = m & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* may carry into exponent: fine */
    return (uint16_t)(sign | h);
}

float bm_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bm_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

static void f32_to_f32(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }
static void f32_from_f32(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }
static void f16_to_f32(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = bm_f16_to_f32(h);
    }
}
static void f16_from_f32(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = bm_f32_to_f16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
static void bf16_to_f32(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = bm_bf16_to_f32(h);
    }
}
static void bf16_from_f32(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = bm_f32_to_bf16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

#define Q(name, be, bb, t) {name, be, bb, true, bm_dequant_##t, bm_quant_##t##_ref}
static const bm_type_traits traits[BM_DTYPE_COUNT] = {
    [BM_F32] = {"f32", 1, 4, false, f32_to_f32, f32_from_f32},
    [BM_F16] = {"f16", 1, 2, false, f16_to_f32, f16_from_f32},
    [BM_BF16] = {"bf16", 1, 2, false, bf16_to_f32, bf16_from_f32},
    [BM_Q4_0] = Q("q4_0", BM_QK, sizeof(bm_block_q4_0), q4_0),
    [BM_Q4_1] = Q("q4_1", BM_QK, sizeof(bm_block_q4_1), q4_1),
    [BM_Q5_0] = Q("q5_0", BM_QK, sizeof(bm_block_q5_0), q5_0),
    [BM_Q5_1] = Q("q5_1", BM_QK, sizeof(bm_block_q5_1), q5_1),
    [BM_Q8_0] = Q("q8_0", BM_QK, sizeof(bm_block_q8_0), q8_0),
    [BM_Q8_1] = Q("q8_1", BM_QK, sizeof(bm_block_q8_1), q8_1),
    [BM_Q2_K] = Q("q2_K", BM_QK_K, sizeof(bm_block_q2_K), q2_K),
    [BM_Q3_K] = Q("q3_K", BM_QK_K, sizeof(bm_block_q3_K), q3_K),
    [BM_Q4_K] = Q("q4_K", BM_QK_K, sizeof(bm_block_q4_K), q4_K),
    [BM_Q5_K] = Q("q5_K", BM_QK_K, sizeof(bm_block_q5_K), q5_K),
    [BM_Q6_K] = Q("q6_K", BM_QK_K, sizeof(bm_block_q6_K), q6_K),
    [BM_Q8_K] = Q("q8_K", BM_QK_K, sizeof(bm_block_q8_K), q8_K),
    [BM_I8] = {"i8", 1, 1, false, NULL, NULL},
    [BM_I16] = {"i16", 1, 2, false, NULL, NULL},
    [BM_I32] = {"i32", 1, 4, false, NULL, NULL},
    [BM_I64] = {"i64", 1, 8, false, NULL, NULL},
    [BM_F64] = {"f64", 1, 8, false, NULL, NULL},
};

const bm_type_traits *bm_type_traits_get(int t) {
    if (t < 0 || t >= BM_DTYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

const char *bm_dtype_name(bm_dtype t) {
    const bm_type_traits *tt = bm_type_traits_get((int)t);
    return tt ? tt->name : "unknown";
}

bool bm_dtype_parse(const char *s, bm_dtype *out) {
    for (int i = 0; i < BM_DTYPE_COUNT; i++)
        if (traits[i].name && !strcasecmp(s, traits[i].name)) {
            *out = (bm_dtype)i;
            return true;
        }
    return false;
}

bool bm_row_bytes(bm_dtype t, int64_t n, size_t *out) {
    const bm_type_traits *tt = bm_type_traits_get((int)t);
    if (!tt || n < 0 || n % tt->block_elems) return false;
    return bm_size_mul((size_t)(n / tt->block_elems), tt->block_bytes, out);
}

void bm_tensor_get_row(const bm_tensor *t, int64_t r, float *y) {
    const bm_type_traits *tt = bm_type_traits_get((int)t->type);
    size_t rb;
    BM_ASSERT(tt && tt->to_f32 && bm_row_bytes(t->type, t->ne[0], &rb));
    if (!t->packed) {
        tt->to_f32((const uint8_t *)t->data + (size_t)r * rb, y, t->ne[0]);
        return;
    }
    /* A packed tensor (a tied head read as the embedding): read the packed copy, whose pages
     * are resident anyway, rather than fault the released original pages back in. */
    const uint8_t *grp = (const uint8_t *)t->packed +
                         (size_t)(r / BM_PACK_ROWS) * bm_pack_group_bytes(t->type, t->ne[0]);
    uint8_t blk[256];
    BM_ASSERT(tt->block_bytes <= sizeof blk);
    for (int64_t b = 0; b < t->ne[0] / tt->block_elems; b++) {
        bm_pack_get_block(t->type, grp, t->ne[0], r % BM_PACK_ROWS, b, blk);
        tt->to_f32(blk, y + b * tt->block_elems, tt->block_elems);
    }
}
