/* safetensors reader: one file, a sharded model directory, or an in-memory blob. The 8-byte
 * header length is checked against a limit and the file size before the JSON header is parsed
 * (Jansson, duplicates rejected); each entry's dtype, shape and data_offsets are validated
 * (in range, size == product(shape) * dtype size, no overlaps). Tensors of all shards share
 * one table sorted by name for lookups. Data stays in the read-only mappings.
 * Spec: https://huggingface.co/docs/safetensors. Does not convert dtypes. */
#include "baimo/safetensors.h"
#include "format/reader.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_HEADER_MAX (100ull << 20)
#define ST_INDEX_MAX (64u << 20)

struct bm_st {
    bm_mmap *maps;
    char **files; /* file name per map (for messages), "<memory>" for open_mem */
    int n_files;
    bm_st_tensor *ts;
    int *file_of; /* file index of each tensor */
    int64_t n, cap;
    int64_t *sorted; /* tensor indexes sorted by name */
};

typedef struct entry {
    char *name;
    bm_dtype type;
    int n_dims;
    int64_t ne[BM_MAX_DIMS];
    uint64_t begin, end;
} entry;

static int cmp_entry_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static _Thread_local const bm_st *sort_s;
static int cmp_name(const void *a, const void *b) {
    return strcmp(sort_s->ts[*(const int64_t *)a].name, sort_s->ts[*(const int64_t *)b].name);
}

/* Reads a JSON non-negative integer. */
static bool json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bm_status parse_entry(const char *file, const char *name, size_t name_n, json_t *v,
                             uint64_t data_bytes, entry *e, bm_err *err) {
    if (strlen(name) != name_n || name_n == 0)
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: tensor name of %zu bytes is empty or contains NUL",
                          file, name_n);
    if (!json_is_object(v))
        return bm_err_set(err, BM_EFORMAT, "safetensors: %s: entry '%s' is not an object", file,
                          name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) ||
        json_array_size(off) != 2)
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: tensor '%s' needs \"dtype\" (string), \"shape\" "
                          "(array) and \"data_offsets\" ([begin, end])",
                          file, name);
    const char *d = json_string_value(dt);
    size_t es;
    if (!strcmp(d, "F32")) {
        e->type = BM_F32;
        es = 4;
    } else if (!strcmp(d, "F16")) {
        e->type = BM_F16;
        es = 2;
    } else if (!strcmp(d, "BF16")) {
        e->type = BM_BF16;
        es = 2;
    } else {
        return bm_err_set(err, BM_EUNSUPPORTED,
                          "safetensors: %s: tensor '%s' has dtype '%.32s' (supported: F32, F16, "
                          "BF16)",
                          file, name, d);
    }
    size_t nd = json_array_size(sh);
    if (nd > BM_MAX_DIMS)
        return bm_err_set(err, BM_EUNSUPPORTED,
                          "safetensors: %s: tensor '%s' has %zu dimensions (max %d)", file, name,
                          nd, BM_MAX_DIMS);
    e->n_dims = (int)nd;
    uint64_t nbytes = es;
    for (int i = 0; i < BM_MAX_DIMS; i++) e->ne[i] = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t dim;
        if (!json_u64(json_array_get(sh, i), &dim))
            return bm_err_set(err, BM_EFORMAT,
                              "safetensors: %s: tensor '%s' shape[%zu] is not a non-negative "
                              "integer",
                              file, name, i);
        e->ne[nd - 1 - i] = (int64_t)dim; /* GGUF order: innermost first */
        if (!bm_u64_mul(nbytes, dim, &nbytes))
            return bm_err_set(err, BM_EOVERFLOW, "safetensors: %s: tensor '%s' size overflows",
                              file, name);
    }
    if (!json_u64(json_array_get(off, 0), &e->begin) ||
        !json_u64(json_array_get(off, 1), &e->end))
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: tensor '%s' data_offsets are not non-negative "
                          "integers",
                          file, name);
    if (e->begin > e->end || e->end > data_bytes)
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: tensor '%s' data_offsets [%llu, %llu] past the end "
                          "of the data (file has %llu data bytes)",
                          file, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)data_bytes);
    if (e->end - e->begin != nbytes)
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: tensor '%s' has %llu data bytes, but %s x shape "
                          "needs %llu",
                          file, name, (unsigned long long)(e->end - e->begin), d,
                          (unsigned long long)nbytes);
    return BM_OK;
}

