/* Weight repacking at load: rows of Q8_0 / Q4_0 tensors regrouped by 16 and interleaved by
 * column quads (layout in kernels.h) so the packed kernels produce 16 outputs per vector
 * instruction with no horizontal sums. Plain C over the GGUF block structs; the result is a
 * separate buffer (t->packed), the original bytes stay where they are for everything else
 * (embedding lookups of a tied head, the scalar kernels, writers). */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <stdlib.h>
#include <string.h>

size_t bm_pack_group_bytes(bm_dtype type, int64_t n_in) {
    const size_t nb = (size_t)(n_in / BM_QK), R = BM_PACK_ROWS;
    size_t b;
    switch (type) {
    case BM_Q8_0: b = nb * R * (BM_QK + 2); break;
    case BM_Q4_0: b = nb * R * (BM_QK / 2 + 2); break;
    default: return 0;
    }
    return (b + 63) & ~(size_t)63; /* every group starts 64-byte aligned */
}

void bm_pack_group(bm_dtype type, const uint8_t *w, size_t row_bytes, int64_t n_in,
                   int64_t n_rows, int64_t g, uint8_t *dst) {
    const int64_t nb = n_in / BM_QK, R = BM_PACK_ROWS;
    const bool q8 = type == BM_Q8_0;
    const size_t bsz = q8 ? sizeof(bm_block_q8_0) : sizeof(bm_block_q4_0);
    const size_t cb = q8 ? (size_t)R * BM_QK : (size_t)R * BM_QK / 2;
    uint16_t *scales = (uint16_t *)(dst + (size_t)nb * cb);
    /* Padding rows read as zeros: scale 0 and, for Q8_0, codes 128 (stored + 128). */
    memset(dst, q8 ? 128 : 0, (size_t)nb * cb);
    memset(scales, 0, bm_pack_group_bytes(type, n_in) - (size_t)nb * cb);
    for (int64_t i = 0; i < R && g * R + i < n_rows; i++) {
        const uint8_t *row = w + (size_t)(g * R + i) * row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bsz;
            uint8_t *out = dst + (size_t)b * cb + (size_t)i * 4;
            memcpy(&scales[b * R + i], blk, sizeof(uint16_t)); /* d is the first field */
            if (q8) {
                const uint8_t *qs = blk + 2;
                for (int c = 0; c < 8; c++)
                    for (int j = 0; j < 4; j++) out[c * R * 4 + j] = qs[4 * c + j] ^ 0x80;
            } else {
                /* Column k: k < 16 low nibble of qs[k], else high nibble of qs[k - 16].
                 * Vector c, lane j: low nibble column 8c + j, high nibble column 8c + 4 + j. */
                const uint8_t *qs = blk + 2;
                for (int c = 0; c < 4; c++)
                    for (int j = 0; j < 4; j++) {
                        const int k = 8 * c + j;
                        out[c * R * 4 + j] =
                            k < 16 ? (uint8_t)((qs[k] & 0x0F) | (qs[k + 4] << 4))
                                   : (uint8_t)((qs[k - 16] >> 4) | (qs[k - 12] & 0xF0));
                    }
            }
        }
    }
}

bool bm_tensor_packable(const bm_tensor *t) {
    const bm_kernels *k = bm_kernels_get();
    return t && t->n_dims == 2 && (unsigned)t->type < BM_DTYPE_COUNT && k->mmp[t->type] &&
           t->ne[0] > 0 && t->ne[0] % BM_QK == 0 && t->ne[1] >= BM_PACK_ROWS &&
           bm_pack_group_bytes(t->type, t->ne[0]) > 0;
}

typedef struct pack_task {
    const bm_tensor *t;
    size_t row_bytes, group_bytes;
    int64_t g0, n_groups; /* this slice */
    uint8_t *dst;
} pack_task;

static void pack_run(void *ctx, int ith, int nth) {
    const pack_task *p = ctx;
    int64_t lo, hi;
    bm_split_range(p->n_groups, ith, nth, &lo, &hi);
    for (int64_t g = p->g0 + lo; g < p->g0 + hi; g++)
        bm_pack_group(p->t->type, p->t->data, p->row_bytes, p->t->ne[0], p->t->ne[1], g,
                      p->dst + (size_t)g * p->group_bytes);
}

bm_status bm_tensor_pack(bm_tensor *t, bm_pool *pool, bm_release_fn release, void *rctx,
                         void **buf, size_t *bytes, bm_err *err) {
    *buf = NULL;
    *bytes = 0;
    if (!bm_tensor_packable(t))
        return bm_err_set(err, BM_EINVAL, "pack: tensor '%s' (%s) has no packed layout here",
                          t ? t->name : "?", t ? bm_dtype_name(t->type) : "?");
    size_t rb;
    if (!bm_row_bytes(t->type, t->ne[0], &rb))
        return bm_err_set(err, BM_EINVAL, "pack: bad row length in '%s'", t->name);
    const int64_t n_groups = (t->ne[1] + BM_PACK_ROWS - 1) / BM_PACK_ROWS;
    const size_t gb = bm_pack_group_bytes(t->type, t->ne[0]);
    size_t total;
    if (!bm_size_mul(gb, (size_t)n_groups, &total))
        return bm_err_set(err, BM_EOVERFLOW, "pack: '%s' too large", t->name);
    uint8_t *p = aligned_alloc(64, (total + 63) & ~(size_t)63);
    if (!p) return bm_err_set(err, BM_ENOMEM, "pack: out of memory for '%s'", t->name);
    /* Slices of about 16 MiB, each source slice released once copied. */
    int64_t per = (int64_t)(((size_t)16 << 20) / gb);
    if (per < 1) per = 1;
    for (int64_t g0 = 0; g0 < n_groups; g0 += per) {
        pack_task pt = {.t = t, .row_bytes = rb, .group_bytes = gb, .g0 = g0,
                        .n_groups = g0 + per < n_groups ? per : n_groups - g0, .dst = p};
        bm_pool_run(pool, pack_run, &pt, pool ? bm_pool_n_threads(pool) : 1);
        if (release) {
            const int64_t r0 = g0 * BM_PACK_ROWS;
            int64_t r1 = (g0 + pt.n_groups) * BM_PACK_ROWS;
            if (r1 > t->ne[1]) r1 = t->ne[1];
            release(rctx, (const uint8_t *)t->data + (size_t)r0 * rb, (size_t)(r1 - r0) * rb);
        }
    }
    t->packed = p;
    *buf = p;
    *bytes = total;
    return BM_OK;
}
