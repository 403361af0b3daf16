/* The batched forward pass of the Llama family over tokens of one or more sequences, with
 * the paged KV cache. Per layer: RMSNorm -> Q/K/V (+bias) -> (q/k RMSNorm) -> RoPE -> append
 * K/V -> causal attention with GQA -> output projection + residual -> RMSNorm -> SwiGLU MLP
 * + residual. Matmuls and attention (attention.c) run on the pool; every buffer is sized in
 * bm_ctx_new, so no allocation happens per token. References: Touvron et al. 2023 (Llama),
 * Su et al. 2021 (RoPE), Ainslie et al. 2023 (GQA), Shazeer 2020 (SwiGLU), Qwen2/Qwen3 model
 * cards. */
#include "model/attention.h"
#include "model/model_int.h"
#include "tensor/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bm_ctx {
    const bm_model *m;
    bm_pool *pool;
    bm_kv *kv;
    int32_t n_ctx, max_batch, n_threads;
    /* activations [max_batch, ...] */
    float *x, *hb, *q, *k, *v, *att, *gate, *up, *cs;
    bm_att attn;        /* attention scratch (attention.c) */
    void *mm_scratch;
    int32_t *b_pos;     /* [max_batch] batch scratch for bm_model_eval */
    bm_seq **b_seq;
    bool *b_want;
    bm_arena arena;
    bool profile;
    bm_profile prof;
};

