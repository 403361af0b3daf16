/* AVX2 RMS norm: the sum of squares in double (as the scalar reference) over 4 x 4 lanes of
 * independent accumulators instead of one serial chain, then the same float scaling. Differs
 * from bm_k_rmsnorm_ref only by the order of the double sum. */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>

void bm_rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        const __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        const __m256d c = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8));
        const __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
        s2 = _mm256_fmadd_pd(c, c, s2);
        s3 = _mm256_fmadd_pd(d, d, s3);
    }
    s0 = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
    double v[4];
    _mm256_storeu_pd(v, s0);
    double ss = (v[0] + v[1]) + (v[2] + v[3]);
    for (; i < n; i++) ss += (double)x[i] * x[i];
    const float s = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const __m256 vs = _mm256_set1_ps(s);
    i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (w) t = _mm256_mul_ps(t, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, t);
    }
    for (; i < n; i++) y[i] = x[i] * s * (w ? w[i] : 1.0f);
}
