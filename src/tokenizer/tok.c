/* Tokenizer core: vocabulary tables, added-token splitting, normalizers (utf8proc), regex
 * pre-tokenization (PCRE2, Unicode properties, JIT), BPE merging with a binary heap over
 * adjacent pairs (merge-rank order for byte-level/HF BPE, score order for SentencePiece BPE)
 * with byte fallback, a mutex-guarded word cache, exact decoding and the incremental UTF-8
 * safe detokenizer. Loading lives in tok_hf.c (tokenizer.json) and tok_gguf.c (GGUF). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* ---- small growable buffers ----------------------------------------------------------- */

typedef struct ivec {
    int32_t *p;
    size_t n, cap;
    bool oom;
} ivec;

static void iv_push(ivec *v, int32_t x) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 256;
        int32_t *q = realloc(v->p, nc * sizeof *q);
        if (!q) {
            v->oom = true;
            return;
        }
        v->p = q;
        v->cap = nc;
    }
    v->p[v->n++] = x;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* ---- GPT-2 byte <-> unicode map ------------------------------------------------------- */

static bool byte_printable(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* Code point that stands for byte b in byte-level BPE vocabularies. */
static uint32_t byte_to_cp(int b) {
    if (byte_printable(b)) return (uint32_t)b;
    int k = 0;
    for (int i = 0; i < b; i++)
        if (!byte_printable(i)) k++;
    return 256u + (uint32_t)k;
}

static uint16_t g_b2u[256];
static int16_t g_u2b[324];
static pthread_once_t g_map_once = PTHREAD_ONCE_INIT;
static void map_init(void) {
    for (int i = 0; i < 324; i++) g_u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        g_b2u[b] = (uint16_t)byte_to_cp(b);
        g_u2b[g_b2u[b]] = (int16_t)b;
    }
}

/* ---- hashing -------------------------------------------------------------------------- */

static uint32_t hash_bytes(const void *s, size_t n) {
    const uint8_t *p = s;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static uint32_t hash_pair(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

static const char *ttext(const bm_tok *t, int32_t id, size_t *n) {
    *n = t->text_len[id];
    return t->blob + t->text_off[id];
}

int32_t tok_lookup(const bm_tok *t, const char *s, size_t n) {
    if (!t->htab) return -1;
    for (uint32_t h = hash_bytes(s, n) & t->hmask;; h = (h + 1) & t->hmask) {
        int32_t id = t->htab[h];
        if (id < 0) return -1;
        if (t->text_len[id] == n && memcmp(t->blob + t->text_off[id], s, n) == 0) return id;
    }
}

static int32_t merge_rank(const bm_tok *t, int32_t a, int32_t b) {
    if (!t->mtab || a < 0 || b < 0) return -1;
    for (uint32_t h = hash_pair(a, b) & t->mmask;; h = (h + 1) & t->mmask) {
        int32_t r = t->mtab[h];
        if (r < 0) return -1;
        if (t->merge_a[r] == a && t->merge_b[r] == b) return r;
    }
}

/* ---- construction --------------------------------------------------------------------- */

bm_tok *tok_alloc(bm_err *err) {
    pthread_once(&g_map_once, map_init);
    bm_tok *t = bm_calloc(1, sizeof *t, err);
    if (!t) return NULL;
    t->bos = t->eos = t->eot = t->unk = t->pad = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = t->added_first[i] = -1;
    pthread_mutex_init(&t->cache_mu, NULL);
    return t;
}

bm_status tok_set_vocab(bm_tok *t, int32_t n, const char *const *texts, const size_t *lens,
                        bm_err *err) {
    if (n <= 0 || n > (1 << 26))
        return bm_err_set(err, BM_EFORMAT, "tokenizer: vocabulary size %d outside [1, %d]", n,
                          1 << 26);
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(texts[i]);
        if (l > 65535)
            return bm_err_set(err, BM_EFORMAT, "tokenizer: token %d is %zu bytes, limit 65535",
                              i, l);
        total += 2 * l + 8; /* text + raw form (raw never longer than text) */
    }
    t->n_vocab = n;
    t->blob = bm_malloc(total, err);
    t->text_off = bm_calloc((size_t)n, sizeof(uint32_t), err);
    t->text_len = bm_calloc((size_t)n, sizeof(uint32_t), err);
    t->raw_off = bm_calloc((size_t)n, sizeof(uint32_t), err);
    t->raw_len = bm_calloc((size_t)n, sizeof(uint32_t), err);
    t->score = bm_calloc((size_t)n, sizeof(float), err);
    t->ttype = bm_calloc((size_t)n, sizeof(int32_t), err);
    t->eog = bm_calloc((size_t)n, 1, err);
    uint32_t cap = 1;
    while (cap < (uint32_t)n * 2u) cap <<= 1;
    t->htab = bm_malloc((size_t)cap * sizeof(int32_t), err);
    if (!t->blob || !t->text_off || !t->text_len || !t->raw_off || !t->raw_len || !t->score ||
        !t->ttype || !t->eog || !t->htab)
        return BM_ENOMEM;
    if (total > UINT32_MAX)
        return bm_err_set(err, BM_ERANGE, "tokenizer: vocabulary text %zu bytes, limit 4 GiB",
                          total);
    t->hmask = cap - 1;
    memset(t->htab, 0xff, (size_t)cap * sizeof(int32_t));
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(texts[i]);
        memcpy(t->blob + off, texts[i], l);
        t->text_off[i] = (uint32_t)off;
        t->text_len[i] = (uint32_t)l;
        off += l;
        t->ttype[i] = TT_NORMAL;
        if (tok_lookup(t, texts[i], l) >= 0) continue; /* duplicate text: first id wins */
        uint32_t h = hash_bytes(texts[i], l) & t->hmask;
        while (t->htab[h] >= 0) h = (h + 1) & t->hmask;
        t->htab[h] = i;
    }
    t->raw_off[0] = (uint32_t)off; /* raw forms are laid out by tok_finish after this */
    return BM_OK;
}

