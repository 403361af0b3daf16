/* Unit tests of the dtype layer: traits and row sizes against the GGML block sizes, reference
 * quantize -> dequantize round trips with per-type relative RMS error bounds on N(0,1) data, zero /
 * constant / extreme blocks, hand-decoded blocks, unaligned buffers, and exhaustive f16 / bf16
 * conversion checks. Bit-exactness against numpy is in tests/ref/test_quant.py. */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bm_dtype QTYPES[] = {BM_Q4_0, BM_Q4_1, BM_Q5_0, BM_Q5_1, BM_Q8_0, BM_Q8_1,
                                  BM_Q2_K, BM_Q3_K, BM_Q4_K, BM_Q5_K, BM_Q6_K, BM_Q8_K};
#define N_QTYPES (int)(sizeof QTYPES / sizeof QTYPES[0])

/* Relative RMS error bounds, sqrt(sum (y-x)^2 / sum x^2), on N(0,1) rows: measured values (worst of
 * seeds 1..4 x rows of 256, 768 and 4096) times ~1.3. Measured: q4_0 0.0944, q4_1 0.0811, q5_0
 * 0.0489, q5_1 0.0391, q8_0 0.0056, q8_1 0.0056, q2_K 0.2753, q3_K 0.1494, q4_K 0.0720, q5_K
 * 0.0375, q6_K 0.0189, q8_K 0.0076. */
static double rms_bound(bm_dtype t) {
    switch (t) {
    case BM_Q4_0: return 0.123;
    case BM_Q4_1: return 0.105;
    case BM_Q5_0: return 0.064;
    case BM_Q5_1: return 0.051;
    case BM_Q8_0: return 0.0073;
    case BM_Q8_1: return 0.0073;
    case BM_Q2_K: return 0.36;
    case BM_Q3_K: return 0.194;
    case BM_Q4_K: return 0.095;
    case BM_Q5_K: return 0.051;
    case BM_Q6_K: return 0.0245;
    case BM_Q8_K: return 0.0099;
    default: return 0;
    }
}

/* Quantizes x[0..n) with t's reference quantizer, dequantizes into y; returns the relative RMS
 * error. */
static double round_trip(bm_dtype t, const float *x, float *y, int64_t n) {
    const bm_type_traits *tt = bm_type_traits_get((int)t);
    size_t rb;
    cr_assert(tt && bm_row_bytes(t, n, &rb));
    uint8_t *q = malloc(rb);
    tt->from_f32(x, q, n);
    tt->to_f32(q, y, n);
    free(q);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        sx += (double)x[i] * x[i];
    }
    return sx > 0 ? sqrt(se / sx) : sqrt(se);
}

static void fill_normal(float *x, int64_t n, uint64_t seed, float scale) {
    bm_rng r;
    bm_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = bm_rng_normal(&r) * scale;
}

