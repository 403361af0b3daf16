/* Fused attention (src/model/attention.c) on a hand-built paged KV cache: every kernel level
 * against a double-precision softmax attention written here (head_dim 64/128, GQA groups
 * 1/2/7, contexts around the 256-key chunk edges and past 4096), and one row bitwise identical
 * whether it is computed alone (decode, split-KV), inside a prefill batch with another
 * sequence, in query tiles of any size (rows crossing the diagonal chunk), or with 1, 2 or 3
 * threads; the chunk kernels themselves: a row's result the same alone or in a tile. */
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
    int32_t blocks[2][160];
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
    cr_assert_leq(nb, 160);
    f->kv.n_blocks = 2 * nb;
    f->kv.n_layer = 1;
    f->kv.n_kv_dim = f->n_kv * hd;
    f->kv.head_dim = hd;
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

/* V row of position pos (KV head g), and element e of its K (transposed in its block). */
static const float *v_row(const fixture *f, int s, int32_t pos, int g) {
    size_t off = bm_kv_block_off(&f->kv, 0, f->seq[s].blocks[pos / BM_KV_BLOCK]);
    return f->kv.v + off + ((size_t)g * BM_KV_BLOCK + pos % BM_KV_BLOCK) * f->hd;
}

static float k_at(const fixture *f, int s, int32_t pos, int g, int e) {
    size_t off = bm_kv_block_off(&f->kv, 0, f->seq[s].blocks[pos / BM_KV_BLOCK]);
    return f->kv.k[off + ((size_t)g * f->hd + e) * BM_KV_BLOCK + pos % BM_KV_BLOCK];
}

/* Double-precision softmax(q k^T / sqrt(hd)) v of one query row over positions [0, pos]. */
static void ref_row(const fixture *f, int s, int32_t pos, const float *q, double *out) {
    double *w = malloc((size_t)(pos + 1) * sizeof(double));
    for (int h = 0; h < f->n_head; h++) {
        int g = h / f->G;
        double mx = -INFINITY, sum = 0;
        for (int32_t j = 0; j <= pos; j++) {
            double d = 0;
            for (int e = 0; e < f->hd; e++) d += (double)q[h * f->hd + e] * k_at(f, s, j, g, e);
            w[j] = d / sqrt((double)f->hd);
            if (w[j] > mx) mx = w[j];
        }
        for (int32_t j = 0; j <= pos; j++) sum += (w[j] = exp(w[j] - mx));
        for (int e = 0; e < f->hd; e++) {
            double o = 0;
            for (int32_t j = 0; j <= pos; j++) o += w[j] * v_row(f, s, j, g)[e];
            out[h * f->hd + e] = o / sum;
        }
    }
    free(w);
}

/* Runs the attention of n rows (sequence seq_of[i], position pos[i]) with an n_threads pool
 * (0: no pool) and query tiles of at most tile tokens (0: the default). q: [n, n_head * hd];
 * out: [n, n_head * hd]. */
static void run_tiled(const fixture *f, int n_threads, int tile, int32_t n, const int32_t *pos,
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
    cr_assert_geq(att.tile, 1);
    cr_assert_leq(att.tile, BM_ATT_TILE_MAX);
    if (tile > 0 && tile < att.tile) att.tile = tile;
    bm_seq *sq[256];
    cr_assert_leq(n, 256);
    for (int32_t i = 0; i < n; i++) sq[i] = (bm_seq *)&f->seq[seq_of[i]];
    bm_batch b = {.n_tok = n, .pos = pos, .seq = sq};
    bm_att_run(&att, pool, &f->kv, 0, &b, 0, n, q, out);
    if (split_cap) *split_cap = att.split_cap;
    bm_pool_free(pool);
    bm_arena_fini(&arena);
}

