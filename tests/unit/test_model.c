/* model layer: loading validation (each bad input a specific error), KV cache accounting,
 * forward-pass invariants (batching equals sequential, context limits). Numerics of the
 * forward pass are checked against PyTorch in tests/ref/test_forward.py. */
#include <criterion/criterion.h>

#include "baimo/gguf.h"
#include "baimo/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char base_path[256];

static void make_base(void) {
    snprintf(base_path, sizeof base_path, "/tmp/baimo_test_model_%d.gguf", (int)getpid());
    bm_make_params p = {.arch = "qwen2", .shape = "tiny", .type = BM_F32, .seed = 1,
                        .n_vocab = 300, .n_threads = 1};
    bm_err err = {0};
    cr_assert_eq(bm_model_make(&p, base_path, &err), BM_OK, "%s", err.msg);
}

static void drop_base(void) { remove(base_path); }

/* Copies the base model into out, changing it: arch name override, a tensor to drop, a tensor
 * whose second dimension is changed. */
static const char *g_arch;
static bool skip_arch(const char *key, size_t n) {
    return g_arch && !strcmp(key, "general.architecture");
}

static void variant(const char *out, const char *arch, const char *drop, const char *reshape) {
    bm_err err = {0};
    bm_gguf *g;
    cr_assert_eq(bm_gguf_open(base_path, &g, &err), BM_OK, "%s", err.msg);
    bm_gguf_writer *w = bm_gguf_writer_new(&err);
    g_arch = arch;
    cr_assert_eq(bm_gguf_writer_copy_kv(w, g, skip_arch, &err), BM_OK, "%s", err.msg);
    if (arch) bm_gguf_writer_set_str(w, "general.architecture", arch, &err);
    int64_t n = bm_gguf_n_tensors(g);
    for (int64_t i = 0; i < n; i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.p);
        if (drop && !strcmp(name, drop)) continue;
        int64_t ne[4];
        memcpy(ne, t->ne, sizeof ne);
        if (reshape && !strcmp(name, reshape)) ne[1] -= 1;
        cr_assert_eq(bm_gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, &err), BM_OK);
    }
    cr_assert_eq(bm_gguf_writer_begin(w, out, &err), BM_OK, "%s", err.msg);
    for (int64_t i = 0; i < n; i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.p);
        if (drop && !strcmp(name, drop)) continue;
        size_t nb = t->n_bytes;
        if (reshape && !strcmp(name, reshape)) nb -= nb / (size_t)t->ne[1];
        cr_assert_eq(bm_gguf_writer_write_tensor(w, t->data, nb, &err), BM_OK, "%s", err.msg);
    }
    cr_assert_eq(bm_gguf_writer_finish(w, &err), BM_OK, "%s", err.msg);
    bm_gguf_writer_free(w);
    bm_gguf_close(g);
}

TestSuite(model, .init = make_base, .fini = drop_base);

Test(model, loads_and_reports_shape) {
    bm_err err = {0};
    bm_model *m;
    cr_assert_eq(bm_model_load(base_path, &m, &err), BM_OK, "%s", err.msg);
    cr_assert_str_eq(m->arch->name, "qwen2");
    cr_assert_eq(m->hp.n_layer, 2);
    cr_assert_eq(m->hp.n_vocab, 300);
    cr_assert(m->hp.rope_neox);
    cr_assert_not_null(m->layers[1].bq, "qwen2 has q bias");
    bm_model_free(m);
}

Test(model, unknown_architecture_is_named) {
    char p[300];
    snprintf(p, sizeof p, "%s.arch.gguf", base_path);
    variant(p, "gpt-9000", NULL, NULL);
    bm_err err = {0};
    bm_model *m = NULL;
    cr_assert_eq(bm_model_load(p, &m, &err), BM_EUNSUPPORTED);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "gpt-9000") && strstr(err.msg, "qwen2"), "msg: %s", err.msg);
    remove(p);
}

