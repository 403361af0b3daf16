/* Unit tests of the matmul kernels: for every ISA level this CPU supports and every weight type
 * with a fast kernel, bm_matmul against the scalar references on many shapes with misaligned
 * pointers (bounds derived from float summation error and from the activation quantization step),
 * the on-the-fly activation quantizer bitwise against its scalar reference, batch invariance
 * (row t of an n_tok=7 call equals the n_tok=1 call bitwise), and a whole forward pass at the
 * scalar level vs the fastest level on tiny random models. */
#include "baimo/model.h"
#include "../kern_fixture.h"

#include <cpuid.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const bm_dtype FAST_TYPES[] = {BM_F32,  BM_F16,  BM_BF16, BM_Q8_0, BM_Q4_0,
                                      BM_Q5_0, BM_Q4_1, BM_Q5_1, BM_Q2_K, BM_Q3_K,
                                      BM_Q4_K, BM_Q5_K, BM_Q6_K};
#define N_FAST (int)(sizeof FAST_TYPES / sizeof FAST_TYPES[0])
static const int64_t TOKS[] = {1, 2, 3, 7, 16, 33};
/* Float types take the STYLE sizes as is; block types the nearest valid multiples of 32
 * ({1,7,31,32} -> 32, 33 -> 64, 4097 -> 4128) plus one K-size row (256). */
static const int64_t N_FLOAT[] = {1, 7, 31, 32, 33, 4097};
static const int64_t N_BLOCK[] = {32, 64, 256, 4128};
/* K formats: multiples of 256 (one, two and 17 super-blocks). */
static const int64_t N_KBLOCK[] = {256, 512, 4352};



static bool block_type(bm_dtype t) { return bm_type_traits_get(t)->quantized; }


/* Quantized activations of x exactly as bm_matmul makes them (the reference quantizer). */
static actq quant_act(const float *x, int64_t n_in, int64_t n_tok, bool u8) {
    actq r = new_act(n_in, n_tok);
    bm_act_q8_ref(x, n_in, 0, n_tok, &r.a, u8);
    return r;
}


/* Activation rounding of the vdpbf16ps kernel: f32 to bf16, round to nearest even (finite x). */
static float bf16_rne(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    b = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&x, &b, 4);
    return x;
}

/* Kernel fn called directly on all rows (x, y misaligned by one float as in run_mm). */
static void run_direct(bm_mm_fn fn, const bm_tensor *w, const float *x, int64_t n_tok, float *y,
                       int64_t r0, int64_t r1) {
    bm_mm_args a;
    memset(&a, 0, sizeof a);
    a.w = w->data;
    cr_assert(bm_row_bytes(w->type, w->ne[0], &a.row_bytes));
    a.n_in = w->ne[0];
    a.n_tok = n_tok;
    a.x = x;
    a.y = y;
    a.ldy = w->ne[1];
    fn(&a, r0, r1);
}

/* Checks y (from bm_matmul at level lvl on the tensor as is or packed first, or from the kernel
 * direct when not NULL) for one type/shape; returns the worst error relative to its bound. */
static double check_case_fn(bm_pool *pool, int lvl, bm_dtype type, int64_t n_in, int64_t n_tok,
                            int64_t n_out, bool pack, bm_mm_fn direct) {
    const bm_kernels *k = bm_kernels_at(lvl);
    const bm_mm_fn fn = direct ? direct : k->mm[type];
    const bool bdot = fn == bm_mm_bf16_avx512bf16;
    const int mis = (type == BM_F32 || type == BM_F16 || type == BM_BF16) ? 2 + (int)(n_in & 1)
                                                                            : 1;
    wmat w = make_w(type, n_in, n_out, mis);
    float *xb = malloc(sizeof(float) * (size_t)(n_tok * n_in + 1));
    float *yb = malloc(sizeof(float) * (size_t)(n_tok * n_out + 1));
    float *x = xb + 1, *y = yb + 1;
    for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = frand();
    cr_assert(bm_kernels_set_level(lvl));
    void *pbuf = NULL;
    if (pack) {
        size_t pbytes;
        bm_err err = {0};
        cr_assert(bm_tensor_pack(&w.t, pool, NULL, NULL, &pbuf, &pbytes, &err) == BM_OK, "%s",
                  err.msg);
    }
    if (direct)
        run_direct(direct, &w.t, x, n_tok, y, 0, n_out);
    else
        run_mm(pool, &w.t, x, n_tok, y);

    double worst = 0;
    const bool q8 = !direct && ((k->mm[type] && k->act[type] == BM_ACT_Q8) || pack);
    const bool u8 = pack ? false : k->act_u8;
    actq aq;
    float *yq = NULL;
    if (q8) {
        /* The level's own quantizer must equal the scalar reference bitwise. */
        aq = quant_act(x, n_in, n_tok, u8);
        actq mine = quant_act(x, n_in, n_tok, u8);
        memset(mine.q, 0xAB, (size_t)(n_tok * n_in));
        k->act_q8(x, n_in, 0, n_tok, &mine.a, u8);
        cr_assert(!memcmp(mine.q, aq.q, (size_t)(n_tok * n_in)), "act codes differ (%s)",
                  k->name);
        cr_assert(!memcmp(mine.d, aq.d, sizeof(float) * (size_t)(n_tok * n_in / BM_QK)));
        cr_assert(!memcmp(mine.s, aq.s, sizeof(int32_t) * (size_t)(n_tok * n_in / BM_QK)));
        cr_assert(!memcmp(mine.m, aq.m, sizeof(float) * (size_t)(n_tok * n_in / BM_QK)));
        free_act(&mine);
        yq = malloc(sizeof(float) * (size_t)(n_tok * n_out));
        aq.a.w = w.t.data;
        cr_assert(bm_row_bytes(type, n_in, &aq.a.row_bytes));
        aq.a.y = yq;
        aq.a.ldy = n_out;
        bm_mm_q8_ref(type, &aq.a, u8, 0, n_out);
    }
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_out; r++) {
            const float *wr = w.deq + r * n_in, *xt = x + t * n_in;
            double exact = 0, mag = 0, qstep = 0;
            for (int64_t i = 0; i < n_in; i++) {
                exact += (double)wr[i] * xt[i];
                mag += fabs((double)wr[i] * xt[i]);
            }
            const double got = y[t * n_out + r];
            if (bdot) {
                /* (1) vs the activations rounded to bf16, in double: every product of two
                 * bf16 is exact in float, so only the float additions err (same bound). */
                double exb = 0, magb = 0;
                for (int64_t i = 0; i < n_in; i++) {
                    const double p = (double)wr[i] * bf16_rne(xt[i]);
                    exb += p;
                    magb += fabs(p);
                }
                const double bound = 2.0 * ((double)n_in + 8) * U * magb + 1e-30;
                const double e = fabs(got - exb) / bound;
                cr_assert(e <= 1.0, "bf16 dot n_in=%ld n_tok=%ld t=%ld r=%ld got %.9g bf16-x "
                          "exact %.9g", (long)n_in, (long)n_tok, (long)t, (long)r, got, exb);
                if (e > worst) worst = e;
                /* (2) vs the exact f32 product: rounding x to bf16 moves each activation by
                 * at most 2^-8 |x| (8 significant bits). */
                const double bx = mag / 256.0 + bound;
                cr_assert(fabs(got - exact) <= bx, "bf16 dot: |%.9g - %.9g| > bf16 bound %.3g",
                          got, exact, bx);
            } else if (!q8) {
                /* Both the kernel and the f32 reference sum n products in float (any order):
                 * |error| <= (n + 8) u sum|w x| each (Higham, Accuracy and Stability, 3.1). */
                const double bound = 2.0 * ((double)n_in + 8) * U * mag + 1e-30;
                const double e = fabs(got - exact) / bound;
                cr_assert(e <= 1.0, "%s %s n_in=%ld n_tok=%ld t=%ld r=%ld got %.9g exact %.9g",
                          k->name, bm_dtype_name(type), (long)n_in, (long)n_tok, (long)t,
                          (long)r, got, exact);
                if (e > worst) worst = e;
            } else {
                /* (1) vs the same quantized activations in double: the kernel's float
                 * error on nb block terms: |error| <= (nb + 8) 2u sum_b |d_w d_x isum_b|;
                 * bounded above by the block magnitudes, estimated here with sum|w x^|. */
                const int64_t nb = n_in / BM_QK;
                double qmag = 0;
                for (int64_t b = 0; b < nb; b++) {
                    const float dx = aq.d[t * (n_in / BM_QK) + b];
                    double am = 0;
                    for (int j = 0; j < BM_QK; j++) {
                        const uint8_t c = aq.q[t * n_in + b * BM_QK + j];
                        const int v = u8 ? (int)c - 128 : (int8_t)c;
                        am += fabs((double)wr[b * BM_QK + j] * dx * v);
                        qstep += fabs((double)wr[b * BM_QK + j]) * dx * 0.5;
                    }
                    qmag += am;
                }
                const double ref = yq[t * n_out + r];
                const double bq = 2.0 * ((double)nb + 8) * 2 * U * qmag + 1e-30;
                const double e = fabs(got - ref) / bq;
                cr_assert(e <= 1.0, "%s %s n_in=%ld n_tok=%ld t=%ld r=%ld got %.9g qref %.9g",
                          k->name, bm_dtype_name(type), (long)n_in, (long)n_tok, (long)t,
                          (long)r, got, ref);
                if (e > worst) worst = e;
                /* (2) vs the exact f32 product: each activation moves by at most d_x/2. */
                const double bx = qstep + bq + 1e-30;
                cr_assert(fabs(got - exact) <= bx, "%s %s: |%.9g - %.9g| > quant bound %.3g",
                          k->name, bm_dtype_name(type), got, exact, bx);
            }
        }
    if (q8) {
        free(yq);
        free_act(&aq);
    }
    free(pbuf);
    free(xb);
    free(yb);
    free_w(&w);
    return worst;
}

