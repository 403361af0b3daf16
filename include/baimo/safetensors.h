/* Hugging Face safetensors reader (one file or a sharded model directory with
 * model.safetensors.index.json) over read-only mmaps, plus config.json parsing into the
 * fields baimo needs. Every header offset is validated against the file size.
 * Spec: https://huggingface.co/docs/safetensors (8-byte LE header length, JSON header, data). */
#ifndef BAIMO_SAFETENSORS_H
#define BAIMO_SAFETENSORS_H

#include "baimo/base.h"
#include "baimo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_st bm_st; /* a set of safetensors files (one model) */

typedef struct bm_st_tensor {
    const char *name; /* NUL-terminated, owned by the bm_st */
    bm_dtype type;    /* F32, F16, BF16 (others rejected with BM_EUNSUPPORTED at open) */
    int n_dims;
    int64_t ne[BM_MAX_DIMS]; /* GGUF order: ne[0] innermost (safetensors shape reversed) */
    const void *data;        /* into the mapping; may be unaligned only if the file is */
    size_t n_bytes;
} bm_st_tensor;

/* Opens one .safetensors file. Returns owned; free with bm_st_close(). */
bm_status bm_st_open_file(const char *path, bm_st **out, bm_err *err);
/* Opens every shard of a model directory (index json, or model.safetensors, or all
 * *.safetensors files in the directory). */
bm_status bm_st_open_dir(const char *dir, bm_st **out, bm_err *err);
/* Parses one in-memory safetensors blob (borrowed). For fuzzing and tests. */
bm_status bm_st_open_mem(const void *data, size_t n_bytes, bm_st **out, bm_err *err);
void bm_st_close(bm_st *s);
int64_t bm_st_n_tensors(const bm_st *s);
const bm_st_tensor *bm_st_tensor_at(const bm_st *s, int64_t i);
const bm_st_tensor *bm_st_find(const bm_st *s, const char *name);
/* Hands the resident pages wholly inside [p, p + n) of a shard's mapping back to the kernel
 * (bm_mmap_release; a later read faults them in from the file again). No-op outside every
 * mapping or for an in-memory blob. */
void bm_st_release(const bm_st *s, const void *p, size_t n);

/* ---- .npy writer (NumPy format 1.0, little-endian f32, C order) ---- */
bm_status bm_npy_write_f32(const char *path, const float *data, int n_dims, const int64_t *shape,
                           bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