static void run(const fixture *f, int n_threads, int32_t n, const int32_t *pos,
                const int *seq_of, const float *q, float *out, int32_t *split_cap) {
    run_tiled(f, n_threads, 0, n, pos, seq_of, q, out, split_cap);
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

/* The chunk kernel of every level: a tile of tokens with their own key counts (the diagonal
 * chunk's 1..256, and arbitrary ones) gives each row the bits it gets alone (n_tok 1). */
Test(attention, chunk_kernel_row_alone_equals_row_in_tile) {
    static const int hds[] = {64, 128}, gs[] = {1, 2, 7}, nts[] = {1, 2, 3, 5, 9, 16};
    const int blk = BM_KV_BLOCK, nb = BM_ATT_CHUNK / BM_KV_BLOCK, T = 16;
    int max_lvl = bm_kernels_max_level();
    rng_state = 7;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++) {
            const int hd = hds[a], G = gs[b], ld = 3 * hd; /* K/V rows strided as in a cache */
            const int64_t ldq = (int64_t)G * hd + 16;
            float *kv = malloc(2 * (size_t)nb * blk * ld * sizeof(float));
            float *q = malloc((size_t)T * ldq * sizeof(float));
            float *s = malloc((size_t)T * G * BM_ATT_CHUNK * sizeof(float));
            float *st[2][3]; /* [tile / alone][m, l, o] */
            for (int w = 0; w < 2; w++) {
                st[w][0] = malloc((size_t)T * G * sizeof(float));
                st[w][1] = malloc((size_t)T * G * sizeof(float));
                st[w][2] = malloc((size_t)T * G * hd * sizeof(float));
            }
            fill_q(kv, 2 * (size_t)nb * blk * ld, 2.0f);
            fill_q(q, (size_t)T * ldq, 3.0f);
            const float *kb[BM_ATT_CHUNK / BM_KV_BLOCK], *vb[BM_ATT_CHUNK / BM_KV_BLOCK];
            for (int k = 0; k < nb; k++) /* blocks out of order */
                kb[k] = kv + (size_t)((k * 5) % nb) * blk * ld,
                vb[k] = kv + ((size_t)nb + (size_t)((k * 3) % nb)) * blk * ld;
            for (int lvl = 0; lvl <= max_lvl; lvl++) {
                if (!bm_kernels_at(lvl)) continue; /* avxvnni on AVX-512 CPUs */
                bm_att_chunk_fn fn = bm_kernels_at(lvl)->att_chunk;
                for (int c = 0; c < 6; c++)
                    for (int mode = 0; mode < 3; mode++) {
                        int nt = nts[c], nk[16];
                        for (int t = 0; t < nt; t++) /* diagonal at 0, at the end; random */
                            nk[t] = mode == 0   ? t + 1
                                    : mode == 1 ? BM_ATT_CHUNK - nt + 1 + t
                                                : 1 + (int)((frand() + 1) * 127.99f);
                        bm_att_chunk ca = {.q = q, .ldq = ldq, .kb = kb, .vb = vb, .ld = ld,
                                           .blk = blk, .n_tok = nt, .G = G, .hd = hd,
                                           .n_key = nk, .scale = 0.125f, .s = s,
                                           .m = st[0][0], .l = st[0][1], .o = st[0][2]};
                        fn(&ca);
                        for (int t = 0; t < nt; t++) {
                            bm_att_chunk one = ca;
                            one.q = q + t * ldq, one.n_tok = 1, one.n_key = nk + t;
                            one.m = st[1][0], one.l = st[1][1], one.o = st[1][2];
                            fn(&one);
                            size_t r = (size_t)t * G;
                            cr_assert(!memcmp(st[1][0], st[0][0] + r, G * sizeof(float)) &&
                                          !memcmp(st[1][1], st[0][1] + r, G * sizeof(float)) &&
                                          !memcmp(st[1][2], st[0][2] + r * hd,
                                                  (size_t)G * hd * sizeof(float)),
                                      "level %s hd %d G %d: token %d of %d (%d keys) differs "
                                      "alone", bm_kernels_level_name(lvl), hd, G, t, nt, nk[t]);
                        }
                    }
            }
            for (int w = 0; w < 2; w++) free(st[w][0]), free(st[w][1]), free(st[w][2]);
            free(kv), free(q), free(s);
        }
}

/* Prefill batches mixing runs of consecutive positions of two sequences (runs crossing the
 * 256-key chunk edges, starting at position 0, single tokens, a sequence resumed later in the
 * batch): at every level, with tiles of 1 token (untiled), 3 and the default, and 1, 2, 3
 * threads, every row has the same bits, each row matches the double reference, and a row
 * decoded alone (split-KV) has the bits it has in the batch. */
