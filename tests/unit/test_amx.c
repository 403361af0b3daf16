/* Tests of the AMX int8 packed kernels (src/tensor/x86/mmp_amx.h) and, at the end, of the
 * AMX-BF16 kernel (mmp_amx_bf16.h) and the emulated TDPBF16PS. The kernel body is compiled
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
#include "tensor/x86/mmp_amx_bf16.h"

static void emu_q8_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 0, bm_mmp_q8_0_vnni);
}
static void emu_q4_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 1, bm_mmp_q4_0_vnni);
}
static void emu_q5_0(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 2, bm_mmp_q5_0_vnni);
}
static void emu_bf16(const bm_mm_args *a, int64_t r0, int64_t r1) { amxb_drive(a, r0, r1); }
/* The kernel's tile configuration (amx_config is always-inline for AVX-512 callers). */
static void kernel_config(uint8_t cfg[64]) { amx_config(cfg); }
#pragma GCC pop_options

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

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
    float *xm;
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
    c.xm = malloc(sizeof(float) * (size_t)(n_tok * nb));
    c.yref = malloc(sizeof(float) * (size_t)(n_tok * n_out));
    c.y = malloc(sizeof(float) * (size_t)(n_tok * n_out));
    c.bound = malloc(sizeof(double) * (size_t)(n_tok * n_out));
    c.a.row_bytes = rb;
    c.a.n_in = n_in;
    c.a.n_tok = n_tok;
    c.a.xq = c.xq;
    c.a.xd = c.xd;
    c.a.xs = c.xs;
    c.a.xm = c.xm;
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
    free(c->xm);
    free(c->yref);
    free(c->y);
    free(c->bound);
}

/* Runs fn with arguments a on rows [r0, r1) into y, its n outputs NaN-filled first so that
 * unwritten ones show. */
static void run_args(bm_mm_args a, bm_mm_fn fn, float *y, int64_t n, int64_t r0, int64_t r1) {
    for (int64_t i = 0; i < n; i++) y[i] = NAN;
    a.y = y;
    fn(&a, r0, r1);
}

