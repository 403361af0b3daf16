/* AArch64 kernel checks, cross-compiled and run under qemu-aarch64 by tests/ref/test_neon.sh
 * (Criterion is not available for arm64 here, so this is plain C printing one line per check).
 * For the neon and dotprod levels: the table (signed codes, which kernel per type), the
 * activation quantizer bitwise against bm_act_q8_ref, bm_matmul for F32/F16 and every
 * quantized type (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q2_K..Q6_K) on many shapes against double sums
 * and bm_mm_q8_ref with the bounds of tests/unit/test_kernels.c (K types: 1, 3 and 17
 * super-blocks, 1..33 rows, 1..17 tokens, misaligned weights and activations), an extreme Q8_0
 * block (codes -128 vs -127: the int16 pair sums of the smull path at their limit) exact, batch
 * invariance bitwise, dot/axpy/rmsnorm/swiglu bounds, and the attention chunk kernel against a
 * double softmax attention with bitwise row and slot invariance. Options: --expect-max NAME
 * (what run-time detection must find), --expect-current NAME (the level bm_matmul uses, after
 * BM_KERNELS), --levels-only (detection checks only). Exit status: number of failed checks. */
#include "../kern_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_fail, n_pass;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        const int ok_ = (cond) != 0;                                                               \
        printf("%s ", ok_ ? "ok  " : "FAIL");                                                      \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (ok_) n_pass++;                                                                         \
        else n_fail++;                                                                             \
    } while (0)


/* The level's quantizer vs bm_act_q8_ref, bitwise, both code formats; x holds random values,
 * a zero block, exact ties (x * (1/d) = k + 1/2 with d = 1) and negative zeros. */
static void check_act(const bm_kernels *k) {
    const int64_t n_in = 256, n_tok = 5;
    float *x = xmalloc(sizeof(float) * (size_t)(n_in * n_tok));
    for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = 3.0f * frand();
    for (int j = 0; j < 32; j++) x[32 + j] = 0.0f;                        /* zero block */
    for (int j = 0; j < 32; j++) x[64 + j] = j == 0 ? 127.0f : (float)(j % 9) - 4.5f; /* ties */
    x[96] = -0.0f;
    x[300] = 1e-30f;
    for (int u8 = 0; u8 < 2; u8++) {
        actq ref = new_act(n_in, n_tok), got = new_act(n_in, n_tok);
        bm_act_q8_ref(x, n_in, 0, n_tok, &ref.a, u8);
        k->act_q8(x, n_in, 0, n_tok, &got.a, u8);
        const size_t nd = (size_t)(n_tok * n_in / BM_QK);
        CHECK(!memcmp(ref.q, got.q, (size_t)(n_tok * n_in)) &&
                  !memcmp(ref.d, got.d, sizeof(float) * nd) &&
                  !memcmp(ref.s, got.s, sizeof(int32_t) * nd) &&
                  !memcmp(ref.m, got.m, sizeof(float) * nd),
              "%-7s act_q8 (u8=%d) bitwise equal to bm_act_q8_ref", k->name, u8);
        free_act(&ref);
        free_act(&got);
    }
    free(x);
}

/* bm_matmul at the current level vs the exact product (float types) or vs bm_mm_q8_ref on the
 * same quantized activations and the exact product with the quantization step (Q8 types).
 * Returns the worst error relative to its bound (> 1 fails). */
