/* GGUF v2/v3 reader. Parses the header, key/values and tensor infos of a mapped file through the
 * bounds-checked cursor (reader.h); validates every count against the bytes left before
 * allocating, every tensor's shape, type, alignment and extent against the file, and rejects
 * duplicates and overlaps. Strings are views into the mapping; lookups use sorted indexes.
 * Does not dequantize or copy tensor data. Spec: ggml docs/gguf.md. */
#include "format/gguf_internal.h"
#include "format/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_KEY_MAX 65535
#define GGUF_DEFAULT_ALIGN 32
/* Smallest encodings: kv = key len + 1 key byte + type + 1 value byte; tensor info = name len +
 * 1 name byte + n_dims + one dim + type + offset. Used to bound counts before allocating. */
#define MIN_KV_BYTES 14
#define MIN_TENSOR_INFO_BYTES 33
#define SHOW 80 /* longest key/name quoted in a message */

typedef struct kv {
    bm_str key;
    uint32_t type;
    const uint8_t *val; /* encoded value (after the type) */
    size_t val_bytes;
    uint32_t arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data; /* first element */
    uint64_t *str_off;       /* string arrays: offset of element j's length from arr_data */
} kv;

struct bm_gguf {
    bm_mmap map; /* empty for open_mem */
    const uint8_t *data;
    size_t n_bytes;
    uint32_t version;
    size_t alignment;
    size_t data_start;
    int64_t n_kv, n_tensors;
    kv *kvs;
    bm_gguf_tensor *tensors;
    int64_t *kv_sorted; /* kv indexes sorted by key */
    int64_t *t_sorted;  /* tensor indexes sorted by name */
};

static int show(size_t n) { return n > SHOW ? SHOW : (int)n; }

static int str_cmp(const char *a, size_t na, const char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c) return c;
    return na < nb ? -1 : na > nb ? 1 : 0;
}

/* qsort has no context argument: the comparators reach the tables through this pointer, which
 * is only set while one open is sorting (open is not reentrant within one thread's sort). */
static _Thread_local const bm_gguf *sort_g;
static int cmp_kv(const void *a, const void *b) {
    const bm_str *x = &sort_g->kvs[*(const int64_t *)a].key, *y = &sort_g->kvs[*(const int64_t *)b].key;
    return str_cmp(x->p, x->n, y->p, y->n);
}
static int cmp_tensor_name(const void *a, const void *b) {
    const bm_str *x = &sort_g->tensors[*(const int64_t *)a].name;
    const bm_str *y = &sort_g->tensors[*(const int64_t *)b].name;
    return str_cmp(x->p, x->n, y->p, y->n);
}
static int cmp_tensor_off(const void *a, const void *b) {
    uint64_t x = sort_g->tensors[*(const int64_t *)a].offset;
    uint64_t y = sort_g->tensors[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y ? 1 : 0;
}

static bm_status truncated(bm_err *err, const bm_rd *r, const char *what, size_t need) {
    return bm_err_set(err, BM_EFORMAT,
                      "gguf: truncated file: %s at byte %zu needs %zu bytes, file has %zu", what,
                      r->pos, need, r->n);
}

/* Reads a length-prefixed string; checks the length against the bytes left and UTF-8.
 * what names the string in messages; key (may be NULL) and elem (-1 = none) add context. */
static bm_status rd_str(bm_rd *r, bm_str *s, const char *what, const bm_str *key, int64_t elem,
                        bm_err *err) {
    char ctx[160] = "";
    uint64_t len;
    size_t at = r->pos;
    const uint8_t *p = NULL;
    bool ok = bm_rd_u64(r, &len);
    bool fits = ok && len <= bm_rd_left(r) && bm_rd_bytes(r, (size_t)len, &p);
    bool utf8 = fits && bm_utf8_valid(p, (size_t)len);
    if (utf8) {
        s->p = (const char *)p;
        s->n = (size_t)len;
        return BM_OK;
    }
    if (key && elem >= 0)
        snprintf(ctx, sizeof ctx, " (element %lld of '%.*s')", (long long)elem, show(key->n),
                 key->p);
    else if (key)
        snprintf(ctx, sizeof ctx, " (key '%.*s')", show(key->n), key->p);
    else if (elem >= 0)
        snprintf(ctx, sizeof ctx, " (#%lld)", (long long)elem);
    if (!ok)
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: truncated file: %s%s length at byte %zu needs 8 bytes, file has "
                          "%zu",
                          what, ctx, at, r->n);
    if (!fits)
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: %s%s at byte %zu has length %llu, past the end of the file "
                          "(%zu bytes left, file has %zu)",
                          what, ctx, at, (unsigned long long)len, bm_rd_left(r), r->n);
    return bm_err_set(err, BM_EFORMAT, "gguf: %s%s at byte %zu is not valid UTF-8", what, ctx, at);
}

