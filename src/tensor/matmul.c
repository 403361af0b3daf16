/* Threaded matrix product over the pool (one matrix, or several sharing their input in one
 * fused run: Q/K/V, gate/up). With a fast kernel for the weight type, activations
 * that the kernel wants quantized are converted once per call (int8 blocks of 32 into the
 * caller's scratch, split by tokens over the pool), then weight rows are handed out in chunks
 * claimed dynamically by the pool's workers; every chunk covers all tokens of its rows, so a
 * weight row is read once per call. Types without a fast kernel run the scalar reference with
 * one contiguous row range per thread. Tensors packed at load (t->packed) use the level's packed
 * kernel, in chunks of whole row groups, when it has one, and their original rows otherwise.
 * Each output element is computed by exactly one thread
 * with an instruction sequence that does not depend on n_tok: results are batch invariant. */
#include "tensor/kernels.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN64(n) (((size_t)(n) + 63) & ~(size_t)63)

typedef struct mm_task {
    const bm_kernels *k;
    const bm_tensor *w;
    bm_mm_fn fn;            /* fast kernel (NULL: the reference path) */
    int act;                /* BM_ACT_* it consumes */
    bool u8;                /* Q8 codes stored + 128 */
    bm_mm_args a;
    uint8_t *scratch;       /* per-thread f32 rows for the reference path */
    size_t scratch_per_thread;
    int64_t chunk;          /* rows per chunk (fast path) */
    const float *x_f32;     /* activations to quantize */
} mm_task;

/* Scratch layout: [per-thread f32 row] x n_threads, then Q8 codes [n_tok, ldq], scales, sums
 * and scale x sum [n_tok, ldd] each. */
typedef struct scratch_layout {
    size_t per_thread, q_off, d_off, s_off, m_off, total;
    int64_t ldq, ldd;
} scratch_layout;

static scratch_layout layout(int64_t n_in, int64_t n_tok, int n_threads) {
    scratch_layout l;
    l.per_thread = ALIGN64((size_t)n_in * sizeof(float));
    l.ldq = (int64_t)ALIGN64((size_t)n_in);
    l.ldd = (n_in + BM_QK - 1) / BM_QK;
    const size_t nt = (size_t)(n_tok > 0 ? n_tok : 1);
    const size_t per_block = ALIGN64(nt * (size_t)l.ldd * sizeof(float)); /* float or int32 */
    l.q_off = l.per_thread * (size_t)(n_threads > 0 ? n_threads : 1);
    l.d_off = l.q_off + ALIGN64(nt * (size_t)l.ldq);
    l.s_off = l.d_off + per_block;
    l.m_off = l.s_off + per_block;
    l.total = l.m_off + per_block;
    return l;
}

size_t bm_matmul_scratch_bytes(int64_t n_in, int64_t n_tok, int n_threads) {
    return layout(n_in, n_tok, n_threads).total;
}

static void ref_run(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range(t->w->ne[1], ith, nth, &lo, &hi);
    if (lo >= hi) return;
    float *scr = (float *)(t->scratch + (size_t)ith * t->scratch_per_thread);
    bm_k_matmul_ref(t->a.w, t->w->type, t->a.row_bytes, t->a.n_in, lo, hi, t->x_f32, t->a.n_tok,
                    t->a.y, t->a.ldy, scr);
}

static void quant_run(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range(t->a.n_tok, ith, nth, &lo, &hi);
    if (lo < hi) t->k->act_q8(t->x_f32, t->a.n_in, lo, hi, &t->a, t->u8);
}

/* One fused run over several matrices sharing the input: task i is chunk i of the
 * concatenated row space (each matrix cut into its own chunks). */
typedef struct multi_task {
    int n;
    mm_task t[BM_MM_MULTI_MAX];
    int64_t first[BM_MM_MULTI_MAX + 1]; /* first task index of each matrix */
} multi_task;

static void fast_run(void *ctx, int ith, int nth) {
    const multi_task *mt = ctx;
    int i = 0;
    while (i + 1 < mt->n && ith >= mt->first[i + 1]) i++;
    const mm_task *t = &mt->t[i];
    const int64_t lo = (int64_t)(ith - mt->first[i]) * t->chunk;
    int64_t hi = lo + t->chunk;
    if (hi > t->w->ne[1]) hi = t->w->ne[1];
    if (lo < hi) t->fn(&t->a, lo, hi);
}