bm_status tok_set_merges(bm_tok *t, int32_t n, const int32_t *a, const int32_t *b, bm_err *err) {
    t->merge_a = bm_malloc((size_t)(n ? n : 1) * sizeof(int32_t), err);
    t->merge_b = bm_malloc((size_t)(n ? n : 1) * sizeof(int32_t), err);
    t->merge_r = bm_malloc((size_t)(n ? n : 1) * sizeof(int32_t), err);
    uint32_t cap = 1;
    while (cap < (uint32_t)(n ? n : 1) * 2u) cap <<= 1;
    t->mtab = bm_malloc((size_t)cap * sizeof(int32_t), err);
    if (!t->merge_a || !t->merge_b || !t->merge_r || !t->mtab) return BM_ENOMEM;
    t->mmask = cap - 1;
    memset(t->mtab, 0xff, (size_t)cap * sizeof(int32_t));
    int32_t k = 0;
    char *tmp = NULL;
    size_t tmp_cap = 0;
    for (int32_t i = 0; i < n; i++) {
        if (a[i] < 0 || b[i] < 0 || a[i] >= t->n_vocab || b[i] >= t->n_vocab) continue;
        if (merge_rank(t, a[i], b[i]) >= 0) continue;
        size_t la, lb;
        const char *sa = ttext(t, a[i], &la), *sb = ttext(t, b[i], &lb);
        if (la + lb > tmp_cap) {
            tmp_cap = (la + lb) * 2;
            char *q = realloc(tmp, tmp_cap);
            if (!q) {
                free(tmp);
                return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory in merges");
            }
            tmp = q;
        }
        memcpy(tmp, sa, la);
        memcpy(tmp + la, sb, lb);
        int32_t r = tok_lookup(t, tmp, la + lb);
        if (r < 0) continue; /* a merge whose result is not a token can never apply */
        t->merge_a[k] = a[i];
        t->merge_b[k] = b[i];
        t->merge_r[k] = r;
        uint32_t h = hash_pair(a[i], b[i]) & t->mmask;
        while (t->mtab[h] >= 0) h = (h + 1) & t->mmask;
        t->mtab[h] = k++;
    }
    free(tmp);
    t->n_merges = k;
    return BM_OK;
}

pcre2_code *tok_regex(const char *src, size_t n, bm_err *err) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, n,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK,
                                   &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        bm_err_set(err, BM_EFORMAT, "tokenizer: regex '%.*s' at offset %zu: %s",
                   (int)(n > 120 ? 120 : n), src, (size_t)eo, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if absent */
    return re;
}

bm_status tok_add_pre_split(bm_tok *t, const char *src, size_t n, int behavior, bool invert,
                            bm_err *err) {
    tok_pre *p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
    if (!p) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    t->pre = p;
    tok_pre *s = &t->pre[t->n_pre];
    memset(s, 0, sizeof *s);
    s->kind = PRE_SPLIT;
    s->behavior = behavior;
    s->invert = invert;
    s->src = strndup(src, n);
    if (!s->src) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    s->re = tok_regex(src, n, err);
    if (!s->re) {
        free(s->src);
        return BM_EFORMAT;
    }
    t->n_pre++;
    return BM_OK;
}

