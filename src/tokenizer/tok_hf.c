/* Loads a Hugging Face tokenizer.json (model BPE; normalizer, pre_tokenizer, decoder,
 * post_processor, added_tokens) and the tokenizer_config.json beside it (bos/eos, add_bos_token,
 * add_eos_token, chat_template as a string or a list of {name, template}). Unigram and
 * WordPiece models are reported as unsupported. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define META "\xe2\x96\x81" /* U+2581, SentencePiece's space */

static const char *jstr(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
static bool jbool(const json_t *o, const char *k, bool def) {
    const json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static bm_status add_norm(bm_tok *t, tok_norm n, bm_err *err) {
    tok_norm *p = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
    if (!p) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    t->norm = p;
    t->norm[t->n_norm++] = n;
    return BM_OK;
}

/* A literal pattern as a PCRE2 regex. */
static char *quote_regex(const char *s) {
    size_t n = strlen(s);
    char *q = malloc(4 * n + 1);
    if (!q) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i])) q[w++] = '\\';
        q[w++] = s[i];
    }
    q[w] = 0;
    return q;
}

bm_status tok_hf_parse_normalizer(bm_tok *t, const json_t *n, bm_err *err) {
    if (!n || json_is_null(n)) return BM_OK;
    const char *ty = jstr(n, "type");
    if (!ty) return bm_err_set(err, BM_EFORMAT, "tokenizer.json: normalizer without a type");
    tok_norm nm = {0};
    if (!strcmp(ty, "Sequence")) {
        const json_t *a = json_object_get(n, "normalizers");
        size_t i;
        const json_t *v;
        json_array_foreach(a, i, v) {
            bm_status st = tok_hf_parse_normalizer(t, v, err);
            if (st) return st;
        }
        return BM_OK;
    }
    if (!strcmp(ty, "NFC")) nm.kind = NORM_NFC;
    else if (!strcmp(ty, "NFKC")) nm.kind = NORM_NFKC;
    else if (!strcmp(ty, "NFD")) nm.kind = NORM_NFD;
    else if (!strcmp(ty, "NFKD")) nm.kind = NORM_NFKD;
    else if (!strcmp(ty, "Lowercase")) nm.kind = NORM_LOWER;
    else if (!strcmp(ty, "Strip")) {
        nm.kind = NORM_STRIP;
        nm.left = jbool(n, "left", true);
        nm.right = jbool(n, "right", true);
    } else if (!strcmp(ty, "Prepend")) {
        nm.kind = NORM_PREPEND;
        const char *s = jstr(n, "prepend");
        nm.a = strdup(s ? s : "");
        nm.na = strlen(nm.a);
    } else if (!strcmp(ty, "Replace")) {
        nm.kind = NORM_REPLACE;
        const json_t *pat = json_object_get(n, "pattern");
        const char *c = jstr(n, "content");
        nm.b = strdup(c ? c : "");
        nm.nb = strlen(nm.b);
        const char *ps = jstr(pat, "String"), *pr = jstr(pat, "Regex");
        if (ps) {
            nm.a = strdup(ps);
            nm.na = strlen(ps);
        } else if (pr) {
            nm.re = tok_regex(pr, strlen(pr), err);
            if (!nm.re) {
                free(nm.b);
                return BM_EFORMAT;
            }
        } else {
            free(nm.b);
            return bm_err_set(err, BM_EFORMAT, "tokenizer.json: Replace without a pattern");
        }
    } else {
        return bm_err_set(err, BM_EUNSUPPORTED, "tokenizer.json: normalizer '%s' not supported",
                          ty);
    }
    return add_norm(t, nm, err);
}

static int behavior_of(const char *b) {
    if (!b) return SPLIT_ISOLATED;
    if (!strcmp(b, "Removed")) return SPLIT_REMOVED;
    if (!strcmp(b, "MergedWithPrevious")) return SPLIT_MERGED_PREV;
    if (!strcmp(b, "MergedWithNext")) return SPLIT_MERGED_NEXT;
    if (!strcmp(b, "Contiguous")) return SPLIT_CONTIGUOUS;
    return SPLIT_ISOLATED;
}