static double check_case(bm_pool *pool, const bm_kernels *k, bm_dtype type, int64_t n_in,
                         int64_t n_tok, int64_t n_out) {
    const bool flt = type == BM_F32 || type == BM_F16;
    const int mis = flt ? 2 + (int)(n_in & 1) : 1;
    wmat w = make_w(type, n_in, n_out, mis);
    float *xb = xmalloc(sizeof(float) * (size_t)(n_tok * n_in + 1));
    float *yb = xmalloc(sizeof(float) * (size_t)(n_tok * n_out + 1));
    float *x = xb + 1, *y = yb + 1;
    for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = frand();
    run_mm(pool, &w.t, x, n_tok, y);
    const bool q8 = k->mm[type] && k->act[type] == BM_ACT_Q8;
    actq aq;
    float *yq = NULL;
    if (q8) {
        aq = new_act(n_in, n_tok);
        bm_act_q8_ref(x, n_in, 0, n_tok, &aq.a, k->act_u8);
        yq = xmalloc(sizeof(float) * (size_t)(n_tok * n_out));
        aq.a.w = w.t.data;
        bm_row_bytes(type, n_in, &aq.a.row_bytes);
        aq.a.y = yq;
        aq.a.ldy = n_out;
        bm_mm_q8_ref(type, &aq.a, k->act_u8, 0, n_out);
    }
    double worst = 0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_out; r++) {
            const float *wr = w.deq + r * n_in, *xt = x + t * n_in;
            double exact = 0, mag = 0, qstep = 0;
            for (int64_t i = 0; i < n_in; i++) {
                exact += (double)wr[i] * xt[i];
                mag += fabs((double)wr[i] * xt[i]);
            }
            const double got = y[t * n_out + r];
            double e;
            if (!q8) {
                /* n products summed in float in any order: (n + 8) u sum|w x| (Higham 3.1). */
                e = fabs(got - exact) / (2.0 * ((double)n_in + 8) * U * mag + 1e-30);
            } else {
                const int64_t nb = n_in / BM_QK;
                double qmag = 0;
                for (int64_t b = 0; b < nb; b++) {
                    const float dx = aq.d[t * nb + b];
                    for (int j = 0; j < BM_QK; j++) {
                        const uint8_t c = aq.q[t * n_in + b * BM_QK + j];
                        const int v = k->act_u8 ? (int)c - 128 : (int8_t)c;
                        qmag += fabs((double)wr[b * BM_QK + j] * dx * v);
                        qstep += fabs((double)wr[b * BM_QK + j]) * dx * 0.5;
                    }
                }
                const double bq = 2.0 * ((double)nb + 8) * 2 * U * qmag + 1e-30;
                e = fabs(got - yq[t * n_out + r]) / bq;
                /* vs the exact product: each activation moves by at most d_x / 2. */
                const double ex = fabs(got - exact) / (qstep + bq + 1e-30);
                if (ex > 1.0 && ex > e) e = ex;
            }
            if (!(e <= 1.0) && worst <= 1.0)
                printf("     %s %s n_in=%ld n_tok=%ld t=%ld r=%ld got %.9g exact %.9g%s%.9g\n",
                       k->name, bm_dtype_name(type), (long)n_in, (long)n_tok, (long)t, (long)r,
                       got, exact, q8 ? " qref " : "", q8 ? yq[t * n_out + r] : 0.0);
            if (!(e <= worst)) worst = e; /* NaN sticks */
        }
    if (q8) {
        free(yq);
        free_act(&aq);
    }
    free(xb);
    free(yb);
    free_w(&w);
    return worst;
}

static const bm_dtype TYPES[] = {BM_F32,  BM_F16,  BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_1, BM_Q5_1,
                                 BM_Q2_K, BM_Q3_K, BM_Q4_K, BM_Q5_K, BM_Q6_K};
#define N_TYPES (int)(sizeof TYPES / sizeof TYPES[0])
static bool is_k(bm_dtype t) { return bm_type_traits_get(t)->block_elems == BM_QK_K; }

