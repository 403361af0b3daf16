/* Internals shared by the GGUF reader and writer (src/format/ only): scalar sizes of the kv
 * types and raw access to a kv's encoded value, which the writer copies verbatim. */
#ifndef BAIMO_FORMAT_GGUF_INTERNAL_H
#define BAIMO_FORMAT_GGUF_INTERNAL_H

#include "baimo/gguf.h"

/* Bytes of one scalar of kv type t; 0 for STRING, ARRAY and unknown types. */
static inline size_t bm_gguf_scalar_bytes(uint32_t t) {
    switch (t) {
    case BM_GGUF_U8: case BM_GGUF_I8: case BM_GGUF_BOOL: return 1;
    case BM_GGUF_U16: case BM_GGUF_I16: return 2;
    case BM_GGUF_U32: case BM_GGUF_I32: case BM_GGUF_F32: return 4;
    case BM_GGUF_U64: case BM_GGUF_I64: case BM_GGUF_F64: return 8;
    default: return 0;
    }
}

/* The encoded value of kv i exactly as in the file (after the u32 type), borrowed. */
void bm_gguf_kv_raw(const bm_gguf *g, int64_t i, const uint8_t **p, size_t *n);

#endif
