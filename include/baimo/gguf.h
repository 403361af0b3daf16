/* GGUF v2/v3 reader over a read-only mmap and a streaming GGUF writer.
 * The reader validates every count, offset, size, alignment and string length against the
 * file size before use: a hostile file yields BM_EFORMAT with a message, never an
 * out-of-bounds read or an allocation larger than the file justifies.
 * Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md */
#ifndef BAIMO_GGUF_H
#define BAIMO_GGUF_H

#include "baimo/base.h"
#include "baimo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bm_gguf_type {
    BM_GGUF_U8 = 0,
    BM_GGUF_I8 = 1,
    BM_GGUF_U16 = 2,
    BM_GGUF_I16 = 3,
    BM_GGUF_U32 = 4,
    BM_GGUF_I32 = 5,
    BM_GGUF_F32 = 6,
    BM_GGUF_BOOL = 7,
    BM_GGUF_STRING = 8,
    BM_GGUF_ARRAY = 9,
    BM_GGUF_U64 = 10,
    BM_GGUF_I64 = 11,
    BM_GGUF_F64 = 12,
    BM_GGUF_TYPE_COUNT
} bm_gguf_type;

typedef struct bm_gguf bm_gguf;

/* A string view into the file (not NUL-terminated). */
typedef struct bm_str {
    const char *p;
    size_t n;
} bm_str;

/* Tensor info; data points into the mapping. Borrowed: valid until bm_gguf_close(). */
typedef struct bm_gguf_tensor {
    bm_str name;
    bm_dtype type;
    int n_dims;
    int64_t ne[BM_MAX_DIMS];
    uint64_t offset;  /* relative to the data section */
    size_t n_bytes;
    const void *data;
} bm_gguf_tensor;

/* Opens and validates path. Returns owned *out; free with bm_gguf_close(). */
bm_status bm_gguf_open(const char *path, bm_gguf **out, bm_err *err);
/* Same over caller memory (borrowed: must outlive the handle). For fuzzing and tests. */
bm_status bm_gguf_open_mem(const void *data, size_t n_bytes, bm_gguf **out, bm_err *err);
void bm_gguf_close(bm_gguf *g);

uint32_t bm_gguf_version(const bm_gguf *g);
size_t bm_gguf_alignment(const bm_gguf *g);
size_t bm_gguf_file_bytes(const bm_gguf *g);
/* Releases the resident pages of [p, p + n) when g maps a file (bm_mmap_release); no-op for
 * bm_gguf_open_mem. */
void bm_gguf_release(const bm_gguf *g, const void *p, size_t n);

/* ---- key/values ---- */
int64_t bm_gguf_n_kv(const bm_gguf *g);
/* Index of key, or -1. */
int64_t bm_gguf_find_key(const bm_gguf *g, const char *key);
bm_str bm_gguf_kv_key(const bm_gguf *g, int64_t i);
bm_gguf_type bm_gguf_kv_type(const bm_gguf *g, int64_t i);
/* For arrays: element type and count. */
bm_gguf_type bm_gguf_arr_type(const bm_gguf *g, int64_t i);
uint64_t bm_gguf_arr_n(const bm_gguf *g, int64_t i);
/* Raw pointer to a numeric array's elements (little-endian, possibly unaligned: memcpy). */
const void *bm_gguf_arr_data(const bm_gguf *g, int64_t i);
/* Element j of a string array. */
bm_str bm_gguf_arr_str(const bm_gguf *g, int64_t i, uint64_t j);

/* Typed getters by key; each returns false when the key is missing or not convertible.
 * Integer getters accept any integer kv type whose value fits. */
bool bm_gguf_get_u32(const bm_gguf *g, const char *key, uint32_t *out);
bool bm_gguf_get_i64(const bm_gguf *g, const char *key, int64_t *out);
bool bm_gguf_get_f32(const bm_gguf *g, const char *key, float *out); /* f32, f64 or integer */
bool bm_gguf_get_bool(const bm_gguf *g, const char *key, bool *out);
bool bm_gguf_get_str(const bm_gguf *g, const char *key, bm_str *out);

/* ---- tensors ---- */
int64_t bm_gguf_n_tensors(const bm_gguf *g);
const bm_gguf_tensor *bm_gguf_tensor_at(const bm_gguf *g, int64_t i);
/* NULL when absent. */
const bm_gguf_tensor *bm_gguf_tensor_find(const bm_gguf *g, const char *name);

/* ---- writer ----
 * Usage: new -> set_* / add_tensor (declare all) -> begin(path) writes header, metadata and
 * tensor infos -> write_tensor in declaration order (streams data, no copy kept) -> finish.
 * Alignment 32 unless general.alignment is set. Data of each tensor is padded to alignment. */
typedef struct bm_gguf_writer bm_gguf_writer;
bm_gguf_writer *bm_gguf_writer_new(bm_err *err);
void bm_gguf_writer_free(bm_gguf_writer *w);
bm_status bm_gguf_writer_set_u32(bm_gguf_writer *w, const char *key, uint32_t v, bm_err *err);
bm_status bm_gguf_writer_set_i32(bm_gguf_writer *w, const char *key, int32_t v, bm_err *err);
bm_status bm_gguf_writer_set_u64(bm_gguf_writer *w, const char *key, uint64_t v, bm_err *err);
bm_status bm_gguf_writer_set_f32(bm_gguf_writer *w, const char *key, float v, bm_err *err);
bm_status bm_gguf_writer_set_bool(bm_gguf_writer *w, const char *key, bool v, bm_err *err);
bm_status bm_gguf_writer_set_str(bm_gguf_writer *w, const char *key, const char *v, bm_err *err);
/* Numeric array (elem type one of the scalar bm_gguf_type values); data copied. */
bm_status bm_gguf_writer_set_arr(bm_gguf_writer *w, const char *key, bm_gguf_type elem,
                                 const void *data, uint64_t n, bm_err *err);
/* String array: strs[i] with lengths lens[i] (lens NULL = NUL-terminated); copied. */
bm_status bm_gguf_writer_set_arr_str(bm_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, uint64_t n, bm_err *err);
/* Copies every kv of g (except those for which skip(key) returns true) into w. */
bm_status bm_gguf_writer_copy_kv(bm_gguf_writer *w, const bm_gguf *g,
                                 bool (*skip)(const char *key, size_t n), bm_err *err);
bm_status bm_gguf_writer_add_tensor(bm_gguf_writer *w, const char *name, bm_dtype type,
                                    int n_dims, const int64_t *ne, bm_err *err);
bm_status bm_gguf_writer_begin(bm_gguf_writer *w, const char *path, bm_err *err);
/* data: the tensor's n_bytes (from type and shape). Tensors must be written in order. */
bm_status bm_gguf_writer_write_tensor(bm_gguf_writer *w, const void *data, size_t n_bytes,
                                      bm_err *err);
bm_status bm_gguf_writer_finish(bm_gguf_writer *w, bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
