/* GGUF tokenizer metadata: loads tokenizer.ggml.* (model "gpt2" = byte-level BPE with merges
 * and a tokenizer.ggml.pre regex set; "llama" = SentencePiece BPE by score with byte fallback)
 * and writes it back. Keys baimo adds so nothing of a tokenizer.json is lost:
 *   baimo.tokenizer.pre_tokenizer  string, the tokenizer.json pre_tokenizer (JSON) when its
 *                                  regexes match no known tokenizer.ggml.pre name
 *   baimo.tokenizer.normalizer     string, the tokenizer.json normalizer (JSON), e.g. NFC
 *   baimo.tokenizer.ignore_merges  bool */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define META "\xe2\x96\x81"

static char *dup_str(bm_str s) {
    char *p = malloc(s.n + 1);
    if (!p) return NULL;
    memcpy(p, s.p, s.n);
    p[s.n] = 0;
    return p;
}

static bool get_id(const bm_gguf *g, const char *key, int32_t n_vocab, int32_t *out) {
    int64_t v;
    if (!bm_gguf_get_i64(g, key, &v) || v < 0 || v >= n_vocab) return false;
    *out = (int32_t)v;
    return true;
}

static bm_status apply_json(bm_tok *t, const bm_gguf *g, const char *key, bool pre, bool *found,
                            bm_err *err) {
    bm_str s;
    *found = false;
    if (!bm_gguf_get_str(g, key, &s)) return BM_OK;
    json_error_t je;
    json_t *j = json_loadb(s.p, s.n, 0, &je);
    if (!j) return bm_err_set(err, BM_EFORMAT, "gguf: %s is not JSON: %s", key, je.text);
    bm_status st = pre ? tok_hf_parse_pre(t, j, err) : tok_hf_parse_normalizer(t, j, err);
    json_decref(j);
    *found = true;
    /* keep the JSON so that writing this tokenizer into another GGUF carries it again */
    char **keep = pre ? &t->pre_json : &t->norm_json;
    if (!st && !*keep && !(*keep = strndup(s.p, s.n)))
        st = bm_err_set(err, BM_ENOMEM, "gguf: out of memory");
    return st;
}

