/* Token shards on disk (format in include/baimo/train.h): writing shards and loss masks, and
 * reading the shards of one split as one mmap'd token stream cut into windows of T+1 tokens.
 * Every header field and file size is validated before use; every token id is checked
 * against the vocabulary once at open, so training never indexes outside the embedding. */
#include "train/train_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HDR = 32, MHDR = 16 };

static bm_status write_all(const char *path, const void *hdr, size_t nh, const void *data,
                           size_t nd, bm_err *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bm_err_set(err, BM_EINVAL, "data: path too long: '%s'", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return bm_err_set(err, BM_EIO, "data: cannot create '%s': %s", tmp, strerror(errno));
    bool ok = fwrite(hdr, 1, nh, f) == nh && (nd == 0 || fwrite(data, 1, nd, f) == nd);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return bm_err_set(err, BM_EIO, "data: cannot write '%s': %s", path, strerror(errno));
    }
    return BM_OK;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

bm_status bm_shard_write(const char *path, const uint32_t *tokens, uint64_t n, uint32_t n_vocab,
                         bm_err *err) {
    uint8_t h[HDR] = {0};
    memcpy(h, BM_SHARD_MAGIC, 8);
    put32(h + 8, 1);
    put32(h + 12, n_vocab);
    put64(h + 16, n);
    size_t bytes;
    if (!bm_size_mul((size_t)n, 4, &bytes))
        return bm_err_set(err, BM_EOVERFLOW, "data: %llu tokens overflow", (unsigned long long)n);
    uint8_t *le = bm_malloc(bytes ? bytes : 1, err);
    if (!le) return BM_ENOMEM;
    for (uint64_t i = 0; i < n; i++) put32(le + 4 * i, tokens[i]);
    bm_status st = write_all(path, h, HDR, le, bytes, err);
    free(le);
    return st;
}

bm_status bm_mask_write(const char *path, const uint8_t *mask, uint64_t n, bm_err *err) {
    uint8_t h[MHDR];
    memcpy(h, BM_MASK_MAGIC, 8);
    put64(h + 8, n);
    return write_all(path, h, MHDR, mask, (size_t)n, err);
}

typedef struct shard {
    bm_mmap tok, mask;
    uint64_t n, start; /* tokens, first global index */
} shard;

struct bm_data {
    shard *s;
    int n_s;
    uint64_t n_tokens;
    uint32_t n_vocab;
    bool has_mask;
};

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bm_status open_shard(const char *path, shard *sh, uint32_t *vocab, bool want_mask,
                            bool *has_mask, bm_err *err) {
    bm_status st = bm_mmap_open(&sh->tok, path, err);
    if (st) return st;
    const uint8_t *d = sh->tok.data;
    if (sh->tok.n_bytes < HDR || memcmp(d, BM_SHARD_MAGIC, 8))
        return bm_err_set(err, BM_EFORMAT, "data: '%s' is not a token shard (magic %s)", path,
                          BM_SHARD_MAGIC);
    if (get32(d + 8) != 1)
        return bm_err_set(err, BM_EUNSUPPORTED, "data: '%s' has shard version %u (known: 1)",
                          path, get32(d + 8));
    uint32_t v = get32(d + 12);
    uint64_t n = get64(d + 16);
    if (v == 0 || (*vocab && v != *vocab))
        return bm_err_set(err, BM_EFORMAT, "data: '%s' has vocabulary %u, other shards %u", path,
                          v, *vocab);
    *vocab = v;
    if (n > (sh->tok.n_bytes - HDR) / 4 || HDR + n * 4 != sh->tok.n_bytes)
        return bm_err_set(err, BM_EFORMAT, "data: '%s' says %llu tokens but holds %zu bytes",
                          path, (unsigned long long)n, sh->tok.n_bytes);
    for (uint64_t i = 0; i < n; i++)
        if (get32(d + HDR + 4 * i) >= v)
            return bm_err_set(err, BM_EFORMAT, "data: '%s' token %llu is %u, outside the "
                              "vocabulary of %u", path, (unsigned long long)i,
                              get32(d + HDR + 4 * i), v);
    sh->n = n;
    char mp[4096];
    size_t len = strlen(path);
    snprintf(mp, sizeof mp, "%.*s.mask", (int)(len - 4), path);
    FILE *f = fopen(mp, "rb");
    *has_mask = f != NULL;
    if (f) fclose(f);
    if (!*has_mask) return BM_OK;
    if (!want_mask) return BM_OK;
    if ((st = bm_mmap_open(&sh->mask, mp, err))) return st;
    if (sh->mask.n_bytes < MHDR || memcmp(sh->mask.data, BM_MASK_MAGIC, 8) ||
        get64(sh->mask.data + 8) != n || sh->mask.n_bytes - MHDR != n)
        return bm_err_set(err, BM_EFORMAT, "data: '%s' is not a loss mask of %llu tokens", mp,
                          (unsigned long long)n);
    return BM_OK;
}

bm_status bm_data_open(const char *dir, const char *split, bm_data **out, bm_err *err) {
    *out = NULL;
    DIR *dd = opendir(dir);
    if (!dd) return bm_err_set(err, BM_EIO, "data: cannot open directory '%s': %s", dir,
                               strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    size_t pl = strlen(split);
    struct dirent *e;
    bm_status st = BM_OK;
    while ((e = readdir(dd))) {
        size_t l = strlen(e->d_name);
        if (l < pl + 5 || strncmp(e->d_name, split, pl) || e->d_name[pl] != '_' ||
            strcmp(e->d_name + l - 4, ".bin"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) {
                st = bm_err_set(err, BM_ENOMEM, "data: out of memory listing '%s'", dir);
                break;
            }
            names = nn;
        }
        names[n] = malloc(strlen(dir) + l + 2);
        if (!names[n]) {
            st = bm_err_set(err, BM_ENOMEM, "data: out of memory listing '%s'", dir);
            break;
        }
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(dd);
    bm_data *d = NULL;
    if (!st && n == 0)
        st = bm_err_set(err, BM_ENOTFOUND, "data: no %s_*.bin shards in '%s' (make them with "
                        "`baimo data prepare`)", split, dir);
    if (!st) {
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        d = bm_calloc(1, sizeof *d, err);
        if (d) d->s = bm_calloc((size_t)n, sizeof *d->s, err);
        if (!d || !d->s) st = BM_ENOMEM;
    }
    for (int i = 0; i < n && !st; i++) {
        bool hm;
        st = open_shard(names[i], &d->s[i], &d->n_vocab, i == 0 || d->has_mask, &hm, err);
        d->n_s = i + 1;
        if (st) break;
        if (i == 0) d->has_mask = hm;
        if (hm != d->has_mask)
            st = bm_err_set(err, BM_EFORMAT, "data: '%s' %s a .mask file but the first shard "
                            "%s", names[i], hm ? "has" : "lacks", hm ? "does not" : "does");
        d->s[i].start = d->n_tokens;
        d->n_tokens += d->s[i].n;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (st) {
        bm_data_close(d);
        return st;
    }
    *out = d;
    return BM_OK;
}

void bm_data_close(bm_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_s; i++) {
        bm_mmap_close(&d->s[i].tok);
        bm_mmap_close(&d->s[i].mask);
    }
    free(d->s);
    free(d);
}

uint64_t bm_data_n_tokens(const bm_data *d) { return d->n_tokens; }
uint32_t bm_data_n_vocab(const bm_data *d) { return d->n_vocab; }
bool bm_data_has_mask(const bm_data *d) { return d->has_mask; }

uint64_t bm_data_n_windows(const bm_data *d, int32_t T) {
    if (T < 1 || d->n_tokens < (uint64_t)T + 1) return 0;
    return (d->n_tokens - 1) / (uint64_t)T;
}

void bm_data_window(const bm_data *d, uint64_t idx, int32_t T, int32_t *tokens, uint8_t *mask) {
    uint64_t nw = bm_data_n_windows(d, T);
    BM_ASSERT(nw > 0);
    uint64_t pos = (idx % nw) * (uint64_t)T;
    int si = 0;
    for (int32_t i = 0; i <= T; i++, pos++) {
        while (pos >= d->s[si].start + d->s[si].n) si++;
        if (pos < d->s[si].start) si = 0;
        while (pos >= d->s[si].start + d->s[si].n) si++;
        uint64_t j = pos - d->s[si].start;
        tokens[i] = (int32_t)get32(d->s[si].tok.data + HDR + 4 * j);
        if (mask) mask[i] = d->has_mask ? d->s[si].mask.data[MHDR + j] : 1;
    }
}
