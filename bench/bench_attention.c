/* Attention of one layer over a paged KV cache: the fused chunked attention (bm_att_run,
 * src/model/attention.c) against the previous per-head scheme (scores of every key into a
 * row, bm_k_softmax_ref, then axpy of each V row) measured in the same run, for a causal
 * prefill of P tokens and for decode of 1 token after P. Prints median and min of the
 * repetitions, the ratio, and the max difference between the two outputs.
 * --no-old skips the baseline; --tile N sets the query tile (tokens, 1 = untiled); --cold
 * reads a 256 MiB buffer before each repetition, so the cache comes from DRAM as in a model's
 * decode (whose weights evict it from the caches every token) and not from L2/L3.
 * Usage: bench_attention [-p 128,1024] [-t THREADS] [-r REPS] [--heads 14] [--kv 2] [--hd 64]
 *                        [--tile N] [--no-old] [--cold] */
#include "model/attention.h"
#include "tensor/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_head = 14, n_kv = 2, hd = 64;
static bm_kv kv;
static float *k_rows, *v_rows; /* the same K and V by slot ([slot][n_kv_dim]), as the baseline
                                * stored them */
static bm_seq seq;

typedef struct old_task {
    const bm_batch *b;
    int32_t n;
    const float *q;
    float *out, *scores;
    int32_t n_ctx;
} old_task;

/* The attention forward.c had before attention.c (kept here as the baseline). */
static void old_run(void *ctx, int ith, int nth) {
    const old_task *t = ctx;
    const int group = n_head / n_kv;
    const size_t qd = (size_t)n_head * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = t->scores + (size_t)ith * t->n_ctx;
    const bm_kernels *k = bm_kernels_get();
    int64_t lo, hi;
    bm_split_range((int64_t)t->n * n_head, ith, nth, &lo, &hi);
    for (int64_t w = lo; w < hi; w++) {
        int32_t i = (int32_t)(w / n_head), head = (int32_t)(w % n_head), pos = t->b->pos[i];
        const float *q = t->q + (size_t)i * qd + (size_t)head * hd;
        int kvh = head / group;
        for (int32_t j = 0; j <= pos; j++) {
            size_t slot = (size_t)seq.blocks[j / BM_KV_BLOCK] * BM_KV_BLOCK + j % BM_KV_BLOCK;
            sc[j] = k->dot_f32(q, k_rows + slot * kv.n_kv_dim + (size_t)kvh * hd, hd) * scale;
        }
        bm_k_softmax_ref(sc, pos + 1);
        float *o = t->out + (size_t)i * qd + (size_t)head * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int32_t j = 0; j <= pos; j++) {
            size_t slot = (size_t)seq.blocks[j / BM_KV_BLOCK] * BM_KV_BLOCK + j % BM_KV_BLOCK;
            k->axpy_f32(sc[j], v_rows + slot * kv.n_kv_dim + (size_t)kvh * hd, o, hd);
        }
    }
}

