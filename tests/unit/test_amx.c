/* Tests of the AMX int8 packed kernels (src/tensor/x86/mmp_amx.h). The kernel body is compiled
 * here a second time on the tile emulator of amx_emu.h (which aborts on any use the hardware
 * would fault on), so it runs on any AVX-512 VNNI CPU: against the double reference
 * bm_mm_q8_ref with the bound of the packed VNNI test, bitwise against the VNNI packed kernel
 * (the property that keeps batch invariance when leftover tokens go to VNNI), batch invariance
 * and row-chunk invariance bitwise, the tile work actually done, the emulator itself against
 * the instruction definitions, and the startup self-check accepting the kernels and rejecting
 * broken ones. On a CPU with AMX the real kernels run through the same checks. */
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#include "tensor/x86/amx_emu.h"
#include "tensor/x86/mmp_amx.h"

static void emu_q8_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 0, bm_mmp_q8_0_vnni);
}
static void emu_q4_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 1, bm_mmp_q4_0_vnni);
}
static void emu_q5_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 2, bm_mmp_q5_0_vnni);
}
/* The kernel's tile configuration (amx_config is always-inline for AVX-512 callers). */
static void kernel_config(uint8_t cfg[64]) { amx_config(cfg); }
#pragma GCC pop_options

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>

static const bm_dtype TYPES[] = {BM_Q8_0, BM_Q4_0, BM_Q5_0};
static const bm_mm_fn EMU[] = {emu_q8_0, emu_q4_0, emu_q5_0};
static const bm_mm_fn VNNI[] = {bm_mmp_q8_0_vnni, bm_mmp_q4_0_vnni, bm_mmp_q5_0_vnni};
static const bm_mm_fn REAL[] = {bm_mmp_q8_0_amx, bm_mmp_q4_0_amx, bm_mmp_q5_0_amx};
static const int64_t N_IN[] = {32, 64, 256, 4128};
static const int64_t N_OUT[] = {16, 17, 31, 33, 100};
static const int64_t N_TOK[] = {1, 15, 16, 17, 33};
static const double U = 1.0 / 16777216.0; /* float unit roundoff */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* xorshift, uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static bool have_vnni(void) {
    if (bm_kernels_max_level() >= BM_LVL_VNNI) return true;
    fprintf(stderr, "amx: CPU lacks AVX-512 VNNI (the kernel body's float part), skipped\n");
    return false;
}

/* One case: raw rows, their packed groups, quantized activations, outputs. */
typedef struct mcase {
    bm_dtype type;
    int64_t n_in, n_out, n_tok;
    uint8_t *w, *packed, *xq;
    float *xd, *yref, *y;
    int32_t *xs;
    bm_mm_args a; /* a.w = packed, a.y = y */
    double *bound; /* per output: the float error bound vs yref */
} mcase;

