/* Runtime values of the chat-template interpreter: the bump pool they live in, strings,
 * arrays, ordered maps, and their JavaScript-flavoured conversions as @huggingface/jinja does
 * them (Number#toString, truthiness, loose equality, JSON.stringify-based tojson, JSON.parse
 * object key order). Evaluation is in template_eval.c, filters/methods in template_builtins.c. */
#include "template_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- pool ----------------------------------------------------------------------------- */

struct tm_pool_block {
    tm_pool_block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

#define POOL_BLOCK (64u << 10)

void tm_pool_init(tm_pool *p, size_t limit) {
    memset(p, 0, sizeof *p);
    p->limit = limit;
}

void tm_pool_fini(tm_pool *p) {
    tm_pool_block *b = p->head;
    while (b) {
        tm_pool_block *n = b->next;
        free(b);
        b = n;
    }
    p->head = NULL;
    p->total = 0;
}

void *tm_alloc(tm_pool *p, size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n || p->failed) {
        p->failed = true;
        return NULL;
    }
    tm_pool_block *b = p->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > POOL_BLOCK / 4 ? need : POOL_BLOCK;
        if (cap > p->limit || p->total > p->limit - cap) {
            p->failed = true;
            return NULL;
        }
        tm_pool_block *nb = malloc(sizeof *nb + cap);
        if (!nb) {
            p->failed = true;
            return NULL;
        }
        nb->cap = cap;
        nb->used = 0;
        p->total += cap;
        if (cap == POOL_BLOCK || !b) {
            nb->next = b;
            p->head = nb;
        } else { /* big one-off block: keep the current block at the head */
            nb->next = b->next;
            b->next = nb;
        }
        b = nb;
    }
    void *r = b->data + b->used;
    b->used += need;
    memset(r, 0, need);
    return r;
}

/* ---- string builder ------------------------------------------------------------------- */

void sb_init(sbuf *b, tm_pool *p) {
    memset(b, 0, sizeof *b);
    b->pool = p;
}

void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->failed || n == 0) return;
    if (n > TM_MAX_OUTPUT || b->n + n > TM_MAX_OUTPUT) {
        b->failed = true;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = tm_alloc(b->pool, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

tstr *sb_str(sbuf *b) {
    if (b->failed) return NULL;
    return ts_new(b->pool, b->p ? b->p : "", b->n);
}

/* ---- strings, arrays, maps ------------------------------------------------------------ */

tstr *ts_new(tm_pool *p, const char *s, size_t n) {
    if (n > TM_MAX_OUTPUT) {
        p->failed = true;
        return NULL;
    }
    tstr *t = tm_alloc(p, sizeof *t + n + 1);
    if (!t) return NULL;
    t->n = n;
    if (n) memcpy(t->s, s, n);
    t->s[n] = 0;
    return t;
}

tv tv_strs(tstr *s) { return s ? (tv){.k = TV_STR, .u.s = s} : tv_undef(); }

tv tv_str(tm_pool *p, const char *s, size_t n) { return tv_strs(ts_new(p, s, n)); }

tarr *ta_new(tm_pool *p, size_t cap) {
    tarr *a = tm_alloc(p, sizeof *a);
    if (!a) return NULL;
    if (cap) {
        if (cap > SIZE_MAX / sizeof(tv)) return NULL;
        a->v = tm_alloc(p, cap * sizeof(tv));
        if (!a->v) return NULL;
        a->cap = cap;
    }
    return a;
}

bool ta_push(tm_pool *p, tarr *a, tv v) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(tv)) return false;
        tv *nv = tm_alloc(p, cap * sizeof(tv));
        if (!nv) return false;
        if (a->n) memcpy(nv, a->v, a->n * sizeof(tv));
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = v;
    return true;
}

tmap *tmap_new(tm_pool *p, size_t cap) {
    tmap *m = tm_alloc(p, sizeof *m);
    if (!m) return NULL;
    (void)cap;
    return m;
}

tv *tmap_get(const tmap *m, const char *k, size_t kn) {
    for (size_t i = 0; i < m->n; i++)
        if (m->keys[i]->n == kn && !memcmp(m->keys[i]->s, k, kn)) return &m->vals[i];
    return NULL;
}

