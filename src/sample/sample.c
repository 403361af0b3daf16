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
    int32_t *count; /* [n_vocab], all zero between calls */
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
    s->count = s->c ? bm_calloc((size_t)n_vocab, sizeof *s->count, err) : NULL;
    if (!s->count) {
        free(s->c);
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
    free(s->count);
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

/* Softmax, min-p, top-p and one draw over c[0..n), sorted by value, most likely first. */
static int32_t draw(bm_sampler *s, cand *c, int32_t n) {
    const bm_sample_params *p = &s->p;
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

int32_t bm_sampler_sample(bm_sampler *s, const float *logits) {
    const bm_sample_params *p = &s->p;
    int32_t n = s->n_vocab;
    if (p->temperature <= 0) return bm_argmax(logits, n);
    cand *c = s->c;
    for (int32_t i = 0; i < n; i++) c[i] = (cand){i, logits[i] / p->temperature};
    int32_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    top_k_sorted(c, n, k);
    return draw(s, c, k);
}

int32_t bm_sampler_sample_masked(bm_sampler *s, const float *logits, bm_token_ok accept,
                                 void *user) {
    const bm_sample_params *p = &s->p;
    int32_t n = s->n_vocab;
    bool greedy = p->temperature <= 0;
    float inv_t = greedy ? 1.0f : 1.0f / p->temperature;
    int32_t lim = !greedy && p->top_k > 0 && p->top_k < n ? p->top_k : n;
    int32_t k = greedy ? 16 : 256;
    cand *c = s->c;
    for (;;) {
        if (k > lim) k = lim;
        for (int32_t i = 0; i < n; i++) c[i] = (cand){i, logits[i] * inv_t};
        top_k_sorted(c, n, k);
        int32_t m = 0;
        for (int32_t i = 0; i < k; i++) {
            if (!accept(user, c[i].id)) continue;
            if (greedy) return c[i].id;
            c[m++] = c[i];
        }
        if (m > 0) return draw(s, c, m);
        if (k == lim) {
            if (lim == n) return -1;
            lim = n; /* nothing acceptable inside top_k: widen to the whole vocabulary */
        }
        k = k > n / 8 ? n : k * 8;
    }
}

void bm_sampler_penalize(bm_sampler *s, float *logits, const int32_t *recent, size_t n_recent,
                         float repeat_penalty, const int32_t *gen, size_t n_gen, float presence,
                         float frequency) {
    int32_t nv = s->n_vocab, *cnt = s->count;
    if (repeat_penalty != 1.0f && repeat_penalty > 0) {
        for (size_t i = 0; i < n_recent; i++) {
            int32_t t = recent[i];
            if (t < 0 || t >= nv || cnt[t]++) continue;
            logits[t] = logits[t] > 0 ? logits[t] / repeat_penalty : logits[t] * repeat_penalty;
        }
        for (size_t i = 0; i < n_recent; i++)
            if (recent[i] >= 0 && recent[i] < nv) cnt[recent[i]] = 0;
    }
    if (presence != 0 || frequency != 0) {
        for (size_t i = 0; i < n_gen; i++)
            if (gen[i] >= 0 && gen[i] < nv) cnt[gen[i]]++;
        for (size_t i = 0; i < n_gen; i++) {
            int32_t t = gen[i];
            if (t < 0 || t >= nv || !cnt[t]) continue;
            logits[t] -= (float)cnt[t] * frequency + presence;
            cnt[t] = 0;
        }
    }
}

void bm_logits_add_bias(float *logits, int32_t n_vocab, const int32_t *ids, const float *vals,
                        size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < n_vocab) logits[ids[i]] += vals[i];
}

void bm_logprobs(const float *logits, int32_t n, int32_t id, float *lp_id, int32_t k,
                 int32_t *top_ids, float *top_lps) {
    float mx = logits[bm_argmax(logits, n)];
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    float lse = mx + (float)log(sum);
    if (lp_id) *lp_id = logits[id] - lse;
    if (k > 64) k = 64;
    if (k > n) k = n;
    int32_t m = 0; /* insertion into a sorted list of at most k */
    for (int32_t i = 0; i < n && k > 0; i++) {
        float v = logits[i];
        if (m == k && v <= top_lps[m - 1]) continue;
        int32_t j = m < k ? m++ : k - 1;
        while (j > 0 && top_lps[j - 1] < v) {
            top_lps[j] = top_lps[j - 1];
            top_ids[j] = top_ids[j - 1];
            j--;
        }
        top_lps[j] = v;
        top_ids[j] = i;
    }
    for (int32_t i = 0; i < m; i++) top_lps[i] -= lse;
}