static mcase make_case(bm_dtype type, int64_t n_in, int64_t n_out, int64_t n_tok) {
    mcase c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.n_in = n_in;
    c.n_out = n_out;
    c.n_tok = n_tok;
    size_t rb;
    cr_assert(bm_row_bytes(type, n_in, &rb));
    const bm_type_traits *tt = bm_type_traits_get(type);
    float *src = malloc(sizeof(float) * (size_t)(n_in * n_out));
    for (int64_t i = 0; i < n_in * n_out; i++) {
        const float v = frand();
        src[i] = i % 97 == 0 ? 8.0f * v : v; /* outliers: varied block scales */
    }
    c.w = malloc(rb * (size_t)n_out);
    for (int64_t r = 0; r < n_out; r++) tt->from_f32(src + r * n_in, c.w + r * rb, n_in);
    const size_t gb = bm_pack_group_bytes(type, n_in);
    const int64_t ng = (n_out + BM_PACK_ROWS - 1) / BM_PACK_ROWS;
    c.packed = aligned_alloc(64, gb * (size_t)ng);
    for (int64_t g = 0; g < ng; g++)
        bm_pack_group(type, c.w, rb, n_in, n_out, g, c.packed + (size_t)g * gb);
    /* Activations as bm_matmul makes them for packed kernels: signed codes. */
    float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
    for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = frand();
    const int64_t nb = n_in / BM_QK;
    c.xq = malloc((size_t)(n_tok * n_in));
    c.xd = malloc(sizeof(float) * (size_t)(n_tok * nb));
    c.xs = malloc(sizeof(int32_t) * (size_t)(n_tok * nb));
    c.yref = malloc(sizeof(float) * (size_t)(n_tok * n_out));
    c.y = malloc(sizeof(float) * (size_t)(n_tok * n_out));
    c.bound = malloc(sizeof(double) * (size_t)(n_tok * n_out));
    c.a.row_bytes = rb;
    c.a.n_in = n_in;
    c.a.n_tok = n_tok;
    c.a.xq = c.xq;
    c.a.xd = c.xd;
    c.a.xs = c.xs;
    c.a.ldq = n_in;
    c.a.ldd = nb;
    c.a.ldy = n_out;
    bm_act_q8_ref(x, n_in, 0, n_tok, &c.a, false);
    c.a.w = c.w;
    c.a.y = c.yref;
    bm_mm_q8_ref(type, &c.a, false, 0, n_out);
    /* Bound of the packed VNNI test: (nb + 8) 2u (2u: the scale product and the fma) times
     * sum_b |d_w d_x isum_b|, estimated by sum |w^ x^| over the dequantized values. */
    float *deq = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t r = 0; r < n_out; r++) {
        tt->to_f32(c.w + r * rb, deq, n_in);
        for (int64_t t = 0; t < n_tok; t++) {
            double qmag = 0;
            for (int64_t i = 0; i < n_in; i++)
                qmag += fabs((double)deq[i] * c.xd[t * nb + i / BM_QK] *
                             (int8_t)c.xq[t * n_in + i]);
            c.bound[t * n_out + r] = 2.0 * ((double)nb + 8) * 2 * U * qmag + 1e-30;
        }
    }
    free(deq);
    free(src);
    free(x);
    c.a.w = c.packed;
    c.a.y = c.y;
    return c;
}

static void free_case(mcase *c) {
    free(c->w);
    free(c->packed);
    free(c->xq);
    free(c->xd);
    free(c->xs);
    free(c->yref);
    free(c->y);
    free(c->bound);
}

/* Runs fn on rows [r0, r1) of c into y (NaN-filled first, so unwritten outputs show). */
static void run(mcase *c, bm_mm_fn fn, float *y, int64_t r0, int64_t r1) {
    for (int64_t i = 0; i < c->n_tok * c->n_out; i++) y[i] = NAN;
    bm_mm_args a = c->a;
    a.y = y;
    fn(&a, r0, r1);
}

/* Every check of one kernel triple (emulated or real) over all shapes; returns the worst
 * error / bound. emu: also check the tile work counted by the emulator. */
