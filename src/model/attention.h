/* Internal interface of the fused attention (attention.c); its chunk kernels are in the
 * tensor layer (scalar reference in src/tensor/att_ref.c, SIMD in src/tensor/x86/att_*.c).
 * Keys are processed in fixed chunks of absolute positions with an online softmax, so no score
 * matrix is ever materialised and one query row's result never depends on the rest of the
 * batch. */
#ifndef BAIMO_MODEL_ATTENTION_H
#define BAIMO_MODEL_ATTENTION_H

#include "baimo/model.h"
#include "tensor/kernels.h"

/* The chunk kernels and their contract live in the tensor layer (tensor/kernels.h); chunks
 * must cover whole KV blocks. */
#define BM_ATT_CHUNK_BLOCKS (BM_ATT_CHUNK / BM_KV_BLOCK)
_Static_assert(BM_ATT_CHUNK % BM_KV_BLOCK == 0, "attention chunks are whole KV blocks");

/* Most tokens of one query tile: consecutive positions of one sequence in a batch are processed
 * together against each chunk (each K/V row loaded serves tile * G query rows). */
#define BM_ATT_TILE_MAX 16

/* Scratch of the attention of one context, allocated once by bm_att_init. */
typedef struct bm_att {
    int n_head, n_head_kv, hd, n_threads;
    int tile;              /* tokens per query tile, 1..BM_ATT_TILE_MAX (may be lowered after
                              bm_att_init, e.g. by tests; results do not depend on it) */
    int32_t n_ctx;
    int32_t split_cap;     /* the split-KV path runs for batches of at most this many tokens */
    float *thr;            /* per-thread scratch, thr_stride floats each */
    size_t thr_stride;
    float *part;           /* split partials: [units][G * (hd + 2)] (m, l, o) */
    int32_t *pair_off;     /* [split_cap * n_head_kv + 1] first unit of each (token, kv head) */
} bm_att;

/* Sizes a's scratch for n_ctx positions per sequence and n_threads, from arena. */
bm_status bm_att_init(bm_att *a, bm_arena *arena, const bm_hparams *h, int32_t n_ctx,
                      int n_threads, bm_err *err);

/* Causal GQA attention of batch tokens [off, off + n) against the cached K/V of layer (the
 * tokens' own K/V already appended): out[i, h] = sum_j softmax_j(q[i, h] . k_j / sqrt(hd)) v_j
 * over positions j <= pos[i] of the token's sequence. One row's result is bitwise the same
 * whatever else is in the batch, the tiling and the number of threads. Runs on pool (may be NULL).
 * q: [n, n_head * hd], out: [n, n_head * hd], row-major. */
void bm_att_run(bm_att *a, bm_pool *pool, const bm_kv *kv, int layer, const bm_batch *b,
                int32_t off, int32_t n, const float *q, float *out);

#endif