static const char *type_name(uint32_t t) {
    static const char *const names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < BM_GGUF_TYPE_COUNT ? names[t] : "invalid";
}

static bm_status parse_value(bm_gguf *g, bm_rd *r, kv *e, bm_err *err) {
    const bm_str *k = &e->key;
    size_t start = r->pos;
    e->val = r->p + start;
    if (e->type >= BM_GGUF_TYPE_COUNT)
        return bm_err_set(err, BM_EFORMAT, "gguf: key '%.*s' has invalid value type %u (max %d)",
                          show(k->n), k->p, e->type, BM_GGUF_TYPE_COUNT - 1);
    if (e->type == BM_GGUF_STRING) {
        bm_str s;
        bm_status st = rd_str(r, &s, "string value", k, -1, err);
        if (st) return st;
    } else if (e->type == BM_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (!bm_rd_u32(r, &et) || !bm_rd_u64(r, &n)) return truncated(err, r, "array header", 12);
        if (et == BM_GGUF_ARRAY)
            return bm_err_set(err, BM_EUNSUPPORTED,
                              "gguf: key '%.*s' is an array of arrays (nested arrays are not "
                              "supported)",
                              show(k->n), k->p);
        if (et >= BM_GGUF_TYPE_COUNT)
            return bm_err_set(err, BM_EFORMAT,
                              "gguf: array '%.*s' has invalid element type %u (max %d)",
                              show(k->n), k->p, et, BM_GGUF_TYPE_COUNT - 1);
        e->arr_type = et;
        e->arr_n = n;
        e->arr_data = r->p + r->pos;
        size_t left = bm_rd_left(r);
        if (et == BM_GGUF_STRING) {
            /* each element needs at least its 8-byte length: bound n before allocating */
            if (n > left / 8)
                return bm_err_set(err, BM_EFORMAT,
                                  "gguf: string array '%.*s' claims %llu elements, but the %zu "
                                  "bytes left in the file can hold at most %zu",
                                  show(k->n), k->p, (unsigned long long)n, left, left / 8);
            e->str_off = bm_calloc(n ? (size_t)n : 1, sizeof(uint64_t), err);
            if (!e->str_off) return BM_ENOMEM;
            size_t base = r->pos;
            for (uint64_t j = 0; j < n; j++) {
                e->str_off[j] = r->pos - base;
                bm_str s;
                bm_status st = rd_str(r, &s, "array string", k, (int64_t)j, err);
                if (st) return st;
            }
        } else {
            size_t es = bm_gguf_scalar_bytes(et), total;
            if (!bm_size_mul((size_t)n, es, &total) || n > SIZE_MAX || total > left)
                return bm_err_set(err, BM_EFORMAT,
                                  "gguf: array '%.*s' of %llu %s elements runs past the end of "
                                  "the file (%zu bytes left, file has %zu)",
                                  show(k->n), k->p, (unsigned long long)n, type_name(et), left,
                                  r->n);
            if (et == BM_GGUF_BOOL)
                for (size_t j = 0; j < total; j++)
                    if (e->arr_data[j] > 1)
                        return bm_err_set(err, BM_EFORMAT,
                                          "gguf: bool array '%.*s' element %zu is %u (must be 0 "
                                          "or 1)",
                                          show(k->n), k->p, j, e->arr_data[j]);
            bm_rd_skip(r, total);
        }
    } else {
        size_t es = bm_gguf_scalar_bytes(e->type);
        const uint8_t *p;
        if (!bm_rd_bytes(r, es, &p)) return truncated(err, r, "value", es);
        if (e->type == BM_GGUF_BOOL && p[0] > 1)
            return bm_err_set(err, BM_EFORMAT, "gguf: bool key '%.*s' has value %u (must be 0 or 1)",
                              show(k->n), k->p, p[0]);
    }
    e->val_bytes = r->pos - start;
    (void)g;
    return BM_OK;
}

