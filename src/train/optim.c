/* Optimizer pieces: AdamW with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm
 * 2), global-norm gradient clipping (Pascanu et al. 2013) and the learning-rate schedule
 * (linear warmup, then cosine decay to a floor; Loshchilov & Hutter 2017). Element-wise
 * updates run on the pool; the norm sums fixed chunks in a fixed order (thread-independent). */
#include "train/train_int.h"

#include <math.h>

typedef struct adam_task {
    float *p, *g, *m, *v;
    const bm_tmodel *model;
    float lr, b1, b2, eps, wd, c1, c2;
} adam_task;

static void adam_run(void *ctx, int ith, int nth) {
    const adam_task *a = ctx;
    int64_t lo, hi;
    bm_split_range(a->model->n_t, ith, nth, &lo, &hi);
    for (int64_t ti = lo; ti < hi; ti++) {
        const bm_tparam *t = &a->model->t[ti];
        float wd = t->decay ? a->wd : 0.0f;
        for (size_t i = t->offset; i < t->offset + t->n; i++) {
            float g = a->g[i];
            a->m[i] = a->b1 * a->m[i] + (1.0f - a->b1) * g;
            a->v[i] = a->b2 * a->v[i] + (1.0f - a->b2) * g * g;
            float mh = a->m[i] / a->c1, vh = a->v[i] / a->c2;
            a->p[i] -= a->lr * (mh / (sqrtf(vh) + a->eps) + wd * a->p[i]);
        }
    }
}

void bm_adamw_update(bm_tmodel *model, float *m, float *v, int64_t *step,
                     const bm_adamw_params *p, float lr) {
    int64_t t = ++*step;
    adam_task a = {model->params, model->grads, m, v, model, lr, p->beta1, p->beta2, p->eps,
                   p->weight_decay, (float)(1.0 - pow(p->beta1, (double)t)),
                   (float)(1.0 - pow(p->beta2, (double)t))};
    /* one task per tensor keeps the work split independent of the thread count */
    bm_pool_run(model->pool, adam_run, &a, model->pool ? bm_pool_n_threads(model->pool) : 1);
}

enum { NORM_CHUNKS = 64 };

typedef struct norm_task {
    const float *g;
    size_t n;
    double part[NORM_CHUNKS];
    float scale;
} norm_task;

static void norm_run(void *ctx, int ith, int nth) {
    norm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range((int64_t)t->n, ith, nth, &lo, &hi);
    double s = 0;
    for (int64_t i = lo; i < hi; i++) s += (double)t->g[i] * t->g[i];
    t->part[ith] = s;
}

static void scale_run(void *ctx, int ith, int nth) {
    norm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range((int64_t)t->n, ith, nth, &lo, &hi);
    float *g = (float *)t->g;
    for (int64_t i = lo; i < hi; i++) g[i] *= t->scale;
}

double bm_grad_clip(bm_tmodel *m, double max_norm) {
    norm_task t = {.g = m->grads, .n = m->n_floats};
    bm_pool_run(m->pool, norm_run, &t, NORM_CHUNKS);
    double s = 0;
    for (int i = 0; i < NORM_CHUNKS; i++) s += t.part[i];
    double norm = sqrt(s);
    if (max_norm > 0 && norm > max_norm) {
        t.scale = (float)(max_norm / norm);
        bm_pool_run(m->pool, scale_run, &t, NORM_CHUNKS);
    }
    return norm;
}

float bm_lr_at(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr) {
    if (warmup > 0 && step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup) return lr;
    double prog = (double)(step - warmup) / (double)(total - warmup);
    if (prog > 1) prog = 1;
    return min_lr + (float)(0.5 * (1.0 + cos(M_PI * prog))) * (lr - min_lr);
}