bm_status bm_ctx_new(const bm_model *m, const bm_ctx_params *p, bm_ctx **out, bm_err *err) {
    *out = NULL;
    const bm_hparams *h = &m->hp;
    bm_ctx *c = bm_calloc(1, sizeof *c, err);
    if (!c) return BM_ENOMEM;
    c->m = m;
    c->profile = p && p->profile;
    c->n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (h->n_ctx_train < 4096 ? h->n_ctx_train : 4096);
    c->max_batch = p && p->max_batch > 0 ? p->max_batch : 512;
    int32_t n_seq = p && p->n_seq > 0 ? p->n_seq : 1;
    bm_status st = BM_OK;
    if (c->n_ctx > (1 << 22)) {
        st = bm_err_set(err, BM_ERANGE, "ctx: context %d exceeds the limit of %d", c->n_ctx,
                        1 << 22);
        goto fail;
    }
    c->pool = bm_pool_new(p ? p->n_threads : 0, err);
    if (!c->pool) {
        st = BM_ENOMEM;
        goto fail;
    }
    c->n_threads = bm_pool_n_threads(c->pool);
    int32_t blocks_per_seq = (c->n_ctx + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
    if ((st = bm_kv_new(m, blocks_per_seq * n_seq, &c->kv, err))) goto fail;

    bm_arena_init(&c->arena, 1 << 20, 0);
    size_t B = (size_t)c->max_batch, qd = (size_t)h->n_head * h->head_dim,
           kvd = (size_t)h->n_head_kv * h->head_dim;
    size_t max_in = (size_t)(h->n_ff > h->n_embd ? h->n_ff : h->n_embd);
    if (qd > max_in) max_in = qd;
#define A(ptr, n)                                                                              \
    if (!((ptr) = bm_arena_calloc(&c->arena, (n), sizeof(float), err))) {                     \
        st = BM_ENOMEM;                                                                        \
        goto fail;                                                                             \
    }
    A(c->x, B * h->n_embd);
    A(c->hb, B * h->n_embd);
    A(c->q, B * qd);
    A(c->k, B * kvd);
    A(c->v, B * kvd);
    A(c->att, B * qd);
    A(c->gate, B * h->n_ff);
    A(c->up, B * h->n_ff);
    A(c->cs, B * h->n_rot);
#undef A
    if ((st = bm_att_init(&c->attn, &c->arena, h, c->n_ctx, c->n_threads, err))) goto fail;
    c->mm_scratch = bm_arena_alloc(
        &c->arena, bm_matmul_scratch_bytes((int64_t)max_in, c->max_batch, c->n_threads), err);
    c->b_pos = bm_arena_calloc(&c->arena, B, sizeof(int32_t), err);
    c->b_seq = bm_arena_calloc(&c->arena, B, sizeof(bm_seq *), err);
    c->b_want = bm_arena_calloc(&c->arena, B, sizeof(bool), err);
    if (!c->mm_scratch || !c->b_pos || !c->b_seq || !c->b_want) {
        st = BM_ENOMEM;
        goto fail;
    }
    *out = c;
    return BM_OK;
fail:
    bm_ctx_free(c);
    return st;
}

void bm_ctx_free(bm_ctx *c) {
    if (!c) return;
    bm_pool_free(c->pool);
    bm_kv_free(c->kv);
    bm_arena_fini(&c->arena);
    free(c);
}

bm_kv *bm_ctx_kv(bm_ctx *c) { return c->kv; }
bm_pool *bm_ctx_pool(bm_ctx *c) { return c->pool; }
int32_t bm_ctx_n_ctx(const bm_ctx *c) { return c->n_ctx; }
int32_t bm_ctx_max_batch(const bm_ctx *c) { return c->max_batch; }

void bm_ctx_profile(const bm_ctx *c, bm_profile *out) { *out = c->prof; }
void bm_ctx_profile_reset(bm_ctx *c) { memset(&c->prof, 0, sizeof c->prof); }

const char *bm_prof_step_name(int step) {
    static const char *const names[BM_PROF_COUNT] = {
        "embed", "norm", "qkv", "rope_kv", "attention", "wo", "gate_up", "swiglu", "down", "head"};
    return step >= 0 && step < BM_PROF_COUNT ? names[step] : "?";
}

/* Profiling: LAP(step) charges the time since the previous lap to step (a clock read per step
 * only when the context profiles). */
#define LAP(step)                                                                              \
    do {                                                                                       \
        if (c->profile) {                                                                      \
            const double now_ = bm_time_now();                                                 \
            c->prof.secs[step] += now_ - lap;                                                  \
            lap = now_;                                                                        \
        }                                                                                      \
    } while (0)

/* Stores token position pos of sequence s into the cache: per KV head, V by slot and K
 * transposed in its block (include/baimo/model.h). */
static void kv_store(bm_kv *kv, int layer, const bm_seq *s, int32_t pos, const float *k,
                     const float *v) {
    const size_t off = bm_kv_block_off(kv, layer, s->blocks[pos / BM_KV_BLOCK]);
    const int32_t i = pos % BM_KV_BLOCK, kvd = kv->n_kv_dim, hd = kv->head_dim;
    for (int32_t c = 0; c < kvd; c += hd)
        memcpy(kv->v + off + (size_t)c * BM_KV_BLOCK + (size_t)i * hd, v + c,
               (size_t)hd * sizeof(float));
    float *kt = kv->k + off + i;
    for (int32_t c = 0; c < kvd; c++) kt[(size_t)c * BM_KV_BLOCK] = k[c];
}

/* ---- one slice of at most max_batch tokens -------------------------------------------- */

static void add_bias(float *y, const bm_tensor *b, int32_t n, int64_t d) {
    if (!b) return;
    const float *bb = b->data;
    for (int32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) y[i * d + j] += bb[j];
}

/* Per-token steps between the matrix products, split by tokens over the pool (each token's
 * values follow the same sequence whatever the split: batch invariant). */
enum { PH_ATTN_IN, PH_QKV, PH_FFN_IN, PH_SWIGLU, PH_RESID };

typedef struct tok_task {
    bm_ctx *c;
    const bm_batch *b;
    const bm_layer *l;
    int32_t off, n;
    int layer, phase;
    const bm_rope_params *rp;
} tok_task;

static void tok_run(void *ctx, int ith, int nth) {
    const tok_task *t = ctx;
    bm_ctx *c = t->c;
    const bm_hparams *h = &c->m->hp;
    const bm_layer *l = t->l;
    const int64_t E = h->n_embd, hd = h->head_dim, qd = (int64_t)h->n_head * hd,
                  kvd = (int64_t)h->n_head_kv * hd, F = h->n_ff;
    const bm_kernels *kt = bm_kernels_get();
    int64_t lo, hi;
    bm_split_range(t->n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        float *x = c->x + i * E, *hb = c->hb + i * E;
        switch (t->phase) {
        case PH_ATTN_IN:
            kt->rmsnorm(x, l->attn_norm->data, hb, E, h->norm_eps);
            break;
        case PH_QKV: {
            float *q = c->q + i * qd, *k = c->k + i * kvd, *v = c->v + i * kvd;
            if (l->bq) add_bias(q, l->bq, 1, qd);
            if (l->bk) add_bias(k, l->bk, 1, kvd);
            if (l->bv) add_bias(v, l->bv, 1, kvd);
            const float *cs = c->cs + (size_t)i * h->n_rot;
            for (int hh = 0; hh < h->n_head; hh++) {
                float *qh = q + hh * hd;
                if (l->q_norm) kt->rmsnorm(qh, l->q_norm->data, qh, hd, h->norm_eps);
                bm_k_rope_ref(qh, h->n_rot, h->rope_neox, cs);
            }
            for (int hh = 0; hh < h->n_head_kv; hh++) {
                float *kh = k + hh * hd;
                if (l->k_norm) kt->rmsnorm(kh, l->k_norm->data, kh, hd, h->norm_eps);
                bm_k_rope_ref(kh, h->n_rot, h->rope_neox, cs);
            }
            const bm_seq *s = t->b->seq[t->off + i];
            const int32_t pos = t->b->pos[t->off + i];
            kv_store(c->kv, t->layer, s, pos, k, v);
            break;
        }
        case PH_FFN_IN:
            for (int64_t j = 0; j < E; j++) x[j] += hb[j];
            kt->rmsnorm(x, l->ffn_norm->data, hb, E, h->norm_eps);
            break;
        case PH_SWIGLU:
            kt->swiglu(c->gate + i * F, c->up + i * F, c->gate + i * F, F);
            break;
        default:
            for (int64_t j = 0; j < E; j++) x[j] += hb[j];
            break;
        }
    }
}

/* A few tokens (decode) are not worth waking the pool for. */
static void tok_steps(tok_task *t) {
    if (t->n < 4) tok_run(t, 0, 1);
    else bm_pool_run(t->c->pool, tok_run, t, t->c->n_threads);
}

static void forward_slice(bm_ctx *c, const bm_batch *b, int32_t off, int32_t n, float *logits,
                          int32_t *n_logits) {
    const bm_model *m = c->m;
    const bm_hparams *h = &m->hp;
    const int64_t E = h->n_embd;
    bm_rope_params rp = {.n_rot = h->n_rot,
                         .base = h->rope_theta,
                         .freq_scale = 1.0f / h->rope_factor,
                         .ext_factor = h->rope_scaling == BM_ROPE_SCALING_YARN ? 1.0f : 0.0f,
                         .attn_factor = h->yarn_attn_factor,
                         .beta_fast = h->yarn_beta_fast,
                         .beta_slow = h->yarn_beta_slow,
                         .n_ctx_orig = h->rope_ctx_orig,
                         .freq_factors = m->rope_freqs};
    if (h->rope_scaling != BM_ROPE_SCALING_YARN) rp.attn_factor = 1.0f;

    double lap = c->profile ? bm_time_now() : 0;
    if (c->profile) c->prof.n_forward++;
    for (int32_t i = 0; i < n; i++) {
        bm_tensor_get_row(m->tok_embd, b->tokens[off + i], c->x + i * E);
        bm_rope_cache_ref(&rp, b->pos[off + i], c->cs + (size_t)i * h->n_rot);
    }
    LAP(BM_PROF_EMBED);
    for (int li = 0; li < h->n_layer; li++) {
        const bm_layer *l = &m->layers[li];
        tok_task tt = {.c = c, .b = b, .l = l, .off = off, .n = n, .layer = li, .rp = &rp};
        tt.phase = PH_ATTN_IN;
        tok_steps(&tt);
        LAP(BM_PROF_NORM);
        {   /* Q, K, V share their input: one quantization, one pool run */
            const bm_tensor *ws[3] = {l->wq, l->wk, l->wv};
            float *ys[3] = {c->q, c->k, c->v};
            bm_matmul_multi(c->pool, 3, ws, c->hb, n, ys, c->mm_scratch);
        }
        LAP(BM_PROF_QKV);
        tt.phase = PH_QKV;
        tok_steps(&tt);
        LAP(BM_PROF_ROPE);
        bm_att_run(&c->attn, c->pool, c->kv, li, b, off, n, c->q, c->att);
        LAP(BM_PROF_ATTN);
        bm_matmul(c->pool, l->wo, c->att, n, c->hb, c->mm_scratch);
        LAP(BM_PROF_WO);
        tt.phase = PH_FFN_IN;
        tok_steps(&tt);
        LAP(BM_PROF_NORM);
        {
            const bm_tensor *ws[2] = {l->w_gate, l->w_up};
            float *ys[2] = {c->gate, c->up};
            bm_matmul_multi(c->pool, 2, ws, c->hb, n, ys, c->mm_scratch);
        }
        LAP(BM_PROF_GATE_UP);
        tt.phase = PH_SWIGLU;
        tok_steps(&tt);
        LAP(BM_PROF_ACT);
        bm_matmul(c->pool, l->w_down, c->gate, n, c->hb, c->mm_scratch);
        LAP(BM_PROF_DOWN);
        tt.phase = PH_RESID;
        tok_steps(&tt);
        LAP(BM_PROF_NORM);
    }
    /* final norm and head for the tokens that want logits, compacted */
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (b->logits && !b->logits[off + i]) continue;
        bm_kernels_get()->rmsnorm(c->x + i * E, m->out_norm->data, c->hb + (int64_t)k * E, E,
                                  h->norm_eps);
        if (b->hidden)
            memcpy(b->hidden + ((size_t)*n_logits + (size_t)k) * (size_t)E, c->hb + (int64_t)k * E,
                   (size_t)E * sizeof(float));
        k++;
    }
    if (k > 0 && logits)
        bm_matmul(c->pool, m->output, c->hb, k, logits + (size_t)*n_logits * h->n_vocab,
                  c->mm_scratch);
    *n_logits += k;
    LAP(BM_PROF_HEAD);
}
#undef LAP

