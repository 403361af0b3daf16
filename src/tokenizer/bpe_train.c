/* Byte-level BPE training. feed() cuts special tokens out of the text, splits the rest with the
 * pre-tokenizer regex (PCRE2, JIT when available) and counts distinct pieces in a hash map.
 * train() lays every distinct word out as a linked run of symbols, counts adjacent pairs
 * (weighted by word frequency) with the positions where they occur, and repeatedly merges the
 * best pair from a max-heap whose stale entries are dropped or re-keyed when popped.
 * save() writes tokenizer.json / tokenizer_config.json with Jansson. Encoding is not here
 * (tok.c does that after loading the file). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "baimo/bpe_train.h"

#define HAN                                                                                     \
    u8"[\u2E80-\u2EFF\u2F00-\u2FDF\u3005\u3007\u3021-\u3029\u3038-\u303B\u3400-\u4DBF"         \
    u8"\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003FFFF]"
static const char pretok_regex[] =
    u8"(?i:'s|'t|'re|'ve|'m|'ll|'d)| ?" HAN u8"+|[^\\r\\n\\p{L}\\p{N}]?(?:(?!" HAN
    u8")\\p{L})+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char *bm_bpe_pretok_regex(void) { return pretok_regex; }

static const char *const default_special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

/* Qwen2.5-style plain ChatML: no default system message. */
static const char chatml_template[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}{%- endif %}";

typedef struct word {
    uint64_t off;  /* into wbytes */
    uint32_t len;
    int64_t count;
} word;

typedef struct pair {
    int32_t a, b;
    int64_t count;
    int32_t *occ; /* positions of the left symbol (may be stale; checked on use) */
    uint32_t n_occ, cap_occ;
    uint32_t stamp; /* merge step that last raised count (push to the heap once per step) */
} pair;

typedef struct heap_ent {
    int64_t count;
    int32_t a, b;
    uint32_t pi;
} heap_ent;

struct bm_bpe_trainer {
    int32_t vocab_size;
    int64_t min_count;
    char **special;
    size_t *special_len;
    int n_special;
    pcre2_code *re;
    pcre2_match_data *md;
    bool trained;

    /* distinct words */
    char *wbytes;
    uint64_t n_wbytes, cap_wbytes;
    word *words;
    uint32_t n_words, cap_words;
    uint32_t *wtab; /* open addressing: word index + 1, 0 = empty */
    uint32_t wmask;
    uint64_t n_bytes, n_pretok;

    /* tokens: raw bytes */
    char *tbytes;
    size_t n_tbytes, cap_tbytes;
    uint64_t *tok_off;
    uint32_t *tok_len;
    int32_t n_tok, cap_tok;
    int32_t *ttab; /* token bytes -> id + 1 */
    uint32_t tmask;

    int32_t *merge_a, *merge_b;
    int32_t n_merges;
    size_t cap_merges;
};

