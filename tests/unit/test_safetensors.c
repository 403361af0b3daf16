/* safetensors reader and .npy writer: a hand-built valid fixture read back; truncation and byte
 * flips at every offset; each validation rule with its message; sharded directories (index
 * json, single file, glob) including duplicates across shards; and the .npy header layout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baimo/safetensors.h"

/* Builds a safetensors blob from a JSON header and data bytes. */
static uint8_t *blob(const char *json, const void *data, size_t dn, size_t *n) {
    size_t hn = strlen(json);
    *n = 8 + hn + dn;
    uint8_t *p = malloc(*n);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(p + 8, json, hn);
    if (dn) memcpy(p + 8 + hn, data, dn);
    return p;
}

static const char *FIX_JSON =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b.bias\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[24,30]},"
    "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[1,1,2],\"data_offsets\":[30,34]}}  ";

static uint8_t fix_data[34];

static uint8_t *fixture(size_t *n) {
    float f[6] = {1, 2, 3, 4, 5, -6.5f};
    memcpy(fix_data, f, 24);
    for (int i = 0; i < 3; i++) {
        uint16_t h = bm_f32_to_f16((float)i + 0.5f);
        memcpy(fix_data + 24 + 2 * i, &h, 2);
    }
    for (int i = 0; i < 2; i++) {
        uint16_t h = bm_f32_to_bf16(-(float)i - 1.0f);
        memcpy(fix_data + 30 + 2 * i, &h, 2);
    }
    return blob(FIX_JSON, fix_data, sizeof fix_data, n);
}

static void touch_all(const bm_st *s) {
    unsigned h = 0;
    for (int64_t i = 0; i < bm_st_n_tensors(s); i++) {
        const bm_st_tensor *t = bm_st_tensor_at(s, i);
        for (size_t j = 0; j < t->n_bytes; j++) h += ((const uint8_t *)t->data)[j];
        h += (unsigned)strlen(t->name);
        cr_assert_eq(bm_st_find(s, t->name), t);
    }
    (void)h;
}

Test(safetensors, fixture_reads_back) {
    size_t n;
    uint8_t *p = fixture(&n);
    bm_st *s;
    bm_err e = {0};
    cr_assert_eq(bm_st_open_mem(p, n, &s, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_st_n_tensors(s), 3);
    /* table order is data order */
    cr_assert_str_eq(bm_st_tensor_at(s, 0)->name, "a.weight");
    cr_assert_str_eq(bm_st_tensor_at(s, 2)->name, "c");
    const bm_st_tensor *t = bm_st_find(s, "a.weight");
    cr_assert(t && t->type == BM_F32 && t->n_dims == 2);
    cr_assert(t->ne[0] == 3 && t->ne[1] == 2 && t->ne[2] == 1, "GGUF order is reversed shape");
    cr_assert_eq(t->n_bytes, 24);
    float f[6];
    memcpy(f, t->data, 24);
    cr_assert(f[5] == -6.5f);
    t = bm_st_find(s, "b.bias");
    cr_assert(t && t->type == BM_F16 && t->n_dims == 1 && t->ne[0] == 3 && t->n_bytes == 6);
    uint16_t h;
    memcpy(&h, (const uint8_t *)t->data + 4, 2);
    cr_assert(bm_f16_to_f32(h) == 2.5f);
    t = bm_st_find(s, "c");
    cr_assert(t && t->type == BM_BF16 && t->n_dims == 3 && t->ne[0] == 2 && t->ne[2] == 1);
    memcpy(&h, (const uint8_t *)t->data + 2, 2);
    cr_assert(bm_bf16_to_f32(h) == -2.0f);
    cr_assert_null(bm_st_find(s, "__metadata__"));
    cr_assert_null(bm_st_find(s, "zzz"));
    bm_st_close(s);
    free(p);
}

Test(safetensors, truncation_at_every_offset_fails) {
    size_t n;
    uint8_t *p = fixture(&n);
    for (size_t k = 0; k < n; k++) {
        uint8_t *q = malloc(k ? k : 1);
        memcpy(q, p, k);
        bm_st *s = NULL;
        bm_err e = {0};
        cr_assert_neq(bm_st_open_mem(q, k, &s, &e), BM_OK, "truncated to %zu must fail", k);
        cr_assert_null(s);
        cr_assert(strstr(e.msg, "safetensors"), "%s", e.msg);
        free(q);
    }
    free(p);
}

Test(safetensors, byte_flip_at_every_offset_never_crashes) {
    size_t n;
    uint8_t *p = fixture(&n);
    int ok = 0, bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *q = malloc(n);
        memcpy(q, p, n);
        q[k] ^= 0xFF;
        bm_st *s = NULL;
        bm_err e = {0};
        if (bm_st_open_mem(q, n, &s, &e) == BM_OK) {
            touch_all(s);
            bm_st_close(s);
            ok++;
        } else {
            cr_assert(e.msg[0]);
            bad++;
        }
        free(q);
    }
    cr_assert(ok > 0 && bad > 0, "ok=%d bad=%d", ok, bad);
    free(p);
}

