/* Token sampling from logits: greedy, temperature, top-k, top-p (nucleus, Holtzman et al.
 * 2019), min-p, with a per-sampler seeded RNG so a request is reproducible whatever else
 * runs. Scratch is owned by the sampler and sized at creation: no allocation per token. */
#ifndef BAIMO_SAMPLE_H
#define BAIMO_SAMPLE_H

#include "baimo/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_sample_params {
    float temperature; /* <= 0: greedy (argmax) */
    int32_t top_k;     /* <= 0: off */
    float top_p;       /* >= 1: off */
    float min_p;       /* <= 0: off */
    uint64_t seed;
} bm_sample_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, seed 0. */
bm_sample_params bm_sample_defaults(void);
/* Checks ranges; BM_EINVAL naming the parameter and its range. */
bm_status bm_sample_params_check(const bm_sample_params *p, bm_err *err);

typedef struct bm_sampler bm_sampler;
/* Returns owned; free with bm_sampler_free(). */
bm_status bm_sampler_new(int32_t n_vocab, const bm_sample_params *p, bm_sampler **out,
                         bm_err *err);
void bm_sampler_free(bm_sampler *s);
/* Picks a token from logits[0..n_vocab) (not modified). */
int32_t bm_sampler_sample(bm_sampler *s, const float *logits);
/* Index of the largest value (first on ties). */
int32_t bm_argmax(const float *x, int32_t n);

#ifdef __cplusplus
}
#endif
#endif
