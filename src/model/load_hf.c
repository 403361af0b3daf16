/* Binds a Hugging Face model directory: config.json (Jansson) for hparams, safetensors shards
 * for tensors. HF checkpoints keep Q/K in rotate-half order, so RoPE is NeoX style for every
 * architecture here. Fused projections (Baichuan W_pack, InternLM2 wqkv) are split: W_pack
 * as row views, InternLM2's grouped layout by copying rows into the model arena. Baichuan2's
 * NormHead is applied once at load (rows L2-normalised into the arena). */
#include "model/model_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t jint(json_t *o, const char *k, int64_t dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static double jnum(json_t *o, const char *k, double dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static bm_status parse_config(bm_model *m, const char *dir, bm_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c)
        return bm_err_set(err, BM_EFORMAT, "model: %s:%d: %s", path, je.line, je.text);
    bm_status st = BM_OK;
    json_t *archs = json_object_get(c, "architectures");
    const char *cls = json_string_value(json_array_get(archs, 0));
    if (!cls) {
        st = bm_err_set(err, BM_EFORMAT, "model: %s has no \"architectures\" list", path);
        goto out;
    }
    m->arch = bm_arch_find_hf(cls);
    if (!m->arch) {
        st = bm_err_set(err, BM_EUNSUPPORTED, "model: unknown architecture '%s' in %s (known: %s)",
                        cls, path, bm_arch_list());
        goto out;
    }
    bm_hparams *h = &m->hp;
    int64_t v[6] = {jint(c, "hidden_size", -1), jint(c, "intermediate_size", -1),
                    jint(c, "num_hidden_layers", -1), jint(c, "num_attention_heads", -1),
                    jint(c, "vocab_size", -1), 0};
    static const char *const names[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                        "num_attention_heads", "vocab_size"};
    for (int i = 0; i < 5; i++)
        if (v[i] <= 0 || v[i] > (1 << 24)) {
            st = bm_err_set(err, BM_EFORMAT, "model: %s: missing or bad \"%s\"", path, names[i]);
            goto out;
        }
    h->n_embd = (int32_t)v[0];
    h->n_ff = (int32_t)v[1];
    h->n_layer = (int32_t)v[2];
    h->n_head = (int32_t)v[3];
    h->n_vocab = (int32_t)v[4];
    h->n_head_kv = (int32_t)jint(c, "num_key_value_heads", h->n_head);
    h->head_dim = (int32_t)jint(c, "head_dim", h->n_embd / h->n_head);
    h->n_rot = h->head_dim;
    h->n_ctx_train = (int32_t)jint(c, "max_position_embeddings",
                                   jint(c, "model_max_length", 4096));
    h->norm_eps = (float)jnum(c, "rms_norm_eps", 1e-6);
    h->rope_theta = (float)jnum(c, "rope_theta", 10000.0);
    json_t *tie = json_object_get(c, "tie_word_embeddings");
    h->tied_output = json_is_true(tie);
    h->rope_neox = true;
    h->rope_factor = 1.0f;
    h->rope_ctx_orig = h->n_ctx_train;
    h->yarn_beta_fast = 32.0f;
    h->yarn_beta_slow = 1.0f;
    h->yarn_attn_factor = 1.0f;
    json_t *rs = json_object_get(c, "rope_scaling");
    if (json_is_object(rs)) {
        const char *type = json_string_value(json_object_get(rs, "rope_type"));
        if (!type) type = json_string_value(json_object_get(rs, "type"));
        double factor = jnum(rs, "factor", 1.0);
        int64_t orig = jint(rs, "original_max_position_embeddings", h->n_ctx_train);
        if (!type || !strcmp(type, "default")) {
        } else if (!strcmp(type, "linear")) {
            h->rope_scaling = BM_ROPE_SCALING_LINEAR;
            h->rope_factor = (float)factor;
        } else if (!strcmp(type, "yarn")) {
            h->rope_scaling = BM_ROPE_SCALING_YARN;
            h->rope_factor = (float)factor;
            h->rope_ctx_orig = (int32_t)orig;
            h->yarn_beta_fast = (float)jnum(rs, "beta_fast", 32.0);
            h->yarn_beta_slow = (float)jnum(rs, "beta_slow", 1.0);
        } else if (!strcmp(type, "llama3")) {
            if (factor < 1 || orig <= 0) {
                st = bm_err_set(err, BM_EFORMAT, "model: %s: bad llama3 rope_scaling", path);
                goto out;
            }
            float *f = bm_arena_alloc(&m->arena, (size_t)(h->n_rot / 2) * sizeof(float), err);
            if (!f) {
                st = BM_ENOMEM;
                goto out;
            }
            bm_rope_llama3_factors(f, h->n_rot, h->rope_theta, factor,
                                   jnum(rs, "low_freq_factor", 1.0),
                                   jnum(rs, "high_freq_factor", 4.0), (double)orig);
            m->rope_freqs = f;
        } else {
            st = bm_err_set(err, BM_EUNSUPPORTED,
                            "model: %s: rope_scaling type '%s' (known: linear, yarn, llama3)", path,
                            type);
        }
    }