bm_status tok_add_added(bm_tok *t, int32_t id, const char *s, size_t n, bool special,
                        bool lstrip, bool rstrip, bool single_word, bm_err *err) {
    if (n == 0 || id < 0 || id >= t->n_vocab) return BM_OK;
    tok_added *p = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *p);
    if (!p) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    t->added = p;
    tok_added *a = &t->added[t->n_added];
    a->id = id;
    a->text = strndup(s, n);
    if (!a->text) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    a->n = n;
    a->special = special;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->single_word = single_word;
    t->n_added++;
    return BM_OK;
}

static int cmp_added(const void *x, const void *y) {
    const tok_added *a = x, *b = y;
    uint8_t ca = (uint8_t)a->text[0], cb = (uint8_t)b->text[0];
    if (ca != cb) return ca < cb ? -1 : 1;
    if (a->n != b->n) return a->n > b->n ? -1 : 1; /* longest first: leftmost-longest */
    return a->id < b->id ? -1 : a->id > b->id;
}

static const char *const eog_names[] = {
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end|>", "<end_of_turn>",
    "<|end_of_text|>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "</s>", "<|return|>", "<|call|>", "<EOT>",
};

bm_status tok_finish(bm_tok *t, bm_err *err) {
    /* Raw (decoded) form of every token. */
    size_t off = t->raw_off[0];
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t n;
        const char *s = ttext(t, i, &n);
        char *dst = t->blob + off;
        size_t m = 0;
        bool done = false;
        if (t->byte_level) {
            /* Every character must be in the byte map; otherwise the text is used as is. */
            size_t j = 0;
            bool ok = true;
            while (j < n) {
                uint32_t cp;
                int k = bm_utf8_decode((const uint8_t *)s + j, n - j, &cp);
                if (k <= 0 || cp >= 324 || g_u2b[cp] < 0) {
                    ok = false;
                    break;
                }
                dst[m++] = (char)g_u2b[cp];
                j += (size_t)k;
            }
            done = ok;
        } else if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' &&
                   (t->ttype[i] == TT_BYTE || t->byte_fallback)) {
            char hex[3] = {s[3], s[4], 0};
            char *e;
            long v = strtol(hex, &e, 16);
            if (*e == 0) {
                dst[m++] = (char)v;
                t->ttype[i] = TT_BYTE;
                if (t->byte_id[v] < 0) t->byte_id[v] = i;
                done = true;
            }
        } else if (t->decode_meta && t->ttype[i] != TT_CONTROL) {
            for (size_t j = 0; j < n;) {
                if (j + 3 <= n && memcmp(s + j, "\xe2\x96\x81", 3) == 0) {
                    dst[m++] = ' ';
                    j += 3;
                } else {
                    dst[m++] = s[j++];
                }
            }
            done = true;
        }
        if (!done) {
            memcpy(dst, s, n);
            m = n;
        }
        t->raw_off[i] = (uint32_t)off;
        t->raw_len[i] = (uint32_t)m;
        off += m;
    }
    if (t->byte_level) {
        for (int b = 0; b < 256; b++) {
            uint8_t u[4];
            int k = bm_utf8_encode(g_b2u[b], u);
            t->byte_id[b] = tok_lookup(t, (const char *)u, (size_t)k);
        }
    }
    if (t->n_added > 1) qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    for (int i = t->n_added - 1; i >= 0; i--) t->added_first[(uint8_t)t->added[i].text[0]] = i;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t n;
        const char *s = ttext(t, i, &n);
        for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++)
            if (strlen(eog_names[k]) == n && memcmp(eog_names[k], s, n) == 0 &&
                (t->ttype[i] == TT_CONTROL || t->ttype[i] == TT_USER_DEFINED))
                t->eog[i] = 1;
    }
    if (t->eos >= 0 && t->eos < t->n_vocab) t->eog[t->eos] = 1;
    if (t->eot >= 0 && t->eot < t->n_vocab) t->eog[t->eot] = 1;
    t->cache = calloc(TOK_CACHE_SLOTS, sizeof *t->cache);
    if (!t->cache) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory (cache)");
    return BM_OK;
}

void bm_tok_free(bm_tok *t) {
    if (!t) return;
    free(t->blob);
    free(t->text_off);
    free(t->text_len);
    free(t->raw_off);
    free(t->raw_len);
    free(t->score);
    free(t->ttype);
    free(t->eog);
    free(t->htab);
    free(t->merge_a);
    free(t->merge_b);
    free(t->merge_r);
    free(t->mtab);
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
        pcre2_code_free(t->norm[i].re);
    }
    free(t->norm);
    for (int i = 0; i < t->n_pre; i++) {
        free(t->pre[i].src);
        pcre2_code_free(t->pre[i].re);
    }
    free(t->pre);
    free(t->norm_json);
    free(t->pre_json);
    free(t->pre_name);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].text);
    free(t->added);
    free(t->chat_template);
    free(t->cache);
    pthread_mutex_destroy(&t->cache_mu);
    free(t);
}

