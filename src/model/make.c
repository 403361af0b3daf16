/* Random-weight models of real shapes, written as GGUF, so every test and benchmark has a
 * model without a download. Each row's values come from an RNG seeded by (seed, tensor, row),
 * so the file is identical whatever the thread count. */
#include "model/model_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    const char *name;
    int32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    float theta, eps;
    bool tied;
    bool llama3_rope; /* rope_freqs: factor 32, low 1, high 4, original 8192 */
} shape;

/* Published configurations (config.json of each model card). */
static const shape shapes[] = {
    {"tiny", 256, 2, 4, 2, 64, 512, 1024, 512, 1e6f, 1e-6f, false, false},
    {"qwen2.5-0.5b", 896, 24, 14, 2, 64, 4864, 151936, 32768, 1e6f, 1e-6f, true, false},
    {"qwen2.5-1.5b", 1536, 28, 12, 2, 128, 8960, 151936, 32768, 1e6f, 1e-6f, true, false},
    {"qwen2.5-7b", 3584, 28, 28, 4, 128, 18944, 152064, 32768, 1e6f, 1e-6f, false, false},
    {"qwen3-0.6b", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e6f, 1e-6f, true, false},
    {"llama-3.2-1b", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 5e5f, 1e-5f, true, true},
};

const char *bm_model_shapes(void) {
    return "tiny, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b, qwen3-0.6b, llama-3.2-1b";
}

void bm_rope_llama3_factors(float *out, int n_rot, float theta, double factor, double low_ff,
                            double high_ff, double orig_ctx) {
    double low_wl = orig_ctx / low_ff, high_wl = orig_ctx / high_ff;
    for (int i = 0; i < n_rot / 2; i++) {
        double inv = pow(theta, -2.0 * i / n_rot), wl = 2 * M_PI / inv, nf;
        if (wl < high_wl)
            nf = inv;
        else if (wl > low_wl)
            nf = inv / factor;
        else {
            double s = (orig_ctx / wl - low_ff) / (high_ff - low_ff);
            nf = (1 - s) * inv / factor + s * inv;
        }
        out[i] = (float)(inv / nf);
    }
}

/* When a row length is not a multiple of the type's block, use the type llama.cpp's
 * quantizer falls back to for that type. */
bm_dtype bm_make_fallback_type(bm_dtype t, int64_t n_in) {
    const bm_type_traits *tt = bm_type_traits_get((int)t);
    if (n_in % tt->block_elems == 0) return t;
    switch (t) {
    case BM_Q2_K:
    case BM_Q3_K: return n_in % BM_QK == 0 ? BM_Q4_0 : BM_F16;
    case BM_Q4_K: return n_in % BM_QK == 0 ? BM_Q5_0 : BM_F16;
    case BM_Q5_K: return n_in % BM_QK == 0 ? BM_Q5_1 : BM_F16;
    case BM_Q6_K: return n_in % BM_QK == 0 ? BM_Q8_0 : BM_F16;
    default: return BM_F16;
    }
}

enum { KIND_MATRIX, KIND_NORM, KIND_BIAS, KIND_UNIT_ROWS, KIND_ROPE_FREQS };

typedef struct tdesc {
    char name[BM_TENSOR_NAME_MAX];
    int n_dims;
    int64_t ne[2];
    bm_dtype type;
    int kind;
} tdesc;

typedef struct gen_task {
    const tdesc *d;
    uint64_t seed;
    uint8_t *out;
    size_t row_bytes;
    float *tmp; /* [n_threads][ne0] */
} gen_task;

static void gen_rows(void *ctx, int ith, int nth) {
    const gen_task *t = ctx;
    const tdesc *d = t->d;
    int64_t n_rows = d->n_dims == 2 ? d->ne[1] : 1, n_in = d->ne[0], lo, hi;
    bm_split_range(n_rows, ith, nth, &lo, &hi);
    float *row = t->tmp + (size_t)ith * (size_t)n_in;
    const bm_type_traits *tt = bm_type_traits_get((int)d->type);
    for (int64_t r = lo; r < hi; r++) {
        bm_rng rng;
        bm_rng_seed(&rng, t->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(r + 1)));
        for (int64_t i = 0; i < n_in; i++) {
            float z = bm_rng_normal(&rng);
            row[i] = d->kind == KIND_NORM ? 1.0f + 0.02f * z : 0.02f * z;
        }
        if (d->kind == KIND_UNIT_ROWS) {
            double ss = 0;
            for (int64_t i = 0; i < n_in; i++) ss += (double)row[i] * row[i];
            float s = (float)(1.0 / sqrt(ss));
            for (int64_t i = 0; i < n_in; i++) row[i] *= s;
        }
        tt->from_f32(row, t->out + (size_t)r * t->row_bytes, n_in);
    }
}

