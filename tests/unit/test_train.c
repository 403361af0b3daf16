/* Training: exact resume (20 steps == 10 + checkpoint + resume + 10, bitwise), finite-
 * difference gradient spot checks, thread-count independence, loss decrease on a repetitive
 * corpus, checkpoints that the inference forward pass reads with the same loss, shard and
 * mask files (round trip, rejection of corrupt headers and out-of-vocabulary ids). */
#include <criterion/criterion.h>

#include "baimo/model.h"
#include "baimo/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void mkdir_tmp(void) {
    snprintf(dir, sizeof dir, "/tmp/baimo_train_XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void rm_tmp(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
}

static bm_train_hparams tiny(const char *arch, bool tied) {
    bm_train_hparams hp = {.n_vocab = 16, .n_embd = 16, .n_layer = 2, .n_head = 4,
                           .n_head_kv = 2, .n_ff = 24, .n_ctx = 16, .tied = tied};
    snprintf(hp.arch, sizeof hp.arch, "%s", arch);
    return hp;
}

/* a repetitive corpus: pattern of period 7 over a vocabulary of 16 */
static void write_corpus(const char *split, uint64_t n, bool with_mask) {
    uint32_t *t = malloc(n * 4);
    uint8_t *m = malloc(n);
    for (uint64_t i = 0; i < n; i++) {
        t[i] = (uint32_t)((i * 5 + (i / 7) % 3) % 16);
        m[i] = (uint8_t)(i % 3 != 0);
    }
    char p[400];
    snprintf(p, sizeof p, "%s/%s_000.bin", dir, split);
    bm_err err = {0};
    cr_assert_eq(bm_shard_write(p, t, n, 16, &err), BM_OK, "%s", err.msg);
    if (with_mask) {
        snprintf(p, sizeof p, "%s/%s_000.mask", dir, split);
        cr_assert_eq(bm_mask_write(p, m, n, &err), BM_OK, "%s", err.msg);
    }
    free(t);
    free(m);
}

static bm_train_opts opts(int64_t steps) {
    bm_train_opts o = {.batch = 2, .seq = 12, .accum = 2, .steps = steps, .warmup = 3,
                       .lr = 3e-3f, .min_lr = 3e-4f, .clip = 1.0f,
                       .adamw = {0.9f, 0.95f, 1e-8f, 0.1f}, .seed = 5, .eval_batches = 2};
    return o;
}