bool tmap_set(tm_pool *p, tmap *m, const char *k, size_t kn, tv v) {
    tv *old = tmap_get(m, k, kn);
    if (old) {
        *old = v;
        return true;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        tstr **nk = tm_alloc(p, cap * sizeof *nk);
        tv *nv = tm_alloc(p, cap * sizeof *nv);
        if (!nk || !nv) return false;
        if (m->n) {
            memcpy(nk, m->keys, m->n * sizeof *nk);
            memcpy(nv, m->vals, m->n * sizeof *nv);
        }
        m->keys = nk;
        m->vals = nv;
        m->cap = cap;
    }
    tstr *ks = ts_new(p, k, kn);
    if (!ks) return false;
    m->keys[m->n] = ks;
    m->vals[m->n] = v;
    m->n++;
    return true;
}

const char *tv_type_name(tv_kind k) {
    static const char *names[] = {
        "UndefinedValue", "NullValue",   "BooleanValue",          "IntegerValue",
        "FloatValue",     "StringValue", "ArrayValue",            "TupleValue",
        "ObjectValue",    "KeywordArgumentsValue", "NamespaceValue", "FunctionValue",
    };
    return names[k];
}

bool tv_truthy(tv v) {
    switch (v.k) {
    case TV_UNDEF:
    case TV_NULL: return false;
    case TV_BOOL: return v.u.b;
    case TV_INT:
    case TV_FLOAT: return v.u.n != 0 && !isnan(v.u.n);
    case TV_STR: return v.u.s->n > 0;
    case TV_ARRAY:
    case TV_TUPLE: return v.u.a->n > 0;
    case TV_OBJECT:
    case TV_KWARGS: return v.u.m->n > 0;
    case TV_NS:
    case TV_FUNC: return true; /* a JS Map / function is always truthy */
    }
    return false;
}

/* ---- JavaScript number formatting ----------------------------------------------------- */

void js_num_str(double v, char *buf) {
    if (isnan(v)) {
        strcpy(buf, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(buf, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) {
        strcpy(buf, "0");
        return;
    }
    char tmp[40];
    int p;
    for (p = 1; p <= 17; p++) { /* shortest digits that round-trip */
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    char digits[24];
    int k = 0, neg = 0;
    const char *q = tmp;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[k++] = *q;
    while (k > 1 && digits[k - 1] == '0') k--;
    digits[k] = 0;
    int e = atoi(q + 1), n = e + 1;
    char *o = buf;
    if (neg) *o++ = '-';
    if (k <= n && n <= 21) {
        memcpy(o, digits, k);
        o += k;
        for (int i = 0; i < n - k; i++) *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, k - n);
        o += k - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++) *o++ = '0';
        memcpy(o, digits, k);
        o += k;
    } else {
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, k - 1);
            o += k - 1;
        }
        o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    *o = 0;
}

static void float_str(double v, char *buf) {
    if (v == 0 && signbit(v)) strcpy(buf, "-0.0");
    else if (isfinite(v) && fmod(v, 1.0) == 0 && fabs(v) < 1e21) snprintf(buf, 48, "%.1f", v);
    else js_num_str(v, buf);
}

/* ---- toString and String(value) ------------------------------------------------------- */

bool tv_render(sbuf *b, tv v) {
    char num[64];
    switch (v.k) {
    case TV_UNDEF:
    case TV_NULL: return true;
    case TV_BOOL: sb_puts(b, v.u.b ? "true" : "false"); return true;
    case TV_INT: js_num_str(v.u.n, num); sb_puts(b, num); return true;
    case TV_FLOAT: float_str(v.u.n, num); sb_puts(b, num); return true;
    case TV_STR: sb_put(b, v.u.s->s, v.u.s->n); return true;
    case TV_FUNC: sb_puts(b, "[Function]"); return true;
    default: {
        tojson_opts o = {0};
        tv_kind bad;
        return tv_tojson(b, v, &o, 0, &bad);
    }
    }
}

bool tv_raw_str(sbuf *b, tv v) {
    char num[64];
    switch (v.k) {
    case TV_UNDEF: sb_puts(b, "undefined"); return true;
    case TV_NULL: sb_puts(b, "null"); return true;
    case TV_INT:
    case TV_FLOAT: js_num_str(v.u.n, num); sb_puts(b, num); return true;
    case TV_ARRAY:
    case TV_TUPLE: /* Array#toString: elements' RuntimeValue#toString joined by "," */
        for (size_t i = 0; i < v.u.a->n; i++) {
            if (i) sb_putc(b, ',');
            tv e = v.u.a->v[i];
            if (e.k == TV_UNDEF) sb_puts(b, "undefined");
            else if (e.k == TV_NULL) sb_puts(b, "null");
            else if (!tv_render(b, e)) return false;
        }
        return true;
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS: sb_puts(b, "[object Map]"); return true;
    default: return tv_render(b, v);
    }
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void json_str(sbuf *b, const char *s, size_t n, bool ascii) {
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[16];
        size_t adv = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(u, sizeof u, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            esc = u;
        } else if (ascii && c >= 0x7f) {
            uint32_t cp;
            int l = bm_utf8_decode((const uint8_t *)s + i, n - i, &cp);
            adv = l ? (size_t)l : 1;
            if (cp >= 0x10000) {
                uint32_t hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 1023);
                snprintf(u, sizeof u, "\\u%04x\\u%04x", hi, lo);
            } else {
                snprintf(u, sizeof u, "\\u%04x", cp);
            }
            esc = u;
        }
        if (esc) {
            sb_put(b, s + i - run, run);
            run = 0;
            sb_puts(b, esc);
            i += adv;
        } else {
            run++;
            i++;
        }
    }
    sb_put(b, s + n - run, run);
    sb_putc(b, '"');
}