static void check_matmul(bm_pool *pool, const bm_kernels *k) {
    static const int64_t toks[] = {1, 2, 3, 7, 16};
    static const int64_t n_float[] = {1, 7, 31, 33, 4097};
    static const int64_t n_block[] = {32, 64, 256, 4128};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const bm_dtype type = TYPES[ti];
        const bool flt = type == BM_F32 || type == BM_F16;
        double worst = 0;
        int cases = 0;
        if (is_k(type)) {
            /* super-block counts 1, 3 and 17 (4096 + 256); tokens 1, 2, 5 (one full 4-token
             * tile and a tail), 17; rows 1, 7, 17, 33 (4-row tiles and every tail) */
            static const int64_t nk[] = {256, 768, 4352}, tk[] = {1, 2, 5, 17};
            static const int64_t rk[] = {1, 7, 17, 33};
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++) {
                    if (nk[i] > 1000 && tk[j] > 5) continue; /* keep qemu time short */
                    const int64_t n_out = nk[i] > 1000 ? rk[j % 2 + 1] : rk[(i + j) % 4];
                    const double e = check_case(pool, k, type, nk[i], tk[j], n_out);
                    if (!(e <= worst)) worst = e;
                    cases++;
                }
            if (worst <= 1.0) { /* the remaining row counts once each */
                for (int j = 0; j < 4; j++) {
                    const double e = check_case(pool, k, type, 512, 3, rk[j]);
                    if (!(e <= worst)) worst = e;
                    cases++;
                }
            }
        } else {
            const int64_t *ns = flt ? n_float : n_block;
            const int nn = flt ? 5 : 4;
            for (int i = 0; i < nn; i++)
                for (int j = 0; j < 5; j++) {
                    if (ns[i] > 1000 && toks[j] > 3) continue; /* keep qemu time short */
                    const double e =
                        check_case(pool, k, type, ns[i], toks[j], ns[i] > 1000 ? 5 : 13);
                    if (!(e <= worst)) worst = e;
                    cases++;
                }
        }
        CHECK(k->mm[type] != NULL && worst <= 1.0,
              "%-7s %-5s bm_matmul vs references, %d shapes: worst error / bound = %.3g", k->name,
              bm_dtype_name(type), cases, worst);
    }
}

/* Q8_0 rows with every code -128 (a crafted file can hold it) against activations of -127
 * and +127: every smull pair sum is 2 * 16256 = 32512, the int16 limit the neon path relies
 * on. Scales are powers of two, so the result is exact and must equal bm_mm_q8_ref. */
static void check_q8_extreme(bm_pool *pool, const bm_kernels *k) {
    const int64_t n_in = 128, n_out = 3, n_tok = 5;
    bm_block_q8_0 *w = xmalloc(sizeof(bm_block_q8_0) * (size_t)(n_in / BM_QK * n_out));
    for (int64_t b = 0; b < n_in / BM_QK * n_out; b++) {
        w[b].d = bm_f32_to_f16(b % 2 ? 0.5f : 0.25f);
        for (int j = 0; j < BM_QK; j++) w[b].qs[j] = -128;
    }
    bm_tensor t;
    memset(&t, 0, sizeof t);
    t.type = BM_Q8_0;
    t.n_dims = 2;
    t.ne[0] = n_in;
    t.ne[1] = n_out;
    t.data = w;
    t.n_bytes = sizeof(bm_block_q8_0) * (size_t)(n_in / BM_QK * n_out);
    float *x = xmalloc(sizeof(float) * (size_t)(n_in * n_tok));
    for (int64_t i = 0; i < n_in * n_tok; i++) /* codes +-127; scales 1 or 2 by block */
        x[i] = ((i / n_in) % 2 ? 127.0f : -127.0f) * (float)(1 + (i / BM_QK) % 2);
    float *y = xmalloc(sizeof(float) * (size_t)(n_out * n_tok));
    float *yr = xmalloc(sizeof(float) * (size_t)(n_out * n_tok));
    run_mm(pool, &t, x, n_tok, y);
    actq aq = new_act(n_in, n_tok);
    bm_act_q8_ref(x, n_in, 0, n_tok, &aq.a, k->act_u8);
    aq.a.w = (const uint8_t *)w;
    aq.a.row_bytes = sizeof(bm_block_q8_0) * (size_t)(n_in / BM_QK);
    aq.a.y = yr;
    aq.a.ldy = n_out;
    bm_mm_q8_ref(BM_Q8_0, &aq.a, k->act_u8, 0, n_out);
    CHECK(!memcmp(y, yr, sizeof(float) * (size_t)(n_out * n_tok)) && y[0] != 0.0f,
          "%-7s q8_0  codes -128 x activations -127/127: exact (y[0] = %g, ref %g)", k->name,
          y[0], yr[0]);
    free_act(&aq);
    free(w);
    free(x);
    free(y);
    free(yr);
}

