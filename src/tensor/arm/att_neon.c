/* AArch64 Advanced SIMD chunk kernel of the fused attention (contract in src/tensor/kernels.h),
 * for both arm64 levels: scores S = Q K^T from the transposed K blocks with up to 2 rows x 32
 * keys of accumulators (keys in the lanes: per d, 8 K loads feed 16 fmas by the rows' scalar
 * q[d], no horizontal sums), per row a vector max, exp (exp4 of neon.h) and sum over its own
 * keys, then O = P V with 4 rows x 16 columns of accumulators per key (each V load serves 4
 * rows). A row's score of key j is always the same in-order fma chain over d in lane j % 4; its
 * weights the same lanes; its o[c] the same fma chain over its keys in order: bitwise the same
 * whatever n_tok, G, the row's slot and the other rows' key counts. hd % 16 != 0, blk % 4 != 0
 * or more than BM_ATT_ROWS_MAX rows: the scalar reference. */
#include "tensor/arm/neon.h"

/* Scores of the NR rows q[0..NR) (NR 1 or 2) against NV * 4 keys of a transposed K block (kt:
 * element d of the first key at kt[d * blk]), times scale, into s[g][0..NV * 4). */
INLINE void scores_tile(const float *const *q, const int NR, const float *kt, int blk, int hd,
                        float scale, float *const *s, const int NV) {
    float32x4_t acc[2][8];
#pragma GCC unroll 2
    for (int g = 0; g < NR; g++)
#pragma GCC unroll 8
        for (int i = 0; i < NV; i++) acc[g][i] = vdupq_n_f32(0.0f);
    for (int d = 0; d < hd; d++, kt += blk) {
        float32x4_t kv[8];
#pragma GCC unroll 8
        for (int i = 0; i < NV; i++) kv[i] = vld1q_f32(kt + 4 * i);
#pragma GCC unroll 2
        for (int g = 0; g < NR; g++) {
            const float qd = q[g][d];
#pragma GCC unroll 8
            for (int i = 0; i < NV; i++) acc[g][i] = vfmaq_n_f32(acc[g][i], kv[i], qd);
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < NR; g++)
#pragma GCC unroll 8
        for (int i = 0; i < NV; i++) vst1q_f32(s[g] + 4 * i, vmulq_n_f32(acc[g][i], scale));
}

/* NV (1..8) as a constant for scores_tile. */
INLINE void scores_rows(const float *const *q, const int NR, const float *kt, int blk, int hd,
                        float scale, float *const *s, int nv) {
    switch (nv) {
    case 8: scores_tile(q, NR, kt, blk, hd, scale, s, 8); break;
    case 7: scores_tile(q, NR, kt, blk, hd, scale, s, 7); break;
    case 6: scores_tile(q, NR, kt, blk, hd, scale, s, 6); break;
    case 5: scores_tile(q, NR, kt, blk, hd, scale, s, 5); break;
    case 4: scores_tile(q, NR, kt, blk, hd, scale, s, 4); break;
    case 3: scores_tile(q, NR, kt, blk, hd, scale, s, 3); break;
    case 2: scores_tile(q, NR, kt, blk, hd, scale, s, 2); break;
    default: scores_tile(q, NR, kt, blk, hd, scale, s, 1); break;
    }
}

/* o[r][c0..c0+16) = sum_j p[r][j] v_j[c0..c0+16) for rows r0..r0+NR-1 (NR 1..4), each over its
 * own keys 0..n_key-1 in order. */
INLINE void pv_block(const bm_att_chunk *a, const float *const *vr, const int *nkr, int r0,
                     const int NR, int c0) {
    float32x4_t acc[4][4];
    int lim[4], jmin = BM_ATT_CHUNK, jmax = 0;
#pragma GCC unroll 4
    for (int g = 0; g < NR; g++) {
#pragma GCC unroll 4
        for (int e = 0; e < 4; e++) acc[g][e] = vdupq_n_f32(0.0f);
        lim[g] = nkr[r0 + g];
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
    const int hd = a->hd, R = a->n_tok * a->G;
    /* V in 16-column steps, K in 4-key vectors, rows in stack arrays */
    if (hd % 16 || a->blk % 4 || R > BM_ATT_ROWS_MAX) {
        bm_att_chunk_ref(a);
        return;
    }
    const float *qp[BM_ATT_ROWS_MAX];
    int nkr[BM_ATT_ROWS_MAX];
    bm_att_rows(a, qp, nkr);
    int nk_max = 0;
    for (int t = 0; t < a->n_tok; t++)
        if (a->n_key[t] > nk_max) nk_max = a->n_key[t];
    /* scores: each block's keys in groups of up to 32 (whole 4-key vectors; lanes past nk_max
     * read the block's unused slots and are overwritten below), rows in pairs */
    for (int j0 = 0; j0 < nk_max; j0 += a->blk) {
        const float *kt0 = a->kb[j0 / a->blk];
        const int nkb = nk_max - j0 < a->blk ? nk_max - j0 : a->blk;
        for (int u0 = 0; u0 < nkb; u0 += 32) {
            const int nv = (nkb - u0 + 3) / 4 < 8 ? (nkb - u0 + 3) / 4 : 8, j = j0 + u0;
            const float *kt = kt0 + u0;
            int r = 0;
            for (; r + 2 <= R; r += 2) {
                if (nkr[r] <= j && nkr[r + 1] <= j) continue;
                const float *q[2] = {qp[r], qp[r + 1]};
                float *s[2] = {a->s + (size_t)r * BM_ATT_CHUNK + j,
                               a->s + (size_t)(r + 1) * BM_ATT_CHUNK + j};
                scores_rows(q, 2, kt, a->blk, hd, a->scale, s, nv);
            }
            if (r < R && nkr[r] > j) {
                const float *q[1] = {qp[r]};
                float *s[1] = {a->s + (size_t)r * BM_ATT_CHUNK + j};
                scores_rows(q, 1, kt, a->blk, hd, a->scale, s, nv);
            }
        }
    }
    /* per row: max, p = exp(s - max) (slots past n_key set to 0), l = sum p */
    static const uint32_t lane_idx[4] = {0, 1, 2, 3};
    const uint32x4_t lane = vld1q_u32(lane_idx);
    for (int r = 0; r < R; r++) {
        const int nk = nkr[r], n4 = (nk + 3) & ~3;
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
    for (int b = 0, j = 0; j < nk_max; b++) /* no division per key */
        for (int i = 0; i < a->blk && j < nk_max; i++, j++) vr[j] = a->vb[b] + (int64_t)i * a->ld;
    for (int c0 = 0; c0 < hd; c0 += 16) {
        int r0 = 0;
        for (; r0 + 4 <= R; r0 += 4) pv_block(a, vr, nkr, r0, 4, c0);
        switch (R - r0) {
        case 3: pv_block(a, vr, nkr, r0, 3, c0); break;
        case 2: pv_block(a, vr, nkr, r0, 2, c0); break;
        case 1: pv_block(a, vr, nkr, r0, 1, c0); break;
        default: break;
        }
    }
}