static void run(mcase *c, bm_mm_fn fn, float *y, int64_t r0, int64_t r1) {
    run_args(c->a, fn, y, c->n_tok * c->n_out, r0, r1);
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

/* ---- AMX-BF16 -------------------------------------------------------------------------- */

/* aligned_alloc wants a size that is a multiple of the alignment. */
static void *amalloc(size_t n) { return aligned_alloc(64, (n + 63) & ~(size_t)63); }

static float bf16_of(float v) { return bm_bf16_to_f32(bm_f32_to_bf16(v)); }
static float ftz(float v) { return fpclassify(v) == FP_SUBNORMAL ? copysignf(0.0f, v) : v; }

/* One BF16 case: row-major bf16 weights [n_out][n_in], their packed groups, f32 activations at
 * an address 4 bytes past a 64-byte boundary, y with row stride n_out + 3 and 4 bytes off. */
typedef struct bcase {
    int64_t n_in, n_out, n_tok, ldy;
    uint16_t *w;
    uint8_t *packed;
    float *xbuf, *x, *ybuf, *y;
    bm_mm_args a;
} bcase;

static bcase make_bcase(int64_t n_in, int64_t n_out, int64_t n_tok) {
    bcase c;
    memset(&c, 0, sizeof c);
    c.n_in = n_in;
    c.n_out = n_out;
    c.n_tok = n_tok;
    c.ldy = n_out + 3;
    c.w = malloc(sizeof(uint16_t) * (size_t)(n_in * n_out));
    for (int64_t i = 0; i < n_in * n_out; i++) {
        const float v = frand();
        c.w[i] = bm_f32_to_bf16(i % 89 == 0 ? 16.0f * v : v);
    }
    const size_t gb = bm_pack_group_bytes(BM_BF16, n_in);
    cr_assert_eq(gb, (size_t)((n_in + 31) / 32) * 1024);
    const int64_t ng = (n_out + 15) / 16;
    c.packed = amalloc(gb * (size_t)ng);
    for (int64_t g = 0; g < ng; g++)
        bm_pack_group(BM_BF16, (const uint8_t *)c.w, 2 * (size_t)n_in, n_in, n_out, g,
                      c.packed + (size_t)g * gb);
    c.xbuf = amalloc(sizeof(float) * (size_t)(n_tok * n_in + 16));
    c.x = c.xbuf + 1;
    for (int64_t i = 0; i < n_tok * n_in; i++) c.x[i] = frand();
    c.ybuf = amalloc(sizeof(float) * (size_t)(n_tok * c.ldy + 16));
    c.y = c.ybuf + 1;
    c.a.w = c.packed;
    c.a.row_bytes = 2 * (size_t)n_in;
    c.a.n_in = n_in;
    c.a.n_tok = n_tok;
    c.a.x = c.x;
    c.a.y = c.y;
    c.a.ldy = c.ldy;
    return c;
}

static void free_bcase(bcase *c) {
    free(c->w);
    free(c->packed);
    free(c->xbuf);
    free(c->ybuf);
}

static void brun(bcase *c, bm_mm_fn fn, float *y, int64_t r0, int64_t r1) {
    run_args(c->a, fn, y, c->n_tok * c->ldy, r0, r1);
}

/* The kernel as the SDM composes it, written on the logical matrices (not the tile layout):
 * per 32-column block kb in order, an even and an odd chain of 16 fused multiply-adds from 0
 * (DAZ, FTZ), their sum, added to the running result. */
static float sdm_model(const bcase *c, int64_t t, int64_t r) {
    float acc = 0;
    for (int64_t kb = 0; kb < (c->n_in + 31) / 32; kb++) {
        float ch[2] = {0, 0};
        for (int p = 0; p < 16; p++)
            for (int j = 0; j < 2; j++) {
                const int64_t k = 32 * kb + 2 * p + j;
                const float xv = k < c->n_in ? ftz(bf16_of(c->x[t * c->n_in + k])) : 0.0f;
                const float wv = k < c->n_in ? ftz(bm_bf16_to_f32(c->w[r * c->n_in + k])) : 0.0f;
                ch[j] = ftz(fmaf(xv, wv, ch[j]));
            }
        acc = ftz(acc + ftz(ch[0] + ch[1]));
    }
    return acc;
}

/* Every check of the bf16 kernel fn over the STYLE sizes; emu: the emulator's counters too.
 * Bitwise equality with the SDM composition is asserted for the emulator and, on real AMX,
 * only with BM_AMX_STRICT=1 (the hardware's summation inside one TDPBF16PS may differ from the
 * SDM's pseudocode; the bounds, batch and chunk invariance are asserted either way). */
static void check_bf16(bm_mm_fn fn, bool emu) {
    const char *env = getenv("BM_AMX_STRICT");
    const bool strict = emu || (env && *env == '1');
    long n_sdm_off = 0;
    static const int64_t NI[] = {1, 7, 31, 32, 33, 64, 4097};
    static const int64_t NO[] = {1, 15, 16, 17, 33};
    static const int64_t NT[] = {1, 2, 16, 17, 33};
    double worst = 0, worst_x = 0;
    int n_cases = 0;
    for (size_t i = 0; i < sizeof NI / sizeof NI[0]; i++)
        for (size_t o = 0; o < sizeof NO / sizeof NO[0]; o++)
            for (size_t j = 0; j < sizeof NT / sizeof NT[0]; j++) {
                const int64_t n_in = NI[i], n_out = NO[o], n_tok = NT[j];
                const int64_t nkb = (n_in + 31) / 32;
                bcase c = make_bcase(n_in, n_out, n_tok);
                const amx_emu_state before = amx_emu;
                brun(&c, fn, c.y, 0, n_out);
                if (emu) {
                    cr_assert_eq(amx_emu.n_dpbf16 - before.n_dpbf16,
                                 nkb * ((n_tok + 15) / 16) * ((n_out + 15) / 16),
                                 "n_in=%ld n_out=%ld n_tok=%ld: %ld tile dot products",
                                 (long)n_in, (long)n_out, (long)n_tok,
                                 amx_emu.n_dpbf16 - before.n_dpbf16);
                    cr_assert_eq(amx_emu.n_cfg - before.n_cfg, 1);
                    cr_assert_eq(amx_emu.n_release - before.n_release, 1);
                    cr_assert(!amx_emu.configured);
                }
                /* A bound per output, as tests/unit/test_kernels.c's for vdpbf16ps: every
                 * product of two bf16 is exact in float, each term then goes through at most
                 * d = 16 (its chain) + 1 (even + odd) + nkb (the running sum) roundings. */
                const double d = 16 + 1 + (double)nkb, g = d * U / (1 - d * U);
                for (int64_t t = 0; t < n_tok; t++)
                    for (int64_t r = 0; r < n_out; r++) {
                        const float got = c.y[t * c.ldy + r];
                        const float want = sdm_model(&c, t, r);
                        if (memcmp(&got, &want, 4)) n_sdm_off++;
                        cr_assert(!strict || !memcmp(&got, &want, 4), "n_in=%ld n_out=%ld "
                                  "n_tok=%ld t=%ld r=%ld: %.9g, the SDM composition gives %.9g",
                                  (long)n_in, (long)n_out, (long)n_tok, (long)t, (long)r, got,
                                  want);
                        double s = 0, mag = 0, sx = 0, magx = 0;
                        for (int64_t k = 0; k < n_in; k++) {
                            const double wv = bm_bf16_to_f32(c.w[r * n_in + k]);
                            const double xv = c.x[t * n_in + k];
                            s += wv * bf16_of((float)xv);
                            mag += fabs(wv * bf16_of((float)xv));
                            sx += wv * xv;
                            magx += fabs(wv * xv);
                        }
                        const double e = fabs(got - s) / (g * mag + 1e-30);
                        cr_assert(e <= 1.0, "n_in=%ld n_tok=%ld t=%ld r=%ld: %.9g vs %.9g "
                                  "(bf16 x, double)", (long)n_in, (long)n_tok, (long)t, (long)r,
                                  got, s);
                        /* vs the f32 activations: bf16 rounding moves each by <= 2^-8 |x|. */
                        const double ex =
                            fabs(got - sx) / (g * mag + 0x1p-8 * magx + 1e-30);
                        cr_assert(ex <= 1.0, "n_in=%ld t=%ld r=%ld: %.9g vs f32 product %.9g",
                                  (long)n_in, (long)t, (long)r, got, sx);
                        if (e > worst) worst = e;
                        if (ex > worst_x) worst_x = ex;
                    }
                for (int64_t t = 0; t < n_tok; t++) /* the gaps of ldy left alone */
                    for (int64_t r = n_out; r < c.ldy; r++) cr_assert(isnan(c.y[t * c.ldy + r]));
                float *y2 = amalloc(sizeof(float) * (size_t)(n_tok * c.ldy + 16));
                /* Row chunks of one group each (bm_matmul's chunks) give the same bits. */
                for (int64_t i2 = 0; i2 < n_tok * c.ldy; i2++) y2[i2] = NAN;
                for (int64_t r = 0; r < n_out; r += 16) {
                    bm_mm_args a = c.a;
                    a.y = y2;
                    fn(&a, r, r + 16 < n_out ? r + 16 : n_out);
                }
                cr_assert(!memcmp(y2, c.y, sizeof(float) * (size_t)(n_tok * c.ldy - 3)),
                          "n_in=%ld n_out=%ld n_tok=%ld: row chunks differ", (long)n_in,
                          (long)n_out, (long)n_tok);
                /* Batch invariance: each token alone gives its row of the batch bitwise. */
                if (n_tok > 1)
                    for (int64_t t = 0; t < n_tok; t++) {
                        bm_mm_args a = c.a;
                        a.n_tok = 1;
                        a.x = c.x + t * n_in;
                        a.y = y2;
                        fn(&a, 0, n_out);
                        cr_assert(!memcmp(y2, c.y + t * c.ldy, sizeof(float) * (size_t)n_out),
                                  "n_in=%ld n_out=%ld n_tok=%ld: token %ld differs alone",
                                  (long)n_in, (long)n_out, (long)n_tok, (long)t);
                    }
                free(y2);
                free_bcase(&c);
                n_cases++;
            }
    fprintf(stderr, "amx %s bf16: %d cases, worst error / bound = %.3g (bf16 x), %.3g (f32 x), "
            "%ld outputs not bitwise the SDM composition\n", emu ? "emulated" : "real", n_cases,
            worst, worst_x, n_sdm_off);
    cr_assert(worst > 0 && worst_x > 0, "errors all zero: the bound checks would see nothing");
}

Test(amx, bf16_emulated_kernel_matches_sdm_reference_and_batch_invariant) {
    if (!have_vnni()) return;
    check_bf16(emu_bf16, true);
}

/* The packed BF16 layout: every column of every row read back by bm_pack_get_block (the exact
 * inverse; tied heads read embeddings through it), B-tile position as kernels.h documents,
 * padding columns and rows zero. */
Test(amx, bf16_pack_layout_and_exact_inverse) {
    static const int64_t NI[] = {1, 2, 7, 31, 32, 33, 65};
    for (size_t ii = 0; ii < sizeof NI / sizeof NI[0]; ii++) {
        const int64_t n_in = NI[ii], n_out = 19, nkb = (n_in + 31) / 32;
        uint16_t *w = malloc(2 * (size_t)(n_in * n_out));
        for (int64_t i = 0; i < n_in * n_out; i++) w[i] = (uint16_t)(0x3F80 + i % 30000 + 1);
        const size_t gb = bm_pack_group_bytes(BM_BF16, n_in);
        uint8_t *p = malloc(2 * gb);
        for (int g = 0; g < 2; g++)
            bm_pack_group(BM_BF16, (const uint8_t *)w, 2 * (size_t)n_in, n_in, n_out, g,
                          p + g * gb);
        for (int64_t r = 0; r < 32; r++)
            for (int64_t k = 0; k < 32 * nkb; k++) {
                const uint8_t *grp = p + (size_t)(r / 16) * gb;
                uint16_t at;
                memcpy(&at, grp + (k / 32) * 1024 + ((k % 32 / 2) * 16 + r % 16) * 4 + 2 * (k % 2),
                       2);
                const uint16_t want = r < n_out && k < n_in ? w[r * n_in + k] : 0;
                cr_assert_eq(at, want, "n_in=%ld r=%ld k=%ld", (long)n_in, (long)r, (long)k);
                if (r < n_out && k < n_in) {
                    uint16_t back = 0;
                    bm_pack_get_block(BM_BF16, grp, n_in, r % 16, k, (uint8_t *)&back);
                    cr_assert_eq(back, want);
                }
            }
        free(w);
        free(p);
    }
    cr_assert_eq(bm_pack_group_bytes(BM_BF16, 0), 0);
}

/* BF16 tensors are packed only where the level in use has a packed BF16 kernel: at every other
 * level they stay the mapped original bytes (no second copy in memory). */
Test(amx, bf16_packed_only_with_a_packed_kernel) {
    const int saved = bm_kernels_get()->level;
    uint16_t data[32 * 48] = {0};
    bm_tensor t;
    memset(&t, 0, sizeof t);
    t.name[0] = 'w';
    t.type = BM_BF16;
    t.n_bytes = sizeof data;
    t.n_dims = 2;
    t.ne[0] = 48;
    t.ne[1] = 32;
    t.data = data;
    int levels = 0;
    for (int l = 0; l < BM_LVL_COUNT; l++) {
        const bm_kernels *k = bm_kernels_at(l);
        if (!k) continue;
        cr_assert(bm_kernels_set_level(l));
        cr_assert_eq(bm_tensor_packable(&t), k->mmp[BM_BF16] != NULL, "level %s",
                     bm_kernels_level_name(l));
        if (k->mmp[BM_BF16]) {
            cr_assert(l == BM_LVL_AMX && k->mmp[BM_BF16] == bm_mmp_bf16_amx);
            cr_assert_eq(bm_amx_bf16_state(), BM_AMX_OK);
        }
        levels++;
    }
    cr_assert(bm_kernels_set_level(saved));
    cr_assert(levels > 0);
}

/* Fills A, B (bf16 bit patterns) with normal values 2^-20 .. 2^20 and a few subnormals and
 * zeros, C0 with floats including subnormals; configures three 16 x 64 tiles. */
static void bf16_tiles(uint16_t A[16][32], uint16_t B[16][32], float C0[16][16]) {
    uint8_t cfg[64] = {1};
    const uint16_t c64 = 64;
    for (int t = 0; t < 3; t++) {
        memcpy(cfg + 16 + 2 * t, &c64, 2);
        cfg[48 + t] = 16;
    }
    amx_emu_loadconfig(cfg);
    for (int i = 0; i < 16 * 32; i++) {
        uint16_t *v[2] = {&A[i / 32][i % 32], &B[i / 32][i % 32]};
        for (int s = 0; s < 2; s++) {
            const float f = ldexpf(frand(), (int)(frand() * 20));
            const int kind = (int)((frand() + 1) * 50);
            *v[s] = kind == 0 ? (uint16_t)(0x0001 + (i & 0x7F)) /* subnormal bf16 */
                    : kind == 1 ? 0 : bm_f32_to_bf16(f);
        }
    }
    for (int i = 0; i < 256; i++) {
        const float f = ldexpf(frand(), (int)(frand() * 30));
        C0[i / 16][i % 16] = i % 37 == 0 ? 1e-40f : f;
    }
}

/* The emulated TDPBF16PS against an independent numpy computation of the SDM definition
 * (tests/ref/amx_bf16_np.py via /usr/bin/python3), bit for bit, on random tiles with
 * subnormal inputs; and the data is such that the even/odd chains matter: one chain over all
 * products in pair order, straight into C (the intrinsics guide's shorter pseudocode), gives
 * other bits somewhere. */
Test(amx, bf16_emulator_matches_numpy_sdm_model) {
    uint16_t A[16][32], B[16][32];
    float C0[16][16], C[16][16];
    bf16_tiles(A, B, C0);
    amx_emu_loadd(0, A, 64);
    amx_emu_loadd(1, B, 64);
    amx_emu_loadd(2, C0, 64);
    amx_emu_dpbf16ps(2, 0, 1);
    amx_emu_stored(2, C, 64);
    amx_emu_release();
    int differ = 0;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float acc = ftz(C0[m][n]);
            for (int k = 0; k < 32; k++)
                acc = ftz(fmaf(ftz(bm_bf16_to_f32(A[m][k])),
                               ftz(bm_bf16_to_f32(B[k / 2][2 * n + k % 2])), acc));
            differ += memcmp(&acc, &C[m][n], 4) != 0;
        }
    cr_assert(differ > 0, "one chain gives the same bits everywhere: data too easy");
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "amx: /usr/bin/python3 missing, numpy check skipped\n");
        return;
    }
    const char *script = "tests/ref/amx_bf16_np.py";
    cr_assert(access(script, R_OK) == 0, "%s not found (run from the repository root)", script);
    char path[] = "/tmp/baimo-amx-bf16.XXXXXX";
    const int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    cr_assert(f && fwrite(A, 1, 1024, f) == 1024 && fwrite(B, 1, 1024, f) == 1024 &&
              fwrite(C0, 1, 1024, f) == 1024 && fwrite(C, 1, 1024, f) == 1024);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s 1>&2", script, path);
    const int rc = system(cmd);
    unlink(path);
    cr_assert_eq(rc, 0, "numpy model of TDPBF16PS disagrees with the emulator (see above)");
}