Test(train, resume_is_bitwise_exact) {
    mkdir_tmp();
    write_corpus("train", 2000, true);
    bm_err err = {0};
    bm_pool *pool = bm_pool_new(2, &err);
    bm_data *d;
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_OK, "%s", err.msg);
    cr_assert(bm_data_has_mask(d));
    bm_train_hparams hp = tiny("qwen2", false);
    bm_train_opts o = opts(20);

    bm_tmodel *a;
    bm_trainer *ta;
    cr_assert_eq(bm_tmodel_new(&hp, 11, true, pool, &a, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_trainer_new(a, d, NULL, &o, NULL, &ta, &err), BM_OK, "%s", err.msg);
    for (int i = 0; i < 20; i++) cr_assert_eq(bm_trainer_step(ta, NULL, &err), BM_OK, "%s", err.msg);

    bm_tmodel *b;
    bm_trainer *tb;
    char ck[400];
    snprintf(ck, sizeof ck, "%s/ck.gguf", dir);
    cr_assert_eq(bm_tmodel_new(&hp, 11, true, pool, &b, &err), BM_OK);
    cr_assert_eq(bm_trainer_new(b, d, NULL, &o, NULL, &tb, &err), BM_OK);
    for (int i = 0; i < 10; i++) cr_assert_eq(bm_trainer_step(tb, NULL, &err), BM_OK);
    cr_assert_eq(bm_trainer_save(tb, ck, NULL, NULL, &err), BM_OK, "%s", err.msg);
    bm_trainer_free(tb);
    bm_tmodel_free(b);

    cr_assert_eq(bm_tmodel_load(ck, 0, pool, &b, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_trainer_new(b, d, NULL, &o, NULL, &tb, &err), BM_OK);
    cr_assert_eq(bm_trainer_resume(tb, ck, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_trainer_step_count(tb), 10);
    for (int i = 0; i < 10; i++) cr_assert_eq(bm_trainer_step(tb, NULL, &err), BM_OK);
    cr_assert_eq(bm_tmodel_n_floats(a), bm_tmodel_n_floats(b));
    cr_assert(memcmp(bm_tmodel_params(a), bm_tmodel_params(b),
                     bm_tmodel_n_floats(a) * sizeof(float)) == 0,
              "resumed run differs from the uninterrupted one");
    /* and a mismatched model refuses the optimizer state */
    bm_tmodel *c;
    bm_trainer *tc;
    bm_train_hparams hc = tiny("qwen2", true);
    cr_assert_eq(bm_tmodel_new(&hc, 11, true, pool, &c, &err), BM_OK);
    cr_assert_eq(bm_trainer_new(c, d, NULL, &o, NULL, &tc, &err), BM_OK);
    cr_assert_eq(bm_trainer_resume(tc, ck, &err), BM_EFORMAT);
    cr_assert(strstr(err.msg, "does not belong"), "%s", err.msg);
    bm_trainer_free(tc);
    bm_tmodel_free(c);
    bm_trainer_free(ta);
    bm_trainer_free(tb);
    bm_tmodel_free(a);
    bm_tmodel_free(b);
    bm_data_close(d);
    bm_pool_free(pool);
    rm_tmp();
}

static double loss_of(bm_tmodel *m, const int32_t *tok, const uint8_t *mask, int ns, int T) {
    double l = 0;
    int64_t n = 0;
    bm_err err = {0};
    cr_assert_eq(bm_tmodel_step(m, tok, mask, ns, T, false, 0, &l, &n, &err), BM_OK);
    return l;
}

static void fd_check(const char *arch, bool tied) {
    bm_err err = {0};
    bm_train_hparams hp = tiny(arch, tied);
    bm_tmodel *m;
    cr_assert_eq(bm_tmodel_new(&hp, 3, false, NULL, &m, &err), BM_OK, "%s", err.msg);
    float *p = bm_tmodel_params(m), *g = bm_tmodel_grads(m);
    /* perturb norms/biases away from their init so their gradients are generic */
    bm_rng r;
    bm_rng_seed(&r, 9);
    for (size_t i = 0; i < bm_tmodel_n_floats(m); i++) p[i] += 0.05f * bm_rng_normal(&r);
    enum { NS = 2, T = 6 };
    int32_t tok[NS * (T + 1)];
    uint8_t mask[NS * (T + 1)];
    for (int i = 0; i < NS * (T + 1); i++) {
        tok[i] = (int32_t)(bm_rng_u64(&r) % 16);
        mask[i] = (uint8_t)(i % 4 != 1);
    }
    double l;
    int64_t n = 0;
    cr_assert_eq(bm_tmodel_step(m, tok, mask, NS, T, true, 1.0f, &l, &n, &err), BM_OK);
    int checked = 0;
    for (int ti = 0; ti < bm_tmodel_n_tensors(m); ti++) {
        const bm_tparam *t = bm_tmodel_tensor(m, ti);
        size_t best = t->offset;
        for (size_t i = t->offset; i < t->offset + t->n; i++)
            if (fabsf(g[i]) > fabsf(g[best])) best = i;
        float h = 1e-2f, keep = p[best];
        p[best] = keep + h;
        double lp = loss_of(m, tok, mask, NS, T);
        p[best] = keep - h;
        double lm = loss_of(m, tok, mask, NS, T);
        p[best] = keep;
        double fd = (lp - lm) / (2.0 * h);
        cr_expect(fabs(fd - g[best]) <= 2e-3 + 0.02 * fabs(g[best]),
                  "%s: d/d %s[%zu]: analytic %g, finite difference %g", arch, t->name,
                  best - t->offset, g[best], fd);
        checked++;
    }
    cr_assert_gt(checked, 15);
    bm_tmodel_free(m);
}

Test(train, finite_difference_llama_tied) { fd_check("llama", true); }
Test(train, finite_difference_qwen2_untied) { fd_check("qwen2", false); }

Test(train, gradients_independent_of_thread_count) {
    bm_err err = {0};
    bm_train_hparams hp = tiny("llama", false);
    bm_pool *p3 = bm_pool_new(3, &err);
    bm_tmodel *a, *b;
    cr_assert_eq(bm_tmodel_new(&hp, 4, true, NULL, &a, &err), BM_OK);
    cr_assert_eq(bm_tmodel_new(&hp, 4, true, p3, &b, &err), BM_OK);
    int32_t tok[3 * 13];
    for (int i = 0; i < 3 * 13; i++) tok[i] = (i * 7 + 3) % 16;
    double la = 0, lb = 0;
    int64_t n = 0;
    cr_assert_eq(bm_tmodel_step(a, tok, NULL, 3, 12, true, 0.1f, &la, &n, &err), BM_OK);
    cr_assert_eq(bm_tmodel_step(b, tok, NULL, 3, 12, true, 0.1f, &lb, &n, &err), BM_OK);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(bm_tmodel_grads(a), bm_tmodel_grads(b),
                     bm_tmodel_n_floats(a) * sizeof(float)) == 0);
    bm_tmodel_free(a);
    bm_tmodel_free(b);
    bm_pool_free(p3);
}

Test(train, loss_decreases_on_repetitive_corpus) {
    mkdir_tmp();
    write_corpus("train", 3000, false);
    write_corpus("val", 400, false);
    bm_err err = {0};
    bm_data *d, *v;
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_data_open(dir, "val", &v, &err), BM_OK, "%s", err.msg);
    bm_pool *pool = bm_pool_new(2, &err);
    bm_train_hparams hp = tiny("llama", true);
    bm_tmodel *m;
    cr_assert_eq(bm_tmodel_new(&hp, 1, true, pool, &m, &err), BM_OK);
    bm_train_opts o = opts(60);
    o.lr = 1e-2f;
    o.accum = 1;
    bm_trainer *t;
    cr_assert_eq(bm_trainer_new(m, d, v, &o, NULL, &t, &err), BM_OK, "%s", err.msg);
    double v0, v1;
    cr_assert_eq(bm_trainer_eval(t, &v0, &err), BM_OK);
    bm_train_stats st = {0};
    for (int i = 0; i < 60; i++) cr_assert_eq(bm_trainer_step(t, &st, &err), BM_OK);
    cr_assert_eq(bm_trainer_eval(t, &v1, &err), BM_OK);
    cr_assert(v0 > 2.5, "initial loss %g should be near ln 16", v0);
    cr_assert(v1 < 0.5 * v0, "validation loss %g -> %g", v0, v1);
    cr_assert_eq(st.step, 60);

    /* the checkpoint runs in the inference forward pass with the same loss */
    char ck[400];
    snprintf(ck, sizeof ck, "%s/m.gguf", dir);
    cr_assert_eq(bm_trainer_save(t, ck, NULL, NULL, &err), BM_OK, "%s", err.msg);
    bm_model *im;
    cr_assert_eq(bm_model_load(ck, &im, &err), BM_OK, "%s", err.msg);
    bm_ctx *c;
    bm_ctx_params cp = {.n_ctx = 16, .max_batch = 16, .n_threads = 1};
    cr_assert_eq(bm_ctx_new(im, &cp, &c, &err), BM_OK, "%s", err.msg);
    int32_t tok[13];
    bm_data_window(v, 3, 12, tok, NULL);
    float *logits = malloc(12 * 16 * sizeof(float));
    bm_seq s;
    cr_assert_eq(bm_seq_init(&s, 16, &err), BM_OK);
    cr_assert_eq(bm_model_eval(c, &s, tok, 12, true, logits, &err), BM_OK, "%s", err.msg);
    double ref = 0;
    for (int i = 0; i < 12; i++) {
        const float *z = logits + i * 16;
        double mx = z[0], sum = 0;
        for (int j = 1; j < 16; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < 16; j++) sum += exp(z[j] - mx);
        ref += mx + log(sum) - z[tok[i + 1]];
    }
    double got = loss_of(m, tok, NULL, 1, 12);
    cr_assert(fabs(got - ref) <= 1e-4 * fabs(ref) + 1e-5, "train %g vs inference %g", got, ref);
    bm_seq_fini(&s, bm_ctx_kv(c));
    free(logits);
    bm_ctx_free(c);
    bm_model_free(im);
    bm_trainer_free(t);
    bm_tmodel_free(m);
    bm_data_close(d);
    bm_data_close(v);
    bm_pool_free(pool);
    rm_tmp();
}