/* ---- accessors ------------------------------------------------------------------------ */

int32_t bm_tok_n_vocab(const bm_tok *t) { return t->n_vocab; }
int32_t bm_tok_bos(const bm_tok *t) { return t->bos; }
int32_t bm_tok_eos(const bm_tok *t) { return t->eos; }
bool bm_tok_is_eog(const bm_tok *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}
int32_t bm_tok_find(const bm_tok *t, const char *piece, size_t len) {
    return tok_lookup(t, piece, len);
}
const char *bm_tok_chat_template(const bm_tok *t) { return t->chat_template; }
const char *bm_tok_token_text(const bm_tok *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    return ttext(t, id, len);
}

/* ---- normalizers ---------------------------------------------------------------------- */

static void replace_all(sbuf *out, const char *s, size_t n, const char *pat, size_t np,
                        const char *rep, size_t nr) {
    size_t i = 0;
    while (i < n) {
        if (np && i + np <= n && memcmp(s + i, pat, np) == 0) {
            sb_add(out, rep, nr);
            i += np;
        } else {
            sb_add(out, s + i, 1);
            i++;
        }
    }
}

/* Applies the normalizer steps to s[0..n) into out (replacing its content). */
static void normalize(const bm_tok *t, const char *s, size_t n, sbuf *out) {
    out->n = 0;
    sb_add(out, s, n);
    sbuf tmp = {0};
    for (int k = 0; k < t->n_norm && !out->oom; k++) {
        const tok_norm *nm = &t->norm[k];
        tmp.n = 0;
        switch (nm->kind) {
        case NORM_NFC:
        case NORM_NFKC:
        case NORM_NFD:
        case NORM_NFKD: {
            int opt = UTF8PROC_STABLE;
            if (nm->kind == NORM_NFC || nm->kind == NORM_NFKC) opt |= UTF8PROC_COMPOSE;
            else opt |= UTF8PROC_DECOMPOSE;
            if (nm->kind == NORM_NFKC || nm->kind == NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r =
                utf8proc_map((const utf8proc_uint8_t *)out->p, (utf8proc_ssize_t)out->n, &dst,
                             (utf8proc_option_t)opt);
            if (r >= 0) sb_add(&tmp, dst, (size_t)r);
            else sb_add(&tmp, out->p, out->n); /* invalid UTF-8: left as is */
            free(dst);
            break;
        }
        case NORM_LOWER:
            for (size_t i = 0; i < out->n;) {
                uint32_t cp;
                int l = bm_utf8_decode((const uint8_t *)out->p + i, out->n - i, &cp);
                if (l <= 0) {
                    sb_add(&tmp, out->p + i, 1);
                    i++;
                    continue;
                }
                uint8_t u[4];
                int m = bm_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), u);
                sb_add(&tmp, u, (size_t)m);
                i += (size_t)l;
            }
            break;
        case NORM_REPLACE:
            if (nm->re) {
                pcre2_match_data *md = pcre2_match_data_create_from_pattern(nm->re, NULL);
                size_t i = 0;
                while (md && i <= out->n) {
                    int rc = pcre2_match(nm->re, (PCRE2_SPTR)out->p, out->n, i, 0, md, NULL);
                    if (rc < 0) break;
                    PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
                    sb_add(&tmp, out->p + i, v[0] - i);
                    sb_add(&tmp, nm->b, nm->nb);
                    if (v[1] == v[0]) {
                        if (v[0] < out->n) sb_add(&tmp, out->p + v[0], 1);
                        i = v[0] + 1;
                    } else {
                        i = v[1];
                    }
                }
                if (i < out->n) sb_add(&tmp, out->p + i, out->n - i);
                pcre2_match_data_free(md);
            } else {
                replace_all(&tmp, out->p, out->n, nm->a, nm->na, nm->b, nm->nb);
            }
            break;
        case NORM_PREPEND:
            if (out->n) sb_add(&tmp, nm->a, nm->na);
            sb_add(&tmp, out->p, out->n);
            break;
        case NORM_STRIP: {
            size_t a = 0, b = out->n;
            if (nm->left)
                while (a < b && (out->p[a] == ' ' || (out->p[a] >= '\t' && out->p[a] <= '\r')))
                    a++;
            if (nm->right)
                while (b > a &&
                       (out->p[b - 1] == ' ' || (out->p[b - 1] >= '\t' && out->p[b - 1] <= '\r')))
                    b--;
            sb_add(&tmp, out->p + a, b - a);
            break;
        }
        default:
            sb_add(&tmp, out->p, out->n);
        }
        sbuf sw = *out;
        *out = tmp;
        tmp = sw;
        if (tmp.oom) out->oom = true;
    }
    free(tmp.p);
}