static double check_kernels(const bm_mm_fn *fns, bool emu) {
    double worst = 0;
    int n_cases = 0;
    for (int ti = 0; ti < 3; ti++) {
        double tworst = 0;
        for (size_t i = 0; i < sizeof N_IN / sizeof N_IN[0]; i++)
            for (size_t o = 0; o < sizeof N_OUT / sizeof N_OUT[0]; o++)
                for (size_t j = 0; j < sizeof N_TOK / sizeof N_TOK[0]; j++) {
                    const int64_t n_in = N_IN[i], n_out = N_OUT[o], n_tok = N_TOK[j];
                    if (n_in > 1000 && n_out > 33) continue; /* keep the emulator quick */
                    mcase c = make_case(TYPES[ti], n_in, n_out, n_tok);
                    const int64_t nb = n_in / BM_QK, ng = (n_out + 15) / 16;
                    amx_emu_state before = amx_emu;
                    run(&c, fns[ti], c.y, 0, n_out);
                    if (emu) {
                        /* One dot product per block, row group and full token tile; every
                         * configuration released. */
                        cr_assert_eq(amx_emu.n_dp - before.n_dp, nb * ng * (n_tok / 16),
                                     "%s n_tok=%ld: %ld tile dot products",
                                     bm_dtype_name(TYPES[ti]), (long)n_tok,
                                     amx_emu.n_dp - before.n_dp);
                        cr_assert_eq(amx_emu.n_cfg - before.n_cfg, n_tok >= 16 ? 1 : 0);
                        cr_assert_eq(amx_emu.n_release - before.n_release, n_tok >= 16 ? 1 : 0);
                        cr_assert(!amx_emu.configured);
                    }
                    for (int64_t q = 0; q < n_tok * n_out; q++) {
                        const double e = fabs((double)c.y[q] - c.yref[q]) / c.bound[q];
                        cr_assert(e <= 1.0, "%s n_in=%ld n_out=%ld n_tok=%ld t=%ld r=%ld: "
                                  "got %.9g ref %.9g", bm_dtype_name(TYPES[ti]), (long)n_in,
                                  (long)n_out, (long)n_tok, (long)(q / n_out), (long)(q % n_out),
                                  c.y[q], c.yref[q]);
                        if (e > tworst) tworst = e;
                    }
                    /* Bitwise the VNNI packed kernel's result. */
                    float *yv = malloc(sizeof(float) * (size_t)(n_tok * n_out));
                    run(&c, VNNI[ti], yv, 0, n_out);
                    cr_assert(!memcmp(yv, c.y, sizeof(float) * (size_t)(n_tok * n_out)),
                              "%s n_in=%ld n_out=%ld n_tok=%ld: differs from the VNNI kernel",
                              bm_dtype_name(TYPES[ti]), (long)n_in, (long)n_out, (long)n_tok);
                    /* Row chunks of one group each (as bm_matmul's chunks) give the same. */
                    for (int64_t r = 0; r < n_out; r += 16) {
                        bm_mm_args a = c.a;
                        a.y = yv;
                        fns[ti](&a, r, r + 16 < n_out ? r + 16 : n_out);
                    }
                    cr_assert(!memcmp(yv, c.y, sizeof(float) * (size_t)(n_tok * n_out)));
                    /* Batch invariance: each token alone gives its row of the batch. */
                    if (n_tok > 1 && n_in <= 256)
                        for (int64_t t = 0; t < n_tok; t++) {
                            bm_mm_args a = c.a;
                            a.n_tok = 1;
                            a.xq += t * a.ldq;
                            a.xd += t * a.ldd;
                            a.xs += t * a.ldd;
                            a.y = yv;
                            fns[ti](&a, 0, n_out);
                            cr_assert(!memcmp(yv, c.y + t * n_out, sizeof(float) * (size_t)n_out),
                                      "%s n_tok=%ld: token %ld differs alone",
                                      bm_dtype_name(TYPES[ti]), (long)n_tok, (long)t);
                        }
                    free(yv);
                    free_case(&c);
                    n_cases++;
                }
        fprintf(stderr, "amx %s %s: worst error / bound = %.3g\n", emu ? "emulated" : "real",
                bm_dtype_name(TYPES[ti]), tworst);
        if (tworst > worst) worst = tworst;
    }
    cr_assert(n_cases > 0);
    return worst;
}

Test(amx, emulated_kernels_match_reference_and_vnni) {
    if (!have_vnni()) return;
    const double w = check_kernels(EMU, true);
    cr_assert(w > 0, "errors all zero: the bound check would not see anything");
}

/* The tile work of a case that fills two token tiles: every dot product's operands as the
 * kernel claims (A = 16 tokens x 32 codes, B = 8 quads x 16 rows, C = 16 x 16 int32). */
Test(amx, emulated_tiles_have_the_documented_shapes) {
    if (!have_vnni()) return;
    mcase c = make_case(BM_Q8_0, 64, 17, 32);
    const long n0 = amx_emu.n_dp;
    run(&c, emu_q8_0, c.y, 0, 17);
    cr_assert_eq(amx_emu.n_dp - n0, 2 * 2 * 2); /* blocks x groups x token tiles */
    free_case(&c);
    uint8_t cfg[64];
    kernel_config(cfg);
    amx_emu_loadconfig(cfg);
    for (int s = 0; s < 2; s++) {
        cr_assert_eq(amx_emu.rows[3 * s], 16);
        cr_assert_eq(amx_emu.colsb[3 * s], 32);
        cr_assert_eq(amx_emu.rows[3 * s + 1], 8);
        cr_assert_eq(amx_emu.colsb[3 * s + 1], 64);
        cr_assert_eq(amx_emu.rows[3 * s + 2], 16);
        cr_assert_eq(amx_emu.colsb[3 * s + 2], 64);
    }
    amx_emu_release();
}

