/* BPE training unit tests: merges on a hand-made corpus equal the ones derived by hand
 * (most frequent first, documented tie-breaking), vocab_size and min_count limits, no merge
 * crosses a Han / other-letter / digit boundary (classified with PCRE2's own \p{Han}, not the
 * trainer's ranges), special tokens are never learned from and stay atomic after loading,
 * round trip decode(encode(x)) == x through bm_tok_load_hf on random and Chinese text,
 * determinism, and bad inputs. */
#include <criterion/criterion.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baimo/bpe_train.h"
#include "baimo/gguf.h"
#include "baimo/tokenizer.h"

static bm_bpe_trainer *trainer(int32_t vocab, int64_t min_count) {
    bm_bpe_train_opts o = {.vocab_size = vocab, .min_count = min_count};
    bm_bpe_trainer *t = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_bpe_trainer_new(&o, &t, &err), BM_OK, "%s", err.msg);
    return t;
}

static void feed(bm_bpe_trainer *t, const char *s, int times) {
    bm_err err = {0};
    for (int i = 0; i < times; i++)
        cr_assert_eq(bm_bpe_trainer_feed(t, s, strlen(s), &err), BM_OK, "%s", err.msg);
}

static void train(bm_bpe_trainer *t) {
    bm_err err = {0};
    cr_assert_eq(bm_bpe_trainer_train(t, &err), BM_OK, "%s", err.msg);
}

/* "a b" form of merge k (raw bytes, all ASCII in these tests). */
static const char *merge_str(const bm_bpe_trainer *t, int32_t k) {
    static char buf[256];
    const char *a, *b;
    size_t na, nb;
    bm_bpe_trainer_merge(t, k, &a, &na, &b, &nb);
    snprintf(buf, sizeof buf, "%.*s %.*s", (int)na, a, (int)nb, b);
    return buf;
}

/* Words (one document each, so one pre-token each): hug x10, pug x5, pun x12, bun x4, hugs x5.
 * By hand: pairs u g=20, p u=17, u n=16, h u=15 -> "u g"; then u n=16 -> "u n"; h ug=15 ->
 * "h ug"; p un=12 -> "p un"; then p ug=5 and hug s=5 tie: left ids p=112 < hug=258 -> "p ug"
 * first, then "hug s"; last b un=4. Separately ab x3, ac x3: a b and a c tie on count and left
 * id, right id b < c -> "a b" first. */
Test(bpe_train, merges_most_frequent_first_with_documented_ties) {
    bm_bpe_trainer *t = trainer(1000, 2);
    feed(t, "hug", 10);
    feed(t, "pug", 5);
    feed(t, "pun", 12);
    feed(t, "bun", 4);
    feed(t, "hugs", 5);
    feed(t, "ac", 3);
    feed(t, "ab", 3);
    train(t);
    const char *want[] = {"u g", "u n", "h ug", "p un", "p ug", "hug s", "b un", "a b", "a c"};
    bm_bpe_train_stats st;
    bm_bpe_trainer_stats(t, &st);
    cr_assert_eq(st.n_merges, 9, "merges %d", st.n_merges);
    for (int k = 0; k < 9; k++) cr_expect_str_eq(merge_str(t, k), want[k], "merge %d", k);
    cr_assert_eq(st.n_vocab, 256 + 9 + 3);
    cr_assert_eq(st.n_words, 7);
    bm_bpe_trainer_free(t);
}

Test(bpe_train, overlapping_pairs_merge_left_to_right) {
    /* "aaaaa" x3: a a occurs 4 times per word (12); merging left to right gives aa aa a, so
     * next: aa aa = 3 (one per word) and aa a = 3: tie, left ids equal (aa), right a=97 < aa
     * -> "aa a" first, giving aa aaa. */
    bm_bpe_trainer *t = trainer(1000, 2);
    feed(t, "aaaaa", 3);
    train(t);
    cr_assert_str_eq(merge_str(t, 0), "a a");
    cr_assert_str_eq(merge_str(t, 1), "aa a");
    cr_assert_str_eq(merge_str(t, 2), "aa aaa");
    bm_bpe_train_stats st;
    bm_bpe_trainer_stats(t, &st);
    cr_assert_eq(st.n_merges, 3);
    bm_bpe_trainer_free(t);
}

