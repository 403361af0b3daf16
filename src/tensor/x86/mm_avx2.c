/* AVX2 + FMA + F16C kernels: activation quantization, float-weight matmul, attention helpers
 * and peak probes (the integer-dot kernels of the block formats are in mmk.h, built per level
 * by mmk_avx2.c). Every output element y[t, r] is computed by the same instruction sequence
 * whatever n_tok is (token tiles of 4 only share the weight loads; each element keeps its own
 * accumulators and the same final reduction), so results are batch invariant bitwise. Float
 * weights: 16 elements per step in two FMA accumulators, scalar tail. */
#include "tensor/x86/wblock.h"

#define NT 4 /* tokens per tile */

INLINE int32_t hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* ---- activation quantization (bitwise equal to bm_act_q8_ref) ---------------------------- */

void bm_act_q8_avx2(const float *x, int64_t n_in, int64_t t0, int64_t t1, const bm_mm_args *a,
                    bool u8) {
    const int64_t nb = n_in / BM_QK;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i flip = _mm256_set1_epi8(u8 ? (char)0x80 : 0);
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * n_in;
        uint8_t *q = (uint8_t *)a->xq + t * a->ldq;
        float *d = (float *)a->xd + t * a->ldd;
        int32_t *s = (int32_t *)a->xs + t * a->ldd;
        float *mx = (float *)a->xm + t * a->ldd;
        for (int64_t b = 0; b < nb; b++, xr += BM_QK, q += BM_QK) {
            __m256 v0 = _mm256_loadu_ps(xr), v1 = _mm256_loadu_ps(xr + 8);
            __m256 v2 = _mm256_loadu_ps(xr + 16), v3 = _mm256_loadu_ps(xr + 24);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0),
                                                   _mm256_andnot_ps(sign, v1)),
                                     _mm256_max_ps(_mm256_andnot_ps(sign, v2),
                                                   _mm256_andnot_ps(sign, v3)));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            const float amax = _mm_cvtss_f32(h);
            const float db = amax / 127.0f;
            const __m256 id = _mm256_set1_ps(db != 0.0f ? 1.0f / db : 0.0f);
            const int r = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
            __m256i q0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), r));
            __m256i q1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), r));
            __m256i q2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), r));
            __m256i q3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), r));
            s[b] = hsum8i(_mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3)));
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
            p = _mm256_permutevar8x32_epi32(p, perm);
            _mm256_storeu_si256((__m256i *)q, _mm256_xor_si256(p, flip));
            d[b] = db;
            mx[b] = db * (float)s[b];
        }
    }
}

/* ---- float kernels ------------------------------------------------------------------------ */

