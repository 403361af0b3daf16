/* On-the-fly activation quantization for the integer matmul path (blocks of 32 int8 codes with
 * a float scale, computed once per bm_matmul call and shared by every thread), and the scalar
 * reference of that path: the integer block dot products summed in double. The SIMD kernels
 * must match the quantization bitwise and the dot products to float rounding. */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

void bm_act_q8_ref(const float *x, int64_t n_in, int64_t t0, int64_t t1, const bm_mm_args *a,
                   bool u8) {
    const int64_t nb = n_in / BM_QK;
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * n_in;
        uint8_t *q = (uint8_t *)a->xq + t * a->ldq;
        float *d = (float *)a->xd + t * a->ldd;
        int32_t *s = (int32_t *)a->xs + t * a->ldd;
        for (int64_t b = 0; b < nb; b++, xr += BM_QK, q += BM_QK) {
            float amax = 0.0f;
            for (int j = 0; j < BM_QK; j++) amax = fmaxf(amax, fabsf(xr[j]));
            const float db = amax / 127.0f;
            const float id = db != 0.0f ? 1.0f / db : 0.0f;
            int32_t sum = 0;
            for (int j = 0; j < BM_QK; j++) {
                const int v = (int)nearbyintf(xr[j] * id); /* nearest-even, |v| <= 127 */
                sum += v;
                q[j] = (uint8_t)(u8 ? v + 128 : (int8_t)v);
            }
            d[b] = db;
            s[b] = sum;
        }
    }
}

/* Block b of a weight row as signed codes q[32] with value = d * q + m. */
static void weight_block(bm_dtype wt, const uint8_t *row, int64_t b, int q[BM_QK], float *d,
                         float *m) {
    uint32_t qh = 0;
    *m = 0.0f;
    switch (wt) {
    case BM_Q8_0: {
        bm_block_q8_0 k;
        memcpy(&k, row + b * sizeof k, sizeof k);
        *d = bm_f16_to_f32(k.d);
        for (int j = 0; j < BM_QK; j++) q[j] = k.qs[j];
        return;
    }
    case BM_Q4_0:
    case BM_Q4_1: {
        const size_t bs = wt == BM_Q4_0 ? sizeof(bm_block_q4_0) : sizeof(bm_block_q4_1);
        const uint8_t *p = row + b * bs;
        uint16_t h;
        memcpy(&h, p, 2);
        *d = bm_f16_to_f32(h);
        if (wt == BM_Q4_1) {
            memcpy(&h, p + 2, 2);
            *m = bm_f16_to_f32(h);
        }
        const uint8_t *qs = p + bs - BM_QK / 2;
        const int off = wt == BM_Q4_0 ? 8 : 0;
        for (int j = 0; j < BM_QK / 2; j++) {
            q[j] = (qs[j] & 0xF) - off;
            q[j + BM_QK / 2] = (qs[j] >> 4) - off;
        }
        return;
    }
    case BM_Q5_0:
    case BM_Q5_1: {
        const size_t bs = wt == BM_Q5_0 ? sizeof(bm_block_q5_0) : sizeof(bm_block_q5_1);
        const uint8_t *p = row + b * bs;
        uint16_t h;
        memcpy(&h, p, 2);
        *d = bm_f16_to_f32(h);
        if (wt == BM_Q5_1) {
            memcpy(&h, p + 2, 2);
            *m = bm_f16_to_f32(h);
        }
        const uint8_t *qhp = p + bs - BM_QK / 2 - 4;
        qh = (uint32_t)qhp[0] | (uint32_t)qhp[1] << 8 | (uint32_t)qhp[2] << 16 |
             (uint32_t)qhp[3] << 24;
        const uint8_t *qs = p + bs - BM_QK / 2;
        const int off = wt == BM_Q5_0 ? 16 : 0;
        for (int j = 0; j < BM_QK / 2; j++) {
            q[j] = ((qs[j] & 0xF) | (int)((qh >> j) & 1) << 4) - off;
            q[j + BM_QK / 2] = ((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - off;
        }
        return;
    }
    default:
        BM_ASSERT(!"bm_mm_q8_ref: unsupported weight type");
    }
}

void bm_mm_q8_ref(bm_dtype wt, const bm_mm_args *a, bool u8, int64_t r0, int64_t r1) {
    const int64_t nb = a->n_in / BM_QK;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = a->w + (size_t)r * a->row_bytes;
        for (int64_t t = 0; t < a->n_tok; t++) {
            const uint8_t *xq = a->xq + t * a->ldq;
            double acc = 0.0;
            for (int64_t b = 0; b < nb; b++) {
                int q[BM_QK];
                float d, m;
                weight_block(wt, row, b, q, &d, &m);
                int32_t isum = 0, xsum = 0;
                for (int j = 0; j < BM_QK; j++) {
                    const int xv = u8 ? (int)xq[b * BM_QK + j] - 128 : (int8_t)xq[b * BM_QK + j];
                    isum += q[j] * xv;
                    xsum += xv;
                }
                const double dx = a->xd[t * a->ldd + b];
                acc += (double)d * dx * isum + (double)m * dx * xsum;
            }
            a->y[t * a->ldy + r] = (float)acc;
        }
    }
}