static bm_status load(bm_tok *t, const bm_gguf *g, bm_err *err) {
    bm_str model;
    if (!bm_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return bm_err_set(err, BM_ENOTFOUND, "gguf: no tokenizer.ggml.model key");
    bool spm = model.n == 5 && !memcmp(model.p, "llama", 5);
    bool bpe = model.n == 4 && !memcmp(model.p, "gpt2", 4);
    if (!spm && !bpe)
        return bm_err_set(err, BM_EUNSUPPORTED,
                          "gguf: tokenizer.ggml.model '%.*s' not supported (gpt2, llama)",
                          (int)model.n, model.p);
    int64_t ki = bm_gguf_find_key(g, "tokenizer.ggml.tokens");
    if (ki < 0 || bm_gguf_kv_type(g, ki) != BM_GGUF_ARRAY ||
        bm_gguf_arr_type(g, ki) != BM_GGUF_STRING)
        return bm_err_set(err, BM_EFORMAT, "gguf: tokenizer.ggml.tokens missing or not strings");
    uint64_t n = bm_gguf_arr_n(g, ki);
    if (n == 0 || n > (1u << 26))
        return bm_err_set(err, BM_EFORMAT, "gguf: %llu tokens, limit %u", (unsigned long long)n,
                          1u << 26);
    const char **texts = malloc(n * sizeof *texts);
    size_t *lens = malloc(n * sizeof *lens);
    if (!texts || !lens) {
        free(texts);
        free(lens);
        return bm_err_set(err, BM_ENOMEM, "gguf: out of memory for %llu tokens",
                          (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++) {
        bm_str s = bm_gguf_arr_str(g, ki, i);
        texts[i] = s.p ? s.p : "";
        lens[i] = s.n;
    }
    bm_status st = tok_set_vocab(t, (int32_t)n, texts, lens, err);
    free(texts);
    free(lens);
    if (st) return st;
    t->kind = spm ? TOK_SPM : TOK_BPE;
    t->byte_level = bpe;
    t->byte_fallback = spm;

    int64_t si = bm_gguf_find_key(g, "tokenizer.ggml.scores");
    if (si >= 0 && bm_gguf_arr_type(g, si) == BM_GGUF_F32 && bm_gguf_arr_n(g, si) == n)
        memcpy(t->score, bm_gguf_arr_data(g, si), n * sizeof(float));
    int64_t ti = bm_gguf_find_key(g, "tokenizer.ggml.token_type");
    if (ti >= 0 && bm_gguf_arr_type(g, ti) == BM_GGUF_I32 && bm_gguf_arr_n(g, ti) == n) {
        memcpy(t->ttype, bm_gguf_arr_data(g, ti), n * sizeof(int32_t));
        for (uint64_t i = 0; i < n; i++)
            if (t->ttype[i] < TT_NORMAL || t->ttype[i] > TT_BYTE) t->ttype[i] = TT_NORMAL;
    }

    int64_t mi = bm_gguf_find_key(g, "tokenizer.ggml.merges");
    if (mi >= 0 && bm_gguf_arr_type(g, mi) == BM_GGUF_STRING) {
        uint64_t nm = bm_gguf_arr_n(g, mi);
        if (nm > (1u << 26))
            return bm_err_set(err, BM_EFORMAT, "gguf: %llu merges, limit %u",
                              (unsigned long long)nm, 1u << 26);
        int32_t *a = malloc((nm ? nm : 1) * sizeof *a), *b = malloc((nm ? nm : 1) * sizeof *b);
        if (!a || !b) {
            free(a);
            free(b);
            return bm_err_set(err, BM_ENOMEM, "gguf: out of memory for merges");
        }
        for (uint64_t i = 0; i < nm; i++) {
            bm_str s = bm_gguf_arr_str(g, mi, i);
            const char *sp = s.p ? memchr(s.p, ' ', s.n) : NULL;
            a[i] = b[i] = -1;
            if (!sp) continue;
            a[i] = tok_lookup(t, s.p, (size_t)(sp - s.p));
            b[i] = tok_lookup(t, sp + 1, s.n - (size_t)(sp - s.p) - 1);
        }
        st = tok_set_merges(t, (int32_t)nm, a, b, err);
        free(a);
        free(b);
        if (st) return st;
    } else if (bpe) {
        return bm_err_set(err, BM_EFORMAT, "gguf: byte-level BPE without tokenizer.ggml.merges");
    }

    int32_t nv = (int32_t)n;
    get_id(g, "tokenizer.ggml.bos_token_id", nv, &t->bos);
    get_id(g, "tokenizer.ggml.eos_token_id", nv, &t->eos);
    get_id(g, "tokenizer.ggml.eot_token_id", nv, &t->eot);
    get_id(g, "tokenizer.ggml.unknown_token_id", nv, &t->unk);
    get_id(g, "tokenizer.ggml.padding_token_id", nv, &t->pad);
    t->add_bos = spm;
    t->add_eos = false;
    bm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
    bm_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos);
    bm_str tmpl;
    if (bm_gguf_get_str(g, "tokenizer.chat_template", &tmpl) &&
        !(t->chat_template = dup_str(tmpl)))
        return bm_err_set(err, BM_ENOMEM, "gguf: out of memory");

    bool have_norm, have_pre;
    st = apply_json(t, g, "baimo.tokenizer.normalizer", false, &have_norm, err);
    if (!st) st = apply_json(t, g, "baimo.tokenizer.pre_tokenizer", true, &have_pre, err);
    if (st) return st;
    bm_gguf_get_bool(g, "baimo.tokenizer.ignore_merges", &t->ignore_merges);
    if (spm) {
        bool prefix = true;
        bm_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &prefix);
        if (!have_norm && !have_pre) {
            tok_norm r = {.kind = NORM_REPLACE, .a = strdup(" "), .na = 1, .b = strdup(META),
                          .nb = 3};
            tok_norm p = {.kind = NORM_PREPEND, .a = strdup(META), .na = 3};
            tok_norm *q = realloc(t->norm, (size_t)(t->n_norm + 2) * sizeof *q);
            if (!q || !r.a || !r.b || !p.a) {
                free(q ? NULL : r.a);
                return bm_err_set(err, BM_ENOMEM, "gguf: out of memory");
            }
            t->norm = q;
            t->norm[t->n_norm++] = r;
            if (prefix) t->norm[t->n_norm++] = p;
            else free(p.a);
        }
        t->decode_meta = true;
        t->decode_strip_first = prefix;
    } else if (!have_pre) {
        bm_str pre = {"default", 7};
        bm_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
        const tok_pre_def *d = tok_pre_find(pre.p, pre.n);
        if (!d)
            return bm_err_set(err, BM_EUNSUPPORTED,
                              "gguf: tokenizer.ggml.pre '%.*s' is not a known pre-tokenizer",
                              (int)pre.n, pre.p);
        for (int k = 0; k < 6 && d->re[k]; k++) {
            st = tok_add_pre_split(t, d->re[k], strlen(d->re[k]), SPLIT_ISOLATED, false, err);
            if (st) return st;
        }
        if (d->ignore_merges) t->ignore_merges = true;
        if (!(t->pre_name = strdup(d->name))) return bm_err_set(err, BM_ENOMEM, "gguf: OOM");
    }
    for (int32_t i = 0; i < nv; i++) {
        int ty = t->ttype[i];
        if (ty != TT_CONTROL && ty != TT_USER_DEFINED && ty != TT_UNKNOWN) continue;
        size_t l;
        const char *s = bm_tok_token_text(t, i, &l);
        st = tok_add_added(t, i, s, l, ty != TT_USER_DEFINED, false, false, false, err);
        if (st) return st;
    }
    return tok_finish(t, err);
}

bm_status bm_tok_load_gguf(const bm_gguf *g, bm_tok **out, bm_err *err) {
    *out = NULL;
    bm_tok *t = tok_alloc(err);
    if (!t) return BM_ENOMEM;
    bm_status st = load(t, g, err);
    if (st) {
        bm_tok_free(t);
        return st;
    }
    *out = t;
    return BM_OK;
}

bm_status bm_tok_write_gguf(const bm_tok *t, bm_gguf_writer *w, bm_err *err) {
    bool spm = !t->byte_level;
    bm_status st = bm_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2", err);
    if (st) return st;
    size_t n = (size_t)t->n_vocab;
    const char **strs = malloc(n * sizeof *strs);
    size_t *lens = malloc(n * sizeof *lens);
    if (!strs || !lens) {
        free(strs);
        free(lens);
        return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < n; i++) strs[i] = bm_tok_token_text(t, (int32_t)i, &lens[i]);
    st = bm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n, err);
    if (!st)
        st = bm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", BM_GGUF_I32, t->ttype, n,
                                    err);
    if (!st && spm)
        st = bm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", BM_GGUF_F32, t->score, n, err);
    free(strs);
    free(lens);
    if (st) return st;
    if (t->n_merges > 0) {
        size_t nm = (size_t)t->n_merges;
        char **ms = calloc(nm, sizeof *ms);
        if (!ms) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < nm && !st; i++) {
            size_t la, lb;
            const char *a = bm_tok_token_text(t, t->merge_a[i], &la);
            const char *b = bm_tok_token_text(t, t->merge_b[i], &lb);
            ms[i] = malloc(la + lb + 2);
            if (!ms[i]) {
                st = bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
                break;
            }
            memcpy(ms[i], a, la);
            ms[i][la] = ' ';
            memcpy(ms[i] + la + 1, b, lb);
            ms[i][la + lb + 1] = 0;
        }
        if (!st)
            st = bm_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)ms,
                                            NULL, nm, err);
        for (size_t i = 0; i < nm; i++) free(ms[i]);
        free(ms);
        if (st) return st;
    }
    if (!spm) {
        st = bm_gguf_writer_set_str(w, "tokenizer.ggml.pre",
                                    t->pre_name ? t->pre_name : "baimo-custom", err);
        if (!st && !t->pre_name && t->pre_json)
            st = bm_gguf_writer_set_str(w, "baimo.tokenizer.pre_tokenizer", t->pre_json, err);
    } else if (t->pre_json) {
        st = bm_gguf_writer_set_str(w, "baimo.tokenizer.pre_tokenizer", t->pre_json, err);
    }
    if (!st && t->norm_json)
        st = bm_gguf_writer_set_str(w, "baimo.tokenizer.normalizer", t->norm_json, err);
    if (!st && t->ignore_merges)
        st = bm_gguf_writer_set_bool(w, "baimo.tokenizer.ignore_merges", true, err);
    if (!st && spm)
        st = bm_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->decode_strip_first,
                                     err);
    struct {
        const char *key;
        int32_t id;
    } ids[] = {{"tokenizer.ggml.bos_token_id", t->bos},
               {"tokenizer.ggml.eos_token_id", t->eos},
               {"tokenizer.ggml.eot_token_id", t->eot},
               {"tokenizer.ggml.unknown_token_id", t->unk},
               {"tokenizer.ggml.padding_token_id", t->pad}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0] && !st; i++)
        if (ids[i].id >= 0) st = bm_gguf_writer_set_u32(w, ids[i].key, (uint32_t)ids[i].id, err);
    if (!st) st = bm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos, err);
    if (!st) st = bm_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos, err);
    if (!st && t->chat_template)
        st = bm_gguf_writer_set_str(w, "tokenizer.chat_template", t->chat_template, err);
    return st;
}
