/* Internal interface of the fused attention (attention.c) and its chunk kernels (the scalar
 * reference in attention.c, SIMD variants in src/tensor/x86/att_*.c). Keys are processed in
 * fixed chunks of absolute positions with an online softmax, so no score matrix is ever
 * materialised and one query row's result never depends on the rest of the batch. */
#ifndef BAIMO_MODEL_ATTENTION_H
#define BAIMO_MODEL_ATTENTION_H

#include "baimo/model.h"

/* Keys are processed in chunks of this many absolute positions ([0,256), [256,512), ...):
 * the partial softmax state of a chunk depends only on the query row and the keys in it.
 * A multiple of BM_KV_BLOCK. */
#define BM_ATT_CHUNK 256
#define BM_ATT_CHUNK_BLOCKS (BM_ATT_CHUNK / BM_KV_BLOCK)

/* One chunk of one KV group: the G query heads that share a KV head against the n_key keys
 * of the chunk. Writes the chunk's partial softmax state, with s[g][j] = scale * q_g . k_j:
 * m[g] = max_j s[g][j], l[g] = sum_j exp(s[g][j] - m[g]), o[g] = sum_j exp(s[g][j] - m[g]) v_j.
 * Every variant computes one head's result independently of G and of the other heads, in a
 * fixed order over the keys. */
typedef struct bm_att_chunk {
    const float *q;                      /* [G, hd] */
    const float *const *kb, *const *vb;  /* [ceil(n_key / BM_KV_BLOCK)] row 0 of each block */
    int64_t ld;                          /* row stride of K and V inside a block */
    int n_key, G, hd;                    /* 1 <= n_key <= BM_ATT_CHUNK */
    float scale;
    float *s;                            /* scratch [G, BM_ATT_CHUNK] */
    float *m, *l;                        /* [G] */
    float *o;                            /* [G, hd] */
} bm_att_chunk;
typedef void (*bm_att_chunk_fn)(const bm_att_chunk *a);

/* Scalar reference: in-order dot products and sums, expf. */
void bm_att_chunk_ref(const bm_att_chunk *a);
#ifndef BM_NO_SIMD
/* AVX2+FMA (att_avx2.c); requires hd % 16 == 0. exp by a degree-7 polynomial after range
 * reduction (relative error ~1e-7, like expf's ~1 ulp). */
void bm_att_chunk_avx2(const bm_att_chunk *a);
#endif

/* Scratch of the attention of one context, allocated once by bm_att_init. */
typedef struct bm_att {
    int n_head, n_head_kv, hd, n_threads;
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
 * whatever else is in the batch and whatever the number of threads. Runs on pool (may be NULL).
 * q: [n, n_head * hd], out: [n, n_head * hd], row-major. */
void bm_att_run(bm_att *a, bm_pool *pool, const bm_kv *kv, int layer, const bm_batch *b,
                int32_t off, int32_t n, const float *q, float *out);

#endif