/* Row t of an n_tok = 7 call equals the n_tok = 1 call of that token bitwise; and the
 * single-threaded call (other row chunks) gives the same bits. */
static void check_batch_invariance(bm_pool *pool, const bm_kernels *k) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int64_t n_in = 512, n_out = 67, n_tok = 7;
        wmat w = make_w(TYPES[ti], n_in, n_out, 0);
        float *x = xmalloc(sizeof(float) * (size_t)(n_tok * n_in));
        float *y7 = xmalloc(sizeof(float) * (size_t)(n_tok * n_out));
        float *y1 = xmalloc(sizeof(float) * (size_t)n_out);
        float *ys = xmalloc(sizeof(float) * (size_t)(n_tok * n_out));
        for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = frand();
        run_mm(pool, &w.t, x, n_tok, y7);
        bool same = true;
        for (int64_t t = 0; t < n_tok; t++) {
            run_mm(pool, &w.t, x + t * n_in, 1, y1);
            same = same && !memcmp(y1, y7 + t * n_out, sizeof(float) * (size_t)n_out);
        }
        run_mm(NULL, &w.t, x, n_tok, ys);
        same = same && !memcmp(ys, y7, sizeof(float) * (size_t)(n_tok * n_out));
        CHECK(same, "%-7s %-5s batch invariant (n_tok 7 vs 1, 2 threads vs 1): bitwise", k->name,
              bm_dtype_name(TYPES[ti]));
        free(x);
        free(y7);
        free(y1);
        free(ys);
        free_w(&w);
    }
}

/* dot and axpy against double sums (float summation bounds of test_kernels.c), rmsnorm
 * against the double formula (relative 1e-6), odd lengths, misaligned pointers, in place. */
static void check_helpers(const bm_kernels *k) {
    char msg[160];
    const char *fail = check_dot_axpy(k, msg, sizeof msg);
    CHECK(!fail, "%-7s dot_f32 within (n + 8) u sum|a b| of the double sum, axpy_f32 within 4 u, "
          "nothing written outside [0, n)%s%s", k->name, fail ? ": " : "", fail ? fail : "");

    /* SwiGLU against the double formula, relative 2e-6 (test_kernels.c's bound), gates from
     * -120 to 108 (saturation both ways) then +-9, odd length, in place (y == g). */
    {
        const int64_t n = 1003;
        float *g = xmalloc(sizeof(float) * (size_t)n), *u = xmalloc(sizeof(float) * (size_t)n);
        float *yy = xmalloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            g[i] = i < 20 ? (float)(i - 10) * 12.0f : 9.0f * frand();
            u[i] = frand();
            yy[i] = g[i];
        }
        g[20] = 0.0f;
        yy[20] = 0.0f;
        k->swiglu(yy, u, yy, n);
        double sw = 0;
        for (int64_t i = 0; i < n; i++) {
            const double v = g[i], want = v / (1.0 + exp(-v)) * u[i];
            const double e = fabs(yy[i] - want) / (2e-6 * fabs(want) + 1e-30);
            if (!(e <= sw)) sw = e;
        }
        CHECK(k->swiglu == bm_swiglu_neon && sw <= 1.0,
              "%-7s swiglu vs double formula: worst error / (2e-6 |y|) = %.3g", k->name, sw);
        free(g);
        free(u);
        free(yy);
    }

    static const int64_t rn[] = {1, 7, 31, 33, 896, 4097};
    float *xb = xmalloc(sizeof(float) * 4098), *w = xmalloc(sizeof(float) * 4097);
    float *out = xmalloc(sizeof(float) * 4097), *x = xb + 1;
    double *want = xmalloc(sizeof(double) * 4097);
    double worst = 0;
    for (size_t c = 0; c < sizeof rn / sizeof rn[0]; c++)
        for (int mode = 0; mode < 3; mode++) { /* weights, none, in place */
            const int64_t n = rn[c];
            for (int64_t i = 0; i < n; i++) {
                x[i] = (i % 13 == 0 ? 30.0f : 1.0f) * frand();
                w[i] = 1.0f + frand();
            }
            double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
            const double s = 1.0 / sqrt(ss / (double)n + 1e-6);
            for (int64_t i = 0; i < n; i++) want[i] = x[i] * s * (mode == 1 ? 1.0 : w[i]);
            float *o = mode == 2 ? x : out;
            k->rmsnorm(x, mode == 1 ? NULL : w, o, n, 1e-6f);
            for (int64_t i = 0; i < n; i++) {
                const double e = fabs(o[i] - want[i]) / (1e-6 * fabs(want[i]) + 1e-30);
                if (!(e <= worst)) worst = e;
            }
        }
    CHECK(worst <= 1.0, "%-7s rmsnorm vs double formula: worst error / (1e-6 |y|) = %.3g",
          k->name, worst);
    free(xb);
    free(w);
    free(out);
    free(want);
}