static bm_status push(bm_st *s, const entry *e, const uint8_t *data, int file, bm_err *err) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 64;
        bm_st_tensor *nt = realloc(s->ts, (size_t)cap * sizeof *nt);
        if (nt) s->ts = nt;
        int *nf = realloc(s->file_of, (size_t)cap * sizeof *nf);
        if (nf) s->file_of = nf;
        if (!nt || !nf) return bm_err_set(err, BM_ENOMEM, "safetensors: out of memory");
        s->cap = cap;
    }
    bm_st_tensor *t = &s->ts[s->n];
    t->name = e->name;
    t->type = e->type;
    t->n_dims = e->n_dims;
    memcpy(t->ne, e->ne, sizeof t->ne);
    t->data = data + e->begin;
    t->n_bytes = (size_t)(e->end - e->begin);
    s->file_of[s->n++] = file;
    return BM_OK;
}

/* Parses one blob and appends its tensors (in data order) to s. */
static bm_status parse_blob(bm_st *s, const uint8_t *p, size_t n, int file, bm_err *err) {
    const char *fn = s->files[file];
    bm_rd r;
    bm_rd_init(&r, p, n);
    uint64_t hn;
    if (!bm_rd_u64(&r, &hn))
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: truncated file: %zu bytes, the header length alone "
                          "needs 8",
                          fn, n);
    if (hn > ST_HEADER_MAX)
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: header size %llu exceeds the limit of %llu bytes "
                          "(100 MiB)",
                          fn, (unsigned long long)hn, ST_HEADER_MAX);
    const uint8_t *hp;
    if (hn > bm_rd_left(&r) || !bm_rd_bytes(&r, (size_t)hn, &hp))
        return bm_err_set(err, BM_EFORMAT,
                          "safetensors: %s: header size %llu runs past the end: file has %zu "
                          "bytes",
                          fn, (unsigned long long)hn, n);
    uint64_t data_bytes = bm_rd_left(&r);
    const uint8_t *data = p + r.pos;
    json_error_t je;
    json_t *root = json_loadb((const char *)hp, (size_t)hn, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return bm_err_set(err, BM_EFORMAT, "safetensors: %s: bad JSON header at byte %d: %s", fn,
                          je.position, je.text);
    bm_status st = BM_OK;
    entry *es = NULL;
    size_t ne = 0;
    if (!json_is_object(root)) {
        st = bm_err_set(err, BM_EFORMAT, "safetensors: %s: header is not a JSON object", fn);
        goto done;
    }
    es = calloc(json_object_size(root) + 1, sizeof *es);
    if (!es) {
        st = bm_err_set(err, BM_ENOMEM, "safetensors: out of memory");
        goto done;
    }
    const char *key;
    size_t key_n;
    json_t *v;
    json_object_keylen_foreach(root, key, key_n, v) {
        if (key_n == 12 && !memcmp(key, "__metadata__", 12)) {
            if (!json_is_object(v)) {
                st = bm_err_set(err, BM_EFORMAT, "safetensors: %s: __metadata__ is not an object",
                                fn);
                goto done;
            }
            continue;
        }
        entry *e = &es[ne];
        st = parse_entry(fn, key, key_n, v, data_bytes, e, err);
        if (st) goto done;
        e->name = strdup(key);
        if (!e->name) {
            st = bm_err_set(err, BM_ENOMEM, "safetensors: out of memory");
            goto done;
        }
        ne++;
    }
    qsort(es, ne, sizeof *es, cmp_entry_begin);
    const entry *prev = NULL;
    for (size_t i = 0; i < ne; i++) {
        if (es[i].begin == es[i].end) continue; /* empty tensors occupy no bytes */
        if (prev && prev->end > es[i].begin) {
            st = bm_err_set(err, BM_EFORMAT,
                            "safetensors: %s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) "
                            "overlap",
                            fn, prev->name, (unsigned long long)prev->begin,
                            (unsigned long long)prev->end, es[i].name,
                            (unsigned long long)es[i].begin, (unsigned long long)es[i].end);
            goto done;
        }
        prev = &es[i];
    }
    for (size_t i = 0; i < ne; i++) {
        st = push(s, &es[i], data, file, err);
        if (st) goto done;
        es[i].name = NULL; /* owned by s now */
    }
done:
    if (es)
        for (size_t i = 0; i < ne; i++) free(es[i].name);
    free(es);
    json_decref(root);
    return st;
}

