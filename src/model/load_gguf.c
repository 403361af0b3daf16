/* Binds a GGUF model: architecture and hparams from `<arch>.*` metadata (names as llama.cpp
 * writes them), tensors as views into the file's mmap. Llama-layout GGUF files store Q/K rows
 * permuted for interleaved RoPE, so the RoPE style comes from the architecture row. */
#include "model/model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool kv_u32(const bm_gguf *g, const char *arch, const char *key, uint32_t *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return bm_gguf_get_u32(g, k, out);
}

static bool kv_f32(const bm_gguf *g, const char *arch, const char *key, float *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return bm_gguf_get_f32(g, k, out);
}

static const bm_tensor *bind(bm_model *m, const char *name, bool required, bool vector,
                             bm_err *err, bm_status *st) {
    if (*st) return NULL;
    const bm_gguf_tensor *gt = bm_gguf_tensor_find(m->gguf, name);
    if (!gt) {
        if (required)
            *st = bm_err_set(err, BM_ENOTFOUND, "model: '%s' lacks tensor '%s' (%s layout)",
                             m->path, name, m->arch->name);
        return NULL;
    }
    const bm_tensor *t =
        bm_model_add_tensor(m, name, gt->type, gt->n_dims, gt->ne, gt->data, gt->n_bytes);
    if (vector) {
        t = bm_model_as_f32(m, t, err);
        if (!t) *st = err ? err->code : BM_ENOMEM;
    }
    return t;
}

bm_status bm_model_load_gguf(bm_model *m, const char *path, bm_err *err) {
    bm_status st = bm_gguf_open(path, &m->gguf, err);
    if (st) return st;
    const bm_gguf *g = m->gguf;
    bm_str an;
    if (!bm_gguf_get_str(g, "general.architecture", &an))
        return bm_err_set(err, BM_EFORMAT, "model: '%s' has no general.architecture", path);
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(an.n < 63 ? an.n : 63), an.p);
    m->arch = bm_arch_find(arch);
    if (!m->arch)
        return bm_err_set(err, BM_EUNSUPPORTED, "model: unknown architecture '%s' (known: %s)",
                          arch, bm_arch_list());

    bm_hparams *h = &m->hp;
    uint32_t u;
#define REQ(field, key)                                                                        \
    if (!kv_u32(g, arch, key, &u) || u > INT32_MAX)                                            \
        return bm_err_set(err, BM_EFORMAT, "model: missing or bad metadata '%s.%s'", arch, key); \
    h->field = (int32_t)u;
    REQ(n_layer, "block_count");
    REQ(n_embd, "embedding_length");
    REQ(n_ff, "feed_forward_length");
    REQ(n_head, "attention.head_count");
