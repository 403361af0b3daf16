/* Paged KV cache: K and V of every layer in blocks of BM_KV_BLOCK token slots. A sequence owns
 * a block table; blocks are reference-counted so a shared prefix can be mapped into several
 * sequences (the engine's prefix reuse). f32 storage: exact, and the simplest correct base. */
#include "baimo/model.h"

#include <stdlib.h>
#include <string.h>

bm_status bm_kv_new(const bm_model *m, int32_t n_blocks, bm_kv **out, bm_err *err) {
    *out = NULL;
    if (n_blocks <= 0) return bm_err_set(err, BM_EINVAL, "kv: %d blocks requested", n_blocks);
    bm_kv *kv = bm_calloc(1, sizeof *kv, err);
    if (!kv) return BM_ENOMEM;
    kv->n_blocks = n_blocks;
    kv->n_layer = m->hp.n_layer;
    kv->n_kv_dim = m->hp.n_head_kv * m->hp.head_dim;
    kv->head_dim = m->hp.head_dim;
    size_t per, total;
    if (!bm_size_mul((size_t)kv->n_layer * (size_t)n_blocks, BM_KV_BLOCK, &per) ||
        !bm_size_mul(per, (size_t)kv->n_kv_dim * sizeof(float), &total)) {
        free(kv);
        return bm_err_set(err, BM_EOVERFLOW, "kv: cache of %d blocks overflows", n_blocks);
    }
    kv->k = bm_malloc_aligned(total, err);
    kv->v = bm_malloc_aligned(total, err);
    kv->free_list = bm_calloc((size_t)n_blocks, sizeof(int32_t), err);
    kv->refcount = bm_calloc((size_t)n_blocks, sizeof(int32_t), err);
    if (!kv->k || !kv->v || !kv->free_list || !kv->refcount) {
        char b[32];
        bm_kv_free(kv);
        return bm_err_set(err, BM_ENOMEM, "kv: cannot allocate 2 x %s of KV cache",
                          bm_fmt_bytes(total, b, sizeof b));
    }
    for (int32_t i = 0; i < n_blocks; i++) kv->free_list[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    *out = kv;
    return BM_OK;
}

void bm_kv_free(bm_kv *kv) {
    if (!kv) return;
    bm_free_aligned(kv->k);
    bm_free_aligned(kv->v);
    free(kv->free_list);
    free(kv->refcount);
    free(kv);
}

bm_status bm_seq_init(bm_seq *s, int32_t max_pos, bm_err *err) {
    memset(s, 0, sizeof *s);
    if (max_pos <= 0) return bm_err_set(err, BM_EINVAL, "kv: sequence of %d positions", max_pos);
    s->max_pos = max_pos;
    s->cap_blocks = (max_pos + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
    s->blocks = bm_calloc((size_t)s->cap_blocks, sizeof(int32_t), err);
    return s->blocks ? BM_OK : BM_ENOMEM;
}

static void release(bm_kv *kv, int32_t b) {
    if (--kv->refcount[b] == 0) kv->free_list[kv->n_free++] = b;
}

void bm_seq_fini(bm_seq *s, bm_kv *kv) {
    if (!s) return;
    if (kv)
        for (int32_t i = 0; i < s->n_blocks; i++) release(kv, s->blocks[i]);
    free(s->blocks);
    memset(s, 0, sizeof *s);
}

bm_status bm_seq_reserve(bm_seq *s, bm_kv *kv, int32_t n_pos, bm_err *err) {
    int32_t need = (n_pos + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
    if (n_pos > s->max_pos)
        return bm_err_set(err, BM_ERANGE, "context full: %d positions requested, the context "
                          "holds %d", n_pos, s->max_pos);
    if (need - s->n_blocks > kv->n_free)
        return bm_err_set(err, BM_EBUSY, "kv: cache full (%d blocks free, %d needed)",
                          kv->n_free, need - s->n_blocks);
    while (s->n_blocks < need) {
        int32_t b = kv->free_list[--kv->n_free];
        kv->refcount[b] = 1;
        s->blocks[s->n_blocks++] = b;
    }
    return BM_OK;
}

void bm_seq_truncate(bm_seq *s, bm_kv *kv, int32_t n_pos) {
    if (n_pos < 0) n_pos = 0;
    if (n_pos >= s->n_pos) return;
    int32_t keep = (n_pos + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
    while (s->n_blocks > keep) release(kv, s->blocks[--s->n_blocks]);
    s->n_pos = n_pos;
}

void bm_kv_block_retain(bm_kv *kv, int32_t b) { kv->refcount[b]++; }

void bm_kv_block_release(bm_kv *kv, int32_t b) { release(kv, b); }

bm_status bm_seq_share(bm_seq *s, bm_kv *kv, const int32_t *blocks, int32_t n, bm_err *err) {
    if (s->n_blocks != 0 || n < 0 || n > s->cap_blocks)
        return bm_err_set(err, BM_EINVAL, "kv: cannot map %d shared blocks into a sequence of "
                          "%d blocks holding %d", n, s->cap_blocks, s->n_blocks);
    for (int32_t i = 0; i < n; i++) {
        BM_ASSERT(blocks[i] >= 0 && blocks[i] < kv->n_blocks && kv->refcount[blocks[i]] > 0);
        kv->refcount[blocks[i]]++;
        s->blocks[i] = blocks[i];
    }
    s->n_blocks = n;
    s->n_pos = n * BM_KV_BLOCK;
    return BM_OK;
}
