/* Model loading common to both sources: hparams validation, the shape contract of every
 * weight, and the public load/free entry points. Source-specific binding lives in
 * load_gguf.c and load_hf.c. */
#include "model/model_int.h"
#include "tensor/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

bm_tensor *bm_model_add_tensor(bm_model *m, const char *name, bm_dtype type, int n_dims,
                               const int64_t *ne, const void *data, size_t n_bytes) {
    BM_ASSERT(m->n_tensors < m->cap_tensors);
    bm_tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < BM_MAX_DIMS; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    t->data = data;
    t->n_bytes = n_bytes;
    return t;
}

const bm_tensor *bm_model_as_f32(bm_model *m, const bm_tensor *t, bm_err *err) {
    if (!t) return NULL;
    if (t->type == BM_F32 && ((uintptr_t)t->data & 3) == 0) return t;
    const bm_type_traits *tt = bm_type_traits_get((int)t->type);
    if (!tt || !tt->to_f32) {
        bm_err_set(err, BM_EUNSUPPORTED, "model: tensor '%s' has dtype %s, which cannot be read",
                   t->name, bm_dtype_name(t->type));
        return NULL;
    }
    int64_t n = bm_tensor_nelem(t);
    float *buf = bm_arena_calloc(&m->arena, (size_t)n, sizeof(float), err);
    if (!buf) return NULL;
    tt->to_f32(t->data, buf, n);
    return bm_model_add_tensor(m, t->name, BM_F32, t->n_dims, t->ne, buf, (size_t)n * 4);
}

static bm_status check_shape(const bm_tensor *t, const char *role, int n_dims, int64_t ne0,
                             int64_t ne1, bm_err *err) {
    if (!t) return BM_OK;
    bool ok = (n_dims == 1) ? (t->ne[0] == ne0 && t->ne[1] == 1 && t->ne[2] == 1)
                            : (t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1);
    if (!ok) {
        if (n_dims == 1)
            return bm_err_set(err, BM_EFORMAT,
                              "model: tensor '%s' (%s) has shape [%lld, %lld], expected [%lld]",
                              t->name, role, (long long)t->ne[0], (long long)t->ne[1],
                              (long long)ne0);
        return bm_err_set(err, BM_EFORMAT,
                          "model: tensor '%s' (%s) has shape [%lld, %lld], expected [%lld, %lld]",
                          t->name, role, (long long)t->ne[0], (long long)t->ne[1],
                          (long long)ne0, (long long)ne1);
    }
    const bm_type_traits *tt = bm_type_traits_get((int)t->type);
    if (!tt || !tt->to_f32)
        return bm_err_set(err, BM_EUNSUPPORTED, "model: tensor '%s' has unsupported dtype %s",
                          t->name, bm_dtype_name(t->type));
    if (n_dims == 1 && t->type != BM_F32)
        return bm_err_set(err, BM_EINTERNAL, "model: vector '%s' not converted to f32", t->name);
    return BM_OK;
}

static bm_status check_hparams(const bm_hparams *h, bm_err *err) {
#define LIM(v, lo, hi)                                                                         \
    if ((v) < (lo) || (v) > (hi))                                                              \
        return bm_err_set(err, BM_ERANGE, "model: %s = %lld is outside [%lld, %lld]", #v,       \
                          (long long)(v), (long long)(lo), (long long)(hi));
    LIM(h->n_layer, 1, 1024);
    LIM(h->n_embd, 1, 1 << 17);
    LIM(h->n_head, 1, 4096);
    LIM(h->n_head_kv, 1, h->n_head);
    LIM(h->head_dim, 2, 4096);
    LIM(h->n_ff, 1, 1 << 20);
    LIM(h->n_vocab, 1, 1 << 24);
    LIM(h->n_ctx_train, 1, 1 << 24);
    LIM(h->n_rot, 2, h->head_dim);
#undef LIM
    if (h->n_head % h->n_head_kv)
        return bm_err_set(err, BM_EFORMAT,
                          "model: head_count %d is not a multiple of head_count_kv %d", h->n_head,
                          h->n_head_kv);
    if (h->n_rot % 2)
        return bm_err_set(err, BM_EFORMAT, "model: rope dimension %d is odd", h->n_rot);
    if (!(h->norm_eps > 0 && h->norm_eps < 1))
        return bm_err_set(err, BM_ERANGE, "model: rms epsilon %g is outside (0, 1)",
                          (double)h->norm_eps);
    if (!(h->rope_theta > 1 && isfinite(h->rope_theta)))
        return bm_err_set(err, BM_ERANGE, "model: rope_theta %g must be > 1",
                          (double)h->rope_theta);
    if (!(h->rope_factor >= 1 && h->rope_factor <= 1024))
        return bm_err_set(err, BM_ERANGE, "model: rope scaling factor %g is outside [1, 1024]",
                          (double)h->rope_factor);
    return BM_OK;
}

