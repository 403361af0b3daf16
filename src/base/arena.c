/* Arena (bump) allocator over a list of chunks; reset keeps the chunks for reuse. */
#include "baimo/base.h"

#include <stdlib.h>
#include <string.h>

struct bm_arena_chunk {
    struct bm_arena_chunk *next;
    size_t cap, used;
    _Alignas(64) unsigned char data[];
};

void bm_arena_init(bm_arena *a, size_t chunk_bytes, size_t limit_bytes) {
    memset(a, 0, sizeof *a);
    a->chunk_bytes = chunk_bytes ? chunk_bytes : (1u << 20);
    a->limit_bytes = limit_bytes;
}

void bm_arena_fini(bm_arena *a) {
    if (!a) return;
    struct bm_arena_chunk *c = a->head;
    while (c) {
        struct bm_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total_bytes = a->used_bytes = 0;
}

void *bm_arena_alloc(bm_arena *a, size_t n, bm_err *err) {
    size_t need;
    if (!bm_size_align(n ? n : 1, 64, &need)) {
        bm_err_set(err, BM_EOVERFLOW, "arena: allocation of %zu bytes overflows", n);
        return NULL;
    }
    /* first chunk with room (chunks after a reset are reused in order) */
    for (struct bm_arena_chunk *c = a->head; c; c = c->next) {
        if (c->cap - c->used >= need) {
            void *p = c->data + c->used;
            c->used += need;
            a->used_bytes += need;
            if (a->used_bytes > a->peak_bytes) a->peak_bytes = a->used_bytes;
            return p;
        }
    }
    size_t cap = need > a->chunk_bytes ? need : a->chunk_bytes, total;
    if (a->limit_bytes && (!bm_size_add(a->total_bytes, cap, &total) || total > a->limit_bytes)) {
        bm_err_set(err, BM_ENOMEM, "arena: %zu more bytes would exceed the limit of %zu bytes",
                   cap, a->limit_bytes);
        return NULL;
    }
    size_t alloc;
    if (!bm_size_add(sizeof(struct bm_arena_chunk), cap, &alloc)) {
        bm_err_set(err, BM_EOVERFLOW, "arena: chunk of %zu bytes overflows", cap);
        return NULL;
    }
    struct bm_arena_chunk *c = aligned_alloc(64, (alloc + 63) & ~(size_t)63);
    if (!c) {
        bm_err_set(err, BM_ENOMEM, "arena: out of memory allocating %zu bytes", cap);
        return NULL;
    }
    c->cap = cap;
    c->used = need;
    c->next = a->head;
    a->head = c;
    a->total_bytes += cap;
    a->used_bytes += need;
    if (a->used_bytes > a->peak_bytes) a->peak_bytes = a->used_bytes;
    return c->data;
}

void *bm_arena_calloc(bm_arena *a, size_t count, size_t size, bm_err *err) {
    size_t n;
    if (!bm_size_mul(count, size, &n)) {
        bm_err_set(err, BM_EOVERFLOW, "arena: %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = bm_arena_alloc(a, n, err);
    if (p) memset(p, 0, n);
    return p;
}

char *bm_arena_strdup(bm_arena *a, const char *s, size_t len, bm_err *err) {
    char *p = bm_arena_alloc(a, len + 1, err);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

void bm_arena_reset(bm_arena *a) {
    for (struct bm_arena_chunk *c = a->head; c; c = c->next) c->used = 0;
    a->used_bytes = 0;
}