Test(model, missing_tensor_is_named) {
    char p[300];
    snprintf(p, sizeof p, "%s.drop.gguf", base_path);
    variant(p, NULL, "blk.1.ffn_up.weight", NULL);
    bm_err err = {0};
    bm_model *m = NULL;
    cr_assert_eq(bm_model_load(p, &m, &err), BM_ENOTFOUND);
    cr_assert(strstr(err.msg, "blk.1.ffn_up.weight"), "msg: %s", err.msg);
    remove(p);
}

Test(model, missing_qwen2_bias_is_named) {
    char p[300];
    snprintf(p, sizeof p, "%s.bias.gguf", base_path);
    variant(p, NULL, "blk.0.attn_k.bias", NULL);
    bm_err err = {0};
    bm_model *m = NULL;
    cr_assert_eq(bm_model_load(p, &m, &err), BM_ENOTFOUND);
    cr_assert(strstr(err.msg, "attn_k.bias"), "msg: %s", err.msg);
    remove(p);
}

Test(model, wrong_shape_is_named_with_both_shapes) {
    char p[300];
    snprintf(p, sizeof p, "%s.shape.gguf", base_path);
    variant(p, NULL, NULL, "blk.0.attn_q.weight");
    bm_err err = {0};
    bm_model *m = NULL;
    cr_assert_eq(bm_model_load(p, &m, &err), BM_EFORMAT);
    cr_assert(strstr(err.msg, "blk.0.attn_q.weight") && strstr(err.msg, "[256, 255]") &&
                  strstr(err.msg, "[256, 256]"),
              "msg: %s", err.msg);
    remove(p);
}