Test(quant, traits_match_ggml_block_sizes) {
    static const struct {
        bm_dtype t;
        const char *name;
        int elems;
        size_t bytes;
    } want[] = {
        {BM_F32, "f32", 1, 4},       {BM_F16, "f16", 1, 2},       {BM_BF16, "bf16", 1, 2},
        {BM_Q4_0, "q4_0", 32, 18},   {BM_Q4_1, "q4_1", 32, 20},   {BM_Q5_0, "q5_0", 32, 22},
        {BM_Q5_1, "q5_1", 32, 24},   {BM_Q8_0, "q8_0", 32, 34},   {BM_Q8_1, "q8_1", 32, 36},
        {BM_Q2_K, "q2_K", 256, 84},  {BM_Q3_K, "q3_K", 256, 110}, {BM_Q4_K, "q4_K", 256, 144},
        {BM_Q5_K, "q5_K", 256, 176}, {BM_Q6_K, "q6_K", 256, 210}, {BM_Q8_K, "q8_K", 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const bm_type_traits *tt = bm_type_traits_get((int)want[i].t);
        cr_assert(tt, "type %d", want[i].t);
        cr_expect_str_eq(tt->name, want[i].name);
        cr_expect_eq(tt->block_elems, want[i].elems, "%s", want[i].name);
        cr_expect_eq(tt->block_bytes, want[i].bytes, "%s", want[i].name);
        cr_expect_eq(tt->quantized, want[i].elems > 1, "%s", want[i].name);
        cr_expect(tt->to_f32 && tt->from_f32, "%s", want[i].name);
        bm_dtype p;
        cr_expect(bm_dtype_parse(want[i].name, &p) && p == want[i].t, "%s", want[i].name);
    }
    bm_dtype p;
    cr_expect(bm_dtype_parse("Q4_K", &p) && p == BM_Q4_K);
    cr_expect(!bm_dtype_parse("q4_2", &p));
    cr_expect_null(bm_type_traits_get(4));
    cr_expect_null(bm_type_traits_get(-1));
    cr_expect_null(bm_type_traits_get(BM_DTYPE_COUNT));
}

Test(quant, row_bytes) {
    size_t b;
    cr_expect(bm_row_bytes(BM_Q4_K, 256, &b) && b == 144);
    cr_expect(bm_row_bytes(BM_Q4_K, 4096, &b) && b == 16 * 144);
    cr_expect(bm_row_bytes(BM_Q8_0, 4096, &b) && b == 128 * 34);
    cr_expect(bm_row_bytes(BM_Q6_K, 11008, &b) && b == 43 * 210);
    cr_expect(bm_row_bytes(BM_F16, 7, &b) && b == 14);
    cr_expect(bm_row_bytes(BM_Q4_0, 0, &b) && b == 0);
    cr_expect(!bm_row_bytes(BM_Q4_K, 100, &b), "not a multiple of 256");
    cr_expect(!bm_row_bytes(BM_Q4_0, 33, &b));
    cr_expect(!bm_row_bytes(BM_Q4_0, -32, &b));
    cr_expect(!bm_row_bytes((bm_dtype)5, 32, &b), "removed type id");
    cr_expect(!bm_row_bytes(BM_F32, INT64_MAX, &b), "overflow");
}

Test(quant, round_trip_normal_within_bounds) {
    static const int64_t rows[] = {256, 768, 4096};
    float *x = malloc(4096 * sizeof(float)), *y = malloc(4096 * sizeof(float));
    for (int ti = 0; ti < N_QTYPES; ti++) {
        const bm_dtype t = QTYPES[ti];
        double worst = 0;
        for (uint64_t seed = 1; seed <= 4; seed++)
            for (int r = 0; r < 3; r++) {
                fill_normal(x, rows[r], seed * 31 + (uint64_t)r, 1.0f);
                double e = round_trip(t, x, y, rows[r]);
                if (e > worst) worst = e;
            }
        fprintf(stderr, "round trip %-5s relative RMS error %.4f (bound %.4f)\n", bm_dtype_name(t),
                worst, rms_bound(t));
        cr_expect(worst < rms_bound(t), "%s: relative RMS %.5f >= %.5f", bm_dtype_name(t), worst,
                  rms_bound(t));
        /* A broken quantizer that merely keeps the sign and magnitude order would be far worse;
         * also check the error is not zero (data is not representable exactly). */
        cr_expect(worst > 0, "%s", bm_dtype_name(t));
    }
    free(x);
    free(y);
}

Test(quant, round_trip_scale_invariant_for_large_and_small_data) {
    /* 1e4 and 1e-2 scaled rows keep the relative error (f16 scales stay normal there). */
    float x[1024], y[1024];
    for (int ti = 0; ti < N_QTYPES; ti++) {
        const bm_dtype t = QTYPES[ti];
        for (int k = 0; k < 2; k++) {
            fill_normal(x, 1024, 77, k ? 1e4f : 1e-2f);
            double e = round_trip(t, x, y, 1024);
            cr_expect(e < rms_bound(t), "%s scale %g: %.5f", bm_dtype_name(t), k ? 1e4 : 1e-2, e);
            for (int i = 0; i < 1024; i++) cr_assert(isfinite(y[i]), "%s", bm_dtype_name(t));
        }
    }
}

Test(quant, zero_blocks_give_zeros) {
    float x[512] = {0}, y[512];
    for (int ti = 0; ti < N_QTYPES; ti++) {
        for (int i = 0; i < 512; i++) y[i] = 1.0f;
        round_trip(QTYPES[ti], x, y, 512);
        for (int i = 0; i < 512; i++)
            cr_assert(y[i] == 0.0f, "%s: y[%d] = %g", bm_dtype_name(QTYPES[ti]), i, y[i]);
    }
}

Test(quant, constant_blocks_are_near_exact) {
    /* A constant is exactly representable up to the f16 rounding of the scales (and of the product
     * of two rounded scales for the K types): relative error < 2e-3 while the f16 super scales are
     * normal. -1e-3 puts the Q4_K/Q6_K super scales (amax/1008, amax/4096) among the f16
     * subnormals, where the format itself only allows < 1e-2. */
    static const float consts[] = {0.37f, -2.5f, 1e4f, -0.3f, -1e-3f};
    float x[512], y[512];
    for (int ti = 0; ti < N_QTYPES; ti++)
        for (size_t c = 0; c < sizeof consts / sizeof consts[0]; c++) {
            const float tol = fabsf(consts[c]) < 0.01f ? 1e-2f : 2e-3f;
            for (int i = 0; i < 512; i++) x[i] = consts[c];
            round_trip(QTYPES[ti], x, y, 512);
            for (int i = 0; i < 512; i++)
                cr_assert(fabsf(y[i] - x[i]) <= tol * fabsf(x[i]), "%s c=%g: y[%d] = %.7g",
                          bm_dtype_name(QTYPES[ti]), consts[c], i, y[i]);
        }
}

Test(quant, outlier_block_keeps_outlier_and_stays_finite) {
    /* One 1e4 value among N(0,1): the outlier sets the scale and must come back within one
     * quantization step; everything stays finite. */
    float x[512], y[512];
    for (int ti = 0; ti < N_QTYPES; ti++) {
        const bm_dtype t = QTYPES[ti];
        fill_normal(x, 512, 5, 1.0f);
        x[37] = 1e4f;
        x[300] = -1e4f;
        round_trip(t, x, y, 512);
        for (int i = 0; i < 512; i++) cr_assert(isfinite(y[i]), "%s y[%d]", bm_dtype_name(t), i);
        cr_expect(fabsf(y[37] - 1e4f) < 0.1e4f, "%s: %g", bm_dtype_name(t), y[37]);
        cr_expect(fabsf(y[300] + 1e4f) < 0.1e4f, "%s: %g", bm_dtype_name(t), y[300]);
    }
}

Test(quant, unaligned_buffers_match_aligned) {
    float x[1024], y0[1024], y1[1024];
    fill_normal(x, 1024, 9, 1.0f);
    for (int ti = 0; ti < N_QTYPES; ti++) {
        const bm_type_traits *tt = bm_type_traits_get((int)QTYPES[ti]);
        size_t rb;
        cr_assert(bm_row_bytes(QTYPES[ti], 1024, &rb));
        uint8_t *a = malloc(rb + 16), *b = malloc(rb + 16);
        float *xu = malloc(1024 * sizeof(float) + 8);
        memcpy((uint8_t *)xu + 1, x, sizeof x); /* quantizer input misaligned too */
        float xm[1024];
        memcpy(xm, (uint8_t *)xu + 1, sizeof xm);
        tt->from_f32(x, a, 1024);
        tt->from_f32(xm, b + 3, 1024);
        cr_expect(!memcmp(a, b + 3, rb), "%s: quantization depends on alignment", tt->name);
        tt->to_f32(a, y0, 1024);
        tt->to_f32(b + 3, y1, 1024);
        cr_expect(!memcmp(y0, y1, sizeof y0), "%s", tt->name);
        free(a);
        free(b);
        free(xu);
    }
}

/* Hand-decoded blocks from the format description (independent of the quantizers). */
Test(quant, hand_decoded_q4_0_q5_0_q8_K) {
    bm_block_q4_0 b4 = {0};
    b4.d = 0x3800; /* 0.5 */
    b4.qs[0] = 0x1F;
    b4.qs[15] = 0x80;
    float y[256];
    bm_dequant_q4_0(&b4, y, 32);
    cr_expect_eq(y[0], 3.5f);   /* (15 - 8) * 0.5 */
    cr_expect_eq(y[16], -3.5f); /* (1 - 8) * 0.5 */
    cr_expect_eq(y[15], -4.0f); /* (0 - 8) * 0.5 */
    cr_expect_eq(y[31], 0.0f);  /* (8 - 8) * 0.5 */

    bm_block_q5_0 b5 = {0};
    b5.d = 0x3C00;   /* 1.0 */
    b5.qh[0] = 0x01; /* 5th bit of element 0 */
    b5.qh[2] = 0x02; /* 5th bit of element 17 */
    b5.qs[0] = 0x03;
    b5.qs[1] = 0x40;
    bm_dequant_q5_0(&b5, y, 32);
    cr_expect_eq(y[0], 3.0f); /* (16 + 3) - 16 */
    cr_expect_eq(y[16], -16.0f);
    cr_expect_eq(y[17], 4.0f); /* (16 + 4) - 16 */
    cr_expect_eq(y[1], -16.0f);

    bm_block_q8_K b8;
    float x[256];
    fill_normal(x, 256, 3, 1.0f);
    bm_quant_q8_K_ref(x, &b8, 256);
    for (int s = 0; s < 16; s++) {
        int sum = 0;
        for (int l = 0; l < 16; l++) sum += b8.qs[16 * s + l];
        cr_expect_eq(b8.bsums[s], sum, "bsums[%d]", s);
    }
    int n127 = 0;
    for (int e = 0; e < 256; e++) n127 += b8.qs[e] == -127;
    cr_expect_eq(n127, 1, "the largest magnitude maps to -127");
}

Test(quant, hand_decoded_q4_K_scales) {
    /* Sub-block 5 of a Q4_K block: scale = low nibble of byte 9 | top 2 bits of byte 1 << 4, min =
     * high nibble of byte 9 | top 2 bits of byte 5 << 4. */
    bm_block_q4_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;           /* 1 */
    b.dmin = 0x3800;        /* 0.5 */
    b.scales[9] = 0x73;     /* scale low 3, min low 7 */
    b.scales[1] = 0x80 | 5; /* scale high 2 (=2), sub-block 1 scale 5 */
    b.scales[5] = 0x40 | 9; /* min high 1, sub-block 1 min 9 */
    b.qs[64 + 2] = 0xA0;    /* sub-block 5 = high nibbles of chunk 2: element 162 -> 10 */
    b.qs[2] = 0x0C;         /* sub-block 0 element 2 -> 12 (scale 0, min 0) */
    b.qs[3] = 0xD0;         /* sub-block 1 element 35 -> 13 */
    float y[256];
    bm_dequant_q4_K(&b, y, 256);
    cr_expect_eq(y[160 + 2], (float)(2 * 16 + 3) * 10 - 0.5f * (float)(1 * 16 + 7));
    cr_expect_eq(y[160], -0.5f * 23);
    cr_expect_eq(y[2], 0.0f);
    cr_expect_eq(y[32 + 3], 5.0f * 13 - 0.5f * 9);
}

Test(quant, f16_round_trip_every_half) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bm_f16_to_f32((uint16_t)h);
        uint16_t back = bm_f32_to_f16(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            cr_assert(isnan(f) && (back & 0x7C00) == 0x7C00 && (back & 0x3FF), "nan %04x", h);
        } else {
            cr_assert_eq(back, h, "half %04x -> %g -> %04x", h, f, back);
        }
    }
    cr_expect_eq(bm_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    cr_expect_eq(bm_f16_to_f32(0x7BFF), 65504.0f);
    cr_expect_eq(bm_f16_to_f32(0xFC00), -INFINITY);
}