static void pad(sbuf *b, int indent, int depth) {
    sb_putc(b, '\n');
    for (int i = 0; i < indent * depth; i++) sb_putc(b, ' ');
}

static int key_cmp(const void *x, const void *y) {
    const tstr *a = *(tstr *const *)x, *c = *(tstr *const *)y;
    size_t n = a->n < c->n ? a->n : c->n;
    int r = memcmp(a->s, c->s, n);
    return r ? r : (a->n < c->n ? -1 : a->n > c->n);
}

bool tv_tojson(sbuf *b, tv v, const tojson_opts *o, int depth, tv_kind *bad) {
    char num[64];
    const char *isep = o->item_sep ? o->item_sep : (o->indent > 0 ? "," : ", ");
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    if (depth > 1000) {
        *bad = v.k;
        return false;
    }
    switch (v.k) {
    case TV_NULL: sb_puts(b, "null"); return true;
    case TV_UNDEF: sb_puts(b, o->undef_null ? "null" : "undefined"); return true;
    case TV_INT:
    case TV_FLOAT:
        if (!isfinite(v.u.n)) sb_puts(b, "null");
        else {
            js_num_str(v.u.n, num);
            sb_puts(b, num);
        }
        return true;
    case TV_BOOL: sb_puts(b, v.u.b ? "true" : "false"); return true;
    case TV_STR: json_str(b, v.u.s->s, v.u.s->n, o->ensure_ascii); return true;
    case TV_ARRAY: {
        tarr *a = v.u.a;
        sb_putc(b, '[');
        for (size_t i = 0; i < a->n; i++) {
            if (i) sb_puts(b, isep);
            if (o->indent > 0) pad(b, o->indent, depth + 1);
            if (!tv_tojson(b, a->v[i], o, depth + 1, bad)) return false;
        }
        if (o->indent > 0 && a->n) pad(b, o->indent, depth);
        sb_putc(b, ']');
        return true;
    }
    case TV_OBJECT:
    case TV_NS: {
        tmap *m = v.u.m;
        size_t *order = NULL;
        if (o->sort_keys && m->n > 1) {
            tstr **ks = tm_alloc(b->pool, m->n * sizeof *ks);
            order = tm_alloc(b->pool, m->n * sizeof *order);
            if (!ks || !order) {
                b->failed = true;
                return true;
            }
            memcpy(ks, m->keys, m->n * sizeof *ks);
            qsort(ks, m->n, sizeof *ks, key_cmp);
            for (size_t i = 0; i < m->n; i++)
                for (size_t j = 0; j < m->n; j++)
                    if (m->keys[j] == ks[i]) order[i] = j;
        }
        sb_putc(b, '{');
        for (size_t i = 0; i < m->n; i++) {
            size_t j = order ? order[i] : i;
            if (i) sb_puts(b, isep);
            if (o->indent > 0) pad(b, o->indent, depth + 1);
            json_str(b, m->keys[j]->s, m->keys[j]->n, o->ensure_ascii);
            sb_puts(b, ksep);
            if (!tv_tojson(b, m->vals[j], o, depth + 1, bad)) return false;
        }
        if (o->indent > 0 && m->n) pad(b, o->indent, depth);
        sb_putc(b, '}');
        return true;
    }
    default: *bad = v.k; return false;
    }
}

/* ---- equality ------------------------------------------------------------------------- */

static bool is_ref(tv v) { return v.k >= TV_ARRAY; }
static const void *ref_ptr(tv v) {
    return tv_is_arr(v) ? (const void *)v.u.a
           : v.k == TV_FUNC ? (const void *)v.u.f
                            : (const void *)v.u.m;
}
/* JS primitive class: 0 undefined, 1 null, 2 bool, 3 number, 4 string, 5 object */
static int js_class(tv v) {
    switch (v.k) {
    case TV_UNDEF: return 0;
    case TV_NULL: return 1;
    case TV_BOOL: return 2;
    case TV_INT:
    case TV_FLOAT: return 3;
    case TV_STR: return 4;
    default: return 5;
    }
}