static bm_status parse_kvs(bm_gguf *g, bm_rd *r, bm_err *err) {
    for (int64_t i = 0; i < g->n_kv; i++) {
        kv *e = &g->kvs[i];
        bm_status st = rd_str(r, &e->key, "key", NULL, i, err);
        if (st) return st;
        if (e->key.n == 0 || e->key.n > GGUF_KEY_MAX)
            return bm_err_set(err, BM_EFORMAT, "gguf: key %lld has length %zu (must be 1..%d)",
                              (long long)i, e->key.n, GGUF_KEY_MAX);
        if (memchr(e->key.p, 0, e->key.n))
            return bm_err_set(err, BM_EFORMAT, "gguf: key '%.*s' contains a NUL byte",
                              show(e->key.n), e->key.p);
        if (!bm_rd_u32(r, &e->type)) return truncated(err, r, "value type", 4);
        st = parse_value(g, r, e, err);
        if (st) return st;
    }
    /* sorted index; duplicates are neighbours */
    g->kv_sorted = bm_calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof(int64_t), err);
    if (!g->kv_sorted) return BM_ENOMEM;
    for (int64_t i = 0; i < g->n_kv; i++) g->kv_sorted[i] = i;
    sort_g = g;
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof(int64_t), cmp_kv);
    for (int64_t i = 1; i < g->n_kv; i++)
        if (cmp_kv(&g->kv_sorted[i - 1], &g->kv_sorted[i]) == 0) {
            const bm_str *k = &g->kvs[g->kv_sorted[i]].key;
            return bm_err_set(err, BM_EFORMAT, "gguf: duplicate key '%.*s'", show(k->n), k->p);
        }
    return BM_OK;
}

static bm_status parse_alignment(bm_gguf *g, bm_err *err) {
    g->alignment = GGUF_DEFAULT_ALIGN;
    int64_t i = bm_gguf_find_key(g, "general.alignment");
    if (i < 0) return BM_OK;
    const kv *e = &g->kvs[i];
    if (e->type != BM_GGUF_U32)
        return bm_err_set(err, BM_EFORMAT, "gguf: general.alignment has type %s, must be u32",
                          type_name(e->type));
    uint32_t a = (uint32_t)bm_le_load(e->val, 4);
    if (a == 0 || (a & (a - 1)))
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: general.alignment = %u is not a power of two (must be 1, 2, 4, "
                          "... 2^31)",
                          a);
    g->alignment = a;
    return BM_OK;
}