static uint64_t hash_bytes(const void *s, size_t n) {
    const uint8_t *p = s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static bm_status grow(void **p, size_t *cap, size_t need, size_t elem, const char *what,
                      bm_err *err) {
    if (need <= *cap) return BM_OK;
    size_t nc = *cap ? *cap : 64, bytes;
    while (nc < need) {
        if (!bm_size_mul(nc, 2, &nc))
            return bm_err_set(err, BM_EOVERFLOW, "bpe_train: %s count overflows", what);
    }
    if (!bm_size_mul(nc, elem, &bytes))
        return bm_err_set(err, BM_EOVERFLOW, "bpe_train: %s count %zu overflows", what, nc);
    void *q = realloc(*p, bytes);
    if (!q) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory for %zu %s", nc, what);
    *p = q;
    *cap = nc;
    return BM_OK;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

void bm_bpe_trainer_free(bm_bpe_trainer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_special; i++) free(t->special[i]);
    free(t->special);
    free(t->special_len);
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    free(t->wbytes);
    free(t->words);
    free(t->wtab);
    free(t->tbytes);
    free(t->tok_off);
    free(t->tok_len);
    free(t->ttab);
    free(t->merge_a);
    free(t->merge_b);
    free(t);
}

static int32_t tok_find(const bm_bpe_trainer *t, const char *s, size_t n) {
    for (uint32_t h = (uint32_t)hash_bytes(s, n) & t->tmask;; h = (h + 1) & t->tmask) {
        int32_t v = t->ttab[h];
        if (!v) return -1;
        v--;
        if (t->tok_len[v] == n && !memcmp(t->tbytes + t->tok_off[v], s, n)) return v;
    }
}

static bm_status tab_grow(bm_bpe_trainer *t, bm_err *err) {
    if ((size_t)t->n_tok * 2 + 2 <= (size_t)t->tmask) return BM_OK;
    uint32_t nm = t->tmask * 2 + 1;
    int32_t *nt = calloc((size_t)nm + 1, sizeof *nt);
    if (!nt) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory for the token table");
    for (int32_t k = 0; k < t->n_tok; k++) {
        uint32_t j = (uint32_t)hash_bytes(t->tbytes + t->tok_off[k], t->tok_len[k]) & nm;
        while (nt[j]) j = (j + 1) & nm;
        nt[j] = k + 1;
    }
    free(t->ttab);
    t->ttab = nt;
    t->tmask = nm;
    return BM_OK;
}

/* The token whose bytes are those of token a followed by those of token b (a < 0: the single
 * byte b): an existing one, or a new one appended. */
static bm_status tok_concat(bm_bpe_trainer *t, int32_t a, int32_t b, int32_t *id, bm_err *err) {
    size_t la = a < 0 ? 0 : t->tok_len[a], lb = a < 0 ? 1 : t->tok_len[b], n = la + lb;
    if (n > UINT32_MAX) return bm_err_set(err, BM_ERANGE, "bpe_train: token longer than 4 GiB");
    size_t cb = t->cap_tbytes, ct = (size_t)t->cap_tok, c2 = ct;
    bm_status st = grow((void **)&t->tbytes, &cb, t->n_tbytes + n, 1, "token bytes", err);
    if (st) return st;
    t->cap_tbytes = cb;
    char *dst = t->tbytes + t->n_tbytes;
    if (a < 0) {
        dst[0] = (char)b;
    } else {
        memcpy(dst, t->tbytes + t->tok_off[a], la);
        memcpy(dst + la, t->tbytes + t->tok_off[b], lb);
    }
    int32_t have = tok_find(t, dst, n);
    if (have >= 0) {
        *id = have;
        return BM_OK;
    }
    if ((st = grow((void **)&t->tok_off, &ct, (size_t)t->n_tok + 1, sizeof *t->tok_off,
                   "tokens", err)) ||
        (st = grow((void **)&t->tok_len, &c2, (size_t)t->n_tok + 1, sizeof *t->tok_len,
                   "tokens", err)))
        return st;
    t->cap_tok = (int32_t)(ct < c2 ? ct : c2);
    if ((st = tab_grow(t, err))) return st;
    int32_t v = t->n_tok++;
    t->tok_off[v] = t->n_tbytes;
    t->tok_len[v] = (uint32_t)n;
    t->n_tbytes += n;
    uint32_t h = (uint32_t)hash_bytes(dst, n) & t->tmask;
    while (t->ttab[h]) h = (h + 1) & t->tmask;
    t->ttab[h] = v + 1;
    *id = v;
    return BM_OK;
}

bm_status bm_bpe_trainer_new(const bm_bpe_train_opts *o, bm_bpe_trainer **out, bm_err *err) {
    *out = NULL;
    const char *const *sp = o->special ? o->special : default_special;
    int ns = o->special ? o->n_special : 3;
    if (ns < 0 || ns > 256)
        return bm_err_set(err, BM_ERANGE, "bpe_train: %d special tokens, limit 256", ns);
    if (o->vocab_size < 256 + ns || o->vocab_size > (1 << 24))
        return bm_err_set(err, BM_ERANGE, "bpe_train: vocab size %d outside [%d, %d] "
                          "(256 byte tokens + %d special tokens at least)",
                          (int)o->vocab_size, 256 + ns, 1 << 24, ns);
    for (int i = 0; i < ns; i++) {
        size_t l = sp[i] ? strlen(sp[i]) : 0;
        if (!l || l > 256 || !bm_utf8_valid((const uint8_t *)sp[i], l))
            return bm_err_set(err, BM_EINVAL, "bpe_train: special token %d is empty, longer "
                              "than 256 bytes or not UTF-8", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(sp[i], sp[j]))
                return bm_err_set(err, BM_EINVAL, "bpe_train: special token '%s' given twice",
                                  sp[i]);
    }
    bm_bpe_trainer *t = calloc(1, sizeof *t);
    if (!t) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory");
    t->vocab_size = o->vocab_size;
    t->min_count = o->min_count > 0 ? o->min_count : 2;
    t->special = calloc((size_t)ns + 1, sizeof *t->special);
    t->special_len = calloc((size_t)ns + 1, sizeof *t->special_len);
    if (!t->special || !t->special_len) goto oom;
    for (int i = 0; i < ns; i++) {
        if (!(t->special[i] = strdup(sp[i]))) goto oom;
        t->special_len[i] = strlen(sp[i]);
        t->n_special = i + 1;
    }
    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)pretok_regex, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &ec, &eo, NULL);
    if (!t->re) {
        bm_bpe_trainer_free(t);
        return bm_err_set(err, BM_EINTERNAL, "bpe_train: pre-tokenizer regex does not compile "
                          "(PCRE2 error %d at %zu)", ec, (size_t)eo);
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    if (!(t->md = pcre2_match_data_create_from_pattern(t->re, NULL))) goto oom;
    t->wmask = (1u << 16) - 1;
    if (!(t->wtab = calloc((size_t)t->wmask + 1, sizeof *t->wtab))) goto oom;
    *out = t;
    return BM_OK;
oom:
    bm_bpe_trainer_free(t);
    return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory");
}

