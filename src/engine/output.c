/* The per-token output path of a request: logit processing (penalties, logit_bias, banned
 * end-of-generation tokens), sampling (grammar-constrained when asked, with forced completion
 * when the token budget runs out), log-probabilities (the model's raw log-softmax, as OpenAI
 * reports them, before penalties/bias/temperature), incremental UTF-8-safe detokenization,
 * stop strings matched across token boundaries (a suffix that could start a stop string is
 * held back; the stop string is never emitted), and the finish conditions. */
#include "engine/engine_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_eog(bm_engine *e, int32_t id) { return bm_tok_is_eog(e->tok, id); }

/* Replaces invalid UTF-8 in s[0..n) by U+FFFD, appending to r->hold. */
static bool hold_append(req *r, const char *s, size_t n) {
    size_t need = r->n_hold + 3 * n + 1;
    if (need > r->cap_hold) {
        size_t cap = need * 2;
        char *h = realloc(r->hold, cap);
        if (!h) return false;
        r->hold = h;
        r->cap_hold = cap;
    }
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = bm_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k > 0) {
            memcpy(r->hold + r->n_hold, s + i, (size_t)k);
            r->n_hold += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(r->hold + r->n_hold, "\xef\xbf\xbd", 3);
            r->n_hold += 3;
            i++;
        }
    }
    return true;
}

/* Looks for a stop string in the held text. Returns the offset of the earliest match or -1;
 * *safe receives how many leading bytes can be emitted (no stop string can start there). */
static long stop_scan(const req *r, size_t *safe) {
    long best = -1;
    size_t keep = 0;
    for (size_t i = 0; i < r->gp.n_stop; i++) {
        const char *s = r->stop[i];
        size_t sl = r->stop_len[i];
        if (r->n_hold >= sl) {
            const char *p = memmem(r->hold, r->n_hold, s, sl);
            if (p && (best < 0 || p - r->hold < best)) best = p - r->hold;
        }
        size_t k = sl - 1 < r->n_hold ? sl - 1 : r->n_hold;
        for (; k > keep; k--)
            if (!memcmp(r->hold + r->n_hold - k, s, k)) break;
        if (k > keep) keep = k;
    }
    *safe = r->n_hold - keep;
    return best;
}

static int send(bm_engine *e, req *r, int32_t token, const char *text, size_t n_text, float lp,
                int32_t n_top, bm_finish fin, const char *error) {
    bm_gen_event ev = {
        .id = r->id, .text = text ? text : "", .n_text = n_text, .token = token, .logprob = lp,
        .top = n_top > 0 ? e->top : NULL, .n_top = n_top, .finish = fin, .error = error,
        .n_prompt = r->n_prompt, .n_cached = r->n_cached, .n_gen = r->n_gen,
        .t_first_token = r->n_gen > 0 ? r->t_first - r->t_submit : 0};
    return r->cb(r->user, &ev);
}

void engine_drop_seq(bm_engine *e, req *r) {
    if (!r->has_seq) return;
    bm_seq_fini(&r->seq, e->kv);
    r->has_seq = false;
    r->n_eval = 0;
    r->n_reg = 0;
    r->chain = 0;
}

void engine_req_free(req *r) {
    if (!r) return;
    bm_sampler_free(r->smp);
    bm_grammar_free(r->gram);
    if (r->stop)
        for (size_t i = 0; i < r->gp.n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->stop_len);
    free(r->bias_ids);
    free(r->bias_vals);
    free(r->toks);
    free(r->hold);
    free(r);
}

void engine_finish(bm_engine *e, req *r, bm_finish fin, const char *error) {
    engine_drop_seq(e, r);
    engine_update_kv_stats(e);
    size_t n = 0;
    if (fin == BM_FINISH_LENGTH || fin == BM_FINISH_STOP) {
        char fl[8];
        size_t k = bm_detok_flush(&r->dt, fl, sizeof fl);
        if (k <= sizeof fl) hold_append(r, fl, k);
        n = r->n_hold;
    }
    send(e, r, -1, r->hold, n, 0, 0, fin, error);
    engine_req_free(r);
}

/* ---- sampling --------------------------------------------------------------------------- */

typedef struct gctx {
    bm_engine *e;
    req *r;
} gctx;

static bool grammar_ok(void *user, int32_t id) {
    gctx *g = user;
    if (is_eog(g->e, id)) return bm_gstate_can_end(&g->r->gs);
    uint32_t a = g->e->tb_off[id], b = g->e->tb_off[id + 1];
    return bm_gstate_accepts(&g->r->gs, g->e->tb + a, b - a);
}

/* When the budget left is about what the shortest completion needs, the next token is the
 * first token of that completion, so a constrained document always closes in time. */
static int32_t forced_token(bm_engine *e, req *r) {
    int32_t left = r->gp.max_tokens >= 0 ? r->gp.max_tokens - r->n_gen : INT32_MAX;
    int32_t ctx_left = e->n_ctx - r->n_toks;
    if (ctx_left < left) left = ctx_left;
    char buf[2048];
    size_t n = bm_gstate_completion(&r->gs, buf, sizeof buf);
    if (n == 0 || n >= sizeof buf) return -1;
    if ((size_t)left > n + 2) return -1; /* tokens never cover less than one byte */
    int32_t ids[512];
    size_t n_ids = 0;
    bm_err err;
    if (bm_tok_encode(e->tok, buf, n, 0, ids, 512, &n_ids, &err) || n_ids == 0 || n_ids > 512)
        return -1;
    if ((int64_t)n_ids + 2 < left) return -1;
    uint32_t a = e->tb_off[ids[0]], b = e->tb_off[ids[0] + 1];
    return bm_gstate_accepts(&r->gs, e->tb + a, b - a) ? ids[0] : -1;
}

