/* Engine internals shared by the scheduler (engine.c) and the per-request output path
 * (output.c): the request record and the engine record. The scheduler thread owns every
 * request that left the queue; the mutex guards the queue, cancel flags, embed jobs and
 * stats. */
#ifndef BAIMO_ENGINE_INT_H
#define BAIMO_ENGINE_INT_H

#include <pthread.h>

#include "baimo/engine.h"
#include "baimo/grammar.h"

typedef struct req req;
struct req {
    uint64_t id;
    req *next;                /* queue link */
    bm_gen_params gp;         /* deep copy (arrays below) */
    int32_t *bias_ids;
    float *bias_vals;
    char **stop;
    size_t *stop_len;
    bm_gen_cb cb;
    void *user;
    int32_t n_prompt;
    int32_t *toks;            /* prompt + generated (after context shifts: what is kept) */
    int32_t n_toks, cap_toks;
    int32_t gen_start;        /* toks[gen_start..) are generated */
    int32_t n_eval;           /* toks[0..n_eval) have K/V in seq */
    int32_t n_reg;            /* blocks of seq checked for the prefix cache */
    uint64_t chain;           /* prefix hash of block n_reg - 1 */
    int32_t n_gen, n_cached;
    bool admitted_once, cancel;
    bool has_seq;
    bm_seq seq;
    bm_sampler *smp;
    bm_grammar *gram;
    bm_gstate gs;
    bm_detok dt;
    char *hold;               /* text held back (possible stop string start) */
    size_t n_hold, cap_hold;
    double t_submit, t_first;
};

typedef struct emb_job emb_job;
struct emb_job {
    const int32_t *toks;
    int32_t n;
    float *out;
    bm_status st;
    bm_err err;
    bool done;
    emb_job *next;
};

struct bm_engine {
    const bm_model *m;
    const bm_tok *tok;
    bm_ctx *ctx;
    bm_kv *kv;
    int32_t n_ctx, n_parallel, max_batch, max_queue, n_vocab;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv, cv_emb;
    bool quit;
    /* under mu */
    req *q_head, *q_tail;
    int32_t n_queued;
    uint64_t next_id;
    emb_job *emb;
    bm_engine_stats st;
    /* running requests (written by the scheduler under mu, read by it freely) */
    req **run;
    int32_t n_run;
    /* prefix cache: per block (scheduler only) */
    uint64_t *blk_hash, *blk_tick;
    uint8_t *blk_cached;
    int32_t *blk_toks;        /* [n_blocks][BM_KV_BLOCK] */
    int32_t *ht;              /* cached blocks by hash: open addressing, -1 = empty */
    uint32_t ht_mask;         /* table size - 1 (a power of two >= 2 n_blocks) */
    uint64_t tick;
    /* token bytes for grammars: token i is tb[tb_off[i]..tb_off[i+1]) */
    uint32_t *tb_off;
    uint8_t *tb;
    int32_t *eog;             /* end-of-generation ids */
    int32_t n_eog;
    /* step scratch */
    int32_t *b_tok, *b_pos;
    bm_seq **b_seq;
    bool *b_want;
    req **b_out;              /* request of each output row */
    float *logits;            /* [n_parallel][n_vocab] */
    float *row;               /* [n_vocab] processed copy */
    int32_t top_ids[64];
    float top_lps[64];
    bm_top_logprob top[64];
};

/* output.c: one sampled token for r (from the logits row); may finish r. Returns true when r
 * finished (then it is freed by the caller through engine_finish). */
bool engine_emit_token(bm_engine *e, req *r, const float *logits);
/* Sends the final event and releases r's resources (not r's slot in run[]). */
void engine_finish(bm_engine *e, req *r, bm_finish fin, const char *error);
/* Releases r's sequence (its full blocks stay in the prefix cache). */
void engine_drop_seq(bm_engine *e, req *r);
void engine_req_free(req *r);
/* Recounts used/cached KV blocks into the stats (takes the mutex). */
void engine_update_kv_stats(bm_engine *e);

#endif
