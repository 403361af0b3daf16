/* The training loop: micro-batches read from the shards (rank r of W takes sequences
 * [r*B, (r+1)*B) of each global micro-batch of W*B windows; window order shuffled per epoch), gradient accumulation,
 * all-reduce of the gradients over ranks, clipping, the scheduled learning rate and AdamW;
 * validation loss; checkpoints (GGUF model + optimizer sidecar) and exact resume.
 * The loss is the mean over every counted target of the global step, so W ranks x B
 * sequences and 1 rank x W*B sequences compute the same gradient (up to summation order). */
#include "train/train_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bm_trainer {
    bm_tmodel *m;
    const bm_data *train, *val;
    bm_train_opts o;
    bm_dist dist;
    float *adam_m, *adam_v;
    int64_t step;
    uint64_t data_pos;       /* windows consumed by all ranks so far */
    bm_rng rng;
    int32_t *tok;            /* [batch, T+1] */
    uint8_t *mask;
};

bm_status bm_trainer_new(bm_tmodel *model, const bm_data *train, const bm_data *val,
                         const bm_train_opts *o, const bm_dist *dist, bm_trainer **out,
                         bm_err *err) {
    *out = NULL;
    const bm_train_hparams *h = &model->hp;
    if (o->batch < 1 || o->seq < 1 || o->seq > h->n_ctx || o->accum < 1)
        return bm_err_set(err, BM_EINVAL, "train: batch %d, sequence %d (context %d), accum %d: "
                          "each must be >= 1 and the sequence <= the context", o->batch, o->seq,
                          h->n_ctx, o->accum);
    const bm_data *ds[2] = {train, val};
    for (int i = 0; i < 2; i++) {
        if (!ds[i]) continue;
        if (bm_data_n_vocab(ds[i]) > (uint32_t)h->n_vocab)
            return bm_err_set(err, BM_EINVAL, "train: the data's vocabulary (%u) is larger than "
                              "the model's (%d)", bm_data_n_vocab(ds[i]), h->n_vocab);
        if (bm_data_n_windows(ds[i], o->seq) == 0)
            return bm_err_set(err, BM_EINVAL, "train: the %s data has %llu tokens, fewer than "
                              "one sequence of %d + 1", i ? "validation" : "training",
                              (unsigned long long)bm_data_n_tokens(ds[i]), o->seq);
    }
    bm_trainer *t = bm_calloc(1, sizeof *t, err);
    if (!t) return BM_ENOMEM;
    t->m = model;
    t->train = train;
    t->val = val;
    t->o = *o;
    if (t->o.eval_batches <= 0) t->o.eval_batches = 8;
    if (t->o.adamw.beta1 == 0 && t->o.adamw.beta2 == 0) {
        t->o.adamw.beta1 = 0.9f;
        t->o.adamw.beta2 = 0.95f;
    }
    if (t->o.adamw.eps == 0) t->o.adamw.eps = 1e-8f;
    t->dist = dist ? *dist : (bm_dist){0, 1, NULL, NULL, NULL};
    if (t->dist.world < 1) t->dist.world = 1;
    bm_rng_seed(&t->rng, o->seed);
    size_t nf = model->n_floats, nt = (size_t)o->batch * (size_t)(o->seq + 1);
    t->adam_m = bm_calloc(nf, sizeof(float), err);
    t->adam_v = bm_calloc(nf, sizeof(float), err);
    t->tok = bm_calloc(nt, sizeof(int32_t), err);
    t->mask = bm_calloc(nt, 1, err);
    if (!t->adam_m || !t->adam_v || !t->tok || !t->mask) {
        bm_trainer_free(t);
        return BM_ENOMEM;
    }
    *out = t;
    return BM_OK;
}

void bm_trainer_free(bm_trainer *t) {
    if (!t) return;
    free(t->adam_m);
    free(t->adam_v);
    free(t->tok);
    free(t->mask);
    free(t);
}

int64_t bm_trainer_step_count(const bm_trainer *t) { return t->step; }

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Window visited at global index idx: within each epoch (nw consecutive indices) an affine
 * bijection k -> (a k + b) mod nw with a coprime to nw, a and b drawn from (seed, epoch). A
 * corpus written in document order (poems, then manuals) is thus seen mixed, every window once
 * per epoch, and the order depends only on idx: resume and MPI ranks agree. */