bm_status bm_model_check(bm_model *m, bm_err *err) {
    const bm_hparams *h = &m->hp;
    bm_status st = check_hparams(h, err);
    if (st) return st;
    /* Baichuan 13B (40 layers) uses ALiBi position biases instead of RoPE (Baichuan and
     * Baichuan2 model cards); running it with RoPE would be a silent wrong answer. */
    if (!strcmp(m->arch->name, "baichuan") && h->n_layer == 40)
        return bm_err_set(err, BM_EUNSUPPORTED, "model: Baichuan 13B (40 layers) uses ALiBi "
                          "attention, which baimo does not support yet (the 7B layout is)");
    int64_t qd = (int64_t)h->n_head * h->head_dim, kvd = (int64_t)h->n_head_kv * h->head_dim;
    if ((st = check_shape(m->tok_embd, "token embedding", 2, h->n_embd, h->n_vocab, err)) ||
        (st = check_shape(m->out_norm, "output norm", 1, h->n_embd, 0, err)) ||
        (st = check_shape(m->output, "output", 2, h->n_embd, h->n_vocab, err)))
        return st;
    for (int i = 0; i < h->n_layer; i++) {
        const bm_layer *l = &m->layers[i];
        if ((st = check_shape(l->attn_norm, "attention norm", 1, h->n_embd, 0, err)) ||
            (st = check_shape(l->wq, "q", 2, h->n_embd, qd, err)) ||
            (st = check_shape(l->wk, "k", 2, h->n_embd, kvd, err)) ||
            (st = check_shape(l->wv, "v", 2, h->n_embd, kvd, err)) ||
            (st = check_shape(l->wo, "attention output", 2, qd, h->n_embd, err)) ||
            (st = check_shape(l->bq, "q bias", 1, qd, 0, err)) ||
            (st = check_shape(l->bk, "k bias", 1, kvd, 0, err)) ||
            (st = check_shape(l->bv, "v bias", 1, kvd, 0, err)) ||
            (st = check_shape(l->q_norm, "q norm", 1, h->head_dim, 0, err)) ||
            (st = check_shape(l->k_norm, "k norm", 1, h->head_dim, 0, err)) ||
            (st = check_shape(l->ffn_norm, "ffn norm", 1, h->n_embd, 0, err)) ||
            (st = check_shape(l->w_gate, "ffn gate", 2, h->n_embd, h->n_ff, err)) ||
            (st = check_shape(l->w_up, "ffn up", 2, h->n_embd, h->n_ff, err)) ||
            (st = check_shape(l->w_down, "ffn down", 2, h->n_ff, h->n_embd, err)))
            return st;
        if ((m->arch->flags & BM_ARCH_QKV_BIAS) && !(l->bq && l->bk && l->bv))
            return bm_err_set(err, BM_ENOTFOUND, "model: layer %d lacks the q/k/v biases %s needs",
                              i, m->arch->name);
        if ((m->arch->flags & BM_ARCH_QK_NORM) && !(l->q_norm && l->k_norm))
            return bm_err_set(err, BM_ENOTFOUND, "model: layer %d lacks the q/k norms %s needs",
                              i, m->arch->name);
    }
    /* parameters and weight bytes of the bound roles (converted copies are not counted) */
    m->n_params = 0;
    m->weight_bytes = 0;
    const bm_tensor *roles[3] = {m->tok_embd, m->out_norm, h->tied_output ? NULL : m->output};
    for (int i = 0; i < 3; i++)
        if (roles[i]) {
            m->n_params += (uint64_t)bm_tensor_nelem(roles[i]);
            m->weight_bytes += roles[i]->n_bytes;
        }
    for (int i = 0; i < h->n_layer; i++) {
        const bm_tensor *const *lt = (const bm_tensor *const *)&m->layers[i];
        for (size_t j = 0; j < sizeof(bm_layer) / sizeof(bm_tensor *); j++)
            if (lt[j]) {
                m->n_params += (uint64_t)bm_tensor_nelem(lt[j]);
                m->weight_bytes += lt[j]->n_bytes;
            }
    }
    return BM_OK;
}