/* ---- counting ----------------------------------------------------------------------- */

static bm_status word_count(bm_bpe_trainer *t, const char *s, size_t n, bm_err *err) {
    if (n > UINT32_MAX)
        return bm_err_set(err, BM_ERANGE, "bpe_train: a pre-token of %zu bytes (limit 4 GiB)", n);
    t->n_pretok++;
    uint64_t h = hash_bytes(s, n);
    uint32_t i = (uint32_t)h & t->wmask;
    for (;; i = (i + 1) & t->wmask) {
        uint32_t v = t->wtab[i];
        if (!v) break;
        word *w = &t->words[v - 1];
        if (w->len == n && !memcmp(t->wbytes + w->off, s, n)) {
            w->count++;
            return BM_OK;
        }
    }
    size_t cw = t->cap_words, cb = (size_t)t->cap_wbytes;
    bm_status st = grow((void **)&t->words, &cw, (size_t)t->n_words + 1, sizeof *t->words,
                        "words", err);
    if (!st) st = grow((void **)&t->wbytes, &cb, (size_t)t->n_wbytes + n, 1, "word bytes", err);
    if (st) return st;
    if (cw > UINT32_MAX - 1)
        return bm_err_set(err, BM_ERANGE, "bpe_train: more than %u distinct words", UINT32_MAX);
    t->cap_words = (uint32_t)cw;
    t->cap_wbytes = cb;
    memcpy(t->wbytes + t->n_wbytes, s, n);
    t->words[t->n_words] = (word){t->n_wbytes, (uint32_t)n, 1};
    t->n_wbytes += n;
    t->wtab[i] = ++t->n_words;
    if ((uint64_t)t->n_words * 2 > t->wmask) { /* rehash at half load */
        uint32_t nm = t->wmask * 2 + 1;
        uint32_t *nt = calloc((size_t)nm + 1, sizeof *nt);
        if (!nt) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory for word table");
        for (uint32_t k = 0; k < t->n_words; k++) {
            const word *w = &t->words[k];
            uint32_t j = (uint32_t)hash_bytes(t->wbytes + w->off, w->len) & nm;
            while (nt[j]) j = (j + 1) & nm;
            nt[j] = k + 1;
        }
        free(t->wtab);
        t->wtab = nt;
        t->wmask = nm;
    }
    return BM_OK;
}