/* ---- pre-tokenization ----------------------------------------------------------------- */

typedef struct span {
    uint32_t a, b;
} span;

typedef struct spanv {
    span *p;
    size_t n, cap;
    bool oom;
} spanv;

static void sv_push(spanv *v, uint32_t a, uint32_t b) {
    if (a >= b) return; /* empty pieces are dropped, as tokenizers does */
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        span *q = realloc(v->p, nc * sizeof *q);
        if (!q) {
            v->oom = true;
            return;
        }
        v->p = q;
        v->cap = nc;
    }
    v->p[v->n++] = (span){a, b};
}

/* Splits piece [a, b) of s by step p into out, with the tokenizers library's behaviours:
 * parts are alternating non-matches and matches (is_match flipped by invert). */
typedef struct part {
    uint32_t x, y;
    bool m;
} part;

static void split_piece(const tok_pre *p, pcre2_match_data *md, const char *s, uint32_t a,
                        uint32_t b, spanv *out, part **pp, size_t *pcap) {
    size_t np = 0;
#define ADD_PART(X, Y, M)                                                                      \
    do {                                                                                       \
        if ((X) < (Y)) {                                                                       \
            if (np == *pcap) {                                                                 \
                size_t nc = *pcap ? *pcap * 2 : 64;                                            \
                part *q = realloc(*pp, nc * sizeof *q);                                        \
                if (!q) {                                                                      \
                    out->oom = true;                                                           \
                    return;                                                                    \
                }                                                                              \
                *pp = q;                                                                       \
                *pcap = nc;                                                                    \
            }                                                                                  \
            (*pp)[np++] = (part){(X), (Y), (M) != p->invert};                                  \
        }                                                                                      \
    } while (0)
    uint32_t prev = a, off = a;
    while (off < b) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)s, b, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
        uint32_t ms = (uint32_t)v[0], me = (uint32_t)v[1];
        if (me == ms) { /* empty match: move on by one character */
            off = ms + 1;
            while (off < b && ((uint8_t)s[off] & 0xC0) == 0x80) off++;
            continue;
        }
        ADD_PART(prev, ms, false);
        ADD_PART(ms, me, true);
        prev = off = me;
    }
    ADD_PART(prev, b, false);
#undef ADD_PART
    part *q = *pp;
    switch (p->behavior) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < np; i++)
            if (!q[i].m) sv_push(out, q[i].x, q[i].y);
        break;
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < np; i++) sv_push(out, q[i].x, q[i].y);
        break;
    case SPLIT_MERGED_PREV: {
        bool prev_m = false;
        size_t base = out->n;
        for (size_t i = 0; i < np; i++) {
            if (q[i].m && !prev_m && out->n > base) out->p[out->n - 1].b = q[i].y;
            else sv_push(out, q[i].x, q[i].y);
            prev_m = q[i].m;
        }
        break;
    }
    case SPLIT_MERGED_NEXT: {
        /* A match joins the part after it unless that part is a match too. */
        for (size_t i = 0; i < np; i++) {
            if (q[i].m && i + 1 < np && !q[i + 1].m) {
                sv_push(out, q[i].x, q[i + 1].y);
                i++;
            } else {
                sv_push(out, q[i].x, q[i].y);
            }
        }
        break;
    }
    case SPLIT_CONTIGUOUS: {
        bool prev_m = false;
        size_t base = out->n;
        for (size_t i = 0; i < np; i++) {
            if (q[i].m && prev_m && out->n > base) out->p[out->n - 1].b = q[i].y;
            else sv_push(out, q[i].x, q[i].y);
            prev_m = q[i].m;
        }
        break;
    }
    }
}

/* ---- BPE ------------------------------------------------------------------------------ */

typedef struct sym {
    int32_t id, prev, next;
    uint32_t start, len;
} sym;

typedef struct hent {
    float prio;
    int32_t left, right, lid, rid, res;
} hent;

typedef struct scratch {
    sym *sy;
    size_t sy_cap;
    hent *hp;
    size_t hp_n, hp_cap;
    sbuf tmp;
    bool oom;
} scratch;

static bool hless(const hent *x, const hent *y) {
    return x->prio < y->prio || (x->prio == y->prio && x->left < y->left);
}

static void hpush(scratch *s, hent e) {
    if (s->hp_n == s->hp_cap) {
        size_t nc = s->hp_cap ? s->hp_cap * 2 : 256;
        hent *q = realloc(s->hp, nc * sizeof *q);
        if (!q) {
            s->oom = true;
            return;
        }
        s->hp = q;
        s->hp_cap = nc;
    }
    size_t i = s->hp_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hless(&e, &s->hp[p])) break;
        s->hp[i] = s->hp[p];
        i = p;
    }
    s->hp[i] = e;
}