static bm_status parse_tensor_info(bm_gguf *g, bm_rd *r, int64_t i, bm_err *err) {
    bm_gguf_tensor *t = &g->tensors[i];
    bm_status st = rd_str(r, &t->name, "tensor name", NULL, i, err);
    if (st) return st;
    const char *nm = t->name.p;
    int nn = show(t->name.n);
    if (t->name.n == 0 || t->name.n > BM_TENSOR_NAME_MAX - 1)
        return bm_err_set(err, BM_EFORMAT, "gguf: tensor %lld name '%.*s' has %zu bytes (must be 1..%d)",
                          (long long)i, nn, nm, t->name.n, BM_TENSOR_NAME_MAX - 1);
    if (memchr(nm, 0, t->name.n))
        return bm_err_set(err, BM_EFORMAT, "gguf: tensor name '%.*s' contains a NUL byte", nn,
                          nm);
    uint32_t nd;
    if (!bm_rd_u32(r, &nd)) return truncated(err, r, "tensor n_dims", 4);
    if (nd == 0 || nd > BM_MAX_DIMS)
        return bm_err_set(err, BM_EFORMAT, "gguf: tensor '%.*s' has n_dims %u (must be 1..%d)", nn,
                          nm, nd, BM_MAX_DIMS);
    t->n_dims = (int)nd;
    int64_t nel = 1;
    for (int d = 0; d < BM_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        if (!bm_rd_u64(r, &v)) return truncated(err, r, "tensor dimension", 8);
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return bm_err_set(err, BM_EFORMAT,
                              "gguf: tensor '%.*s' dimension %u is %lld (must be 1..%lld)", nn, nm,
                              d, (long long)v, (long long)INT64_MAX);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(nel, t->ne[d], &nel))
            return bm_err_set(err, BM_EOVERFLOW,
                              "gguf: tensor '%.*s' element count overflows int64 at dimension %u",
                              nn, nm, d);
    }
    uint32_t type;
    if (!bm_rd_u32(r, &type)) return truncated(err, r, "tensor type", 4);
    const bm_type_traits *tt = bm_type_traits_get((int)type);
    if (!tt)
        return bm_err_set(err, BM_EUNSUPPORTED, "gguf: tensor '%.*s' has unknown type id %u", nn,
                          nm, type);
    t->type = (bm_dtype)type;
    if (t->ne[0] % tt->block_elems)
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: tensor '%.*s' row length %lld is not a multiple of the block "
                          "size %d of %s",
                          nn, nm, (long long)t->ne[0], tt->block_elems, tt->name);
    size_t row;
    if (!bm_row_bytes(t->type, t->ne[0], &row) ||
        !bm_size_mul(row, (size_t)(nel / t->ne[0]), &t->n_bytes))
        return bm_err_set(err, BM_EOVERFLOW, "gguf: tensor '%.*s' byte size overflows size_t", nn,
                          nm);
    if (!bm_rd_u64(r, &t->offset)) return truncated(err, r, "tensor offset", 8);
    return BM_OK;
}

static bm_status check_tensors(bm_gguf *g, bm_err *err) {
    char b1[32], b2[32];
    for (int64_t i = 0; i < g->n_tensors; i++) {
        bm_gguf_tensor *t = &g->tensors[i];
        int nn = show(t->name.n);
        if (t->offset % g->alignment)
            return bm_err_set(err, BM_EFORMAT,
                              "gguf: tensor '%.*s' offset %llu is not a multiple of the alignment "
                              "%zu",
                              nn, t->name.p, (unsigned long long)t->offset, g->alignment);
        uint64_t begin = 0, end = 0;
        bool ovf = !bm_u64_add(g->data_start, t->offset, &begin) ||
                   !bm_u64_add(begin, t->n_bytes, &end);
        if (ovf || end > g->n_bytes) {
            if (ovf)
                return bm_err_set(err, BM_EOVERFLOW,
                                  "gguf: tensor '%.*s' offset %llu + size %zu overflows", nn,
                                  t->name.p, (unsigned long long)t->offset, t->n_bytes);
            return bm_err_set(err, BM_EFORMAT,
                              "gguf: tensor '%.*s' ends at %s (byte %llu), past the end: file "
                              "has %s (%zu bytes)",
                              nn, t->name.p, bm_fmt_bytes(end, b1, sizeof b1),
                              (unsigned long long)end, bm_fmt_bytes(g->n_bytes, b2, sizeof b2),
                              g->n_bytes);
        }
        t->data = g->data + begin;
    }
    int64_t *idx = bm_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof(int64_t), err);
    if (!idx) return BM_ENOMEM;
    for (int64_t i = 0; i < g->n_tensors; i++) idx[i] = i;
    sort_g = g;
    qsort(idx, (size_t)g->n_tensors, sizeof(int64_t), cmp_tensor_off);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        const bm_gguf_tensor *a = &g->tensors[idx[i - 1]], *b = &g->tensors[idx[i]];
        if (a->offset + a->n_bytes > b->offset) {
            bm_status st = bm_err_set(
                err, BM_EFORMAT,
                "gguf: tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap",
                show(a->name.n), a->name.p, (unsigned long long)a->offset,
                (unsigned long long)(a->offset + a->n_bytes), show(b->name.n), b->name.p,
                (unsigned long long)b->offset, (unsigned long long)(b->offset + b->n_bytes));
            free(idx);
            return st;
        }
    }
    /* reuse idx as the name index */
    for (int64_t i = 0; i < g->n_tensors; i++) idx[i] = i;
    qsort(idx, (size_t)g->n_tensors, sizeof(int64_t), cmp_tensor_name);
    g->t_sorted = idx;
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (cmp_tensor_name(&idx[i - 1], &idx[i]) == 0) {
            const bm_str *s = &g->tensors[idx[i]].name;
            return bm_err_set(err, BM_EFORMAT, "gguf: duplicate tensor name '%.*s'", show(s->n),
                              s->p);
        }
    return BM_OK;
}