/* Pre-tokenizes s[0..n) (no special tokens inside) and counts the pieces. Text the regex does
 * not match is a piece of its own (HF Split "Isolated" keeps it). */
static bm_status pretok_count(bm_bpe_trainer *t, const char *s, size_t n, bm_err *err) {
    size_t off = 0, gap = 0;
    bm_status st = BM_OK;
    while (off < n && !st) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, t->md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *v = pcre2_get_ovector_pointer(t->md);
        if (v[1] == v[0]) { /* empty match: step one character */
            off = v[0] + 1;
            while (off < n && ((uint8_t)s[off] & 0xC0) == 0x80) off++;
            continue;
        }
        if (v[0] > gap) st = word_count(t, s + gap, v[0] - gap, err);
        if (!st) st = word_count(t, s + v[0], v[1] - v[0], err);
        off = gap = v[1];
    }
    if (!st && gap < n) st = word_count(t, s + gap, n - gap, err);
    return st;
}

bm_status bm_bpe_trainer_feed(bm_bpe_trainer *t, const char *text, size_t n, bm_err *err) {
    if (t->trained)
        return bm_err_set(err, BM_EINVAL, "bpe_train: feed after train");
    if (!bm_utf8_valid((const uint8_t *)text, n)) {
        size_t i = 0;
        while (i < n) {
            int l = bm_utf8_seq_len((uint8_t)text[i]);
            uint32_t cp;
            if (l <= 0 || bm_utf8_decode((const uint8_t *)text + i, n - i, &cp) != l) break;
            i += (size_t)l;
        }
        return bm_err_set(err, BM_EFORMAT, "bpe_train: input is not valid UTF-8 at byte %zu "
                          "(convert it first, e.g. with iconv)", i);
    }
    t->n_bytes += n;
    size_t a = 0, next[256]; /* next occurrence of each special token at or after a */
    for (int i = 0; i < t->n_special; i++) next[i] = SIZE_MAX; /* not searched yet */
    while (a < n) {
        /* earliest special token at or after a (longest on a tie) */
        size_t best = n, bl = 0;
        for (int i = 0; i < t->n_special; i++) {
            if (next[i] == SIZE_MAX || next[i] < a) {
                const char *h = memmem(text + a, n - a, t->special[i], t->special_len[i]);
                next[i] = h ? (size_t)(h - text) : n;
            }
            size_t p = next[i];
            if (p < n && (p < best || (p == best && t->special_len[i] > bl))) {
                best = p;
                bl = t->special_len[i];
            }
        }
        bm_status st = pretok_count(t, text + a, best - a, err);
        if (st) return st;
        a = best + bl;
    }
    return BM_OK;
}

/* ---- training ----------------------------------------------------------------------- */

typedef struct ctx {
    bm_bpe_trainer *t;
    int32_t *sym, *prv, *nxt; /* per position; sym -1 = merged away */
    uint32_t *wof;            /* word of each position */
    pair *pairs;
    size_t n_pairs, cap_pairs;
    uint32_t *ptab; /* pair index + 1 */
    size_t pmask;
    heap_ent *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched;
    size_t n_touched, cap_touched;
    uint32_t step;
} ctx;

static uint64_t pkey_hash(int32_t a, int32_t b) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    k *= 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 31);
}

static bm_status pair_get(ctx *c, int32_t a, int32_t b, uint32_t *out, bm_err *err) {
    size_t i = pkey_hash(a, b) & c->pmask;
    for (;; i = (i + 1) & c->pmask) {
        uint32_t v = c->ptab[i];
        if (!v) break;
        if (c->pairs[v - 1].a == a && c->pairs[v - 1].b == b) {
            *out = v - 1;
            return BM_OK;
        }
    }
    bm_status st = grow((void **)&c->pairs, &c->cap_pairs, c->n_pairs + 1, sizeof *c->pairs,
                        "pairs", err);
    if (st) return st;
    if (c->n_pairs >= UINT32_MAX - 1)
        return bm_err_set(err, BM_ERANGE, "bpe_train: more than %u distinct pairs", UINT32_MAX);
    c->pairs[c->n_pairs] = (pair){.a = a, .b = b};
    c->ptab[i] = (uint32_t)++c->n_pairs;
    *out = (uint32_t)(c->n_pairs - 1);
    if (c->n_pairs * 2 > c->pmask) {
        size_t nm = c->pmask * 2 + 1;
        uint32_t *nt = calloc(nm + 1, sizeof *nt);
        if (!nt) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory for pair table");
        for (size_t k = 0; k < c->n_pairs; k++) {
            size_t j = pkey_hash(c->pairs[k].a, c->pairs[k].b) & nm;
            while (nt[j]) j = (j + 1) & nm;
            nt[j] = (uint32_t)k + 1;
        }
        free(c->ptab);
        c->ptab = nt;
        c->pmask = nm;
    }
    return BM_OK;
}

