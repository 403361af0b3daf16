/* Evaluation: perplexity over a token stream in windows, and the KL divergence and top-1
 * agreement of a model against a saved base model's distributions (how users judge a
 * quantization: run the f16/f32 model with save_logits, the quantized one with kl_base). */
#ifndef BAIMO_EVAL_H
#define BAIMO_EVAL_H

#include "baimo/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_ppl_params {
    int32_t n_ctx;            /* window length; the second half of each window is scored */
    int32_t max_chunks;       /* <= 0: all */
    const char *save_logits;  /* write log-probabilities of scored positions here (or NULL) */
    const char *kl_base;      /* compare with a file written by save_logits (or NULL) */
    bm_progress_fn progress;
    void *progress_user;
} bm_ppl_params;

typedef struct bm_ppl_result {
    double ppl;           /* exp(mean NLL) */
    double nll;           /* mean NLL (nats) */
    double nll_stderr;    /* standard error of the mean NLL */
    int64_t n_scored;
    int32_t n_chunks;
    bool has_kl;
    double kl_mean, kl_max; /* KL(base || model), nats per token */
    double top1_agree;      /* fraction of scored positions with the same argmax */
    double base_ppl;
} bm_ppl_result;

/* Runs the model over tokens[0..n) in windows of p->n_ctx (each from an empty cache). The
 * context c must hold p->n_ctx positions. File format of save_logits: "BMLP" magic, u32
 * version 1, u32 n_vocab, u32 n_ctx, u64 n_tokens, u64 n_scored, u32 tokens[n_tokens],
 * then f32 log-probabilities [n_scored][n_vocab], little-endian. */
bm_status bm_perplexity(bm_ctx *c, const bm_model *m, const int32_t *tokens, size_t n,
                        const bm_ppl_params *p, bm_ppl_result *r, bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