static bm_status parse(bm_gguf *g, bm_err *err) {
    bm_rd r;
    bm_rd_init(&r, g->data, g->n_bytes);
    uint32_t magic, version;
    if (!bm_rd_u32(&r, &magic)) return truncated(err, &r, "magic", 4);
    if (magic != GGUF_MAGIC) {
        if (magic == __builtin_bswap32(GGUF_MAGIC))
            return bm_err_set(err, BM_EUNSUPPORTED,
                              "gguf: byte-swapped magic: big-endian GGUF files are not supported");
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: bad magic 0x%08x (expected 0x%08x, \"GGUF\"): not a GGUF file",
                          magic, GGUF_MAGIC);
    }
    if (!bm_rd_u32(&r, &version)) return truncated(err, &r, "version", 4);
    if (version != 2 && version != 3) {
        uint32_t sw = __builtin_bswap32(version);
        if (sw >= 1 && sw <= 3)
            return bm_err_set(err, BM_EUNSUPPORTED,
                              "gguf: version field 0x%08x is byte-swapped version %u: big-endian "
                              "GGUF files are not supported",
                              version, sw);
        if (version == 1)
            return bm_err_set(err, BM_EUNSUPPORTED,
                              "gguf: unsupported version 1 (GGUF v1 used 32-bit counts; "
                              "supported versions are 2 and 3)");
        return bm_err_set(err, BM_EUNSUPPORTED,
                          "gguf: unknown version %u (supported versions are 2 and 3)", version);
    }
    g->version = version;
    uint64_t nt, nkv;
    if (!bm_rd_u64(&r, &nt)) return truncated(err, &r, "tensor count", 8);
    if (!bm_rd_u64(&r, &nkv)) return truncated(err, &r, "kv count", 8);
    size_t left = bm_rd_left(&r);
    if (nkv > left / MIN_KV_BYTES)
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: header claims %llu key/values, but the %zu bytes left in the file "
                          "can hold at most %zu",
                          (unsigned long long)nkv, left, left / MIN_KV_BYTES);
    if (nt > left / MIN_TENSOR_INFO_BYTES)
        return bm_err_set(err, BM_EFORMAT,
                          "gguf: header claims %llu tensors, but the %zu bytes left in the file "
                          "can hold at most %zu",
                          (unsigned long long)nt, left, left / MIN_TENSOR_INFO_BYTES);
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;
    g->kvs = bm_calloc(nkv ? (size_t)nkv : 1, sizeof(kv), err);
    g->tensors = bm_calloc(nt ? (size_t)nt : 1, sizeof(bm_gguf_tensor), err);
    if (!g->kvs || !g->tensors) return BM_ENOMEM;
    bm_status st = parse_kvs(g, &r, err);
    if (st) return st;
    st = parse_alignment(g, err);
    if (st) return st;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        st = parse_tensor_info(g, &r, i, err);
        if (st) return st;
    }
    if (!bm_size_align(r.pos, g->alignment, &g->data_start))
        return bm_err_set(err, BM_EOVERFLOW, "gguf: data section start overflows");
    return check_tensors(g, err);
}