/* A hand-derived case from the SDM definition with exact values, one row and column, two pairs:
 * a = (2^20, 1 | -2^20, s), b = (2^20, 2^-24 | 2^20, 2^100), s = bf16 0x0001 (subnormal,
 * 2^-133). Even chain: 2^40, then 2^40 - 2^40 = 0; odd chain: 2^-24, then 2^-24 + s 2^100 =
 * 2^-24 (DAZ: s is 0; without it 2^-24 + 2^-33). Sum 2^-24, added to C0:
 *   C0 = 1: 1 + 2^-24 is a tie between 1 and 1 + 2^-23, RNE keeps 1;
 *   C0 = 1 + 2^-23: tie again, RNE goes up to 1 + 2^-22 (even);
 *   C0 = 2^-23: 1.5 * 2^-23 exactly (would be + 2^-33 without DAZ).
 * One chain in pair order (the intrinsics guide's shorter pseudocode) would give 1 + 2^40 ->
 * 2^40, + 2^-24 -> 2^40, - 2^40 -> 0: the SDM's split chains are what keep C0 + 2^-24. */
Test(amx, bf16_emulator_hand_case) {
    uint8_t cfg[64] = {1};
    const uint16_t c4 = 4, c8 = 8;
    memcpy(cfg + 16, &c4, 2); /* C: 1 row x 1 column */
    memcpy(cfg + 18, &c8, 2); /* A: 1 row x 2 pairs */
    memcpy(cfg + 20, &c4, 2); /* B: 2 pair rows x 1 column */
    cfg[48] = 1;
    cfg[49] = 1;
    cfg[50] = 2;
    amx_emu_loadconfig(cfg);
    const uint16_t A[4] = {bm_f32_to_bf16(0x1p20f), bm_f32_to_bf16(1.0f),
                           bm_f32_to_bf16(-0x1p20f), 0x0001};
    const uint16_t B[2][2] = {{bm_f32_to_bf16(0x1p20f), bm_f32_to_bf16(0x1p-24f)},
                              {bm_f32_to_bf16(0x1p20f), bm_f32_to_bf16(0x1p100f)}};
    const double c0s[3] = {1.0, 1.0 + 0x1p-23, 0x1p-23};
    const double want[3] = {1.0, 1.0 + 0x1p-22, 0x1.8p-23};
    for (int i = 0; i < 3; i++) {
        float c = (float)c0s[i];
        amx_emu_loadd(0, &c, 4);
        amx_emu_loadd(1, A, 8);
        amx_emu_loadd(2, B, 4);
        amx_emu_dpbf16ps(0, 1, 2);
        amx_emu_stored(0, &c, 4);
        cr_assert((double)c == want[i], "case %d: %a, want %a", i, c, want[i]);
    }
    amx_emu_release();
}

