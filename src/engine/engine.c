/* The continuous-batching scheduler: one thread owns a bm_ctx; each step it admits queued
 * requests while the KV cache has room (prompt blocks + one block of headroom per running
 * sequence), builds one batch of every running sequence's decode token followed by prompt
 * chunks (bounded by max_batch), runs the forward pass and hands each output row to the
 * request's output path (output.c). Prefix reuse: every full block is keyed by a hash chain
 * over its tokens (looked up in a hash table); cached blocks keep one reference held by the
 * cache, are mapped into new sequences whose prompts start with the same blocks, and are
 * evicted least recently used first when free blocks run out. A sequence that cannot grow
 * preempts the newest one (which goes back to the front of the queue and is re-evaluated,
 * mostly from the cache). */
#include "engine/engine_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bm_gen_params bm_gen_defaults(void) {
    bm_gen_params p;
    memset(&p, 0, sizeof p);
    p.sample = bm_sample_defaults();
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.max_tokens = -1;
    p.top_logprobs = -1;
    return p;
}

/* ---- prefix cache ------------------------------------------------------------------------ */

static uint64_t block_hash(uint64_t prev, const int32_t *t) {
    uint64_t h = prev ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < BM_KV_BLOCK; i++) {
        h ^= (uint32_t)t[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* The hash index of cached blocks: linear probing in a table at most half full; removal
 * shifts later entries of the run back, so a lookup stops at the first empty slot. */
static void ht_insert(bm_engine *e, int32_t b) {
    uint32_t i = (uint32_t)e->blk_hash[b] & e->ht_mask;
    while (e->ht[i] >= 0) i = (i + 1) & e->ht_mask;
    e->ht[i] = b;
}

static void ht_remove(bm_engine *e, int32_t b) {
    uint32_t i = (uint32_t)e->blk_hash[b] & e->ht_mask;
    while (e->ht[i] != b) i = (i + 1) & e->ht_mask;
    for (uint32_t j = (i + 1) & e->ht_mask; e->ht[j] >= 0; j = (j + 1) & e->ht_mask) {
        const uint32_t home = (uint32_t)e->blk_hash[e->ht[j]] & e->ht_mask;
        /* entry j may move to the hole i when its home is not in (i, j] (cyclically) */
        if (((j - home) & e->ht_mask) >= ((j - i) & e->ht_mask)) {
            e->ht[i] = e->ht[j];
            i = j;
        }
    }
    e->ht[i] = -1;
}

static int32_t cache_find(bm_engine *e, uint64_t h, const int32_t *t) {
    for (uint32_t i = (uint32_t)h & e->ht_mask; e->ht[i] >= 0; i = (i + 1) & e->ht_mask) {
        const int32_t b = e->ht[i];
        if (e->blk_hash[b] == h &&
            !memcmp(e->blk_toks + (size_t)b * BM_KV_BLOCK, t, BM_KV_BLOCK * sizeof(int32_t)))
            return b;
    }
    return -1;
}

static int32_t n_evictable(bm_engine *e) {
    int32_t n = 0;
    for (int32_t b = 0; b < e->kv->n_blocks; b++)
        n += e->blk_cached[b] && e->kv->refcount[b] == 1;
    return n;
}

static bool evict_one(bm_engine *e) {
    int32_t best = -1;
    for (int32_t b = 0; b < e->kv->n_blocks; b++)
        if (e->blk_cached[b] && e->kv->refcount[b] == 1 &&
            (best < 0 || e->blk_tick[b] < e->blk_tick[best]))
            best = b;
    if (best < 0) return false;
    e->blk_cached[best] = 0;
    ht_remove(e, best);
    bm_kv_block_release(e->kv, best);
    return true;
}

static bool ensure_free(bm_engine *e, int32_t need) {
    while (e->kv->n_free < need)
        if (!evict_one(e)) return false;
    return true;
}

/* Registers r's newly filled blocks in the cache. */
static void cache_register(bm_engine *e, req *r) {
    for (; (r->n_reg + 1) * BM_KV_BLOCK <= r->n_eval; r->n_reg++) {
        const int32_t *t = r->toks + (size_t)r->n_reg * BM_KV_BLOCK;
        uint64_t h = block_hash(r->chain, t);
        r->chain = h;
        int32_t b = r->seq.blocks[r->n_reg];
        e->blk_tick[b] = ++e->tick;
        if (e->blk_cached[b] || cache_find(e, h, t) >= 0) continue;
        e->blk_cached[b] = 1;
        e->blk_hash[b] = h;
        memcpy(e->blk_toks + (size_t)b * BM_KV_BLOCK, t, BM_KV_BLOCK * sizeof(int32_t));
        ht_insert(e, b);
        bm_kv_block_retain(e->kv, b);
    }
}

/* Longest run of cached blocks matching r's tokens (at least one token left to evaluate). */
static int32_t cache_match(bm_engine *e, req *r, int32_t *blocks, uint64_t *chain) {
    int32_t max = (r->n_toks - 1) / BM_KV_BLOCK, n = 0;
    uint64_t h = 0;
    for (; n < max; n++) {
        const int32_t *t = r->toks + (size_t)n * BM_KV_BLOCK;
        uint64_t hn = block_hash(h, t);
        int32_t b = cache_find(e, hn, t);
        if (b < 0) break;
        blocks[n] = b;
        h = hn;
    }
    *chain = h;
    return n;
}

static int32_t blocks_for(int32_t n_pos) { return (n_pos + BM_KV_BLOCK - 1) / BM_KV_BLOCK; }

/* Gives r a sequence, mapping cached prefix blocks. check: only when the cache has room
 * for the rest of its tokens plus headroom. */
static bm_status attach(bm_engine *e, req *r, bool check, bm_err *err) {
    int32_t *mb = malloc(sizeof(int32_t) * (size_t)(blocks_for(e->n_ctx) + 1));
    if (!mb) return bm_err_set(err, BM_ENOMEM, "engine: out of memory");
    uint64_t chain;
    int32_t nm = cache_match(e, r, mb, &chain);
    if (check) {
        int32_t pinned = 0;
        for (int32_t i = 0; i < nm; i++) pinned += e->kv->refcount[mb[i]] == 1;
        int32_t need = blocks_for(r->n_toks) - nm + e->n_run;
        if (need > e->kv->n_free + n_evictable(e) - pinned) {
            free(mb);
            return BM_EBUSY;
        }
    }
    bm_status st = bm_seq_init(&r->seq, e->n_ctx, err);
    if (!st) st = bm_seq_share(&r->seq, e->kv, mb, nm, err);
    if (st) {
        bm_seq_fini(&r->seq, e->kv);
        free(mb);
        return st;
    }
    for (int32_t i = 0; i < nm; i++) e->blk_tick[mb[i]] = ++e->tick;
    free(mb);
    r->has_seq = true;
    r->n_eval = nm * BM_KV_BLOCK;
    r->n_reg = nm;
    r->chain = chain;
    if (!r->admitted_once) {
        r->admitted_once = true;
        r->n_cached = r->n_eval;
        e->st.n_cached_tokens += (uint64_t)r->n_eval;
        e->st.n_prompt_tokens += (uint64_t)r->n_prompt;
    }
    return BM_OK;
}

void engine_update_kv_stats(bm_engine *e) {
    int32_t cached = 0, used = 0;
    for (int32_t b = 0; b < e->kv->n_blocks; b++) {
        if (e->blk_cached[b] && e->kv->refcount[b] == 1) cached++;
        else if (e->kv->refcount[b] > 0) used++;
    }
    pthread_mutex_lock(&e->mu);
    e->st.kv_blocks_used = used;
    e->st.kv_blocks_cached = cached;
    pthread_mutex_unlock(&e->mu);
}

/* ---- the scheduler ------------------------------------------------------------------------ */

static void run_remove(bm_engine *e, int32_t i) {
    memmove(e->run + i, e->run + i + 1, (size_t)(e->n_run - i - 1) * sizeof *e->run);
    e->n_run--;
}

/* Back to the front of the queue; its tokens are re-evaluated when it is admitted again. */
static void preempt(bm_engine *e, int32_t i) {
    req *r = e->run[i];
    engine_drop_seq(e, r);
    pthread_mutex_lock(&e->mu);
    run_remove(e, i);
    e->st.n_preemptions++;
    r->next = e->q_head;
    e->q_head = r;
    if (!e->q_tail) e->q_tail = r;
    e->n_queued++;
    pthread_mutex_unlock(&e->mu);
}

static void run_embed(bm_engine *e, emb_job *j) {
    int32_t E = e->m->hp.n_embd;
    bm_seq s;
    float *hid = NULL;
    j->st = BM_OK;
    if (!ensure_free(e, blocks_for(j->n))) {
        j->st = bm_err_set(&j->err, BM_EBUSY, "embed: the KV cache has no room for %d tokens "
                           "now", j->n);
        return;
    }
    if ((j->st = bm_seq_init(&s, e->n_ctx, &j->err))) return;
    hid = bm_calloc((size_t)j->n, (size_t)E * sizeof(float), &j->err);
    if (!hid) {
        j->st = BM_ENOMEM;
    } else {
        int32_t *pos = malloc((size_t)j->n * sizeof(int32_t));
        bm_seq **sq = malloc((size_t)j->n * sizeof(bm_seq *));
        if (!pos || !sq) {
            j->st = bm_err_set(&j->err, BM_ENOMEM, "embed: out of memory");
        } else {
            for (int32_t i = 0; i < j->n; i++) pos[i] = i, sq[i] = &s;
            bm_batch b = {j->n, j->toks, pos, sq, NULL, hid};
            j->st = bm_model_forward(e->ctx, &b, NULL, &j->err);
        }
        free(pos);
        free(sq);
    }
    if (!j->st) {
        double norm = 0;
        for (int32_t d = 0; d < E; d++) {
            double acc = 0;
            for (int32_t i = 0; i < j->n; i++) acc += hid[(size_t)i * E + d];
            j->out[d] = (float)(acc / j->n);
            norm += (double)j->out[d] * j->out[d];
        }
        norm = sqrt(norm);
        if (norm > 0)
            for (int32_t d = 0; d < E; d++) j->out[d] = (float)(j->out[d] / norm);
    }
    free(hid);
    bm_seq_fini(&s, e->kv);
}

/* One step. Returns false when the engine is shutting down and everything is finished. */
static bool step(bm_engine *e) {
    req *dead = NULL;
    emb_job *jobs = NULL;
    pthread_mutex_lock(&e->mu);
    while (!e->quit && !e->n_run && !e->q_head && !e->emb) pthread_cond_wait(&e->cv, &e->mu);
    bool quit = e->quit;
    /* cancelled or (on quit) all queued requests leave the queue */
    for (req **pp = &e->q_head; *pp;) {
        req *r = *pp;
        if (quit || r->cancel) {
            *pp = r->next;
            r->next = dead;
            dead = r;
            e->n_queued--;
        } else {
            pp = &r->next;
        }
    }
    e->q_tail = NULL;
    for (req *r = e->q_head; r; r = r->next) e->q_tail = r;
    for (int32_t i = 0; i < e->n_run;) {
        if (quit || e->run[i]->cancel) {
            e->run[i]->next = dead;
            dead = e->run[i];
            run_remove(e, i);
        } else {
            i++;
        }
    }
    jobs = e->emb;
    e->emb = NULL;
    pthread_mutex_unlock(&e->mu);
    while (dead) {
        req *r = dead;
        dead = r->next;
        engine_finish(e, r, BM_FINISH_CANCELLED, NULL);
    }
    if (quit) {
        pthread_mutex_lock(&e->mu);
        for (emb_job *j = jobs; j; j = j->next) {
            j->st = bm_err_set(&j->err, BM_ECANCELED, "embed: engine shut down");
            j->done = true;
        }
        pthread_cond_broadcast(&e->cv_emb);
        pthread_mutex_unlock(&e->mu);
        return false;
    }
    for (emb_job *j = jobs; j; j = j->next) run_embed(e, j);
    if (jobs) {
        pthread_mutex_lock(&e->mu);
        for (emb_job *j = jobs; j; j = j->next) j->done = true;
        pthread_cond_broadcast(&e->cv_emb);
        pthread_mutex_unlock(&e->mu);
    }
    /* admission, FIFO */
    for (;;) {
        pthread_mutex_lock(&e->mu);
        req *r = e->n_run < e->n_parallel ? e->q_head : NULL;
        if (r) {
            bm_err err;
            bm_status st = attach(e, r, true, &err);
            if (st == BM_EBUSY && e->n_run > 0) r = NULL;
            else if (st == BM_EBUSY) st = attach(e, r, false, &err); /* alone: it fits */
            if (r) {
                e->q_head = r->next;
                if (!e->q_head) e->q_tail = NULL;
                e->n_queued--;
                if (!st) e->run[e->n_run++] = r;
            }
            pthread_mutex_unlock(&e->mu);
            if (r && st) {
                engine_finish(e, r, BM_FINISH_ERROR, err.msg);
                continue;
            }
            if (r) continue;
        } else {
            pthread_mutex_unlock(&e->mu);
        }
        break;
    }
    /* sequences without a cache view (after a context shift) get one */
    for (int32_t i = 0; i < e->n_run; i++) {
        req *r = e->run[i];
        bm_err err;
        if (!r->has_seq && attach(e, r, false, &err)) {
            pthread_mutex_lock(&e->mu);
            run_remove(e, i--);
            pthread_mutex_unlock(&e->mu);
            engine_finish(e, r, BM_FINISH_ERROR, err.msg);
        }
    }
    if (e->n_run == 0) return true;
    /* batch: decode tokens first, then prompt chunks */
    int32_t n = 0, n_out = 0;
    req **inb = calloc((size_t)e->n_run, sizeof *inb); /* requests in the batch, run order */
    int32_t n_inb = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t i = 0; i < e->n_run && n < e->max_batch; i++) {
            req *r = e->run[i];
            int32_t pending = r->n_toks - r->n_eval;
            if ((pass == 0) != (pending == 1)) continue;
            int32_t take = pending < e->max_batch - n ? pending : e->max_batch - n;
            int32_t need = blocks_for(r->n_eval + take) - r->seq.n_blocks;
            while (!ensure_free(e, need)) {
                /* preempt the newest running sequence not yet in the batch */
                int32_t v = e->n_run - 1;
                while (v > i) {
                    bool used = false;
                    for (int32_t k = 0; k < n_inb; k++) used |= inb[k] == e->run[v];
                    if (!used) break;
                    v--;
                }
                if (v <= i) break;
                preempt(e, v);
            }
            if (!ensure_free(e, need)) {
                if (pass == 1) continue; /* the prompt waits for decoding sequences */
                preempt(e, i--);
                continue;
            }
            bm_err err;
            BM_ASSERT(bm_seq_reserve(&r->seq, e->kv, r->n_eval + take, &err) == BM_OK);
            for (int32_t k = 0; k < take; k++) {
                e->b_tok[n] = r->toks[r->n_eval + k];
                e->b_pos[n] = r->n_eval + k;
                e->b_seq[n] = &r->seq;
                e->b_want[n] = k == take - 1 && take == pending;
                if (e->b_want[n]) e->b_out[n_out++] = r;
                n++;
            }
            if (inb) inb[n_inb++] = r;
        }
    }
    free(inb);
    if (n == 0) return true;
    bm_err err;
    bm_batch b = {n, e->b_tok, e->b_pos, e->b_seq, e->b_want, NULL};
    bm_status st = bm_model_forward(e->ctx, &b, e->logits, &err);
    if (st) {
        /* every sequence in the batch fails with the message */
        for (int32_t i = 0; i < e->n_run;) {
            req *r = e->run[i];
            bool in = false;
            for (int32_t k = 0; k < n; k++) in |= e->b_seq[k] == &r->seq;
            if (!in) {
                i++;
                continue;
            }
            pthread_mutex_lock(&e->mu);
            run_remove(e, i);
            pthread_mutex_unlock(&e->mu);
            engine_finish(e, r, BM_FINISH_ERROR, err.msg);
        }
        return true;
    }
    for (int32_t i = 0; i < e->n_run; i++) {
        req *r = e->run[i];
        r->n_eval = r->seq.n_pos;
        cache_register(e, r);
    }
    for (int32_t k = 0; k < n_out; k++) {
        req *r = e->b_out[k];
        bool fin = engine_emit_token(e, r, e->logits + (size_t)k * e->n_vocab);
        if (fin) {
            pthread_mutex_lock(&e->mu);
            for (int32_t i = 0; i < e->n_run; i++)
                if (e->run[i] == r) {
                    run_remove(e, i);
                    break;
                }
            pthread_mutex_unlock(&e->mu);
        }
    }
    pthread_mutex_lock(&e->mu);
    e->st.n_steps++;
    pthread_mutex_unlock(&e->mu);
    return true;
}