static double check_case(bm_pool *pool, int lvl, bm_dtype type, int64_t n_in, int64_t n_tok,
                         int64_t n_out, bool pack) {
    return check_case_fn(pool, lvl, type, n_in, n_tok, n_out, pack, NULL);
}

/* Table ids to test, in order: every level this CPU has (one below the best can be missing:
 * avxvnni on CPUs with AVX-512 VNNI only), then the avxvnni EVEX twin where it runs (the
 * avxvnni sources with EVEX vpdpbusd). -1 after the last. */
static int next_level(int l) {
    do l = l == BM_LVL_AVXVNNI_EVEX ? -1 : l + 1 == BM_LVL_COUNT ? BM_LVL_AVXVNNI_EVEX : l + 1;
    while (l >= 0 && !bm_kernels_at(l));
    return l;
}
#define FOR_EACH_LEVEL(lvl) for (int lvl = BM_LVL_REF; lvl >= 0; lvl = next_level(lvl))

Test(kernels, dispatch_reports_a_level) {
    const char *n = bm_kernels_name();
    cr_assert(n && *n);
    cr_assert(bm_kernels_max_level() >= 0 && bm_kernels_max_level() < BM_LVL_COUNT);
    cr_assert(bm_kernels_set_level(BM_LVL_REF));
    cr_assert_str_eq(bm_kernels_name(), "ref");
    cr_assert(!bm_kernels_set_level(BM_LVL_COUNT));
    cr_assert(bm_kernels_set_level(bm_kernels_max_level()));
    cr_assert_str_eq(bm_kernels_name(), bm_kernels_level_name(bm_kernels_max_level()));
    fprintf(stderr, "kernels: max level %s\n", bm_kernels_name());
}

Test(kernels, every_level_matches_references) {
    bm_pool *pool = bm_pool_new(2, NULL);
    FOR_EACH_LEVEL(lvl)
        for (int ti = 0; ti < N_FAST; ti++) {
            const bm_dtype type = FAST_TYPES[ti];
            const bool blk = block_type(type);
            const bool kblk = bm_type_traits_get(type)->block_elems == BM_QK_K;
            const int64_t *ns = kblk ? N_KBLOCK : blk ? N_BLOCK : N_FLOAT;
            const int nn = kblk ? 3 : blk ? 4 : 6;
            double worst = 0;
            for (int i = 0; i < nn; i++)
                for (int j = 0; j < 6; j++) {
                    /* Keep the big rows to a few tokens: the test must stay fast. */
                    if (ns[i] > 1000 && TOKS[j] > 7) continue;
                    const int64_t n_out = ns[i] > 1000 ? 5 : 13;
                    double e = check_case(pool, lvl, type, ns[i], TOKS[j], n_out, false);
                    if (e > worst) worst = e;
                }
            fprintf(stderr, "%-5s %-5s worst error / bound = %.3g\n", bm_kernels_level_name(lvl),
                    bm_dtype_name(type), worst);
        }
    bm_pool_free(pool);
    bm_kernels_set_level(bm_kernels_max_level());
}

