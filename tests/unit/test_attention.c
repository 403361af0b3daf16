/* Fused attention (src/model/attention.c) on a hand-built paged KV cache: every kernel level
 * against a double-precision softmax attention written here (head_dim 64/128, GQA groups
 * 1/2/7, contexts around the 256-key chunk edges), and one row bitwise identical whether it is
 * computed alone (decode, split-KV), inside a prefill batch with another sequence, or with
 * 1, 2 or 3 threads. */
#include <criterion/criterion.h>

#include "model/attention.h"
#include "tensor/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    int hd, G, n_kv, n_head;
    int32_t n_ctx;
    bm_kv kv;
    bm_seq seq[2];
    int32_t blocks[2][64];
} fixture;

static uint64_t rng_state;
static float frand(void) { /* uniform [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) * (1.0 / (1ull << 23)) - 1.0);
}

/* Two sequences of n_ctx filled positions each; their blocks interleaved and reversed in the
 * cache so the paging is exercised. */
static void fixture_init(fixture *f, int hd, int G, int32_t n_ctx) {
    memset(f, 0, sizeof *f);
    f->hd = hd, f->G = G, f->n_kv = 2, f->n_head = 2 * G, f->n_ctx = n_ctx;
    int32_t nb = (n_ctx + BM_KV_BLOCK - 1) / BM_KV_BLOCK;
    cr_assert_leq(nb, 64);
    f->kv.n_blocks = 2 * nb;
    f->kv.n_layer = 1;
    f->kv.n_kv_dim = f->n_kv * hd;
    size_t n = (size_t)f->kv.n_blocks * BM_KV_BLOCK * f->kv.n_kv_dim;
    f->kv.k = malloc(n * sizeof(float));
    f->kv.v = malloc(n * sizeof(float));
    cr_assert(f->kv.k && f->kv.v);
    rng_state = 42u + (uint64_t)hd * 131 + (uint64_t)G * 7 + (uint64_t)n_ctx;
    for (size_t i = 0; i < n; i++) f->kv.k[i] = 2.0f * frand(), f->kv.v[i] = frand();
    for (int s = 0; s < 2; s++) {
        for (int32_t b = 0; b < nb; b++) f->blocks[s][b] = 2 * (nb - 1 - b) + s;
        f->seq[s] = (bm_seq){.blocks = f->blocks[s], .n_blocks = nb, .cap_blocks = nb,
                             .n_pos = n_ctx, .max_pos = n_ctx};
    }
}

static void fixture_fini(fixture *f) {
    free(f->kv.k);
    free(f->kv.v);
}

static const float *kv_row(const fixture *f, const float *base, int s, int32_t pos, int g) {
    size_t slot = (size_t)f->seq[s].blocks[pos / BM_KV_BLOCK] * BM_KV_BLOCK + pos % BM_KV_BLOCK;
    return base + slot * f->kv.n_kv_dim + (size_t)g * f->hd;
}

/* Double-precision softmax(q k^T / sqrt(hd)) v of one query row over positions [0, pos]. */
static void ref_row(const fixture *f, int s, int32_t pos, const float *q, double *out) {
    double *w = malloc((size_t)(pos + 1) * sizeof(double));
    for (int h = 0; h < f->n_head; h++) {
        int g = h / f->G;
        double mx = -INFINITY, sum = 0;
        for (int32_t j = 0; j <= pos; j++) {
            const float *k = kv_row(f, f->kv.k, s, j, g);
            double d = 0;
            for (int e = 0; e < f->hd; e++) d += (double)q[h * f->hd + e] * k[e];
            w[j] = d / sqrt((double)f->hd);
            if (w[j] > mx) mx = w[j];
        }
        for (int32_t j = 0; j <= pos; j++) sum += (w[j] = exp(w[j] - mx));
        for (int e = 0; e < f->hd; e++) {
            double o = 0;
            for (int32_t j = 0; j <= pos; j++) o += w[j] * kv_row(f, f->kv.v, s, j, g)[e];
            out[h * f->hd + e] = o / sum;
        }
    }
    free(w);
}

/* Runs the attention of n rows (sequence seq_of[i], position pos[i]) with an n_threads pool
 * (0: no pool). q: [n, n_head * hd]; out: [n, n_head * hd]. */
static void run(const fixture *f, int n_threads, int32_t n, const int32_t *pos,
                const int *seq_of, const float *q, float *out, int32_t *split_cap) {
    bm_hparams h = {0};
    h.n_head = f->n_head, h.n_head_kv = f->n_kv, h.head_dim = f->hd;
    bm_arena arena;
    bm_arena_init(&arena, 1 << 16, 0);
    bm_err err = {0};
    bm_pool *pool = NULL;
    if (n_threads > 0) cr_assert_not_null(pool = bm_pool_new(n_threads, &err), "%s", err.msg);
    bm_att att;
    cr_assert_eq(bm_att_init(&att, &arena, &h, f->n_ctx, n_threads, &err), BM_OK, "%s",
                 err.msg);
    bm_seq *sq[64];
    cr_assert_leq(n, 64);
    for (int32_t i = 0; i < n; i++) sq[i] = (bm_seq *)&f->seq[seq_of[i]];
    bm_batch b = {.n_tok = n, .pos = pos, .seq = sq};
    bm_att_run(&att, pool, &f->kv, 0, &b, 0, n, q, out);
    if (split_cap) *split_cap = att.split_cap;
    bm_pool_free(pool);
    bm_arena_fini(&arena);
}

static void fill_q(float *q, size_t n, float amp) {
    for (size_t i = 0; i < n; i++) q[i] = amp * frand();
}

/* Every level against the double reference, for the last row of contexts around chunk edges. */
Test(attention, matches_double_reference) {
    static const int hds[] = {64, 128}, gs[] = {1, 2, 7};
    static const int32_t lens[] = {1, 31, 255, 256, 257, 1000};
    int max_lvl = bm_kernels_max_level();
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 6; c++) {
                fixture f;
                fixture_init(&f, hds[a], gs[b], lens[c]);
                size_t qd = (size_t)f.n_head * f.hd;
                float *q = malloc(qd * sizeof(float)), *out = malloc(qd * sizeof(float));
                double *want = malloc(qd * sizeof(double));
                /* amplitude 6 gives peaked rows whose maximum moves between chunks */
                fill_q(q, qd, c % 2 ? 6.0f : 1.0f);
                int32_t pos = lens[c] - 1;
                for (int s = 0; s < 2; s++) {
                    ref_row(&f, s, pos, q, want);
                    for (int lvl = 0; lvl <= max_lvl; lvl++) {
                        if (!bm_kernels_at(lvl)) continue; /* avxvnni on AVX-512 CPUs */
                        cr_assert(bm_kernels_set_level(lvl));
                        memset(out, 0xff, qd * sizeof(float));
                        run(&f, 2, 1, &pos, &s, q, out, NULL);
                        for (size_t i = 0; i < qd; i++)
                            cr_assert_leq(fabs(out[i] - want[i]), 4e-6 + 1e-5 * fabs(want[i]),
                                          "hd %d G %d len %d seq %d level %s: out[%zu] = %.9g, "
                                          "want %.9g", f.hd, f.G, lens[c], s,
                                          bm_kernels_level_name(lvl), i, out[i], want[i]);
                    }
                }
                bm_kernels_set_level(max_lvl);
                free(q), free(out), free(want);
                fixture_fini(&f);
            }
}

