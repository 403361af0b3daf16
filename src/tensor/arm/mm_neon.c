/* Baseline AArch64 (Advanced SIMD) kernels of the neon and dotprod levels: activation
 * quantization (bitwise equal to bm_act_q8_ref), F32/F16 weight matmul with f32 activations,
 * and the attention / norm helpers. Matmul tiles are nr rows x nt tokens (nr * nt <= 4) and
 * every output element keeps its own accumulators and one fixed instruction sequence whatever
 * the tile, so results are batch invariant bitwise. Float weights: 8 elements per step in two
 * 4-lane FMA accumulators, then one 4-step, a lane sum and a scalar tail. */
#include "tensor/arm/neon.h"
#include "tensor/tile_driver.h"

#include <math.h>

/* ---- activation quantization ----------------------------------------------------------------
 * amax with fmaxnm (NaN ignored, as fmaxf), d = amax / 127, codes = fcvtns(x * (1/d)): round to
 * nearest even, as nearbyintf in the default rounding mode; every float step is the
 * reference's own operation, so codes, scales and sums are bitwise equal. */
void bm_act_q8_neon(const float *x, int64_t n_in, int64_t t0, int64_t t1, const bm_mm_args *a,
                    bool u8) {
    const int64_t nb = n_in / BM_QK;
    const uint8x16_t flip = vdupq_n_u8(u8 ? 0x80 : 0);
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * n_in;
        uint8_t *q = (uint8_t *)a->xq + t * a->ldq;
        float *d = (float *)a->xd + t * a->ldd;
        int32_t *s = (int32_t *)a->xs + t * a->ldd;
        float *mx = (float *)a->xm + t * a->ldd;
        for (int64_t b = 0; b < nb; b++, xr += BM_QK, q += BM_QK) {
            float32x4_t v[8];
            float32x4_t m = vdupq_n_f32(0.0f);
            for (int i = 0; i < 8; i++) {
                v[i] = vld1q_f32(xr + 4 * i);
                m = vmaxnmq_f32(m, vabsq_f32(v[i]));
            }
            const float amax = vmaxnmvq_f32(m);
            const float db = amax / 127.0f;
            const float32x4_t id = vdupq_n_f32(db != 0.0f ? 1.0f / db : 0.0f);
            int32x4_t c[8], sum = vdupq_n_s32(0);
            for (int i = 0; i < 8; i++) {
                c[i] = vcvtnq_s32_f32(vmulq_f32(v[i], id));
                sum = vaddq_s32(sum, c[i]);
            }
            int8x16_t p[2];
            for (int h = 0; h < 2; h++) {
                const int16x8_t lo = vcombine_s16(vqmovn_s32(c[4 * h]), vqmovn_s32(c[4 * h + 1]));
                const int16x8_t hi =
                    vcombine_s16(vqmovn_s32(c[4 * h + 2]), vqmovn_s32(c[4 * h + 3]));
                p[h] = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
            }
            vst1q_u8(q, veorq_u8(vreinterpretq_u8_s8(p[0]), flip));
            vst1q_u8(q + 16, veorq_u8(vreinterpretq_u8_s8(p[1]), flip));
            d[b] = db;
            s[b] = vaddvq_s32(sum);
            mx[b] = db * (float)s[b];
        }
    }
}

/* ---- float-weight matmul ------------------------------------------------------------------- */

#define NT BM_TILE_NT
#define KNR BM_TILE_NR

#define F_KERNEL(T, LD, SC, ES)                                                                    \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t n = a->n_in;                                                                 \
        float32x4_t acc0[4], acc1[4];                                                              \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) {                                \
            acc0[j] = vdupq_n_f32(0.0f);                                                           \
            acc1[j] = vdupq_n_f32(0.0f);                                                           \
        }                                                                                          \
        int64_t k = 0;                                                                             \
        for (; k + 8 <= n; k += 8) {                                                               \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *wr = a->w + (size_t)(r + i) * a->row_bytes + k * (ES);              \
                const float32x4_t w0 = LD(wr), w1 = LD(wr + 4 * (ES));                             \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                    const float *x = a->x + (t0 + j) * n + k;                                      \
                    acc0[i * nt + j] = vfmaq_f32(acc0[i * nt + j], w0, vld1q_f32(x));              \
                    acc1[i * nt + j] = vfmaq_f32(acc1[i * nt + j], w1, vld1q_f32(x + 4));          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        if (k + 4 <= n) {                                                                          \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const float32x4_t w0 = LD(a->w + (size_t)(r + i) * a->row_bytes + k * (ES));       \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc0[i * nt + j] =            \
                    vfmaq_f32(acc0[i * nt + j], w0, vld1q_f32(a->x + (t0 + j) * n + k));           \
            }                                                                                      \
            k += 4;                                                                                \
        }                                                                                          \
        for (int i = 0; i < nr; i++) {                                                             \
            const uint8_t *wr = a->w + (size_t)(r + i) * a->row_bytes;                             \
            for (int j = 0; j < nt; j++) {                                                         \
                const float *x = a->x + (t0 + j) * n;                                              \
                float s = vaddvq_f32(vaddq_f32(acc0[i * nt + j], acc1[i * nt + j]));               \
                for (int64_t kk = k; kk < n; kk++) s += SC(wr + kk * (ES)) * x[kk];                \
                a->y[(t0 + j) * a->ldy + r + i] = s;                                               \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    BM_TILE_DRIVER(bm_mm_##T##_neon, T##_tile)

F_KERNEL(f32, ld4_f32, f32_at, 4)
F_KERNEL(f16, ld4_f16, f16_at, 2)

/* ---- attention and norm helpers ------------------------------------------------------------ */

float bm_dot_f32_neon(const float *a, const float *b, int64_t n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    if (i + 4 <= n) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        i += 4;
    }
    float d = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) d += a[i] * b[i];
    return d;
}

void bm_axpy_f32_neon(float s, const float *x, float *y, int64_t n) {
    const float32x4_t sv = vdupq_n_f32(s);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), sv, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += s * x[i];
}

void bm_swiglu_neon(const float *g, const float *u, float *y, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(g + i);
        const float32x4_t e = exp4(vnegq_f32(v));
        vst1q_f32(y + i, vmulq_f32(vdivq_f32(v, vaddq_f32(one, e)), vld1q_f32(u + i)));
    }
    if (i < n) bm_k_swiglu_ref(g + i, u + i, y + i, n - i);
}

/* As bm_k_rmsnorm_ref: squares summed in double (two 2-lane chains, then in order for the
 * tail), the scale rounded to float once, y = x * s * w in float as the reference does. */
void bm_rmsnorm_neon(const float *x, const float *w, float *y, int64_t n, float eps) {
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, lo, lo);
        s1 = vfmaq_f64(s1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (int64_t k = i; k < n; k++) ss += (double)x[k] * x[k];
    const float s = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const float32x4_t sv = vdupq_n_f32(s);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_f32(vld1q_f32(x + i), sv);
        if (w) v = vmulq_f32(v, vld1q_f32(w + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++) y[i] = x[i] * s * (w ? w[i] : 1.0f);
}