bm_status bm_model_forward(bm_ctx *c, const bm_batch *b, float *logits, bm_err *err) {
    const bm_hparams *h = &c->m->hp;
    if (b->n_tok <= 0) return bm_err_set(err, BM_EINVAL, "forward: empty batch");
    if (!logits && !b->hidden) return bm_err_set(err, BM_EINVAL, "forward: no output requested");
    /* validate everything before touching the cache */
    for (int32_t i = 0; i < b->n_tok; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= h->n_vocab)
            return bm_err_set(err, BM_EINVAL, "forward: token id %d is outside the vocabulary "
                              "[0, %d)", b->tokens[i], h->n_vocab);
        int32_t before = 0;
        for (int32_t j = 0; j < i; j++) before += b->seq[j] == b->seq[i];
        int32_t want = b->seq[i]->n_pos + before;
        if (b->pos[i] != want)
            return bm_err_set(err, BM_EINVAL, "forward: token %d has position %d, its sequence "
                              "continues at %d", i, b->pos[i], want);
        if (b->pos[i] >= c->n_ctx)
            return bm_err_set(err, BM_ERANGE, "context full: position %d, the context holds %d "
                              "tokens", b->pos[i], c->n_ctx);
    }
    for (int32_t i = 0; i < b->n_tok; i++) {
        bm_status st = bm_seq_reserve(b->seq[i], c->kv, b->pos[i] + 1, err);
        if (st) return st;
    }
    int32_t n_logits = 0;
    for (int32_t off = 0; off < b->n_tok; off += c->max_batch) {
        int32_t n = b->n_tok - off < c->max_batch ? b->n_tok - off : c->max_batch;
        forward_slice(c, b, off, n, logits, &n_logits);
    }
    for (int32_t i = 0; i < b->n_tok; i++)
        if (b->pos[i] + 1 > b->seq[i]->n_pos) b->seq[i]->n_pos = b->pos[i] + 1;
    return BM_OK;
}

bm_status bm_model_eval(bm_ctx *c, bm_seq *s, const int32_t *tokens, int32_t n, bool all,
                        float *logits, bm_err *err) {
    if (n <= 0) return bm_err_set(err, BM_EINVAL, "eval: no tokens");
    if ((int64_t)s->n_pos + n > c->n_ctx)
        return bm_err_set(err, BM_ERANGE, "context full: %d tokens after %d would exceed the "
                          "context of %d", n, s->n_pos, c->n_ctx);
    for (int32_t off = 0; off < n; off += c->max_batch) {
        int32_t k = n - off < c->max_batch ? n - off : c->max_batch;
        for (int32_t i = 0; i < k; i++) {
            c->b_pos[i] = s->n_pos + i;
            c->b_seq[i] = s;
            c->b_want[i] = all || off + i == n - 1;
        }
        bm_batch b = {k, tokens + off, c->b_pos, c->b_seq, c->b_want, NULL};
        float *dst = all ? logits + (size_t)off * c->m->hp.n_vocab : logits;
        bm_status st = bm_model_forward(c, &b, dst, err);
        if (st) return st;
    }
    return BM_OK;
}