static hent hpop(scratch *s) {
    hent top = s->hp[0], last = s->hp[--s->hp_n];
    size_t i = 0, n = s->hp_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hless(&s->hp[c + 1], &s->hp[c])) c++;
        if (!hless(&s->hp[c], &last)) break;
        s->hp[i] = s->hp[c];
        i = c;
    }
    if (n) s->hp[i] = last;
    return top;
}

static void try_pair(const bm_tok *t, scratch *s, const char *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const sym *a = &s->sy[l], *b = &s->sy[r];
    if (t->n_merges > 0 || t->kind == TOK_BPE) {
        int32_t rank = merge_rank(t, a->id, b->id);
        if (rank < 0) return;
        hpush(s, (hent){(float)rank, l, r, a->id, b->id, t->merge_r[rank]});
    } else {
        int32_t id = tok_lookup(t, w + a->start, a->len + b->len);
        if (id < 0) return;
        hpush(s, (hent){-t->score[id], l, r, a->id, b->id, id});
    }
}

static void emit_unknown(const bm_tok *t, const char *w, uint32_t start, uint32_t len, ivec *ids) {
    if (t->byte_fallback || t->kind == TOK_SPM) {
        bool all = true;
        for (uint32_t k = 0; k < len; k++)
            if (t->byte_id[(uint8_t)w[start + k]] < 0) all = false;
        if (all) {
            for (uint32_t k = 0; k < len; k++) iv_push(ids, t->byte_id[(uint8_t)w[start + k]]);
            return;
        }
    }
    if (t->unk >= 0) iv_push(ids, t->unk);
}

/* BPE over one pre-tokenized word w[0..n), appending ids. */
static void bpe_word(const bm_tok *t, scratch *s, const char *w, size_t n, ivec *ids) {
    if (n == 0) return;
    if (t->ignore_merges) {
        int32_t id = -1;
        if (t->byte_level) {
            s->tmp.n = 0;
            for (size_t i = 0; i < n; i++) {
                uint8_t u[4];
                int k = bm_utf8_encode(g_b2u[(uint8_t)w[i]], u);
                sb_add(&s->tmp, u, (size_t)k);
            }
            if (!s->tmp.oom) id = tok_lookup(t, s->tmp.p, s->tmp.n);
        } else {
            id = tok_lookup(t, w, n);
        }
        if (id >= 0) {
            iv_push(ids, id);
            return;
        }
    }
    if (n > s->sy_cap) {
        size_t nc = n * 2;
        sym *q = realloc(s->sy, nc * sizeof *q);
        if (!q) {
            s->oom = true;
            return;
        }
        s->sy = q;
        s->sy_cap = nc;
    }
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        uint32_t len = 1;
        int32_t id;
        if (t->byte_level) {
            id = t->byte_id[(uint8_t)w[i]];
        } else {
            uint32_t cp;
            int k = bm_utf8_decode((const uint8_t *)w + i, n - i, &cp);
            len = k > 0 ? (uint32_t)k : 1;
            id = tok_lookup(t, w + i, len);
        }
        s->sy[ns] = (sym){id, ns - 1, -1, (uint32_t)i, len};
        if (ns > 0) s->sy[ns - 1].next = ns;
        ns++;
        i += len;
    }
    s->hp_n = 0;
    for (int32_t i = 0; i + 1 < ns; i++) try_pair(t, s, w, i, i + 1);
    while (s->hp_n > 0 && !s->oom) {
        hent e = hpop(s);
        sym *a = &s->sy[e.left];
        if (a->len == 0 || a->id != e.lid || a->next != e.right) continue;
        sym *b = &s->sy[e.right];
        if (b->len == 0 || b->id != e.rid) continue;
        a->id = e.res;
        a->len += b->len;
        a->next = b->next;
        if (b->next >= 0) s->sy[b->next].prev = e.left;
        b->len = 0;
        try_pair(t, s, w, a->prev, e.left);
        try_pair(t, s, w, e.left, a->next);
    }
    for (int32_t i = 0; i >= 0 && i < ns; i = s->sy[i].next) {
        const sym *y = &s->sy[i];
        if (y->id >= 0) iv_push(ids, y->id);
        else emit_unknown(t, w, y->start, y->len, ids);
    }
}