/* The attention chunk kernel (kernels.h contract) on K/V blocks of 16 rows out of order, rows
 * strided as in a cache: every row's m against the double maximum score (float dot bound) and
 * o / l against the double softmax(q K^T scale) V (4e-6 + 1e-5 |ref|, test_attention.c's bound),
 * token counts 1, 2, 5, 16 with causal limits on the diagonal at the chunk's start, at its end,
 * and random; every token's rows bitwise the same computed alone (n_tok 1), and every head's
 * row the same computed as the only head of a G = 1 call (its slot). hd 40: the reference. */
static void check_att(const bm_kernels *k) {
    static const int cfg[][2] = {{64, 1}, {64, 7}, {128, 2}, {40, 3}}; /* hd, G */
    static const int nts[] = {1, 2, 5, 16};
    enum { BLK = 16, NB = BM_ATT_CHUNK / BLK, T = 16, GM = 7 };
    double worst = 0, worst_m = 0;
    bool same = true;
    int calls = 0;
    for (int ci = 0; ci < 4; ci++) {
        const int hd = cfg[ci][0], G = cfg[ci][1], ld = 3 * hd;
        const int64_t ldq = (int64_t)G * hd + 16;
        float *kv = xmalloc(2 * (size_t)NB * BLK * ld * sizeof(float));
        float *qb = xmalloc(((size_t)T * ldq + 1) * sizeof(float)), *q = qb + 1;
        float *sc = xmalloc((size_t)T * G * BM_ATT_CHUNK * sizeof(float));
        float *st[2][3]; /* [tile / alone][m, l, o] */
        for (int w = 0; w < 2; w++) {
            st[w][0] = xmalloc((size_t)T * G * sizeof(float));
            st[w][1] = xmalloc((size_t)T * G * sizeof(float));
            st[w][2] = xmalloc((size_t)T * G * hd * sizeof(float));
        }
        for (size_t i = 0; i < 2 * (size_t)NB * BLK * ld; i++) kv[i] = 2.0f * frand();
        for (size_t i = 0; i < (size_t)T * ldq; i++) q[i] = 3.0f * frand();
        const float *kb[NB], *vb[NB];
        for (int b = 0; b < NB; b++) {
            kb[b] = kv + (size_t)((b * 5) % NB) * BLK * ld;
            vb[b] = kv + ((size_t)NB + (size_t)((b * 3) % NB)) * BLK * ld + hd; /* other cols */
        }
        for (int c = 0; c < 4; c++)
            for (int mode = 0; mode < 3; mode++) {
                const int nt = nts[c];
                int nk[T];
                for (int t = 0; t < nt; t++)
                    nk[t] = mode == 0   ? t + 1
                            : mode == 1 ? BM_ATT_CHUNK - nt + 1 + t
                                        : 1 + (int)((frand() + 1) * 127.99f);
                const bm_att_chunk ca = {.q = q, .ldq = ldq, .kb = kb, .vb = vb, .ld = ld,
                                         .blk = BLK, .n_tok = nt, .G = G, .hd = hd, .n_key = nk,
                                         .scale = 0.125f, .s = sc, .m = st[0][0],
                                         .l = st[0][1], .o = st[0][2]};
                k->att_chunk(&ca);
                calls++;
                for (int t = 0; t < nt; t++)
                    for (int g = 0; g < G; g++) {
                        const int r = t * G + g;
                        const float *qr = q + t * ldq + g * hd;
                        double mx = -INFINITY, mag = 0, w[BM_ATT_CHUNK], sum = 0;
                        for (int j = 0; j < nk[t]; j++) {
                            const float *kt = kb[j / BLK] + j % BLK; /* K transposed */
                            double d = 0, a = 0;
                            for (int e = 0; e < hd; e++) {
                                d += (double)qr[e] * kt[(size_t)e * BLK];
                                a += fabs((double)qr[e] * kt[(size_t)e * BLK]);
                            }
                            w[j] = d * 0.125;
                            if (w[j] > mx) mx = w[j];
                            if (a > mag) mag = a;
                        }
                        const double bm = 2.0 * (hd + 8) * U * mag * 0.125 + 2 * U * fabs(mx);
                        const double em = fabs(st[0][0][r] - mx) / bm;
                        if (!(em <= worst_m)) worst_m = em;
                        for (int j = 0; j < nk[t]; j++) sum += (w[j] = exp(w[j] - mx));
                        for (int e = 0; e < hd; e++) {
                            double o = 0;
                            for (int j = 0; j < nk[t]; j++)
                                o += w[j] * vb[j / BLK][(size_t)(j % BLK) * ld + e];
                            o /= sum;
                            const double got = (double)st[0][2][(size_t)r * hd + e] / st[0][1][r];
                            const double er = fabs(got - o) / (4e-6 + 1e-5 * fabs(o));
                            if (!(er <= worst)) worst = er;
                        }
                    }
                for (int t = 0; t < nt; t++) {
                    bm_att_chunk one = ca;
                    one.q = q + t * ldq, one.n_tok = 1, one.n_key = nk + t;
                    one.m = st[1][0], one.l = st[1][1], one.o = st[1][2];
                    k->att_chunk(&one);
                    const size_t r = (size_t)t * G;
                    same = same && !memcmp(st[1][0], st[0][0] + r, G * sizeof(float)) &&
                           !memcmp(st[1][1], st[0][1] + r, G * sizeof(float)) &&
                           !memcmp(st[1][2], st[0][2] + r * hd, (size_t)G * hd * sizeof(float));
                    for (int g = 0; g < G && G > 1; g++) { /* head g as the only one */
                        bm_att_chunk h1 = one;
                        h1.q = q + t * ldq + g * hd, h1.G = 1;
                        k->att_chunk(&h1);
                        same = same && st[1][0][0] == st[0][0][r + g] &&
                               st[1][1][0] == st[0][1][r + g] &&
                               !memcmp(st[1][2], st[0][2] + (r + g) * hd, hd * sizeof(float));
                    }
                }
            }
        for (int w = 0; w < 2; w++) free(st[w][0]), free(st[w][1]), free(st[w][2]);
        free(kv), free(qb), free(sc);
    }
    CHECK(worst <= 1.0 && worst_m <= 1.0,
          "%-7s att_chunk vs double softmax attention, %d calls: worst o/l error / bound = %.3g, "
          "m error / bound = %.3g", k->name, calls, worst, worst_m);
    CHECK(same, "%-7s att_chunk: each token alone, each head alone: bitwise its rows in the tile",
          k->name);
    CHECK(k->att_chunk == bm_att_chunk_neon, "%-7s table: att_chunk is bm_att_chunk_neon",
          k->name);
}