Test(train, shards_validate) {
    mkdir_tmp();
    bm_err err = {0};
    bm_data *d;
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_ENOTFOUND);
    cr_assert(strstr(err.msg, "data prepare"), "%s", err.msg);
    uint32_t t[5] = {1, 2, 3, 4, 9};
    char p[400];
    snprintf(p, sizeof p, "%s/train_000.bin", dir);
    cr_assert_eq(bm_shard_write(p, t, 5, 10, &err), BM_OK);
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_data_n_tokens(d), 5);
    cr_assert_eq(bm_data_n_windows(d, 2), 2);
    int32_t w[3];
    uint8_t mk[3];
    bm_data_window(d, 3, 2, w, mk); /* window 3 mod 2 = 1: tokens 2..4 */
    cr_assert(w[0] == 3 && w[1] == 4 && w[2] == 9 && mk[0] == 1);
    bm_data_close(d);
    /* an id outside the declared vocabulary */
    cr_assert_eq(bm_shard_write(p, t, 5, 9, &err), BM_OK);
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_EFORMAT);
    cr_assert(strstr(err.msg, "outside the vocabulary"), "%s", err.msg);
    /* truncated file */
    cr_assert_eq(bm_shard_write(p, t, 5, 10, &err), BM_OK);
    cr_assert(truncate(p, 32 + 4 * 4) == 0);
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_EFORMAT);
    cr_assert(strstr(err.msg, "says 5 tokens"), "%s", err.msg);
    /* a mask of the wrong length */
    cr_assert_eq(bm_shard_write(p, t, 5, 10, &err), BM_OK);
    uint8_t m[4] = {1, 1, 1, 1};
    snprintf(p, sizeof p, "%s/train_000.mask", dir);
    cr_assert_eq(bm_mask_write(p, m, 4, &err), BM_OK);
    cr_assert_eq(bm_data_open(dir, "train", &d, &err), BM_EFORMAT);
    cr_assert(strstr(err.msg, "loss mask"), "%s", err.msg);
    rm_tmp();
}