static void bpe_cached(const bm_tok *t, scratch *s, const char *w, size_t n, ivec *ids) {
    if (n == 0 || n > TOK_CACHE_WORD || !t->cache) {
        bpe_word(t, s, w, n, ids);
        return;
    }
    bm_tok *mt = (bm_tok *)t; /* the cache is the only mutable state, guarded by cache_mu */
    tok_cache_slot *slot = &mt->cache[hash_bytes(w, n) & (TOK_CACHE_SLOTS - 1)];
    pthread_mutex_lock(&mt->cache_mu);
    if (slot->n_word == n && memcmp(slot->word, w, n) == 0) {
        int32_t tmp[TOK_CACHE_IDS];
        int k = slot->n_ids;
        memcpy(tmp, slot->ids, (size_t)k * sizeof(int32_t));
        pthread_mutex_unlock(&mt->cache_mu);
        for (int i = 0; i < k; i++) iv_push(ids, tmp[i]);
        return;
    }
    pthread_mutex_unlock(&mt->cache_mu);
    size_t before = ids->n;
    bpe_word(t, s, w, n, ids);
    size_t k = ids->n - before;
    if (k == 0 || k > TOK_CACHE_IDS || ids->oom || s->oom) return;
    pthread_mutex_lock(&mt->cache_mu);
    slot->n_word = (uint8_t)n;
    memcpy(slot->word, w, n);
    slot->n_ids = (uint8_t)k;
    memcpy(slot->ids, ids->p + before, k * sizeof(int32_t));
    pthread_mutex_unlock(&mt->cache_mu);
}

/* ---- encoding ------------------------------------------------------------------------- */

typedef struct encst {
    scratch sc;
    sbuf norm;
    spanv sa, sb;
    pcre2_match_data *md;
    part *parts;
    size_t parts_cap;
} encst;

static void encode_segment(const bm_tok *t, encst *st, const char *s, size_t n, ivec *ids) {
    sbuf clean = {0};
    if (!bm_utf8_valid((const uint8_t *)s, n)) {
        /* The regexes need valid UTF-8: each invalid byte becomes U+FFFD (as the reference
         * tokenizers, which only take Unicode strings, would have received it). */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = bm_utf8_decode((const uint8_t *)s + i, n - i, &cp);
            if (k <= 0) {
                sb_add(&clean, "\xef\xbf\xbd", 3);
                i++;
            } else {
                sb_add(&clean, s + i, (size_t)k);
                i += (size_t)k;
            }
        }
        if (clean.oom) {
            ids->oom = true;
            free(clean.p);
            return;
        }
        s = clean.p;
        n = clean.n;
    }
    normalize(t, s, n, &st->norm);
    free(clean.p);
    if (st->norm.oom) {
        ids->oom = true;
        return;
    }
    const char *w = st->norm.p ? st->norm.p : "";
    uint32_t wn = (uint32_t)st->norm.n;
    st->sa.n = 0;
    sv_push(&st->sa, 0, wn);
    for (int k = 0; k < t->n_pre; k++) {
        const tok_pre *p = &t->pre[k];
        if (p->kind != PRE_SPLIT) continue;
        st->sb.n = 0;
        for (size_t i = 0; i < st->sa.n; i++)
            split_piece(p, st->md, w, st->sa.p[i].a, st->sa.p[i].b, &st->sb, &st->parts,
                        &st->parts_cap);
        spanv tmp = st->sa;
        st->sa = st->sb;
        st->sb = tmp;
    }
    if (st->sa.oom || st->sb.oom) {
        ids->oom = true;
        return;
    }
    for (size_t i = 0; i < st->sa.n; i++)
        bpe_cached(t, &st->sc, w + st->sa.p[i].a, st->sa.p[i].b - st->sa.p[i].a, ids);
}

static bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static bool is_word_byte(uint8_t c) { return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') ||
                                             ((c | 32) >= 'a' && (c | 32) <= 'z'); }

