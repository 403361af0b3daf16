/* The 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: exact dequantization and the
 * reference round-to-nearest quantization, both as the GGML/GGUF format defines them (formulas from
 * the spec, written here). Blocks are copied to/from a local struct, so x and y may be unaligned.
 * Fast dot products and repacking live elsewhere. */
#include "tensor/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- dequantization -------------------------------------------------------------------------- */

/* Q4_0: y = d * (q - 8); low nibbles are elements 0..15, high nibbles 16..31. */
void bm_dequant_q4_0(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK; i++, p += sizeof(bm_block_q4_0), y += BM_QK) {
        bm_block_q4_0 b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d);
        for (int j = 0; j < BM_QK / 2; j++) {
            y[j] = (float)((b.qs[j] & 0xF) - 8) * d;
            y[j + BM_QK / 2] = (float)((b.qs[j] >> 4) - 8) * d;
        }
    }
}

/* Q4_1: y = d * q + m. */
void bm_dequant_q4_1(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK; i++, p += sizeof(bm_block_q4_1), y += BM_QK) {
        bm_block_q4_1 b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d), m = bm_f16_to_f32(b.m);
        for (int j = 0; j < BM_QK / 2; j++) {
            y[j] = (float)(b.qs[j] & 0xF) * d + m;
            y[j + BM_QK / 2] = (float)(b.qs[j] >> 4) * d + m;
        }
    }
}

/* Bit j of the little-endian 32-bit qh is the 5th bit of element j. */
static uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

/* Q5_0: y = d * (q - 16), q = nibble | (qh bit << 4). */
void bm_dequant_q5_0(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK; i++, p += sizeof(bm_block_q5_0), y += BM_QK) {
        bm_block_q5_0 b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < BM_QK / 2; j++) {
            int q0 = (b.qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
            int q1 = (b.qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(q0 - 16) * d;
            y[j + BM_QK / 2] = (float)(q1 - 16) * d;
        }
    }
}

/* Q5_1: y = d * q + m. */
void bm_dequant_q5_1(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK; i++, p += sizeof(bm_block_q5_1), y += BM_QK) {
        bm_block_q5_1 b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d), m = bm_f16_to_f32(b.m);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < BM_QK / 2; j++) {
            int q0 = (b.qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
            int q1 = (b.qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)q0 * d + m;
            y[j + BM_QK / 2] = (float)q1 * d + m;
        }
    }
}

/* Q8_0: y = d * q. */
void bm_dequant_q8_0(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK; i++, p += sizeof(bm_block_q8_0), y += BM_QK) {
        bm_block_q8_0 b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d);
        for (int j = 0; j < BM_QK; j++) y[j] = (float)b.qs[j] * d;
    }
}

/* Q8_1: y = d * q (s = d * sum(q) is only used by dot products). */
void bm_dequant_q8_1(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK; i++, p += sizeof(bm_block_q8_1), y += BM_QK) {
        bm_block_q8_1 b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d);
        for (int j = 0; j < BM_QK; j++) y[j] = (float)b.qs[j] * d;
    }
}

/* ---- reference quantization ------------------------------------------------------------------ */

/* The signed value of largest magnitude in x[0..n) (first one on ties), 0 for all zeros. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    *mn = FLT_MAX;
    *mx = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *mn) *mn = x[j];
        if (x[j] > *mx) *mx = x[j];
    }
}

/* Symmetric nbits formats (Q4_0: 8, Q5_0: 16): d = max / -half, so the largest magnitude maps to
 * code 0 exactly; q = min(2*half - 1, trunc(x/d + half + 0.5)). Returns d. */
static float quant_sym(const float *x, int half, uint8_t *q) {
    const float d = signed_absmax(x, BM_QK) / (float)-half;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < BM_QK; j++) {
        int v = (int)(x[j] * id + ((float)half + 0.5f));
        q[j] = (uint8_t)(v < 2 * half - 1 ? v : 2 * half - 1);
    }
    return d;
}

/* Affine formats (Q4_1: 15, Q5_1: 31): d = (max - min) / nmax, m = min, q = min(nmax, trunc((x -
 * min)/d + 0.5)). Returns d, sets *m. */
static float quant_affine(const float *x, int nmax, uint8_t *q, float *m) {
    float mn, mx;
    min_max(x, BM_QK, &mn, &mx);
    const float d = (mx - mn) / (float)nmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < BM_QK; j++) {
        int v = (int)((x[j] - mn) * id + 0.5f);
        q[j] = (uint8_t)(v < nmax ? v : nmax);
    }
    *m = mn;
    return d;
}

static void pack_nibbles(const uint8_t *q, uint8_t qs[BM_QK / 2]) {
    for (int j = 0; j < BM_QK / 2; j++)
        qs[j] = (uint8_t)((q[j] & 0xF) | (q[j + BM_QK / 2] & 0xF) << 4);
}

static void pack_qh(const uint8_t *q, uint8_t qh[4]) {
    uint32_t h = 0;
    for (int j = 0; j < BM_QK; j++) h |= (uint32_t)((q[j] >> 4) & 1) << j;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

void bm_quant_q4_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK; i++, x += BM_QK, p += sizeof(bm_block_q4_0)) {
        bm_block_q4_0 b;
        uint8_t q[BM_QK];
        b.d = bm_f32_to_f16(quant_sym(x, 8, q));
        pack_nibbles(q, b.qs);
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q4_1_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK; i++, x += BM_QK, p += sizeof(bm_block_q4_1)) {
        bm_block_q4_1 b;
        uint8_t q[BM_QK];
        float m;
        b.d = bm_f32_to_f16(quant_affine(x, 15, q, &m));
        b.m = bm_f32_to_f16(m);
        pack_nibbles(q, b.qs);
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q5_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK; i++, x += BM_QK, p += sizeof(bm_block_q5_0)) {
        bm_block_q5_0 b;
        uint8_t q[BM_QK];
        b.d = bm_f32_to_f16(quant_sym(x, 16, q));
        pack_nibbles(q, b.qs);
        pack_qh(q, b.qh);
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q5_1_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK; i++, x += BM_QK, p += sizeof(bm_block_q5_1)) {
        bm_block_q5_1 b;
        uint8_t q[BM_QK];
        float m;
        b.d = bm_f32_to_f16(quant_affine(x, 31, q, &m));
        b.m = bm_f32_to_f16(m);
        pack_nibbles(q, b.qs);
        pack_qh(q, b.qh);
        memcpy(p, &b, sizeof b);
    }
}

/* Q8_0 / Q8_1: d = amax / 127, q = round-half-away(x / d) computed as x * (1/d). Returns d and the
 * sum of the codes. */
static float quant_q8(const float *x, int8_t *q, int *sum) {
    float amax = 0.0f;
    for (int j = 0; j < BM_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int s = 0;
    for (int j = 0; j < BM_QK; j++) {
        q[j] = (int8_t)roundf(x[j] * id);
        s += q[j];
    }
    *sum = s;
    return d;
}

void bm_quant_q8_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK; i++, x += BM_QK, p += sizeof(bm_block_q8_0)) {
        bm_block_q8_0 b;
        int s;
        b.d = bm_f32_to_f16(quant_q8(x, b.qs, &s));
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q8_1_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK; i++, x += BM_QK, p += sizeof(bm_block_q8_1)) {
        bm_block_q8_1 b;
        int s;
        const float d = quant_q8(x, b.qs, &s);
        b.d = bm_f32_to_f16(d);
        b.s = bm_f32_to_f16((float)s * d);
        memcpy(p, &b, sizeof b);
    }
}