Test(train, bad_hparams_rejected) {
    bm_err err = {0};
    bm_tmodel *m;
    bm_train_hparams hp = tiny("llama", true);
    hp.n_head_kv = 3;
    cr_assert_eq(bm_tmodel_new(&hp, 1, true, NULL, &m, &err), BM_EINVAL);
    cr_assert(strstr(err.msg, "kv-heads"), "%s", err.msg);
    hp = tiny("qwen3", true);
    cr_assert_eq(bm_tmodel_new(&hp, 1, true, NULL, &m, &err), BM_EUNSUPPORTED);
    hp = tiny("llama", true);
    hp.n_embd = 18; /* head size 18/4 not an integer */
    cr_assert_eq(bm_tmodel_new(&hp, 1, true, NULL, &m, &err), BM_EINVAL);
}

Test(train, schedule) {
    cr_assert_float_eq(bm_lr_at(0, 10, 100, 1.0f, 0.1f), 0.1f, 1e-7);
    cr_assert_float_eq(bm_lr_at(9, 10, 100, 1.0f, 0.1f), 1.0f, 1e-7);
    cr_assert_float_eq(bm_lr_at(10, 10, 100, 1.0f, 0.1f), 1.0f, 1e-6);
    cr_assert_float_eq(bm_lr_at(55, 10, 100, 1.0f, 0.1f), 0.55f, 1e-6);
    cr_assert_float_eq(bm_lr_at(100, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
    cr_assert_float_eq(bm_lr_at(500, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
}
