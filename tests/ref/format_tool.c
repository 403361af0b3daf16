/* Test harness that lets tests/ref/test_gguf_writer.py drive baimo's format layer:
 *   format_tool gguf-write OUT SPEC.json   write a GGUF from a JSON spec (see the python test)
 *   format_tool gguf-dump PATH             print a GGUF's kvs and tensors as JSON
 *   format_tool st-dump PATH               print a safetensors file's / directory's tensors as JSON
 *   format_tool npy OUT D0 [D1 ...]        write an f32 .npy with values i * 0.25 - 1
 * Errors: the library message on stderr, exit status 1. Test-only; not part of baimo. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "baimo/gguf.h"
#include "baimo/safetensors.h"
#include "format/gguf_internal.h" /* bm_gguf_kv_raw: exact scalar bytes */

static int fail(const bm_err *e) {
    fprintf(stderr, "%s: %s\n", bm_status_name(e->code), e->msg);
    return 1;
}

static const char *const KV_TYPES[] = {"u8",   "i8",  "u16", "i16", "u32", "i32", "f32",
                                       "bool", "str", "arr", "u64", "i64", "f64"};

static int kv_type(const char *s) {
    for (int i = 0; i < BM_GGUF_TYPE_COUNT; i++)
        if (!strcmp(s, KV_TYPES[i])) return i;
    return -1;
}

static char *hex(const void *p, size_t n) {
    static const char d[] = "0123456789abcdef";
    char *h = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = d[((const uint8_t *)p)[i] >> 4];
        h[2 * i + 1] = d[((const uint8_t *)p)[i] & 15];
    }
    h[2 * n] = 0;
    return h;
}

/* Encodes JSON number v as one little-endian element of type t into out. */
static void encode(int t, json_t *v, uint8_t *out) {
    double dv = json_number_value(v);
    long long iv = json_is_integer(v) ? json_integer_value(v) : (long long)dv;
    switch (t) {
    case BM_GGUF_F32: {
        float f = (float)dv;
        memcpy(out, &f, 4);
        break;
    }
    case BM_GGUF_F64: memcpy(out, &dv, 8); break;
    case BM_GGUF_BOOL: out[0] = json_is_true(v) || iv != 0; break;
    default: {
        unsigned long long u = (unsigned long long)iv;
        size_t n = t <= 1 ? 1 : t <= 3 ? 2 : t <= 5 ? 4 : 8;
        for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(u >> (8 * i));
    }
    }
}