static bm_status occ_add(ctx *c, uint32_t pi, int32_t pos, bm_err *err) {
    pair *p = &c->pairs[pi];
    if (p->n_occ == p->cap_occ) {
        if (p->cap_occ > UINT32_MAX / 2)
            return bm_err_set(err, BM_ERANGE, "bpe_train: a pair occurs more than 2^31 times");
        uint32_t nc = p->cap_occ ? p->cap_occ * 2 : 4;
        int32_t *q = realloc(p->occ, (size_t)nc * sizeof *q);
        if (!q) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory for occurrences");
        p->occ = q;
        p->cap_occ = nc;
    }
    p->occ[p->n_occ++] = pos;
    return BM_OK;
}

/* a before b in the heap: larger count, then smaller left id, then smaller right id. */
static bool heap_before(const heap_ent *x, const heap_ent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static bm_status heap_push(ctx *c, uint32_t pi, bm_err *err) {
    bm_status st = grow((void **)&c->heap, &c->cap_heap, c->n_heap + 1, sizeof *c->heap,
                        "heap entries", err);
    if (st) return st;
    const pair *p = &c->pairs[pi];
    heap_ent e = {p->count, p->a, p->b, pi};
    size_t i = c->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!heap_before(&e, &c->heap[up])) break;
        c->heap[i] = c->heap[up];
        i = up;
    }
    c->heap[i] = e;
    return BM_OK;
}