INLINE __m256 ld_f32(const uint8_t *w, int64_t k) { return _mm256_loadu_ps((const float *)w + k); }
INLINE float sc_f32(const uint8_t *w, int64_t k) {
    float f;
    memcpy(&f, w + 4 * k, 4);
    return f;
}
INLINE __m256 ld_f16(const uint8_t *w, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * k)));
}
INLINE float sc_f16(const uint8_t *w, int64_t k) { return load_f16(w + 2 * k); }
INLINE __m256 ld_bf16(const uint8_t *w, int64_t k) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
INLINE float sc_bf16(const uint8_t *w, int64_t k) {
    uint16_t h;
    memcpy(&h, w + 2 * k, 2);
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

#define F_KERNEL(T, LD, SC)                                                                    \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, int64_t t0, const int nt) {           \
        const uint8_t *wr = a->w + (size_t)r * a->row_bytes;                                   \
        const int64_t n = a->n_in;                                                             \
        __m256 acc0[NT], acc1[NT];                                                             \
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                                 \
            acc0[j] = _mm256_setzero_ps();                                                     \
            acc1[j] = _mm256_setzero_ps();                                                     \
        }                                                                                      \
        int64_t k = 0;                                                                         \
        for (; k + 16 <= n; k += 16) {                                                         \
            const __m256 w0 = LD(wr, k), w1 = LD(wr, k + 8);                                   \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                const float *x = a->x + (t0 + j) * n + k;                                      \
                acc0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), acc0[j]);                    \
                acc1[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), acc1[j]);                \
            }                                                                                  \
        }                                                                                      \
        if (k + 8 <= n) {                                                                      \
            const __m256 w0 = LD(wr, k);                                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc0[j] =                     \
                _mm256_fmadd_ps(w0, _mm256_loadu_ps(a->x + (t0 + j) * n + k), acc0[j]);        \
            k += 8;                                                                            \
        }                                                                                      \
        for (int j = 0; j < nt; j++) {                                                         \
            const float *x = a->x + (t0 + j) * n;                                              \
            float s = hsum8(_mm256_add_ps(acc0[j], acc1[j]));                                  \
            for (int64_t kk = k; kk < n; kk++) s += SC(wr, kk) * x[kk];                        \
            a->y[(t0 + j) * a->ldy + r] = s;                                                   \
        }                                                                                      \
    }                                                                                          \
    ROW_DRIVER(bm_mm_##T##_avx2, T##_tile)

F_KERNEL(f32, ld_f32, sc_f32)
F_KERNEL(f16, ld_f16, sc_f16)
F_KERNEL(bf16, ld_bf16, sc_bf16)

/* ---- attention helpers: 8 lanes x 2 accumulators, then a scalar tail ---------------------- */

float bm_dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    float d = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) d += a[i] * b[i];
    return d;
}

void bm_axpy_f32_avx2(float s, const float *x, float *y, int64_t n) {
    const __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(sv, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += s * x[i];
}

void bm_swiglu_avx2(const float *g, const float *u, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 e = exp8(_mm256_xor_ps(v, sign));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)),
                                              _mm256_loadu_ps(u + i)));
    }
    if (i < n) bm_k_swiglu_ref(g + i, u + i, y + i, n - i);
}

/* ---- peak probes (benchmarks): independent chains, no memory traffic --------------------- */

/* 12 chains (enough to cover a 4-cycle latency at 2 per cycle, and 12 accumulators + 2
 * constants fit the 16 ymm registers). The empty asm names every accumulator as read and
 * written each round so none is folded or hoisted. Return ops (a multiply-add counts 2). */
#define PROBE_CHAINS 12
#define PROBE_KEEP(a)                                                                          \
    __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]),         \
                     "+x"(a[5]), "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]),  \
                     "+x"(a[11]))

double bm_probe_fma_avx2(int64_t iters) {
    __m256 a[PROBE_CHAINS];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] =
            _mm256_fmadd_ps(a[i], m, c);
        PROBE_KEEP(a);
    }
    __m256 s = a[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < PROBE_CHAINS; i++) s = _mm256_add_ps(s, a[i]);
    volatile float sink = hsum8(s);
    (void)sink;
    return (double)iters * PROBE_CHAINS * 8 * 2;
}

/* The int8 step of the AVX2 kernels: vpmaddubsw (32 u8 x s8 products, pairwise summed) then
 * vpmaddwd by ones and an add. The unsigned operand is the chain's own accumulator, so the
 * products depend on the previous round and cannot be hoisted out of the loop or shared
 * between chains (they were, with constant operands, in an earlier version). */
double bm_probe_int8_avx2(int64_t iters) {
    __m256i a[PROBE_CHAINS];
    const __m256i v = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm256_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < PROBE_CHAINS; i++) a[i] = _mm256_add_epi32(
            a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a[i], v), ones));
        PROBE_KEEP(a);
    }
    __m256i s = a[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < PROBE_CHAINS; i++) s = _mm256_add_epi32(s, a[i]);
    volatile int32_t sink = hsum8i(s);
    (void)sink;
    return (double)iters * PROBE_CHAINS * 32 * 2;
}