Test(kernels, batch_invariance_bitwise) {
    bm_pool *pool = bm_pool_new(2, NULL);
    const bm_dtype types[] = {BM_F32,  BM_F16,  BM_BF16, BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_1,
                              BM_Q5_1, BM_Q3_K, BM_Q4_K, BM_Q5_K, BM_Q6_K, BM_Q2_K, BM_Q8_1};
    FOR_EACH_LEVEL(lvl) {
        cr_assert(bm_kernels_set_level(lvl));
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const int64_t n_in = 512, n_out = 67, n_tok = 7;
            wmat w = make_w(types[ti], n_in, n_out, 0);
            float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
            float *y7 = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            float *y1 = malloc(sizeof(float) * (size_t)n_out);
            for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = frand();
            run_mm(pool, &w.t, x, n_tok, y7);
            for (int64_t t = 0; t < n_tok; t++) {
                run_mm(pool, &w.t, x + t * n_in, 1, y1);
                cr_assert(!memcmp(y1, y7 + t * n_out, sizeof(float) * (size_t)n_out),
                          "%s %s: token %ld differs between n_tok=7 and n_tok=1",
                          bm_kernels_level_name(lvl), bm_dtype_name(types[ti]), (long)t);
            }
            /* Also single-threaded (different chunking) must give the same bits. */
            float *ys = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            run_mm(NULL, &w.t, x, n_tok, ys);
            cr_assert(!memcmp(ys, y7, sizeof(float) * (size_t)(n_tok * n_out)));
            free(ys);
            free(x);
            free(y7);
            free(y1);
            free_w(&w);
        }
    }
    bm_pool_free(pool);
    bm_kernels_set_level(bm_kernels_max_level());
}

/* Packed weights (bm_tensor_pack) at every level that has a packed kernel: the same bounds as
 * the unpacked kernels on odd row counts (partial groups, chunks of whole groups), token
 * counts around the tile size, and bitwise batch invariance. */
Test(kernels, packed_kernels_match_references) {
    bm_pool *pool = bm_pool_new(2, NULL);
    static const bm_dtype types[] = {BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_K, BM_Q5_K, BM_Q6_K};
    static const int64_t outs[] = {16, 17, 31, 33, 100};
    static const int64_t toks[] = {1, 2, 7, 8, 9, 19};
    int n_checked = 0;
    FOR_EACH_LEVEL(lvl)
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            if (!bm_kernels_at(lvl)->mmp[types[ti]]) continue;
            const bool kt =
                types[ti] == BM_Q4_K || types[ti] == BM_Q5_K || types[ti] == BM_Q6_K;
            const int64_t *ns = kt ? N_KBLOCK : N_BLOCK;
            double worst = 0;
            for (int i = 0; i < (kt ? 3 : 4); i++)
                for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
                    for (size_t j = 0; j < sizeof toks / sizeof toks[0]; j++) {
                        if (ns[i] > 1000 && (toks[j] > 9 || outs[o] > 17)) continue;
                        double e = check_case(pool, lvl, types[ti], ns[i], toks[j], outs[o],
                                              true);
                        if (e > worst) worst = e;
                        n_checked++;
                    }
            fprintf(stderr, "%-5s %-5s packed worst error / bound = %.3g\n",
                    bm_kernels_level_name(lvl), bm_dtype_name(types[ti]), worst);
            /* Batch invariance: n_tok = 19 (tiles 8 + 8 + 3) vs one token at a time, and one
             * thread vs two; then the scalar level on the same tensor uses the original rows. */
            const int64_t n_in = 512, n_out = 67, n_tok = 19;
            cr_assert(bm_kernels_set_level(lvl));
            wmat w = make_w(types[ti], n_in, n_out, 0);
            void *pbuf;
            size_t pbytes;
            bm_err err = {0};
            cr_assert(bm_tensor_pack(&w.t, pool, NULL, NULL, &pbuf, &pbytes, &err) == BM_OK, "%s", err.msg);
            cr_assert(pbytes >= (size_t)((n_out + 15) / 16 * 16) * (w.t.n_bytes / (size_t)n_out));
            float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
            float *yn = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            float *y1 = malloc(sizeof(float) * (size_t)n_out);
            float *ys = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            for (int64_t q = 0; q < n_tok * n_in; q++) x[q] = frand();
            run_mm(pool, &w.t, x, n_tok, yn);
            for (int64_t t = 0; t < n_tok; t++) {
                run_mm(pool, &w.t, x + t * n_in, 1, y1);
                cr_assert(!memcmp(y1, yn + t * n_out, sizeof(float) * (size_t)n_out),
                          "%s packed: token %ld differs between n_tok=%ld and 1",
                          bm_dtype_name(types[ti]), (long)t, (long)n_tok);
            }
            run_mm(NULL, &w.t, x, n_tok, ys);
            cr_assert(!memcmp(ys, yn, sizeof(float) * (size_t)(n_tok * n_out)));
            cr_assert(bm_kernels_set_level(BM_LVL_REF));
            run_mm(pool, &w.t, x, n_tok, ys);
            double md = 0, mx = 0;
            for (int64_t q = 0; q < n_tok * n_out; q++) {
                md = fmax(md, fabs((double)ys[q] - yn[q]));
                mx = fmax(mx, fabs((double)ys[q]));
            }
            cr_assert(md <= 0.05 * mx, "ref level on a packed tensor: max diff %g of %g", md, mx);
            free(pbuf);
            free(x);
            free(yn);
            free(y1);
            free(ys);
            free_w(&w);
        }
    if (bm_kernels_max_level() >= BM_LVL_VNNI) cr_assert(n_checked > 0);
    bm_pool_free(pool);
    bm_kernels_set_level(bm_kernels_max_level());
}

/* The 512-bit float-weight kernels called directly (the dispatcher picks only one BF16 kernel
 * per CPU): every STYLE size and token count against the references (the vdpbf16ps kernel vs
 * double sums over bf16-rounded activations and vs the f32 product with the bf16 bound), and
 * batch invariance bitwise: token t of n_tok=7 equals n_tok=1, and any split of the row range
 * (tile shapes change with it) gives the same bits. The avx512 level's builds (the same source
 * with AVX-512 F/BW/VL/DQ flags) also bitwise equal the vnni ones where both run. */
