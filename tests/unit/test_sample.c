/* Sampling: penalties against their definitions (llama.cpp repetition, OpenAI presence and
 * frequency), logit_bias, log-probabilities against a direct log-softmax, masked greedy and
 * masked sampling respect the mask, and a seed reproduces its draws. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "baimo/sample.h"

static bm_sampler *mk(int32_t n, float temp, uint64_t seed) {
    bm_sample_params p = bm_sample_defaults();
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    p.seed = seed;
    bm_sampler *s = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_sampler_new(n, &p, &s, &err), BM_OK, "%s", err.msg);
    return s;
}

Test(sample, penalties) {
    float l[6] = {2, -2, 1, 0.5f, -1, 3};
    int32_t recent[4] = {0, 1, 1, 5};
    int32_t gen[4] = {2, 2, 3, 2};
    bm_sampler *s = mk(6, 0, 0);
    bm_sampler_penalize(s, l, recent, 4, 2.0f, gen, 4, 0.5f, 0.25f);
    /* repetition: distinct tokens 0, 1, 5 once each */
    cr_assert_float_eq(l[0], 1.0f, 1e-6);
    cr_assert_float_eq(l[1], -4.0f, 1e-6);
    cr_assert_float_eq(l[5], 1.5f, 1e-6);
    /* presence/frequency: token 2 three times, token 3 once */
    cr_assert_float_eq(l[2], 1 - 3 * 0.25f - 0.5f, 1e-6);
    cr_assert_float_eq(l[3], 0.5f - 0.25f - 0.5f, 1e-6);
    cr_assert_float_eq(l[4], -1.0f, 1e-6);
    /* the scratch is left clean: a second call with no history changes nothing */
    float m[6] = {1, 1, 1, 1, 1, 1};
    bm_sampler_penalize(s, m, NULL, 0, 2.0f, NULL, 0, 0.5f, 0.25f);
    for (int i = 0; i < 6; i++) cr_assert_eq(m[i], 1.0f);
    int32_t ids[2] = {4, 99};
    float vals[2] = {100, 5};
    bm_logits_add_bias(l, 6, ids, vals, 2);
    cr_assert_float_eq(l[4], 99.0f, 1e-6);
    cr_assert_eq(bm_sampler_sample(s, l), 4);
    bm_sampler_free(s);
}

Test(sample, logprobs) {
    float l[7] = {0.1f, 2, -1, 3, 3, 0, -5};
    double lse = 0;
    for (int i = 0; i < 7; i++) lse += exp(l[i]);
    lse = log(lse);
    int32_t ids[3];
    float lps[3], lp;
    bm_logprobs(l, 7, 2, &lp, 3, ids, lps);
    cr_assert_float_eq(lp, -1 - lse, 1e-5);
    cr_assert_eq(ids[0], 3); /* first on ties */
    cr_assert_eq(ids[1], 4);
    cr_assert_eq(ids[2], 1);
    cr_assert_float_eq(lps[2], 2 - lse, 1e-5);
}

static bool only_odd(void *user, int32_t id) {
    (void)user;
    return id % 2 == 1;
}

Test(sample, masked) {
    enum { N = 5000 };
    static float l[N];
    for (int i = 0; i < N; i++) l[i] = (float)((i * 7919) % 1000) / 100.0f;
    l[4000] = 50; /* even: masked out */
    l[3001] = 40;
    bm_sampler *g = mk(N, 0, 0);
    cr_assert_eq(bm_sampler_sample_masked(g, l, only_odd, NULL), 3001);
    bm_sampler_free(g);
    bm_sampler *a = mk(N, 5.0f, 11), *b = mk(N, 5.0f, 11);
    int diff = 0, prev = -1;
    for (int k = 0; k < 50; k++) {
        int32_t x = bm_sampler_sample_masked(a, l, only_odd, NULL);
        cr_assert_eq(x % 2, 1);
        cr_assert_eq(x, bm_sampler_sample_masked(b, l, only_odd, NULL));
        diff += x != prev;
        prev = x;
    }
    cr_assert_gt(diff, 1, "temperature 5 always drew the same token");
    bm_sampler_free(a);
    bm_sampler_free(b);
}
