/* Fixtures shared by the kernel tests (tests/unit/test_kernels.c with Criterion, and
 * tests/arm/test_neon_kernels.c in plain C under qemu): a xorshift source, random weight matrices
 * of any dtype with their dequantized values, bm_matmul with its scratch, and buffers for
 * quantized activations, and the dot / axpy check. Header-only, static functions: each test program has one copy. */
#ifndef BAIMO_TESTS_KERN_FIXTURE_H
#define BAIMO_TESTS_KERN_FIXTURE_H

#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double U = 1.0 / 16777216.0; /* float unit roundoff 2^-24 */

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* xorshift, uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(99);
    }
    return p;
}

typedef struct wmat {
    uint8_t *buf; /* owned */
    bm_tensor t;  /* data = buf + misalignment */
    float *deq;   /* [n_out, n_in] dequantized */
} wmat;

/* Random weights (every 97th value x8: varied block scales, outliers), the rows at buf + mis. */
static wmat make_w(bm_dtype type, int64_t n_in, int64_t n_out, int mis) {
    wmat m;
    size_t rb = 0;
    if (!bm_row_bytes(type, n_in, &rb)) {
        fprintf(stderr, "make_w: %ld columns are no whole %s row\n", (long)n_in,
                bm_dtype_name(type));
        exit(98);
    }
    const bm_type_traits *tt = bm_type_traits_get(type);
    m.buf = xmalloc(rb * (size_t)n_out + 64);
    m.deq = xmalloc(sizeof(float) * (size_t)(n_in * n_out));
    for (int64_t i = 0; i < n_in * n_out; i++) {
        const float v = frand();
        m.deq[i] = (i % 97 == 0) ? 8.0f * v : v;
    }
    uint8_t *data = m.buf + mis;
    for (int64_t r = 0; r < n_out; r++) tt->from_f32(m.deq + r * n_in, data + r * rb, n_in);
    for (int64_t r = 0; r < n_out; r++) tt->to_f32(data + r * rb, m.deq + r * n_in, n_in);
    memset(&m.t, 0, sizeof m.t);
    snprintf(m.t.name, sizeof m.t.name, "w");
    m.t.type = type;
    m.t.n_dims = 2;
    m.t.ne[0] = n_in;
    m.t.ne[1] = n_out;
    m.t.data = data;
    m.t.n_bytes = rb * (size_t)n_out;
    return m;
}

static void free_w(wmat *m) {
    free(m->buf);
    free(m->deq);
}

/* bm_matmul at the current level with its own scratch. */
static void run_mm(bm_pool *pool, const bm_tensor *w, const float *x, int64_t n_tok, float *y) {
    const size_t sb = bm_matmul_scratch_bytes(w->ne[0], n_tok, bm_pool_n_threads(pool));
    void *scr = aligned_alloc(64, (sb + 63) & ~(size_t)63);
    bm_matmul(pool, w, x, n_tok, y, scr);
    free(scr);
}

/* Buffers for the Q8 activations of n_tok rows of n_in (codes filled with 0xAB). */
typedef struct actq {
    bm_mm_args a;
    uint8_t *q;
    float *d;
    int32_t *s;
    float *m;
} actq;

static actq new_act(int64_t n_in, int64_t n_tok) {
    actq r;
    memset(&r, 0, sizeof r);
    r.a.n_in = n_in;
    r.a.n_tok = n_tok;
    r.a.ldq = n_in;
    r.a.ldd = n_in / BM_QK;
    r.q = xmalloc((size_t)(n_tok * n_in));
    r.d = xmalloc(sizeof(float) * (size_t)(n_tok * r.a.ldd));
    r.s = xmalloc(sizeof(int32_t) * (size_t)(n_tok * r.a.ldd));
    r.m = xmalloc(sizeof(float) * (size_t)(n_tok * r.a.ldd));
    memset(r.q, 0xAB, (size_t)(n_tok * n_in));
    r.a.xq = r.q;
    r.a.xd = r.d;
    r.a.xs = r.s;
    r.a.xm = r.m;
    return r;
}

static void free_act(actq *r) {
    free(r->q);
    free(r->d);
    free(r->s);
    free(r->m);
}

/* dot_f32 and axpy_f32 of k against double sums, odd lengths, misaligned pointers: the dot
 * within (n + 8) u sum|a b| (float summation bound), each axpy element within 4 u, nothing
 * written outside [0, n). NULL when all hold, else msg describing the first failure. */
static const char *check_dot_axpy(const bm_kernels *k, char *msg, size_t cap) {
    static const int64_t ns[] = {1, 3, 4, 7, 8, 15, 16, 17, 64, 100, 128};
    float a[130], b[130], y[130], y0[130];
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        const int64_t n = ns[i];
        for (int e = 0; e < 130; e++) {
            a[e] = frand();
            b[e] = frand();
            y0[e] = y[e] = frand();
        }
        double ex = 0, mag = 0;
        for (int64_t e = 0; e < n; e++) {
            ex += (double)a[e + 1] * b[e];
            mag += fabs((double)a[e + 1] * b[e]);
        }
        const double got = k->dot_f32(a + 1, b, n);
        if (!(fabs(got - ex) <= ((double)n + 8) * U * mag + 1e-30)) {
            snprintf(msg, cap, "%s dot n=%ld: %.9g vs %.9g", k->name, (long)n, got, ex);
            return msg;
        }
        k->axpy_f32(0.37f, a + 1, y + 1, n);
        for (int64_t e = 0; e < n; e++) {
            const double want = (double)y0[e + 1] + 0.37 * (double)a[e + 1];
            if (!(fabs(y[e + 1] - want) <= 4 * U * (fabs(want) + fabs(0.37 * a[e + 1])))) {
                snprintf(msg, cap, "%s axpy n=%ld e=%ld", k->name, (long)n, (long)e);
                return msg;
            }
        }
        if (y[0] != y0[0] || y[n + 1] != y0[n + 1]) {
            snprintf(msg, cap, "%s axpy n=%ld wrote outside [0, n)", k->name, (long)n);
            return msg;
        }
    }
    return NULL;
}

#endif