static bm_status open_common(bm_gguf *g, bm_gguf **out, bm_err *err) {
    bm_status st = parse(g, err);
    if (st) {
        bm_gguf_close(g);
        return st;
    }
    *out = g;
    return BM_OK;
}

bm_status bm_gguf_open_mem(const void *data, size_t n_bytes, bm_gguf **out, bm_err *err) {
    *out = NULL;
    bm_gguf *g = bm_calloc(1, sizeof *g, err);
    if (!g) return BM_ENOMEM;
    g->data = data;
    g->n_bytes = data ? n_bytes : 0;
    return open_common(g, out, err);
}

bm_status bm_gguf_open(const char *path, bm_gguf **out, bm_err *err) {
    *out = NULL;
    bm_gguf *g = bm_calloc(1, sizeof *g, err);
    if (!g) return BM_ENOMEM;
    bm_status st = bm_mmap_open(&g->map, path, err);
    if (st) {
        free(g);
        return st;
    }
    g->data = g->map.data;
    g->n_bytes = g->map.n_bytes;
    st = open_common(g, out, err);
    if (st && err) bm_err_wrap(err, "%s", path);
    return st;
}

void bm_gguf_close(bm_gguf *g) {
    if (!g) return;
    if (g->kvs)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kvs[i].str_off);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_sorted);
    free(g->t_sorted);
    bm_mmap_close(&g->map);
    free(g);
}

uint32_t bm_gguf_version(const bm_gguf *g) { return g->version; }
size_t bm_gguf_alignment(const bm_gguf *g) { return g->alignment; }
size_t bm_gguf_file_bytes(const bm_gguf *g) { return g->n_bytes; }
void bm_gguf_release(const bm_gguf *g, const void *p, size_t n) { bm_mmap_release(&g->map, p, n); }
int64_t bm_gguf_n_kv(const bm_gguf *g) { return g->n_kv; }