static void add(tdesc *ds, int *n, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                bm_dtype type, int kind) {
    tdesc *d = &ds[(*n)++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->n_dims = n_dims;
    d->ne[0] = ne0;
    d->ne[1] = ne1;
    d->type = n_dims == 1 ? BM_F32 : bm_make_fallback_type(type, ne0);
    d->kind = kind;
}

bm_status bm_model_make(const bm_make_params *p, const char *path, bm_err *err) {
    const bm_arch *arch = bm_arch_find(p->arch);
    if (!arch)
        return bm_err_set(err, BM_EUNSUPPORTED, "make-model: unknown architecture '%s' (known: %s)",
                          p->arch, bm_arch_list());
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, p->shape)) sh = &shapes[i];
    if (!sh)
        return bm_err_set(err, BM_EINVAL, "make-model: unknown shape '%s' (known: %s)", p->shape,
                          bm_model_shapes());
    const bm_type_traits *tt = bm_type_traits_get((int)p->type);
    if (!tt || !tt->from_f32 || p->type == BM_Q8_K || p->type == BM_Q8_1)
        return bm_err_set(err, BM_EUNSUPPORTED, "make-model: cannot write weights of type %s",
                          bm_dtype_name(p->type));
    int32_t n_vocab = p->n_vocab > 0 ? p->n_vocab : sh->n_vocab;
    int32_t n_ctx = p->n_ctx > 0 ? p->n_ctx : sh->n_ctx;
    bool tied = sh->tied && !(arch->flags & BM_ARCH_NORM_HEAD);
    int64_t E = sh->n_embd, qd = (int64_t)sh->n_head * sh->head_dim,
            kvd = (int64_t)sh->n_head_kv * sh->head_dim;

    int n_max = sh->n_layer * 16 + 8, n = 0;
    tdesc *ds = bm_calloc((size_t)n_max, sizeof *ds, err);
    if (!ds) return BM_ENOMEM;
    add(ds, &n, "token_embd.weight", 2, E, n_vocab, p->type, KIND_MATRIX);
    add(ds, &n, "output_norm.weight", 1, E, 1, BM_F32, KIND_NORM);
    if (!tied)
        add(ds, &n, "output.weight", 2, E, n_vocab, p->type,
            (arch->flags & BM_ARCH_NORM_HEAD) ? KIND_UNIT_ROWS : KIND_MATRIX);
    if (sh->llama3_rope) add(ds, &n, "rope_freqs.weight", 1, sh->head_dim / 2, 1, BM_F32, KIND_ROPE_FREQS);
    char nm[BM_TENSOR_NAME_MAX];
    for (int i = 0; i < sh->n_layer; i++) {
#define L(suffix, nd, a, b, k)                                                                 \
    snprintf(nm, sizeof nm, "blk.%d.%s", i, suffix);                                           \
    add(ds, &n, nm, nd, a, b, p->type, k);
        L("attn_norm.weight", 1, E, 1, KIND_NORM);
        L("attn_q.weight", 2, E, qd, KIND_MATRIX);
        L("attn_k.weight", 2, E, kvd, KIND_MATRIX);
        L("attn_v.weight", 2, E, kvd, KIND_MATRIX);
        if (arch->flags & BM_ARCH_QKV_BIAS) {
            L("attn_q.bias", 1, qd, 1, KIND_BIAS);
            L("attn_k.bias", 1, kvd, 1, KIND_BIAS);
            L("attn_v.bias", 1, kvd, 1, KIND_BIAS);
        }
        if (arch->flags & BM_ARCH_QK_NORM) {
            L("attn_q_norm.weight", 1, sh->head_dim, 1, KIND_NORM);
            L("attn_k_norm.weight", 1, sh->head_dim, 1, KIND_NORM);
        }
        L("attn_output.weight", 2, qd, E, KIND_MATRIX);
        L("ffn_norm.weight", 1, E, 1, KIND_NORM);
        L("ffn_gate.weight", 2, E, sh->n_ff, KIND_MATRIX);
        L("ffn_up.weight", 2, E, sh->n_ff, KIND_MATRIX);
        L("ffn_down.weight", 2, sh->n_ff, E, KIND_MATRIX);
#undef L
    }

    bm_status st = BM_OK;
    bm_gguf_writer *w = bm_gguf_writer_new(err);
    bm_pool *pool = NULL;
    uint8_t *buf = NULL;
    float *tmp = NULL;
    if (!w) {
        free(ds);
        return BM_ENOMEM;
    }
    const char *a = arch->name;
    char k[128], name[160];
    snprintf(name, sizeof name, "baimo random %s (%s)", sh->name, bm_dtype_name(p->type));
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    if ((st = bm_gguf_writer_set_str(w, "general.architecture", a, err)) ||
        (st = bm_gguf_writer_set_str(w, "general.name", name, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)n_ctx, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)E, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)sh->n_layer, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)sh->n_ff, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)sh->n_head, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)sh->n_head_kv,
                                     err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)sh->head_dim, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)sh->head_dim,
                                     err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)sh->head_dim, err)) ||
        (st = bm_gguf_writer_set_f32(w, KEY("rope.freq_base"), sh->theta, err)) ||
        (st = bm_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), sh->eps, err)) ||
        (st = bm_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)n_vocab, err)))
        goto done;
    if (p->rope_scaling == BM_ROPE_SCALING_LINEAR || p->rope_scaling == BM_ROPE_SCALING_YARN) {
        if ((st = bm_gguf_writer_set_str(w, KEY("rope.scaling.type"),
                                         p->rope_scaling == BM_ROPE_SCALING_YARN ? "yarn"
                                                                                 : "linear",
                                         err)) ||
            (st = bm_gguf_writer_set_f32(w, KEY("rope.scaling.factor"), p->rope_factor, err)) ||
            (st = bm_gguf_writer_set_u32(w, KEY("rope.scaling.original_context_length"),
                                         (uint32_t)(p->rope_ctx_orig > 0 ? p->rope_ctx_orig
                                                                         : n_ctx),
                                         err)))
            goto done;
    }
