/* CLI helpers around a loaded model: its tokenizer (from the GGUF metadata, or tokenizer.json
 * in a Hugging Face directory). */
#include "cli.h"
#include "cli_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bm_status cli_model_tokenizer(const bm_model *m, bm_tok **tok, bm_err *err) {
    *tok = NULL;
    if (m->gguf) {
        if (bm_gguf_find_key(m->gguf, "tokenizer.ggml.model") < 0)
            return bm_err_set(err, BM_ENOTFOUND, "model '%s' carries no tokenizer "
                              "(make it with --tokenizer, or pass token ids)", m->path);
        return bm_tok_load_gguf(m->gguf, tok, err);
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", m->path);
    struct stat st;
    if (stat(p, &st) != 0)
        return bm_err_set(err, BM_ENOTFOUND, "model directory '%s' has no tokenizer.json",
                          m->path);
    return bm_tok_load_hf(p, tok, err);
}

bm_status cli_tokenize(const bm_tok *tok, const char *text, size_t len, int flags, int32_t **ids,
                       size_t *n, bm_err *err) {
    size_t cap = len + 16, need = 0;
    *ids = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *buf = bm_calloc(cap, sizeof(int32_t), err);
        if (!buf) return BM_ENOMEM;
        bm_status st = bm_tok_encode(tok, text, len, flags, buf, cap, &need, err);
        if (st) {
            free(buf);
            return st;
        }
        if (need <= cap) {
            *ids = buf;
            *n = need;
            return BM_OK;
        }
        free(buf);
        cap = need;
    }
    return bm_err_set(err, BM_EINTERNAL, "tokenize: token count changed between calls");
}

bm_status cli_load_tok(const char *path, bm_tok **out, bm_err *err) {
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".gguf")) {
        bm_gguf *g;
        bm_status st = bm_gguf_open(path, &g, err);
        if (st) return st;
        st = bm_tok_load_gguf(g, out, err);
        bm_gguf_close(g);
        return st;
    }
    return bm_tok_load_hf(path, out, err);
}