Test(kernels, float512_kernels_direct) {
    if (!bm_kernels_at(BM_LVL_AVX512)) {
        fprintf(stderr, "float512: CPU lacks AVX-512 F/BW/VL/DQ, skipped\n");
        return;
    }
    __builtin_cpu_init();
    const bool has_bf16 = __builtin_cpu_supports("avx512bf16");
    const bool vnni = bm_kernels_at(BM_LVL_VNNI) != NULL;
    const struct { bm_dtype t; bm_mm_fn fn; const char *name; int lvl; bm_mm_fn twin; } ks[] = {
        {BM_F32, bm_mm_f32_avx512, "f32_avx512", BM_LVL_AVX512, bm_mm_f32_vnni},
        {BM_F16, bm_mm_f16_avx512, "f16_avx512", BM_LVL_AVX512, bm_mm_f16_vnni},
        {BM_BF16, bm_mm_bf16_avx512, "bf16_avx512", BM_LVL_AVX512, bm_mm_bf16_vnni},
        {BM_F32, bm_mm_f32_vnni, "f32_vnni", BM_LVL_VNNI, NULL},
        {BM_F16, bm_mm_f16_vnni, "f16_vnni", BM_LVL_VNNI, NULL},
        {BM_BF16, bm_mm_bf16_vnni, "bf16_vnni", BM_LVL_VNNI, NULL},
        {BM_BF16, bm_mm_bf16_avx512bf16, "bf16_avx512bf16", BM_LVL_AVX512, NULL},
    };
    if (!vnni) fprintf(stderr, "float512: CPU lacks AVX-512 VNNI, vnni builds skipped\n");
    if (!has_bf16) fprintf(stderr, "float512: CPU lacks AVX512_BF16, vdpbf16ps kernel skipped\n");
    for (int ki = 0; ki < (int)(sizeof ks / sizeof ks[0]); ki++) {
        if (ks[ki].lvl == BM_LVL_VNNI && !vnni) continue;
        if (ks[ki].fn == bm_mm_bf16_avx512bf16 && !has_bf16) continue;
        double worst = 0;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                if (N_FLOAT[i] > 1000 && TOKS[j] > 7) continue;
                const int64_t n_out = N_FLOAT[i] > 1000 ? 5 : 19;
                double e = check_case_fn(NULL, ks[ki].lvl, ks[ki].t, N_FLOAT[i], TOKS[j], n_out,
                                         false, ks[ki].fn);
                if (e > worst) worst = e;
            }
        fprintf(stderr, "%-16s worst error / bound = %.3g\n", ks[ki].name, worst);
        /* Batch and tiling invariance. */
        const int64_t ns[] = {33, 515};
        for (int ni = 0; ni < 2; ni++) {
            const int64_t n_in = ns[ni], n_out = 29, n_tok = 7;
            wmat w = make_w(ks[ki].t, n_in, n_out, 2);
            float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
            float *y7 = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            float *y1 = malloc(sizeof(float) * (size_t)n_out);
            float *ys = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            for (int64_t e = 0; e < n_tok * n_in; e++) x[e] = frand();
            run_direct(ks[ki].fn, &w.t, x, n_tok, y7, 0, n_out);
            for (int64_t t = 0; t < n_tok; t++) {
                run_direct(ks[ki].fn, &w.t, x + t * n_in, 1, y1, 0, n_out);
                cr_assert(!memcmp(y1, y7 + t * n_out, sizeof(float) * (size_t)n_out),
                          "%s n_in=%ld: token %ld differs between n_tok=7 and n_tok=1",
                          ks[ki].name, (long)n_in, (long)t);
            }
            for (int64_t cut = 1; cut < n_out; cut += 5) {
                run_direct(ks[ki].fn, &w.t, x, n_tok, ys, 0, cut);
                run_direct(ks[ki].fn, &w.t, x, n_tok, ys, cut, n_out);
                cr_assert(!memcmp(ys, y7, sizeof(float) * (size_t)(n_tok * n_out)),
                          "%s n_in=%ld: rows split at %ld differ", ks[ki].name, (long)n_in,
                          (long)cut);
            }
            if (ks[ki].twin && vnni) {
                run_direct(ks[ki].twin, &w.t, x, n_tok, ys, 0, n_out);
                cr_assert(!memcmp(ys, y7, sizeof(float) * (size_t)(n_tok * n_out)),
                          "%s n_in=%ld: differs from the vnni build", ks[ki].name, (long)n_in);
            }
            free(x);
            free(y7);
            free(y1);
            free(ys);
            free_w(&w);
        }
    }
    bm_kernels_set_level(bm_kernels_max_level());
}

/* bm_matmul_multi (one quantization, one fused run) must equal separate bm_matmul calls
 * bitwise, for mixed types (fused) and with a type lacking a fast kernel (one by one). */
Test(kernels, matmul_multi_equals_separate_calls) {
    bm_pool *pool = bm_pool_new(2, NULL);
    const bm_dtype sets[3][3] = {{BM_Q4_K, BM_Q6_K, BM_F16},
                                 {BM_Q8_0, BM_Q8_1, BM_Q4_0},
                                 {BM_Q2_K, BM_Q3_K, BM_Q5_K}};
    const int64_t n_in = 512, outs[3] = {40, 9, 23};
    FOR_EACH_LEVEL(lvl) {
        cr_assert(bm_kernels_set_level(lvl));
        cr_assert(!bm_kernels_at(lvl)->mm[BM_Q8_1], "the one-by-one case needs a type without a "
                                                     "fast kernel");
        for (int si = 0; si < 3; si++)
            for (int64_t n_tok = 1; n_tok <= 6; n_tok += 5) {
                wmat w[3];
                const bm_tensor *ws[3];
                float *ys[3], *ref[3];
                float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
                for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = frand();
                for (int i = 0; i < 3; i++) {
                    w[i] = make_w(sets[si][i], n_in, outs[i], i);
                    ws[i] = &w[i].t;
                    ys[i] = malloc(sizeof(float) * (size_t)(n_tok * outs[i]));
                    ref[i] = malloc(sizeof(float) * (size_t)(n_tok * outs[i]));
                    run_mm(pool, ws[i], x, n_tok, ref[i]);
                }
                size_t sb = bm_matmul_scratch_bytes(n_in, n_tok, bm_pool_n_threads(pool));
                void *scr = aligned_alloc(64, (sb + 63) & ~(size_t)63);
                bm_matmul_multi(pool, 3, ws, x, n_tok, ys, scr);
                for (int i = 0; i < 3; i++) {
                    cr_assert(!memcmp(ys[i], ref[i], sizeof(float) * (size_t)(n_tok * outs[i])),
                              "%s: multi differs for %s (n_tok %ld)", bm_kernels_level_name(lvl),
                              bm_dtype_name(sets[si][i]), (long)n_tok);
                    free(ys[i]);
                    free(ref[i]);
                    free_w(&w[i]);
                }
                free(scr);
                free(x);
            }
    }
    bm_pool_free(pool);
    bm_kernels_set_level(bm_kernels_max_level());
}

