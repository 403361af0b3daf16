/* AArch64 Advanced SIMD chunk kernel of the fused attention (contract in src/tensor/kernels.h),
 * for both arm64 levels: scores S = Q K^T with 2 rows x 4 keys of dot-product accumulators
 * (each K load serves 2 rows, each Q load 4 keys), per row a vector max, exp (exp4 of neon.h)
 * and sum over its own keys, then O = P V with 4 rows x 16 columns of accumulators per key (each
 * V load serves 4 rows). A row's score of key j is always the same two 4-lane fma chains over
 * hd (columns 8i..8i+3 and 8i+4..8i+7), added and reduced by one fixed pairwise tree; its
 * weights the same lanes; its o[c] the same fma chain over its keys in order: bitwise the same
 * whatever n_tok, G, the row's slot and the other rows' key counts. hd % 16 != 0: the scalar
 * reference. */
#include "tensor/arm/neon.h"

static inline const float *row(const bm_att_chunk *a, const float *const *blk, int j) {
    return blk[j / a->blk] + (int64_t)(j % a->blk) * a->ld;
}

static inline const float *qrow(const bm_att_chunk *a, int r) {
    return a->q + (size_t)(r / a->G) * a->ldq + (size_t)(r % a->G) * a->hd;
}

static inline int nkey(const bm_att_chunk *a, int r) { return a->n_key[r / a->G]; }

/* Lane u = horizontal sum of c[u] (tree (l0 + l1) + (l2 + l3) for each). */
INLINE float32x4_t hsum4x4(const float32x4_t c[4]) {
    return vpaddq_f32(vpaddq_f32(c[0], c[1]), vpaddq_f32(c[2], c[3]));
}

