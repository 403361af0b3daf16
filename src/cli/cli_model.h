/* CLI helpers around a loaded model and its tokenizer. */
#ifndef BAIMO_CLI_MODEL_H
#define BAIMO_CLI_MODEL_H

#include "baimo/model.h"
#include "baimo/tokenizer.h"

/* Loads the model's tokenizer; BM_ENOTFOUND with a hint when it has none. */
bm_status cli_model_tokenizer(const bm_model *m, bm_tok **tok, bm_err *err);
/* Loads a tokenizer from a .gguf file (its embedded vocabulary) or a tokenizer.json. */
bm_status cli_load_tok(const char *path, bm_tok **out, bm_err *err);
/* Encodes text into a malloc'd id array (free()). */
bm_status cli_tokenize(const bm_tok *tok, const char *text, size_t len, int flags, int32_t **ids,
                       size_t *n, bm_err *err);

#endif
