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
/* Constrained sampling: accept(user, id) says whether a token may come next. Greedy: the
 * most likely acceptable token (candidates checked in order of logit, so a grammar is
 * consulted only until the first acceptable one). Sampling: the top_k (or, when top_k is off,
 * 256) most likely tokens are filtered by accept, then temperature/min_p/top_p apply to the
 * survivors renormalised (the window widens 8x at a time when none survives). Returns -1 when
 * no token of the vocabulary is acceptable. */
typedef bool (*bm_token_ok)(void *user, int32_t id);
int32_t bm_sampler_sample_masked(bm_sampler *s, const float *logits, bm_token_ok accept,
                                 void *user);

/* Penalties, applied in place to logits[0..n_vocab):
 * repetition (llama.cpp semantics): every distinct token of recent[0..n_recent) gets
 *   logit / penalty when the logit is > 0, logit * penalty otherwise (penalty 1 = off);
 * presence/frequency (OpenAI semantics) over the generated tokens gen[0..n_gen):
 *   logit -= count * frequency + (count > 0) * presence.
 * Uses the sampler's scratch (no allocation). */
void bm_sampler_penalize(bm_sampler *s, float *logits, const int32_t *recent, size_t n_recent,
                         float repeat_penalty, const int32_t *gen, size_t n_gen, float presence,
                         float frequency);
/* logit_bias: logits[ids[i]] += vals[i] (ids outside the vocabulary are skipped). */
void bm_logits_add_bias(float *logits, int32_t n_vocab, const int32_t *ids, const float *vals,
                        size_t n);
/* Log-softmax of logits[0..n): *lp_id = log p(id), and the k most likely tokens (k <= 64) with
 * their log-probabilities, most likely first, into top_ids/top_lps. */
void bm_logprobs(const float *logits, int32_t n, int32_t id, float *lp_id, int32_t k,
                 int32_t *top_ids, float *top_lps);

/* Index of the largest value (first on ties). */
int32_t bm_argmax(const float *x, int32_t n);

#ifdef __cplusplus
}
#endif
#endif
