/* A bounds-checked little-endian cursor over untrusted bytes: every read of a file format goes
 * through these helpers, which fail (return false) instead of reading past the end.
 * Values are decoded byte by byte, so the host byte order and alignment do not matter.
 * Internal to src/format/. */
#ifndef BAIMO_FORMAT_READER_H
#define BAIMO_FORMAT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct bm_rd {
    const uint8_t *p; /* start of the buffer */
    size_t n;         /* buffer size */
    size_t pos;       /* next byte to read, always <= n */
} bm_rd;

static inline void bm_rd_init(bm_rd *r, const void *p, size_t n) {
    r->p = p;
    r->n = n;
    r->pos = 0;
}

static inline size_t bm_rd_left(const bm_rd *r) { return r->n - r->pos; }

/* Points *out at the next k bytes and advances; false (nothing consumed) if fewer remain. */
static inline bool bm_rd_bytes(bm_rd *r, size_t k, const uint8_t **out) {
    if (k > r->n - r->pos) return false;
    *out = r->p + r->pos;
    r->pos += k;
    return true;
}

static inline bool bm_rd_skip(bm_rd *r, size_t k) {
    const uint8_t *p;
    return bm_rd_bytes(r, k, &p);
}

static inline uint64_t bm_le_load(const uint8_t *b, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static inline bool bm_rd_u8(bm_rd *r, uint8_t *v) {
    const uint8_t *b;
    if (!bm_rd_bytes(r, 1, &b)) return false;
    *v = b[0];
    return true;
}

static inline bool bm_rd_u32(bm_rd *r, uint32_t *v) {
    const uint8_t *b;
    if (!bm_rd_bytes(r, 4, &b)) return false;
    *v = (uint32_t)bm_le_load(b, 4);
    return true;
}

static inline bool bm_rd_u64(bm_rd *r, uint64_t *v) {
    const uint8_t *b;
    if (!bm_rd_bytes(r, 8, &b)) return false;
    *v = bm_le_load(b, 8);
    return true;
}

#endif