static heap_ent heap_pop(ctx *c) {
    heap_ent top = c->heap[0], e = c->heap[--c->n_heap];
    size_t i = 0, n = c->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const heap_ent *best = &e;
        if (l < n && heap_before(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
        if (r < n && heap_before(&c->heap[r], best)) m = r;
        if (m == i) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n) c->heap[i] = e;
    return top;
}

/* count change of pair (a,b) by d at position pos (pos >= 0 adds an occurrence). */
static bm_status pair_add(ctx *c, int32_t a, int32_t b, int64_t d, int32_t pos, bm_err *err) {
    uint32_t pi = 0;
    bm_status st = pair_get(c, a, b, &pi, err);
    if (st) return st;
    c->pairs[pi].count += d;
    if (d > 0 && c->pairs[pi].stamp != c->step) {
        c->pairs[pi].stamp = c->step;
        st = grow((void **)&c->touched, &c->cap_touched, c->n_touched + 1, sizeof *c->touched,
                  "pairs", err);
        if (st) return st;
        c->touched[c->n_touched++] = pi;
    }
    return pos >= 0 ? occ_add(c, pi, pos, err) : BM_OK;
}

static int cmp_i32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* Merges every live occurrence of pair pi into token x. */
static bm_status merge_pair(ctx *c, uint32_t pi, int32_t x, bm_err *err) {
    pair *p = &c->pairs[pi];
    int32_t a = p->a, b = p->b;
    int32_t *occ = p->occ;
    uint32_t n_occ = p->n_occ;
    p->occ = NULL;
    p->n_occ = p->cap_occ = 0;
    if (a == b) qsort(occ, n_occ, sizeof *occ, cmp_i32); /* left to right within a run */
    bm_status st = BM_OK;
    for (uint32_t k = 0; k < n_occ && !st; k++) {
        int32_t pos = occ[k];
        if (c->sym[pos] != a) continue;
        int32_t nx = c->nxt[pos];
        if (nx < 0 || c->sym[nx] != b) continue;
        int64_t w = c->t->words[c->wof[pos]].count;
        int32_t pv = c->prv[pos], nn = c->nxt[nx];
        if (pv >= 0) st = pair_add(c, c->sym[pv], a, -w, -1, err);
        if (!st && nn >= 0) st = pair_add(c, b, c->sym[nn], -w, -1, err);
        c->sym[pos] = x;
        c->sym[nx] = -1;
        c->nxt[pos] = nn;
        if (nn >= 0) c->prv[nn] = pos;
        if (!st && pv >= 0) st = pair_add(c, c->sym[pv], x, w, pv, err);
        if (!st && nn >= 0) st = pair_add(c, x, c->sym[nn], w, pos, err);
    }
    free(occ);
    c->pairs[pi].count = 0; /* pairs may have moved (realloc) */
    return st;
}

static bm_status add_merge(bm_bpe_trainer *t, int32_t a, int32_t b, bm_err *err) {
    size_t c1 = t->cap_merges, c2 = t->cap_merges, need = (size_t)t->n_merges + 1;
    bm_status st = grow((void **)&t->merge_a, &c1, need, sizeof *t->merge_a, "merges", err);
    if (!st) st = grow((void **)&t->merge_b, &c2, need, sizeof *t->merge_b, "merges", err);
    if (st) return st;
    t->cap_merges = c1 < c2 ? c1 : c2;
    t->merge_a[t->n_merges] = a;
    t->merge_b[t->n_merges] = b;
    t->n_merges++;
    return BM_OK;
}

static void ctx_free(ctx *c) {
    free(c->sym);
    free(c->prv);
    free(c->nxt);
    free(c->wof);
    for (size_t i = 0; i < c->n_pairs; i++) free(c->pairs[i].occ);
    free(c->pairs);
    free(c->ptab);
    free(c->heap);
    free(c->touched);
}

static bm_status train(bm_bpe_trainer *t, ctx *c, bm_err *err) {
    uint64_t n_pos = t->n_wbytes;
    if (n_pos >= INT32_MAX)
        return bm_err_set(err, BM_ERANGE, "bpe_train: %llu bytes of distinct words, limit %d",
                          (unsigned long long)n_pos, INT32_MAX);
    size_t np = (size_t)n_pos + 1;
    c->sym = malloc(np * sizeof *c->sym);
    c->prv = malloc(np * sizeof *c->prv);
    c->nxt = malloc(np * sizeof *c->nxt);
    c->wof = malloc(np * sizeof *c->wof);
    c->pmask = (1u << 16) - 1;
    c->ptab = calloc(c->pmask + 1, sizeof *c->ptab);
    if (!c->sym || !c->prv || !c->nxt || !c->wof || !c->ptab)
        return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory for %llu symbols",
                          (unsigned long long)n_pos);
    bm_status st = BM_OK;
    for (uint32_t wi = 0; wi < t->n_words && !st; wi++) {
        const word *w = &t->words[wi];
        int32_t base = (int32_t)w->off;
        for (uint32_t k = 0; k < w->len; k++) {
            int32_t pos = base + (int32_t)k;
            c->sym[pos] = (uint8_t)t->wbytes[w->off + k];
            c->prv[pos] = k ? pos - 1 : -1;
            c->nxt[pos] = k + 1 < w->len ? pos + 1 : -1;
            c->wof[pos] = wi;
            if (k && (st = pair_add(c, c->sym[pos - 1], c->sym[pos], w->count, pos - 1, err)))
                break;
        }
    }
    for (size_t i = 0; i < c->n_pairs && !st; i++) st = heap_push(c, (uint32_t)i, err);
    while (!st && t->n_tok + t->n_special < t->vocab_size && c->n_heap) {
        heap_ent e = heap_pop(c);
        int64_t cur = c->pairs[e.pi].count;
        if (cur != e.count) {
            if (cur > 0 && cur < e.count) st = heap_push(c, e.pi, err);
            continue;
        }
        if (cur < t->min_count) break;
        int32_t x;
        if ((st = tok_concat(t, e.a, e.b, &x, err))) break;
        if ((st = add_merge(t, e.a, e.b, err))) break;
        c->step++;
        c->n_touched = 0;
        st = merge_pair(c, e.pi, x, err);
        for (size_t k = 0; k < c->n_touched && !st; k++)
            if (c->pairs[c->touched[k]].count > 0) st = heap_push(c, c->touched[k], err);
    }
    return st;
}