Test(attention, tiled_prefill_matches_untiled_decode_and_reference) {
    static const int hds[] = {64, 128}, gs[] = {1, 2, 7};
    /* runs: {sequence, first position, count} */
    static const int32_t runs[][3] = {{0, 250, 32}, {1, 0, 20}, {0, 990, 10},
                                      {1, 700, 1},  {1, 505, 20}, {0, 282, 5}};
    int max_lvl = bm_kernels_max_level();
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++) {
            fixture f;
            fixture_init(&f, hds[a], gs[b], 1000);
            const size_t qd = (size_t)f.n_head * f.hd;
            int32_t n = 0, pos[128];
            int seq_of[128];
            for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++)
                for (int32_t u = 0; u < runs[r][2]; u++)
                    seq_of[n] = runs[r][0], pos[n++] = runs[r][1] + u;
            float *q = malloc(n * qd * sizeof(float)), *want = malloc(n * qd * sizeof(float));
            float *out = malloc(n * qd * sizeof(float));
            double *ref = malloc(n * qd * sizeof(double));
            fill_q(q, n * qd, 3.0f);
            for (int32_t i = 0; i < n; i++) ref_row(&f, seq_of[i], pos[i], q + i * qd, ref + i * qd);
            for (int lvl = 0; lvl <= max_lvl; lvl++) {
                if (!bm_kernels_at(lvl)) continue; /* avxvnni on AVX-512 CPUs */
                cr_assert(bm_kernels_set_level(lvl));
                run_tiled(&f, 1, 1, n, pos, seq_of, q, want, NULL);
                for (size_t i = 0; i < n * qd; i++)
                    cr_assert_leq(fabs(want[i] - ref[i]), 4e-6 + 1e-5 * fabs(ref[i]),
                                  "hd %d G %d level %s: row %zu (pos %d) out[%zu] = %.9g, "
                                  "want %.9g", f.hd, f.G, bm_kernels_level_name(lvl), i / qd,
                                  pos[i / qd], i % qd, want[i], ref[i]);
                for (int nt = 1; nt <= 3; nt++)
                    for (int tile = 0; tile <= 3; tile += 3) {
                        memset(out, 0xff, n * qd * sizeof(float));
                        run_tiled(&f, nt, tile, n, pos, seq_of, q, out, NULL);
                        for (int32_t i = 0; i < n; i++)
                            cr_assert(!memcmp(out + i * qd, want + i * qd, qd * sizeof(float)),
                                      "level %s hd %d G %d tile %d threads %d: row %d (seq %d "
                                      "pos %d) differs from untiled", bm_kernels_level_name(lvl),
                                      f.hd, f.G, tile, nt, i, seq_of[i], pos[i]);
                    }
                static const int32_t alone[] = {0, 6, 31, 32, 62, 87};
                for (int k = 0; k < 6; k++) {
                    int32_t i = alone[k];
                    cr_assert_lt(i, n);
                    run(&f, 2, 1, pos + i, seq_of + i, q + i * qd, out, NULL);
                    cr_assert(!memcmp(out, want + i * qd, qd * sizeof(float)),
                              "level %s hd %d G %d: row %d (pos %d) decoded alone differs",
                              bm_kernels_level_name(lvl), f.hd, f.G, i, pos[i]);
                }
            }
            bm_kernels_set_level(max_lvl);
            free(q), free(want), free(out), free(ref);
            fixture_fini(&f);
        }
}

/* A context past 4096 (17 chunks): a prefill run across position 4096, against the double
 * reference and bitwise against the same rows untiled and decoded alone, at every level. */
Test(attention, long_context_tiled) {
    fixture f;
    fixture_init(&f, 64, 2, 4200);
    const size_t qd = (size_t)f.n_head * f.hd;
    int32_t n = 20, pos[20];
    int seq_of[20];
    for (int32_t i = 0; i < n; i++) pos[i] = 4090 + i, seq_of[i] = 1;
    float *q = malloc(n * qd * sizeof(float)), *out = malloc(n * qd * sizeof(float));
    float *flat = malloc(n * qd * sizeof(float));
    double *ref = malloc(qd * sizeof(double));
    fill_q(q, n * qd, 6.0f);
    int max_lvl = bm_kernels_max_level();
    for (int lvl = 0; lvl <= max_lvl; lvl++) {
        if (!bm_kernels_at(lvl)) continue; /* avxvnni on AVX-512 CPUs */
        cr_assert(bm_kernels_set_level(lvl));
        run_tiled(&f, 2, 0, n, pos, seq_of, q, out, NULL);
        run_tiled(&f, 3, 1, n, pos, seq_of, q, flat, NULL);
        cr_assert(!memcmp(out, flat, n * qd * sizeof(float)), "level %s: tiled != untiled",
                  bm_kernels_level_name(lvl));
        for (int32_t i = 0; i < n; i += 19) {
            ref_row(&f, 1, pos[i], q + i * qd, ref);
            for (size_t e = 0; e < qd; e++)
                cr_assert_leq(fabs(out[i * qd + e] - ref[e]), 4e-6 + 1e-5 * fabs(ref[e]),
                              "level %s pos %d: out[%zu] = %.9g, want %.9g",
                              bm_kernels_level_name(lvl), pos[i], e, out[i * qd + e], ref[e]);
            run(&f, 2, 1, pos + i, seq_of + i, q + i * qd, flat, NULL);
            cr_assert(!memcmp(flat, out + i * qd, qd * sizeof(float)),
                      "level %s pos %d: decode alone differs", bm_kernels_level_name(lvl),
                      pos[i]);
        }
    }
    bm_kernels_set_level(max_lvl);
    free(q), free(out), free(flat), free(ref);
    fixture_fini(&f);
}
