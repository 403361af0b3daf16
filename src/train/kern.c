/* Threaded f32 kernels of training: the three products of a linear layer (forward, gradient
 * of the input, gradient of the weight and bias) and causal attention with GQA forward and
 * backward. Each output element is owned by one thread and summed in a fixed order, so the
 * results are bitwise identical for any thread count (needed for exact --resume). Inner loops
 * use 4-wide vectors (GCC/Clang vector extensions, SSE baseline) (baseline ISA, no -march). */
#include "train/train_int.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* OpenBLAS runs single-threaded inside our pool's tasks: baimo owns the threads, and each
 * task's slice of the output is computed by one sgemm call whose summation order does not
 * depend on how the other slices are split. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_init(void) { openblas_set_num_threads(1); }

typedef float v4 __attribute__((vector_size(16)));

static inline v4 ld4(const float *p) {
    v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void st4(float *p, v4 v) { memcpy(p, &v, sizeof v); }

static inline float dot(const float *a, const float *b, int64_t n) {
    v4 s0 = {0}, s1 = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += ld4(a + i) * ld4(b + i);
        s1 += ld4(a + i + 4) * ld4(b + i + 4);
    }
    v4 s = s0 + s1;
    float r = (s[0] + s[2]) + (s[1] + s[3]);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static inline void axpy(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
    v4 av = {a, a, a, a};
    for (; i + 8 <= n; i += 8) {
        st4(y + i, ld4(y + i) + av * ld4(x + i));
        st4(y + i + 4, ld4(y + i + 4) + av * ld4(x + i + 4));
    }
    for (; i < n; i++) y[i] += a * x[i];
}

/* ---- linear layers ---------------------------------------------------------------------- */

typedef struct mm_task {
    const float *x, *W, *b, *dy;
    float *y, *dx, *dW, *db;
    int64_t N, in, out;
    bool acc;
} mm_task;


/* forward y = x W^T + b: threads own ranges of output columns, one sgemm per range */
static void mm_fwd_run(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range(t->out, ith, nth, &lo, &hi);
    if (lo >= hi || t->N == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t->N, (int)(hi - lo), (int)t->in,
                1.0f, t->x, (int)t->in, t->W + lo * t->in, (int)t->in, 0.0f, t->y + lo,
                (int)t->out);
    if (t->b)
        for (int64_t r = 0; r < t->N; r++)
            for (int64_t o = lo; o < hi; o++) t->y[r * t->out + o] += t->b[o];
}

void tk_mm_fwd(bm_pool *p, const float *x, const float *W, const float *b, int64_t N,
               int64_t in, int64_t out, float *y) {
    pthread_once(&blas_once, blas_init);
    mm_task t = {.x = x, .W = W, .b = b, .y = y, .N = N, .in = in, .out = out};
    bm_pool_run(p, mm_fwd_run, &t, p ? bm_pool_n_threads(p) : 1);
}

/* input gradient dx (+)= dy W: threads own ranges of token rows, one sgemm per range */
static void mm_bwd_x_run(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range(t->N, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(hi - lo), (int)t->in, (int)t->out,
                1.0f, t->dy + lo * t->out, (int)t->out, t->W, (int)t->in, t->acc ? 1.0f : 0.0f,
                t->dx + lo * t->in, (int)t->in);
}

void tk_mm_bwd_x(bm_pool *p, const float *dy, const float *W, int64_t N, int64_t in,
                 int64_t out, float *dx, bool acc) {
    pthread_once(&blas_once, blas_init);
    mm_task t = {.dy = dy, .W = W, .dx = dx, .N = N, .in = in, .out = out, .acc = acc};
    bm_pool_run(p, mm_bwd_x_run, &t, p ? bm_pool_n_threads(p) : 1);
}

/* weight gradient dW += dy^T x (and db += column sums of dy): threads own weight rows */
static void mm_bwd_w_run(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range(t->out, ith, nth, &lo, &hi);
    if (lo >= hi || t->N == 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), (int)t->in, (int)t->N,
                1.0f, t->dy + lo, (int)t->out, t->x, (int)t->in, 1.0f, t->dW + lo * t->in,
                (int)t->in);
    if (t->db)
        for (int64_t o = lo; o < hi; o++) {
            float s = 0;
            for (int64_t r = 0; r < t->N; r++) s += t->dy[r * t->out + o];
            t->db[o] += s;
        }
}

void tk_mm_bwd_w(bm_pool *p, const float *dy, const float *x, int64_t N, int64_t in,
                 int64_t out, float *dW, float *db) {
    pthread_once(&blas_once, blas_init);
    mm_task t = {.dy = dy, .x = x, .dW = dW, .db = db, .N = N, .in = in, .out = out};
    bm_pool_run(p, mm_bwd_w_run, &t, p ? bm_pool_n_threads(p) : 1);
}

