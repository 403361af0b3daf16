/* Threaded matrix product over the pool: rows of the weight split into one contiguous range
 * per thread, each thread running the kernel for all tokens of its rows (the weight row is
 * read once per call whatever the number of tokens). The kernel is chosen once from the
 * CPU's features; BM_KERNELS=ref forces the scalar reference. */
#include "baimo/tensor.h"

#include <stdlib.h>
#include <string.h>

typedef struct mm_task {
    const bm_tensor *w;
    const float *x;
    int64_t n_tok;
    float *y;
    uint8_t *scratch;
    size_t scratch_per_thread;
    size_t row_bytes;
} mm_task;

static void mm_run(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    int64_t lo, hi;
    bm_split_range(t->w->ne[1], ith, nth, &lo, &hi);
    if (lo >= hi) return;
    float *scr = (float *)(t->scratch + (size_t)ith * t->scratch_per_thread);
    bm_k_matmul_ref(t->w->data, t->w->type, t->row_bytes, t->w->ne[0], lo, hi, t->x, t->n_tok,
                    t->y, t->w->ne[1], scr);
}

size_t bm_matmul_scratch_bytes(int64_t n_in, int64_t n_tok, int n_threads) {
    size_t per = ((size_t)n_in * sizeof(float) + 63) & ~(size_t)63;
    return per * (size_t)(n_threads > 0 ? n_threads : 1);
}

void bm_matmul(bm_pool *pool, const bm_tensor *w, const float *x, int64_t n_tok, float *y,
               void *scratch) {
    mm_task t = {w, x, n_tok, y, scratch, 0, 0};
    BM_ASSERT(bm_row_bytes(w->type, w->ne[0], &t.row_bytes));
    t.scratch_per_thread = bm_matmul_scratch_bytes(w->ne[0], n_tok, 1);
    bm_pool_run(pool, mm_run, &t, bm_pool_n_threads(pool));
}

const char *bm_kernels_name(void) { return "ref"; }