static void init_task(mm_task *t, const bm_kernels *k, const bm_tensor *w, const float *x,
                      int64_t n_tok, float *y, void *scratch, int nth) {
    memset(t, 0, sizeof *t);
    t->k = k;
    t->w = w;
    t->x_f32 = x;
    t->a.w = w->data;
    if ((unsigned)w->type < BM_DTYPE_COUNT) {
        if (w->packed && k->mmp[w->type]) {
            /* Packed rows: their own kernel; the original bytes stay for every other level. */
            t->fn = k->mmp[w->type];
            t->act = w->type == BM_BF16 ? BM_ACT_F32 : BM_ACT_Q8S; /* bf16: rounds x itself */
            t->a.w = w->packed;
        } else {
            t->fn = k->mm[w->type];
            t->act = k->act[w->type];
        }
        t->u8 = t->act == BM_ACT_Q8 && k->act_u8;
    }
    t->a.n_in = w->ne[0];
    t->a.n_tok = n_tok;
    t->a.x = x;
    t->a.y = y;
    t->a.ldy = w->ne[1];
    BM_ASSERT(bm_row_bytes(w->type, w->ne[0], &t->a.row_bytes));
    const scratch_layout l = layout(w->ne[0], n_tok, nth);
    t->scratch_per_thread = l.per_thread;
    t->a.ldq = l.ldq;
    t->a.ldd = l.ldd;
    t->scratch = scratch;
    t->a.xq = (uint8_t *)scratch + l.q_off;
    t->a.xd = (const float *)((uint8_t *)scratch + l.d_off);
    t->a.xs = (const int32_t *)((uint8_t *)scratch + l.s_off);
    t->a.xm = (const float *)((uint8_t *)scratch + l.m_off);
}

void bm_matmul_multi(bm_pool *pool, int n, const bm_tensor *const *ws, const float *x,
                     int64_t n_tok, float *const *ys, void *scratch) {
    BM_ASSERT(n >= 1 && n <= BM_MM_MULTI_MAX);
    const int nth = bm_pool_n_threads(pool);
    const bm_kernels *k = bm_kernels_get();
    if (n_tok <= 0) return;
    /* Fused only when every matrix has a fast kernel, the same n_in and (for those with
     * quantized activations) the same code format; otherwise one by one. */
    mm_task probe[BM_MM_MULTI_MAX];
    bool fused = true, q8 = false, u8 = false;
    for (int i = 0; i < n; i++) {
        const bm_tensor *w = ws[i];
        init_task(&probe[i], k, w, x, n_tok, ys[i], scratch, nth);
        if (!probe[i].fn || w->ne[0] != ws[0]->ne[0]) {
            fused = false;
        } else if (probe[i].act != BM_ACT_F32) {
            if (q8 && probe[i].u8 != u8) fused = false;
            q8 = true;
            u8 = probe[i].u8;
        }
    }
    if (!fused) {
        for (int i = 0; i < n; i++) {
            if (ws[i]->ne[1] <= 0) continue;
            if (!probe[i].fn) {
                bm_pool_run(pool, ref_run, &probe[i], nth);
                continue;
            }
            bm_matmul_multi(pool, 1, &ws[i], x, n_tok, &ys[i], scratch);
        }
        return;
    }
    multi_task mt;
    mt.n = n;
    mt.first[0] = 0;
    for (int i = 0; i < n; i++) {
        mm_task *t = &mt.t[i];
        *t = probe[i];
        /* Chunks: about 8 per thread so a thread slowed by another process is evened out, at
         * least 4 rows each. */
        const int64_t rows = ws[i]->ne[1] > 0 ? ws[i]->ne[1] : 0;
        int64_t n_chunks = (int64_t)nth * 8;
        t->chunk = (rows + n_chunks - 1) / n_chunks;
        if (t->chunk < 4) t->chunk = 4;
        if (t->a.w == ws[i]->packed) /* whole groups of packed rows */
            t->chunk = (t->chunk + BM_PACK_ROWS - 1) / BM_PACK_ROWS * BM_PACK_ROWS;
        n_chunks = (rows + t->chunk - 1) / t->chunk;
        mt.first[i + 1] = mt.first[i] + n_chunks;
    }
    if (mt.first[n] == 0) return;
    if (q8) {
        /* Quantized once for every matrix. Splitting tokens over threads only pays when there
         * is enough to convert. */
        const int qth = n_tok * ws[0]->ne[0] >= 32768 ? (n_tok < nth ? (int)n_tok : nth) : 1;
        mm_task qt = mt.t[0];
        qt.u8 = u8;
        bm_pool_run(pool, quant_run, &qt, qth);
    }
    bm_pool_run(pool, fast_run, &mt, (int)mt.first[n]);
}

void bm_matmul(bm_pool *pool, const bm_tensor *w, const float *x, int64_t n_tok, float *y,
               void *scratch) {
    bm_matmul_multi(pool, 1, &w, x, n_tok, &y, scratch);
}