/* Scores of NR rows q[0..NR) (NR 1 or 2) against the 4 keys k[0..3]: out[g] lane u. */
INLINE void dot_rows_x4(const float *const *q, const int NR, const float *const *k, int hd,
                        float32x4_t out[2]) {
    float32x4_t a0[2][4], a1[2][4];
#pragma GCC unroll 2
    for (int g = 0; g < NR; g++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) a0[g][u] = a1[g][u] = vdupq_n_f32(0.0f);
    for (int d = 0; d < hd; d += 8) {
        float32x4_t q0[2], q1[2];
#pragma GCC unroll 2
        for (int g = 0; g < NR; g++) {
            q0[g] = vld1q_f32(q[g] + d);
            q1[g] = vld1q_f32(q[g] + d + 4);
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            const float32x4_t k0 = vld1q_f32(k[u] + d), k1 = vld1q_f32(k[u] + d + 4);
#pragma GCC unroll 2
            for (int g = 0; g < NR; g++) {
                a0[g][u] = vfmaq_f32(a0[g][u], q0[g], k0);
                a1[g][u] = vfmaq_f32(a1[g][u], q1[g], k1);
            }
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < NR; g++) {
        float32x4_t c[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) c[u] = vaddq_f32(a0[g][u], a1[g][u]);
        out[g] = hsum4x4(c);
    }
}

/* o[r][c0..c0+16) = sum_j p[r][j] v_j[c0..c0+16) for rows r0..r0+NR-1 (NR 1..4), each over its
 * own keys 0..n_key-1 in order. */
INLINE void pv_block(const bm_att_chunk *a, const float *const *vr, int r0, const int NR,
                     int c0) {
    float32x4_t acc[4][4];
    int lim[4], jmin = BM_ATT_CHUNK, jmax = 0;
#pragma GCC unroll 4
    for (int g = 0; g < NR; g++) {
#pragma GCC unroll 4
        for (int e = 0; e < 4; e++) acc[g][e] = vdupq_n_f32(0.0f);
        lim[g] = nkey(a, r0 + g);
        if (lim[g] < jmin) jmin = lim[g];
        if (lim[g] > jmax) jmax = lim[g];
    }
    const float *p = a->s + (size_t)r0 * BM_ATT_CHUNK;
    for (int j = 0; j < jmin; j++) {
        const float *v = vr[j] + c0;
        const float32x4_t v0 = vld1q_f32(v), v1 = vld1q_f32(v + 4), v2 = vld1q_f32(v + 8),
                          v3 = vld1q_f32(v + 12);
#pragma GCC unroll 4
        for (int g = 0; g < NR; g++) {
            const float w = p[(size_t)g * BM_ATT_CHUNK + j];
            acc[g][0] = vfmaq_n_f32(acc[g][0], v0, w);
            acc[g][1] = vfmaq_n_f32(acc[g][1], v1, w);
            acc[g][2] = vfmaq_n_f32(acc[g][2], v2, w);
            acc[g][3] = vfmaq_n_f32(acc[g][3], v3, w);
        }
    }
    for (int j = jmin; j < jmax; j++) { /* rows whose keys end before others' */
        const float *v = vr[j] + c0;
        const float32x4_t v0 = vld1q_f32(v), v1 = vld1q_f32(v + 4), v2 = vld1q_f32(v + 8),
                          v3 = vld1q_f32(v + 12);
#pragma GCC unroll 4
        for (int g = 0; g < NR; g++) {
            if (j >= lim[g]) continue;
            const float w = p[(size_t)g * BM_ATT_CHUNK + j];
            acc[g][0] = vfmaq_n_f32(acc[g][0], v0, w);
            acc[g][1] = vfmaq_n_f32(acc[g][1], v1, w);
            acc[g][2] = vfmaq_n_f32(acc[g][2], v2, w);
            acc[g][3] = vfmaq_n_f32(acc[g][3], v3, w);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < NR; g++) {
        float *o = a->o + (size_t)(r0 + g) * a->hd + c0;
#pragma GCC unroll 4
        for (int e = 0; e < 4; e++) vst1q_f32(o + 4 * e, acc[g][e]);
    }
}

void bm_att_chunk_neon(const bm_att_chunk *a) {
    if (a->hd % 16) { /* the V pass works in 16-column steps */
        bm_att_chunk_ref(a);
        return;
    }
    const int hd = a->hd, R = a->n_tok * a->G;
    int nk_max = 0;
    for (int t = 0; t < a->n_tok; t++)
        if (a->n_key[t] > nk_max) nk_max = a->n_key[t];
    /* scores, 4 keys per step; slots past nk_max reuse its last key, past a row's n_key are
     * overwritten below */
    for (int j0 = 0; j0 < nk_max; j0 += 4) {
        const float *kr[4];
        for (int u = 0; u < 4; u++) kr[u] = row(a, a->kb, j0 + u < nk_max ? j0 + u : nk_max - 1);
        int r = 0;
        float32x4_t sv[2];
        for (; r + 2 <= R; r += 2) {
            if (nkey(a, r) <= j0 && nkey(a, r + 1) <= j0) continue;
            const float *q[2] = {qrow(a, r), qrow(a, r + 1)};
            dot_rows_x4(q, 2, kr, hd, sv);
            float *s0 = a->s + (size_t)r * BM_ATT_CHUNK + j0;
            vst1q_f32(s0, vmulq_n_f32(sv[0], a->scale));
            vst1q_f32(s0 + BM_ATT_CHUNK, vmulq_n_f32(sv[1], a->scale));
        }
        if (r < R && nkey(a, r) > j0) {
            const float *q[1] = {qrow(a, r)};
            dot_rows_x4(q, 1, kr, hd, sv);
            vst1q_f32(a->s + (size_t)r * BM_ATT_CHUNK + j0, vmulq_n_f32(sv[0], a->scale));
        }
    }
    /* per row: max, p = exp(s - max) (slots past n_key set to 0), l = sum p */
    static const uint32_t lane_idx[4] = {0, 1, 2, 3};
    const uint32x4_t lane = vld1q_u32(lane_idx);
    for (int r = 0; r < R; r++) {
        const int nk = nkey(a, r), n4 = (nk + 3) & ~3;
        const uint32x4_t nkv = vdupq_n_u32((uint32_t)nk);
        float *s = a->s + (size_t)r * BM_ATT_CHUNK;
        for (int j = nk; j < n4; j++) s[j] = s[nk - 1];
        float32x4_t mv = vld1q_f32(s);
        for (int j = 4; j < n4; j += 4) mv = vmaxq_f32(mv, vld1q_f32(s + j));
        const float mx = vmaxvq_f32(mv);
        const float32x4_t mb = vdupq_n_f32(mx);
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (int j = 0; j < n4; j += 4) {
            const uint32x4_t keep = vcltq_u32(vaddq_u32(vdupq_n_u32((uint32_t)j), lane), nkv);
            const float32x4_t e = vreinterpretq_f32_u32(vandq_u32(
                keep, vreinterpretq_u32_f32(exp4(vsubq_f32(vld1q_f32(s + j), mb)))));
            vst1q_f32(s + j, e);
            sum = vaddq_f32(sum, e);
        }
        a->m[r] = mx;
        a->l[r] = vaddvq_f32(sum);
    }
    /* o = sum_j p_j v_j: 16 columns at a time, rows in blocks of 4 */
    const float *vr[BM_ATT_CHUNK];
    for (int j = 0; j < nk_max; j++) vr[j] = row(a, a->vb, j);
    for (int c0 = 0; c0 < hd; c0 += 16) {
        int r0 = 0;
        for (; r0 + 4 <= R; r0 += 4) pv_block(a, vr, r0, 4, c0);
        switch (R - r0) {
        case 3: pv_block(a, vr, r0, 3, c0); break;
        case 2: pv_block(a, vr, r0, 2, c0); break;
        case 1: pv_block(a, vr, r0, 1, c0); break;
        default: break;
        }
    }
}