Test(model, truncated_file_is_an_error_at_every_cut) {
    FILE *f = fopen(base_path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    char p[300];
    snprintf(p, sizeof p, "%s.cut.gguf", base_path);
    long cuts[] = {0, 3, 8, 20, 100, 1000, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        f = fopen(p, "wb");
        fwrite(buf, 1, (size_t)cuts[i], f);
        fclose(f);
        bm_err err = {0};
        bm_model *m = NULL;
        bm_status st = bm_model_load(p, &m, &err);
        cr_assert_neq(st, BM_OK, "cut at %ld loaded", cuts[i]);
        cr_assert_null(m);
        cr_assert_gt(strlen(err.msg), 10, "cut %ld: no message", cuts[i]);
    }
    free(buf);
    remove(p);
}

Test(model, missing_file_and_bad_directory) {
    bm_err err = {0};
    bm_model *m = NULL;
    cr_assert_eq(bm_model_load("/nonexistent/model.gguf", &m, &err), BM_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/model.gguf"));
    cr_assert_neq(bm_model_load("/tmp", &m, &err), BM_OK); /* no config.json */
    cr_assert(strstr(err.msg, "config.json"), "msg: %s", err.msg);
}

Test(model, kv_cache_accounting) {
    bm_err err = {0};
    bm_model *m;
    cr_assert_eq(bm_model_load(base_path, &m, &err), BM_OK);
    bm_kv *kv;
    cr_assert_eq(bm_kv_new(m, 4, &kv, &err), BM_OK);
    bm_seq a, b;
    cr_assert_eq(bm_seq_init(&a, 100, &err), BM_OK);
    cr_assert_eq(bm_seq_init(&b, 1000, &err), BM_OK);
    cr_assert_eq(bm_seq_reserve(&a, kv, 65, &err), BM_OK); /* 3 blocks */
    cr_assert_eq(kv->n_free, 1);
    cr_assert_eq(bm_seq_reserve(&a, kv, 101, &err), BM_ERANGE, "past the sequence's max");
    cr_assert_eq(bm_seq_reserve(&b, kv, 64, &err), BM_EBUSY, "cache full");
    a.n_pos = 65;
    bm_seq_truncate(&a, kv, 30);
    cr_assert_eq(a.n_blocks, 1);
    cr_assert_eq(kv->n_free, 3);
    cr_assert_eq(bm_seq_reserve(&b, kv, 64, &err), BM_OK);
    bm_seq_fini(&a, kv);
    bm_seq_fini(&b, kv);
    cr_assert_eq(kv->n_free, 4);
    bm_kv_free(kv);
    bm_model_free(m);
}

/* Two sequences in one batch give the same logits as each alone; decode after prefill gives
 * the same logits as a full prefill (the KV cache is right). */
Test(model, batched_equals_sequential) {
    bm_err err = {0};
    bm_model *m;
    cr_assert_eq(bm_model_load(base_path, &m, &err), BM_OK);
    bm_ctx *c;
    bm_ctx_params cp = {.n_ctx = 64, .max_batch = 8, .n_seq = 2, .n_threads = 2};
    cr_assert_eq(bm_ctx_new(m, &cp, &c, &err), BM_OK, "%s", err.msg);
    int V = m->hp.n_vocab;
    int32_t t1[11] = {1, 5, 9, 200, 3, 7, 7, 7, 150, 299, 0}, t2[5] = {4, 4, 8, 16, 32};
    float *ref1 = calloc((size_t)11 * V, 4), *ref2 = calloc((size_t)5 * V, 4);
    bm_seq s1, s2;
    bm_seq_init(&s1, 64, &err);
    bm_seq_init(&s2, 64, &err);
    cr_assert_eq(bm_model_eval(c, &s1, t1, 11, true, ref1, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_model_eval(c, &s2, t2, 5, true, ref2, &err), BM_OK);
    bm_seq_fini(&s1, bm_ctx_kv(c));
    bm_seq_fini(&s2, bm_ctx_kv(c));
    /* interleaved batch: 6 of seq1 then 5 of seq2, then the rest of seq1 one by one */
    bm_seq_init(&s1, 64, &err);
    bm_seq_init(&s2, 64, &err);
    int32_t tok[11], pos[11];
    bm_seq *sq[11];
    for (int i = 0; i < 6; i++) tok[i] = t1[i], pos[i] = i, sq[i] = &s1;
    for (int i = 0; i < 5; i++) tok[6 + i] = t2[i], pos[6 + i] = i, sq[6 + i] = &s2;
    float *out = calloc((size_t)11 * V, 4);
    bm_batch b = {11, tok, pos, sq, NULL, NULL};
    cr_assert_eq(bm_model_forward(c, &b, out, &err), BM_OK, "%s", err.msg);
    float maxd = 0;
    for (int i = 0; i < 6; i++)
        for (int v = 0; v < V; v++) maxd = fmaxf(maxd, fabsf(out[i * V + v] - ref1[i * V + v]));
    for (int i = 0; i < 5; i++)
        for (int v = 0; v < V; v++)
            maxd = fmaxf(maxd, fabsf(out[(6 + i) * V + v] - ref2[i * V + v]));
    for (int i = 6; i < 11; i++) {
        cr_assert_eq(bm_model_eval(c, &s1, &t1[i], 1, false, out, &err), BM_OK);
        for (int v = 0; v < V; v++) maxd = fmaxf(maxd, fabsf(out[v] - ref1[i * V + v]));
    }
    cr_assert_lt(maxd, 1e-4f, "batched vs sequential differ by %g", maxd);
    /* bad batches are refused before touching the cache */
    int32_t badtok = V, p0 = s2.n_pos;
    bm_seq *sp = &s2;
    bm_batch bb = {1, &badtok, &p0, &sp, NULL, NULL};
    cr_assert_eq(bm_model_forward(c, &bb, out, &err), BM_EINVAL);
    cr_assert(strstr(err.msg, "vocabulary"), "%s", err.msg);
    int32_t okt = 1, wrongpos = p0 + 3;
    bm_batch bp = {1, &okt, &wrongpos, &sp, NULL, NULL};
    cr_assert_eq(bm_model_forward(c, &bp, out, &err), BM_EINVAL);
    cr_assert(strstr(err.msg, "position"), "%s", err.msg);
    bm_seq_fini(&s1, bm_ctx_kv(c));
    bm_seq_fini(&s2, bm_ctx_kv(c));
    free(ref1);
    free(ref2);
    free(out);
    bm_ctx_free(c);
    bm_model_free(m);
}

Test(model, context_overflow_is_a_clear_error) {
    bm_err err = {0};
    bm_model *m;
    cr_assert_eq(bm_model_load(base_path, &m, &err), BM_OK);
    bm_ctx *c;
    bm_ctx_params cp = {.n_ctx = 16, .n_threads = 1};
    cr_assert_eq(bm_ctx_new(m, &cp, &c, &err), BM_OK);
    bm_seq s;
    bm_seq_init(&s, 16, &err);
    int32_t toks[17] = {0};
    float *lg = calloc((size_t)m->hp.n_vocab, 4);
    cr_assert_eq(bm_model_eval(c, &s, toks, 17, false, lg, &err), BM_ERANGE);
    cr_assert(strstr(err.msg, "17") && strstr(err.msg, "16"), "msg: %s", err.msg);
    cr_assert_eq(s.n_pos, 0, "nothing evaluated");
    cr_assert_eq(bm_model_eval(c, &s, toks, 16, false, lg, &err), BM_OK);
    cr_assert_eq(bm_model_eval(c, &s, toks, 1, false, lg, &err), BM_ERANGE);
    bm_seq_fini(&s, bm_ctx_kv(c));
    free(lg);
    bm_ctx_free(c);
    bm_model_free(m);
}

/* bm_ctx_params.profile: every step of a pass is charged (the matmul and attention steps take
 * time on any machine), the logits are the same as without the timers, a context without it
 * reports zeros, and reset clears. */
Test(model, profile_times_each_step) {
    bm_err err = {0};
    bm_model *m;
    cr_assert_eq(bm_model_load(base_path, &m, &err), BM_OK);
    const int32_t nv = m->hp.n_vocab;
    int32_t toks[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float *lg[2] = {calloc((size_t)nv, 4), calloc((size_t)nv, 4)};
    bm_profile pr[2];
    for (int on = 0; on < 2; on++) {
        bm_ctx *c;
        bm_ctx_params cp = {.n_ctx = 32, .n_threads = 2, .profile = on};
        cr_assert_eq(bm_ctx_new(m, &cp, &c, &err), BM_OK);
        bm_seq s;
        bm_seq_init(&s, 32, &err);
        cr_assert_eq(bm_model_eval(c, &s, toks, 8, false, lg[on], &err), BM_OK);
        bm_ctx_profile(c, &pr[on]);
        if (on) {
            bm_profile z;
            bm_ctx_profile_reset(c);
            bm_ctx_profile(c, &z);
            for (int k = 0; k < BM_PROF_COUNT; k++) cr_assert_eq(z.secs[k], 0.0);
            cr_assert_eq(z.n_forward, 0);
        }
        bm_seq_fini(&s, bm_ctx_kv(c));
        bm_ctx_free(c);
    }
    for (int k = 0; k < BM_PROF_COUNT; k++) {
        cr_assert_eq(pr[0].secs[k], 0.0, "profile off: %s %g", bm_prof_step_name(k),
                     pr[0].secs[k]);
        cr_assert(pr[1].secs[k] >= 0, "%s", bm_prof_step_name(k));
    }
    cr_assert_eq(pr[1].n_forward, 1);
    const int timed[] = {BM_PROF_QKV, BM_PROF_ATTN, BM_PROF_GATE_UP, BM_PROF_DOWN, BM_PROF_HEAD};
    for (size_t i = 0; i < sizeof timed / sizeof timed[0]; i++)
        cr_assert(pr[1].secs[timed[i]] > 0, "%s not timed", bm_prof_step_name(timed[i]));
    cr_assert_str_eq(bm_prof_step_name(BM_PROF_ATTN), "attention");
    cr_assert_str_eq(bm_prof_step_name(BM_PROF_COUNT), "?");
    cr_assert_eq(memcmp(lg[0], lg[1], (size_t)nv * 4), 0, "timers changed the logits");
    free(lg[0]);
    free(lg[1]);
    bm_model_free(m);
}
