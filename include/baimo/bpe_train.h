/* Byte-level BPE tokenizer training (GPT-2 byte<->unicode mapping) with a Chinese-aware
 * pre-tokenizer, written out as a Hugging Face tokenizer.json + tokenizer_config.json (ChatML
 * special tokens and chat template) that bm_tok_load_hf and transformers.js both load.
 * Training: count pre-tokenized words, then repeatedly merge the most frequent adjacent pair
 * (pair counts + max-heap with lazy invalidation + per-pair occurrence lists).
 * A trainer is single-threaded; use one per thread. */
#ifndef BAIMO_BPE_TRAIN_H
#define BAIMO_BPE_TRAIN_H

#include "baimo/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_bpe_trainer bm_bpe_trainer;

typedef struct bm_bpe_train_opts {
    /* Target vocabulary size: 256 byte tokens + merged tokens + special tokens. */
    int32_t vocab_size;
    /* Special tokens (atomic, never merged, written as added_tokens with special=true).
     * NULL / 0: "<|endoftext|>", "<|im_start|>", "<|im_end|>". At most 256. */
    const char *const *special;
    int n_special;
    /* Pairs seen fewer than this many times (weighted by word frequency) are never merged,
     * so training may stop below vocab_size on a small corpus. 0 means 2. */
    int64_t min_count;
} bm_bpe_train_opts;

/* The pre-tokenizer regex (PCRE2 and JavaScript `u` syntax; NUL-terminated, static).
 * Alternatives in order: English contractions; an optional space + a run of Han ideographs
 * (the Han script's blocks written as literal ranges, because JavaScript has no \p{Han} and
 * Oniguruma no \p{Script=Han}); an optional non-letter/digit + a run of non-Han letters;
 * 1-3 digits; an optional space + punctuation/symbol run + newlines; newline runs; trailing
 * whitespace. So no pre-token, hence no merge, spans a Han/other-letter/digit boundary. */
const char *bm_bpe_pretok_regex(void);

/* Returns owned; free with bm_bpe_trainer_free(). vocab_size must be in
 * [256 + n_special, 1 << 24]; special tokens must be non-empty, distinct, valid UTF-8. */
bm_status bm_bpe_trainer_new(const bm_bpe_train_opts *opts, bm_bpe_trainer **out, bm_err *err);
void bm_bpe_trainer_free(bm_bpe_trainer *t);

/* Adds a document: special-token strings in it are cut out (never counted), the rest is
 * pre-tokenized and each piece counted. text must be valid UTF-8 (BM_EFORMAT names the byte
 * offset otherwise). Pre-tokens never span two calls. Not after bm_bpe_trainer_train. */
bm_status bm_bpe_trainer_feed(bm_bpe_trainer *t, const char *text, size_t n, bm_err *err);

/* Learns merges until the vocabulary reaches vocab_size or no pair reaches min_count.
 * Merge order: highest count (summed over word frequencies) first; ties go to the pair with
 * the smaller left token id, then the smaller right token id, where byte tokens have ids
 * 0..255 (id = byte value) and merged tokens get the next ids in creation order. A merge
 * whose result already is a token reuses that token (the merge is still recorded).
 * Occurrences of a pair (x, x) in a run are merged left to right, as an encoder does. */
bm_status bm_bpe_trainer_train(bm_bpe_trainer *t, bm_err *err);

typedef struct bm_bpe_train_stats {
    uint64_t n_bytes;   /* bytes fed */
    uint64_t n_pretok;  /* pre-tokens counted */
    uint64_t n_words;   /* distinct pre-tokens */
    int32_t n_merges;   /* merges learned */
    int32_t n_vocab;    /* final vocabulary size including special tokens */
} bm_bpe_train_stats;
void bm_bpe_trainer_stats(const bm_bpe_trainer *t, bm_bpe_train_stats *st);

/* Merge k (0-based rank): raw bytes of its left and right parts. Borrowed: valid until
 * bm_bpe_trainer_free(t). */
void bm_bpe_trainer_merge(const bm_bpe_trainer *t, int32_t k, const char **a, size_t *na,
                          const char **b, size_t *nb);

/* Writes tokenizer.json to json_path and tokenizer_config.json (special tokens, eos
 * <|im_end|> and pad <|endoftext|> when those are special tokens, a ChatML chat_template)
 * in the same directory. Ids: bytes 0..255, merged tokens, then special tokens. */
bm_status bm_bpe_trainer_save(const bm_bpe_trainer *t, const char *json_path, bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
