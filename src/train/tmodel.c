/* The training model's parameters: the flat f32 layout (documented in include/baimo/train.h),
 * seeded initialisation, loading the weights of a GGUF model (dequantized through the model
 * layer's binding, so any dtype baimo reads can be fine-tuned) and saving as a GGUF model that
 * `baimo run` loads. The forward and backward passes are in fwdbwd.c. */
#include "train/train_int.h"

#include "baimo/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bm_status bm_train_hparams_check(bm_train_hparams *hp, bm_err *err) {
    if (strcmp(hp->arch, "llama") && strcmp(hp->arch, "qwen2"))
        return bm_err_set(err, BM_EUNSUPPORTED,
                          "train: architecture '%s' is not trainable (known: llama, qwen2)",
                          hp->arch);
#define LIM(v, lo, hi)                                                                         \
    if ((int64_t)(v) < (lo) || (int64_t)(v) > (hi))                                            \
        return bm_err_set(err, BM_ERANGE, "train: %s = %lld is outside [%lld, %lld]", #v,       \
                          (long long)(v), (long long)(lo), (long long)(hi));
    LIM(hp->n_vocab, 2, 1 << 20);
    LIM(hp->n_embd, 2, 1 << 16);
    LIM(hp->n_layer, 1, 1024);
    LIM(hp->n_head, 1, hp->n_embd);
    LIM(hp->n_head_kv, 1, hp->n_head);
    LIM(hp->n_ff, 1, 1 << 20);
    LIM(hp->n_ctx, 1, 1 << 20);
#undef LIM
    if (hp->n_embd % hp->n_head || (hp->n_embd / hp->n_head) % 2)
        return bm_err_set(err, BM_EINVAL, "train: dim %d / heads %d must be an even integer "
                          "(head size)", hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv)
        return bm_err_set(err, BM_EINVAL, "train: heads %d must be a multiple of kv-heads %d",
                          hp->n_head, hp->n_head_kv);
    if (hp->norm_eps <= 0) hp->norm_eps = 1e-5f;
    if (hp->rope_theta <= 0) hp->rope_theta = 10000.0f;
    return BM_OK;
}

