/* Generation jobs: one request's n sequences in the engine. The engine's callback (on its
 * scheduler thread) appends text and token records under the job's mutex and wakes the HTTP
 * thread; the job is reference-counted so a client that leaves early (the job is cancelled)
 * never frees memory a late engine callback still writes to. */
#include "serve/serve_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *srv_finish_name(bm_finish f, bool tool_calls) {
    switch (f) {
    case BM_FINISH_STOP: return tool_calls ? "tool_calls" : "stop";
    case BM_FINISH_LENGTH: return "length";
    case BM_FINISH_CANCELLED: return "cancelled";
    case BM_FINISH_ERROR: return "error";
    default: return NULL;
    }
}

static void job_unref_locked(srv_job *j) {
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    for (int i = 0; i < j->n; i++) {
        srv_buf_free(&j->ch[i].text);
        free(j->ch[i].toks);
    }
    free(j->ch);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

typedef struct cb_ctx {
    srv_job *j;
    int idx;
} cb_ctx;

static int on_event(void *user, const bm_gen_event *ev) {
    srv_job *j = (srv_job *)((uintptr_t)user & ~(uintptr_t)63);
    int idx = (int)((uintptr_t)user & 63);
    double now = bm_time_now();
    pthread_mutex_lock(&j->mu);
    srv_choice *c = &j->ch[idx];
    srv_metrics *mt = &j->srv->metrics;
    if (ev->n_text) srv_buf_put(&c->text, ev->text, ev->n_text);
    if (ev->token >= 0) {
        if (c->n_gen == 0 && c->t_first == 0) {
            c->t_first = now;
            srv_metrics_observe(mt, &mt->ttft, now - j->t0);
        } else if (c->t_last > 0) {
            srv_metrics_observe(mt, &mt->itl, now - c->t_last);
        }
        c->t_last = now;
        if (j->want_logprobs && c->n_toks < 1u << 20) {
            if (c->n_toks == c->cap_toks) {
                size_t cap = c->cap_toks ? c->cap_toks * 2 : 64;
                srv_tokrec *q = realloc(c->toks, cap * sizeof *q);
                if (q) c->toks = q, c->cap_toks = cap;
            }
            if (c->n_toks < c->cap_toks) {
                srv_tokrec *t = &c->toks[c->n_toks++];
                t->id = ev->token;
                t->logprob = ev->logprob;
                t->n_top = ev->n_top < 0 ? 0 : ev->n_top > 20 ? 20 : ev->n_top;
                if (t->n_top) memcpy(t->top, ev->top, (size_t)t->n_top * sizeof *t->top);
            }
        }
    }
    c->n_prompt = ev->n_prompt;
    c->n_cached = ev->n_cached;
    c->n_gen = ev->n_gen;
    int cancel = j->cancel;
    j->version++;
    if (ev->finish != BM_FINISH_NONE && !c->done) {
        c->done = true;
        c->finish = ev->finish;
        if (ev->error) snprintf(c->error, sizeof c->error, "%s", ev->error);
        j->n_done++;
        pthread_mutex_lock(&mt->mu);
        mt->prompt_tokens += (uint64_t)(ev->n_prompt > 0 ? ev->n_prompt : 0);
        mt->gen_tokens += (uint64_t)(ev->n_gen > 0 ? ev->n_gen : 0);
        pthread_mutex_unlock(&mt->mu);
        pthread_cond_broadcast(&j->cv);
        job_unref_locked(j); /* the engine's reference */
        return cancel;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return cancel;
}

srv_job *srv_job_start(bm_server *s, srv_model *m, const srv_ids *prompt, srv_gen *g,
                       srv_error *e) {
    int32_t n_ctx = m->n_ctx;
    if (prompt->n >= (size_t)n_ctx) {
        srv_fail(e, 400, "messages", "the prompt has %zu tokens but the context holds %d "
                 "(prompt plus generated tokens must fit)", prompt->n, n_ctx);
        snprintf(e->code, sizeof e->code, "context_length_exceeded");
        return NULL;
    }
    /* 64-byte alignment leaves the low 6 bits of the pointer for the choice index */
    srv_job *j = aligned_alloc(64, (sizeof *j + 63) / 64 * 64);
    if (!j) {
        srv_fail(e, 500, NULL, "out of memory");
        return NULL;
    }
    memset(j, 0, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->srv = s;
    j->m = m;
    j->n = g->n;
    j->refs = 1;
    j->t0 = bm_time_now();
    j->want_logprobs = g->gp.top_logprobs >= 0;
    j->ch = calloc((size_t)g->n, sizeof *j->ch);
    if (!j->ch) {
        srv_fail(e, 500, NULL, "out of memory");
        srv_job_release(j);
        return NULL;
    }
    for (int i = 0; i < g->n; i++) {
        bm_gen_params gp = g->gp;
        gp.sample.seed = g->gp.sample.seed + (uint64_t)i;
        bm_err err = {0};
        pthread_mutex_lock(&j->mu);
        j->refs++;
        pthread_mutex_unlock(&j->mu);
        bm_status st = bm_engine_submit(m->sm->engine, prompt->p, prompt->n, &gp, on_event,
                                        (void *)((uintptr_t)j | (uintptr_t)i), &j->ch[i].id,
                                        &err);
        if (st) {
            pthread_mutex_lock(&j->mu);
            j->refs--;
            pthread_mutex_unlock(&j->mu);
            srv_fail_status(e, &err, st == BM_EINVAL ? NULL : NULL);
            if (st == BM_ERANGE) snprintf(e->param, sizeof e->param, "messages");
            srv_job_release(j);
            return NULL;
        }
        pthread_mutex_lock(&j->mu);
        j->ch[i].submitted = true;
        pthread_mutex_unlock(&j->mu);
    }
    return j;
}

void srv_job_cancel(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancel = true;
    uint64_t ids[64];
    int n = 0;
    for (int i = 0; i < j->n && n < 64; i++)
        if (j->ch[i].submitted && !j->ch[i].done) ids[n++] = j->ch[i].id;
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < n; i++) bm_engine_cancel(j->m->sm->engine, ids[i]);
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    srv_job_cancel(j);
    pthread_mutex_lock(&j->mu);
    job_unref_locked(j);
}

void srv_job_lock_wait(srv_job *j, uint64_t *seen) {
    pthread_mutex_lock(&j->mu);
    if (j->version == *seen && j->n_done < j->n) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    *seen = j->version;
}

bool srv_job_wait(srv_job *j, srv_req *r, srv_error *e) {
    uint64_t seen = 0;
    for (;;) {
        srv_job_lock_wait(j, &seen);
        bool done = j->n_done == j->n;
        pthread_mutex_unlock(&j->mu);
        if (done) return true;
        if (r->srv->stopping) {
            srv_job_cancel(j);
            return srv_fail(e, 503, NULL, "the server is shutting down");
        }
        if (bm_time_now() - j->t0 > r->srv->timeout_s) {
            srv_job_cancel(j);
            return srv_fail(e, 504, NULL, "the request ran longer than the timeout of %g s",
                            r->srv->timeout_s);
        }
        if (srv_client_gone(r)) {
            srv_job_cancel(j);
            return srv_fail(e, 499, NULL, "client closed the connection");
        }
    }
}

json_t *srv_usage_json(srv_job *j) {
    long long gen = 0, prompt = 0, cached = 0;
    for (int i = 0; i < j->n; i++) gen += j->ch[i].n_gen;
    if (j->n) prompt = j->ch[0].n_prompt, cached = j->ch[0].n_cached;
    json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt,
                          "completion_tokens", (json_int_t)gen, "total_tokens",
                          (json_int_t)(prompt + gen));
    json_object_set_new(u, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)cached));
    return u;
}

