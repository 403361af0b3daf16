/* AVX2+FMA chunk kernel of the fused attention (contract in src/tensor/kernels.h), shaped for a
 * tile of query rows: scores S = Q K^T from the transposed K blocks with up to 3 rows x 32 keys
 * of accumulators (keys in the lanes: per d, 4 K loads and 3 broadcasts feed 12 fmas, and no
 * horizontal sums), a vectorised max / exp / sum per row over its own keys, then O = P V with
 * 6 rows x 16 columns of accumulators per key, key blocks of 32 so the V rows stay in L1 while
 * every row block passes over them. A row's score of key j is always the same in-order fma
 * chain over d in lane j % 8, its weights the same lanes, and its o[c] the same fma chain over
 * its keys in order, whatever the tile, its slot and the other rows' key counts. */
#include "tensor/x86/wblock.h"

#include <math.h>

INLINE float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Scores of the NR rows q[0..NR) against NV * 8 keys of a transposed K block (kt: element d
 * of the first key at kt[d * blk]), times scale, into s[g][0..NV * 8). */
INLINE void scores_tile(const float *const *q, const int NR, const float *kt, int blk, int hd,
                        __m256 scale, float *const *s, const int NV, const char *pf,
                        const char *pfv) {
    __m256 acc[3][4];
#pragma GCC unroll 3
    for (int g = 0; g < NR; g++)
#pragma GCC unroll 4
        for (int i = 0; i < NV; i++) acc[g][i] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++, kt += blk) {
        if (pf) { /* 128 bytes per d: a 32-key block of K (or V) over the loop */
            _mm_prefetch(pf + 128 * (size_t)d, _MM_HINT_T0);
            _mm_prefetch(pf + 128 * (size_t)d + 64, _MM_HINT_T0);
        }
        if (pfv) {
            _mm_prefetch(pfv + 128 * (size_t)d, _MM_HINT_T1);
            _mm_prefetch(pfv + 128 * (size_t)d + 64, _MM_HINT_T1);
        }
        __m256 kv[4];
#pragma GCC unroll 4
        for (int i = 0; i < NV; i++) kv[i] = _mm256_loadu_ps(kt + 8 * i);
#pragma GCC unroll 3
        for (int g = 0; g < NR; g++) {
            const __m256 qb = _mm256_broadcast_ss(q[g] + d);
#pragma GCC unroll 4
            for (int i = 0; i < NV; i++) acc[g][i] = _mm256_fmadd_ps(qb, kv[i], acc[g][i]);
        }
    }
#pragma GCC unroll 3
    for (int g = 0; g < NR; g++)
#pragma GCC unroll 4
        for (int i = 0; i < NV; i++)
            _mm256_storeu_ps(s[g] + 8 * i, _mm256_mul_ps(acc[g][i], scale));
}

/* NV (1..4) as a constant for scores_tile. pf, pfv: memory prefetched over the d loop, into
 * L1 and L2 (hd * 128 bytes each: a head's K or V of one 32-key block), or NULL. Decode streams
 * the cache from DRAM: a burst of prefetches at the block's start measured no faster, spread
 * over the loop they overlap the next block's reads with this one's fmas. */
INLINE void scores_rows(const float *const *q, const int NR, const float *kt, int blk, int hd,
                        __m256 scale, float *const *s, int nv, const char *pf,
                        const char *pfv) {
    switch (nv) {
    case 4: scores_tile(q, NR, kt, blk, hd, scale, s, 4, pf, pfv); break;
    case 3: scores_tile(q, NR, kt, blk, hd, scale, s, 3, pf, pfv); break;
    case 2: scores_tile(q, NR, kt, blk, hd, scale, s, 2, pf, pfv); break;
    default: scores_tile(q, NR, kt, blk, hd, scale, s, 1, pf, pfv); break;
    }
}

/* Scores of rows [r, r + NR) against nv vectors of keys from key j (kt), into their rows of
 * a->s (NR a constant: the row pointers stay in registers). */
INLINE void scores_group(const bm_att_chunk *a, const float *const *qp, int r, const int NR,
                         int j, const float *kt, int nv, __m256 scale, const char *pf,
                         const char *pfv) {
    const float *q[3];
    float *s[3];
#pragma GCC unroll 3
    for (int g = 0; g < NR; g++) {
        q[g] = qp[r + g];
        s[g] = a->s + (size_t)(r + g) * BM_ATT_CHUNK + j;
    }
    scores_rows(q, NR, kt, a->blk, a->hd, scale, s, nv, pf, pfv);
}

#define PV_KEYS 32 /* keys per V pass: 32 rows of hd floats stay in L1 */

/* o[r][c0..c0+16) (+)= sum_j p[r][j] v_j[c0..c0+16) for rows r0..r0+NR-1 over their keys in
 * [jb, je) (row r stops at its n_key), keys in order; first: start from 0, else from o. Keys
 * j + PV_KEYS below pf_end: their 16 columns are prefetched (pf_end 0: none). */
