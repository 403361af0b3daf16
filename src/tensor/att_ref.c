/* Scalar reference of the attention chunk kernel (contract in tensor/kernels.h): each query row
 * on its own, in-order dot products and sums over its keys, expf, a double sum of the weights.
 * The SIMD variants (src/tensor/x86/att_*.c) are tested against a double-precision attention,
 * not against this. */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

static inline const float *row(const bm_att_chunk *a, const float *const *blk, int j) {
    return blk[j / a->blk] + (int64_t)(j % a->blk) * a->ld;
}

void bm_att_chunk_ref(const bm_att_chunk *a) {
    for (int r = 0; r < a->n_tok * a->G; r++) {
        const int t = r / a->G, nk = a->n_key[t];
        const float *q = a->q + (size_t)t * a->ldq + (size_t)(r % a->G) * a->hd;
        float *s = a->s + (size_t)r * BM_ATT_CHUNK, *o = a->o + (size_t)r * a->hd;
        for (int j = 0; j < nk; j++) {
            const float *k = a->kb[j / a->blk] + j % a->blk;
            float d = 0.0f;
            for (int e = 0; e < a->hd; e++) d += q[e] * k[(size_t)e * a->blk];
            s[j] = d * a->scale;
        }
        float mx = s[0];
        for (int j = 1; j < nk; j++)
            if (s[j] > mx) mx = s[j];
        double sum = 0.0;
        for (int j = 0; j < nk; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        memset(o, 0, (size_t)a->hd * sizeof(float));
        for (int j = 0; j < nk; j++) bm_axpy_f32_ref(s[j], row(a, a->vb, j), o, a->hd);
        a->m[r] = mx;
        a->l[r] = (float)sum;
    }
}