/* The emulated TDPBSUD / TDPBSSD against their definition, on random full tiles with a
 * non-zero accumulator, and TILELOADD / TILESTORED strides. */
Test(amx, emulator_matches_instruction_definition) {
    uint8_t cfg[64] = {1};
    const uint16_t c64 = 64;
    for (int t = 0; t < 3; t++) {
        memcpy(cfg + 16 + 2 * t, &c64, 2);
        cfg[48 + t] = 16;
    }
    amx_emu_loadconfig(cfg);
    uint8_t A[16][80], B[16][64];
    int32_t C0[16][16], C[16][20];
    for (int m = 0; m < 16; m++)
        for (int k = 0; k < 80; k++) A[m][k] = (uint8_t)(frand() * 256);
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 64; n++) B[k][n] = (uint8_t)(frand() * 256);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) C0[m][n] = (int32_t)(frand() * 1e6);
    for (int sb = 0; sb < 2; sb++) {
        amx_emu_loadd(0, A, 80);
        amx_emu_loadd(1, B, 64);
        amx_emu_loadd(2, C0, 64);
        amx_emu_dp(true, sb, 2, 0, 1);
        memset(C, 0x55, sizeof C);
        amx_emu_stored(2, C, 80);
        for (int m = 0; m < 16; m++) {
            for (int n = 0; n < 16; n++) {
                int64_t want = C0[m][n];
                for (int k = 0; k < 64; k++)
                    want += (int8_t)A[m][k] * (int64_t)(sb ? (int8_t)B[k / 4][4 * n + k % 4]
                                                           : B[k / 4][4 * n + k % 4]);
                cr_assert_eq(C[m][n], (int32_t)want, "m=%d n=%d sb=%d", m, n, sb);
            }
            for (int n = 16; n < 20; n++) cr_assert_eq(C[m][n], 0x55555555); /* stride gap */
        }
    }
    amx_emu_release();
    cr_assert(!amx_emu.configured);
}

/* Uses the hardware faults on, as aborts. */
Test(amx, emulator_rejects_17_rows, .signal = SIGABRT) {
    uint8_t cfg[64] = {1};
    cfg[16] = 64;
    cfg[48] = 17;
    amx_emu_loadconfig(cfg);
}

Test(amx, emulator_rejects_k_mismatch, .signal = SIGABRT) {
    uint8_t cfg[64] = {1};
    for (int t = 0; t < 3; t++) {
        cfg[16 + 2 * t] = 64;
        cfg[48 + t] = t == 1 ? 4 : 16; /* B has 4 rows, A's colsb / 4 = 16 */
    }
    amx_emu_loadconfig(cfg);
    amx_emu_dp(true, false, 2, 0, 1);
}

Test(amx, emulator_rejects_unconfigured_load, .signal = SIGABRT) {
    uint8_t buf[64] = {0};
    amx_emu_loadd(0, buf, 64);
}

/* A kernel off by one unit in the last place in one output. */
static void nudged_q4_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    emu_q4_0(a, r0, r1);
    if (r0 == 0 && a->n_tok > 3) a->y[3 * a->ldy + 1] = nextafterf(a->y[3 * a->ldy + 1], INFINITY);
}

/* The startup self-check passes the emulated kernels and fails broken ones: the wrong
 * signedness (TDPBSSD for Q8_0, whose codes >= 128 turn negative; TDPBSUD for Q4_0 / Q5_0,
 * whose negative values turn >= 128), each type alone, and one output 1 ulp off. */