bm_status tok_hf_parse_pre(bm_tok *t, const json_t *p, bm_err *err) {
    if (!p || json_is_null(p)) return BM_OK;
    const char *ty = jstr(p, "type");
    if (!ty) return bm_err_set(err, BM_EFORMAT, "tokenizer.json: pre_tokenizer without a type");
    if (!strcmp(ty, "Sequence")) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(p, "pretokenizers"), i, v) {
            bm_status st = tok_hf_parse_pre(t, v, err);
            if (st) return st;
        }
        return BM_OK;
    }
    if (!strcmp(ty, "Split")) {
        const json_t *pat = json_object_get(p, "pattern");
        const char *pr = jstr(pat, "Regex"), *ps = jstr(pat, "String");
        int beh = behavior_of(jstr(p, "behavior"));
        bool inv = jbool(p, "invert", false);
        if (pr) return tok_add_pre_split(t, pr, strlen(pr), beh, inv, err);
        if (ps) {
            char *q = quote_regex(ps);
            if (!q) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
            bm_status st = tok_add_pre_split(t, q, strlen(q), beh, inv, err);
            free(q);
            return st;
        }
        return bm_err_set(err, BM_EFORMAT, "tokenizer.json: Split without a pattern");
    }
    if (!strcmp(ty, "ByteLevel")) {
        t->byte_level = true;
        if (jbool(p, "use_regex", true))
            return tok_add_pre_split(t, tok_gpt2_regex, strlen(tok_gpt2_regex), SPLIT_ISOLATED,
                                     false, err);
        return BM_OK;
    }
    if (!strcmp(ty, "Digits")) {
        const char *re = jbool(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+";
        return tok_add_pre_split(t, re, strlen(re), SPLIT_ISOLATED, false, err);
    }
    if (!strcmp(ty, "Metaspace")) {
        const char *rep = jstr(p, "replacement");
        if (!rep) rep = META;
        const char *scheme = jstr(p, "prepend_scheme");
        bool prepend = scheme ? strcmp(scheme, "never") != 0 : jbool(p, "add_prefix_space", true);
        tok_norm r = {.kind = NORM_REPLACE, .a = strdup(" "), .na = 1, .b = strdup(rep),
                      .nb = strlen(rep)};
        bm_status st = add_norm(t, r, err);
        if (st) return st;
        if (prepend) {
            tok_norm pp = {.kind = NORM_PREPEND, .a = strdup(rep), .na = strlen(rep)};
            st = add_norm(t, pp, err);
            if (st) return st;
        }
        t->decode_meta = true;
        t->decode_strip_first = prepend;
        if (jbool(p, "split", true)) {
            char *q = quote_regex(rep);
            if (!q) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
            st = tok_add_pre_split(t, q, strlen(q), SPLIT_MERGED_NEXT, false, err);
            free(q);
        }
        return st;
    }
    return bm_err_set(err, BM_EUNSUPPORTED, "tokenizer.json: pre_tokenizer '%s' not supported",
                      ty);
}

static void parse_decoder(bm_tok *t, const json_t *d) {
    if (!d || json_is_null(d)) return;
    const char *ty = jstr(d, "type");
    if (!ty) return;
    if (!strcmp(ty, "Sequence")) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(d, "decoders"), i, v) parse_decoder(t, v);
    } else if (!strcmp(ty, "ByteLevel")) {
        t->byte_level = true;
    } else if (!strcmp(ty, "Metaspace")) {
        t->decode_meta = true;
        const char *scheme = jstr(d, "prepend_scheme");
        t->decode_strip_first =
            scheme ? strcmp(scheme, "never") != 0 : jbool(d, "add_prefix_space", true);
    } else if (!strcmp(ty, "Replace")) {
        const char *ps = jstr(json_object_get(d, "pattern"), "String");
        const char *c = jstr(d, "content");
        if (ps && c && !strcmp(ps, META) && !strcmp(c, " ")) t->decode_meta = true;
    } else if (!strcmp(ty, "Strip")) {
        const char *c = jstr(d, "content");
        const json_t *st = json_object_get(d, "start");
        if (c && !strcmp(c, " ") && json_is_integer(st) && json_integer_value(st) >= 1)
            t->decode_strip_first = true;
    }
}

