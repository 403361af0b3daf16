/* Fused causal GQA attention over the paged KV cache: a tile of consecutive tokens of one
 * sequence (up to a->tile; prefill) times the query heads sharing a KV head is processed
 * together against the keys in fixed chunks of BM_ATT_CHUNK absolute positions, each token with
 * its own causal limit; each chunk yields a partial softmax state per row (max m, sum l,
 * unnormalised output o) and the chunks are folded in position order with the online-softmax
 * rescaling (Milakov & Gimelshein 2018; Dao et al. 2022, FlashAttention). Decode batches with
 * long contexts split the chunks of one (token, KV head) over threads (split-KV). Only who
 * computes a row's chunk and with which other rows changes, never the row's arithmetic, so its
 * output is batch-, tiling- and thread-invariant. */
#include "model/attention.h"
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

/* ---- scratch --------------------------------------------------------------------------- */

static int32_t n_chunks(int32_t pos) { return pos / BM_ATT_CHUNK + 1; }

bm_status bm_att_init(bm_att *a, bm_arena *arena, const bm_hparams *h, int32_t n_ctx,
                      int n_threads, bm_err *err) {
    memset(a, 0, sizeof *a);
    a->n_head = h->n_head;
    a->n_head_kv = h->n_head_kv;
    a->hd = h->head_dim;
    a->n_threads = n_threads > 0 ? n_threads : 1;
    a->n_ctx = n_ctx;
    const size_t G = (size_t)(h->n_head / h->n_head_kv), hd = (size_t)h->head_dim;
    /* about 40 query rows per tile (measured best for G 1 and 7: more rows spill the scores
     * and queries out of L1) */
    a->tile = (int)(40 / G);
    if (a->tile < 1) a->tile = 1;
    if (a->tile > BM_ATT_TILE_MAX) a->tile = BM_ATT_TILE_MAX;
    /* per row: s [CHUNK], chunk o [hd], chunk m, l and running M, L; 64-byte multiple */
    const size_t rows = (size_t)a->tile * G;
    a->thr_stride = (rows * (BM_ATT_CHUNK + hd + 4) + 15) & ~(size_t)15;
    /* split when the (token, KV head) pairs are too few to keep 2 per thread busy */
    a->split_cap = a->n_threads > 1 ? (2 * a->n_threads - 1) / h->n_head_kv : 0;
    size_t n_pairs = (size_t)a->split_cap * (size_t)h->n_head_kv;
    size_t units = n_pairs * (size_t)n_chunks(n_ctx - 1), unit_floats = G * (hd + 2), part;
    if (!bm_size_mul(units, unit_floats, &part))
        return bm_err_set(err, BM_EOVERFLOW, "attention: %zu split partials overflow", units);
    a->thr = bm_arena_calloc(arena, (size_t)a->n_threads * a->thr_stride, sizeof(float), err);
    a->part = part ? bm_arena_calloc(arena, part, sizeof(float), err) : NULL;
    a->pair_off = bm_arena_calloc(arena, n_pairs + 1, sizeof(int32_t), err);
    if (!a->thr || (part && !a->part) || !a->pair_off) return BM_ENOMEM;
    return BM_OK;
}

/* ---- one layer over a batch slice ----------------------------------------------------- */

typedef struct att_task {
    const bm_att *a;
    const bm_kv *kv;
    const bm_batch *b;
    int32_t off, n, n_pairs;
    int layer, G;
    int64_t qd;
    float scale;
    const float *q;
    float *out;
    bm_att_chunk_fn chunk;
    int64_t total_cost;  /* sum of pair costs (mode without split) */
} att_task;

/* Runs the kernel for chunk c of tokens [i, i + nt) of the slice (consecutive positions of one
 * sequence, the first at least c * BM_ATT_CHUNK) and KV head g into m, l, o ([nt * G] rows);
 * nk: [nt] scratch for the keys each token sees. */