Test(amx, selfcheck_accepts_good_and_rejects_broken_kernels) {
    if (!have_vnni()) return;
    cr_assert(bm_amx_selfcheck(emu_q8_0, emu_q4_0, emu_q5_0));
    cr_assert(bm_amx_selfcheck(bm_mmp_q8_0_vnni, bm_mmp_q4_0_vnni, bm_mmp_q5_0_vnni));
    amx_emu.swap_sign = true;
    cr_assert(!bm_amx_selfcheck(emu_q8_0, bm_mmp_q4_0_vnni, bm_mmp_q5_0_vnni));
    cr_assert(!bm_amx_selfcheck(bm_mmp_q8_0_vnni, emu_q4_0, bm_mmp_q5_0_vnni));
    cr_assert(!bm_amx_selfcheck(bm_mmp_q8_0_vnni, bm_mmp_q4_0_vnni, emu_q5_0));
    amx_emu.swap_sign = false;
    cr_assert(!bm_amx_selfcheck(emu_q8_0, nudged_q4_0, emu_q5_0));
    cr_assert(!bm_amx_selfcheck(emu_q8_0, emu_q4_0, NULL));
}

/* The deliberately wrong signedness is caught by the reference comparison too, in most of the
 * outputs of the AMX tile (tokens 0..15) and in none of the VNNI token 16. */
Test(amx, wrong_signedness_fails_the_reference_bound) {
    if (!have_vnni()) return;
    for (int ti = 0; ti < 3; ti++) {
        mcase c = make_case(TYPES[ti], 256, 33, 17);
        amx_emu.swap_sign = true;
        run(&c, EMU[ti], c.y, 0, 33);
        amx_emu.swap_sign = false;
        int bad = 0, bad_last = 0;
        for (int64_t q = 0; q < 17 * 33; q++) {
            const bool off = fabs((double)c.y[q] - c.yref[q]) > c.bound[q];
            bad += off;
            bad_last += off && q >= 16 * 33;
        }
        cr_assert(bad > 16 * 33 / 2 && bad_last == 0, "%s: %d of %d outputs off, %d in VNNI's",
                  bm_dtype_name(TYPES[ti]), bad, 16 * 33, bad_last);
        free_case(&c);
    }
}

/* Real AMX: the dispatcher's decision, and on an AMX CPU the real kernels through every check
 * and bitwise equal to the emulated ones. A kernel that failed the startup self-check must have
 * been disabled (vnni in use, so other tests and users get right answers and CI stays green);
 * this is reported loudly, and with BM_AMX_STRICT=1 the real kernels are checked anyway so the
 * failure shows where they go wrong. */
Test(amx, real_kernels_when_the_cpu_has_amx) {
    const int lvl = bm_kernels_max_level(); /* runs the probe */
    const int st = bm_amx_state();
    const char *strict = getenv("BM_AMX_STRICT");
    fprintf(stderr, "amx: %s\n", bm_amx_state_name(st));
    if (st != BM_AMX_OK) {
        cr_assert(lvl < BM_LVL_AMX);
        cr_assert(!bm_kernels_at(BM_LVL_AMX));
        if (st == BM_AMX_CHECK_FAILED) {
            fprintf(stderr, "amx: WARNING: the AMX kernels FAILED the self-check on this CPU "
                            "and are disabled; they need fixing\n");
            if (strict && *strict == '1' && have_vnni()) check_kernels(REAL, false);
        } else {
            fprintf(stderr, "amx: real AMX kernels not run (%s)\n", bm_amx_state_name(st));
        }
        return;
    }
    cr_assert_eq(lvl, BM_LVL_AMX);
    const bm_kernels *k = bm_kernels_at(BM_LVL_AMX);
    cr_assert(k->mmp[BM_Q8_0] == bm_mmp_q8_0_amx && k->mmp[BM_Q4_0] == bm_mmp_q4_0_amx &&
              k->mmp[BM_Q5_0] == bm_mmp_q5_0_amx);
    check_kernels(REAL, false);
    for (int ti = 0; ti < 3; ti++) {
        mcase c = make_case(TYPES[ti], 256, 33, 33);
        float *ye = malloc(sizeof(float) * 33 * 33);
        run(&c, REAL[ti], c.y, 0, 33);
        run(&c, EMU[ti], ye, 0, 33);
        cr_assert(!memcmp(ye, c.y, sizeof(float) * 33 * 33), "%s: real != emulated",
                  bm_dtype_name(TYPES[ti]));
        free(ye);
        free_case(&c);
    }
}