static void expect_fail(const char *json, size_t dn, bm_status code, const char *n1,
                        const char *n2) {
    uint8_t zero[256] = {0};
    cr_assert(dn <= sizeof zero);
    size_t n;
    uint8_t *p = blob(json, zero, dn, &n);
    bm_st *s = NULL;
    bm_err e = {0};
    bm_status st = bm_st_open_mem(p, n, &s, &e);
    cr_assert_eq(st, code, "status %s: %s", bm_status_name(st), e.msg);
    cr_assert(strstr(e.msg, n1), "message lacks '%s': %s", n1, e.msg);
    if (n2) cr_assert(strstr(e.msg, n2), "message lacks '%s': %s", n2, e.msg);
    free(p);
}

Test(safetensors, validation_rules) {
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, BM_EFORMAT,
                "'w' data_offsets [0, 16] past the end", "8 data bytes");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,4]}}", 16,
                BM_EFORMAT, "past the end", NULL);
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16,
                BM_EFORMAT, "'w' has 16 data bytes", "needs 12");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[8,16]}}",
                16, BM_EFORMAT, "'a' [0, 16) and 'b' [8, 16) overlap", NULL);
    expect_fail("{\"w\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16,
                BM_EUNSUPPORTED, "'w' has dtype 'I64'", "F32, F16, BF16");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                BM_EUNSUPPORTED, "5 dimensions", "max 4");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                BM_EFORMAT, "shape[0]", NULL);
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                "\"data_offsets\":[0,4]}}",
                4, BM_EOVERFLOW, "'w' size overflows", NULL);
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, BM_EFORMAT, "data_offsets", NULL);
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, BM_EFORMAT, "bad JSON", "duplicate");
    expect_fail("[1, 2]", 0, BM_EFORMAT, "not a JSON object", NULL);
    expect_fail("{\"__metadata__\": 3}", 0, BM_EFORMAT, "__metadata__", NULL);
    expect_fail("{\"w\": 5}", 0, BM_EFORMAT, "'w' is not an object", NULL);
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4,
                BM_EFORMAT, "bad JSON", NULL);
}

Test(safetensors, header_size_rules) {
    uint8_t p[64] = {0};
    bm_st *s = NULL;
    bm_err e = {0};
    uint64_t big = 200ull << 20;
    memcpy(p, &big, 8);
    cr_assert_eq(bm_st_open_mem(p, sizeof p, &s, &e), BM_EFORMAT);
    cr_assert(strstr(e.msg, "header size 209715200 exceeds the limit"), "%s", e.msg);
    uint64_t over = 57; /* 64 - 8 = 56 bytes are left */
    memcpy(p, &over, 8);
    cr_assert_eq(bm_st_open_mem(p, sizeof p, &s, &e), BM_EFORMAT);
    cr_assert(strstr(e.msg, "header size 57 runs past the end: file has 64"), "%s", e.msg);
    cr_assert_eq(bm_st_open_mem(p, 5, &s, &e), BM_EFORMAT);
    cr_assert(strstr(e.msg, "needs 8"), "%s", e.msg);
    /* empty tensor list and zero-sized tensors are valid */
    size_t n;
    uint8_t *q = blob("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", NULL,
                      0, &n);
    cr_assert_eq(bm_st_open_mem(q, n, &s, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_st_find(s, "e")->n_bytes, 0);
    bm_st_close(s);
    free(q);
}

/* ---- directories ------------------------------------------------------------------------ */

static void put_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void put_shard(const char *dir, const char *file, const char *tensor, float v) {
    char json[256];
    snprintf(json, sizeof json,
             "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", tensor);
    float d[2] = {v, v + 1};
    size_t n;
    uint8_t *p = blob(json, d, sizeof d, &n);
    put_file(dir, file, p, n);
    free(p);
}

static void rm_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(safetensors, sharded_dir_with_index) {
    char dir[] = "/tmp/baimo_test_st_XXXXXX";
    cr_assert(mkdtemp(dir));
    put_shard(dir, "model-00001-of-00002.safetensors", "x.weight", 1);
    put_shard(dir, "model-00002-of-00002.safetensors", "y.weight", 10);
    put_shard(dir, "stray.safetensors", "x.weight", 99); /* not in the index: ignored */
    const char *idx = "{\"metadata\":{\"total_size\":16},\"weight_map\":{"
                      "\"x.weight\":\"model-00001-of-00002.safetensors\","
                      "\"y.weight\":\"model-00002-of-00002.safetensors\"}}";
    put_file(dir, "model.safetensors.index.json", idx, strlen(idx));
    bm_st *s;
    bm_err e = {0};
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_st_n_tensors(s), 2);
    float v[2];
    memcpy(v, bm_st_find(s, "y.weight")->data, 8);
    cr_assert(v[0] == 10 && v[1] == 11);
    memcpy(v, bm_st_find(s, "x.weight")->data, 8);
    cr_assert(v[0] == 1);
    bm_st_close(s);

    const char *bad = "{\"weight_map\":{\"x.weight\":\"../etc/passwd\"}}";
    put_file(dir, "model.safetensors.index.json", bad, strlen(bad));
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_EFORMAT);
    cr_assert(strstr(e.msg, "not a file name"), "%s", e.msg);
    const char *missing = "{\"weight_map\":{\"x.weight\":\"model-00001-of-00002.safetensors\","
                          "\"z\":\"model-00001-of-00002.safetensors\"}}";
    put_file(dir, "model.safetensors.index.json", missing, strlen(missing));
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_EFORMAT);
    cr_assert(strstr(e.msg, "'z'"), "%s", e.msg);
    rm_dir(dir);
}