/* Attention helpers of every level against double sums (float summation bound), odd sizes and
 * misaligned pointers. */
Test(kernels, attention_dot_axpy) {
    FOR_EACH_LEVEL(lvl) {
        char msg[160];
        const char *fail = check_dot_axpy(bm_kernels_at(lvl), msg, sizeof msg);
        cr_assert(!fail, "%s", fail);
    }
}

/* SwiGLU of every level against the double formula: relative error <= 2e-6 over a wide range
 * (including saturation of the gate), odd lengths, in place (y == g). */
Test(kernels, swiglu_every_level) {
    const int64_t n = 1003;
    float *g = malloc(sizeof(float) * (size_t)n), *u = malloc(sizeof(float) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)n);
    FOR_EACH_LEVEL(lvl) {
        const bm_kernels *k = bm_kernels_at(lvl);
        for (int64_t i = 0; i < n; i++) {
            g[i] = i < 20 ? (float)(i - 10) * 12.0f : 9.0f * frand(); /* -120 .. 108, then ±9 */
            u[i] = frand();
            y[i] = g[i];
        }
        k->swiglu(y, u, y, n);
        for (int64_t i = 0; i < n; i++) {
            const double v = g[i], want = v / (1.0 + exp(-v)) * u[i];
            cr_assert(fabs(y[i] - want) <= 2e-6 * fabs(want) + 1e-30, "%s swiglu(%g, %g) = %.9g, "
                      "want %.9g", k->name, g[i], u[i], y[i], want);
        }
    }
    free(g);
    free(u);
    free(y);
}

/* RMS norm of every level against the double formula y = x w / sqrt(mean(x^2) + eps): relative
 * error <= 1e-6, lengths 1, 7, 31, 33, 896, 4097, with and without weights, in place (y == x),
 * from a misaligned pointer. */
Test(kernels, rmsnorm_every_level) {
    static const int64_t ns[] = {1, 7, 31, 33, 896, 4097};
    float *xb = malloc(sizeof(float) * 4098), *w = malloc(sizeof(float) * 4097);
    float *y = malloc(sizeof(float) * 4097), *x = xb + 1;
    FOR_EACH_LEVEL(lvl) {
        const bm_kernels *k = bm_kernels_at(lvl);
        for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++)
            for (int mode = 0; mode < 3; mode++) { /* weights, none, in place */
                const int64_t n = ns[c];
                for (int64_t i = 0; i < n; i++) {
                    x[i] = (i % 13 == 0 ? 30.0f : 1.0f) * frand();
                    w[i] = 1.0f + frand();
                }
                double ss = 0;
                for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
                const double s = 1.0 / sqrt(ss / (double)n + 1e-6);
                double want[4097];
                for (int64_t i = 0; i < n; i++) want[i] = x[i] * s * (mode == 1 ? 1.0 : w[i]);
                float *out = mode == 2 ? x : y;
                k->rmsnorm(x, mode == 1 ? NULL : w, out, n, 1e-6f);
                for (int64_t i = 0; i < n; i++)
                    cr_assert(fabs(out[i] - want[i]) <= 1e-6 * fabs(want[i]) + 1e-30,
                              "%s rmsnorm n=%ld mode %d [%ld] = %.9g, want %.9g", k->name,
                              (long)n, mode, (long)i, out[i], want[i]);
            }
    }
    free(xb);
    free(w);
    free(y);
}

/* ---- avxvnni: availability from cpuid, the BM_KERNELS cap, the EVEX twin ---------------- */

/* Features read with cpuid and xgetbv directly (dispatch.c asks __builtin_cpu_supports): AVX2 +
 * FMA + F16C with ymm state enabled by the OS; AVX-VNNI = CPUID.(7,1):EAX[4]; AVX-512
 * F/BW/VL/DQ (and VNNI) with zmm and opmask state enabled. */
typedef struct cpu_bits { bool avx2, avxvnni, avx512, avx512vnni; } cpu_bits;
static cpu_bits cpu_bits_get(void) {
    cpu_bits c = {false, false, false, false};
#if defined(__x86_64__) && !defined(BM_NO_SIMD)
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d) || !(cx >> 27 & 1)) return c; /* OSXSAVE */
    const bool fma = cx >> 12 & 1, f16c = cx >> 29 & 1;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const bool ymm = (lo & 0x6) == 0x6, zmm = (lo & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d)) return c;
    c.avx2 = ymm && fma && f16c && (b >> 5 & 1);
    /* AVX-512 F (b16), DQ (b17), BW (b30), VL (b31); VNNI (ecx b11) */
    c.avx512 = c.avx2 && zmm && (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
    c.avx512vnni = c.avx512 && (cx >> 11 & 1);
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avxvnni = c.avx2 && (a >> 4 & 1);
#endif
    return c;
}

/* The avxvnni level exists exactly when cpuid says AVX-VNNI (so not on AVX-512 VNNI CPUs
 * without it), vnni stays preferred where both exist, and the avxvnni table and its EVEX twin
 * (tested by every per-level test above where it runs) take the int8 kernels of the same
 * sources: the row kernels of mmk.h / mm_q2k.h, the packed ones of mmp256.h and mmpk256.h. */