bm_status bm_bpe_trainer_train(bm_bpe_trainer *t, bm_err *err) {
    if (t->trained) return bm_err_set(err, BM_EINVAL, "bpe_train: already trained");
    t->trained = true;
    t->tmask = 1023;
    if (!(t->ttab = calloc((size_t)t->tmask + 1, sizeof *t->ttab)))
        return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory");
    for (int b = 0; b < 256; b++) {
        int32_t id;
        bm_status st = tok_concat(t, -1, b, &id, err);
        if (st) return st;
    }
    ctx c = {.t = t};
    bm_status st = train(t, &c, err);
    ctx_free(&c);
    return st;
}

void bm_bpe_trainer_stats(const bm_bpe_trainer *t, bm_bpe_train_stats *s) {
    s->n_bytes = t->n_bytes;
    s->n_pretok = t->n_pretok;
    s->n_words = t->n_words;
    s->n_merges = t->n_merges;
    s->n_vocab = (t->n_tok ? t->n_tok : 256) + t->n_special;
}

void bm_bpe_trainer_merge(const bm_bpe_trainer *t, int32_t k, const char **a, size_t *na,
                          const char **b, size_t *nb) {
    int32_t x = t->merge_a[k], y = t->merge_b[k];
    *a = t->tbytes + t->tok_off[x];
    *na = t->tok_len[x];
    *b = t->tbytes + t->tok_off[y];
    *nb = t->tok_len[y];
}

/* ---- output ------------------------------------------------------------------------- */

static bool byte_printable(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* GPT-2 bytes_to_unicode: printable bytes stand for themselves, the others map to 256+k. */
static void byte_map(uint32_t cp[256]) {
    int k = 0;
    for (int b = 0; b < 256; b++) cp[b] = byte_printable(b) ? (uint32_t)b : 256u + (uint32_t)k++;
}

/* The byte-level text of token id (NUL-terminated into buf, at most 2 bytes per byte). */
static const char *tok_text(const bm_bpe_trainer *t, const uint32_t map[256], int32_t id,
                            char *buf) {
    const uint8_t *s = (const uint8_t *)t->tbytes + t->tok_off[id];
    size_t o = 0;
    for (uint32_t i = 0; i < t->tok_len[id]; i++) o += (size_t)bm_utf8_encode(map[s[i]], (uint8_t *)buf + o);
    buf[o] = 0;
    return buf;
}

static json_t *added_token(int32_t id, const char *s) {
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)id, "content", s,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
}

static int special_index(const bm_bpe_trainer *t, const char *s) {
    for (int i = 0; i < t->n_special; i++)
        if (!strcmp(t->special[i], s)) return i;
    return -1;
}

