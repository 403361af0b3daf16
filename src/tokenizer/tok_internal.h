/* Internal layout of bm_tok shared by the tokenizer sources: vocabulary and hash maps,
 * merge table, normalizer and pre-tokenizer step lists, added tokens, the word cache.
 * tok.c encodes/decodes, tok_hf.c loads tokenizer.json, tok_gguf.c reads/writes GGUF
 * metadata, tok_pre.c holds the table of named pre-tokenizer regex sets. */
#ifndef BAIMO_TOK_INTERNAL_H
#define BAIMO_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

#include "baimo/tokenizer.h"

enum { TOK_BPE = 1, TOK_SPM = 2 };

/* GGUF token types (llama.cpp convention, also used for tokenizer.json tokens). */
enum {
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6,
};

enum { NORM_NFC = 1, NORM_NFKC, NORM_NFD, NORM_NFKD, NORM_LOWER, NORM_REPLACE, NORM_PREPEND,
       NORM_STRIP };

typedef struct tok_norm {
    int kind;
    char *a;         /* Replace: pattern (literal); Prepend: text */
    size_t na;
    char *b;         /* Replace: content */
    size_t nb;
    pcre2_code *re;  /* Replace with a Regex pattern */
    bool left, right; /* Strip */
} tok_norm;

enum { SPLIT_REMOVED = 0, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PRE_SPLIT = 1, PRE_METASPACE };

typedef struct tok_pre {
    int kind;
    char *src;       /* regex source (for GGUF export and name matching) */
    pcre2_code *re;
    int behavior;
    bool invert;
    /* Metaspace */
    bool prepend_first, prepend_always, meta_split;
} tok_pre;

typedef struct tok_added {
    int32_t id;
    char *text;
    size_t n;
    bool special, lstrip, rstrip, single_word;
} tok_added;

#define TOK_CACHE_SLOTS 8192
#define TOK_CACHE_WORD 48
#define TOK_CACHE_IDS 12
typedef struct tok_cache_slot {
    uint8_t n_word, n_ids;
    char word[TOK_CACHE_WORD];
    int32_t ids[TOK_CACHE_IDS];
} tok_cache_slot;

struct bm_tok {
    int kind;
    bool byte_level;    /* BPE over bytes through the GPT-2 byte<->unicode map */
    bool byte_fallback; /* unknown characters become <0xNN> tokens */
    bool ignore_merges; /* a word that is a whole vocabulary entry skips merging */
    bool spm_prefix;    /* SPM: prepend U+2581 to the text (add_dummy_prefix) */
    bool spm_escape;    /* SPM: spaces become U+2581 */
    bool decode_strip_first; /* decode removes one leading space (SPM dummy prefix) */
    bool decode_meta;   /* decode maps U+2581 to space */
    bool add_bos, add_eos;
    int32_t bos, eos, eot, unk, pad;

    int32_t n_vocab;
    char *blob;        /* all token texts and raw forms */
    uint32_t *text_off, *text_len, *raw_off, *raw_len;
    float *score;
    int32_t *ttype;
    uint8_t *eog;      /* per token: 1 if end of generation */

    uint32_t hmask;    /* open addressing: token text -> id */
    int32_t *htab;

    int32_t n_merges;  /* rank order */
    int32_t *merge_a, *merge_b, *merge_r; /* pair and result token of each rank */
    uint32_t mmask;    /* (a,b) -> rank */
    int32_t *mtab;

    int32_t byte_id[256]; /* byte-level: token of each byte; SPM: <0xNN> tokens, -1 if absent */

    tok_norm *norm;
    int n_norm;
    tok_pre *pre;
    int n_pre;
    char *norm_json, *pre_json; /* the tokenizer.json subtrees (for GGUF export) */
    char *pre_name;

    tok_added *added;
    int n_added;
    int32_t added_first[256]; /* index of first added token (sorted by first byte, then
                                 length desc) starting with byte b, -1 if none */

    char *chat_template;

    pthread_mutex_t cache_mu;
    tok_cache_slot *cache;
};

/* tok.c */
bm_tok *tok_alloc(bm_err *err);
/* Builds the token tables from n token texts (copied). byte_level decides raw forms. */
bm_status tok_set_vocab(bm_tok *t, int32_t n, const char *const *texts, const size_t *lens,
                        bm_err *err);
/* Finishes loading: raw forms, byte ids, added-token index, eog flags. */
bm_status tok_finish(bm_tok *t, bm_err *err);
int32_t tok_lookup(const bm_tok *t, const char *s, size_t n);
/* Adds merge (a, b) at the next rank. Returns false if a token is unknown (merge skipped). */
bm_status tok_set_merges(bm_tok *t, int32_t n, const int32_t *a, const int32_t *b, bm_err *err);
pcre2_code *tok_regex(const char *src, size_t n, bm_err *err);
bm_status tok_add_pre_split(bm_tok *t, const char *src, size_t n, int behavior, bool invert,
                            bm_err *err);
bm_status tok_add_added(bm_tok *t, int32_t id, const char *s, size_t n, bool special,
                        bool lstrip, bool rstrip, bool single_word, bm_err *err);

/* tok_hf.c: tokenizer.json subtrees (also stored in GGUF files made from a tokenizer.json). */
struct json_t;
bm_status tok_hf_parse_normalizer(bm_tok *t, const struct json_t *n, bm_err *err);
bm_status tok_hf_parse_pre(bm_tok *t, const struct json_t *p, bm_err *err);

/* tok_pre.c: named pre-tokenizer regex sets (llama.cpp's tokenizer.ggml.pre names). */
typedef struct tok_pre_def {
    const char *name;
    const char *re[6];
    bool ignore_merges;
} tok_pre_def;
const tok_pre_def *tok_pre_find(const char *name, size_t n);
/* The name whose regex list equals t's split steps, or NULL. */
const char *tok_pre_match(const bm_tok *t);
extern const char *const tok_gpt2_regex;

#endif