Test(kernels, avxvnni_level_follows_cpuid) {
    const cpu_bits c = cpu_bits_get();
    fprintf(stderr, "cpuid: avx2 %d, avx-vnni %d, avx512 %d, avx512-vnni %d; max level %s\n",
            c.avx2, c.avxvnni, c.avx512, c.avx512vnni,
            bm_kernels_level_name(bm_kernels_max_level()));
    cr_assert_eq(bm_kernels_at(BM_LVL_AVX2) != NULL, c.avx2);
    cr_assert_eq(bm_kernels_at(BM_LVL_AVXVNNI) != NULL, c.avxvnni);
    cr_assert_eq(bm_kernels_at(BM_LVL_VNNI) != NULL, c.avx512vnni);
    cr_assert_eq(bm_kernels_at(BM_LVL_AVXVNNI_EVEX) != NULL, c.avx512vnni);
    cr_assert_eq(bm_kernels_set_level(BM_LVL_AVXVNNI), c.avxvnni);
    cr_assert_eq(bm_kernels_use("avxvnni"), c.avxvnni);
    cr_assert(!bm_kernels_use("avxvnni-evex"), "the twin is for tests only");
    cr_assert_str_eq(bm_kernels_level_name(BM_LVL_AVXVNNI), "avxvnni");
    const int best = c.avx512vnni ? BM_LVL_VNNI : c.avx512 ? BM_LVL_AVX512
                     : c.avxvnni  ? BM_LVL_AVXVNNI : c.avx2 ? BM_LVL_AVX2 : BM_LVL_REF;
    cr_assert_geq(bm_kernels_max_level(), best);
    cr_assert_lt(bm_kernels_max_level(), BM_LVL_COUNT);
    static const bm_dtype q8[] = {BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_1, BM_Q5_1,
                                  BM_Q2_K, BM_Q3_K, BM_Q4_K, BM_Q5_K, BM_Q6_K};
    const int ids[2] = {BM_LVL_AVXVNNI, BM_LVL_AVXVNNI_EVEX};
    for (int i = 0; i < 2; i++) {
        const bm_kernels *k = bm_kernels_at(ids[i]), *k2 = bm_kernels_at(BM_LVL_AVX2);
        if (!k) continue;
        const bool evex = ids[i] == BM_LVL_AVXVNNI_EVEX;
        cr_assert(k->act_u8);
        for (size_t j = 0; j < sizeof q8 / sizeof q8[0]; j++)
            cr_assert(k->mm[q8[j]] && k->act[q8[j]] == BM_ACT_Q8 && k->mm[q8[j]] != k2->mm[q8[j]],
                      "%s %s", k->name, bm_dtype_name(q8[j]));
        cr_assert(k->mm[BM_F32] == k2->mm[BM_F32] && k->mm[BM_BF16] == k2->mm[BM_BF16]);
        cr_assert(k->att_chunk == k2->att_chunk && k->act_q8 == k2->act_q8);
        cr_assert(k->mm[BM_Q8_0] == (evex ? bm_mm_q8_0_vnni : bm_mm_q8_0_avxvnni));
        cr_assert(k->mm[BM_Q2_K] == (evex ? bm_mm_q2_K_vnni : bm_mm_q2_K_avxvnni));
        cr_assert(k->mmp[BM_Q8_0] == (evex ? bm_mmp_q8_0_vnni256 : bm_mmp_q8_0_avxvnni));
        cr_assert(k->mmp[BM_Q4_0] == (evex ? bm_mmp_q4_0_vnni256 : bm_mmp_q4_0_avxvnni));
        cr_assert(k->mmp[BM_Q5_0] == (evex ? bm_mmp_q5_0_vnni256 : bm_mmp_q5_0_avxvnni));
        cr_assert(k->mmp[BM_Q4_K] == (evex ? bm_mmp_q4_K_vnni256 : bm_mmp_q4_K_avxvnni));
        cr_assert(k->mmp[BM_Q5_K] == (evex ? bm_mmp_q5_K_vnni256 : bm_mmp_q5_K_avxvnni));
        cr_assert(k->mmp[BM_Q6_K] == (evex ? bm_mmp_q6_K_vnni256 : bm_mmp_q6_K_avxvnni));
    }
    bm_kernels_set_level(bm_kernels_max_level());
}

/* BM_KERNELS=avxvnni caps the level at avxvnni, or at the best level below it the CPU has
 * (avx2 on AVX-512 VNNI CPUs without AVX-VNNI). Set before the table is first filled: each
 * Criterion test runs in a fresh process and the table is filled lazily. */
static void env_avxvnni(void) { setenv("BM_KERNELS", "avxvnni", 1); }
Test(kernels, bm_kernels_env_caps_at_avxvnni, .init = env_avxvnni) {
    const cpu_bits c = cpu_bits_get();
    const char *want = c.avxvnni ? "avxvnni" : c.avx2 ? "avx2" : "ref";
    cr_assert_str_eq(bm_kernels_name(), want);
}

/* ---- avx512: AVX-512 F/BW/VL/DQ without VNNI ------------------------------------------- */

/* The avx512 level exists exactly when cpuid says AVX-512 F/BW/VL/DQ (with the OS zmm state),
 * and its table is the avx2 table with the 512-bit float kernels and the emulated-vpdpbusd
 * packed kernels on top: row kernels, quantizer and helpers stay avx2's (signed codes). */
Test(kernels, avx512_level_follows_cpuid) {
    const cpu_bits c = cpu_bits_get();
    const bm_kernels *k = bm_kernels_at(BM_LVL_AVX512), *k2 = bm_kernels_at(BM_LVL_AVX2);
    cr_assert_eq(k != NULL, c.avx512);
    cr_assert_str_eq(bm_kernels_level_name(BM_LVL_AVX512), "avx512");
    cr_assert_eq(bm_kernels_use("avx512"), c.avx512);
    if (c.avx512) cr_assert_str_eq(bm_kernels_name(), "avx512");
    if (c.avx512vnni) cr_assert_geq(bm_kernels_max_level(), BM_LVL_VNNI, "vnni stays preferred");
    if (!k) {
        fprintf(stderr, "avx512: CPU lacks AVX-512 F/BW/VL/DQ, level checks skipped\n");
        return;
    }
    cr_assert_eq(k->level, BM_LVL_AVX512);
    cr_assert(!k->act_u8);
    cr_assert(k->act_q8 == k2->act_q8 && k->att_chunk == k2->att_chunk &&
              k->rmsnorm == k2->rmsnorm && k->swiglu == k2->swiglu);
    for (int t = 0; t < BM_DTYPE_COUNT; t++) {
        if (t == BM_F32 || t == BM_F16 || t == BM_BF16) continue;
        cr_assert(k->mm[t] == k2->mm[t] && k->act[t] == k2->act[t], "%s row kernel",
                  bm_dtype_name((bm_dtype)t));
    }
    cr_assert(k->mm[BM_F32] == bm_mm_f32_avx512 && k->mm[BM_F16] == bm_mm_f16_avx512);
    cr_assert(k->mm[BM_BF16] == bm_mm_bf16_avx512 || k->mm[BM_BF16] == bm_mm_bf16_avx512bf16);
    cr_assert(k->mmp[BM_Q8_0] == bm_mmp_q8_0_avx512 && k->mmp[BM_Q4_0] == bm_mmp_q4_0_avx512 &&
              k->mmp[BM_Q5_0] == bm_mmp_q5_0_avx512 && k->mmp[BM_Q4_K] == bm_mmp_q4_K_avx512 &&
              k->mmp[BM_Q5_K] == bm_mmp_q5_K_avx512 && k->mmp[BM_Q6_K] == bm_mmp_q6_K_avx512);
    bm_kernels_set_level(bm_kernels_max_level());
}

