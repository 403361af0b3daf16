/* Streaming GGUF v3 writer. Key/values are encoded when set (setting a key again replaces its
 * value in place); tensors are declared up front so begin() can write the header, metadata and
 * tensor infos with final offsets; write_tensor() then streams each tensor's bytes in order,
 * padded to the alignment. Output goes to "<path>.tmp", renamed over path only by finish(), so
 * a failed or abandoned write never leaves a truncated file under the real name. */
#include "format/gguf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    size_t key_n;
    uint32_t type;
    uint8_t *val; /* encoded value */
    size_t val_bytes;
} wkv;

typedef struct wtensor {
    char name[BM_TENSOR_NAME_MAX];
    bm_dtype type;
    int n_dims;
    int64_t ne[BM_MAX_DIMS];
    size_t n_bytes;
    uint64_t offset;
} wtensor;

struct bm_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
    size_t alignment;
    FILE *f;
    char *path, *tmp_path;
    size_t next; /* next tensor to write */
    bool failed; /* an I/O error happened after begin */
};

/* A small growable byte buffer for encoding values. */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    size_t need;
    if (!bm_size_add(b->n, n, &need)) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n = need;
}
static void put_le(buf *b, uint64_t v, int k) {
    uint8_t t[8];
    for (int i = 0; i < k; i++) t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)k);
}
static void put_str(buf *b, const char *s, size_t n) {
    put_le(b, n, 8);
    put(b, s, n);
}

bm_gguf_writer *bm_gguf_writer_new(bm_err *err) {
    bm_gguf_writer *w = bm_calloc(1, sizeof *w, err);
    if (w) w->alignment = 32;
    return w;
}

void bm_gguf_writer_free(bm_gguf_writer *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        unlink(w->tmp_path);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    free(w->kvs);
    free(w->ts);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

static bm_status check_open(bm_gguf_writer *w, bm_err *err) {
    if (w->f || w->path)
        return bm_err_set(err, BM_EINVAL, "gguf writer: metadata and tensors must be declared "
                                          "before begin()");
    return BM_OK;
}

/* Stores key -> (type, encoded value), taking ownership of val (freed on failure). */
static bm_status set_kv(bm_gguf_writer *w, const char *key, size_t key_n, uint32_t type,
                        buf *v, bm_err *err) {
    bm_status st = check_open(w, err);
    if (!st && v->oom) st = bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory encoding '%s'", key);
    if (!st && (key_n == 0 || key_n > 65535 || !bm_utf8_valid((const uint8_t *)key, key_n)))
        st = bm_err_set(err, BM_EINVAL, "gguf writer: key of %zu bytes must be 1..65535 bytes "
                                        "of valid UTF-8", key_n);
    if (!st && type == BM_GGUF_U32 && key_n == 17 && !memcmp(key, "general.alignment", 17)) {
        uint32_t a = (uint32_t)v->p[0] | (uint32_t)v->p[1] << 8 | (uint32_t)v->p[2] << 16 |
                     (uint32_t)v->p[3] << 24;
        if (a == 0 || (a & (a - 1)))
            st = bm_err_set(err, BM_EINVAL, "gguf writer: general.alignment = %u is not a power "
                                            "of two", a);
        else
            w->alignment = a;
    } else if (!st && key_n == 17 && !memcmp(key, "general.alignment", 17)) {
        st = bm_err_set(err, BM_EINVAL, "gguf writer: general.alignment must be u32");
    }
    if (st) {
        free(v->p);
        return st;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kvs[i].key_n == key_n && !memcmp(w->kvs[i].key, key, key_n)) {
            free(w->kvs[i].val);
            w->kvs[i].type = type;
            w->kvs[i].val = v->p;
            w->kvs[i].val_bytes = v->n;
            return BM_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *nk = realloc(w->kvs, cap * sizeof *nk);
        if (!nk) {
            free(v->p);
            return bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory");
        }
        w->kvs = nk;
        w->cap_kv = cap;
    }
    char *k = malloc(key_n + 1);
    if (!k) {
        free(v->p);
        return bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory");
    }
    memcpy(k, key, key_n);
    k[key_n] = 0;
    w->kvs[w->n_kv++] = (wkv){k, key_n, type, v->p, v->n};
    return BM_OK;
}

static bm_status set_scalar(bm_gguf_writer *w, const char *key, uint32_t type, uint64_t bits,
                            bm_err *err) {
    buf b = {0};
    put_le(&b, bits, (int)bm_gguf_scalar_bytes(type));
    return set_kv(w, key, strlen(key), type, &b, err);
}

bm_status bm_gguf_writer_set_u32(bm_gguf_writer *w, const char *key, uint32_t v, bm_err *err) {
    return set_scalar(w, key, BM_GGUF_U32, v, err);
}
bm_status bm_gguf_writer_set_i32(bm_gguf_writer *w, const char *key, int32_t v, bm_err *err) {
    return set_scalar(w, key, BM_GGUF_I32, (uint32_t)v, err);
}
bm_status bm_gguf_writer_set_u64(bm_gguf_writer *w, const char *key, uint64_t v, bm_err *err) {
    return set_scalar(w, key, BM_GGUF_U64, v, err);
}
bm_status bm_gguf_writer_set_f32(bm_gguf_writer *w, const char *key, float v, bm_err *err) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, BM_GGUF_F32, bits, err);
}
bm_status bm_gguf_writer_set_bool(bm_gguf_writer *w, const char *key, bool v, bm_err *err) {
    return set_scalar(w, key, BM_GGUF_BOOL, v ? 1 : 0, err);
}