out:
    json_decref(c);
    return st;
}

typedef struct names {
    const char *embd, *norm, *out;
    const char *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *qn, *kn, *ffn_norm, *gate, *up,
        *down, *fused;
} names;

static const names hf_llama = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                               "model.layers.%d.input_layernorm.weight",
                               "model.layers.%d.self_attn.q_proj.weight",
                               "model.layers.%d.self_attn.k_proj.weight",
                               "model.layers.%d.self_attn.v_proj.weight",
                               "model.layers.%d.self_attn.o_proj.weight",
                               "model.layers.%d.self_attn.q_proj.bias",
                               "model.layers.%d.self_attn.k_proj.bias",
                               "model.layers.%d.self_attn.v_proj.bias",
                               "model.layers.%d.self_attn.q_norm.weight",
                               "model.layers.%d.self_attn.k_norm.weight",
                               "model.layers.%d.post_attention_layernorm.weight",
                               "model.layers.%d.mlp.gate_proj.weight",
                               "model.layers.%d.mlp.up_proj.weight",
                               "model.layers.%d.mlp.down_proj.weight",
                               "model.layers.%d.self_attn.W_pack.weight"};
static const names hf_internlm2 = {"model.tok_embeddings.weight", "model.norm.weight",
                                   "output.weight", "model.layers.%d.attention_norm.weight",
                                   NULL, NULL, NULL, "model.layers.%d.attention.wo.weight",
                                   NULL, NULL, NULL, NULL, NULL,
                                   "model.layers.%d.ffn_norm.weight",
                                   "model.layers.%d.feed_forward.w1.weight",
                                   "model.layers.%d.feed_forward.w3.weight",
                                   "model.layers.%d.feed_forward.w2.weight",
                                   "model.layers.%d.attention.wqkv.weight"};

static const bm_tensor *bind(bm_model *m, const char *fmt, int layer, bool required, bool vector,
                             bm_err *err, bm_status *st) {
    if (*st || !fmt) return NULL;
    char name[BM_TENSOR_NAME_MAX];
    snprintf(name, sizeof name, fmt, layer);
    const bm_st_tensor *s = bm_st_find(m->st, name);
    if (!s) {
        if (required)
            *st = bm_err_set(err, BM_ENOTFOUND, "model: '%s' lacks tensor '%s' (%s layout)",
                             m->path, name, m->arch->name);
        return NULL;
    }
    const bm_tensor *t = bm_model_add_tensor(m, name, s->type, s->n_dims, s->ne, s->data,
                                             s->n_bytes);
    if (vector || ((uintptr_t)t->data % 4)) { /* vectors and unaligned data become f32 */
        t = bm_model_as_f32(m, t, err);
        if (!t) *st = err ? err->code : BM_ENOMEM;
    }
    return t;
}