static void *thread_main(void *arg) {
    bm_engine *e = arg;
    while (step(e)) engine_update_kv_stats(e);
    return NULL;
}

/* ---- public API ----------------------------------------------------------------------------- */

bm_status bm_engine_new(const bm_model *m, const bm_tok *tok, const bm_engine_params *p,
                        bm_engine **out, bm_err *err) {
    *out = NULL;
    bm_engine_params d = {0};
    if (!p) p = &d;
    if (bm_tok_n_vocab(tok) > m->hp.n_vocab)
        return bm_err_set(err, BM_EINVAL, "engine: tokenizer has %d tokens, the model %d",
                          bm_tok_n_vocab(tok), m->hp.n_vocab);
    bm_engine *e = bm_calloc(1, sizeof *e, err);
    if (!e) return BM_ENOMEM;
    e->m = m;
    e->tok = tok;
    e->n_vocab = m->hp.n_vocab;
    e->n_ctx = p->n_ctx > 0 ? p->n_ctx
                            : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    e->n_parallel = p->n_parallel > 0 ? p->n_parallel : 4;
    e->max_batch = p->max_batch > 0 ? p->max_batch : 512;
    e->max_queue = p->max_queue > 0 ? p->max_queue : 64;
    if (e->n_parallel > 1024) {
        free(e);
        return bm_err_set(err, BM_ERANGE, "engine: n_parallel %d exceeds the limit of 1024",
                          p->n_parallel);
    }
    if (e->max_batch < e->n_parallel) e->max_batch = e->n_parallel;
    uint64_t per_seq = (uint64_t)bm_model_kv_bytes_per_token(m) *
                       (uint64_t)(blocks_for(e->n_ctx) * BM_KV_BLOCK);
    uint64_t n_seq = p->kv_bytes ? p->kv_bytes / (per_seq ? per_seq : 1) : (uint64_t)e->n_parallel;
    if (n_seq < 1) n_seq = 1;
    if (n_seq > 4096) n_seq = 4096;
    bm_ctx_params cp = {.n_ctx = e->n_ctx, .max_batch = e->max_batch, .n_seq = (int32_t)n_seq,
                        .n_threads = p->n_threads};
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_cond_init(&e->cv_emb, NULL);
    bm_status st = bm_ctx_new(m, &cp, &e->ctx, err);
    if (st) goto fail;
    e->kv = bm_ctx_kv(e->ctx);
    size_t nb = (size_t)e->kv->n_blocks, V = (size_t)e->n_vocab;
    e->blk_hash = bm_calloc(nb, sizeof(uint64_t), err);
    e->blk_tick = bm_calloc(nb, sizeof(uint64_t), err);
    e->blk_cached = bm_calloc(nb, 1, err);
    e->blk_toks = bm_calloc(nb * BM_KV_BLOCK, sizeof(int32_t), err);
    size_t hts = 16;
    while (hts < 2 * nb) hts *= 2;
    e->ht_mask = (uint32_t)(hts - 1);
    e->ht = bm_malloc(hts * sizeof(int32_t), err);
    if (e->ht) memset(e->ht, 0xFF, hts * sizeof(int32_t));
    e->run = bm_calloc((size_t)e->n_parallel, sizeof(req *), err);
    e->b_tok = bm_calloc((size_t)e->max_batch, sizeof(int32_t), err);
    e->b_pos = bm_calloc((size_t)e->max_batch, sizeof(int32_t), err);
    e->b_seq = bm_calloc((size_t)e->max_batch, sizeof(bm_seq *), err);
    e->b_want = bm_calloc((size_t)e->max_batch, sizeof(bool), err);
    e->b_out = bm_calloc((size_t)e->max_batch, sizeof(req *), err);
    e->logits = bm_calloc((size_t)e->n_parallel * V, sizeof(float), err);
    e->row = bm_calloc(V, sizeof(float), err);
    e->tb_off = bm_calloc(V + 1, sizeof(uint32_t), err);
    e->eog = bm_calloc(V, sizeof(int32_t), err);
    if (!e->blk_hash || !e->blk_tick || !e->blk_cached || !e->blk_toks || !e->ht || !e->run ||
        !e->b_tok ||
        !e->b_pos || !e->b_seq || !e->b_want || !e->b_out || !e->logits || !e->row ||
        !e->tb_off || !e->eog) {
        st = BM_ENOMEM;
        goto fail;
    }
    /* token bytes (control tokens decode to nothing: a grammar never accepts them) */
    size_t total = 0, cap = V * 8;
    e->tb = bm_malloc(cap, err);
    if (!e->tb) {
        st = BM_ENOMEM;
        goto fail;
    }
    int32_t nt = bm_tok_n_vocab(tok);
    for (int32_t i = 0; i < e->n_vocab; i++) {
        e->tb_off[i] = (uint32_t)total;
        if (i >= nt) continue;
        if (bm_tok_is_eog(tok, i)) e->eog[e->n_eog++] = i;
        size_t k = bm_tok_decode(tok, &i, 1, true, NULL, 0);
        if (total + k + 1 > cap) {
            cap = (total + k + 1) * 2;
            uint8_t *t = realloc(e->tb, cap);
            if (!t) {
                st = bm_err_set(err, BM_ENOMEM, "engine: out of memory for token bytes");
                goto fail;
            }
            e->tb = t;
        }
        bm_tok_decode(tok, &i, 1, true, (char *)e->tb + total, k + 1);
        total += k;
    }
    e->tb_off[e->n_vocab] = (uint32_t)total;
    e->st.kv_blocks_total = e->kv->n_blocks;
    e->next_id = 1;
    if (pthread_create(&e->th, NULL, thread_main, e)) {
        st = bm_err_set(err, BM_ENOMEM, "engine: cannot start the scheduler thread");
        goto fail;
    }
    e->th_started = true;
    *out = e;
    return BM_OK;
fail:
    bm_engine_free(e);
    return st;
}

