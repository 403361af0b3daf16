/* Samplers: candidates are (id, logit) pairs; filters narrow them (top-k by partial sort,
 * then softmax, top-p cumulative cut, min-p relative cut), then one draw from the seeded RNG. */
#include "baimo/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    int32_t id;
    float v;
} cand;

struct bm_sampler {
    int32_t n_vocab;
    bm_sample_params p;
    bm_rng rng;
    cand *c;
};

bm_sample_params bm_sample_defaults(void) {
    return (bm_sample_params){0.8f, 40, 0.95f, 0.05f, 0};
}

bm_status bm_sample_params_check(const bm_sample_params *p, bm_err *err) {
    if (!(p->temperature >= 0 && p->temperature <= 100))
        return bm_err_set(err, BM_EINVAL, "temperature must be in [0, 100], got %g",
                          (double)p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return bm_err_set(err, BM_EINVAL, "top_p must be in (0, 1], got %g", (double)p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return bm_err_set(err, BM_EINVAL, "min_p must be in [0, 1], got %g", (double)p->min_p);
    if (p->top_k < 0) return bm_err_set(err, BM_EINVAL, "top_k must be >= 0, got %d", p->top_k);
    return BM_OK;
}

bm_status bm_sampler_new(int32_t n_vocab, const bm_sample_params *p, bm_sampler **out,
                         bm_err *err) {
    *out = NULL;
    bm_status st = bm_sample_params_check(p, err);
    if (st) return st;
    if (n_vocab <= 0) return bm_err_set(err, BM_EINVAL, "sampler: vocabulary of %d", n_vocab);
    bm_sampler *s = bm_calloc(1, sizeof *s, err);
    if (!s) return BM_ENOMEM;
    s->c = bm_calloc((size_t)n_vocab, sizeof *s->c, err);
    if (!s->c) {
        free(s);
        return BM_ENOMEM;
    }
    s->n_vocab = n_vocab;
    s->p = *p;
    bm_rng_seed(&s->rng, p->seed);
    *out = s;
    return BM_OK;
}

void bm_sampler_free(bm_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s);
}

int32_t bm_argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->v, y = ((const cand *)b)->v;
    if (x != y) return x < y ? 1 : -1;
    return ((const cand *)a)->id - ((const cand *)b)->id;
}

/* Moves the k largest to the front (unordered) by quickselect, then sorts those k. */
static void top_k_sorted(cand *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = c[(lo + hi) / 2].v;
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (c[i].v > pivot) i++;
            while (c[j].v < pivot) j--;
            if (i <= j) {
                cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
    qsort(c, (size_t)k, sizeof *c, cmp_desc);
}

int32_t bm_sampler_sample(bm_sampler *s, const float *logits) {
    const bm_sample_params *p = &s->p;
    int32_t n = s->n_vocab;
    if (p->temperature <= 0) return bm_argmax(logits, n);
    cand *c = s->c;
    for (int32_t i = 0; i < n; i++) c[i] = (cand){i, logits[i] / p->temperature};
    int32_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    top_k_sorted(c, n, k);
    n = k;
    double sum = 0;
    float mx = c[0].v;
    for (int32_t i = 0; i < n; i++) {
        c[i].v = expf(c[i].v - mx);
        sum += c[i].v;
    }
    for (int32_t i = 0; i < n; i++) c[i].v = (float)(c[i].v / sum);
    if (p->min_p > 0) {
        float cut = c[0].v * p->min_p;
        int32_t m = 1;
        while (m < n && c[m].v >= cut) m++;
        n = m;
    }
    if (p->top_p < 1) {
        double cum = 0;
        int32_t m = 0;
        while (m < n) {
            cum += c[m].v;
            m++;
            if (cum >= p->top_p) break;
        }
        n = m;
    }
    double total = 0;
    for (int32_t i = 0; i < n; i++) total += c[i].v;
    double r = (double)bm_rng_f32(&s->rng) * total, acc = 0;
    for (int32_t i = 0; i < n; i++) {
        acc += c[i].v;
        if (r < acc) return c[i].id;
    }
    return c[n - 1].id;
}