/* BM_KERNELS=avx512 selects avx512 where the CPU has it (also on VNNI CPUs), else the best
 * level below it. */
static void env_avx512(void) { setenv("BM_KERNELS", "avx512", 1); }
Test(kernels, bm_kernels_env_selects_avx512, .init = env_avx512) {
    const cpu_bits c = cpu_bits_get();
    const char *want = c.avx512 ? "avx512" : c.avxvnni ? "avxvnni" : c.avx2 ? "avx2" : "ref";
    cr_assert_str_eq(bm_kernels_name(), want);
    cr_assert(strstr(bm_kernels_summary(), c.avx512 ? " avx512" : "(") != NULL, "%s",
              bm_kernels_summary());
}

/* Fills the codes of a packed-type weight matrix with one byte value (the scale fields set to
 * 1/16, f16 0x2C00), so every code is at an end of its range: the operands where vpmaddubsw
 * would saturate if the emulation's int16 bounds were wrong. */
static void extreme_codes(wmat *w, uint8_t fillb) {
    const bm_type_traits *tt = bm_type_traits_get(w->t.type);
    const size_t bb = tt->block_bytes;
    uint8_t *p = w->buf + ((const uint8_t *)w->t.data - w->buf);
    const size_t nblk = w->t.n_bytes / bb;
    memset(p, fillb, w->t.n_bytes);
    for (size_t i = 0; i < nblk; i++) {
        uint8_t *blk = p + i * bb;
        const uint16_t h = 0x2C00;
        if (w->t.type == BM_Q6_K) {
            memcpy(blk + bb - 2, &h, 2);
        } else {
            memcpy(blk, &h, 2);
            if (w->t.type == BM_Q4_K || w->t.type == BM_Q5_K) memcpy(blk + 2, &h, 2);
        }
    }
    for (int64_t r = 0; r < w->t.ne[1]; r++)
        tt->to_f32(p + (size_t)r * (w->t.n_bytes / (size_t)w->t.ne[1]), w->deq + r * w->t.ne[0],
                   w->t.ne[0]);
}

/* The avx512 level's packed int8 kernels (vpdpbusd emulated with vpmaddubsw + vpmaddwd, Q8_0
 * through signed codes) give bitwise the vnni level's results: on the sizes of the packed test
 * (partial groups, the decode tiles of 1, 2 and 4 groups, prefill tiles and their rest), with
 * random weights, and with every code at the end of its range times activations of +-127
 * (the largest products; a saturating int16 pair sum would show). Both are also checked
 * against the exact scalar reference over the same quantized activations. */
Test(kernels, avx512_packed_bitwise_vnni) {
    if (!bm_kernels_at(BM_LVL_AVX512)) {
        fprintf(stderr, "avx512 packed: CPU lacks AVX-512 F/BW/VL/DQ, skipped\n");
        return;
    }
    const bool vnni = bm_kernels_at(BM_LVL_VNNI) != NULL;
    if (!vnni) fprintf(stderr, "avx512 packed: CPU lacks AVX-512 VNNI, reference checks only\n");
    bm_pool *pool = bm_pool_new(2, NULL);
    static const bm_dtype types[] = {BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_K, BM_Q5_K, BM_Q6_K};
    static const int64_t outs[] = {16, 17, 33, 100};
    static const int64_t toks[] = {1, 2, 7, 8, 9, 19};
    /* mode 0: random weights; 1, 2: every code at one end (0xFF: Q8_0 -1 then below 0x80 =
     * -128 ... see fills), activations +-127 */
    int n_cmp = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const bm_dtype type = types[ti];
        const bool kt = type == BM_Q4_K || type == BM_Q5_K || type == BM_Q6_K;
        const int64_t *ns = kt ? N_KBLOCK : N_BLOCK;
        /* Q8_0: 0x80 = code -128 (|s| = 128), 0x7F = 127; the nibble types: 0xFF = every
         * code and fifth / high bit set (15, 31, 63), the K scales at 63 (Q6_K: -1). */
        const uint8_t fills[2] = {type == BM_Q8_0 ? 0x80 : 0xFF, type == BM_Q8_0 ? 0x7F : 0xFF};
        for (int mode = 0; mode < 3; mode++)
            for (int i = 0; i < (kt ? 2 : 4); i++)
                for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
                    for (size_t j = 0; j < sizeof toks / sizeof toks[0]; j++) {
                        const int64_t n_in = ns[i], n_out = outs[o], n_tok = toks[j];
                        if (mode && (j % 2 || o % 2)) continue; /* fewer extreme cases */
                        wmat w = make_w(type, n_in, n_out, 0);
                        if (mode) extreme_codes(&w, fills[mode - 1]);
                        float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
                        for (int64_t q = 0; q < n_tok * n_in; q++)
                            x[q] = mode ? ((q / n_in + mode) % 2 ? 0.5f : -0.5f) : frand();
                        cr_assert(bm_kernels_set_level(BM_LVL_AVX512));
                        void *pbuf;
                        size_t pbytes;
                        bm_err err = {0};
                        cr_assert(bm_tensor_pack(&w.t, pool, NULL, NULL, &pbuf, &pbytes, &err) ==
                                  BM_OK, "%s", err.msg);
                        float *ya = malloc(sizeof(float) * (size_t)(n_tok * n_out));
                        float *yv = malloc(sizeof(float) * (size_t)(n_tok * n_out));
                        run_mm(pool, &w.t, x, n_tok, ya);
                        if (vnni) {
                            cr_assert(bm_kernels_set_level(BM_LVL_VNNI));
                            run_mm(pool, &w.t, x, n_tok, yv);
                            cr_assert(!memcmp(ya, yv, sizeof(float) * (size_t)(n_tok * n_out)),
                                      "%s mode %d n_in=%ld n_out=%ld n_tok=%ld: avx512 != vnni",
                                      bm_dtype_name(type), mode, (long)n_in, (long)n_out,
                                      (long)n_tok);
                            n_cmp++;
                        }
                        /* vs the exact integer dots in double on the same codes: float error
                         * of nb block terms, |err| <= (nb + 8) 2u sum_b |d_w d_x isum_b|,
                         * bounded with sum |w x^|. */
                        actq aq = quant_act(x, n_in, n_tok, false);
                        aq.a.w = w.t.data;
                        cr_assert(bm_row_bytes(type, n_in, &aq.a.row_bytes));
                        aq.a.y = yv;
                        aq.a.ldy = n_out;
                        bm_mm_q8_ref(type, &aq.a, false, 0, n_out);
                        const int64_t nb = n_in / BM_QK;
                        for (int64_t t = 0; t < n_tok; t++)
                            for (int64_t r = 0; r < n_out; r++) {
                                double qmag = 0;
                                for (int64_t e = 0; e < n_in; e++)
                                    qmag += fabs((double)w.deq[r * n_in + e] *
                                                 aq.d[t * nb + e / BM_QK] *
                                                 (int8_t)aq.q[t * n_in + e]);
                                const double bq = 2.0 * ((double)nb + 8) * 2 * U * qmag + 1e-30;
                                const double got = ya[t * n_out + r], ref = yv[t * n_out + r];
                                cr_assert(fabs(got - ref) <= bq, "%s mode %d n_in=%ld t=%ld "
                                          "r=%ld: %.9g vs exact %.9g", bm_dtype_name(type),
                                          mode, (long)n_in, (long)t, (long)r, got, ref);
                            }
                        free_act(&aq);
                        free(ya);
                        free(yv);
                        free(x);
                        free(pbuf);
                        free_w(&w);
                    }
        fprintf(stderr, "avx512 packed %s: bitwise vnni and within the reference bound\n",
                bm_dtype_name(type));
    }
    if (vnni) cr_assert(n_cmp > 0);
    bm_pool_free(pool);
    bm_kernels_set_level(bm_kernels_max_level());
}

