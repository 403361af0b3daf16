/* The engine: the one place that turns requests into tokens. A scheduler thread runs one
 * batched forward pass per step that mixes the decode tokens of all running sequences with
 * chunks of pending prompts (chunked prefill); sequences live in the paged KV cache with
 * prefix reuse (full blocks whose token content matches are shared, refcounted); admission
 * is by KV memory (requests queue when the cache is full; submit returns BM_EBUSY when the
 * queue is full). Results stream to a callback as UTF-8-safe text pieces.
 * Thread safety: every function may be called from any thread; callbacks run on the engine's
 * scheduler thread and must not block for long. */
#ifndef BAIMO_ENGINE_H
#define BAIMO_ENGINE_H

#include "baimo/model.h"
#include "baimo/sample.h"
#include "baimo/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_engine bm_engine;

typedef struct bm_engine_params {
    int32_t n_ctx;        /* max positions per sequence (<= 0: min(model n_ctx_train, 4096)) */
    int32_t n_parallel;   /* max sequences decoding at once (<= 0: 4) */
    uint64_t kv_bytes;    /* KV cache budget (0: n_parallel * n_ctx worth) */
    int32_t max_batch;    /* max tokens per step (<= 0: 512) */
    int32_t max_queue;    /* max waiting requests before BM_EBUSY (<= 0: 64) */
    int n_threads;        /* <= 0: all CPUs */
} bm_engine_params;

typedef struct bm_gen_params {
    bm_sample_params sample;     /* temperature, top_k, top_p, min_p, seed */
    float repeat_penalty;        /* 1 = off (llama.cpp style, over the last repeat_last_n) */
    int32_t repeat_last_n;       /* 0 = off, -1 = whole context */
    float presence_penalty;      /* OpenAI semantics, 0 = off */
    float frequency_penalty;     /* OpenAI semantics, 0 = off */
    const int32_t *bias_ids;     /* logit_bias: ids and values (added to logits) */
    const float *bias_vals;
    size_t n_bias;
    int32_t max_tokens;          /* < 0: until the context is full */
    const char *const *stop;     /* stop strings (matched across token boundaries, not emitted) */
    size_t n_stop;
    int32_t top_logprobs;        /* < 0: no logprobs; 0..20: chosen token's + that many alts */
    const char *json_schema;     /* constrain output to JSON matching this schema (or NULL) */
    bool json_object;            /* constrain output to any JSON object */
    bool ignore_eos;
    bool context_shift;          /* when the context fills: drop the oldest half instead of
                                    ending with "length" */
} bm_gen_params;

/* Defaults: sample defaults, no penalties, max_tokens -1, no logprobs. */
bm_gen_params bm_gen_defaults(void);

typedef enum bm_finish {
    BM_FINISH_NONE = 0,   /* still running */
    BM_FINISH_STOP,       /* end-of-generation token or a stop string */
    BM_FINISH_LENGTH,     /* max_tokens or context full */
    BM_FINISH_CANCELLED,  /* bm_engine_cancel or the callback returned non-zero */
    BM_FINISH_ERROR,
} bm_finish;

typedef struct bm_top_logprob {
    int32_t id;
    float logprob;
} bm_top_logprob;

/* One callback per generated token (text may be empty while a UTF-8 character or a possible
 * stop string is held back), then a final event with finish != BM_FINISH_NONE. */
typedef struct bm_gen_event {
    uint64_t id;               /* request id */
    const char *text;          /* newly completed text (valid UTF-8) */
    size_t n_text;
    int32_t token;             /* -1 in the final event */
    float logprob;             /* of token, when top_logprobs >= 0 */
    const bm_top_logprob *top; /* [n_top], most likely first */
    int32_t n_top;
    bm_finish finish;
    const char *error;         /* message when finish == BM_FINISH_ERROR */
    int32_t n_prompt;          /* prompt tokens */
    int32_t n_cached;          /* prompt tokens reused from the prefix cache */
    int32_t n_gen;             /* generated tokens so far */
    double t_first_token;      /* seconds from submit to the first token (final event) */
} bm_gen_event;

/* Return non-zero to cancel the request. */
typedef int (*bm_gen_cb)(void *user, const bm_gen_event *ev);

/* Starts an engine over a loaded model and tokenizer (both borrowed: must outlive it).
 * Returns owned; free with bm_engine_free() (cancels everything still running). */
bm_status bm_engine_new(const bm_model *m, const bm_tok *tok, const bm_engine_params *p,
                        bm_engine **out, bm_err *err);
void bm_engine_free(bm_engine *e);

/* Queues a request for prompt[0..n) (copied). *id_out receives its id. Errors: BM_EINVAL for
 * bad parameters (named), BM_ERANGE when the prompt does not fit the context, BM_EBUSY when
 * the queue is full. After BM_OK the callback is called until a final event. */
bm_status bm_engine_submit(bm_engine *e, const int32_t *prompt, size_t n, const bm_gen_params *p,
                           bm_gen_cb cb, void *user, uint64_t *id_out, bm_err *err);
/* Cancels a request (its blocks are freed at once); unknown ids are ignored. */
void bm_engine_cancel(bm_engine *e, uint64_t id);

/* Mean-pooled, L2-normalised final hidden states of tokens[0..n): out [n_embd]. Runs in the
 * scheduler's next step (blocking the caller until done). */
bm_status bm_engine_embed(bm_engine *e, const int32_t *tokens, size_t n, float *out, bm_err *err);

typedef struct bm_engine_stats {
    int32_t n_running, n_queued;
    int32_t kv_blocks_used, kv_blocks_total;
    uint64_t n_requests, n_prompt_tokens, n_gen_tokens, n_cached_tokens;
    uint64_t n_steps;
    int32_t kv_blocks_cached; /* blocks held only by the prefix cache (evictable; not in used) */
    uint64_t n_preemptions;   /* sequences sent back to the queue because the KV cache was full */
} bm_engine_stats;
void bm_engine_get_stats(bm_engine *e, bm_engine_stats *s);
int32_t bm_engine_n_ctx(const bm_engine *e);

#ifdef __cplusplus
}
#endif
#endif
