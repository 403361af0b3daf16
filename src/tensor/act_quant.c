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
        float *m = (float *)a->xm + t * a->ldd;
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
            m[b] = db * (float)sum;
        }
    }
}

/* Q4_K/Q5_K 6-bit scale and min of sub-block j from the 12 packed bytes (GGUF layout). */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Block b (32 elements) of a weight row as integer weights q[32] and integer mins mq[32] with
 * value = d * q + m + dm * mq. For the K formats b is a sub-block of a 256 super-block; for
 * those with 16-element scales (Q6_K, Q3_K, Q2_K) q already includes the integer scale; only
 * Q2_K has per-16 integer mins (mq, dm = -dmin), the others leave mq 0 and dm 0. */
static void weight_block(bm_dtype wt, const uint8_t *row, int64_t b, int q[BM_QK], float *d,
                         float *m, int mq[BM_QK], float *dm) {
    uint32_t qh = 0;
    *m = 0.0f;
    *dm = 0.0f;
    memset(mq, 0, sizeof(int) * BM_QK);
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
    case BM_Q4_K:
    case BM_Q5_K: {
        /* Sub-block j of a 256 super-block: q in 0..15 (0..31), value = d*sc*q - dmin*m. */
        const size_t bs = wt == BM_Q4_K ? sizeof(bm_block_q4_K) : sizeof(bm_block_q5_K);
        const uint8_t *p = row + (b / 8) * bs;
        const int j = (int)(b % 8);
        uint16_t h;
        memcpy(&h, p, 2);
        const float dd = bm_f16_to_f32(h);
        memcpy(&h, p + 2, 2);
        const float dmin = bm_f16_to_f32(h);
        int sc, mn;
        k4_scale_min(p + 4, j, &sc, &mn);
        *d = dd * (float)sc;
        *m = -(dmin * (float)mn);
        const uint8_t *qs = p + bs - BM_QK_K / 2 + 32 * (j / 2);
        const uint8_t *qhp = p + 16;
        for (int l = 0; l < BM_QK; l++) {
            q[l] = (qs[l] >> (4 * (j % 2))) & 0xF;
            if (wt == BM_Q5_K) q[l] |= ((qhp[l] >> j) & 1) << 4;
        }
        return;
    }
    case BM_Q6_K: {
        /* Effective integer weight: the 8-bit scale of the element's 16-group times (code-32). */
        const uint8_t *p = row + (b / 8) * sizeof(bm_block_q6_K);
        const int j = (int)(b % 8), c = j / 4, s = j % 4;
        const uint8_t *ql = p, *qhp = p + 128;
        const int8_t *scl = (const int8_t *)(p + 192);
        uint16_t h;
        memcpy(&h, p + 208, 2);
        *d = bm_f16_to_f32(h);
        for (int l = 0; l < BM_QK; l++) {
            const int lo = (ql[64 * c + l + 32 * (s % 2)] >> (4 * (s / 2))) & 0xF;
            const int hi = (qhp[32 * c + l] >> (2 * s)) & 3;
            q[l] = scl[8 * c + 2 * s + l / 16] * ((lo | hi << 4) - 32);
        }
        return;
    }
    case BM_Q3_K: {
        const uint8_t *p = row + (b / 8) * sizeof(bm_block_q3_K);
        const int j = (int)(b % 8), c = j / 4, s = j % 4;
        const uint8_t *hm = p, *qs = p + 32, *scb = p + 96;
        uint16_t h;
        memcpy(&h, p + 108, 2);
        *d = bm_f16_to_f32(h);
        for (int l = 0; l < BM_QK; l++) {
            const int i = 8 * c + 2 * s + l / 16;
            const int sc = (((scb[i % 8] >> (4 * (i / 8))) & 0xF) |
                            ((scb[8 + i % 4] >> (2 * (i / 4))) & 3) << 4) - 32;
            const int code = ((qs[32 * c + l] >> (2 * s)) & 3) - ((hm[l] >> j) & 1 ? 0 : 4);
            q[l] = sc * code;
        }
        return;
    }
    case BM_Q2_K: {
        /* 16-groups g = 2j, 2j+1: value = d * (scales[g] & 15) * code - dmin * (scales[g] >> 4),
         * code = 2 bits at shift 2 * (j % 4) of qs[32 * (j / 4) + l]. */
        const uint8_t *p = row + (b / 8) * sizeof(bm_block_q2_K);
        const int j = (int)(b % 8), c = j / 4, s = j % 4;
        const uint8_t *scb = p, *qs = p + 16;
        uint16_t h;
        memcpy(&h, p + 80, 2);
        *d = bm_f16_to_f32(h);
        memcpy(&h, p + 82, 2);
        *dm = -bm_f16_to_f32(h);
        for (int l = 0; l < BM_QK; l++) {
            const int g = 2 * j + l / 16;
            q[l] = (scb[g] & 0xF) * ((qs[32 * c + l] >> (2 * s)) & 3);
            mq[l] = scb[g] >> 4;
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
                int q[BM_QK], mq[BM_QK];
                float d, m, dm;
                weight_block(wt, row, b, q, &d, &m, mq, &dm);
                int32_t isum = 0, xsum = 0, msum = 0;
                for (int j = 0; j < BM_QK; j++) {
                    const int xv = u8 ? (int)xq[b * BM_QK + j] - 128 : (int8_t)xq[b * BM_QK + j];
                    isum += q[j] * xv;
                    xsum += xv;
                    msum += mq[j] * xv;
                }
                const double dx = a->xd[t * a->ldd + b];
                acc += (double)d * dx * isum + (double)m * dx * xsum + (double)dm * dx * msum;
            }
            a->y[t * a->ldy + r] = (float)acc;
        }
    }
}

float bm_dot_f32_ref(const float *a, const float *b, int64_t n) {
    float d = 0;
    for (int64_t i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}

void bm_axpy_f32_ref(float s, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += s * x[i];
}
