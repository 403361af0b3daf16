/* Scalar reference of the attention chunk kernel (contract in tensor/kernels.h): in-order dot
 * products and sums over the chunk's keys, expf, a double sum of the weights. The SIMD variants
 * (src/tensor/x86/att_*.c) are tested against a double-precision attention, not against this. */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

static inline const float *row(const bm_att_chunk *a, const float *const *blk, int j) {
    return blk[j / a->blk] + (int64_t)(j % a->blk) * a->ld;
}

void bm_att_chunk_ref(const bm_att_chunk *a) {
    for (int g = 0; g < a->G; g++) {
        const float *q = a->q + (size_t)g * a->hd;
        float *s = a->s + (size_t)g * BM_ATT_CHUNK, *o = a->o + (size_t)g * a->hd;
        for (int j = 0; j < a->n_key; j++)
            s[j] = bm_dot_f32_ref(q, row(a, a->kb, j), a->hd) * a->scale;
        float mx = s[0];
        for (int j = 1; j < a->n_key; j++)
            if (s[j] > mx) mx = s[j];
        double sum = 0.0;
        for (int j = 0; j < a->n_key; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        memset(o, 0, (size_t)a->hd * sizeof(float));
        for (int j = 0; j < a->n_key; j++) bm_axpy_f32_ref(s[j], row(a, a->vb, j), o, a->hd);
        a->m[g] = mx;
        a->l[g] = (float)sum;
    }
}