/* A kernel that truncates the activations to bf16 instead of rounding to nearest even. */
static void trunc_bf16(const bm_mm_args *a, int64_t r0, int64_t r1) {
    float *xt = malloc(sizeof(float) * (size_t)(a->n_tok * a->n_in));
    for (int64_t i = 0; i < a->n_tok * a->n_in; i++) {
        uint32_t u;
        memcpy(&u, &a->x[i], 4);
        u &= 0xFFFF0000u;
        memcpy(&xt[i], &u, 4);
    }
    bm_mm_args b = *a;
    b.x = xt;
    emu_bf16(&b, r0, r1);
    free(xt);
}
static void nudged_bf16(const bm_mm_args *a, int64_t r0, int64_t r1) {
    emu_bf16(a, r0, r1);
    if (r0 == 0 && a->n_tok > 16) a->y[16 * a->ldy + 17] = nextafterf(a->y[16 * a->ldy + 17], 0);
}

/* The startup self-check of the bf16 kernel: passes the emulated kernel, fails broken ones
 * (pair elements crossed, activations truncated, one output 1 ulp off, none). */
Test(amx, bf16_selfcheck_accepts_good_and_rejects_broken_kernels) {
    if (!have_vnni()) return;
    cr_assert(bm_amx_selfcheck_bf16(emu_bf16));
    amx_emu.swap_pair = true;
    cr_assert(!bm_amx_selfcheck_bf16(emu_bf16));
    amx_emu.swap_pair = false;
    cr_assert(!bm_amx_selfcheck_bf16(trunc_bf16));
    cr_assert(!bm_amx_selfcheck_bf16(nudged_bf16));
    cr_assert(!bm_amx_selfcheck_bf16(NULL));
}