/* Row view [r0, r0+n) of a matrix. */
static const bm_tensor *rows(bm_model *m, const bm_tensor *t, const char *suffix, int64_t r0,
                             int64_t n) {
    size_t rb;
    bm_row_bytes(t->type, t->ne[0], &rb);
    char name[BM_TENSOR_NAME_MAX];
    snprintf(name, sizeof name, "%.80s%s", t->name, suffix);
    int64_t ne[2] = {t->ne[0], n};
    return bm_model_add_tensor(m, name, t->type, 2, ne, (const uint8_t *)t->data + r0 * rb,
                               (size_t)n * rb);
}

/* InternLM2 wqkv rows are grouped per kv head: [n_kv][q_per_kv + 2][head_dim] rows. */
static bm_status split_internlm2(bm_model *m, bm_layer *l, const bm_tensor *w, bm_err *err) {
    const bm_hparams *h = &m->hp;
    int64_t g = h->n_head / h->n_head_kv, hd = h->head_dim, expect = h->n_head_kv * (g + 2) * hd;
    if (w->ne[0] != h->n_embd || w->ne[1] != expect)
        return bm_err_set(err, BM_EFORMAT, "model: '%s' has shape [%lld, %lld], expected [%d, %lld]",
                          w->name, (long long)w->ne[0], (long long)w->ne[1], h->n_embd,
                          (long long)expect);
    size_t rb;
    bm_row_bytes(w->type, w->ne[0], &rb);
    uint8_t *q = bm_arena_alloc(&m->arena, (size_t)(h->n_head * hd) * rb, err);
    uint8_t *k = bm_arena_alloc(&m->arena, (size_t)(h->n_head_kv * hd) * rb, err);
    uint8_t *v = bm_arena_alloc(&m->arena, (size_t)(h->n_head_kv * hd) * rb, err);
    if (!q || !k || !v) return BM_ENOMEM;
    const uint8_t *src = w->data;
    for (int64_t j = 0; j < h->n_head_kv; j++) {
        const uint8_t *grp = src + (size_t)(j * (g + 2) * hd) * rb;
        memcpy(q + (size_t)(j * g * hd) * rb, grp, (size_t)(g * hd) * rb);
        memcpy(k + (size_t)(j * hd) * rb, grp + (size_t)(g * hd) * rb, (size_t)hd * rb);
        memcpy(v + (size_t)(j * hd) * rb, grp + (size_t)((g + 1) * hd) * rb, (size_t)hd * rb);
    }
    int64_t neq[2] = {h->n_embd, h->n_head * hd}, nekv[2] = {h->n_embd, h->n_head_kv * hd};
    l->wq = bm_model_add_tensor(m, "wqkv.q", w->type, 2, neq, q, (size_t)neq[1] * rb);
    l->wk = bm_model_add_tensor(m, "wqkv.k", w->type, 2, nekv, k, (size_t)nekv[1] * rb);
    l->wv = bm_model_add_tensor(m, "wqkv.v", w->type, 2, nekv, v, (size_t)nekv[1] * rb);
    return BM_OK;
}

/* Baichuan2 NormHead: each output row divided by its L2 norm, once. */
static const bm_tensor *norm_head(bm_model *m, const bm_tensor *t, bm_err *err) {
    int64_t n_in = t->ne[0], n_out = t->ne[1];
    float *buf = bm_arena_calloc(&m->arena, (size_t)(n_in * n_out), sizeof(float), err);
    if (!buf) return NULL;
    for (int64_t r = 0; r < n_out; r++) {
        float *row = buf + r * n_in;
        bm_tensor_get_row(t, r, row);
        double ss = 0;
        for (int64_t i = 0; i < n_in; i++) ss += (double)row[i] * row[i];
        float s = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int64_t i = 0; i < n_in; i++) row[i] *= s;
    }
    int64_t ne[2] = {n_in, n_out};
    return bm_model_add_tensor(m, t->name, BM_F32, 2, ne, buf, (size_t)(n_in * n_out) * 4);
}