static void parse_post(bm_tok *t, const json_t *p) {
    if (!p || json_is_null(p)) return;
    const char *ty = jstr(p, "type");
    if (!ty) return;
    if (!strcmp(ty, "Sequence")) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(p, "processors"), i, v) parse_post(t, v);
        return;
    }
    if (strcmp(ty, "TemplateProcessing") != 0) return;
    const json_t *single = json_object_get(p, "single");
    size_t n = json_array_size(single);
    for (size_t i = 0; i < n; i++) {
        const json_t *sp = json_object_get(json_array_get(single, i), "SpecialToken");
        if (!sp) continue;
        const char *name = jstr(sp, "id");
        if (!name) continue;
        int32_t id = tok_lookup(t, name, strlen(name));
        if (id < 0) continue;
        if (i == 0) {
            t->add_bos = true;
            t->bos = id;
        } else if (i == n - 1) {
            t->add_eos = true;
            t->eos = id;
        }
    }
}

/* bos_token etc. in tokenizer_config.json: a string or {"content": ...}. */
static int32_t config_token(const bm_tok *t, const json_t *cfg, const char *key) {
    const json_t *v = json_object_get(cfg, key);
    const char *s = json_is_string(v) ? json_string_value(v) : jstr(v, "content");
    return s ? tok_lookup(t, s, strlen(s)) : -1;
}

static bm_status read_config(bm_tok *t, const char *json_path, bm_err *err) {
    const char *slash = strrchr(json_path, '/');
    size_t dn = slash ? (size_t)(slash - json_path + 1) : 0;
    char *path = malloc(dn + 32);
    if (!path) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    memcpy(path, json_path, dn);
    strcpy(path + dn, "tokenizer_config.json");
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    free(path);
    if (!cfg) return BM_OK; /* optional */
    int32_t id;
    if ((id = config_token(t, cfg, "bos_token")) >= 0) t->bos = id;
    if ((id = config_token(t, cfg, "eos_token")) >= 0) t->eos = id;
    if ((id = config_token(t, cfg, "unk_token")) >= 0) t->unk = id;
    if ((id = config_token(t, cfg, "pad_token")) >= 0) t->pad = id;
    const json_t *v = json_object_get(cfg, "add_bos_token");
    if (json_is_boolean(v)) t->add_bos = json_is_true(v);
    v = json_object_get(cfg, "add_eos_token");
    if (json_is_boolean(v)) t->add_eos = json_is_true(v);
    v = json_object_get(cfg, "chat_template");
    const char *tmpl = NULL;
    if (json_is_string(v)) {
        tmpl = json_string_value(v);
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            const char *nm = jstr(e, "name"), *tx = jstr(e, "template");
            if (!tx) continue;
            if (!tmpl || (nm && !strcmp(nm, "default"))) tmpl = tx;
            if (nm && !strcmp(nm, "default")) break;
        }
    }
    if (tmpl) {
        t->chat_template = strdup(tmpl);
        if (!t->chat_template) {
            json_decref(cfg);
            return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
        }
    }
    json_decref(cfg);
    return BM_OK;
}