static bm_status dump(json_t *j, const char *path, bm_err *err) {
    if (!j) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory building %s", path);
    int rc = json_dump_file(j, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (rc) return bm_err_set(err, BM_EIO, "bpe_train: cannot write %s", path);
    return BM_OK;
}

bm_status bm_bpe_trainer_save(const bm_bpe_trainer *t, const char *json_path, bm_err *err) {
    if (!t->trained) return bm_err_set(err, BM_EINVAL, "bpe_train: save before train");
    uint32_t map[256];
    byte_map(map);
    size_t maxl = 0;
    for (int32_t i = 0; i < t->n_tok; i++)
        if (t->tok_len[i] > maxl) maxl = t->tok_len[i];
    char *buf = malloc(maxl * 2 + 1), *buf2 = malloc(maxl * 4 + 2);
    json_t *root = json_object(), *vocab = json_object(), *merges = json_array();
    json_t *added = json_array();
    bool ok = buf && buf2 && root && vocab && merges && added;
    for (int32_t i = 0; ok && i < t->n_tok; i++)
        ok = !json_object_set_new(vocab, tok_text(t, map, i, buf), json_integer(i));
    for (int32_t k = 0; ok && k < t->n_merges; k++) {
        tok_text(t, map, t->merge_a[k], buf);
        size_t l = strlen(buf);
        memcpy(buf2, buf, l);
        buf2[l] = ' ';
        tok_text(t, map, t->merge_b[k], buf2 + l + 1);
        ok = !json_array_append_new(merges, json_string(buf2));
    }
    for (int i = 0; ok && i < t->n_special; i++)
        ok = !json_array_append_new(added, added_token(t->n_tok + i, t->special[i]));
    free(buf);
    free(buf2);
    json_t *pre = ok ? json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}",
                                 "type", "Sequence", "pretokenizers", "type", "Split", "pattern",
                                 "Regex", pretok_regex, "behavior", "Isolated", "invert", 0,
                                 "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                                 "use_regex", 0)
                     : NULL;
    json_t *model = ok ? json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type",
                                   "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                                   "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                                   "ignore_merges", 0, "vocab", vocab, "merges", merges)
                       : NULL;
    json_t *byte_level = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space",
                                   0, "trim_offsets", 0, "use_regex", 0);
    json_t *dec = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                            "trim_offsets", 0, "use_regex", 0);
    if (!ok || !pre || !model || !byte_level || !dec ||
        json_object_set_new(root, "version", json_string("1.0")) ||
        json_object_set_new(root, "truncation", json_null()) ||
        json_object_set_new(root, "padding", json_null()) ||
        json_object_set_new(root, "added_tokens", added) ||
        json_object_set_new(root, "normalizer", json_null()) ||
        json_object_set_new(root, "pre_tokenizer", pre) ||
        json_object_set_new(root, "post_processor", byte_level) ||
        json_object_set_new(root, "decoder", dec) || json_object_set_new(root, "model", model)) {
        json_decref(root);
        return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory building tokenizer.json");
    }
    bm_status st = dump(root, json_path, err);
    if (st) return st;

    /* tokenizer_config.json beside it */
    const char *slash = strrchr(json_path, '/');
    size_t dn = slash ? (size_t)(slash - json_path + 1) : 0;
    char *cpath = malloc(dn + 32);
    if (!cpath) return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory");
    memcpy(cpath, json_path, dn);
    strcpy(cpath + dn, "tokenizer_config.json");
    int ie = special_index(t, "<|im_end|>"), ip = special_index(t, "<|endoftext|>");
    if (ie < 0) ie = 0;
    json_t *cfg = json_object(), *dec_map = json_object();
    ok = cfg && dec_map;
    for (int i = 0; ok && i < t->n_special; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", t->n_tok + i);
        json_t *a = added_token(t->n_tok + i, t->special[i]);
        ok = a && !json_object_del(a, "id") && !json_object_set_new(dec_map, key, a);
    }
    json_t *extra = json_array();
    for (int i = 0; ok && extra && i < t->n_special; i++)
        ok = !json_array_append_new(extra, json_string(t->special[i]));
    if (!ok || !extra || json_object_set_new(cfg, "add_bos_token", json_false()) ||
        json_object_set_new(cfg, "add_eos_token", json_false()) ||
        json_object_set_new(cfg, "added_tokens_decoder", dec_map) ||
        json_object_set_new(cfg, "additional_special_tokens", extra) ||
        json_object_set_new(cfg, "bos_token", json_null()) ||
        json_object_set_new(cfg, "chat_template", json_string(chatml_template)) ||
        json_object_set_new(cfg, "clean_up_tokenization_spaces", json_false()) ||
        json_object_set_new(cfg, "eos_token", t->n_special ? json_string(t->special[ie]) : json_null()) ||
        json_object_set_new(cfg, "pad_token", ip >= 0 ? json_string(t->special[ip]) : json_null()) ||
        json_object_set_new(cfg, "model_max_length", json_integer(32768)) ||
        json_object_set_new(cfg, "tokenizer_class", json_string("PreTrainedTokenizerFast")) ||
        json_object_set_new(cfg, "unk_token", json_null())) {
        json_decref(cfg);
        free(cpath);
        return bm_err_set(err, BM_ENOMEM, "bpe_train: out of memory building tokenizer_config");
    }
    st = dump(cfg, cpath, err);
    free(cpath);
    return st;
}