/* One row (last position of sequence 0) alone, in prefill batches with the other sequence,
 * and with 0 (no pool), 1, 2, 3 threads: the same bits, at every level. */
Test(attention, row_is_batch_and_thread_invariant) {
    static const int gs[] = {1, 7};
    static const int32_t lens[] = {257, 1000};
    int max_lvl = bm_kernels_max_level();
    for (int lvl = 0; lvl <= max_lvl; lvl++) {
        if (!bm_kernels_at(lvl)) continue; /* avxvnni on AVX-512 CPUs */
        cr_assert(bm_kernels_set_level(lvl));
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                fixture f;
                fixture_init(&f, 64 * (a + 1), gs[b], lens[b]);
                size_t qd = (size_t)f.n_head * f.hd;
                int32_t L = lens[b], N = 48;
                float *q = malloc(N * qd * sizeof(float)), *out = malloc(N * qd * sizeof(float));
                float *alone = malloc(qd * sizeof(float));
                fill_q(q, N * qd, 3.0f);
                const float *qrow = q + (size_t)(N - 1) * qd; /* the row under test */
                int32_t pos[48];
                int seq_of[48];
                /* decode, split-KV with 2 threads */
                int32_t cap = 0, p1 = L - 1, s0 = 0;
                run(&f, 2, 1, &p1, &s0, qrow, alone, &cap);
                cr_assert_geq(cap, 1, "the split-KV path is not in use for a 1-token batch");
                for (int nt = 0; nt <= 3; nt++) {
                    /* decode alone */
                    run(&f, nt, 1, &p1, &s0, qrow, out, NULL);
                    cr_assert(!memcmp(out, alone, qd * sizeof(float)),
                              "level %s hd %d G %d: decode with %d threads differs",
                              bm_kernels_level_name(lvl), f.hd, f.G, nt);
                    /* prefill: the last 24 positions of seq 0 interleaved with 24 of seq 1 */
                    for (int32_t i = 0; i < N; i++) {
                        seq_of[i] = i < N - 1 ? i % 2 : 0;
                        pos[i] = seq_of[i] == 0 ? L - N / 2 + i / 2 : (i * 37) % L;
                    }
                    memcpy(q + (size_t)(N - 1) * qd, qrow, qd * sizeof(float));
                    run(&f, nt, N, pos, seq_of, q, out, NULL);
                    cr_assert_eq(pos[N - 1], L - 1);
                    cr_assert(!memcmp(out + (size_t)(N - 1) * qd, alone, qd * sizeof(float)),
                              "level %s hd %d G %d: prefill with %d threads differs from decode",
                              bm_kernels_level_name(lvl), f.hd, f.G, nt);
                }
                free(q), free(out), free(alone);
                fixture_fini(&f);
            }
    }
    bm_kernels_set_level(max_lvl);
}