static uint64_t shuffled_window(uint64_t idx, uint64_t nw, uint64_t seed) {
    if (nw < 3) return idx % nw;
    uint64_t epoch = idx / nw, k = idx % nw;
    uint64_t a = mix64(seed * 0x9E3779B97F4A7C15ull + 2 * epoch + 1) % (nw - 1) + 1;
    while (gcd64(a, nw) != 1) a = a % (nw - 1) + 1;
    uint64_t b = mix64(seed + 0xD1B54A32D192ED03ull * (epoch + 1)) % nw;
    return (uint64_t)(((unsigned __int128)a * k + b) % nw);
}

/* Loads this rank's sequences of global micro-batch starting at window base. */
static int64_t load(bm_trainer *t, const bm_data *d, uint64_t base) {
    const int32_t T = t->o.seq, B = t->o.batch;
    int64_t counted = 0;
    for (int32_t b = 0; b < B; b++) {
        uint64_t idx = shuffled_window(base + (uint64_t)t->dist.rank * (uint64_t)B + (uint64_t)b,
                                       bm_data_n_windows(d, T), t->o.seed);
        int32_t *tk = t->tok + (size_t)b * (size_t)(T + 1);
        uint8_t *mk = t->mask + (size_t)b * (size_t)(T + 1);
        bm_data_window(d, idx, T, tk, mk);
        for (int32_t i = 1; i <= T; i++) counted += mk[i] != 0;
    }
    return counted;
}

bm_status bm_trainer_step(bm_trainer *t, bm_train_stats *st, bm_err *err) {
    const int32_t T = t->o.seq, B = t->o.batch, W = t->dist.world;
    const uint64_t gb = (uint64_t)B * (uint64_t)W;
    /* count the targets of the whole step first, so the gradient is of the global mean */
    double cnt = 0;
    for (int32_t k = 0; k < t->o.accum; k++)
        cnt += (double)load(t, t->train, t->data_pos + (uint64_t)k * gb);
    if (W > 1) t->dist.allreduce_f64(t->dist.user, &cnt, 1);
    float scale = cnt > 0 ? (float)(1.0 / cnt) : 0.0f;
    bm_tmodel_zero_grad(t->m);
    double loss = 0;
    for (int32_t k = 0; k < t->o.accum; k++) {
        load(t, t->train, t->data_pos + (uint64_t)k * gb);
        int64_t nc = 0;
        bm_status s = bm_tmodel_step(t->m, t->tok, t->mask, B, T, true, scale, &loss, &nc, err);
        if (s) return s;
    }
    if (W > 1) {
        t->dist.allreduce_f32(t->dist.user, t->m->grads, t->m->n_floats);
        t->dist.allreduce_f64(t->dist.user, &loss, 1);
    }
    double norm = bm_grad_clip(t->m, t->o.clip);
    float lr = bm_lr_at(t->step, t->o.warmup, t->o.steps, t->o.lr, t->o.min_lr);
    bm_adamw_update(t->m, t->adam_m, t->adam_v, &t->step, &t->o.adamw, lr);
    t->data_pos += (uint64_t)t->o.accum * gb;
    if (st) {
        st->step = t->step;
        st->loss = cnt > 0 ? loss / cnt : 0;
        st->grad_norm = norm;
        st->lr = lr;
        st->tokens = (int64_t)cnt;
    }
    return BM_OK;
}