/* Logits of a short prompt (all positions) at level lvl. */
static float *forward_logits(const char *path, int lvl, int32_t n, int32_t *n_vocab) {
    cr_assert(bm_kernels_set_level(lvl)); /* before the load: it packs for this level */
    bm_model *m = NULL;
    cr_assert(bm_model_load(path, &m, NULL) == BM_OK);
    bm_ctx_params cp = {.n_ctx = 64, .max_batch = 16, .n_seq = 1, .n_threads = 2};
    bm_ctx *c = NULL;
    cr_assert(bm_ctx_new(m, &cp, &c, NULL) == BM_OK);
    bm_seq s;
    cr_assert(bm_seq_init(&s, 64, NULL) == BM_OK);
    int32_t toks[32];
    for (int i = 0; i < n; i++) toks[i] = (i * 37 + 11) % 200;
    *n_vocab = m->hp.n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)n * (size_t)*n_vocab);
    cr_assert(bm_model_eval(c, &s, toks, n, true, lg, NULL) == BM_OK);
    bm_seq_fini(&s, bm_ctx_kv(c));
    bm_ctx_free(c);
    bm_model_free(m);
    return lg;
}

Test(kernels, forward_pass_fast_vs_ref) {
    const bm_dtype types[] = {BM_Q8_0, BM_Q4_0, BM_Q4_K, BM_Q6_K, BM_Q2_K,
                              BM_F16,  BM_F32,  BM_BF16};
    char path[] = "/tmp/bm-kern-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        bm_make_params mp = {.arch = "qwen2", .shape = "tiny", .type = types[i], .seed = 7};
        cr_assert(bm_model_make(&mp, path, NULL) == BM_OK);
        const int32_t n = 12;
        int32_t nv;
        float *ref = forward_logits(path, BM_LVL_REF, n, &nv);
        /* Every SIMD level this CPU has (not the test twin). */
        FOR_EACH_LEVEL(lvl) {
            if (lvl == BM_LVL_REF || lvl == BM_LVL_AVXVNNI_EVEX) continue;
            float *fast = forward_logits(path, lvl, n, &nv);
            double maxd = 0, maxa = 0;
            for (int32_t t = 0; t < n; t++) {
                const float *a = ref + (size_t)t * nv, *b = fast + (size_t)t * nv;
                int32_t ia = 0, ib = 0;
                for (int32_t v = 0; v < nv; v++) {
                    if (a[v] > a[ia]) ia = v;
                    if (b[v] > b[ib]) ib = v;
                    maxd = fmax(maxd, fabs((double)a[v] - b[v]));
                    maxa = fmax(maxa, fabs((double)a[v]));
                }
                /* A top-1 flip is only acceptable when the reference's top two are within the
                 * tolerance below. */
                if (ia != ib) cr_assert(fabs((double)a[ia] - a[ib]) <= 0.02 * maxa + 1e-3);
            }
            /* Logits tolerance: 2% of the largest logit magnitude for 8-bit activations
             * (measured well below, see the printed value); f16 / f32 weights keep f32
             * activations; bf16 weights too, except with the vdpbf16ps kernel (activations
             * rounded to bf16, 8 significant bits: 1%, measured 0.34%). */
            const bool f32_act = types[i] == BM_F16 || types[i] == BM_F32 ||
                                 (types[i] == BM_BF16 &&
                                  bm_kernels_at(lvl)->mm[BM_BF16] != bm_mm_bf16_avx512bf16);
            const double tol =
                (f32_act ? 1e-4 : types[i] == BM_BF16 ? 0.01 : 0.02) * maxa + 1e-5;
            fprintf(stderr, "forward %-7s %s: max |fast - ref| = %.3g (max |logit| %.3g, "
                    "tol %.3g)\n", bm_kernels_level_name(lvl), bm_dtype_name(types[i]), maxd,
                    maxa, tol);
            cr_assert(maxd <= tol, "%s %s: max |fast-ref| %.3g > %.3g",
                      bm_kernels_level_name(lvl), bm_dtype_name(types[i]), maxd, tol);
            free(fast);
        }
        free(ref);
    }
    unlink(path);
    bm_kernels_set_level(bm_kernels_max_level());
}

/* bm_matmul issues back-to-back pool runs with different task counts (token split, then row
 * chunks); a worker leaving one run must never claim an index of the next. */
typedef struct pool_count {
    _Atomic long sum;
} pool_count;
static void count_task(void *ctx, int ith, int nth) {
    pool_count *c = ctx;
    atomic_fetch_add(&c->sum, (long)(ith + 1) * 1000 + nth);
}

Test(kernels, pool_runs_with_varying_task_counts) {
    bm_pool *pool = bm_pool_new(2, NULL);
    for (int r = 0; r < 20000; r++) {
        pool_count c = {0};
        const int n = (r & 1) ? 2 : 17 + (r % 5);
        bm_pool_run(pool, count_task, &c, n);
        cr_assert_eq(atomic_load(&c.sum), (long)n * (n + 1) / 2 * 1000 + (long)n * n,
                     "run %d with %d tasks", r, n);
    }
    bm_pool_free(pool);
}