void bm_engine_free(bm_engine *e) {
    if (!e) return;
    if (e->th_started) {
        pthread_mutex_lock(&e->mu);
        e->quit = true;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->th, NULL);
    }
    bm_ctx_free(e->ctx);
    free(e->blk_hash);
    free(e->blk_tick);
    free(e->blk_cached);
    free(e->blk_toks);
    free(e->ht);
    free(e->run);
    free(e->b_tok);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_want);
    free(e->b_out);
    free(e->logits);
    free(e->row);
    free(e->tb_off);
    free(e->tb);
    free(e->eog);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    pthread_cond_destroy(&e->cv_emb);
    free(e);
}

static bm_status check_params(const bm_engine *e, const bm_gen_params *p, bm_err *err) {
    bm_status st = bm_sample_params_check(&p->sample, err);
    if (st) return st;
    if (!(p->repeat_penalty > 0 && p->repeat_penalty <= 10))
        return bm_err_set(err, BM_EINVAL, "repeat_penalty must be in (0, 10], got %g",
                          (double)p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return bm_err_set(err, BM_EINVAL, "repeat_last_n must be >= -1, got %d",
                          p->repeat_last_n);
    if (!(p->presence_penalty >= -2 && p->presence_penalty <= 2))
        return bm_err_set(err, BM_EINVAL, "presence_penalty must be in [-2, 2], got %g",
                          (double)p->presence_penalty);
    if (!(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
        return bm_err_set(err, BM_EINVAL, "frequency_penalty must be in [-2, 2], got %g",
                          (double)p->frequency_penalty);
    if (p->n_bias > 1024)
        return bm_err_set(err, BM_EINVAL, "logit_bias has %zu entries, the limit is 1024",
                          p->n_bias);
    for (size_t i = 0; i < p->n_bias; i++) {
        if (p->bias_ids[i] < 0 || p->bias_ids[i] >= e->n_vocab)
            return bm_err_set(err, BM_EINVAL, "logit_bias: token id %d is outside the "
                              "vocabulary [0, %d)", p->bias_ids[i], e->n_vocab);
        if (!(p->bias_vals[i] >= -100 && p->bias_vals[i] <= 100))
            return bm_err_set(err, BM_EINVAL, "logit_bias: value %g for token %d is outside "
                              "[-100, 100]", (double)p->bias_vals[i], p->bias_ids[i]);
    }
    if (p->n_stop > 16)
        return bm_err_set(err, BM_EINVAL, "stop: %zu strings, the limit is 16", p->n_stop);
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t l = p->stop[i] ? strlen(p->stop[i]) : 0;
        if (l == 0 || l > 256 || !bm_utf8_valid((const uint8_t *)p->stop[i], l))
            return bm_err_set(err, BM_EINVAL, "stop: string %zu must be 1..256 bytes of valid "
                              "UTF-8", i);
    }
    if (p->top_logprobs > 20)
        return bm_err_set(err, BM_EINVAL, "top_logprobs must be in [0, 20], got %d",
                          p->top_logprobs);
    return BM_OK;
}

bm_status bm_engine_submit(bm_engine *e, const int32_t *prompt, size_t n, const bm_gen_params *p,
                           bm_gen_cb cb, void *user, uint64_t *id_out, bm_err *err) {
    bm_gen_params dflt = bm_gen_defaults();
    if (!p) p = &dflt;
    if (!cb) return bm_err_set(err, BM_EINVAL, "engine: no callback");
    if (n == 0) return bm_err_set(err, BM_EINVAL, "engine: empty prompt");
    if (n >= (size_t)e->n_ctx)
        return bm_err_set(err, BM_ERANGE, "prompt of %zu tokens does not fit the context of %d "
                          "tokens (at least one token must be generated)", n, e->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= e->n_vocab)
            return bm_err_set(err, BM_EINVAL, "prompt token %zu: id %d is outside the "
                              "vocabulary [0, %d)", i, prompt[i], e->n_vocab);
    bm_status st = check_params(e, p, err);
    if (st) return st;
    req *r = bm_calloc(1, sizeof *r, err);
    if (!r) return BM_ENOMEM;
    r->gp = *p;
    r->cb = cb;
    r->user = user;
    r->n_prompt = (int32_t)n;
    r->cap_toks = e->n_ctx + 1;
    r->toks = bm_calloc((size_t)r->cap_toks, sizeof(int32_t), err);
    if (!r->toks) goto nomem;
    memcpy(r->toks, prompt, n * sizeof(int32_t));
    r->n_toks = r->gen_start = (int32_t)n;
    if (p->n_bias) {
        r->bias_ids = bm_calloc(p->n_bias, sizeof(int32_t), err);
        r->bias_vals = bm_calloc(p->n_bias, sizeof(float), err);
        if (!r->bias_ids || !r->bias_vals) goto nomem;
        memcpy(r->bias_ids, p->bias_ids, p->n_bias * sizeof(int32_t));
        memcpy(r->bias_vals, p->bias_vals, p->n_bias * sizeof(float));
    }
    if (p->n_stop) {
        r->stop = bm_calloc(p->n_stop, sizeof(char *), err);
        r->stop_len = bm_calloc(p->n_stop, sizeof(size_t), err);
        if (!r->stop || !r->stop_len) goto nomem;
        for (size_t i = 0; i < p->n_stop; i++) {
            r->stop_len[i] = strlen(p->stop[i]);
            if (!(r->stop[i] = strdup(p->stop[i]))) goto nomem;
        }
    }
    r->gp.bias_ids = NULL;
    r->gp.bias_vals = NULL;
    r->gp.stop = NULL;
    r->gp.json_schema = NULL;
    if (p->json_schema) {
        if ((st = bm_grammar_from_schema(p->json_schema, strlen(p->json_schema), &r->gram, err)))
            goto fail;
    } else if (p->json_object) {
        if ((st = bm_grammar_json_object(&r->gram, err))) goto fail;
    }
    if (r->gram) bm_gstate_init(&r->gs, r->gram);
    if ((st = bm_sampler_new(e->n_vocab, &p->sample, &r->smp, err))) goto fail;
    bm_detok_init(&r->dt, e->tok, true);
    r->t_submit = bm_time_now();
    pthread_mutex_lock(&e->mu);
    if (e->n_queued >= e->max_queue) {
        int32_t q = e->n_queued;
        pthread_mutex_unlock(&e->mu);
        engine_req_free(r);
        return bm_err_set(err, BM_EBUSY, "engine: %d requests are waiting (the limit); retry "
                          "later", q);
    }
    r->id = e->next_id++;
    if (e->q_tail) e->q_tail->next = r;
    else e->q_head = r;
    e->q_tail = r;
    e->n_queued++;
    e->st.n_requests++;
    if (id_out) *id_out = r->id;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return BM_OK;
nomem:
    st = BM_ENOMEM;
fail:
    engine_req_free(r);
    return st;
}

void bm_engine_cancel(bm_engine *e, uint64_t id) {
    pthread_mutex_lock(&e->mu);
    for (req *r = e->q_head; r; r = r->next)
        if (r->id == id) r->cancel = true;
    for (int32_t i = 0; i < e->n_run; i++)
        if (e->run[i]->id == id) e->run[i]->cancel = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

bm_status bm_engine_embed(bm_engine *e, const int32_t *tokens, size_t n, float *out, bm_err *err) {
    if (n == 0) return bm_err_set(err, BM_EINVAL, "embed: no tokens");
    if (n > (size_t)e->n_ctx)
        return bm_err_set(err, BM_ERANGE, "embed: %zu tokens exceed the context of %d", n,
                          e->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= e->n_vocab)
            return bm_err_set(err, BM_EINVAL, "embed: token %zu: id %d is outside the "
                              "vocabulary [0, %d)", i, tokens[i], e->n_vocab);
    emb_job j = {tokens, (int32_t)n, out, BM_OK, {0}, false, NULL};
    pthread_mutex_lock(&e->mu);
    j.next = e->emb;
    e->emb = &j;
    pthread_cond_broadcast(&e->cv);
    while (!j.done) pthread_cond_wait(&e->cv_emb, &e->mu);
    pthread_mutex_unlock(&e->mu);
    if (j.st && err) *err = j.err;
    return j.st;
}

void bm_engine_get_stats(bm_engine *e, bm_engine_stats *s) {
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    s->n_running = e->n_run;
    s->n_queued = e->n_queued;
    pthread_mutex_unlock(&e->mu);
}

int32_t bm_engine_n_ctx(const bm_engine *e) { return e->n_ctx; }