static void chunk_call(const att_task *t, int32_t i, int nt, int g, int32_t c, int *nk,
                       float *s, float *m, float *l, float *o) {
    const bm_att *a = t->a;
    const bm_kv *kv = t->kv;
    const int32_t bi = t->off + i, j0 = c * BM_ATT_CHUNK;
    for (int u = 0; u < nt; u++) {
        int32_t left = t->b->pos[bi + u] + 1 - j0;
        nk[u] = left < BM_ATT_CHUNK ? left : BM_ATT_CHUNK;
    }
    const bm_seq *sq = t->b->seq[bi];
    const float *kb[BM_ATT_CHUNK_BLOCKS], *vb[BM_ATT_CHUNK_BLOCKS];
    int nb = (nk[nt - 1] + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
    for (int k = 0; k < nb; k++) {
        const size_t off = bm_kv_block_off(kv, t->layer, sq->blocks[j0 / BM_KV_BLOCK + k]);
        kb[k] = kv->k + off + (size_t)g * a->hd * BM_KV_BLOCK;
        vb[k] = kv->v + off + (size_t)g * a->hd * BM_KV_BLOCK;
    }
    bm_att_chunk ca = {.q = t->q + (size_t)i * t->qd + (size_t)g * t->G * a->hd, .ldq = t->qd,
                       .kb = kb, .vb = vb, .ld = a->hd, .blk = BM_KV_BLOCK,
                       .n_tok = nt, .G = t->G, .hd = a->hd, .n_key = nk, .scale = t->scale,
                       .s = s, .m = m, .l = l, .o = o};
    t->chunk(&ca);
}

/* Folds chunk state (m, l, o) into the running state (M, L, O) of G heads; the first chunk
 * is copied. One formula for every path: M' = max(M, m), L' = L e^(M-M') + l e^(m-M'),
 * O' = O e^(M-M') + o e^(m-M'). */
static void fold(int G, int hd, bool first, float *M, float *L, float *O, const float *m,
                 const float *l, const float *o) {
    if (first) {
        memcpy(M, m, (size_t)G * sizeof(float));
        memcpy(L, l, (size_t)G * sizeof(float));
        memcpy(O, o, (size_t)G * hd * sizeof(float));
        return;
    }
    for (int g = 0; g < G; g++) {
        float mn = M[g] > m[g] ? M[g] : m[g];
        float ea = expf(M[g] - mn), eb = expf(m[g] - mn);
        M[g] = mn;
        L[g] = L[g] * ea + l[g] * eb;
        float *Og = O + (size_t)g * hd;
        const float *og = o + (size_t)g * hd;
        for (int d = 0; d < hd; d++) Og[d] = Og[d] * ea + og[d] * eb;
    }
}

static void finish(int G, int hd, const float *L, float *O) {
    for (int g = 0; g < G; g++) {
        float inv = 1.0f / L[g];
        for (int d = 0; d < hd; d++) O[(size_t)g * hd + d] *= inv;
    }
}

/* Output of slice token i, KV head g: its G heads' rows. */
static float *tok_out(const att_task *t, int32_t i, int g) {
    return t->out + (size_t)i * t->qd + (size_t)g * t->G * t->a->hd;
}

static int64_t tok_cost(const att_task *t, int32_t i) {
    return (int64_t)t->b->pos[t->off + i] + 1 + BM_KV_BLOCK;
}

/* End of the tile that starts at slice token i: the following tokens of the same sequence at
 * the following positions, at most a->tile in all. */
static int32_t tile_end(const att_task *t, int32_t i) {
    const bm_batch *b = t->b;
    int32_t e = i + 1, bi = t->off + i;
    while (e < t->n && e - i < t->a->tile && b->seq[t->off + e] == b->seq[bi] &&
           b->pos[t->off + e] == b->pos[bi] + (e - i))
        e++;
    return e;
}

/* Without split: work items are (tile, KV head); each thread takes a contiguous run of items of
 * about equal total cost (keys visited) and walks their chunks in order. */
static void run_tiles(void *ctx, int ith, int nth) {
    const att_task *t = ctx;
    const bm_att *a = t->a;
    const int G = t->G, hd = a->hd;
    const size_t rows = (size_t)a->tile * G;
    float *s = a->thr + (size_t)ith * a->thr_stride, *o = s + rows * BM_ATT_CHUNK;
    float *m = o + rows * hd, *l = m + rows, *M = l + rows, *L = M + rows;
    int nk[BM_ATT_TILE_MAX];
    int64_t before = 0;
    for (int32_t i = 0, e; i < t->n; i = e) {
        e = tile_end(t, i);
        int64_t cost = 0;
        for (int32_t u = i; u < e; u++) cost += tok_cost(t, u);
        const int nt = (int)(e - i);
        const int32_t pos0 = t->b->pos[t->off + i];
        const int32_t nc = n_chunks(t->b->pos[t->off + e - 1]);
        for (int g = 0; g < a->n_head_kv; g++) {
            int owner = (int)((before * nth) / t->total_cost);
            before += cost;
            if (owner != ith) continue;
            for (int32_t c = 0; c < nc; c++) {
                /* tokens before the chunk's first position see none of it */
                int u0 = c * BM_ATT_CHUNK > pos0 ? (int)(c * BM_ATT_CHUNK - pos0) : 0;
                chunk_call(t, i + u0, nt - u0, g, c, nk, s, m, l, o);
                for (int u = u0; u < nt; u++) {
                    size_t r = (size_t)u * G, rc = (size_t)(u - u0) * G;
                    fold(G, hd, c == 0, M + r, L + r, tok_out(t, i + u, g), m + rc, l + rc,
                         o + rc * hd);
                }
            }
            for (int u = 0; u < nt; u++)
                finish(G, hd, L + (size_t)u * G, tok_out(t, i + u, g));
        }
    }
}

/* Split phase 1: the chunks of all pairs, numbered by a->pair_off, in equal runs per thread;
 * each partial goes to its own slot of a->part. */
static void run_units(void *ctx, int ith, int nth) {
    const att_task *t = ctx;
    const bm_att *a = t->a;
    const size_t unit = (size_t)t->G * (a->hd + 2);
    float *s = a->thr + (size_t)ith * a->thr_stride;
    int nk[1];
    int64_t lo, hi;
    bm_split_range(a->pair_off[t->n_pairs], ith, nth, &lo, &hi);
    int32_t p = 0;
    for (int64_t u = lo; u < hi; u++) {
        while (a->pair_off[p + 1] <= u) p++;
        float *m = a->part + (size_t)u * unit, *l = m + t->G, *o = l + t->G;
        chunk_call(t, p / a->n_head_kv, 1, p % a->n_head_kv, (int32_t)(u - a->pair_off[p]), nk,
                   s, m, l, o);
    }
}

/* Split phase 2: each pair folds its partials in chunk order. */
static void run_fold(void *ctx, int ith, int nth) {
    const att_task *t = ctx;
    const bm_att *a = t->a;
    const int G = t->G, hd = a->hd;
    const size_t unit = (size_t)G * (hd + 2);
    float *M = a->thr + (size_t)ith * a->thr_stride, *L = M + G;
    int64_t lo, hi;
    bm_split_range(t->n_pairs, ith, nth, &lo, &hi);
    for (int32_t p = (int32_t)lo; p < (int32_t)hi; p++) {
        float *O = tok_out(t, p / a->n_head_kv, p % a->n_head_kv);
        for (int32_t u = a->pair_off[p]; u < a->pair_off[p + 1]; u++) {
            const float *m = a->part + (size_t)u * unit, *l = m + G, *o = l + G;
            fold(G, hd, u == a->pair_off[p], M, L, O, m, l, o);
        }
        finish(G, hd, L, O);
    }
}

void bm_att_run(bm_att *a, bm_pool *pool, const bm_kv *kv, int layer, const bm_batch *b,
                int32_t off, int32_t n, const float *q, float *out) {
    const bm_kernels *k = bm_kernels_get();
    att_task t = {.a = a, .kv = kv, .b = b, .off = off, .n = n, .n_pairs = n * a->n_head_kv,
                  .layer = layer, .G = a->n_head / a->n_head_kv, .qd = (int64_t)a->n_head * a->hd,
                  .scale = 1.0f / sqrtf((float)a->hd), .q = q, .out = out,
                  .chunk = k->att_chunk};
    int nth = pool ? bm_pool_n_threads(pool) : 1;
    if (nth > a->n_threads) nth = a->n_threads;
    int64_t units = 0;
    if (n <= a->split_cap && nth > 1) {
        for (int32_t p = 0; p < t.n_pairs; p++) {
            a->pair_off[p] = (int32_t)units;
            units += n_chunks(b->pos[off + p / a->n_head_kv]);
        }
        a->pair_off[t.n_pairs] = (int32_t)units;
    }
    if (units > t.n_pairs) {
        bm_pool_run(pool, run_units, &t, nth);
        bm_pool_run(pool, run_fold, &t, nth);
        return;
    }
    for (int32_t i = 0; i < n; i++) t.total_cost += tok_cost(&t, i) * a->n_head_kv;
    bm_pool_run(pool, run_tiles, &t, nth);
}