#undef KEY
    if (p->write_meta && (st = p->write_meta(p->user, w, err))) goto done;
    for (int i = 0; i < n; i++)
        if ((st = bm_gguf_writer_add_tensor(w, ds[i].name, ds[i].type, ds[i].n_dims, ds[i].ne,
                                            err)))
            goto done;
    if ((st = bm_gguf_writer_begin(w, path, err))) goto done;

    pool = bm_pool_new(p->n_threads, err);
    size_t max_bytes = 0, max_in = 0;
    for (int i = 0; i < n; i++) {
        size_t rb;
        bm_row_bytes(ds[i].type, ds[i].ne[0], &rb);
        size_t tb = rb * (size_t)(ds[i].n_dims == 2 ? ds[i].ne[1] : 1);
        if (tb > max_bytes) max_bytes = tb;
        if ((size_t)ds[i].ne[0] > max_in) max_in = (size_t)ds[i].ne[0];
    }
    buf = bm_malloc(max_bytes, err);
    tmp = bm_calloc(max_in * (size_t)bm_pool_n_threads(pool), sizeof(float), err);
    if (!pool || !buf || !tmp) {
        st = BM_ENOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        size_t rb;
        bm_row_bytes(ds[i].type, ds[i].ne[0], &rb);
        size_t tb = rb * (size_t)(ds[i].n_dims == 2 ? ds[i].ne[1] : 1);
        if (ds[i].kind == KIND_ROPE_FREQS) {
            bm_rope_llama3_factors((float *)buf, sh->head_dim, sh->theta, 32.0, 1.0, 4.0, 8192.0);
        } else {
            gen_task t = {&ds[i], p->seed * 0x100000001B3ull + (uint64_t)i * 0xC2B2AE3D27D4EB4Full,
                          buf, rb, tmp};
            bm_pool_run(pool, gen_rows, &t, bm_pool_n_threads(pool));
        }
        if ((st = bm_gguf_writer_write_tensor(w, buf, tb, err))) goto done;
        if (p->progress) p->progress(p->progress_user, "tensors", (uint64_t)i + 1, (uint64_t)n);
    }
    st = bm_gguf_writer_finish(w, err);
done:
    bm_gguf_writer_free(w);
    bm_pool_free(pool);
    free(buf);
    free(tmp);
    free(ds);
    return st;
}