static void check_table(const bm_kernels *k, int lvl) {
    const bool dp = lvl == BM_LVL_DOTPROD;
    CHECK(k->level == lvl && !strcmp(k->name, bm_kernels_level_name(lvl)) && !k->act_u8 &&
              k->act_q8 == bm_act_q8_neon && k->mm[BM_F32] == bm_mm_f32_neon &&
              k->mm[BM_F16] == bm_mm_f16_neon && k->act[BM_F32] == BM_ACT_F32 &&
              k->mm[BM_Q8_0] == (dp ? bm_mm_q8_0_dotprod : bm_mm_q8_0_neon) &&
              k->mm[BM_Q4_0] == (dp ? bm_mm_q4_0_dotprod : bm_mm_q4_0_neon) &&
              k->mm[BM_Q5_0] == (dp ? bm_mm_q5_0_dotprod : bm_mm_q5_0_neon) &&
              k->act[BM_Q8_0] == BM_ACT_Q8 && k->act[BM_Q4_0] == BM_ACT_Q8 &&
              k->act[BM_Q5_0] == BM_ACT_Q8,
          "%-7s table: signed codes, %s int8 kernels, neon float kernels", k->name,
          dp ? "sdot" : "smull");
#define PK(t) (dp ? bm_mm_##t##_dotprod : bm_mm_##t##_neon)
    CHECK(k->mm[BM_Q4_1] == PK(q4_1) && k->mm[BM_Q5_1] == PK(q5_1) && k->mm[BM_Q2_K] == PK(q2_K) &&
              k->mm[BM_Q3_K] == PK(q3_K) && k->mm[BM_Q4_K] == PK(q4_K) &&
              k->mm[BM_Q5_K] == PK(q5_K) && k->mm[BM_Q6_K] == PK(q6_K),
          "%-7s table: Q4_1/Q5_1/Q2_K..Q6_K %s kernels", k->name, dp ? "sdot" : "smull");
#undef PK
    bool acts = true;
    for (int ti = 2; ti < N_TYPES; ti++) acts = acts && k->act[TYPES[ti]] == BM_ACT_Q8;
    CHECK(acts, "%-7s table: every quantized type consumes BM_ACT_Q8", k->name);
}