static bm_status load(bm_tok *t, json_t *root, const char *path, bm_err *err) {
    const json_t *model = json_object_get(root, "model");
    const char *mty = jstr(model, "type");
    if (!mty && json_object_get(model, "merges")) mty = "BPE";
    if (!mty || strcmp(mty, "BPE") != 0)
        return bm_err_set(err, BM_EUNSUPPORTED, "tokenizer.json: model type '%s' not supported "
                          "(BPE only)", mty ? mty : "(none)");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab))
        return bm_err_set(err, BM_EFORMAT, "tokenizer.json: model.vocab is not an object");
    int64_t n = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)vocab, k, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= (1 << 26))
            return bm_err_set(err, BM_EFORMAT, "tokenizer.json: token '%.40s' has id outside "
                              "[0, %d)", k, 1 << 26);
        if (id + 1 > n) n = id + 1;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (id < 0 || id >= (1 << 26) || !jstr(v, "content"))
            return bm_err_set(err, BM_EFORMAT, "tokenizer.json: added token %zu is malformed", i);
        if (id + 1 > n) n = id + 1;
    }
    if (n == 0) return bm_err_set(err, BM_EFORMAT, "tokenizer.json: empty vocabulary");
    const char **texts = calloc((size_t)n, sizeof *texts);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    char *holes = calloc((size_t)n, 40);
    if (!texts || !lens || !holes) {
        free(texts);
        free(lens);
        free(holes);
        return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory for %lld tokens",
                          (long long)n);
    }
    json_object_foreach((json_t *)vocab, k, v) {
        json_int_t id = json_integer_value(v);
        texts[id] = k;
        lens[id] = strlen(k);
    }
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        texts[id] = jstr(v, "content");
        lens[id] = json_string_length(json_object_get(v, "content"));
    }
    int64_t n_holes = 0;
    for (int64_t j = 0; j < n; j++)
        if (!texts[j]) {
            char *h = holes + 40 * j;
            snprintf(h, 40, "<baimo_unused_%lld>", (long long)j);
            texts[j] = h;
            lens[j] = strlen(h);
            n_holes++;
        }
    bm_status st = tok_set_vocab(t, (int32_t)n, texts, lens, err);
    for (int64_t j = 0; j < n && !st; j++)
        if (texts[j] == holes + 40 * j) t->ttype[j] = TT_UNUSED;
    free(texts);
    free(lens);
    free(holes);
    if (st) return st;
    t->kind = TOK_BPE;
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);
    const char *unk = jstr(model, "unk_token");
    if (unk) t->unk = tok_lookup(t, unk, strlen(unk));

    /* merges: "a b" strings or [a, b] pairs */
    const json_t *merges = json_object_get(model, "merges");
    size_t nm = json_array_size(merges);
    int32_t *ma = malloc((nm ? nm : 1) * sizeof *ma), *mb = malloc((nm ? nm : 1) * sizeof *mb);
    if (!ma || !mb) {
        free(ma);
        free(mb);
        return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory for %zu merges", nm);
    }
    for (size_t j = 0; j < nm; j++) {
        const json_t *m = json_array_get(merges, j);
        ma[j] = mb[j] = -1;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            if (!sp) continue;
            ma[j] = tok_lookup(t, s, (size_t)(sp - s));
            mb[j] = tok_lookup(t, sp + 1, strlen(sp + 1));
        } else if (json_is_array(m) && json_array_size(m) == 2) {
            const json_t *x = json_array_get(m, 0), *y = json_array_get(m, 1);
            if (!json_is_string(x) || !json_is_string(y)) continue;
            ma[j] = tok_lookup(t, json_string_value(x), json_string_length(x));
            mb[j] = tok_lookup(t, json_string_value(y), json_string_length(y));
        }
    }
    st = tok_set_merges(t, (int32_t)nm, ma, mb, err);
    free(ma);
    free(mb);
    if (st) return st;

    json_array_foreach(added, i, v) {
        int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
        const json_t *c = json_object_get(v, "content");
        bool special = jbool(v, "special", false);
        t->ttype[id] = special ? TT_CONTROL : TT_USER_DEFINED;
        st = tok_add_added(t, id, json_string_value(c), json_string_length(c), special,
                           jbool(v, "lstrip", false), jbool(v, "rstrip", false),
                           jbool(v, "single_word", false), err);
        if (st) return st;
    }
    if (t->byte_fallback)
        for (int32_t j = 0; j < t->n_vocab; j++) {
            size_t l;
            const char *s = bm_tok_token_text(t, j, &l);
            if (l == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') t->ttype[j] = TT_BYTE;
        }

    st = tok_hf_parse_normalizer(t, json_object_get(root, "normalizer"), err);
    if (!st) st = tok_hf_parse_pre(t, json_object_get(root, "pre_tokenizer"), err);
    if (st) return st;
    parse_decoder(t, json_object_get(root, "decoder"));
    parse_post(t, json_object_get(root, "post_processor"));
    const json_t *nj = json_object_get(root, "normalizer"), *pj = json_object_get(root, "pre_tokenizer");
    t->norm_json = nj && !json_is_null(nj) ? json_dumps(nj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    t->pre_json = pj && !json_is_null(pj) ? json_dumps(pj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    st = read_config(t, path, err);
    if (st) return st;
    const char *name = tok_pre_match(t);
    if (name && !(t->pre_name = strdup(name)))
        return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    if (t->unk >= 0 && t->ttype[t->unk] == TT_NORMAL) t->ttype[t->unk] = TT_UNKNOWN;
    return tok_finish(t, err);
}

bm_status bm_tok_load_hf(const char *path, bm_tok **out, bm_err *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return bm_err_set(err, BM_EFORMAT, "tokenizer.json: %s: line %d: %s", path, je.line,
                          je.text);
    bm_tok *t = tok_alloc(err);
    if (!t) {
        json_decref(root);
        return BM_ENOMEM;
    }
    bm_status st = load(t, root, path, err);
    json_decref(root);
    if (st) {
        bm_tok_free(t);
        return st;
    }
    *out = t;
    return BM_OK;
}