bm_status bm_gguf_writer_set_str(bm_gguf_writer *w, const char *key, const char *v, bm_err *err) {
    size_t n = strlen(v);
    if (!bm_utf8_valid((const uint8_t *)v, n))
        return bm_err_set(err, BM_EINVAL, "gguf writer: value of '%s' is not valid UTF-8", key);
    buf b = {0};
    put_str(&b, v, n);
    return set_kv(w, key, strlen(key), BM_GGUF_STRING, &b, err);
}

bm_status bm_gguf_writer_set_arr(bm_gguf_writer *w, const char *key, bm_gguf_type elem,
                                 const void *data, uint64_t n, bm_err *err) {
    size_t es = bm_gguf_scalar_bytes(elem), total;
    if (!es)
        return bm_err_set(err, BM_EINVAL, "gguf writer: array '%s' element type %d is not a "
                                          "numeric type", key, (int)elem);
    if (n > SIZE_MAX || !bm_size_mul((size_t)n, es, &total))
        return bm_err_set(err, BM_EOVERFLOW, "gguf writer: array '%s' of %llu elements overflows",
                          key, (unsigned long long)n);
    buf b = {0};
    put_le(&b, elem, 4);
    put_le(&b, n, 8);
    put(&b, data, total); /* host is little-endian (x86-64, aarch64) */
    return set_kv(w, key, strlen(key), BM_GGUF_ARRAY, &b, err);
}

bm_status bm_gguf_writer_set_arr_str(bm_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, uint64_t n, bm_err *err) {
    buf b = {0};
    put_le(&b, BM_GGUF_STRING, 4);
    put_le(&b, n, 8);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(strs[i]);
        if (!bm_utf8_valid((const uint8_t *)strs[i], len)) {
            free(b.p);
            return bm_err_set(err, BM_EINVAL,
                              "gguf writer: element %llu of '%s' is not valid UTF-8",
                              (unsigned long long)i, key);
        }
        put_str(&b, strs[i], len);
    }
    return set_kv(w, key, strlen(key), BM_GGUF_ARRAY, &b, err);
}