static size_t add_t(bm_tmodel *m, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                    bool decay, size_t *off) {
    bm_tparam *t = &m->t[m->n_t++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims == 2 ? ne1 : 1;
    t->n = (size_t)(ne0 * t->ne[1]);
    t->offset = *off;
    t->decay = decay;
    *off += (t->n + 15) & ~(size_t)15;
    m->n_params += t->n;
    return t->offset;
}

/* Builds the tensor table and allocates zeroed params/grads and the RoPE tables. */
static bm_status layout(bm_tmodel *m, bm_err *err) {
    const bm_train_hparams *h = &m->hp;
    m->hd = h->n_embd / h->n_head;
    m->qd = h->n_head * m->hd;
    m->kvd = h->n_head_kv * m->hd;
    m->bias = !strcmp(h->arch, "qwen2");
    m->neox = m->bias;
    m->t = bm_calloc((size_t)h->n_layer * 12 + 3, sizeof *m->t, err);
    m->L = bm_calloc((size_t)h->n_layer, sizeof *m->L, err);
    if (!m->t || !m->L) return BM_ENOMEM;
    size_t off = 0;
    const int64_t E = h->n_embd, V = h->n_vocab, F = h->n_ff;
    m->emb = add_t(m, "token_embd.weight", 2, E, V, true, &off);
    m->onorm = add_t(m, "output_norm.weight", 1, E, 1, false, &off);
    m->out = h->tied ? m->emb : add_t(m, "output.weight", 2, E, V, true, &off);
    char n[BM_TENSOR_NAME_MAX];
    for (int i = 0; i < h->n_layer; i++) {
        tlayer *l = &m->L[i];
#define T(field, suffix, nd, a, b, dec)                                                        \
    snprintf(n, sizeof n, "blk.%d." suffix, i);                                                \
    l->field = add_t(m, n, nd, a, b, dec, &off);
        T(attn_norm, "attn_norm.weight", 1, E, 1, false);
        T(wq, "attn_q.weight", 2, E, m->qd, true);
        T(wk, "attn_k.weight", 2, E, m->kvd, true);
        T(wv, "attn_v.weight", 2, E, m->kvd, true);
        if (m->bias) {
            T(bq, "attn_q.bias", 1, m->qd, 1, false);
            T(bk, "attn_k.bias", 1, m->kvd, 1, false);
            T(bv, "attn_v.bias", 1, m->kvd, 1, false);
        } else {
            l->bq = l->bk = l->bv = TM_NOBIAS;
        }
        T(wo, "attn_output.weight", 2, m->qd, E, true);
        T(ffn_norm, "ffn_norm.weight", 1, E, 1, false);
        T(wg, "ffn_gate.weight", 2, E, F, true);
        T(wu, "ffn_up.weight", 2, E, F, true);
        T(wd, "ffn_down.weight", 2, F, E, true);
#undef T
    }
    m->n_floats = off;
    size_t bytes;
    if (!bm_size_mul(off, sizeof(float), &bytes))
        return bm_err_set(err, BM_EOVERFLOW, "train: parameter count overflows");
    m->params = bm_malloc_aligned(bytes, err);
    m->grads = bm_malloc_aligned(bytes, err);
    size_t cs_n = (size_t)h->n_ctx * (size_t)m->hd;
    m->cs = bm_malloc(cs_n * sizeof(float), err);
    m->cs_inv = bm_malloc(cs_n * sizeof(float), err);
    if (!m->params || !m->grads || !m->cs || !m->cs_inv) return BM_ENOMEM;
    memset(m->params, 0, bytes);
    memset(m->grads, 0, bytes);
    bm_rope_params rp = {.n_rot = m->hd, .base = h->rope_theta, .freq_scale = 1.0f,
                         .attn_factor = 1.0f};
    for (int32_t p = 0; p < h->n_ctx; p++) {
        float *c = m->cs + (size_t)p * m->hd, *ci = m->cs_inv + (size_t)p * m->hd;
        bm_rope_cache_ref(&rp, p, c);
        for (int32_t i = 0; i < m->hd / 2; i++) {
            ci[2 * i] = c[2 * i];
            ci[2 * i + 1] = -c[2 * i + 1];
        }
    }
    return BM_OK;
}

static bm_status alloc_model(const bm_train_hparams *hp, bm_pool *pool, bm_tmodel **out,
                             bm_err *err) {
    *out = NULL;
    bm_train_hparams h = *hp;
    bm_status st = bm_train_hparams_check(&h, err);
    if (st) return st;
    bm_tmodel *m = bm_calloc(1, sizeof *m, err);
    if (!m) return BM_ENOMEM;
    m->hp = h;
    m->pool = pool;
    if ((st = layout(m, err))) {
        bm_tmodel_free(m);
        return st;
    }
    *out = m;
    return BM_OK;
}

bm_status bm_tmodel_new(const bm_train_hparams *hp, uint64_t seed, bool scaled_init,
                        bm_pool *pool, bm_tmodel **out, bm_err *err) {
    bm_status st = alloc_model(hp, pool, out, err);
    if (st) return st;
    bm_tmodel *m = *out;
    float res_scale = scaled_init ? 1.0f / sqrtf(2.0f * (float)m->hp.n_layer) : 1.0f;
    for (int i = 0; i < m->n_t; i++) {
        const bm_tparam *t = &m->t[i];
        float *p = m->params + t->offset;
        bool is_norm = strstr(t->name, "norm") != NULL, is_bias = strstr(t->name, ".bias");
        if (is_norm) {
            for (size_t j = 0; j < t->n; j++) p[j] = 1.0f;
            continue;
        }
        if (is_bias) continue;
        float sd = 0.02f;
        if (strstr(t->name, "attn_output") || strstr(t->name, "ffn_down")) sd *= res_scale;
        bm_rng rng;
        bm_rng_seed(&rng, seed * 0x100000001B3ull + (uint64_t)(i + 1) * 0xC2B2AE3D27D4EB4Full);
        for (size_t j = 0; j < t->n; j++) p[j] = sd * bm_rng_normal(&rng);
    }
    return BM_OK;
}

bm_status bm_tmodel_load(const char *path, int32_t n_ctx, bm_pool *pool, bm_tmodel **out,
                         bm_err *err) {
    *out = NULL;
    bm_model *src = NULL;
    bm_status st = bm_model_load(path, &src, err);
    if (st) return st;
    const bm_hparams *sh = &src->hp;
    bm_train_hparams hp = {0};
    snprintf(hp.arch, sizeof hp.arch, "%s", src->arch->name);
    hp.n_vocab = sh->n_vocab;
    hp.n_embd = sh->n_embd;
    hp.n_layer = sh->n_layer;
    hp.n_head = sh->n_head;
    hp.n_head_kv = sh->n_head_kv;
    hp.n_ff = sh->n_ff;
    hp.n_ctx = n_ctx > 0 ? n_ctx : sh->n_ctx_train;
    hp.tied = sh->tied_output;
    hp.norm_eps = sh->norm_eps;
    hp.rope_theta = sh->rope_theta;
    if (sh->head_dim * sh->n_head != sh->n_embd || sh->n_rot != sh->head_dim ||
        sh->rope_scaling != BM_ROPE_SCALING_NONE || src->rope_freqs) {
        st = bm_err_set(err, BM_EUNSUPPORTED, "train: '%s' uses head size %d x %d heads != dim "
                        "%d, partial RoPE or RoPE scaling, which training does not support",
                        path, sh->head_dim, sh->n_head, sh->n_embd);
        goto done;
    }
    if ((st = alloc_model(&hp, pool, out, err))) goto done;
    bm_tmodel *m = *out;
    for (int i = 0; i < m->n_t && !st; i++) {
        const bm_tparam *t = &m->t[i];
        const bm_tensor *src_t = NULL;
        for (int64_t j = 0; j < src->n_tensors; j++)
            if (!strcmp(src->tensors[j].name, t->name) && src->tensors[j].type == BM_F32)
                src_t = &src->tensors[j];
        if (!src_t)
            for (int64_t j = 0; j < src->n_tensors; j++)
                if (!strcmp(src->tensors[j].name, t->name)) src_t = &src->tensors[j];
        if (!src_t || src_t->ne[0] != t->ne[0] || (t->n_dims == 2 && src_t->ne[1] != t->ne[1])) {
            st = bm_err_set(err, BM_EFORMAT, "train: '%s' lacks tensor '%s' of shape [%lld, %lld]",
                            path, t->name, (long long)t->ne[0], (long long)t->ne[1]);
            break;
        }
        for (int64_t r = 0; r < t->ne[1]; r++)
            bm_tensor_get_row(src_t, r, m->params + t->offset + (size_t)r * (size_t)t->ne[0]);
    }
done:
    if (st) {
        bm_tmodel_free(*out);
        *out = NULL;
    }
    bm_model_free(src);
    return st;
}

void bm_tmodel_free(bm_tmodel *m) {
    if (!m) return;
    bm_free_aligned(m->params);
    bm_free_aligned(m->grads);
    bm_free_aligned(m->act);
    free(m->t);
    free(m->L);
    free(m->cs);
    free(m->cs_inv);
    free(m);
}

bm_status bm_tmodel_save(const bm_tmodel *m, const char *path, bm_meta_fn meta, void *user,
                         bm_err *err) {
    const bm_train_hparams *h = &m->hp;
    bm_gguf_writer *w = bm_gguf_writer_new(err);
    if (!w) return BM_ENOMEM;
    bm_status st;
    char k[128];
    const char *a = h->arch;
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    if ((st = bm_gguf_writer_set_str(w, "general.architecture", a, err)) ||
        (st = bm_gguf_writer_set_str(w, "general.name", "baimo trained", err)) ||
        (st = bm_gguf_writer_set_u32(w, "general.file_type", 0, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)h->n_ctx, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)h->n_embd, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)h->n_layer, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)h->n_ff, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)h->n_head, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)h->n_head_kv,
                                     err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)m->hd, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)m->hd, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)m->hd, err)) ||
        (st = bm_gguf_writer_set_f32(w, KEY("rope.freq_base"), h->rope_theta, err)) ||
        (st = bm_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), h->norm_eps,
                                     err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)h->n_vocab, err)))
        goto done;