bm_status bm_trainer_eval(bm_trainer *t, double *val_loss, bm_err *err) {
    const bm_data *d = t->val ? t->val : t->train;
    const uint64_t gb = (uint64_t)t->o.batch * (uint64_t)t->dist.world;
    double acc[2] = {0, 0};
    for (int32_t k = 0; k < t->o.eval_batches; k++) {
        load(t, d, (uint64_t)k * gb);
        int64_t nc = 0;
        bm_status s = bm_tmodel_step(t->m, t->tok, t->mask, t->o.batch, t->o.seq, false, 0,
                                     &acc[0], &nc, err);
        if (s) return s;
        acc[1] += (double)nc;
    }
    if (t->dist.world > 1) t->dist.allreduce_f64(t->dist.user, acc, 2);
    *val_loss = acc[1] > 0 ? acc[0] / acc[1] : 0;
    return BM_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static uint64_t hp_hash(const bm_tmodel *m) {
    const bm_train_hparams *h = &m->hp;
    int64_t v[] = {h->n_vocab, h->n_embd, h->n_layer, h->n_head, h->n_head_kv, h->n_ff,
                   h->tied, (int64_t)m->n_floats};
    uint64_t x = 0xcbf29ce484222325ull;
    for (const char *p = h->arch; *p; p++) x = (x ^ (uint8_t)*p) * 0x100000001b3ull;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (int b = 0; b < 8; b++) x = (x ^ (uint8_t)((uint64_t)v[i] >> (8 * b))) * 0x100000001b3ull;
    return x;
}

enum { OPT_HDR = 8 + 4 + 4 + 8 + 8 + 32 + 8 + 8 };

typedef struct meta_ctx {
    const bm_trainer *t;
    bm_meta_fn fn;
    void *user;
} meta_ctx;

static bm_status put_meta(void *user, bm_gguf_writer *w, bm_err *err) {
    const meta_ctx *c = user;
    bm_status st = bm_gguf_writer_set_u64(w, "baimo.train.step", (uint64_t)c->t->step, err);
    return st ? st : c->fn ? c->fn(c->user, w, err) : BM_OK;
}

bm_status bm_trainer_save(const bm_trainer *t, const char *path, bm_meta_fn meta, void *user,
                          bm_err *err) {
    char tmp[4096], opt[4096];
    if (snprintf(opt, sizeof opt, "%s.opt", path) >= (int)sizeof opt ||
        snprintf(tmp, sizeof tmp, "%s.opt.tmp", path) >= (int)sizeof tmp)
        return bm_err_set(err, BM_EINVAL, "train: checkpoint path too long: '%s'", path);
    meta_ctx mc = {t, meta, user};
    bm_status st = bm_tmodel_save(t->m, path, put_meta, &mc, err);
    if (st) return st;
    uint8_t h[OPT_HDR] = {0};
    memcpy(h, "BMOPTST1", 8);
    uint32_t ver = 1;
    memcpy(h + 8, &ver, 4);
    memcpy(h + 16, &t->step, 8);
    memcpy(h + 24, &t->data_pos, 8);
    memcpy(h + 32, t->rng.s, 32);
    uint64_t nf = t->m->n_floats, hh = hp_hash(t->m);
    memcpy(h + 64, &nf, 8);
    memcpy(h + 72, &hh, 8);
    FILE *f = fopen(tmp, "wb");
    if (!f) return bm_err_set(err, BM_EIO, "train: cannot create '%s': %s", tmp, strerror(errno));
    bool ok = fwrite(h, 1, OPT_HDR, f) == OPT_HDR &&
              fwrite(t->adam_m, sizeof(float), nf, f) == nf &&
              fwrite(t->adam_v, sizeof(float), nf, f) == nf;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, opt) != 0) {
        remove(tmp);
        return bm_err_set(err, BM_EIO, "train: cannot write '%s': %s", opt, strerror(errno));
    }
    return BM_OK;
}

bm_status bm_trainer_resume(bm_trainer *t, const char *path, bm_err *err) {
    char opt[4096];
    if (snprintf(opt, sizeof opt, "%s.opt", path) >= (int)sizeof opt)
        return bm_err_set(err, BM_EINVAL, "train: checkpoint path too long: '%s'", path);
    bm_mmap mm;
    bm_status st = bm_mmap_open(&mm, opt, err);
    if (st) return bm_err_wrap(err, "train: optimizer state for --resume");
    uint64_t nf = t->m->n_floats, fnf, fh;
    uint32_t ver;
    size_t want = OPT_HDR + 2 * nf * sizeof(float);
    if (mm.n_bytes < OPT_HDR || memcmp(mm.data, "BMOPTST1", 8)) {
        st = bm_err_set(err, BM_EFORMAT, "train: '%s' is not an optimizer state file", opt);
        goto done;
    }
    memcpy(&ver, mm.data + 8, 4);
    memcpy(&fnf, mm.data + 64, 8);
    memcpy(&fh, mm.data + 72, 8);
    if (ver != 1 || fnf != nf || fh != hp_hash(t->m) || mm.n_bytes != want) {
        st = bm_err_set(err, BM_EFORMAT, "train: '%s' (version %u, %llu values, %zu bytes) does "
                        "not belong to this model (%llu values, %zu bytes expected)", opt, ver,
                        (unsigned long long)fnf, mm.n_bytes, (unsigned long long)nf, want);
        goto done;
    }
    memcpy(&t->step, mm.data + 16, 8);
    memcpy(&t->data_pos, mm.data + 24, 8);
    memcpy(t->rng.s, mm.data + 32, 32);
    memcpy(t->adam_m, mm.data + OPT_HDR, nf * sizeof(float));
    memcpy(t->adam_v, mm.data + OPT_HDR + nf * sizeof(float), nf * sizeof(float));
done:
    bm_mmap_close(&mm);
    return st;
}