static bm_status add_file_slot(bm_st *s, const char *label, bm_err *err) {
    bm_mmap *nm = realloc(s->maps, (size_t)(s->n_files + 1) * sizeof *nm);
    if (nm) s->maps = nm;
    char **nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *nf);
    if (nf) s->files = nf;
    char *l = strdup(label);
    if (!nm || !nf || !l) {
        free(l);
        return bm_err_set(err, BM_ENOMEM, "safetensors: out of memory");
    }
    s->maps[s->n_files] = (bm_mmap){0};
    s->files[s->n_files++] = l;
    return BM_OK;
}

static bm_status add_file(bm_st *s, const char *path, bm_err *err) {
    bm_status st = add_file_slot(s, path, err);
    if (st) return st;
    int f = s->n_files - 1;
    st = bm_mmap_open(&s->maps[f], path, err);
    if (st) return st;
    return parse_blob(s, s->maps[f].data, s->maps[f].n_bytes, f, err);
}

/* Builds the name index; duplicate names (across shards) are an error. */
static bm_status finish(bm_st *s, bm_err *err) {
    s->sorted = bm_calloc(s->n ? (size_t)s->n : 1, sizeof(int64_t), err);
    if (!s->sorted) return BM_ENOMEM;
    for (int64_t i = 0; i < s->n; i++) s->sorted[i] = i;
    sort_s = s;
    qsort(s->sorted, (size_t)s->n, sizeof(int64_t), cmp_name);
    for (int64_t i = 1; i < s->n; i++) {
        int64_t a = s->sorted[i - 1], b = s->sorted[i];
        if (!strcmp(s->ts[a].name, s->ts[b].name))
            return bm_err_set(err, BM_EFORMAT, "safetensors: duplicate tensor '%s' in %s and %s",
                              s->ts[a].name, s->files[s->file_of[a]], s->files[s->file_of[b]]);
    }
    return BM_OK;
}

static bm_status done(bm_st *s, bm_status st, bm_st **out) {
    if (st) {
        bm_st_close(s);
        return st;
    }
    *out = s;
    return BM_OK;
}

bm_status bm_st_open_mem(const void *data, size_t n_bytes, bm_st **out, bm_err *err) {
    *out = NULL;
    bm_st *s = bm_calloc(1, sizeof *s, err);
    if (!s) return BM_ENOMEM;
    bm_status st = add_file_slot(s, "<memory>", err);
    if (!st) st = parse_blob(s, data, data ? n_bytes : 0, 0, err);
    if (!st) st = finish(s, err);
    return done(s, st, out);
}

bm_status bm_st_open_file(const char *path, bm_st **out, bm_err *err) {
    *out = NULL;
    bm_st *s = bm_calloc(1, sizeof *s, err);
    if (!s) return BM_ENOMEM;
    bm_status st = add_file(s, path, err);
    if (!st) st = finish(s, err);
    return done(s, st, out);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Shard file names from model.safetensors.index.json: sorted, unique, plain names. */
static bm_status index_files(const char *dir, const char *ipath, json_t **root_out,
                             char ***names, size_t *n_names, bm_err *err) {
    char *text;
    size_t tn;
    bm_status st = bm_file_read(ipath, &text, &tn, ST_INDEX_MAX, err);
    if (st) return st;
    json_error_t je;
    json_t *root = json_loadb(text, tn, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root)
        return bm_err_set(err, BM_EFORMAT, "safetensors: %s: bad JSON at line %d: %s", ipath,
                          je.line, je.text);
    *root_out = root;
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm))
        return bm_err_set(err, BM_EFORMAT, "safetensors: %s: no \"weight_map\" object", ipath);
    char **v = calloc(json_object_size(wm) + 1, sizeof *v);
    if (!v) return bm_err_set(err, BM_ENOMEM, "safetensors: out of memory");
    size_t n = 0;
    const char *k;
    json_t *f;
    json_object_foreach(wm, k, f) {
        const char *fn = json_string_value(f);
        if (!fn || !*fn || strchr(fn, '/') || !strcmp(fn, ".") || !strcmp(fn, "..")) {
            free(v);
            return bm_err_set(err, BM_EFORMAT,
                              "safetensors: %s: tensor '%s' maps to '%s', which is not a file "
                              "name in %s",
                              ipath, k, fn ? fn : "(not a string)", dir);
        }
        v[n++] = (char *)fn;
    }
    qsort(v, n, sizeof *v, cmp_cstr);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(v[u - 1], v[i])) v[u++] = v[i];
    *names = v;
    *n_names = u;
    return BM_OK;
}

