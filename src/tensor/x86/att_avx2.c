/* AVX2+FMA chunk kernel of the fused attention (contract in src/tensor/kernels.h): scores of
 * 8 keys at a time per head (8 dot-product accumulators reduced together, the K rows of the
 * block reused from L1 by every head of the group), a vectorised max / exp / sum, and the
 * weighted sum of V with 4 heads x 16 columns held in registers so each V row is read once
 * per group. Every head and every key goes through the same operations whatever G, n_key or
 * its slot, so a head's result depends only on its query and the chunk's keys. */
#include "tensor/x86/wblock.h"

#include <math.h>

/* Sums of 8 vectors: lane i of the result = horizontal sum of a[i] (same tree for each). */
INLINE __m256 hsum8x8(const __m256 *a) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}


INLINE float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline const float *row(const bm_att_chunk *a, const float *const *blk, int j) {
    return blk[j / a->blk] + (int64_t)(j % a->blk) * a->ld;
}

/* o[g][c0..c0+16) = sum_j p[g][j] v_j[c0..c0+16) for NG heads, keys in order. */
INLINE void pv_block(const bm_att_chunk *a, int g0, int NG, int c0) {
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int g = 0; g < NG; g++) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
    const float *p = a->s + (size_t)g0 * BM_ATT_CHUNK;
    for (int j = 0; j < a->n_key; j++) {
        const float *v = row(a, a->vb, j) + c0;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            __m256 w = _mm256_broadcast_ss(p + (size_t)g * BM_ATT_CHUNK + j);
            acc[g][0] = _mm256_fmadd_ps(w, v0, acc[g][0]);
            acc[g][1] = _mm256_fmadd_ps(w, v1, acc[g][1]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < NG; g++) {
        float *o = a->o + (size_t)(g0 + g) * a->hd + c0;
        _mm256_storeu_ps(o, acc[g][0]);
        _mm256_storeu_ps(o + 8, acc[g][1]);
    }
}

void bm_att_chunk_avx2(const bm_att_chunk *a) {
    if (a->hd % 16) { /* the V pass works in 16-column steps */
        bm_att_chunk_ref(a);
        return;
    }
    const int hd = a->hd, G = a->G, nk = a->n_key, n8 = (nk + 7) & ~7;
    const __m256 scale = _mm256_set1_ps(a->scale);
    /* scores, 8 keys per step; slots past n_key reuse the last key and are dropped */
    for (int j0 = 0; j0 < nk; j0 += 8) {
        const float *kr[8];
        for (int u = 0; u < 8; u++) kr[u] = row(a, a->kb, j0 + u < nk ? j0 + u : nk - 1);
        for (int g = 0; g < G; g++) {
            const float *q = a->q + (size_t)g * hd;
            __m256 acc[8];
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) acc[u] = _mm256_setzero_ps();
            for (int d = 0; d < hd; d += 8) {
                __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++)
                    acc[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kr[u] + d), acc[u]);
            }
            _mm256_storeu_ps(a->s + (size_t)g * BM_ATT_CHUNK + j0,
                             _mm256_mul_ps(hsum8x8(acc), scale));
        }
    }
    /* per head: max, p = exp(s - max) (slots past n_key set to 0), l = sum p */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), nkv = _mm256_set1_epi32(nk);
    for (int g = 0; g < G; g++) {
        float *s = a->s + (size_t)g * BM_ATT_CHUNK;
        for (int j = nk; j < n8; j++) s[j] = s[nk - 1];
        __m256 mv = _mm256_loadu_ps(s);
        for (int j = 8; j < n8; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
        const float mx = hmax(mv);
        const __m256 mb = _mm256_set1_ps(mx);
        __m256 sum = _mm256_setzero_ps();
        for (int j = 0; j < n8; j += 8) {
            __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(j), lane);
            __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(nkv, idx));
            __m256 e = _mm256_and_ps(keep, exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mb)));
            _mm256_storeu_ps(s + j, e);
            sum = _mm256_add_ps(sum, e);
        }
        a->m[g] = mx;
        a->l[g] = hsum8(sum);
    }
    /* o = sum_j p_j v_j: heads in groups of 4, 16 columns at a time */
    for (int c0 = 0; c0 < hd; c0 += 16) {
        int g0 = 0;
        for (; g0 + 4 <= G; g0 += 4) pv_block(a, g0, 4, c0);
        switch (G - g0) {
        case 3: pv_block(a, g0, 3, c0); break;
        case 2: pv_block(a, g0, 2, c0); break;
        case 1: pv_block(a, g0, 1, c0); break;
        default: break;
        }
    }
}
