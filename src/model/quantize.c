/* Model quantization: rewrites a GGUF model with its weight matrices in another dtype. Rows
 * are dequantized to f32 and quantized with the type's reference quantizer, split over the
 * pool by rows; tensors stream through the GGUF writer one at a time, so memory stays at one
 * tensor. */
#include "model/model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct q_task {
    const bm_gguf_tensor *src;
    bm_dtype dst;
    size_t src_rb, dst_rb;
    uint8_t *out;
    float *tmp; /* [n_threads][ne0] */
} q_task;

static void q_rows(void *ctx, int ith, int nth) {
    const q_task *t = ctx;
    int64_t n_in = t->src->ne[0], lo, hi;
    bm_split_range(t->src->ne[1], ith, nth, &lo, &hi);
    const bm_type_traits *st = bm_type_traits_get((int)t->src->type);
    const bm_type_traits *dt = bm_type_traits_get((int)t->dst);
    float *row = t->tmp + (size_t)ith * (size_t)n_in;
    for (int64_t r = lo; r < hi; r++) {
        st->to_f32((const uint8_t *)t->src->data + (size_t)r * t->src_rb, row, n_in);
        dt->from_f32(row, t->out + (size_t)r * t->dst_rb, n_in);
    }
}

bm_status bm_model_quantize(const char *in_path, const char *out_path, bm_dtype type,
                            int n_threads, bm_progress_fn progress, void *progress_user,
                            bm_err *err) {
    const bm_type_traits *tt = bm_type_traits_get((int)type);
    if (!tt || !tt->from_f32 || type == BM_Q8_K || type == BM_Q8_1)
        return bm_err_set(err, BM_EUNSUPPORTED, "quantize: cannot write weights of type %s",
                          bm_dtype_name(type));
    bm_gguf *g = NULL;
    bm_status st = bm_gguf_open(in_path, &g, err);
    if (st) return st;
    bm_gguf_writer *w = bm_gguf_writer_new(err);
    bm_pool *pool = bm_pool_new(n_threads, err);
    int64_t n = bm_gguf_n_tensors(g);
    bm_dtype *types = bm_calloc((size_t)(n ? n : 1), sizeof *types, err);
    uint8_t *buf = NULL;
    float *tmp = NULL;
    if (!w || !pool || !types) {
        st = BM_ENOMEM;
        goto done;
    }
    if ((st = bm_gguf_writer_copy_kv(w, g, NULL, err))) goto done;
    size_t max_bytes = 0, max_in = 0;
    for (int64_t i = 0; i < n; i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        const bm_type_traits *s = bm_type_traits_get((int)t->type);
        bool matrix = t->n_dims == 2 && s && s->to_f32;
        types[i] = matrix ? bm_make_fallback_type(type, t->ne[0]) : t->type;
        char name[BM_TENSOR_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.p);
        if ((st = bm_gguf_writer_add_tensor(w, name, types[i], t->n_dims, t->ne, err))) goto done;
        size_t rb;
        if (!bm_row_bytes(types[i], t->ne[0], &rb)) {
            st = bm_err_set(err, BM_EFORMAT, "quantize: tensor '%s' has a bad row", name);
            goto done;
        }
        size_t tb = rb;
        for (int d = 1; d < t->n_dims; d++) tb *= (size_t)t->ne[d];
        if (tb > max_bytes) max_bytes = tb;
        if ((size_t)t->ne[0] > max_in) max_in = (size_t)t->ne[0];
    }
    if ((st = bm_gguf_writer_begin(w, out_path, err))) goto done;
    buf = bm_malloc(max_bytes, err);
    tmp = bm_calloc(max_in * (size_t)bm_pool_n_threads(pool), sizeof(float), err);
    if (!buf || !tmp) {
        st = BM_ENOMEM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        if (types[i] == t->type) {
            st = bm_gguf_writer_write_tensor(w, t->data, t->n_bytes, err);
        } else {
            q_task q = {t, types[i], 0, 0, buf, tmp};
            bm_row_bytes(t->type, t->ne[0], &q.src_rb);
            bm_row_bytes(types[i], t->ne[0], &q.dst_rb);
            bm_pool_run(pool, q_rows, &q, bm_pool_n_threads(pool));
            st = bm_gguf_writer_write_tensor(w, buf, q.dst_rb * (size_t)t->ne[1], err);
        }
        if (st) goto done;
        if (progress) progress(progress_user, "tensors", (uint64_t)i + 1, (uint64_t)n);
    }
    st = bm_gguf_writer_finish(w, err);
done:
    bm_gguf_writer_free(w);
    bm_pool_free(pool);
    bm_gguf_close(g);
    free(types);
    free(buf);
    free(tmp);
    return st;
}