Test(bpe_train, vocab_size_and_min_count_limit_merges) {
    bm_bpe_trainer *t = trainer(256 + 3 + 2, 2);
    feed(t, "hug", 10);
    feed(t, "pun", 12);
    train(t);
    bm_bpe_train_stats st;
    bm_bpe_trainer_stats(t, &st);
    cr_assert_eq(st.n_merges, 2);
    cr_assert_eq(st.n_vocab, 261);
    bm_bpe_trainer_free(t);

    t = trainer(1000, 3); /* "xy" twice only: below min_count 3 */
    feed(t, "xy", 2);
    feed(t, "uv", 3);
    train(t);
    bm_bpe_trainer_stats(t, &st);
    cr_assert_eq(st.n_merges, 1);
    cr_assert_str_eq(merge_str(t, 0), "u v");
    bm_bpe_trainer_free(t);
}

enum { C_NONE, C_HAN, C_LETTER, C_DIGIT };

/* Class set (bit mask) of the complete UTF-8 characters in s, by PCRE2's \p{Han}/\p{L}/\p{N}. */
static unsigned classes(const char *s, size_t n) {
    static pcre2_code *han, *let, *dig;
    int ec;
    PCRE2_SIZE eo;
    if (!han) {
        han = pcre2_compile((PCRE2_SPTR) "^\\p{Han}$", PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
        let = pcre2_compile((PCRE2_SPTR) "^\\p{L}$", PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
        dig = pcre2_compile((PCRE2_SPTR) "^\\p{N}$", PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
        cr_assert(han && let && dig);
    }
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    unsigned m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = bm_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (l <= 0) {
            i++;
            continue;
        }
        PCRE2_SPTR c = (PCRE2_SPTR)s + i;
        if (pcre2_match(han, c, (size_t)l, 0, 0, md, NULL) > 0) m |= 1u << C_HAN;
        else if (pcre2_match(let, c, (size_t)l, 0, 0, md, NULL) > 0) m |= 1u << C_LETTER;
        else if (pcre2_match(dig, c, (size_t)l, 0, 0, md, NULL) > 0) m |= 1u << C_DIGIT;
        i += (size_t)l;
    }
    pcre2_match_data_free(md);
    return m;
}

Test(bpe_train, no_merge_crosses_han_latin_digit_boundaries) {
    /* Glued mixed text repeated often: a trainer without the script-aware pre-tokenizer would
     * merge across 京2, 年a, c上, 𠀀x, 々9 (the last two test the Han ranges beyond the BMP and
     * U+3005). */
    bm_bpe_trainer *t = trainer(2000, 2);
    feed(t, "北京2024年abc上海xyz深圳999号def", 200);
    feed(t, "中文English混合123文本abc汉字def456", 150);
    feed(t, "版本v2发布x64系统𠀀x人人々9", 120);
    train(t);
    bm_bpe_train_stats st;
    bm_bpe_trainer_stats(t, &st);
    cr_assert_gt(st.n_merges, 30);
    int n_han = 0;
    for (int32_t k = 0; k < st.n_merges; k++) {
        const char *a, *b;
        size_t na, nb;
        bm_bpe_trainer_merge(t, k, &a, &na, &b, &nb);
        char buf[512];
        cr_assert_lt(na + nb, sizeof buf);
        memcpy(buf, a, na);
        memcpy(buf + na, b, nb);
        unsigned m = classes(buf, na + nb);
        cr_expect(m == 0 || (m & (m - 1)) == 0, "merge %d '%.*s' + '%.*s' mixes classes %x", k,
                  (int)na, a, (int)nb, b, m);
        n_han += (m == 1u << C_HAN);
    }
    cr_assert_gt(n_han, 5);
    bm_bpe_trainer_free(t);
}

Test(bpe_train, special_tokens_are_not_learned) {
    bm_bpe_trainer *t = trainer(1000, 2);
    feed(t, "<|im_start|><|im_end|><|endoftext|>", 50);
    feed(t, "x<|im_end|>y", 50); /* x and y are separate documents: no pair */
    train(t);
    bm_bpe_train_stats st;
    bm_bpe_trainer_stats(t, &st);
    cr_assert_eq(st.n_merges, 0);
    cr_assert_eq(st.n_words, 2);
    bm_bpe_trainer_free(t);
    t = trainer(1000, 2); /* text without special tokens is counted from its first byte */
    feed(t, "xyz", 2);
    train(t);
    bm_bpe_trainer_stats(t, &st);
    cr_assert_eq(st.n_words, 1);
    cr_assert_eq(st.n_merges, 2);
    bm_bpe_trainer_free(t);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Random valid UTF-8: ASCII, Latin-1, CJK, astral, whitespace and special-token strings. */
static size_t random_text(char *out, size_t cap) {
    static const char *specials[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "\n", "\r\n",
                                     "  ", "\t"};
    size_t n = 0;
    while (n + 16 < cap) {
        uint32_t r = rnd() % 10, cp;
        if (r == 0) {
            const char *s = specials[rnd() % 7];
            memcpy(out + n, s, strlen(s));
            n += strlen(s);
            continue;
        }
        if (r < 4) cp = 32 + rnd() % 95;
        else if (r < 5) cp = 0x80 + rnd() % 0x780;
        else if (r < 8) cp = 0x4E00 + rnd() % 0x5200;
        else if (r < 9) cp = 0x10000 + rnd() % 0x30000;
        else cp = rnd() % 0x10000;
        if (cp >= 0xD800 && cp < 0xE000) cp = 0x3007;
        if (cp == 0) cp = 1;
        n += (size_t)bm_utf8_encode(cp, (uint8_t *)out + n);
    }
    return n;
}

static const char poems[] =
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n"
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n"
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\n"
    "The model reads 12 poems in 2024; it's fine.\n";

static void roundtrip(const bm_tok *tok, const char *s, size_t n) {
    size_t cap = n + 16, got = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    bm_err err = {0};
    cr_assert_eq(bm_tok_encode(tok, s, n, BM_TOK_PARSE_SPECIAL, ids, cap, &got, &err), BM_OK,
                 "%s", err.msg);
    cr_assert_leq(got, cap);
    char *dec = malloc(n + 64);
    size_t nd = bm_tok_decode(tok, ids, got, false, dec, n + 64);
    cr_assert_eq(nd, n, "decode gives %zu bytes, text has %zu", nd, n);
    cr_assert(memcmp(dec, s, n) == 0, "round trip differs");
    free(dec);
    free(ids);
}

static char tmpdir[64];
static bm_tok *train_and_load(void) {
    bm_bpe_trainer *t = trainer(1500, 2);
    feed(t, poems, 20);
    static char rtext[40000];
    rng = 42;
    for (int i = 0; i < 5; i++) {
        size_t n = random_text(rtext, sizeof rtext);
        bm_err err = {0};
        cr_assert_eq(bm_bpe_trainer_feed(t, rtext, n, &err), BM_OK, "%s", err.msg);
    }
    train(t);
    strcpy(tmpdir, "/tmp/bpe_train_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    bm_err err = {0};
    cr_assert_eq(bm_bpe_trainer_save(t, path, &err), BM_OK, "%s", err.msg);
    bm_bpe_trainer_free(t);
    bm_tok *tok = NULL;
    cr_assert_eq(bm_tok_load_hf(path, &tok, &err), BM_OK, "%s", err.msg);
    return tok;
}

static void cleanup(void) {
    char p[160];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

Test(bpe_train, round_trip_and_atomic_specials_after_loading) {
    bm_tok *tok = train_and_load();
    cr_assert_eq(bm_tok_n_vocab(tok), 1500);
    roundtrip(tok, poems, strlen(poems));
    static char rtext[20000];
    rng = 7; /* different from the training text */
    for (int i = 0; i < 20; i++) {
        size_t n = random_text(rtext, 200 + rnd() % 19000);
        roundtrip(tok, rtext, n);
    }
    /* special tokens: one id each, the last three ids, and the chat template is ChatML */
    const char *s = "<|im_start|>user\n你好<|im_end|>\n<|endoftext|>";
    int32_t ids[64];
    size_t got = 0;
    bm_err err = {0};
    cr_assert_eq(bm_tok_encode(tok, s, strlen(s), BM_TOK_PARSE_SPECIAL, ids, 64, &got, &err),
                 BM_OK, "%s", err.msg);
    int32_t st = bm_tok_find(tok, "<|im_start|>", 12), en = bm_tok_find(tok, "<|im_end|>", 10);
    int32_t eot = bm_tok_find(tok, "<|endoftext|>", 13);
    cr_assert_eq(st, 1498);
    cr_assert_eq(en, 1499);
    cr_assert_eq(eot, 1500 - 3);
    cr_assert_eq(ids[0], st);
    cr_assert_eq(ids[got - 1], eot);
    int n_sp = 0;
    for (size_t i = 0; i < got; i++) n_sp += ids[i] == st || ids[i] == en || ids[i] == eot;
    cr_assert_eq(n_sp, 3);
    cr_assert(bm_tok_is_eog(tok, en));
    cr_assert_eq(bm_tok_eos(tok), en);
    const char *tmpl = bm_tok_chat_template(tok);
    cr_assert(tmpl && strstr(tmpl, "<|im_start|>") && strstr(tmpl, "add_generation_prompt"));
    bm_tok_free(tok);
    cleanup();
}

Test(bpe_train, deterministic) {
    const char *m1[64];
    char store[2][64][64];
    for (int run = 0; run < 2; run++) {
        bm_bpe_trainer *t = trainer(256 + 3 + 60, 2);
        feed(t, poems, 3);
        train(t);
        bm_bpe_train_stats st;
        bm_bpe_trainer_stats(t, &st);
        cr_assert_eq(st.n_merges, 60);
        for (int k = 0; k < 60; k++) {
            const char *a, *b;
            size_t na, nb;
            bm_bpe_trainer_merge(t, k, &a, &na, &b, &nb);
            snprintf(store[run][k], 64, "%.*s|%.*s", (int)na, a, (int)nb, b);
            m1[k] = store[0][k];
        }
        bm_bpe_trainer_free(t);
    }
    for (int k = 0; k < 60; k++) cr_assert_str_eq(store[1][k], m1[k]);
}

Test(bpe_train, bad_inputs_are_errors) {
    bm_err err = {0};
    bm_bpe_trainer *t = NULL;
    bm_bpe_train_opts o = {.vocab_size = 200};
    cr_assert_eq(bm_bpe_trainer_new(&o, &t, &err), BM_ERANGE);
    cr_assert(strstr(err.msg, "200") && strstr(err.msg, "259"), "%s", err.msg);
    const char *dup[] = {"<a>", "<a>"};
    o = (bm_bpe_train_opts){.vocab_size = 300, .special = dup, .n_special = 2};
    cr_assert_eq(bm_bpe_trainer_new(&o, &t, &err), BM_EINVAL);
    cr_assert(strstr(err.msg, "<a>"), "%s", err.msg);
    const char *empty[] = {""};
    o.special = empty;
    o.n_special = 1;
    cr_assert_eq(bm_bpe_trainer_new(&o, &t, &err), BM_EINVAL);

    t = trainer(300, 2);
    const char bad[] = "abc\xe4\xb8"; /* truncated 中 at byte 3 */
    cr_assert_eq(bm_bpe_trainer_feed(t, bad, sizeof bad - 1, &err), BM_EFORMAT);
    cr_assert(strstr(err.msg, "byte 3"), "%s", err.msg);
    cr_assert_eq(bm_bpe_trainer_save(t, "/tmp/never.json", &err), BM_EINVAL);
    train(t);
    cr_assert_eq(bm_bpe_trainer_feed(t, "x", 1, &err), BM_EINVAL);
    cr_assert_eq(bm_bpe_trainer_train(t, &err), BM_EINVAL);
    cr_assert_eq(bm_bpe_trainer_save(t, "/nonexistent-dir/tokenizer.json", &err), BM_EIO);
    cr_assert(strstr(err.msg, "/nonexistent-dir/tokenizer.json"), "%s", err.msg);
    bm_bpe_trainer_free(t);
}

/* A trained tokenizer has no named pre-tokenizer: its regex travels as JSON in the GGUF. It
 * must survive tokenizer.json -> GGUF -> tokenizer -> GGUF -> tokenizer (what `baimo train
 * --init` and `baimo quantize` do to a model's tokenizer) with identical encodings. */
static bm_tok *via_gguf(const bm_tok *tok, const char *path) {
    bm_err err = {0};
    bm_gguf_writer *w = bm_gguf_writer_new(&err);
    cr_assert_eq(bm_tok_write_gguf(tok, w, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_gguf_writer_begin(w, path, &err), BM_OK, "%s", err.msg);
    cr_assert_eq(bm_gguf_writer_finish(w, &err), BM_OK, "%s", err.msg);
    bm_gguf_writer_free(w);
    bm_gguf *g;
    cr_assert_eq(bm_gguf_open(path, &g, &err), BM_OK, "%s", err.msg);
    bm_tok *out = NULL;
    cr_assert_eq(bm_tok_load_gguf(g, &out, &err), BM_OK, "%s", err.msg);
    bm_gguf_close(g);
    return out;
}

Test(bpe_train, custom_pre_tokenizer_survives_gguf_round_trips) {
    bm_tok *tok = train_and_load();
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "/tmp/bpe_rt1_%d.gguf", (int)getpid());
    snprintf(p2, sizeof p2, "/tmp/bpe_rt2_%d.gguf", (int)getpid());
    bm_tok *t1 = via_gguf(tok, p1);
    bm_tok *t2 = via_gguf(t1, p2);
    const char *s = "床前明月光，疑是地上霜。abc123 def 456789 东风夜放花千树";
    int32_t a[128], b[128];
    size_t na = 0, nb = 0;
    bm_err err = {0};
    cr_assert_eq(bm_tok_encode(tok, s, strlen(s), 0, a, 128, &na, &err), BM_OK);
    cr_assert_eq(bm_tok_encode(t2, s, strlen(s), 0, b, 128, &nb, &err), BM_OK);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(a, b, na * sizeof(int32_t));
    bm_tok_free(t2);
    bm_tok_free(t1);
    bm_tok_free(tok);
    remove(p1);
    remove(p2);
    cleanup();
}