/* ---- causal attention with GQA ------------------------------------------------------------
 * Forward per (sequence s, query head h, position t), kv head g = h / (H/K):
 *   a_j = q_t . k_j / sqrt(hd) for j <= t;  p = softmax(a);  o_t = sum_j p_j v_j
 * Backward, with do = dL/do_t:
 *   dp_j = do . v_j;  dv_j += p_j do;  da_j = p_j (dp_j - sum_i p_i dp_i)   (softmax Jacobian)
 *   dq_t = sum_j da_j k_j / sqrt(hd);  dk_j += da_j q_t / sqrt(hd)
 * Backward tasks own (s, g) so the K/V gradients of a group are summed by one thread. */

static void att_fwd_run(void *ctx, int ith, int nth) {
    const tk_att *a = ctx;
    const int64_t T = a->T, hd = a->hd, qd = (int64_t)a->n_head * hd,
                  kvd = (int64_t)a->n_head_kv * hd, grp = a->n_head / a->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hd);
    int64_t lo, hi;
    bm_split_range((int64_t)a->n_seq * a->n_head, ith, nth, &lo, &hi);
    for (int64_t w = lo; w < hi; w++) {
        int64_t s = w / a->n_head, h = w % a->n_head, g = h / grp;
        for (int64_t t = 0; t < T; t++) {
            const float *q = a->q + (s * T + t) * qd + h * hd;
            float *p = a->p + ((s * a->n_head + h) * T + t) * T;
            float mx = -INFINITY;
            for (int64_t j = 0; j <= t; j++) {
                p[j] = dot(q, a->k + (s * T + j) * kvd + g * hd, hd) * scale;
                if (p[j] > mx) mx = p[j];
            }
            float sum = 0;
            for (int64_t j = 0; j <= t; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            float inv = 1.0f / sum;
            float *o = a->o + (s * T + t) * qd + h * hd;
            memset(o, 0, (size_t)hd * 4);
            for (int64_t j = 0; j <= t; j++) {
                p[j] *= inv;
                axpy(o, p[j], a->v + (s * T + j) * kvd + g * hd, hd);
            }
        }
    }
}

void tk_att_fwd(bm_pool *p, tk_att *a) {
    bm_pool_run(p, att_fwd_run, a, p ? bm_pool_n_threads(p) : 1);
}

static void att_bwd_run(void *ctx, int ith, int nth) {
    const tk_att *a = ctx;
    const int64_t T = a->T, hd = a->hd, qd = (int64_t)a->n_head * hd,
                  kvd = (int64_t)a->n_head_kv * hd, grp = a->n_head / a->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hd);
    float *dp = a->scratch + (size_t)ith * (size_t)T;
    int64_t lo, hi;
    bm_split_range((int64_t)a->n_seq * a->n_head_kv, ith, nth, &lo, &hi);
    for (int64_t w = lo; w < hi; w++) {
        int64_t s = w / a->n_head_kv, g = w % a->n_head_kv;
        for (int64_t t = 0; t < T; t++) {
            memset(a->dk + (s * T + t) * kvd + g * hd, 0, (size_t)hd * 4);
            memset(a->dv + (s * T + t) * kvd + g * hd, 0, (size_t)hd * 4);
        }
        for (int64_t h = g * grp; h < (g + 1) * grp; h++) {
            for (int64_t t = 0; t < T; t++) {
                const float *p = a->p + ((s * a->n_head + h) * T + t) * T;
                const float *dout = a->dout + (s * T + t) * qd + h * hd;
                const float *q = a->q + (s * T + t) * qd + h * hd;
                float *dq = a->dq + (s * T + t) * qd + h * hd;
                float sum = 0;
                for (int64_t j = 0; j <= t; j++) {
                    dp[j] = dot(dout, a->v + (s * T + j) * kvd + g * hd, hd);
                    sum += p[j] * dp[j];
                    axpy(a->dv + (s * T + j) * kvd + g * hd, p[j], dout, hd);
                }
                memset(dq, 0, (size_t)hd * 4);
                for (int64_t j = 0; j <= t; j++) {
                    float da = p[j] * (dp[j] - sum) * scale;
                    axpy(dq, da, a->k + (s * T + j) * kvd + g * hd, hd);
                    axpy(a->dk + (s * T + j) * kvd + g * hd, da, q, hd);
                }
            }
        }
    }
}

void tk_att_bwd(bm_pool *p, tk_att *a) {
    bm_pool_run(p, att_bwd_run, a, p ? bm_pool_n_threads(p) : 1);
}