static int gguf_write(const char *out, const char *spec_path) {
    json_error_t je;
    json_t *spec = json_load_file(spec_path, 0, &je);
    if (!spec) {
        fprintf(stderr, "spec: %s\n", je.text);
        return 1;
    }
    bm_err e = {0};
    bm_gguf_writer *w = bm_gguf_writer_new(&e);
    size_t i;
    json_t *k;
    bm_status st = BM_OK;
    json_array_foreach(json_object_get(spec, "kv"), i, k) {
        const char *key = json_string_value(json_object_get(k, "key"));
        const char *ts = json_string_value(json_object_get(k, "type"));
        json_t *v = json_object_get(k, "value");
        int t = kv_type(ts);
        if (t == BM_GGUF_STRING) {
            st = bm_gguf_writer_set_str(w, key, json_string_value(v), &e);
        } else if (t == BM_GGUF_ARRAY) {
            int et = kv_type(json_string_value(json_object_get(k, "elem")));
            size_t n = json_array_size(v);
            if (et == BM_GGUF_STRING) {
                const char **s = calloc(n + 1, sizeof *s);
                size_t *lens = calloc(n + 1, sizeof *lens);
                for (size_t j = 0; j < n; j++) {
                    s[j] = json_string_value(json_array_get(v, j));
                    lens[j] = json_string_length(json_array_get(v, j));
                }
                st = bm_gguf_writer_set_arr_str(w, key, s, lens, n, &e);
                free(s);
                free(lens);
            } else {
                uint8_t *d = calloc(n + 1, 8);
                size_t es = et <= 1 || et == 7 ? 1 : et <= 3 ? 2 : et <= 6 ? 4 : 8;
                for (size_t j = 0; j < n; j++) encode(et, json_array_get(v, j), d + j * es);
                st = bm_gguf_writer_set_arr(w, key, (bm_gguf_type)et, d, n, &e);
                free(d);
            }
        } else if (t == BM_GGUF_U32) {
            st = bm_gguf_writer_set_u32(w, key, (uint32_t)json_integer_value(v), &e);
        } else if (t == BM_GGUF_I32) {
            st = bm_gguf_writer_set_i32(w, key, (int32_t)json_integer_value(v), &e);
        } else if (t == BM_GGUF_U64) {
            st = bm_gguf_writer_set_u64(w, key, (uint64_t)json_integer_value(v), &e);
        } else if (t == BM_GGUF_F32) {
            st = bm_gguf_writer_set_f32(w, key, (float)json_number_value(v), &e);
        } else if (t == BM_GGUF_BOOL) {
            st = bm_gguf_writer_set_bool(w, key, json_is_true(v), &e);
        } else {
            fprintf(stderr, "spec: kv type '%s' not supported by the writer API\n", ts);
            return 1;
        }
        if (st) return fail(&e);
    }
    json_t *tensors = json_object_get(spec, "tensors");
    json_array_foreach(tensors, i, k) {
        bm_dtype dt;
        if (!bm_dtype_parse(json_string_value(json_object_get(k, "type")), &dt)) {
            fprintf(stderr, "spec: bad dtype\n");
            return 1;
        }
        json_t *ne = json_object_get(k, "ne");
        int64_t d[4];
        for (size_t j = 0; j < json_array_size(ne) && j < 4; j++)
            d[j] = json_integer_value(json_array_get(ne, j));
        st = bm_gguf_writer_add_tensor(w, json_string_value(json_object_get(k, "name")), dt,
                                       (int)json_array_size(ne), d, &e);
        if (st) return fail(&e);
    }
    if ((st = bm_gguf_writer_begin(w, out, &e))) return fail(&e);
    json_array_foreach(tensors, i, k) {
        char *data;
        size_t n;
        st = bm_file_read(json_string_value(json_object_get(k, "file")), &data, &n, 1u << 30, &e);
        if (st) return fail(&e);
        st = bm_gguf_writer_write_tensor(w, data, n, &e);
        free(data);
        if (st) return fail(&e);
    }
    if ((st = bm_gguf_writer_finish(w, &e))) return fail(&e);
    bm_gguf_writer_free(w);
    json_decref(spec);
    return 0;
}

static json_t *scalar_json(int t, const uint8_t *p) {
    uint64_t u = 0;
    size_t n = t <= 1 || t == 7 ? 1 : t <= 3 ? 2 : t <= 6 ? 4 : 8;
    for (size_t i = 0; i < n; i++) u |= (uint64_t)p[i] << (8 * i);
    switch (t) {
    case BM_GGUF_U8: case BM_GGUF_U16: case BM_GGUF_U32: return json_integer((json_int_t)u);
    case BM_GGUF_I8: return json_integer((int8_t)u);
    case BM_GGUF_I16: return json_integer((int16_t)u);
    case BM_GGUF_I32: return json_integer((int32_t)u);
    case BM_GGUF_I64: return json_integer((int64_t)u);
    case BM_GGUF_U64: { /* may exceed json_int_t: a decimal string */
        char b[24];
        snprintf(b, sizeof b, "%llu", (unsigned long long)u);
        return json_string(b);
    }
    case BM_GGUF_F32: {
        float f;
        uint32_t b = (uint32_t)u;
        memcpy(&f, &b, 4);
        return json_real(f);
    }
    case BM_GGUF_F64: {
        double d;
        memcpy(&d, &u, 8);
        return json_real(d);
    }
    case BM_GGUF_BOOL: return json_boolean(u != 0);
    }
    return json_null();
}

static json_t *str_json(bm_str s) { return json_stringn(s.p, s.n); }