Test(quant, f16_rounding_ties_and_limits) {
    cr_expect_eq(bm_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3C00);     /* tie -> even */
    cr_expect_eq(bm_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3C02); /* tie -> even (up) */
    cr_expect_eq(bm_f32_to_f16(ldexpf(1, -25)), 0x0000);            /* tie to 0 */
    cr_expect_eq(bm_f32_to_f16(3 * ldexpf(1, -25)), 0x0002);        /* tie -> even */
    cr_expect_eq(bm_f32_to_f16(65519.0f), 0x7BFF);
    cr_expect_eq(bm_f32_to_f16(65520.0f), 0x7C00); /* tie at max -> inf */
    cr_expect_eq(bm_f32_to_f16(-1e9f), 0xFC00);
    cr_expect_eq(bm_f32_to_f16(-0.0f), 0x8000);
}

Test(quant, bf16_rounding_ties) {
    static const struct {
        uint32_t f;
        uint16_t h;
    } cases[] = {
        {0x3F808000, 0x3F80}, /* 1 + half ulp: tie, lower is even */
        {0x3F818000, 0x3F82}, /* tie, lower odd -> up */
        {0x3F808001, 0x3F81}, /* above tie */
        {0x3F807FFF, 0x3F80}, /* below tie */
        {0xBF818000, 0xBF82}, /* negative tie */
        {0x7F7FFFFF, 0x7F80}, /* rounds to inf */
        {0x7F800000, 0x7F80}, /* inf */
        {0x00008000, 0x0000}, /* subnormal tie to even 0 */
        {0x00018000, 0x0002}, /* subnormal tie -> even */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float f;
        memcpy(&f, &cases[i].f, 4);
        cr_expect_eq(bm_f32_to_bf16(f), cases[i].h, "%08x", cases[i].f);
    }
    uint32_t nan_bits = 0x7F800001; /* signalling NaN whose payload is only in the low bits */
    float nan;
    memcpy(&nan, &nan_bits, 4);
    cr_expect(isnan(bm_bf16_to_f32(bm_f32_to_bf16(nan))), "NaN must stay NaN");
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7F80) == 0x7F80 && (h & 0x7F)) continue;
        cr_assert_eq(bm_f32_to_bf16(bm_bf16_to_f32((uint16_t)h)), h, "bf16 %04x", h);
    }
}

