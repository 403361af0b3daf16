/* Tokenizers: byte-level BPE (GPT-2 family pre-tokenizers on PCRE2), SentencePiece BPE with
 * byte fallback, unigram; normalizers; special/added tokens; exact decoding and incremental
 * UTF-8-safe detokenization for streaming. Loaded from GGUF metadata (tokenizer.ggml.*) or a
 * Hugging Face tokenizer.json (+ tokenizer_config.json beside it). A loaded bm_tok is
 * immutable and safe to use from many threads (per-call state lives in the caller). */
#ifndef BAIMO_TOKENIZER_H
#define BAIMO_TOKENIZER_H

#include "baimo/base.h"
#include "baimo/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_tok bm_tok;

/* Loads from GGUF metadata. Returns owned; free with bm_tok_free(). */
bm_status bm_tok_load_gguf(const bm_gguf *g, bm_tok **out, bm_err *err);
/* Loads a tokenizer.json; reads tokenizer_config.json from the same directory when present
 * (bos/eos, add_bos_token, chat_template). */
bm_status bm_tok_load_hf(const char *tokenizer_json_path, bm_tok **out, bm_err *err);
void bm_tok_free(bm_tok *t);

/* Writes the tokenizer as GGUF metadata (tokenizer.ggml.* and tokenizer.chat_template) so a
 * model file carries it; loading that GGUF back gives identical encodings. */
bm_status bm_tok_write_gguf(const bm_tok *t, bm_gguf_writer *w, bm_err *err);

int32_t bm_tok_n_vocab(const bm_tok *t);
int32_t bm_tok_bos(const bm_tok *t); /* -1 if none */
int32_t bm_tok_eos(const bm_tok *t); /* -1 if none */
/* true for end-of-generation tokens (eos, eot, <|im_end|>, <|eot_id|>, ...). */
bool bm_tok_is_eog(const bm_tok *t, int32_t id);
/* Id of an exact token string, or -1. */
int32_t bm_tok_find(const bm_tok *t, const char *piece, size_t len);
/* Chat template text (NUL-terminated) or NULL. Borrowed. */
const char *bm_tok_chat_template(const bm_tok *t);
/* The token's string as stored in the vocabulary (borrowed, not NUL-terminated). */
const char *bm_tok_token_text(const bm_tok *t, int32_t id, size_t *len);

enum {
    BM_TOK_ADD_SPECIAL = 1 << 0,   /* add BOS/EOS as the model's metadata says */
    BM_TOK_PARSE_SPECIAL = 1 << 1, /* recognise special-token strings in text (HF tokenize) */
};

/* Encodes text[0..len). Writes up to cap ids to out and the total count to *n_out (when
 * *n_out > cap the caller retries with a larger buffer). */
bm_status bm_tok_encode(const bm_tok *t, const char *text, size_t len, int flags, int32_t *out,
                        size_t cap, size_t *n_out, bm_err *err);

/* Decodes ids into the bytes they stand for (appended raw; may be invalid UTF-8 only if the
 * ids are). skip_special drops control tokens. Returns bytes needed; writes up to cap. */
size_t bm_tok_decode(const bm_tok *t, const int32_t *ids, size_t n, bool skip_special, char *out,
                     size_t cap);

/* Incremental detokenizer for streaming: feed ids one at a time; emits only complete UTF-8
 * characters (holds a partial one until it completes). Caller storage. */
typedef struct bm_detok {
    const bm_tok *tok;
    bool skip_special;
    uint8_t pend[16];
    size_t n_pend;
    bool first; /* SentencePiece: strip the leading space of the first piece */
} bm_detok;
void bm_detok_init(bm_detok *d, const bm_tok *t, bool skip_special);
/* Appends the text that became complete after id to out (cap bytes); returns bytes written
 * (or needed if > cap). */
size_t bm_detok_push(bm_detok *d, int32_t id, char *out, size_t cap);
/* Flushes what is held (incomplete bytes are replaced by U+FFFD). */
size_t bm_detok_flush(bm_detok *d, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