/* One token as OpenAI shows it: text (cleaned to UTF-8), logprob, raw bytes. */
static json_t *tok_entry(srv_model *m, int32_t id, float lp) {
    char buf[256];
    size_t n = bm_tok_decode(m->sm->tok, &id, 1, false, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    json_t *bytes = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(bytes, json_integer((uint8_t)buf[i]));
    return json_pack("{s:o,s:f,s:o}", "token", srv_json_text(buf, n), "logprob", (double)lp,
                     "bytes", bytes);
}

json_t *srv_logprobs_json(srv_model *m, const srv_tokrec *t, size_t n, bool chat) {
    json_t *content = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = tok_entry(m, t[i].id, t[i].logprob), *top = json_array();
        for (int k = 0; k < t[i].n_top; k++)
            json_array_append_new(top, tok_entry(m, t[i].top[k].id, t[i].top[k].logprob));
        json_object_set_new(e, "top_logprobs", top);
        json_array_append_new(content, e);
    }
    if (chat) return json_pack("{s:o}", "content", content);
    /* legacy completions shape */
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(content, i, e) {
        json_array_append(tokens, json_object_get(e, "token"));
        json_array_append(lps, json_object_get(e, "logprob"));
        json_t *d = json_object(), *te;
        size_t k;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, te)
            json_object_set(d, json_string_value(json_object_get(te, "token")),
                            json_object_get(te, "logprob"));
        json_array_append_new(tops, d);
    }
    json_decref(content);
    return json_pack("{s:o,s:o,s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs",
                     tops);
}