bm_status bm_model_load_hf(bm_model *m, const char *dir, bm_err *err) {
    bm_status st = parse_config(m, dir, err);
    if (st) return st;
    if ((st = bm_st_open_dir(dir, &m->st, err))) return st;
    bm_hparams *h = &m->hp;
    if (h->n_layer > 1024)
        return bm_err_set(err, BM_ERANGE, "model: num_hidden_layers %d exceeds 1024", h->n_layer);
    m->cap_tensors = (int64_t)h->n_layer * 32 + 16;
    m->tensors = bm_calloc((size_t)m->cap_tensors, sizeof *m->tensors, err);
    m->layers = bm_calloc((size_t)h->n_layer, sizeof *m->layers, err);
    if (!m->tensors || !m->layers) return BM_ENOMEM;
    bool il2 = !strcmp(m->arch->name, "internlm2");
    const names *N = il2 ? &hf_internlm2 : &hf_llama;
    bool bias = (m->arch->flags & BM_ARCH_QKV_BIAS) != 0;
    bool qkn = (m->arch->flags & BM_ARCH_QK_NORM) != 0;
    bool fused = (m->arch->flags & BM_ARCH_FUSED_QKV) != 0;

    m->tok_embd = bind(m, N->embd, 0, true, false, err, &st);
    m->out_norm = bind(m, N->norm, 0, true, true, err, &st);
    m->output = bind(m, N->out, 0, false, false, err, &st);
    if (st) return st;
    if (!m->output) {
        h->tied_output = true;
        m->output = m->tok_embd;
    } else {
        h->tied_output = false;
    }
    if ((m->arch->flags & BM_ARCH_NORM_HEAD) && !(m->output = norm_head(m, m->output, err)))
        return err ? err->code : BM_ENOMEM;

    int64_t qd = (int64_t)h->n_head * h->head_dim, kvd = (int64_t)h->n_head_kv * h->head_dim;
    for (int i = 0; i < h->n_layer && !st; i++) {
        bm_layer *l = &m->layers[i];
        l->attn_norm = bind(m, N->attn_norm, i, true, true, err, &st);
        if (fused) {
            const bm_tensor *w = bind(m, N->fused, i, true, false, err, &st);
            if (st) break;
            if (il2) {
                st = split_internlm2(m, l, w, err);
            } else {
                if (w->ne[0] != h->n_embd || w->ne[1] != qd + 2 * kvd)
                    return bm_err_set(err, BM_EFORMAT,
                                      "model: '%s' has shape [%lld, %lld], expected [%d, %lld]",
                                      w->name, (long long)w->ne[0], (long long)w->ne[1],
                                      h->n_embd, (long long)(qd + 2 * kvd));
                l->wq = rows(m, w, ".q", 0, qd);
                l->wk = rows(m, w, ".k", qd, kvd);
                l->wv = rows(m, w, ".v", qd + kvd, kvd);
            }
        } else {
            l->wq = bind(m, N->wq, i, true, false, err, &st);
            l->wk = bind(m, N->wk, i, true, false, err, &st);
            l->wv = bind(m, N->wv, i, true, false, err, &st);
        }
        l->wo = bind(m, N->wo, i, true, false, err, &st);
        l->bq = bind(m, N->bq, i, bias, true, err, &st);
        l->bk = bind(m, N->bk, i, bias, true, err, &st);
        l->bv = bind(m, N->bv, i, bias, true, err, &st);
        l->q_norm = bind(m, N->qn, i, qkn, true, err, &st);
        l->k_norm = bind(m, N->kn, i, qkn, true, err, &st);
        l->ffn_norm = bind(m, N->ffn_norm, i, true, true, err, &st);
        l->w_gate = bind(m, N->gate, i, true, false, err, &st);
        l->w_up = bind(m, N->up, i, true, false, err, &st);
        l->w_down = bind(m, N->down, i, true, false, err, &st);
    }
    return st;
}