bm_status bm_st_open_dir(const char *dir, bm_st **out, bm_err *err) {
    *out = NULL;
    bm_st *s = bm_calloc(1, sizeof *s, err);
    if (!s) return BM_ENOMEM;
    size_t dl = strlen(dir);
    char *path = malloc(dl + 4096);
    if (!path) return done(s, bm_err_set(err, BM_ENOMEM, "safetensors: out of memory"), out);
    bm_status st = BM_OK;
    json_t *root = NULL;
    char **names = NULL;
    size_t n_names = 0;
    bool names_owned = false;
    snprintf(path, dl + 4096, "%s/model.safetensors.index.json", dir);
    if (exists(path)) {
        st = index_files(dir, path, &root, &names, &n_names, err);
    } else {
        snprintf(path, dl + 4096, "%s/model.safetensors", dir);
        if (exists(path)) {
            st = add_file(s, path, err);
            goto finish_up;
        }
        DIR *d = opendir(dir);
        if (!d) {
            st = bm_err_set(err, BM_ENOTFOUND, "safetensors: cannot open directory '%s'", dir);
            goto finish_up;
        }
        size_t cap = 0;
        names_owned = true;
        for (struct dirent *de; (de = readdir(d));) {
            size_t l = strlen(de->d_name);
            if (l <= 12 || strcmp(de->d_name + l - 12, ".safetensors") || l > 4000) continue;
            if (n_names == cap) {
                cap = cap ? cap * 2 : 16;
                char **nn = realloc(names, cap * sizeof *nn);
                if (!nn) break;
                names = nn;
            }
            names[n_names] = strdup(de->d_name);
            if (names[n_names]) n_names++;
        }
        closedir(d);
        if (n_names == 0) {
            st = bm_err_set(err, BM_ENOTFOUND,
                            "safetensors: no model.safetensors.index.json, model.safetensors or "
                            "*.safetensors in '%s'",
                            dir);
            goto finish_up;
        }
        qsort(names, n_names, sizeof *names, cmp_cstr);
    }
    for (size_t i = 0; !st && i < n_names; i++) {
        if (strlen(names[i]) > 4000) {
            st = bm_err_set(err, BM_EFORMAT, "safetensors: shard name too long");
            break;
        }
        snprintf(path, dl + 4096, "%s/%s", dir, names[i]);
        st = add_file(s, path, err);
    }
finish_up:
    if (!st) st = finish(s, err);
    if (!st && root) { /* every tensor the index names must be present */
        const char *k;
        json_t *f;
        json_object_foreach(json_object_get(root, "weight_map"), k, f) {
            if (!bm_st_find(s, k)) {
                st = bm_err_set(err, BM_EFORMAT,
                                "safetensors: index names tensor '%s' in '%s', but no shard has it",
                                k, json_string_value(f));
                break;
            }
        }
    }
    if (names_owned)
        for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    json_decref(root);
    free(path);
    return done(s, st, out);
}

void bm_st_release(const bm_st *s, const void *p, size_t n) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) bm_mmap_release(&s->maps[i], p, n); /* checks range */
}

void bm_st_close(bm_st *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) free((char *)s->ts[i].name);
    for (int i = 0; i < s->n_files; i++) {
        bm_mmap_close(&s->maps[i]);
        free(s->files[i]);
    }
    free(s->maps);
    free(s->files);
    free(s->ts);
    free(s->file_of);
    free(s->sorted);
    free(s);
}

int64_t bm_st_n_tensors(const bm_st *s) { return s->n; }

const bm_st_tensor *bm_st_tensor_at(const bm_st *s, int64_t i) {
    return i >= 0 && i < s->n ? &s->ts[i] : NULL;
}

const bm_st_tensor *bm_st_find(const bm_st *s, const char *name) {
    int64_t lo = 0, hi = s->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->ts[s->sorted[mid]].name, name);
        if (c == 0) return &s->ts[s->sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
