/* Scalar reference kernels: the specification every SIMD variant is tested against.
 * Plain C11, obviously correct, no allocation. Accumulation in double where a long sum
 * would otherwise lose precision that a fast kernel keeps (dot products use float with
 * pairwise-friendly ordering only where noted). */
#include "baimo/tensor.h"

#include <math.h>
#include <string.h>

void bm_k_matmul_ref(const void *w, bm_dtype wt, size_t row_bytes, int64_t n_in, int64_t r0,
                     int64_t r1, const float *x, int64_t n_tok, float *y, int64_t ldy,
                     float *scratch) {
    const bm_type_traits *tt = bm_type_traits_get((int)wt);
    BM_ASSERT(tt && tt->to_f32);
    for (int64_t r = r0; r < r1; r++) {
        const float *wr;
        if (wt == BM_F32 && ((uintptr_t)((const uint8_t *)w + (size_t)r * row_bytes) & 3) == 0) {
            wr = (const float *)((const uint8_t *)w + (size_t)r * row_bytes);
        } else {
            tt->to_f32((const uint8_t *)w + (size_t)r * row_bytes, scratch, n_in);
            wr = scratch;
        }
        for (int64_t t = 0; t < n_tok; t++) {
            const float *xt = x + t * n_in;
            float acc = 0.0f;
            for (int64_t k = 0; k < n_in; k++) acc += wr[k] * xt[k];
            y[t * ldy + r] = acc;
        }
    }
}

void bm_k_rmsnorm_ref(const float *x, const float *w, float *y, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float s = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s * (w ? w[i] : 1.0f);
}

void bm_k_softmax_ref(float *x, int64_t n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void bm_k_swiglu_ref(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = g[i];
        y[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

void bm_k_rope_ref(float *x, int64_t n_rot, bool neox, const float *cs) {
    int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}

/* YaRN correction range: the dimension at which a wavelength spans n_ctx_orig/beta turns. */
static float yarn_corr_dim(int n_rot, int n_ctx_orig, float beta, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (beta * 2.0f * (float)M_PI)) /
           (2.0f * logf(base));
}

void bm_rope_cache_ref(const bm_rope_params *p, int64_t pos, float *cs) {
    int half = p->n_rot / 2;
    float lo = 0, hi = 0, mscale = p->attn_factor > 0 ? p->attn_factor : 1.0f;
    if (p->ext_factor != 0.0f) {
        lo = floorf(yarn_corr_dim(p->n_rot, p->n_ctx_orig, p->beta_fast, p->base));
        hi = ceilf(yarn_corr_dim(p->n_rot, p->n_ctx_orig, p->beta_slow, p->base));
        if (lo < 0) lo = 0;
        if (hi > p->n_rot - 1) hi = (float)(p->n_rot - 1);
        mscale *= 1.0f + 0.1f * logf(1.0f / p->freq_scale);
    }
    for (int i = 0; i < half; i++) {
        double inv_freq = pow((double)p->base, -2.0 * i / (double)p->n_rot);
        if (p->freq_factors) inv_freq /= p->freq_factors[i];
        double extrap = (double)pos * inv_freq;
        double interp = extrap * p->freq_scale;
        double theta = interp;
        if (p->ext_factor != 0.0f) {
            float y = ((float)i - lo) / fmaxf(0.001f, hi - lo);
            float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * p->ext_factor;
            theta = interp * (1.0 - ramp) + extrap * ramp;
        }
        cs[2 * i] = (float)cos(theta) * mscale;
        cs[2 * i + 1] = (float)sin(theta) * mscale;
    }
}
