/* base layer: sizes, arenas, thread pool, UTF-8, RNG, errors. */
#include <criterion/criterion.h>

#include "baimo/base.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(base, size_arithmetic_detects_overflow) {
    size_t r;
    cr_assert(bm_size_mul(1u << 20, 1u << 10, &r) && r == (size_t)1 << 30);
    cr_assert(!bm_size_mul(SIZE_MAX / 2 + 1, 2, &r));
    cr_assert(!bm_size_add(SIZE_MAX, 1, &r));
    cr_assert(bm_size_align(65, 64, &r) && r == 128);
    cr_assert(!bm_size_align(SIZE_MAX - 3, 64, &r));
}

Test(base, arena_aligns_resets_and_limits) {
    bm_arena a;
    bm_arena_init(&a, 1024, 4096);
    bm_err err = {0};
    for (int i = 0; i < 10; i++) {
        void *p = bm_arena_alloc(&a, (size_t)(i * 7 + 1), &err);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 64, 0);
    }
    size_t total = a.total_bytes;
    bm_arena_reset(&a);
    cr_assert_eq(a.used_bytes, 0);
    cr_assert_not_null(bm_arena_alloc(&a, 100, &err));
    cr_assert_eq(a.total_bytes, total, "reset must reuse chunks");
    cr_assert_null(bm_arena_alloc(&a, 8192, &err), "allocation past the limit must fail");
    cr_assert_eq(err.code, BM_ENOMEM);
    cr_assert(strstr(err.msg, "limit") != NULL, "message: %s", err.msg);
    cr_assert_null(bm_arena_calloc(&a, SIZE_MAX / 2, 4, &err));
    cr_assert_eq(err.code, BM_EOVERFLOW);
    bm_arena_fini(&a);
}

typedef struct {
    _Atomic int hits[1000];
    _Atomic int calls;
} pool_ctx;

static void count_task(void *ctx, int ith, int nth) {
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->hits[ith], 1);
    atomic_fetch_add(&c->calls, 1);
    cr_assert_lt(ith, nth);
}

Test(base, pool_runs_every_task_exactly_once) {
    bm_err err = {0};
    bm_pool *p = bm_pool_new(3, &err);
    cr_assert_not_null(p, "%s", err.msg);
    static pool_ctx c;
    for (int round = 0; round < 200; round++) {
        memset(&c, 0, sizeof c);
        int n = 1 + round % 37;
        bm_pool_run(p, count_task, &c, n);
        cr_assert_eq(atomic_load(&c.calls), n);
        for (int i = 0; i < n; i++) cr_assert_eq(atomic_load(&c.hits[i]), 1);
    }
    bm_pool_free(p);
    memset(&c, 0, sizeof c);
    bm_pool_run(NULL, count_task, &c, 5); /* serial without a pool */
    cr_assert_eq(atomic_load(&c.calls), 5);
}

Test(base, split_range_covers_without_overlap) {
    for (int64_t n = 0; n < 50; n++)
        for (int nth = 1; nth < 9; nth++) {
            int64_t next = 0;
            for (int i = 0; i < nth; i++) {
                int64_t lo, hi;
                bm_split_range(n, i, nth, &lo, &hi);
                cr_assert_eq(lo, next);
                cr_assert_geq(hi, lo);
                next = hi;
            }
            cr_assert_eq(next, n);
        }
}

