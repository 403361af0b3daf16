/* AVX2+FMA chunk kernel of the fused attention (contract in src/tensor/kernels.h), shaped for a
 * tile of query rows: scores S = Q K^T with 2 rows x 4 keys of 8-lane dot-product accumulators
 * in registers (each K row load serves 2 rows, each Q load 4 keys; 8 accumulators reduced by one
 * shared tree), a vectorised max / exp / sum per row over its own keys, then O = P V with
 * 6 rows x 16 columns of accumulators per key, key blocks of 32 so the V rows stay in L1 while
 * every row block passes over them. A row's score of key j is always the same 8-lane fma chain
 * over hd and the same reduction tree, its weights the same lanes, and its o[c] the same fma
 * chain over its keys in order, whatever the tile, its slot and the other rows' key counts. */
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

static inline const float *qrow(const bm_att_chunk *a, int r) {
    return a->q + (size_t)(r / a->G) * a->ldq + (size_t)(r % a->G) * a->hd;
}

static inline int nkey(const bm_att_chunk *a, int r) { return a->n_key[r / a->G]; }

/* Scores of rows r0, r1 (may be equal) against the 4 keys k[0..3]: lanes 0-3 row r0, 4-7 r1. */
INLINE __m256 dot2x4(const float *q0, const float *q1, const float *const *k, int hd) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int u = 0; u < 8; u++) acc[u] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d += 8) {
        __m256 a0 = _mm256_loadu_ps(q0 + d), a1 = _mm256_loadu_ps(q1 + d);
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m256 kv = _mm256_loadu_ps(k[u] + d);
            __asm__("" : "+x"(kv)); /* one load for both rows, not one folded into each fma */
            acc[u] = _mm256_fmadd_ps(a0, kv, acc[u]);
            acc[4 + u] = _mm256_fmadd_ps(a1, kv, acc[4 + u]);
        }
    }
    return hsum8x8(acc);
}

/* Scores of one row against the 8 keys k[0..7]. */
INLINE __m256 dot1x8(const float *q, const float *const *k, int hd) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int u = 0; u < 8; u++) acc[u] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d += 8) {
        __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++)
            acc[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[u] + d), acc[u]);
    }
    return hsum8x8(acc);
}

/* o[r][c0..c0+16) (+)= sum_j p[r][j] v_j[c0..c0+16) for rows r0..r0+NR-1 over their keys in
 * [jb, je) (row r stops at its n_key), keys in order; first: start from 0, else from o. */