Test(safetensors, dir_glob_and_duplicates) {
    char dir[] = "/tmp/baimo_test_st_XXXXXX";
    cr_assert(mkdtemp(dir));
    bm_st *s;
    bm_err e = {0};
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_ENOTFOUND);
    cr_assert(strstr(e.msg, "no model.safetensors"), "%s", e.msg);
    put_shard(dir, "b.safetensors", "b", 2);
    put_shard(dir, "a.safetensors", "a", 1);
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_st_n_tensors(s), 2);
    cr_assert_str_eq(bm_st_tensor_at(s, 0)->name, "a", "shards are read in sorted order");
    bm_st_close(s);
    put_shard(dir, "c.safetensors", "a", 3);
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_EFORMAT);
    cr_assert(strstr(e.msg, "duplicate tensor 'a'") && strstr(e.msg, "c.safetensors"), "%s",
              e.msg);
    put_shard(dir, "model.safetensors", "only", 5); /* preferred over the glob */
    cr_assert_eq(bm_st_open_dir(dir, &s, &e), BM_OK, "%s", e.msg);
    cr_assert_eq(bm_st_n_tensors(s), 1);
    cr_assert_not_null(bm_st_find(s, "only"));
    bm_st_close(s);
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    cr_assert_eq(bm_st_open_file(path, &s, &e), BM_OK, "%s", e.msg);
    cr_assert_not_null(bm_st_find(s, "a"));
    bm_st_close(s);
    rm_dir(dir);
}

/* bm_st_release (packing hands the copied rows' pages back): the tensor still reads back the
 * same afterwards (its pages fault in from the file again), and ranges outside every mapping,
 * a NULL reader and an in-memory blob are no-ops. */
Test(safetensors, release_keeps_contents) {
    enum { N = 64 * 1024 };
    static float v[N];
    for (int i = 0; i < N; i++) v[i] = (float)i * 0.25f - 7.0f;
    char json[160];
    snprintf(json, sizeof json,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[0,%d]}}", N,
             N * 4);
    size_t n;
    uint8_t *b = blob(json, v, sizeof v, &n);
    char path[] = "/tmp/baimo_test_st_rel_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, b, n), (ssize_t)n);
    close(fd);
    bm_st *s;
    bm_err e = {0};
    cr_assert_eq(bm_st_open_file(path, &s, &e), BM_OK, "%s", e.msg);
    const bm_st_tensor *t = bm_st_find(s, "w");
    cr_assert_not_null(t);
    cr_assert_eq(memcmp(t->data, v, sizeof v), 0);
    bm_st_release(s, t->data, t->n_bytes);
    cr_assert_eq(memcmp(t->data, v, sizeof v), 0, "contents changed after release");
    bm_st_release(s, v, sizeof v); /* not in any mapping */
    bm_st_release(NULL, t->data, t->n_bytes);
    cr_assert_eq(memcmp(t->data, v, sizeof v), 0);
    bm_st_close(s);
    cr_assert_eq(bm_st_open_mem(b, n, &s, &e), BM_OK, "%s", e.msg);
    bm_st_release(s, bm_st_find(s, "w")->data, sizeof v);
    cr_assert_eq(memcmp(bm_st_find(s, "w")->data, v, sizeof v), 0);
    bm_st_close(s);
    free(b);
    unlink(path);
}

/* ---- npy -------------------------------------------------------------------------------- */

Test(npy, header_layout) {
    char path[] = "/tmp/baimo_test_npy_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    float d[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    bm_err e = {0};
    cr_assert_eq(bm_npy_write_f32(path, d, 2, shape, &e), BM_OK, "%s", e.msg);
    FILE *f = fopen(path, "rb");
    uint8_t b[256];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    cr_assert_eq(memcmp(b, "\x93NUMPY\x01\x00", 8), 0);
    size_t hl = b[8] | (size_t)b[9] << 8;
    cr_assert_eq((10 + hl) % 64, 0);
    cr_assert_eq(n, 10 + hl + 24);
    cr_assert_eq(b[10 + hl - 1], '\n');
    char *dict = strndup((char *)b + 10, hl);
    cr_assert(strstr(dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "%s",
              dict);
    free(dict);
    cr_assert_eq(memcmp(b + 10 + hl, d, 24), 0);
    int64_t one[1] = {6};
    cr_assert_eq(bm_npy_write_f32(path, d, 1, one, &e), BM_OK);
    f = fopen(path, "rb");
    n = fread(b, 1, sizeof b, f);
    fclose(f);
    cr_assert(memmem(b, n, "'shape': (6,), }", 16), "1-D shape is a 1-tuple");
    unlink(path);
}