Test(base, utf8_decode_rejects_invalid) {
    uint32_t cp;
    cr_assert_eq(bm_utf8_decode((const uint8_t *)"\xe4\xbd\xa0", 3, &cp), 3);
    cr_assert_eq(cp, 0x4F60); /* 你 */
    cr_assert_eq(bm_utf8_decode((const uint8_t *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    cr_assert_eq(cp, 0x1F600);
    cr_assert_eq(bm_utf8_decode((const uint8_t *)"\xc0\xaf", 2, &cp), 0, "overlong");
    cr_assert_eq(bm_utf8_decode((const uint8_t *)"\xed\xa0\x80", 3, &cp), 0, "surrogate");
    cr_assert_eq(bm_utf8_decode((const uint8_t *)"\xf4\x90\x80\x80", 4, &cp), 0, "> U+10FFFF");
    cr_assert_eq(bm_utf8_decode((const uint8_t *)"\xe4\xbd", 2, &cp), 0, "truncated");
    cr_assert(bm_utf8_valid((const uint8_t *)"百模 baimo", strlen("百模 baimo")));
    cr_assert(!bm_utf8_valid((const uint8_t *)"ok\xff", 3));
}

Test(base, utf8_encode_round_trips_every_scalar_value) {
    uint8_t buf[4];
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        int n = bm_utf8_encode(c, buf);
        if (c >= 0xD800 && c <= 0xDFFF) {
            cr_assert_eq(n, 0);
            continue;
        }
        uint32_t back;
        cr_assert_eq(bm_utf8_decode(buf, (size_t)n, &back), n);
        cr_assert_eq(back, c);
    }
}

Test(base, utf8_incomplete_tail) {
    const uint8_t *s = (const uint8_t *)"a\xe4\xbd"; /* first two bytes of 你 */
    cr_assert_eq(bm_utf8_incomplete_tail(s, 3), 2);
    cr_assert_eq(bm_utf8_incomplete_tail(s, 2), 1);
    cr_assert_eq(bm_utf8_incomplete_tail(s, 1), 0);
    cr_assert_eq(bm_utf8_incomplete_tail((const uint8_t *)"\xe4\xbd\xa0", 3), 0);
    cr_assert_eq(bm_utf8_incomplete_tail((const uint8_t *)"\xf0\x9f\x98", 3), 3);
}

Test(base, rng_is_deterministic_and_uniform_enough) {
    bm_rng a, b;
    bm_rng_seed(&a, 7);
    bm_rng_seed(&b, 7);
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 100000; i++) {
        cr_assert_eq(bm_rng_u64(&a), bm_rng_u64(&b));
        float z = bm_rng_normal(&a);
        (void)bm_rng_normal(&b);
        sum += z;
        sum2 += (double)z * z;
    }
    double mean = sum / 100000, var = sum2 / 100000 - mean * mean;
    cr_assert_lt(fabs(mean), 0.02);
    cr_assert_lt(fabs(var - 1.0), 0.03);
    bm_rng_seed(&b, 8);
    cr_assert_neq(bm_rng_u64(&a), bm_rng_u64(&b));
}

Test(base, errors_carry_code_and_message) {
    bm_err err = {0};
    cr_assert_eq(bm_err_set(&err, BM_ERANGE, "x %d > %d", 5, 4), BM_ERANGE);
    cr_assert_str_eq(err.msg, "x 5 > 4");
    bm_err_wrap(&err, "load '%s'", "m.gguf");
    cr_assert_str_eq(err.msg, "load 'm.gguf': x 5 > 4");
    cr_assert_eq(bm_err_set(NULL, BM_EIO, "ignored"), BM_EIO);
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    bm_err_set(&err, BM_EINVAL, "%s", big);
    bm_err_wrap(&err, "%s", big);
    cr_assert_eq(strlen(err.msg), BM_ERR_MSG_MAX - 1);
}

Test(base, file_read_respects_limit) {
    bm_err err = {0};
    char *buf;
    size_t n;
    cr_assert_eq(bm_file_read("/nonexistent/x", &buf, &n, 100, &err), BM_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/x") != NULL);
    FILE *f = fopen("/tmp/baimo_test_read.txt", "w");
    for (int i = 0; i < 1000; i++) fputc('x', f);
    fclose(f);
    cr_assert_eq(bm_file_read("/tmp/baimo_test_read.txt", &buf, &n, 100, &err), BM_ERANGE);
    cr_assert_eq(bm_file_read("/tmp/baimo_test_read.txt", &buf, &n, 1000, &err), BM_OK);
    cr_assert_eq(n, 1000);
    free(buf);
    remove("/tmp/baimo_test_read.txt");
}