bm_status bm_gguf_writer_copy_kv(bm_gguf_writer *w, const bm_gguf *g,
                                 bool (*skip)(const char *key, size_t n), bm_err *err) {
    for (int64_t i = 0; i < bm_gguf_n_kv(g); i++) {
        bm_str k = bm_gguf_kv_key(g, i);
        if (skip && skip(k.p, k.n)) continue;
        const uint8_t *p;
        size_t n;
        bm_gguf_kv_raw(g, i, &p, &n);
        buf b = {0};
        put(&b, p, n);
        char *key = malloc(k.n + 1);
        if (!key) {
            free(b.p);
            return bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory");
        }
        memcpy(key, k.p, k.n);
        key[k.n] = 0;
        bm_status st = set_kv(w, key, k.n, (uint32_t)bm_gguf_kv_type(g, i), &b, err);
        free(key);
        if (st) return st;
    }
    return BM_OK;
}

bm_status bm_gguf_writer_add_tensor(bm_gguf_writer *w, const char *name, bm_dtype type,
                                    int n_dims, const int64_t *ne, bm_err *err) {
    bm_status st = check_open(w, err);
    if (st) return st;
    size_t nl = strlen(name);
    if (nl == 0 || nl > BM_TENSOR_NAME_MAX - 1 || !bm_utf8_valid((const uint8_t *)name, nl))
        return bm_err_set(err, BM_EINVAL,
                          "gguf writer: tensor name '%.96s' must be 1..%d bytes of UTF-8", name,
                          BM_TENSOR_NAME_MAX - 1);
    if (n_dims < 1 || n_dims > BM_MAX_DIMS)
        return bm_err_set(err, BM_EINVAL, "gguf writer: tensor '%s' n_dims %d (must be 1..%d)",
                          name, n_dims, BM_MAX_DIMS);
    const bm_type_traits *tt = bm_type_traits_get((int)type);
    if (!tt) return bm_err_set(err, BM_EINVAL, "gguf writer: tensor '%s' unknown type %d", name, (int)type);
    size_t rows = 1, row;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0)
            return bm_err_set(err, BM_EINVAL, "gguf writer: tensor '%s' dimension %d is %lld",
                              name, d, (long long)ne[d]);
        if (d > 0 && !bm_size_mul(rows, (size_t)ne[d], &rows))
            return bm_err_set(err, BM_EOVERFLOW, "gguf writer: tensor '%s' size overflows", name);
    }
    if (!bm_row_bytes(type, ne[0], &row))
        return bm_err_set(err, BM_EINVAL,
                          "gguf writer: tensor '%s' row length %lld is not a multiple of the "
                          "block size %d of %s",
                          name, (long long)ne[0], tt->block_elems, tt->name);
    wtensor t = {.type = type, .n_dims = n_dims};
    if (!bm_size_mul(row, rows, &t.n_bytes))
        return bm_err_set(err, BM_EOVERFLOW, "gguf writer: tensor '%s' size overflows", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->ts[i].name, name))
            return bm_err_set(err, BM_EINVAL, "gguf writer: duplicate tensor name '%s'", name);
    memcpy(t.name, name, nl + 1);
    for (int d = 0; d < BM_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->ts, cap * sizeof *nt);
        if (!nt) return bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory");
        w->ts = nt;
        w->cap_t = cap;
    }
    w->ts[w->n_t++] = t;
    return BM_OK;
}

static bm_status io_fail(bm_gguf_writer *w, const char *what, bm_err *err) {
    int e = errno;
    w->failed = true;
    return bm_err_set(err, BM_EIO, "gguf writer: %s '%s': %s", what, w->tmp_path,
                      e ? strerror(e) : "write error");
}

static bool write_pad(FILE *f, uint64_t n) {
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        if (fwrite(zeros, 1, k, f) != k) return false;
        n -= k;
    }
    return true;
}