/* Repacks every matmul weight the kernels in use have a packed layout for. The original rows
 * stay mapped; once copied, their resident pages are handed back, GGUF file or safetensors
 * shard alike (they fault back in from the file if a scalar path ever reads them), so peak
 * memory stays near the file size instead of twice it. */
static void release_gguf(void *g, const void *p, size_t n) { bm_gguf_release(g, p, n); }
static void release_st(void *s, const void *p, size_t n) { bm_st_release(s, p, n); }

/* One huge-page buffer (bm_pack_alloc) for every packed weight, in the order the forward pass
 * reads them. Packed one by one into buffers of their own, only tensors of 4 MiB or more got
 * huge pages (a Qwen2.5-0.5B layer's are 0.1-2.5 MiB). */
static bm_status pack_weights(bm_model *m, bm_err *err) {
    const char *off = getenv("BM_NO_PACK");
    if (off && *off && strcmp(off, "0")) return BM_OK;
    const double t0 = bm_time_now();
    const int32_t nl = m->hp.n_layer;
    bm_tensor **ts = bm_calloc((size_t)nl * 7 + 1, sizeof *ts, err);
    if (!ts) return BM_ENOMEM;
    int32_t n = 0;
    size_t total = 0;
    bm_status st = BM_OK;
    for (int32_t l = 0; l <= nl; l++) {
        const bm_layer *L = l < nl ? &m->layers[l] : NULL;
        const bm_tensor *lt[7] = {m->output};
        if (L) {
            const bm_tensor *w[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
            memcpy(lt, w, sizeof w);
        }
        for (int i = 0; i < 7; i++) {
            bm_tensor *t = (bm_tensor *)lt[i]; /* a view in m->tensors, owned by m */
            bool seen = !t || t->packed || !bm_tensor_packable(t);
            for (int32_t j = 0; j < n && !seen; j++) seen = ts[j] == t;
            if (seen) continue;
            const size_t raw = bm_tensor_pack_bytes(t);
            if (!raw || raw > SIZE_MAX - 63 ||
                !bm_size_add(total, (raw + 63) & ~(size_t)63, &total)) {
                st = bm_err_set(err, BM_EOVERFLOW, "pack: '%s' too large", t->name);
                goto done;
            }
            ts[n++] = t;
        }
    }
    if (n == 0) goto done;
    uint8_t *buf = bm_pack_alloc(total);
    if (!buf) {
        st = bm_err_set(err, BM_ENOMEM, "pack: out of memory for %zu bytes of packed weights",
                        total);
        goto done;
    }
    m->pack_buf = buf;
    bm_pool *pool = bm_pool_new(0, NULL); /* NULL on failure: packs on this thread */
    size_t at = 0;
    for (int32_t j = 0; j < n && !st; j++) {
        st = bm_tensor_pack_into(ts[j], pool, m->gguf ? release_gguf : m->st ? release_st : NULL,
                                 m->gguf ? (void *)m->gguf : (void *)m->st, buf + at, err);
        const size_t b = bm_tensor_pack_bytes(ts[j]);
        at += (b + 63) & ~(size_t)63;
        if (!st) {
            m->n_packs++;
            m->pack_bytes += b;
        }
    }
    bm_pool_free(pool);
done:
    free(ts);
    m->pack_secs = bm_time_now() - t0;
    return st;
}

bm_status bm_model_load(const char *path, bm_model **out, bm_err *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return bm_err_set(err, BM_EIO, "model: cannot open '%s': no such file or directory",
                          path);
    bm_model *m = bm_calloc(1, sizeof *m, err);
    if (!m) return BM_ENOMEM;
    bm_arena_init(&m->arena, 1 << 20, 0);
    m->path = strdup(path);
    bm_status s = S_ISDIR(st.st_mode) ? bm_model_load_hf(m, path, err)
                                      : bm_model_load_gguf(m, path, err);
    if (s == BM_OK) s = bm_model_check(m, err);
    if (s == BM_OK) s = pack_weights(m, err);
    if (s != BM_OK) {
        bm_model_free(m);
        return s;
    }
    *out = m;
    return BM_OK;
}

void bm_model_free(bm_model *m) {
    if (!m) return;
    bm_gguf_close(m->gguf);
    bm_st_close(m->st);
    bm_arena_fini(&m->arena);
    free(m->pack_buf);
    free(m->tensors);
    free(m->layers);
    free(m->path);
    free(m);
}

size_t bm_model_kv_bytes_per_token(const bm_model *m) {
    return (size_t)m->hp.n_layer * 2 * (size_t)m->hp.n_head_kv * (size_t)m->hp.head_dim *
           sizeof(float);
}