INLINE void pv_block(const bm_att_chunk *a, const float *const *vr, const int *nkr, int r0,
                     int NR, int c0, int jb, int je, bool first, int pf_end) {
    __m256 acc[6][2];
    int lim[6], jmin = je, jmax = jb;
#pragma GCC unroll 6
    for (int g = 0; g < NR; g++) {
        float *o = a->o + (size_t)(r0 + g) * a->hd + c0;
        acc[g][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(o);
        acc[g][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(o + 8);
        int nk = nkr[r0 + g];
        lim[g] = nk < jb ? jb : nk > je ? je : nk;
        if (lim[g] < jmin) jmin = lim[g];
        if (lim[g] > jmax) jmax = lim[g];
    }
    const float *p = a->s + (size_t)r0 * BM_ATT_CHUNK;
    for (int j = jb; j < jmin; j++) {
        const float *v = vr[j] + c0;
        if (j + PV_KEYS < pf_end) /* the same columns of the next key block's V rows */
            _mm_prefetch((const char *)(vr[j + PV_KEYS] + c0), _MM_HINT_T0);
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

void bm_att_chunk_avx2(const bm_att_chunk *a) {
    const int hd = a->hd, R = a->n_tok * a->G;
    /* V in 16-column steps, K in 8-key vectors, rows in stack arrays */
    if (hd % 16 || a->blk % 8 || R > BM_ATT_ROWS_MAX) {
        bm_att_chunk_ref(a);
        return;
    }
    const float *qp[BM_ATT_ROWS_MAX];
    int nkr[BM_ATT_ROWS_MAX];
    bm_att_rows(a, qp, nkr);
    int nk_max = 0;
    for (int t = 0; t < a->n_tok; t++)
        if (a->n_key[t] > nk_max) nk_max = a->n_key[t];
    const __m256 scale = _mm256_set1_ps(a->scale);
    /* scores: each block's keys in groups of up to 32 (whole 8-key vectors; lanes past nk_max
     * read the block's unused slots and are overwritten below), rows in threes */
    for (int j0 = 0; j0 < nk_max; j0 += a->blk) {
        const float *kt0 = a->kb[j0 / a->blk];
        const int nkb = nk_max - j0 < a->blk ? nk_max - j0 : a->blk;
        /* decode (one token: its cache comes from DRAM) prefetches the next K block and this
         * block's V (to L2, for P V); a prefill tile's rows reuse both from the caches */
        const bool dec = a->n_tok == 1;
        const char *pf = dec && j0 + a->blk < nk_max ? (const char *)a->kb[j0 / a->blk + 1] : NULL;
        const char *pfv = dec && a->ld == hd ? (const char *)a->vb[j0 / a->blk] : NULL;
        for (int u0 = 0; u0 < nkb; u0 += 32) {
            const int nv = (nkb - u0 + 7) / 8 < 4 ? (nkb - u0 + 7) / 8 : 4, j = j0 + u0;
            const float *kt = kt0 + u0;
            for (int r = 0; r < R; r += 3) {
                const int nr = R - r < 3 ? R - r : 3;
                bool any = false;
                for (int g = 0; g < nr; g++) any |= nkr[r + g] > j;
                if (!any) continue;
                switch (nr) { /* the last group may be short (a pair: decode with G 2) */
                case 3: scores_group(a, qp, r, 3, j, kt, nv, scale, pf, pfv); break;
                case 2: scores_group(a, qp, r, 2, j, kt, nv, scale, pf, pfv); break;
                default: scores_group(a, qp, r, 1, j, kt, nv, scale, pf, pfv); break;
                }
                pf = pfv = NULL; /* once per block */
            }
        }
    }
    /* per row: max, p = exp(s - max) (slots past n_key set to 0), l = sum p */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int r = 0; r < R; r++) {
        const int nk = nkr[r], n8 = (nk + 7) & ~7;
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
    for (int b = 0, j = 0; j < nk_max; b++) /* no division per key */
        for (int i = 0; i < a->blk && j < nk_max; i++, j++) vr[j] = a->vb[b] + (int64_t)i * a->ld;
    for (int jb = 0; jb < nk_max; jb += PV_KEYS) {
        const int je = jb + PV_KEYS < nk_max ? jb + PV_KEYS : nk_max;
        for (int c0 = 0; c0 < hd; c0 += 16) {
            /* decode: the first row block prefetches the next key block's columns */
            const int pf_end = a->n_tok > 1 ? 0 : nk_max;
            int r0 = 0;
            for (; r0 + 6 <= R; r0 += 6)
                pv_block(a, vr, nkr, r0, 6, c0, jb, je, jb == 0, r0 ? 0 : pf_end);
            const int pe = r0 ? 0 : pf_end;
            switch (R - r0) {
            case 5: pv_block(a, vr, nkr, r0, 5, c0, jb, je, jb == 0, pe); break;
            case 4: pv_block(a, vr, nkr, r0, 4, c0, jb, je, jb == 0, pe); break;
            case 3: pv_block(a, vr, nkr, r0, 3, c0, jb, je, jb == 0, pe); break;
            case 2: pv_block(a, vr, nkr, r0, 2, c0, jb, je, jb == 0, pe); break;
            case 1: pv_block(a, vr, nkr, r0, 1, c0, jb, je, jb == 0, pe); break;
            default: break;
            }
        }
    }
}