bm_status bm_gguf_writer_begin(bm_gguf_writer *w, const char *path, bm_err *err) {
    bm_status st = check_open(w, err);
    if (st) return st;
    size_t pl = strlen(path);
    w->path = malloc(pl + 1);
    w->tmp_path = malloc(pl + 5);
    if (!w->path || !w->tmp_path) return bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory");
    memcpy(w->path, path, pl + 1);
    memcpy(w->tmp_path, path, pl);
    memcpy(w->tmp_path + pl, ".tmp", 5);
    /* offsets: each tensor starts at a multiple of the alignment */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->ts[i].offset = off;
        uint64_t end;
        if (!bm_u64_add(off, w->ts[i].n_bytes, &end) || !bm_u64_add(end, w->alignment - 1, &off))
            return bm_err_set(err, BM_EOVERFLOW, "gguf writer: total size overflows");
        off &= ~(uint64_t)(w->alignment - 1);
    }
    buf b = {0};
    put_le(&b, 0x46554747u, 4);
    put_le(&b, 3, 4);
    put_le(&b, w->n_t, 8);
    put_le(&b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&b, w->kvs[i].key, w->kvs[i].key_n);
        put_le(&b, w->kvs[i].type, 4);
        put(&b, w->kvs[i].val, w->kvs[i].val_bytes);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        put_str(&b, t->name, strlen(t->name));
        put_le(&b, (uint64_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) put_le(&b, (uint64_t)t->ne[d], 8);
        put_le(&b, (uint64_t)t->type, 4);
        put_le(&b, t->offset, 8);
    }
    size_t padded;
    if (!bm_size_align(b.n, w->alignment, &padded)) b.oom = true;
    while (!b.oom && b.n < padded) put_le(&b, 0, 1);
    if (b.oom) {
        free(b.p);
        return bm_err_set(err, BM_ENOMEM, "gguf writer: out of memory encoding the header");
    }
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        free(b.p);
        errno = errno ? errno : EIO;
        w->failed = true;
        return bm_err_set(err, BM_EIO, "gguf writer: cannot create '%s': %s", w->tmp_path,
                          strerror(errno));
    }
    errno = 0;
    bool ok = fwrite(b.p, 1, b.n, w->f) == b.n;
    free(b.p);
    if (!ok) return io_fail(w, "cannot write", err);
    return BM_OK;
}

bm_status bm_gguf_writer_write_tensor(bm_gguf_writer *w, const void *data, size_t n_bytes,
                                      bm_err *err) {
    if (!w->f || w->failed)
        return bm_err_set(err, BM_EINVAL, "gguf writer: write_tensor outside begin()..finish() "
                                          "or after an error");
    if (w->next >= w->n_t)
        return bm_err_set(err, BM_EINVAL, "gguf writer: all %zu declared tensors are already "
                                          "written", w->n_t);
    const wtensor *t = &w->ts[w->next];
    if (n_bytes != t->n_bytes)
        return bm_err_set(err, BM_EINVAL, "gguf writer: tensor '%s' has %zu bytes, got %zu",
                          t->name, t->n_bytes, n_bytes);
    errno = 0;
    if (fwrite(data, 1, n_bytes, w->f) != n_bytes) return io_fail(w, "cannot write", err);
    size_t padded = n_bytes;
    bm_size_align(n_bytes, w->alignment, &padded); /* cannot overflow: checked in begin() */
    if (w->next + 1 < w->n_t && !write_pad(w->f, padded - n_bytes))
        return io_fail(w, "cannot write", err);
    w->next++;
    return BM_OK;
}

bm_status bm_gguf_writer_finish(bm_gguf_writer *w, bm_err *err) {
    if (!w->f || w->failed)
        return bm_err_set(err, BM_EINVAL, "gguf writer: finish without begin() or after an error");
    if (w->next != w->n_t)
        return bm_err_set(err, BM_EINVAL, "gguf writer: only %zu of %zu tensors written (next: "
                                          "'%s')", w->next, w->n_t, w->ts[w->next].name);
    errno = 0;
    FILE *f = w->f;
    w->f = NULL;
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        unlink(w->tmp_path);
        w->failed = true;
        return bm_err_set(err, BM_EIO, "gguf writer: cannot write '%s': %s", w->tmp_path,
                          strerror(e ? e : EIO));
    }
    if (rename(w->tmp_path, w->path) != 0) {
        e = errno;
        unlink(w->tmp_path);
        w->failed = true;
        return bm_err_set(err, BM_EIO, "gguf writer: cannot rename '%s' to '%s': %s",
                          w->tmp_path, w->path, strerror(e));
    }
    return BM_OK;
}
