/* Named pre-tokenizer regex sets, keyed by the GGUF tokenizer.ggml.pre value. Each set is the
 * sequence of "Isolated" splits the model's published tokenizer.json applies before byte-level
 * BPE (GPT-2 byte-level regex, Llama 3 / Qwen2 cl100k-style regexes, DeepSeek's splits).
 * Non-ASCII ranges are written as \x{...} so no source normalisation can change them; three
 * DeepSeek-LLM range ends (U+1F7D, U+1FD3, U+1FDB) and the singletons U+1FBE, U+2126, U+212A
 * are the code points of the published tokenizer.json, not their NFC forms. */
#include <string.h>

#include "tokenizer/tok_internal.h"

#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define LLAMA3                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                   \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                        \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define DSV3_A "\\p{N}{1,3}"
#define DSV3_B "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"
#define DSV3_C                                                                                  \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| " \
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
#define DSLLM_LATIN                                                                             \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-"   \
    "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}" \
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-"       \
    "\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-" \
    "\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"        \
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-"      \
    "\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-"        \
    "\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-"       \
    "\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"        \
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-"        \
    "\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}"        \
    "\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}"        \
    "\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"       \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-"      \
    "\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-"           \
    "\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-"        \
    "\\x{1E943}]+"
#define DS_PUNCT "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"
#define DS_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

const char *const tok_gpt2_regex = GPT2;

static const tok_pre_def defs[] = {
    {"gpt2", {GPT2}, false},
    {"default", {GPT2}, false},
    {"gpt-2", {GPT2}, false},
    {"gpt-neox", {GPT2}, false},
    {"mpt", {GPT2}, false},
    {"olmo", {GPT2}, false},
    {"jais", {GPT2}, false},
    {"llama-bpe", {LLAMA3}, true},
    {"llama3", {LLAMA3}, true},
    {"llama-v3", {LLAMA3}, true},
    {"dbrx", {LLAMA3}, true},
    {"smaug-bpe", {LLAMA3}, true},
    {"qwen2", {QWEN2}, false},
    {"deepseek-r1-qwen", {QWEN2}, false},
    {"deepseek-v3", {DSV3_A, DSV3_B, DSV3_C}, false},
    {"deepseek-llm", {"[\r\n]", DSLLM_LATIN, DS_PUNCT, "\\s+$", DS_CJK, "\\p{N}+"}, false},
    {"deepseek-coder",
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", DS_CJK, "\\p{N}"},
     false},
    {"starcoder", {"\\p{N}", GPT2}, false},
    {"refact", {"\\p{N}", GPT2}, false},
    {"command-r", {"\\p{N}", GPT2}, false},
    {"smollm", {"\\p{N}", GPT2}, false},
    {"falcon",
     {"[\\p{P}\\$\\+<=>\\^~\\|`]+", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
                                   "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
      "[0-9][0-9][0-9]"},
     false},
};

const tok_pre_def *tok_pre_find(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (strlen(defs[i].name) == n && memcmp(defs[i].name, name, n) == 0) return &defs[i];
    return NULL;
}

/* Regex sources compare after mapping a literal non-ASCII character and its \x{...} spelling
 * to the same code point is not attempted: tokenizer.json regexes that use literal characters
 * (DeepSeek V3's CJK class) are compared by compiling both and matching a probe string. */
static bool same_regex(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return true;
    static const char probe[] =
        "Hello world's 123456 7.5 \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81 "
        "\xe3\x81\x82\xe3\x82\xa2 \xea\xb0\x80 \r\n\n  x\t;;; -- !A \xce\xa9\xe2\x84\xa6 "
        "caf\xc3\xa9 \xe2\x84\xaa \xf0\x9f\x98\x80 ";
    pcre2_code *ra = tok_regex(a, strlen(a), NULL), *rb = tok_regex(b, strlen(b), NULL);
    bool same = ra && rb;
    pcre2_match_data *ma = ra ? pcre2_match_data_create_from_pattern(ra, NULL) : NULL;
    pcre2_match_data *mb = rb ? pcre2_match_data_create_from_pattern(rb, NULL) : NULL;
    size_t n = sizeof probe - 1;
    for (size_t off = 0; same && off < n;) {
        int xa = pcre2_match(ra, (PCRE2_SPTR)probe, n, off, 0, ma, NULL);
        int xb = pcre2_match(rb, (PCRE2_SPTR)probe, n, off, 0, mb, NULL);
        if ((xa < 0) != (xb < 0)) { same = false; break; }
        if (xa < 0) break;
        PCRE2_SIZE *va = pcre2_get_ovector_pointer(ma), *vb = pcre2_get_ovector_pointer(mb);
        if (va[0] != vb[0] || va[1] != vb[1]) { same = false; break; }
        off = va[1] > off ? va[1] : off + 1;
    }
    pcre2_match_data_free(ma);
    pcre2_match_data_free(mb);
    pcre2_code_free(ra);
    pcre2_code_free(rb);
    return same;
}

const char *tok_pre_match(const bm_tok *t) {
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        const tok_pre_def *d = &defs[i];
        int n = 0;
        while (n < 6 && d->re[n]) n++;
        if (n != t->n_pre) continue;
        bool ok = d->ignore_merges == t->ignore_merges;
        for (int k = 0; ok && k < n; k++)
            ok = t->pre[k].kind == PRE_SPLIT && t->pre[k].behavior == SPLIT_ISOLATED &&
                 !t->pre[k].invert && same_regex(t->pre[k].src, d->re[k]);
        if (ok) return d->name;
    }
    return NULL;
}