#undef REQ
    h->n_head_kv = kv_u32(g, arch, "attention.head_count_kv", &u) ? (int32_t)u : h->n_head;
    h->head_dim = kv_u32(g, arch, "attention.key_length", &u) ? (int32_t)u
                                                              : h->n_embd / h->n_head;
    h->n_ctx_train = kv_u32(g, arch, "context_length", &u) ? (int32_t)u : 2048;
    h->n_rot = kv_u32(g, arch, "rope.dimension_count", &u) ? (int32_t)u : h->head_dim;
    if (!kv_f32(g, arch, "attention.layer_norm_rms_epsilon", &h->norm_eps)) h->norm_eps = 1e-5f;
    if (!kv_f32(g, arch, "rope.freq_base", &h->rope_theta)) h->rope_theta = 10000.0f;
    h->rope_factor = 1.0f;
    h->rope_scaling = BM_ROPE_SCALING_NONE;
    h->yarn_beta_fast = 32.0f;
    h->yarn_beta_slow = 1.0f;
    h->yarn_attn_factor = 1.0f;
    char k[128];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    bm_str stype;
    if (bm_gguf_get_str(g, k, &stype)) {
        float f = 1.0f;
        kv_f32(g, arch, "rope.scaling.factor", &f);
        if (stype.n == 6 && !memcmp(stype.p, "linear", 6)) {
            h->rope_scaling = BM_ROPE_SCALING_LINEAR;
        } else if (stype.n == 4 && !memcmp(stype.p, "yarn", 4)) {
            h->rope_scaling = BM_ROPE_SCALING_YARN;
        } else if (!(stype.n == 4 && !memcmp(stype.p, "none", 4))) {
            return bm_err_set(err, BM_EUNSUPPORTED, "model: rope scaling type '%.*s' (known: "
                              "none, linear, yarn)", (int)(stype.n < 32 ? stype.n : 32), stype.p);
        }
        if (h->rope_scaling) h->rope_factor = f;
        h->rope_ctx_orig = kv_u32(g, arch, "rope.scaling.original_context_length", &u)
                               ? (int32_t)u
                               : h->n_ctx_train;
        kv_f32(g, arch, "rope.scaling.yarn_beta_fast", &h->yarn_beta_fast);
        kv_f32(g, arch, "rope.scaling.yarn_beta_slow", &h->yarn_beta_slow);
    }
    if (h->rope_ctx_orig <= 0) h->rope_ctx_orig = h->n_ctx_train;
    h->rope_neox = (m->arch->flags & BM_ARCH_ROPE_NEOX) != 0;

    const bm_gguf_tensor *emb = bm_gguf_tensor_find(g, "token_embd.weight");
    if (!emb)
        return bm_err_set(err, BM_ENOTFOUND, "model: '%s' lacks tensor 'token_embd.weight'", path);
    h->n_vocab = (int32_t)(emb->ne[1] > INT32_MAX ? -1 : emb->ne[1]);
    if (h->n_layer < 1 || h->n_layer > 1024)
        return bm_err_set(err, BM_ERANGE, "model: block_count %d is outside [1, 1024]",
                          h->n_layer);

    size_t cap = (size_t)h->n_layer * 32 + 16;
    m->tensors = bm_calloc(cap, sizeof *m->tensors, err);
    m->cap_tensors = (int64_t)cap;
    m->layers = bm_calloc((size_t)h->n_layer, sizeof *m->layers, err);
    if (!m->tensors || !m->layers) return BM_ENOMEM;

    st = BM_OK;
    m->tok_embd = bind(m, "token_embd.weight", true, false, err, &st);
    m->out_norm = bind(m, "output_norm.weight", true, true, err, &st);
    m->output = bind(m, "output.weight", false, false, err, &st);
    h->tied_output = m->output == NULL;
    if (!m->output) m->output = m->tok_embd;
    const bm_tensor *rf = bind(m, "rope_freqs.weight", false, true, err, &st);
    if (rf) {
        if (rf->ne[0] != h->n_rot / 2)
            return bm_err_set(err, BM_EFORMAT, "model: rope_freqs has %lld entries, expected %d",
                              (long long)rf->ne[0], h->n_rot / 2);
        m->rope_freqs = rf->data;
    }
    bool bias = (m->arch->flags & BM_ARCH_QKV_BIAS) != 0;
    bool qkn = (m->arch->flags & BM_ARCH_QK_NORM) != 0;
    char n[BM_TENSOR_NAME_MAX];
    for (int i = 0; i < h->n_layer && !st; i++) {
        bm_layer *l = &m->layers[i];
#define B(field, suffix, req, vec)                                                             \
    snprintf(n, sizeof n, "blk.%d." suffix, i);                                                \
    l->field = bind(m, n, req, vec, err, &st);
        B(attn_norm, "attn_norm.weight", true, true);
        B(wq, "attn_q.weight", true, false);
        B(wk, "attn_k.weight", true, false);
        B(wv, "attn_v.weight", true, false);
        B(wo, "attn_output.weight", true, false);
        B(bq, "attn_q.bias", bias, true);
        B(bk, "attn_k.bias", bias, true);
        B(bv, "attn_v.bias", bias, true);
        B(q_norm, "attn_q_norm.weight", qkn, true);
        B(k_norm, "attn_k_norm.weight", qkn, true);
        B(ffn_norm, "ffn_norm.weight", true, true);
        B(w_gate, "ffn_gate.weight", true, false);
        B(w_up, "ffn_up.weight", true, false);
        B(w_down, "ffn_down.weight", true, false);
#undef B
    }
    return st;
}