/* Evicts the caches: reads a buffer larger than any last-level cache (a sum keeps it). */
static float evict(void) {
    static float *buf;
    static const size_t n = (size_t)64 << 20; /* floats: 256 MiB */
    if (!buf && !(buf = malloc(n * sizeof(float)))) return 0;
    static bool filled;
    if (!filled)
        for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    filled = true;
    float s = 0;
    for (size_t i = 0; i < n; i += 16) s += buf[i];
    return s;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *ps = "128,1024,4096";
    int n_threads = 2, reps = 5, tile = 0, no_old = 0, cold = 0;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--no-old") || !strcmp(argv[i], "--cold")) { /* flags */
            if (!strcmp(argv[i], "--cold")) cold = 1;
            else no_old = 1;
            i--;
            continue;
        }
        if (i + 1 >= argc) break;
        if (!strcmp(argv[i], "-p")) ps = argv[i + 1];
        else if (!strcmp(argv[i], "--tile")) tile = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) n_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--heads")) n_head = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kv")) n_kv = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hd")) hd = atoi(argv[i + 1]);
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    if (n_kv < 1 || n_head % n_kv || hd < 1) {
        fprintf(stderr, "bench_attention: bad shape\n");
        return 2;
    }
    bm_err err = {0};
    bm_pool *pool = bm_pool_new(n_threads, &err);
    if (!pool) return 1;
    n_threads = bm_pool_n_threads(pool);
    printf("attention  heads %d  kv heads %d  head_dim %d  threads %d  kernels %s\n", n_head, n_kv,
           hd, n_threads, bm_kernels_get()->name);
    const char *p = ps;
    int mode_printed = 0;
    while (*p) {
        int32_t P = (int32_t)strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
        if (P < 1 || P > 65536) continue;
        int32_t nb = (P + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
        kv = (bm_kv){.n_blocks = nb, .n_layer = 1, .n_kv_dim = n_kv * hd, .head_dim = hd};
        size_t nkv = (size_t)nb * BM_KV_BLOCK * kv.n_kv_dim, qd = (size_t)n_head * hd;
        kv.k = malloc(nkv * sizeof(float));
        kv.v = malloc(nkv * sizeof(float));
        k_rows = malloc(nkv * sizeof(float));
        v_rows = malloc(nkv * sizeof(float));
        int32_t *blocks = malloc((size_t)nb * sizeof(int32_t)), *pos = malloc(P * sizeof(int32_t));
        float *q = malloc((size_t)P * qd * sizeof(float)), *o1 = malloc((size_t)P * qd * 4),
              *o2 = malloc((size_t)P * qd * 4), *scores = malloc((size_t)n_threads * P * 4);
        bm_seq **sq = malloc((size_t)P * sizeof(bm_seq *));
        if (!kv.k || !kv.v || !k_rows || !v_rows || !blocks || !pos || !q || !o1 || !o2 ||
            !scores || !sq)
            return 1;
        uint32_t r = 1;
        for (size_t i = 0; i < nkv; i++) {
            r = r * 1664525u + 1013904223u, k_rows[i] = (float)(r >> 8) / (1 << 24) * 2 - 1;
            r = r * 1664525u + 1013904223u, v_rows[i] = (float)(r >> 8) / (1 << 24) * 2 - 1;
        }
        for (int32_t b = 0; b < nb; b++) /* the cache's layout (include/baimo/model.h) */
            for (int i = 0; i < BM_KV_BLOCK; i++)
                for (int c = 0; c < kv.n_kv_dim; c++) {
                    const size_t off = bm_kv_block_off(&kv, 0, b), at =
                        ((size_t)b * BM_KV_BLOCK + i) * kv.n_kv_dim + c;
                    kv.k[off + (size_t)c * BM_KV_BLOCK + i] = k_rows[at];
                    kv.v[off + ((size_t)(c / hd) * BM_KV_BLOCK + i) * hd + c % hd] = v_rows[at];
                }
        for (size_t i = 0; i < (size_t)P * qd; i++)
            r = r * 1664525u + 1013904223u, q[i] = (float)(r >> 8) / (1 << 24) * 4 - 2;
        for (int32_t b = 0; b < nb; b++) blocks[b] = nb - 1 - b;
        seq = (bm_seq){.blocks = blocks, .n_blocks = nb, .cap_blocks = nb, .n_pos = P,
                       .max_pos = P};
        for (int32_t i = 0; i < P; i++) pos[i] = i, sq[i] = &seq;
        bm_hparams h = {0};
        h.n_head = n_head, h.n_head_kv = n_kv, h.head_dim = hd;
        bm_arena arena;
        bm_arena_init(&arena, 1 << 20, 0);
        bm_att att;
        if (bm_att_init(&att, &arena, &h, P, n_threads, &err)) {
            fprintf(stderr, "bench_attention: %s\n", err.msg);
            return 1;
        }
        if (tile >= 1 && tile < att.tile) att.tile = tile;
        if (mode_printed++ == 0) printf("query tile %d tokens\n", att.tile);
        for (int mode = 0; mode < 2; mode++) {
            /* mode 0: prefill of positions [0, P); mode 1: decode of position P - 1 */
            int32_t n = mode ? 1 : P, first = mode ? P - 1 : 0;
            bm_batch b = {.n_tok = n, .pos = pos + first, .seq = sq};
            old_task ot = {&b, n, q + (size_t)first * qd, o1, scores, P};
            double t_old[64], t_new[64];
            volatile float sink = 0;
            for (int k = -1; k < reps; k++) { /* k = -1: warm-up */
                if (cold) sink += evict();
                double t0 = bm_time_now();
                if (!no_old) bm_pool_run(pool, old_run, &ot, n_threads);
                const double t_o = bm_time_now() - t0;
                if (cold && !no_old) sink += evict();
                double t1 = bm_time_now();
                bm_att_run(&att, pool, &kv, 0, &b, 0, n, q + (size_t)first * qd, o2);
                double t2 = bm_time_now();
                if (k >= 0) t_old[k] = t_o, t_new[k] = t2 - t1;
            }
            double md = 0;
            for (size_t i = 0; no_old && i < (size_t)n * qd; i++) o1[i] = o2[i];
            for (size_t i = 0; i < (size_t)n * qd; i++)
                md = fmax(md, fabs((double)o1[i] - o2[i]));
            qsort(t_old, reps, sizeof(double), cmp_d);
            qsort(t_new, reps, sizeof(double), cmp_d);
            double keys = mode ? P : (double)P * (P + 1) / 2;
            double flop = 4.0 * keys * n_head * hd; /* QK^T and PV, 2 flops per multiply-add */
            printf("%-7s P=%-6d old %9.3f ms (min %9.3f)  new %9.3f ms (min %9.3f)  %5.2fx  "
                   "new %6.2f GFLOP/s  max|diff| %.2g\n", mode ? "decode" : "prefill", P,
                   t_old[reps / 2] * 1e3, t_old[0] * 1e3, t_new[reps / 2] * 1e3, t_new[0] * 1e3,
                   t_old[reps / 2] / t_new[reps / 2], flop / t_new[reps / 2] * 1e-9, md);
        }
        bm_arena_fini(&arena);
        free(kv.k), free(kv.v), free(k_rows), free(v_rows), free(blocks), free(pos), free(q);
        free(o1), free(o2);
        free(scores), free(sq);
    }
    bm_pool_free(pool);
    return 0;
}