/* Packed groups read back (bm_pack_get_block, bm_tensor_get_row of a packed tensor): every block
 * of every row equals the original bytes, and a row read from the packed copy equals the row
 * read from the original bitwise. Rows are random bytes (every code pattern and scale bit,
 * with finite f16 scales), 37 rows so the last group is partial. */
Test(quant, packed_rows_read_back_exactly) {
    static const bm_dtype types[] = {BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_K, BM_Q5_K, BM_Q6_K};
    const int64_t n_in = 512, n_rows = 37;
    uint32_t s = 12345;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const bm_dtype type = types[ti];
        const bm_type_traits *tt = bm_type_traits_get(type);
        size_t rb;
        cr_assert(bm_row_bytes(type, n_in, &rb));
        const size_t gb = bm_pack_group_bytes(type, n_in);
        cr_assert(gb > 0);
        uint8_t *w = malloc(rb * (size_t)n_rows), *p = calloc(3, gb);
        for (size_t i = 0; i < rb * (size_t)n_rows; i++) {
            s = s * 1664525u + 1013904223u;
            w[i] = (uint8_t)(s >> 24);
        }
        /* f16 scale fields: finite (exponent below 31) so a Q6_K f16 -> f32 -> f16 is exact. */
        const size_t bb = tt->block_bytes;
        for (size_t b = 0; b < rb * (size_t)n_rows / bb; b++) {
            uint8_t *blk = w + b * bb;
            uint8_t *hi = type == BM_Q6_K ? blk + bb - 1 : blk + 1;
            *hi &= 0xBF; /* top exponent bit cleared: exponent <= 15, finite */
            if (type == BM_Q4_K || type == BM_Q5_K) blk[3] &= 0xBF; /* dmin */
        }
        for (int64_t g = 0; g < 3; g++) bm_pack_group(type, w, rb, n_in, n_rows, g, p + g * gb);
        bm_tensor t = {.type = type, .n_dims = 2, .ne = {n_in, n_rows}, .data = w,
                       .n_bytes = rb * (size_t)n_rows};
        float *a = malloc(sizeof(float) * (size_t)n_in), *b2 = malloc(sizeof(float) * n_in);
        for (int64_t r = 0; r < n_rows; r++) {
            uint8_t blk[256];
            for (int64_t b = 0; b < n_in / tt->block_elems; b++) {
                bm_pack_get_block(type, p + (r / 16) * gb, n_in, r % 16, b, blk);
                cr_assert(!memcmp(blk, w + (size_t)r * rb + (size_t)b * bb, bb),
                          "%s row %ld block %ld differs", bm_dtype_name(type), (long)r, (long)b);
            }
            t.packed = NULL;
            bm_tensor_get_row(&t, r, a);
            t.packed = p;
            bm_tensor_get_row(&t, r, b2);
            cr_assert(!memcmp(a, b2, sizeof(float) * (size_t)n_in), "%s row %ld",
                      bm_dtype_name(type), (long)r);
        }
        free(a);
        free(b2);
        free(w);
        free(p);
    }
}
