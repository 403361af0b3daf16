/* Internals shared by the model layer's files (loader, KV cache, forward pass). */
#ifndef BAIMO_MODEL_INT_H
#define BAIMO_MODEL_INT_H

#include "baimo/model.h"
#include "baimo/safetensors.h"

/* Loaders for the two sources; both fill m->hp, m->layers and the tensor views. */
bm_status bm_model_load_gguf(bm_model *m, const char *path, bm_err *err);
bm_status bm_model_load_hf(bm_model *m, const char *dir, bm_err *err);

/* Adds a tensor view to m->tensors (capacity reserved at load) and returns it. */
bm_tensor *bm_model_add_tensor(bm_model *m, const char *name, bm_dtype type, int n_dims,
                               const int64_t *ne, const void *data, size_t n_bytes);
/* Validates hparams and every bound tensor's shape; fills n_params/weight_bytes. */
bm_status bm_model_check(bm_model *m, bm_err *err);
/* Returns a view of t converted to f32 in the model arena (t itself when already f32 and
 * 4-byte aligned). NULL with err on failure. */
const bm_tensor *bm_model_as_f32(bm_model *m, const bm_tensor *t, bm_err *err);

/* The type a matrix of row length n_in gets when t's block does not divide it (as
 * llama.cpp's quantizer falls back). */
bm_dtype bm_make_fallback_type(bm_dtype t, int64_t n_in);

#endif