int main(int argc, char **argv) {
    const char *expect_max = NULL, *expect_cur = NULL;
    bool levels_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-max") && i + 1 < argc) expect_max = argv[++i];
        else if (!strcmp(argv[i], "--expect-current") && i + 1 < argc) expect_cur = argv[++i];
        else if (!strcmp(argv[i], "--levels-only")) levels_only = true;
        else {
            fprintf(stderr, "usage: %s [--expect-max NAME] [--expect-current NAME] "
                            "[--levels-only]\n", argv[0]);
            return 2;
        }
    }
    const int max = bm_kernels_max_level();
    printf("info max level %s, in use %s\n", bm_kernels_level_name(max), bm_kernels_name());
    if (expect_max)
        CHECK(!strcmp(bm_kernels_level_name(max), expect_max), "detection: max level %s "
              "(expected %s)", bm_kernels_level_name(max), expect_max);
    if (expect_cur)
        CHECK(!strcmp(bm_kernels_name(), expect_cur), "BM_KERNELS: level in use %s (expected %s)",
              bm_kernels_name(), expect_cur);
    CHECK(bm_kernels_at(BM_LVL_NEON) != NULL, "neon level available (baseline AArch64)");
    bool x86_none = true;
    for (int l = BM_LVL_AVX2; l <= BM_LVL_AMX; l++) x86_none = x86_none && !bm_kernels_at(l);
    CHECK(x86_none && !bm_kernels_set_level(BM_LVL_AVX2) && !bm_kernels_set_level(BM_LVL_COUNT),
          "x86 levels unavailable on AArch64");
    if (!levels_only) {
        bm_pool *pool = bm_pool_new(2, NULL);
        for (int lvl = BM_LVL_NEON; lvl <= BM_LVL_DOTPROD; lvl++) {
            const bm_kernels *k = bm_kernels_at(lvl);
            if (!k) {
                printf("skip %s: not available on this CPU\n", bm_kernels_level_name(lvl));
                continue;
            }
            CHECK(bm_kernels_set_level(lvl) && bm_kernels_get() == k, "%-7s selected",
                  k->name);
            check_table(k, lvl);
            check_act(k);
            check_matmul(pool, k);
            check_q8_extreme(pool, k);
            check_batch_invariance(pool, k);
            check_helpers(k);
            check_att(k);
        }
        bm_pool_free(pool);
    }
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail > 100 ? 100 : n_fail;
}