bool tv_strict_eq(tv a, tv b) {
    int ca = js_class(a), cb = js_class(b);
    if (ca != cb) return false;
    switch (ca) {
    case 0:
    case 1: return true;
    case 2: return a.u.b == b.u.b;
    case 3: return a.u.n == b.u.n;
    case 4: return a.u.s->n == b.u.s->n && !memcmp(a.u.s->s, b.u.s->s, a.u.s->n);
    default: return ref_ptr(a) == ref_ptr(b);
    }
}

bool tv_loose_eq(tm_pool *p, tv a, tv b) {
    for (int guard = 0; guard < 4; guard++) {
        int ca = js_class(a), cb = js_class(b);
        if (ca == cb) return tv_strict_eq(a, b);
        if (ca <= 1 && cb <= 1) return true;
        if (ca <= 1 || cb <= 1) return false;
        if (ca == 3 && cb == 4) return a.u.n == js_str_to_num(b.u.s->s, b.u.s->n);
        if (ca == 4 && cb == 3) return js_str_to_num(a.u.s->s, a.u.s->n) == b.u.n;
        if (ca == 2) {
            a = tv_int(a.u.b);
            continue;
        }
        if (cb == 2) {
            b = tv_int(b.u.b);
            continue;
        }
        if (ca == 5 && is_ref(a)) { /* ToPrimitive: String(object) */
            sbuf s;
            sb_init(&s, p);
            tv_raw_str(&s, a);
            a = tv_strs(sb_str(&s));
            if (a.k != TV_STR) return false;
            continue;
        }
        if (cb == 5 && is_ref(b)) {
            sbuf s;
            sb_init(&s, p);
            tv_raw_str(&s, b);
            b = tv_strs(sb_str(&s));
            if (b.k != TV_STR) return false;
            continue;
        }
        return false;
    }
    return false;
}

/* ---- JSON context --------------------------------------------------------------------- */

/* JS "array index" keys (canonical uint32 < 2^32-1) come first in ascending order. */
static bool index_key(const char *k, size_t n, uint64_t *idx) {
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0')) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9') return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v >= 4294967295u) return false;
    *idx = v;
    return true;
}

tv tv_from_json(tm_pool *p, json_t *j, int depth) {
    if (!j || depth > 2000) return tv_null();
    switch (json_typeof(j)) {
    case JSON_NULL: return tv_null();
    case JSON_TRUE: return tv_bool(true);
    case JSON_FALSE: return tv_bool(false);
    case JSON_INTEGER: return tv_int((double)json_integer_value(j));
    case JSON_REAL: {
        double d = json_real_value(j);
        return (isfinite(d) && d == floor(d)) ? tv_int(d) : tv_float(d);
    }
    case JSON_STRING: return tv_str(p, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        tarr *a = ta_new(p, n);
        if (!a) return tv_undef();
        for (size_t i = 0; i < n; i++) a->v[a->n++] = tv_from_json(p, json_array_get(j, i), depth + 1);
        return (tv){.k = TV_ARRAY, .u.a = a};
    }
    case JSON_OBJECT: {
        tmap *m = tmap_new(p, json_object_size(j));
        if (!m) return tv_undef();
        const char *k;
        json_t *v;
        /* pass 1: integer keys ascending; pass 2: the rest in insertion order */
        size_t n_idx = 0;
        json_object_foreach(j, k, v) {
            uint64_t idx;
            if (index_key(k, strlen(k), &idx)) n_idx++;
        }
        if (n_idx) {
            uint64_t last = 0;
            bool first = true;
            for (size_t done = 0; done < n_idx; done++) {
                uint64_t best = UINT64_MAX;
                const char *bk = NULL;
                json_t *bv = NULL;
                json_object_foreach(j, k, v) {
                    uint64_t idx;
                    if (index_key(k, strlen(k), &idx) && (first || idx > last) && idx < best) {
                        best = idx;
                        bk = k;
                        bv = v;
                    }
                }
                if (!bk) break;
                tmap_set(p, m, bk, strlen(bk), tv_from_json(p, bv, depth + 1));
                last = best;
                first = false;
            }
        }
        json_object_foreach(j, k, v) {
            uint64_t idx;
            if (!index_key(k, strlen(k), &idx))
                tmap_set(p, m, k, strlen(k), tv_from_json(p, v, depth + 1));
        }
        return (tv){.k = TV_OBJECT, .u.m = m};
    }
    }
    return tv_null();
}