INLINE void pv_block(const bm_att_chunk *a, const float *const *vr, int r0, int NR, int c0,
                     int jb, int je, bool first) {
    __m256 acc[6][2];
    int lim[6], jmin = je, jmax = jb;
#pragma GCC unroll 6
    for (int g = 0; g < NR; g++) {
        float *o = a->o + (size_t)(r0 + g) * a->hd + c0;
        acc[g][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(o);
        acc[g][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(o + 8);
        int nk = nkey(a, r0 + g);
        lim[g] = nk < jb ? jb : nk > je ? je : nk;
        if (lim[g] < jmin) jmin = lim[g];
        if (lim[g] > jmax) jmax = lim[g];
    }
    const float *p = a->s + (size_t)r0 * BM_ATT_CHUNK;
    for (int j = jb; j < jmin; j++) {
        const float *v = vr[j] + c0;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
#pragma GCC unroll 6
        for (int g = 0; g < NR; g++) {
            __m256 w = _mm256_broadcast_ss(p + (size_t)g * BM_ATT_CHUNK + j);
            acc[g][0] = _mm256_fmadd_ps(w, v0, acc[g][0]);
            acc[g][1] = _mm256_fmadd_ps(w, v1, acc[g][1]);
        }
    }
    for (int j = jmin; j < jmax; j++) { /* diagonal: rows whose keys end inside [jb, je) */
        const float *v = vr[j] + c0;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
#pragma GCC unroll 6
        for (int g = 0; g < NR; g++) {
            if (j >= lim[g]) continue;
            __m256 w = _mm256_broadcast_ss(p + (size_t)g * BM_ATT_CHUNK + j);
            acc[g][0] = _mm256_fmadd_ps(w, v0, acc[g][0]);
            acc[g][1] = _mm256_fmadd_ps(w, v1, acc[g][1]);
        }
    }
#pragma GCC unroll 6
    for (int g = 0; g < NR; g++) {
        float *o = a->o + (size_t)(r0 + g) * a->hd + c0;
        _mm256_storeu_ps(o, acc[g][0]);
        _mm256_storeu_ps(o + 8, acc[g][1]);
    }
}

#define PV_KEYS 32 /* keys per V pass: 32 rows of hd floats stay in L1 */

void bm_att_chunk_avx2(const bm_att_chunk *a) {
    if (a->hd % 16) { /* the V pass works in 16-column steps */
        bm_att_chunk_ref(a);
        return;
    }
    const int hd = a->hd, R = a->n_tok * a->G;
    int nk_max = 0;
    for (int t = 0; t < a->n_tok; t++)
        if (a->n_key[t] > nk_max) nk_max = a->n_key[t];
    const __m256 scale = _mm256_set1_ps(a->scale);
    /* scores, 8 keys per step; slots past nk_max reuse its last key, past a row's n_key are
     * overwritten below */
    for (int j0 = 0; j0 < nk_max; j0 += 8) {
        const float *kr[8];
        for (int u = 0; u < 8; u++) kr[u] = row(a, a->kb, j0 + u < nk_max ? j0 + u : nk_max - 1);
        int r = 0;
        for (; r + 2 <= R; r += 2) {
            if (nkey(a, r) <= j0 && nkey(a, r + 1) <= j0) continue;
            const float *q0 = qrow(a, r), *q1 = qrow(a, r + 1);
            float *s0 = a->s + (size_t)r * BM_ATT_CHUNK + j0, *s1 = s0 + BM_ATT_CHUNK;
            for (int h = 0; h < 8; h += 4) {
                __m256 v = _mm256_mul_ps(dot2x4(q0, q1, kr + h, hd), scale);
                _mm_storeu_ps(s0 + h, _mm256_castps256_ps128(v));
                _mm_storeu_ps(s1 + h, _mm256_extractf128_ps(v, 1));
            }
        }
        if (r < R && nkey(a, r) > j0)
            _mm256_storeu_ps(a->s + (size_t)r * BM_ATT_CHUNK + j0,
                             _mm256_mul_ps(dot1x8(qrow(a, r), kr, hd), scale));
    }
    /* per row: max, p = exp(s - max) (slots past n_key set to 0), l = sum p */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int r = 0; r < R; r++) {
        const int nk = nkey(a, r), n8 = (nk + 7) & ~7;
        const __m256i nkv = _mm256_set1_epi32(nk);
        float *s = a->s + (size_t)r * BM_ATT_CHUNK;
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
        a->m[r] = mx;
        a->l[r] = hsum8(sum);
    }
    /* o = sum_j p_j v_j: key blocks of PV_KEYS, 16 columns, rows in blocks of 6 */
    const float *vr[BM_ATT_CHUNK];
    for (int j = 0; j < nk_max; j++) vr[j] = row(a, a->vb, j);
    for (int jb = 0; jb < nk_max; jb += PV_KEYS) {
        const int je = jb + PV_KEYS < nk_max ? jb + PV_KEYS : nk_max;
        for (int c0 = 0; c0 < hd; c0 += 16) {
            int r0 = 0;
            for (; r0 + 6 <= R; r0 += 6) pv_block(a, vr, r0, 6, c0, jb, je, jb == 0);
            switch (R - r0) {
            case 5: pv_block(a, vr, r0, 5, c0, jb, je, jb == 0); break;
            case 4: pv_block(a, vr, r0, 4, c0, jb, je, jb == 0); break;
            case 3: pv_block(a, vr, r0, 3, c0, jb, je, jb == 0); break;
            case 2: pv_block(a, vr, r0, 2, c0, jb, je, jb == 0); break;
            case 1: pv_block(a, vr, r0, 1, c0, jb, je, jb == 0); break;
            default: break;
            }
        }
    }
}