static int32_t pick(bm_engine *e, req *r, const float *logits, const char **error) {
    float *row = e->row;
    const bm_gen_params *p = &r->gp;
    memcpy(row, logits, (size_t)e->n_vocab * sizeof(float));
    int32_t last_n = p->repeat_last_n < 0 ? r->n_toks : p->repeat_last_n;
    if (last_n > r->n_toks) last_n = r->n_toks;
    bm_sampler_penalize(r->smp, row, r->toks + r->n_toks - last_n, (size_t)last_n,
                        p->repeat_penalty, r->toks + r->gen_start,
                        (size_t)(r->n_toks - r->gen_start), p->presence_penalty,
                        p->frequency_penalty);
    bm_logits_add_bias(row, e->n_vocab, r->bias_ids, r->bias_vals, p->n_bias);
    if (p->ignore_eos)
        for (int32_t i = 0; i < e->n_eog; i++) row[e->eog[i]] = -INFINITY;
    if (!r->gram) return bm_sampler_sample(r->smp, row);
    int32_t f = forced_token(e, r);
    if (f >= 0) return f;
    gctx g = {e, r};
    int32_t id = bm_sampler_sample_masked(r->smp, row, grammar_ok, &g);
    if (id < 0) *error = "grammar: no token of the vocabulary can continue the output";
    return id;
}

static bool shift_context(bm_engine *e, req *r) {
    int32_t keep = r->n_prompt < 4 ? r->n_prompt : 4;
    int32_t drop = (r->n_toks - keep) / 2;
    if (drop <= 0) return false;
    memmove(r->toks + keep, r->toks + keep + drop,
            (size_t)(r->n_toks - keep - drop) * sizeof(int32_t));
    r->n_toks -= drop;
    r->gen_start = r->gen_start - drop > keep ? r->gen_start - drop : keep;
    engine_drop_seq(e, r); /* the scheduler re-evaluates the kept tokens */
    return true;
}

bool engine_emit_token(bm_engine *e, req *r, const float *logits) {
    const char *error = NULL;
    int32_t id = pick(e, r, logits, &error);
    if (id < 0) {
        engine_finish(e, r, BM_FINISH_ERROR, error);
        return true;
    }
    if (r->n_gen == 0) r->t_first = bm_time_now();
    float lp = 0;
    int32_t n_top = 0;
    if (r->gp.top_logprobs >= 0) {
        n_top = r->gp.top_logprobs;
        bm_logprobs(logits, e->n_vocab, id, &lp, n_top, e->top_ids, e->top_lps);
        for (int32_t i = 0; i < n_top; i++) e->top[i] = (bm_top_logprob){e->top_ids[i], e->top_lps[i]};
    }
    if (is_eog(e, id) && !r->gp.ignore_eos) {
        engine_finish(e, r, BM_FINISH_STOP, NULL);
        return true;
    }
    if (r->gram) {
        uint32_t a = e->tb_off[id], b = e->tb_off[id + 1];
        BM_ASSERT(bm_gstate_feed(&r->gs, e->tb + a, b - a));
    }
    r->n_gen++;
    pthread_mutex_lock(&e->mu);
    e->st.n_gen_tokens++;
    pthread_mutex_unlock(&e->mu);
    r->toks[r->n_toks++] = id;
    char piece[256];
    size_t k = bm_detok_push(&r->dt, id, piece, sizeof piece);
    char *big = NULL;
    if (k > sizeof piece) {
        big = malloc(k + 1);
        if (big) bm_detok_push(&r->dt, id, big, k + 1);
    }
    if (!hold_append(r, big ? big : piece, big || k <= sizeof piece ? k : 0)) {
        free(big);
        engine_finish(e, r, BM_FINISH_ERROR, "out of memory");
        return true;
    }
    free(big);
    size_t safe = r->n_hold;
    long at = r->gp.n_stop ? stop_scan(r, &safe) : -1;
    size_t emit = at >= 0 ? (size_t)at : safe;
    int rc = send(e, r, id, r->hold, emit, lp, n_top, BM_FINISH_NONE, NULL);
    memmove(r->hold, r->hold + emit, r->n_hold - emit);
    r->n_hold -= emit;
    if (rc) {
        r->n_hold = 0;
        engine_finish(e, r, BM_FINISH_CANCELLED, NULL);
    } else if (at >= 0) {
        r->n_hold = 0;
        r->dt.n_pend = 0;
        engine_finish(e, r, BM_FINISH_STOP, NULL);
    } else if (r->gram && bm_gstate_done(&r->gs)) {
        engine_finish(e, r, BM_FINISH_STOP, NULL);
    } else if (r->gp.max_tokens >= 0 && r->n_gen >= r->gp.max_tokens) {
        engine_finish(e, r, BM_FINISH_LENGTH, NULL);
    } else if (r->n_toks > e->n_ctx && !(r->gp.context_shift && shift_context(e, r))) {
        engine_finish(e, r, BM_FINISH_LENGTH, NULL);
    } else {
        return false;
    }
    return true;
}