/* On a CPU with AMX-BF16 whose kernel passed the self-check: the real kernel through every
 * check; whether it is bitwise the emulated one is reported (asserted with BM_AMX_STRICT=1). Otherwise the amx level must not use it. */
Test(amx, bf16_real_kernel_when_the_cpu_has_amx_bf16) {
    bm_kernels_max_level();
    const int st = bm_amx_bf16_state();
    const bm_kernels *k = bm_kernels_at(BM_LVL_AMX);
    if (st != BM_AMX_OK) {
        fprintf(stderr, "amx: real bf16 kernel not run (%s)\n",
                st == BM_AMX_NO_CPU ? "no AMX level or no AMX-BF16" : bm_amx_state_name(st));
        cr_assert(!k || k->mmp[BM_BF16] == NULL);
        if (st == BM_AMX_CHECK_FAILED)
            fprintf(stderr, "amx: WARNING: the AMX-BF16 kernel FAILED the self-check on this "
                            "CPU and is disabled; it needs fixing\n");
        return;
    }
    cr_assert(k && k->mmp[BM_BF16] == bm_mmp_bf16_amx);
    check_bf16(bm_mmp_bf16_amx, false);
    bcase c = make_bcase(4097, 33, 33);
    float *ye = malloc(sizeof(float) * (size_t)(33 * c.ldy));
    brun(&c, bm_mmp_bf16_amx, c.y, 0, 33);
    brun(&c, emu_bf16, ye, 0, 33);
    const bool same = !memcmp(ye, c.y, sizeof(float) * (size_t)(33 * c.ldy - 3));
    fprintf(stderr, "amx: real bf16 kernel %s the emulated one bitwise\n",
            same ? "equals" : "DIFFERS FROM");
    const char *env = getenv("BM_AMX_STRICT");
    cr_assert(same || !(env && *env == '1'), "real != emulated");
    free(ye);
    free_bcase(&c);
}