int64_t bm_gguf_find_key(const bm_gguf *g, const char *key) {
    size_t n = strlen(key);
    int64_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const bm_str *k = &g->kvs[g->kv_sorted[mid]].key;
        int c = str_cmp(k->p, k->n, key, n);
        if (c == 0) return g->kv_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static bool kv_ok(const bm_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv; }

bm_str bm_gguf_kv_key(const bm_gguf *g, int64_t i) {
    bm_str none = {"", 0};
    return kv_ok(g, i) ? g->kvs[i].key : none;
}

bm_gguf_type bm_gguf_kv_type(const bm_gguf *g, int64_t i) {
    return kv_ok(g, i) ? (bm_gguf_type)g->kvs[i].type : BM_GGUF_TYPE_COUNT;
}

bm_gguf_type bm_gguf_arr_type(const bm_gguf *g, int64_t i) {
    return kv_ok(g, i) && g->kvs[i].type == BM_GGUF_ARRAY ? (bm_gguf_type)g->kvs[i].arr_type
                                                          : BM_GGUF_TYPE_COUNT;
}

uint64_t bm_gguf_arr_n(const bm_gguf *g, int64_t i) {
    return kv_ok(g, i) && g->kvs[i].type == BM_GGUF_ARRAY ? g->kvs[i].arr_n : 0;
}

const void *bm_gguf_arr_data(const bm_gguf *g, int64_t i) {
    if (!kv_ok(g, i) || g->kvs[i].type != BM_GGUF_ARRAY) return NULL;
    return g->kvs[i].arr_type == BM_GGUF_STRING ? NULL : g->kvs[i].arr_data;
}

bm_str bm_gguf_arr_str(const bm_gguf *g, int64_t i, uint64_t j) {
    bm_str s = {"", 0};
    if (!kv_ok(g, i)) return s;
    const kv *e = &g->kvs[i];
    if (e->type != BM_GGUF_ARRAY || e->arr_type != BM_GGUF_STRING || j >= e->arr_n) return s;
    const uint8_t *p = e->arr_data + e->str_off[j];
    s.n = (size_t)bm_le_load(p, 8);
    s.p = (const char *)p + 8;
    return s;
}

void bm_gguf_kv_raw(const bm_gguf *g, int64_t i, const uint8_t **p, size_t *n) {
    *p = g->kvs[i].val;
    *n = g->kvs[i].val_bytes;
}

/* Integer value of kv e as signed/unsigned 64-bit; false for non-integer types. */
static bool kv_int(const kv *e, bool *neg, uint64_t *mag) {
    size_t es = bm_gguf_scalar_bytes(e->type);
    if (!es || e->type == BM_GGUF_F32 || e->type == BM_GGUF_F64 || e->type == BM_GGUF_BOOL)
        return false;
    uint64_t v = bm_le_load(e->val, (int)es);
    bool is_signed = e->type == BM_GGUF_I8 || e->type == BM_GGUF_I16 ||
                     e->type == BM_GGUF_I32 || e->type == BM_GGUF_I64;
    *neg = false;
    if (is_signed && (v >> (es * 8 - 1)) & 1) {
        *neg = true;
        uint64_t ext = es == 8 ? v : v | (~0ull << (es * 8));
        *mag = ~ext + 1; /* |v| as unsigned */
    } else {
        *mag = v;
    }
    return true;
}

static const kv *find(const bm_gguf *g, const char *key) {
    int64_t i = bm_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kvs[i];
}

bool bm_gguf_get_u32(const bm_gguf *g, const char *key, uint32_t *out) {
    const kv *e = find(g, key);
    bool neg;
    uint64_t m;
    if (!e || !kv_int(e, &neg, &m) || (neg && m) || m > UINT32_MAX) return false;
    *out = (uint32_t)m;
    return true;
}

bool bm_gguf_get_i64(const bm_gguf *g, const char *key, int64_t *out) {
    const kv *e = find(g, key);
    bool neg;
    uint64_t m;
    if (!e || !kv_int(e, &neg, &m)) return false;
    if (neg) {
        if (m > (uint64_t)INT64_MAX + 1) return false;
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)m;
    }
    return true;
}

bool bm_gguf_get_f32(const bm_gguf *g, const char *key, float *out) {
    const kv *e = find(g, key);
    if (!e) return false;
    if (e->type == BM_GGUF_F32) {
        uint32_t b = (uint32_t)bm_le_load(e->val, 4);
        memcpy(out, &b, 4);
        return true;
    }
    if (e->type == BM_GGUF_F64) {
        uint64_t b = bm_le_load(e->val, 8);
        double d;
        memcpy(&d, &b, 8);
        *out = (float)d;
        return true;
    }
    bool neg;
    uint64_t m;
    if (!kv_int(e, &neg, &m)) return false;
    *out = neg ? -(float)m : (float)m;
    return true;
}

bool bm_gguf_get_bool(const bm_gguf *g, const char *key, bool *out) {
    const kv *e = find(g, key);
    if (!e || e->type != BM_GGUF_BOOL) return false;
    *out = e->val[0] != 0;
    return true;
}

bool bm_gguf_get_str(const bm_gguf *g, const char *key, bm_str *out) {
    const kv *e = find(g, key);
    if (!e || e->type != BM_GGUF_STRING) return false;
    out->n = (size_t)bm_le_load(e->val, 8);
    out->p = (const char *)e->val + 8;
    return true;
}

int64_t bm_gguf_n_tensors(const bm_gguf *g) { return g->n_tensors; }

const bm_gguf_tensor *bm_gguf_tensor_at(const bm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const bm_gguf_tensor *bm_gguf_tensor_find(const bm_gguf *g, const char *name) {
    size_t n = strlen(name);
    int64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const bm_str *k = &g->tensors[g->t_sorted[mid]].name;
        int c = str_cmp(k->p, k->n, name, n);
        if (c == 0) return &g->tensors[g->t_sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