bm_status bm_tok_encode(const bm_tok *t, const char *text, size_t len, int flags, int32_t *out,
                        size_t cap, size_t *n_out, bm_err *err) {
    if (!t || (!text && len)) return bm_err_set(err, BM_EINVAL, "tokenizer: NULL argument");
    if (len > (size_t)UINT32_MAX / 4)
        return bm_err_set(err, BM_ERANGE, "tokenizer: text of %zu bytes, limit %u", len,
                          UINT32_MAX / 4);
    ivec ids = {0};
    encst st = {0};
    st.md = pcre2_match_data_create(16, NULL); /* only the whole-match pair is read */
    if (!st.md) return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory");
    bool parse_special = flags & BM_TOK_PARSE_SPECIAL;
    if ((flags & BM_TOK_ADD_SPECIAL) && t->add_bos && t->bos >= 0) iv_push(&ids, t->bos);
    size_t seg = 0, i = 0;
    while (i < len) {
        int first = t->added_first[(uint8_t)text[i]];
        const tok_added *hit = NULL;
        if (first >= 0) {
            for (int k = first; k < t->n_added && t->added[k].text[0] == text[i]; k++) {
                const tok_added *a = &t->added[k];
                if (a->special && !parse_special) continue;
                if (a->n > len - i || memcmp(text + i, a->text, a->n) != 0) continue;
                if (a->single_word &&
                    ((i > 0 && is_word_byte((uint8_t)text[i - 1])) ||
                     (i + a->n < len && is_word_byte((uint8_t)text[i + a->n]))))
                    continue;
                hit = a;
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        size_t end = i;
        if (hit->lstrip)
            while (end > seg && is_ws(text[end - 1])) end--;
        encode_segment(t, &st, text + seg, end - seg, &ids);
        iv_push(&ids, hit->id);
        i += hit->n;
        if (hit->rstrip)
            while (i < len && is_ws(text[i])) i++;
        seg = i;
    }
    encode_segment(t, &st, text + seg, len - seg, &ids);
    if ((flags & BM_TOK_ADD_SPECIAL) && t->add_eos && t->eos >= 0) iv_push(&ids, t->eos);
    bool oom = ids.oom || st.sc.oom || st.sc.tmp.oom;
    free(st.sc.sy);
    free(st.sc.hp);
    free(st.sc.tmp.p);
    free(st.norm.p);
    free(st.sa.p);
    free(st.sb.p);
    free(st.parts);
    pcre2_match_data_free(st.md);
    if (oom) {
        free(ids.p);
        return bm_err_set(err, BM_ENOMEM, "tokenizer: out of memory encoding %zu bytes", len);
    }
    *n_out = ids.n;
    if (out && ids.n) memcpy(out, ids.p, (ids.n < cap ? ids.n : cap) * sizeof(int32_t));
    free(ids.p);
    return BM_OK;
}

/* ---- decoding ------------------------------------------------------------------------- */

static bool skipped(const bm_tok *t, int32_t id, bool skip_special) {
    if (id < 0 || id >= t->n_vocab) return true;
    return skip_special && (t->ttype[id] == TT_CONTROL || t->ttype[id] == TT_UNKNOWN);
}

size_t bm_tok_decode(const bm_tok *t, const int32_t *ids, size_t n, bool skip_special, char *out,
                     size_t cap) {
    size_t w = 0;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (skipped(t, ids[i], skip_special)) continue;
        const char *r = t->blob + t->raw_off[ids[i]];
        size_t m = t->raw_len[ids[i]];
        if (first && m > 0) {
            if (t->decode_strip_first && r[0] == ' ') {
                r++;
                m--;
            }
            first = false;
        }
        for (size_t k = 0; k < m; k++, w++)
            if (w < cap) out[w] = r[k];
    }
    if (w < cap) out[w] = 0;
    return w;
}

void bm_detok_init(bm_detok *d, const bm_tok *t, bool skip_special) {
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->skip_special = skip_special;
    d->first = true;
}

size_t bm_detok_push(bm_detok *d, int32_t id, char *out, size_t cap) {
    const bm_tok *t = d->tok;
    if (skipped(t, id, d->skip_special)) return 0;
    const char *r = t->blob + t->raw_off[id];
    size_t m = t->raw_len[id];
    bool first = d->first;
    if (first && m > 0) {
        if (t->decode_strip_first && r[0] == ' ') {
            r++;
            m--;
        }
    }
    /* Bytes available: pend + r. Emit all but an incomplete UTF-8 tail. */
    uint8_t tail[16];
    size_t total = d->n_pend + m;
    size_t keep;
    {
        /* The tail lies within the last 3 bytes. */
        size_t nt = total < 8 ? total : 8;
        for (size_t k = 0; k < nt; k++) {
            size_t pos = total - nt + k;
            tail[k] = pos < d->n_pend ? d->pend[pos] : (uint8_t)r[pos - d->n_pend];
        }
        keep = bm_utf8_incomplete_tail(tail, nt);
    }
    size_t emit = total - keep;
    if (emit > cap) return emit;
    size_t w = 0;
    for (size_t k = 0; k < d->n_pend && w < emit; k++) out[w++] = (char)d->pend[k];
    size_t from_r = emit - w;
    memcpy(out + w, r, from_r);
    w += from_r;
    /* New pending bytes: the kept tail. */
    uint8_t np[16];
    for (size_t k = 0; k < keep; k++) {
        size_t pos = emit + k;
        np[k] = pos < d->n_pend ? d->pend[pos] : (uint8_t)r[pos - d->n_pend];
    }
    memcpy(d->pend, np, keep);
    d->n_pend = keep;
    if (m > 0) d->first = false;
    if (w < cap) out[w] = 0;
    return w;
}

size_t bm_detok_flush(bm_detok *d, char *out, size_t cap) {
    if (d->n_pend == 0) return 0;
    if (cap < 3) return 3;
    memcpy(out, "\xef\xbf\xbd", 3);
    d->n_pend = 0;
    if (cap > 3) out[3] = 0;
    return 3;
}