/* ---- JavaScript string helpers -------------------------------------------------------- */

static uint32_t cp_at(const char *s, size_t n, int *len) {
    uint32_t cp;
    int l = bm_utf8_decode((const uint8_t *)s, n, &cp);
    *len = l ? l : 1;
    return l ? cp : 0xFFFD;
}

static bool js_space_cp(uint32_t c) {
    return c == 9 || c == 10 || c == 11 || c == 12 || c == 13 || c == 32 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

size_t js_space_len(const char *s, size_t n) {
    if (!n) return 0;
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) return (c == ' ' || (c >= 9 && c <= 13)) ? 1 : 0;
    int l;
    uint32_t cp = cp_at(s, n, &l);
    return js_space_cp(cp) ? (size_t)l : 0;
}

size_t js_space_len_back(const char *s, size_t n) {
    if (!n) return 0;
    size_t i = n - 1;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    size_t l = js_space_len(s + i, n - i);
    return l == n - i ? l : 0;
}

size_t js_utf16_len(const char *s, size_t n) {
    size_t u = 0;
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t cp = cp_at(s + i, n - i, &l);
        u += cp >= 0x10000 ? 2 : 1;
        i += (size_t)l;
    }
    return u;
}

static tstr *map_case(tm_pool *p, const char *s, size_t n, bool upper) {
    sbuf b;
    sb_init(&b, p);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (upper && c >= 'a' && c <= 'z') c -= 32;
            if (!upper && c >= 'A' && c <= 'Z') c += 32;
            sb_putc(&b, (char)c);
            i++;
            continue;
        }
        int l;
        uint32_t cp = cp_at(s + i, n - i, &l);
        if (upper && cp == 0xDF) { /* JS full mapping: sharp s -> SS */
            sb_puts(&b, "SS");
        } else {
            utf8proc_int32_t m = upper ? utf8proc_toupper((utf8proc_int32_t)cp)
                                       : utf8proc_tolower((utf8proc_int32_t)cp);
            uint8_t enc[4];
            int el = bm_utf8_encode((uint32_t)m, enc);
            if (el) sb_put(&b, (const char *)enc, (size_t)el);
            else sb_put(&b, s + i, (size_t)l);
        }
        i += (size_t)l;
    }
    return sb_str(&b);
}

tstr *js_upper(tm_pool *p, const char *s, size_t n) { return map_case(p, s, n, true); }
tstr *js_lower(tm_pool *p, const char *s, size_t n) { return map_case(p, s, n, false); }

double js_str_to_num(const char *s, size_t n) {
    size_t a = 0, l;
    while (a < n && (l = js_space_len(s + a, n - a))) a += l;
    while (n > a && (l = js_space_len_back(s + a, n - a))) n -= l;
    if (a == n) return 0;
    char buf[400];
    size_t len = n - a;
    if (len >= sizeof buf) return NAN;
    memcpy(buf, s + a, len);
    buf[len] = 0;
    if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X' || buf[1] == 'o' ||
                                     buf[1] == 'O' || buf[1] == 'b' || buf[1] == 'B')) {
        int base = (buf[1] | 32) == 'x' ? 16 : (buf[1] | 32) == 'o' ? 8 : 2;
        double v = 0;
        for (size_t i = 2; i < len; i++) {
            int c = buf[i], d = c >= '0' && c <= '9' ? c - '0'
                                : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10
                                                                      : 99;
            if (d >= base) return NAN;
            v = v * base + d;
        }
        return v;
    }
    const char *q = buf;
    bool neg = false;
    if (*q == '+' || *q == '-') neg = *q++ == '-';
    if (!strcmp(q, "Infinity")) return neg ? -INFINITY : INFINITY;
    /* StrDecimalLiteral: digits [. digits] [e [+-] digits], at least one digit */
    const char *r = q;
    int nd = 0;
    while (*r >= '0' && *r <= '9') r++, nd++;
    if (*r == '.') {
        r++;
        while (*r >= '0' && *r <= '9') r++, nd++;
    }
    if (!nd) return NAN;
    if (*r == 'e' || *r == 'E') {
        r++;
        if (*r == '+' || *r == '-') r++;
        if (!(*r >= '0' && *r <= '9')) return NAN;
        while (*r >= '0' && *r <= '9') r++;
    }
    if (*r) return NAN;
    return strtod(buf, NULL);
}