static int gguf_dump(const char *path) {
    bm_gguf *g;
    bm_err e = {0};
    if (bm_gguf_open(path, &g, &e)) return fail(&e);
    json_t *root = json_object(), *kvs = json_object(), *ts = json_array();
    json_object_set_new(root, "version", json_integer(bm_gguf_version(g)));
    json_object_set_new(root, "alignment", json_integer((json_int_t)bm_gguf_alignment(g)));
    for (int64_t i = 0; i < bm_gguf_n_kv(g); i++) {
        bm_str k = bm_gguf_kv_key(g, i);
        int t = bm_gguf_kv_type(g, i);
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(KV_TYPES[t]));
        char key[1024];
        snprintf(key, sizeof key, "%.*s", (int)k.n, k.p);
        if (bm_gguf_find_key(g, key) != i) {
            fprintf(stderr, "find_key('%s') != %lld\n", key, (long long)i);
            return 1;
        }
        if (t == BM_GGUF_STRING) {
            bm_str s;
            bm_gguf_get_str(g, key, &s);
            json_object_set_new(o, "value", str_json(s));
        } else if (t == BM_GGUF_ARRAY) {
            int et = bm_gguf_arr_type(g, i);
            uint64_t n = bm_gguf_arr_n(g, i);
            json_object_set_new(o, "elem", json_string(KV_TYPES[et]));
            json_t *a = json_array();
            size_t es = et <= 1 || et == 7 ? 1 : et <= 3 ? 2 : et <= 6 ? 4 : 8;
            for (uint64_t j = 0; j < n; j++)
                json_array_append_new(
                    a, et == BM_GGUF_STRING
                           ? str_json(bm_gguf_arr_str(g, i, j))
                           : scalar_json(et, (const uint8_t *)bm_gguf_arr_data(g, i) + j * es));
            json_object_set_new(o, "value", a);
        } else {
            const uint8_t *p;
            size_t n;
            bm_gguf_kv_raw(g, i, &p, &n);
            json_t *v = scalar_json(t, p);
            json_object_set_new(o, "value", v ? v : json_null());
        }
        json_object_set_new(kvs, key, o);
    }
    for (int64_t i = 0; i < bm_gguf_n_tensors(g); i++) {
        const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
        json_t *o = json_object(), *ne = json_array();
        json_object_set_new(o, "name", str_json(t->name));
        json_object_set_new(o, "type", json_string(bm_dtype_name(t->type)));
        for (int d = 0; d < t->n_dims; d++) json_array_append_new(ne, json_integer(t->ne[d]));
        json_object_set_new(o, "ne", ne);
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        char *hx = hex(t->data, t->n_bytes);
        json_object_set_new(o, "hex", json_string_nocheck(hx));
        free(hx);
        json_array_append_new(ts, o);
    }
    json_object_set_new(root, "kv", kvs);
    json_object_set_new(root, "tensors", ts);
    json_dumpf(root, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(root);
    bm_gguf_close(g);
    return 0;
}

static int st_dump(const char *path) {
    struct stat sb;
    bm_st *s;
    bm_err e = {0};
    bm_status st = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? bm_st_open_dir(path, &s, &e)
                                                               : bm_st_open_file(path, &s, &e);
    if (st) return fail(&e);
    json_t *ts = json_array();
    for (int64_t i = 0; i < bm_st_n_tensors(s); i++) {
        const bm_st_tensor *t = bm_st_tensor_at(s, i);
        json_t *o = json_object(), *ne = json_array();
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "type", json_string(bm_dtype_name(t->type)));
        for (int d = 0; d < t->n_dims; d++) json_array_append_new(ne, json_integer(t->ne[d]));
        json_object_set_new(o, "ne", ne);
        char *hx = hex(t->data, t->n_bytes);
        json_object_set_new(o, "hex", json_string_nocheck(hx));
        free(hx);
        json_array_append_new(ts, o);
    }
    json_dumpf(ts, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(ts);
    bm_st_close(s);
    return 0;
}

static int npy(const char *out, int n_dims, char **dims) {
    int64_t shape[8];
    size_t n = 1;
    for (int i = 0; i < n_dims && i < 8; i++) {
        shape[i] = atoll(dims[i]);
        n *= (size_t)shape[i];
    }
    float *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = (float)i * 0.25f - 1.0f;
    bm_err e = {0};
    bm_status st = bm_npy_write_f32(out, d, n_dims, shape, &e);
    free(d);
    return st ? fail(&e) : 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "gguf-write")) return gguf_write(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "gguf-dump")) return gguf_dump(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "st-dump")) return st_dump(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "npy")) return npy(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: format_tool gguf-write OUT SPEC | gguf-dump PATH | st-dump PATH | "
                    "npy OUT D...\n");
    return 2;
}
