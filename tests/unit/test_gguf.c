/* GGUF reader and writer: a fixture written by the writer and read back field by field;
 * truncation at every offset and a byte flip at every offset (never a crash; run under ASan
 * with `make SAN=1`); one hand-built file per validation rule with a check of the message;
 * writer misuse; and the real ggml vocabulary files of ../shared/testdata. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baimo/gguf.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz ? (size_t)sz : 1);
    cr_assert(fread(p, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static const float F32_DATA[12] = {1, -2, 3.5f, 4, 5, 6, 7, 8, 9, 10, 11, -12.25f};
static uint16_t f16_data[8];
static uint8_t q8_data[2 * 34];

/* Writes the standard fixture to path; returns its byte size via slurp by the caller. */
static void write_fixture(const char *path, uint32_t alignment) {
    bm_err e = {0};
    bm_gguf_writer *w = bm_gguf_writer_new(&e);
    cr_assert(w);
    cr_assert_eq(bm_gguf_writer_set_str(w, "general.architecture", "llama", &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_set_u32(w, "llama.block_count", 3, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_set_i32(w, "test.i32", -7, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_set_u64(w, "test.u64", 1ull << 40, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_set_f32(w, "test.f32", 0.125f, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_set_bool(w, "test.bool", true, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_set_str(w, "test.unicode", "中文 ünï", &e), BM_OK);
    if (alignment) cr_assert_eq(bm_gguf_writer_set_u32(w, "general.alignment", alignment, &e), BM_OK);
    float scores[3] = {0.5f, -1.0f, 2.0f};
    cr_assert_eq(bm_gguf_writer_set_arr(w, "test.scores", BM_GGUF_F32, scores, 3, &e), BM_OK);
    int32_t ids[4] = {1, -2, 3, 1 << 30};
    cr_assert_eq(bm_gguf_writer_set_arr(w, "test.ids", BM_GGUF_I32, ids, 4, &e), BM_OK);
    const char *toks[4] = {"<s>", "", "héllo", "▁world"};
    cr_assert_eq(bm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4, &e), BM_OK);
    /* replacing a key keeps one entry */
    cr_assert_eq(bm_gguf_writer_set_u32(w, "llama.block_count", 2, &e), BM_OK);

    int64_t ne_a[2] = {4, 3}, ne_b[1] = {8}, ne_c[2] = {32, 2};
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "a.weight", BM_F32, 2, ne_a, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "b.bias", BM_F16, 1, ne_b, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "c.q8", BM_Q8_0, 2, ne_c, &e), BM_OK, "%s", e.msg);
    for (int i = 0; i < 8; i++) f16_data[i] = bm_f32_to_f16((float)i - 3.5f);
    for (size_t i = 0; i < sizeof q8_data; i++) q8_data[i] = (uint8_t)(i * 7 + 1);
    cr_assert_eq(bm_gguf_writer_begin(w, path, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_write_tensor(w, F32_DATA, sizeof F32_DATA, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_write_tensor(w, f16_data, sizeof f16_data, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_write_tensor(w, q8_data, sizeof q8_data, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_finish(w, &e), BM_OK, "%s", e.msg);
    bm_gguf_writer_free(w);
}

static uint8_t *fixture(size_t *n) {
    char path[] = "/tmp/baimo_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    write_fixture(path, 0);
    uint8_t *p = slurp(path, n);
    unlink(path);
    return p;
}

static bool str_is(bm_str s, const char *want) {
    return s.n == strlen(want) && !memcmp(s.p, want, s.n);
}

/* Reads every kv and every tensor byte (so ASan sees any out-of-bounds view). */
static unsigned touch_all(const bm_gguf *g) {
    unsigned h = 0;
    for (int64_t i = 0; i < bm_gguf_n_kv(g); i++) {
        bm_str k = bm_gguf_kv_key(g, i);
        for (size_t j = 0; j < k.n; j++) h += (uint8_t)k.p[j];
        cr_assert_eq(bm_gguf_find_key(g, (char[]){0}), -1);
        if (bm_gguf_kv_type(g, i) == BM_GGUF_ARRAY) {
            uint64_t n = bm_gguf_arr_n(g, i);
            if (bm_gguf_arr_type(g, i) == BM_GGUF_STRING) {
                for (uint64_t j = 0; j < n; j++) {
                    bm_str s = bm_gguf_arr_str(g, i, j);
                    for (size_t q = 0; q < s.n; q++) h += (uint8_t)s.p[q];
                }
            } else {
                const uint8_t *d = bm_gguf_arr_data(g, i);
                static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
                size_t es = sz[bm_gguf_arr_type(g, i)];
                for (uint64_t j = 0; j < n * es; j++) h += d[j];
            }
        }
    }
    for (int64_t i = 0; i < bm_gguf_n_tensors(g); i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        for (size_t j = 0; j < t->n_bytes; j++) h += d[j];
        char name[BM_TENSOR_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.p);
        cr_assert_eq(bm_gguf_tensor_find(g, name), t);
    }
    return h;
}

/* ---- the valid fixture ------------------------------------------------------------------ */

Test(gguf, writer_fixture_reads_back) {
    size_t n;
    uint8_t *buf = fixture(&n);
    bm_gguf *g;
    bm_err e = {0};
    cr_assert_eq(bm_gguf_open_mem(buf, n, &g, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_version(g), 3);
    cr_assert_eq(bm_gguf_alignment(g), 32);
    cr_assert_eq(bm_gguf_n_kv(g), 10);
    cr_assert_eq(bm_gguf_n_tensors(g), 3);
    bm_str s;
    cr_assert(bm_gguf_get_str(g, "general.architecture", &s) && str_is(s, "llama"));
    cr_assert(bm_gguf_get_str(g, "test.unicode", &s) && str_is(s, "中文 ünï"));
    uint32_t u;
    cr_assert(bm_gguf_get_u32(g, "llama.block_count", &u) && u == 2);
    int64_t i64;
    cr_assert(bm_gguf_get_i64(g, "test.i32", &i64) && i64 == -7);
    cr_assert(!bm_gguf_get_u32(g, "test.i32", &u), "negative value must not convert to u32");
    cr_assert(bm_gguf_get_i64(g, "test.u64", &i64) && i64 == (1ll << 40));
    cr_assert(!bm_gguf_get_u32(g, "test.u64", &u), "2^40 does not fit u32");
    float f;
    cr_assert(bm_gguf_get_f32(g, "test.f32", &f) && f == 0.125f);
    cr_assert(bm_gguf_get_f32(g, "llama.block_count", &f) && f == 2.0f);
    bool b = false;
    cr_assert(bm_gguf_get_bool(g, "test.bool", &b) && b);
    cr_assert(!bm_gguf_get_str(g, "test.bool", &s));
    cr_assert(!bm_gguf_get_u32(g, "missing.key", &u));
    cr_assert_eq(bm_gguf_find_key(g, "missing.key"), -1);

    int64_t k = bm_gguf_find_key(g, "test.scores");
    cr_assert(k >= 0);
    cr_assert_eq(bm_gguf_kv_type(g, k), BM_GGUF_ARRAY);
    cr_assert_eq(bm_gguf_arr_type(g, k), BM_GGUF_F32);
    cr_assert_eq(bm_gguf_arr_n(g, k), 3);
    float sc[3];
    memcpy(sc, bm_gguf_arr_data(g, k), sizeof sc);
    cr_assert(sc[0] == 0.5f && sc[1] == -1.0f && sc[2] == 2.0f);
    k = bm_gguf_find_key(g, "test.ids");
    int32_t ids[4];
    memcpy(ids, bm_gguf_arr_data(g, k), sizeof ids);
    cr_assert(ids[1] == -2 && ids[3] == 1 << 30);
    k = bm_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert_eq(bm_gguf_arr_n(g, k), 4);
    cr_assert(str_is(bm_gguf_arr_str(g, k, 0), "<s>"));
    cr_assert(str_is(bm_gguf_arr_str(g, k, 1), ""));
    cr_assert(str_is(bm_gguf_arr_str(g, k, 2), "héllo"));
    cr_assert(str_is(bm_gguf_arr_str(g, k, 3), "▁world"));
    cr_assert_eq(bm_gguf_arr_str(g, k, 4).n, 0, "out of range element is empty");

    const bm_gguf_tensor *t = bm_gguf_tensor_find(g, "a.weight");
    cr_assert(t);
    cr_assert_eq(t->type, BM_F32);
    cr_assert_eq(t->n_dims, 2);
    cr_assert(t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 1);
    cr_assert_eq(t->n_bytes, sizeof F32_DATA);
    cr_assert_eq(memcmp(t->data, F32_DATA, sizeof F32_DATA), 0);
    t = bm_gguf_tensor_find(g, "b.bias");
    cr_assert(t && t->type == BM_F16 && t->n_bytes == 16 && t->offset % 32 == 0);
    cr_assert_eq(memcmp(t->data, f16_data, 16), 0);
    t = bm_gguf_tensor_find(g, "c.q8");
    cr_assert(t && t->type == BM_Q8_0 && t->n_bytes == sizeof q8_data && t->offset % 32 == 0);
    cr_assert_eq(memcmp(t->data, q8_data, sizeof q8_data), 0);
    cr_assert_eq(((const uint8_t *)t->data - buf) % 32, 0, "data aligned in the file");
    cr_assert_null(bm_gguf_tensor_find(g, "a.weigh"));
    cr_assert_null(bm_gguf_tensor_find(g, "a.weight2"));
    touch_all(g);
    bm_gguf_close(g);
    free(buf);
}

Test(gguf, alignment_kv_is_honoured) {
    char path[] = "/tmp/baimo_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_fixture(path, 256);
    bm_gguf *g;
    bm_err e = {0};
    cr_assert_eq(bm_gguf_open(path, &g, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_alignment(g), 256);
    for (int64_t i = 0; i < bm_gguf_n_tensors(g); i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        cr_assert_eq(t->offset % 256, 0);
        cr_assert_eq((uintptr_t)t->data % 256, 0, "mmap is page aligned, so data is too");
    }
    bm_gguf_close(g);
    unlink(path);
}

Test(gguf, truncation_at_every_offset_fails) {
    size_t n;
    uint8_t *buf = fixture(&n);
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = malloc(k ? k : 1); /* exact size: ASan catches any overread */
        memcpy(p, buf, k);
        bm_gguf *g = NULL;
        bm_err e = {0};
        bm_status st = bm_gguf_open_mem(p, k, &g, &e);
        cr_assert_neq(st, BM_OK, "truncated to %zu of %zu bytes must fail", k, n);
        cr_assert_null(g);
        cr_assert(strstr(e.msg, "gguf:"), "message at %zu: %s", k, e.msg);
        free(p);
    }
    free(buf);
}

Test(gguf, byte_flip_at_every_offset_never_crashes) {
    size_t n;
    uint8_t *buf = fixture(&n);
    int ok = 0, bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = malloc(n);
        memcpy(p, buf, n);
        p[k] ^= 0xFF;
        bm_gguf *g = NULL;
        bm_err e = {0};
        if (bm_gguf_open_mem(p, n, &g, &e) == BM_OK) {
            touch_all(g);
            bm_gguf_close(g);
            ok++;
        } else {
            cr_assert(e.msg[0], "error without message at offset %zu", k);
            bad++;
        }
        free(p);
    }
    /* flips inside tensor data or string bytes stay valid; header flips must not */
    cr_assert(ok > 0 && bad > 0, "ok=%d bad=%d", ok, bad);
    free(buf);
}

/* ---- hand-built bad files --------------------------------------------------------------- */

typedef struct gb {
    uint8_t b[4096];
    size_t n;
} gb;
static void u32(gb *g, uint32_t v) {
    for (int i = 0; i < 4; i++) g->b[g->n++] = (uint8_t)(v >> (8 * i));
}
static void u64(gb *g, uint64_t v) {
    for (int i = 0; i < 8; i++) g->b[g->n++] = (uint8_t)(v >> (8 * i));
}
static void str(gb *g, const char *s) {
    u64(g, strlen(s));
    memcpy(g->b + g->n, s, strlen(s));
    g->n += strlen(s);
}
static void hdr(gb *g, uint64_t nt, uint64_t nkv) {
    g->n = 0;
    u32(g, 0x46554747u);
    u32(g, 3);
    u64(g, nt);
    u64(g, nkv);
}
static void kv_u32(gb *g, const char *k, uint32_t v) {
    str(g, k);
    u32(g, BM_GGUF_U32);
    u32(g, v);
}
static void tinfo(gb *g, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type,
                  uint64_t off) {
    str(g, name);
    u32(g, nd);
    for (uint32_t i = 0; i < nd; i++) u64(g, ne[i]);
    u32(g, type);
    u64(g, off);
}
static void pad(gb *g, size_t a) {
    while (g->n % a) g->b[g->n++] = 0;
}
static void zeros(gb *g, size_t k) {
    memset(g->b + g->n, 0, k);
    g->n += k;
}

/* Opens g, expects failure with code and every needle in the message. */
static void expect_fail(gb *g, bm_status code, const char *n1, const char *n2) {
    uint8_t *p = malloc(g->n);
    memcpy(p, g->b, g->n);
    bm_gguf *h = NULL;
    bm_err e = {0};
    bm_status st = bm_gguf_open_mem(p, g->n, &h, &e);
    cr_assert_eq(st, code, "status %s, want %s: %s", bm_status_name(st), bm_status_name(code),
                 e.msg);
    cr_assert(strstr(e.msg, n1), "message lacks '%s': %s", n1, e.msg);
    if (n2) cr_assert(strstr(e.msg, n2), "message lacks '%s': %s", n2, e.msg);
    free(p);
}

static void expect_ok(gb *g) {
    bm_gguf *h = NULL;
    bm_err e = {0};
    cr_assert_eq(bm_gguf_open_mem(g->b, g->n, &h, &e), BM_OK, "%s", e.msg);
    bm_gguf_close(h);
}

Test(gguf, minimal_handbuilt_is_valid) {
    gb g;
    uint64_t ne[2] = {4, 2};
    hdr(&g, 1, 1);
    kv_u32(&g, "a.b", 5);
    tinfo(&g, "t", 2, ne, BM_F32, 0);
    pad(&g, 32);
    zeros(&g, 32);
    expect_ok(&g);
}

Test(gguf, bad_magic) {
    gb g;
    hdr(&g, 0, 0);
    g.b[0] = 'X';
    expect_fail(&g, BM_EFORMAT, "bad magic", "not a GGUF");
}

Test(gguf, versions) {
    gb g;
    hdr(&g, 0, 0);
    g.b[4] = 1;
    expect_fail(&g, BM_EUNSUPPORTED, "unsupported version 1", NULL);
    g.b[4] = 4;
    expect_fail(&g, BM_EUNSUPPORTED, "unknown version 4", "2 and 3");
    g.b[4] = 0;
    g.b[7] = 3; /* big-endian 3 */
    expect_fail(&g, BM_EUNSUPPORTED, "big-endian", NULL);
    g.b[7] = 0;
    g.b[4] = 2;
    expect_ok(&g);
}

Test(gguf, string_length_past_end) {
    gb g;
    hdr(&g, 0, 1);
    u64(&g, 1000); /* key length */
    zeros(&g, 30);
    expect_fail(&g, BM_EFORMAT, "length 1000", "past the end");
    hdr(&g, 0, 1);
    str(&g, "k");
    u32(&g, BM_GGUF_STRING);
    u64(&g, UINT64_MAX);
    zeros(&g, 8);
    expect_fail(&g, BM_EFORMAT, "past the end", "'k'");
}

Test(gguf, counts_larger_than_file) {
    gb g;
    hdr(&g, 0, 1ull << 60);
    zeros(&g, 40);
    expect_fail(&g, BM_EFORMAT, "1152921504606846976 key/values", "at most");
    hdr(&g, UINT64_MAX, 0);
    zeros(&g, 40);
    expect_fail(&g, BM_EFORMAT, "tensors", "at most 1");
    hdr(&g, 0, 1);
    str(&g, "arr");
    u32(&g, BM_GGUF_ARRAY);
    u32(&g, BM_GGUF_STRING);
    u64(&g, 1ull << 62);
    zeros(&g, 16);
    expect_fail(&g, BM_EFORMAT, "string array 'arr' claims 4611686018427387904", "at most 2");
    hdr(&g, 0, 1);
    str(&g, "arr");
    u32(&g, BM_GGUF_ARRAY);
    u32(&g, BM_GGUF_U64);
    u64(&g, 1ull << 61); /* * 8 overflows to 0 in 64 bits */
    zeros(&g, 16);
    expect_fail(&g, BM_EFORMAT, "array 'arr'", "past the end");
}

Test(gguf, duplicates) {
    gb g;
    hdr(&g, 0, 3);
    kv_u32(&g, "x.y", 1);
    kv_u32(&g, "a", 1);
    kv_u32(&g, "x.y", 2);
    expect_fail(&g, BM_EFORMAT, "duplicate key 'x.y'", NULL);
    uint64_t ne[1] = {8};
    hdr(&g, 2, 0);
    tinfo(&g, "w", 1, ne, BM_F32, 0);
    tinfo(&g, "w", 1, ne, BM_F32, 32);
    pad(&g, 32);
    zeros(&g, 64);
    expect_fail(&g, BM_EFORMAT, "duplicate tensor name 'w'", NULL);
}

Test(gguf, tensor_shape_rules) {
    gb g;
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    hdr(&g, 1, 0);
    tinfo(&g, "t", 5, ne5, BM_F32, 0);
    zeros(&g, 64);
    expect_fail(&g, BM_EFORMAT, "n_dims 5", "1..4");
    uint64_t ne0[2] = {4, 0};
    hdr(&g, 1, 0);
    tinfo(&g, "t", 2, ne0, BM_F32, 0);
    zeros(&g, 64);
    expect_fail(&g, BM_EFORMAT, "dimension 1 is 0", NULL);
    uint64_t neneg[1] = {UINT64_MAX};
    hdr(&g, 1, 0);
    tinfo(&g, "t", 1, neneg, BM_F32, 0);
    zeros(&g, 64);
    expect_fail(&g, BM_EFORMAT, "dimension 0 is -1", NULL);
    uint64_t nebig[3] = {1ull << 32, 1ull << 32, 1ull << 2};
    hdr(&g, 1, 0);
    tinfo(&g, "t", 3, nebig, BM_F32, 0);
    zeros(&g, 64);
    expect_fail(&g, BM_EOVERFLOW, "overflows", "'t'");
    uint64_t ne2[2] = {1ull << 40, 1ull << 22};
    hdr(&g, 1, 0);
    tinfo(&g, "t", 2, ne2, BM_F32, 0); /* 2^62 elements * 4 bytes overflows size_t */
    zeros(&g, 64);
    expect_fail(&g, BM_EOVERFLOW, "byte size overflows", NULL);
    uint64_t ne1[1] = {32};
    hdr(&g, 1, 0);
    tinfo(&g, "t", 1, ne1, 99, 0);
    zeros(&g, 64);
    expect_fail(&g, BM_EUNSUPPORTED, "unknown type id 99", NULL);
    uint64_t ne33[1] = {33};
    hdr(&g, 1, 0);
    tinfo(&g, "blk.0.q", 1, ne33, BM_Q8_0, 0);
    zeros(&g, 64);
    expect_fail(&g, BM_EFORMAT, "row length 33", "block size 32");
    char longname[200];
    memset(longname, 'n', 96);
    longname[96] = 0;
    hdr(&g, 1, 0);
    tinfo(&g, longname, 1, ne1, BM_F32, 0);
    zeros(&g, 160);
    expect_fail(&g, BM_EFORMAT, "96 bytes", "1..95");
}

Test(gguf, tensor_placement_rules) {
    gb g;
    uint64_t ne[1] = {16}; /* 64 bytes of f32 */
    hdr(&g, 1, 0);
    tinfo(&g, "blk.3.attn_q.weight", 1, ne, BM_F32, 0);
    pad(&g, 32);
    zeros(&g, 40);
    expect_fail(&g, BM_EFORMAT, "'blk.3.attn_q.weight' ends at", "file has");
    hdr(&g, 1, 0);
    tinfo(&g, "t", 1, ne, BM_F32, 16);
    pad(&g, 32);
    zeros(&g, 96);
    expect_fail(&g, BM_EFORMAT, "offset 16 is not a multiple of the alignment 32", NULL);
    hdr(&g, 1, 0);
    tinfo(&g, "t", 1, ne, BM_F32, UINT64_MAX - 31);
    pad(&g, 32);
    zeros(&g, 96);
    expect_fail(&g, BM_EOVERFLOW, "overflows", NULL);
    hdr(&g, 2, 0);
    tinfo(&g, "a", 1, ne, BM_F32, 0);
    tinfo(&g, "b", 1, ne, BM_F32, 32);
    pad(&g, 32);
    zeros(&g, 128);
    expect_fail(&g, BM_EFORMAT, "overlap", "'a' [0, 64)");
}

Test(gguf, utf8_rules) {
    gb g;
    hdr(&g, 0, 1);
    str(&g, "bad\xff");
    u32(&g, BM_GGUF_U32);
    u32(&g, 1);
    expect_fail(&g, BM_EFORMAT, "key", "not valid UTF-8");
    hdr(&g, 0, 1);
    str(&g, "general.name");
    u32(&g, BM_GGUF_STRING);
    str(&g, "x\xc0\xaf");
    expect_fail(&g, BM_EFORMAT, "'general.name'", "not valid UTF-8");
    hdr(&g, 0, 1);
    str(&g, "tokenizer.ggml.tokens");
    u32(&g, BM_GGUF_ARRAY);
    u32(&g, BM_GGUF_STRING);
    u64(&g, 2);
    str(&g, "ok");
    str(&g, "\xed\xa0\x80"); /* surrogate */
    expect_fail(&g, BM_EFORMAT, "element 1 of 'tokenizer.ggml.tokens'", "UTF-8");
    hdr(&g, 0, 1);
    u64(&g, 3);
    memcpy(g.b + g.n, "a\0b", 3); /* valid UTF-8, but unusable as a C-string key */
    g.n += 3;
    u32(&g, BM_GGUF_U8);
    g.b[g.n++] = 1;
    expect_fail(&g, BM_EFORMAT, "key 'a", "NUL byte");
    uint64_t ne[1] = {8};
    hdr(&g, 1, 0);
    tinfo(&g, "wyx", 1, ne, BM_F32, 0);
    zeros(&g, 64);
    g.b[24 + 8 + 1] = 0;
    expect_fail(&g, BM_EFORMAT, "tensor name 'w", "NUL byte");
}

Test(gguf, kv_value_rules) {
    gb g;
    hdr(&g, 0, 1);
    kv_u32(&g, "general.alignment", 48);
    expect_fail(&g, BM_EFORMAT, "general.alignment = 48", "power of two");
    hdr(&g, 0, 1);
    kv_u32(&g, "general.alignment", 0);
    expect_fail(&g, BM_EFORMAT, "= 0", "power of two");
    hdr(&g, 0, 1);
    str(&g, "general.alignment");
    u32(&g, BM_GGUF_U64);
    u64(&g, 32);
    expect_fail(&g, BM_EFORMAT, "general.alignment has type u64", "u32");
    hdr(&g, 0, 1);
    str(&g, "k");
    u32(&g, 13);
    u32(&g, 0);
    expect_fail(&g, BM_EFORMAT, "invalid value type 13", "'k'");
    hdr(&g, 0, 1);
    str(&g, "k");
    u32(&g, BM_GGUF_ARRAY);
    u32(&g, 77);
    u64(&g, 0);
    expect_fail(&g, BM_EFORMAT, "invalid element type 77", NULL);
    hdr(&g, 0, 1);
    str(&g, "nested");
    u32(&g, BM_GGUF_ARRAY);
    u32(&g, BM_GGUF_ARRAY);
    u64(&g, 1);
    u32(&g, BM_GGUF_U8);
    u64(&g, 0);
    expect_fail(&g, BM_EUNSUPPORTED, "array of arrays", "'nested'");
    hdr(&g, 0, 1);
    str(&g, "flag");
    u32(&g, BM_GGUF_BOOL);
    g.b[g.n++] = 2;
    expect_fail(&g, BM_EFORMAT, "bool key 'flag' has value 2", NULL);
    hdr(&g, 0, 1);
    u64(&g, 0);
    u32(&g, BM_GGUF_U8);
    g.b[g.n++] = 2;
    zeros(&g, 4);
    expect_fail(&g, BM_EFORMAT, "length 0", "1..65535");
}

/* ---- writer behaviour ------------------------------------------------------------------- */

Test(gguf, writer_rejects_misuse_and_leaves_no_partial_file) {
    char path[] = "/tmp/baimo_test_gguf_w_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    bm_err e = {0};
    bm_gguf_writer *w = bm_gguf_writer_new(&e);
    int64_t ne[2] = {33, 1};
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "q", BM_Q4_0, 2, ne, &e), BM_EINVAL);
    cr_assert(strstr(e.msg, "block size 32"), "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_set_u32(w, "general.alignment", 24, &e), BM_EINVAL);
    ne[0] = 4;
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "x", BM_F32, 2, ne, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "x", BM_F32, 2, ne, &e), BM_EINVAL);
    cr_assert(strstr(e.msg, "duplicate"), "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_add_tensor(w, "y", BM_F32, 2, ne, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_begin(w, path, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(access(tmp, F_OK), 0, "writes go to the .tmp file");
    cr_assert_eq(bm_gguf_writer_set_u32(w, "late.key", 1, &e), BM_EINVAL);
    float d[4] = {0};
    cr_assert_eq(bm_gguf_writer_write_tensor(w, d, 8, &e), BM_EINVAL);
    cr_assert(strstr(e.msg, "'x' has 16 bytes, got 8"), "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_write_tensor(w, d, 16, &e), BM_OK);
    cr_assert_eq(bm_gguf_writer_finish(w, &e), BM_EINVAL);
    cr_assert(strstr(e.msg, "1 of 2"), "%s", e.msg);
    bm_gguf_writer_free(w);
    cr_assert_neq(access(tmp, F_OK), 0, "abandoned .tmp removed");
    cr_assert_neq(access(path, F_OK), 0, "nothing under the real name");
}

/* ---- real files ------------------------------------------------------------------------- */

static bool vocab_path(const char *name, char *out, size_t cap) {
    const char *roots[] = {getenv("BAIMO_TESTDATA"), "../shared/testdata", "../../shared/testdata"};
    for (int i = 0; i < 3; i++) {
        if (!roots[i]) continue;
        snprintf(out, cap, "%s/tokenizer/%s", roots[i], name);
        if (access(out, R_OK) == 0) return true;
    }
    return false;
}

static bm_gguf *open_vocab(const char *name) {
    char path[512];
    cr_assert(vocab_path(name, path, sizeof path), "test data %s not found", name);
    bm_gguf *g;
    bm_err e = {0};
    cr_assert_eq(bm_gguf_open(path, &g, &e), BM_OK, "%s", e.msg);
    return g;
}

Test(gguf, real_vocab_files) {
    struct {
        const char *file, *model;
        uint64_t n_tok;
    } cases[] = {{"ggml-vocab-llama-spm.gguf", "llama", 32000},
                 {"ggml-vocab-phi-3.gguf", "llama", 32064},
                 {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},
                 {"ggml-vocab-deepseek-llm.gguf", "gpt2", 102400},
                 {"ggml-vocab-baichuan.gguf", "llama", 64000}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bm_gguf *g = open_vocab(cases[c].file);
        bm_str s;
        cr_assert(bm_gguf_get_str(g, "tokenizer.ggml.model", &s) && str_is(s, cases[c].model),
                  "%s: model '%.*s'", cases[c].file, (int)s.n, s.p);
        int64_t k = bm_gguf_find_key(g, "tokenizer.ggml.tokens");
        cr_assert(k >= 0);
        cr_assert_eq(bm_gguf_arr_type(g, k), BM_GGUF_STRING);
        cr_assert_eq(bm_gguf_arr_n(g, k), cases[c].n_tok, "%s", cases[c].file);
        cr_assert_eq(bm_gguf_n_tensors(g), 0);
        int64_t tt = bm_gguf_find_key(g, "tokenizer.ggml.token_type");
        cr_assert_eq(bm_gguf_arr_n(g, tt), cases[c].n_tok);
        bm_gguf_close(g);
    }
    bm_gguf *g = open_vocab("ggml-vocab-gpt-2.gguf");
    int64_t k = bm_gguf_find_key(g, "tokenizer.ggml.tokens");
    /* GPT-2's byte-level vocabulary: id 0 is "!", id 50256 is <|endoftext|> */
    cr_assert(str_is(bm_gguf_arr_str(g, k, 0), "!"));
    cr_assert(str_is(bm_gguf_arr_str(g, k, 50256), "<|endoftext|>"));
    uint32_t eos;
    cr_assert(bm_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos) && eos == 50256);
    bm_gguf_close(g);
    g = open_vocab("ggml-vocab-llama-spm.gguf");
    k = bm_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert(str_is(bm_gguf_arr_str(g, k, 1), "<s>"));
    cr_assert(str_is(bm_gguf_arr_str(g, k, 2), "</s>"));
    cr_assert(str_is(bm_gguf_arr_str(g, k, 3), "<0x00>"));
    bm_gguf_close(g);
}

static bool skip_merges(const char *key, size_t n) {
    return n == 21 && !memcmp(key, "tokenizer.ggml.merges", 21);
}

Test(gguf, copy_kv_roundtrips_a_vocab) {
    bm_gguf *src = open_vocab("ggml-vocab-gpt-2.gguf");
    char path[] = "/tmp/baimo_test_gguf_c_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    bm_err e = {0};
    bm_gguf_writer *w = bm_gguf_writer_new(&e);
    cr_assert_eq(bm_gguf_writer_copy_kv(w, src, skip_merges, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_begin(w, path, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_writer_finish(w, &e), BM_OK, "%s", e.msg);
    bm_gguf_writer_free(w);
    bm_gguf *g;
    cr_assert_eq(bm_gguf_open(path, &g, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_gguf_n_kv(g), bm_gguf_n_kv(src) - 1);
    cr_assert_eq(bm_gguf_find_key(g, "tokenizer.ggml.merges"), -1);
    int64_t a = bm_gguf_find_key(src, "tokenizer.ggml.tokens");
    int64_t b = bm_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert_eq(bm_gguf_arr_n(g, b), bm_gguf_arr_n(src, a));
    for (uint64_t j = 0; j < bm_gguf_arr_n(g, b); j++) {
        bm_str x = bm_gguf_arr_str(src, a, j), y = bm_gguf_arr_str(g, b, j);
        cr_assert(x.n == y.n && !memcmp(x.p, y.p, x.n), "token %llu", (unsigned long long)j);
    }
    bm_gguf_close(g);
    bm_gguf_close(src);
    unlink(path);
}