#undef KEY
    if (meta && (st = meta(user, w, err))) goto done;
    for (int i = 0; i < m->n_t; i++)
        if ((st = bm_gguf_writer_add_tensor(w, m->t[i].name, BM_F32, m->t[i].n_dims, m->t[i].ne,
                                            err)))
            goto done;
    if ((st = bm_gguf_writer_begin(w, path, err))) goto done;
    for (int i = 0; i < m->n_t; i++)
        if ((st = bm_gguf_writer_write_tensor(w, m->params + m->t[i].offset, m->t[i].n * 4, err)))
            goto done;
    st = bm_gguf_writer_finish(w, err);
done:
    bm_gguf_writer_free(w);
    return st;
}

const bm_train_hparams *bm_tmodel_hparams(const bm_tmodel *m) { return &m->hp; }
size_t bm_tmodel_n_floats(const bm_tmodel *m) { return m->n_floats; }
uint64_t bm_tmodel_n_params(const bm_tmodel *m) { return m->n_params; }
float *bm_tmodel_params(bm_tmodel *m) { return m->params; }
float *bm_tmodel_grads(bm_tmodel *m) { return m->grads; }
int bm_tmodel_n_tensors(const bm_tmodel *m) { return m->n_t; }
const bm_tparam *bm_tmodel_tensor(const bm_tmodel *m, int i) {
    return i >= 0 && i < m->n_t ? &m->t[i] : NULL;
}
const bm_tparam *bm_tmodel_tensor_find(const bm_tmodel *m, const char *name) {
    for (int i = 0; i < m->n_t; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}
void bm_tmodel_zero_grad(bm_tmodel *m) { memset(m->grads, 0, m->n_floats * sizeof(float)); }
