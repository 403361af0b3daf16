/* The JSON pushdown matcher: one frame per open container or scalar (object, array, string,
 * number, literal), fed one byte at a time. Strings are checked to be valid UTF-8 (no
 * surrogate or \u0000 escapes) and numbers to fit Jansson's ranges (at most 18 integer digits,
 * 16 fraction digits, 2 exponent digits), so an accepted document always parses. Structural
 * whitespace is allowed in runs of at most 32 bytes (a model cannot loop on it forever).
 * The shortest completion closes every open frame using each node's precomputed min_text. */
#include "sample/grammar_int.h"

#include <stdlib.h>
#include <string.h>

enum { K_OBJ = 1, K_ARR, K_STR, K_NUM, K_LIT };
enum { O_START, O_KEY, O_COLON, O_VALUE, O_AFTER, O_NEXT };
enum { A_START, A_VALUE, A_AFTER };
enum { F_INT = 1 };
#define WS_MAX 32

void grammar_init_builtin(bm_grammar *g) {
    static const char *bools[2] = {"true", "false"};
    static uint32_t bool_len[2] = {4, 5};
    static const char *nulls[1] = {"null"};
    static uint32_t null_len[1] = {4};
    memset(&g->any, 0, sizeof g->any);
    g->any.types = T_ALL;
    g->any.additional = true;
    g->any.max_items = INT32_MAX;
    g->any.min_text = "0";
    g->any.min_len = 1;
    memset(&g->lit_bool, 0, sizeof g->lit_bool);
    g->lit_bool.types = T_BOOL;
    g->lit_bool.n_lits = 2;
    g->lit_bool.lits = bools;
    g->lit_bool.lit_len = bool_len;
    g->lit_bool.min_text = "true";
    g->lit_bool.min_len = 4;
    memset(&g->lit_null, 0, sizeof g->lit_null);
    g->lit_null.types = T_NULL;
    g->lit_null.n_lits = 1;
    g->lit_null.lits = nulls;
    g->lit_null.lit_len = null_len;
    g->lit_null.min_text = "null";
    g->lit_null.min_len = 4;
}

void bm_gstate_init(bm_gstate *s, const bm_grammar *g) {
    memset(s, 0, sizeof *s);
    s->g = g;
}

static const gnode *item_node(const bm_gstate *s, const gnode *n) {
    return n->items ? n->items : &s->g->any;
}

static const gnode *prop_node(const bm_gstate *s, const gnode *n, int prop) {
    return prop >= 0 ? n->props[prop] : &s->g->any;
}

static uint64_t all_props(const gnode *n) {
    return n->n_props >= 64 ? ~0ull : ((1ull << n->n_props) - 1);
}

static bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* String body lexer: -1 reject, 0 consumed, 1 closing quote. */
static int lex(bm_gframe *f, uint8_t c) {
    if (f->utf_need) {
        if (c < f->utf_lo || c > f->utf_hi) return -1;
        f->utf_need--;
        f->utf_lo = 0x80;
        f->utf_hi = 0xBF;
        return 0;
    }
    if (f->u_n) {
        int v = hexval(c), idx = 4 - f->u_n;
        if (v < 0) return -1;
        if (idx == 1 && f->u_val == 0xD && v >= 8) return -1; /* no surrogates */
        f->u_val = (uint16_t)(f->u_val * 16 + v);
        if (idx == 3 && f->u_val == 0) return -1; /* \u0000: Jansson rejects it */
        f->u_n--;
        return 0;
    }
    if (f->esc) {
        f->esc = 0;
        switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            return 0;
        case 'u':
            f->u_n = 4;
            f->u_val = 0;
            return 0;
        default:
            return -1;
        }
    }
    if (c == '"') return 1;
    if (c == '\\') {
        f->esc = 1;
        return 0;
    }
    if (c < 0x20) return -1;
    if (c < 0x80) return 0;
    uint8_t need, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return -1;
    f->utf_need = need;
    f->utf_lo = lo;
    f->utf_hi = hi;
    return 0;
}

static bool push(bm_gstate *s, int kind, const gnode *n) {
    if (s->depth >= BM_GRAMMAR_MAX_DEPTH) return false;
    bm_gframe *f = &s->f[s->depth++];
    memset(f, 0, sizeof *f);
    f->kind = (uint8_t)kind;
    f->node = n;
    f->prop = -1;
    f->utf_lo = 0x80;
    f->utf_hi = 0xBF;
    if (kind == K_LIT) f->mask = n->n_lits >= 64 ? ~0ull : ((1ull << n->n_lits) - 1);
    return true;
}

/* The value on top is complete: pop it and move its parent past the value. */
static void pop(bm_gstate *s) {
    s->depth--;
    if (s->depth == 0) {
        s->done = true;
        return;
    }
    bm_gframe *p = &s->f[s->depth - 1];
    if (p->kind == K_OBJ) {
        p->st = O_AFTER;
    } else if (p->kind == K_ARR) {
        p->count++;
        p->st = A_AFTER;
    }
}

static bool ws_ok(bm_gstate *s) {
    if (s->ws_run >= WS_MAX) return false;
    s->ws_run++;
    return true;
}

/* Numbers: 0 start, 1 '-', 2 '0', 3 int digits, 4 '.', 5 frac digits, 6 'e', 7 exp sign,
 * 8 exp digits. Returns 1 consumed, 0 not part of the number. count: digits in the part. */
static int num_feed(bm_gframe *f, uint8_t c) {
    bool dig = c >= '0' && c <= '9', isint = f->flags & F_INT;
    switch (f->st) {
    case 0:
        if (c == '-') return f->st = 1, 1;
        /* fallthrough */
    case 1:
        if (c == '0') return f->st = 2, f->count = 1, 1;
        if (dig) return f->st = 3, f->count = 1, 1;
        return 0;
    case 2:
    case 3:
        if (dig && f->st == 3 && f->count < 18) return f->count++, 1;
        if (c == '.' && !isint) return f->st = 4, f->count = 0, 1;
        if ((c == 'e' || c == 'E') && !isint) return f->st = 6, f->count = 0, 1;
        return 0;
    case 4:
    case 5:
        if (dig && f->count < 16) return f->st = 5, f->count++, 1;
        if (f->st == 5 && (c == 'e' || c == 'E')) return f->st = 6, f->count = 0, 1;
        return 0;
    case 6:
        if (c == '+' || c == '-') return f->st = 7, 1;
        /* fallthrough */
    case 7:
    case 8:
        if (dig && f->count < 2) return f->st = 8, f->count++, 1;
        return 0;
    }
    return 0;
}

static bool num_complete(const bm_gframe *f) {
    return f->st == 2 || f->st == 3 || f->st == 5 || f->st == 8;
}

/* Literals: 1 consumed, 0 complete and c belongs to the parent, -1 reject. */
static int lit_feed(bm_gstate *s, bm_gframe *f, uint8_t c) {
    const gnode *n = f->node;
    uint64_t nm = 0;
    bool complete = false;
    for (int i = 0; i < n->n_lits; i++) {
        if (!(f->mask >> i & 1)) continue;
        if (n->lit_len[i] > (uint32_t)f->pos && (uint8_t)n->lits[i][f->pos] == c) nm |= 1ull << i;
        if (n->lit_len[i] == (uint32_t)f->pos) complete = true;
    }
    if (!nm) return complete ? 0 : -1;
    f->mask = nm;
    f->pos++;
    bool more = false;
    for (int i = 0; i < n->n_lits; i++)
        if ((nm >> i & 1) && n->lit_len[i] > (uint32_t)f->pos) more = true;
    if (!more) pop(s);
    return 1;
}

static bool start_value(bm_gstate *s, const gnode *n, uint8_t c) {
    if (n->n_lits > 0) {
        if (!push(s, K_LIT, n)) return false;
        if (lit_feed(s, &s->f[s->depth - 1], c) == 1) return true;
        s->depth--;
        return false;
    }
    unsigned t = n->types;
    if (c == '{' && (t & T_OBJ)) return push(s, K_OBJ, n);
    if (c == '[' && (t & T_ARR)) return push(s, K_ARR, n);
    if (c == '"' && (t & T_STR)) return push(s, K_STR, n);
    if ((c == '-' || (c >= '0' && c <= '9')) && (t & (T_NUM | T_INT))) {
        if (!push(s, K_NUM, n)) return false;
        bm_gframe *f = &s->f[s->depth - 1];
        if (!(t & T_NUM)) f->flags = F_INT;
        return num_feed(f, c) == 1;
    }
    if ((c == 't' || c == 'f') && (t & T_BOOL)) return start_value(s, &s->g->lit_bool, c);
    if (c == 'n' && (t & T_NULL)) return start_value(s, &s->g->lit_null, c);
    return false;
}

static bool obj_feed(bm_gstate *s, bm_gframe *f, uint8_t c, bool ws) {
    const gnode *n = f->node;
    uint64_t all = all_props(n);
    switch (f->st) {
    case O_START:
    case O_NEXT:
        if (ws) return ws_ok(s);
        if (c == '"') {
            if (!(all & ~f->used) && !n->additional) return false;
            f->st = O_KEY;
            f->mask = all;
            f->pos = 0;
            f->esc = f->u_n = f->utf_need = 0;
            return true;
        }
        if (c == '}' && f->st == O_START && !(n->required & ~f->used)) {
            pop(s);
            return true;
        }
        return false;
    case O_KEY: {
        if (c == '\\') return false; /* no escapes in keys: keeps duplicate detection exact */
        int r = lex(f, c);
        if (r < 0) return false;
        if (r == 1) {
            int k = -1;
            for (int i = 0; i < n->n_props; i++)
                if ((f->mask >> i & 1) && n->key_len[i] == (uint32_t)f->pos) k = i;
            if (k >= 0) {
                if (f->used >> k & 1) return false;
                f->used |= 1ull << k;
            } else if (!n->additional) {
                return false;
            }
            f->prop = (int16_t)k;
            f->st = O_COLON;
            return true;
        }
        uint64_t nm = 0;
        for (int i = 0; i < n->n_props; i++)
            if ((f->mask >> i & 1) && n->key_len[i] > (uint32_t)f->pos &&
                (uint8_t)n->keys[i][f->pos] == c)
                nm |= 1ull << i;
        f->mask = nm;
        f->pos++;
        return n->additional || (nm & ~f->used);
    }
    case O_COLON:
        if (ws) return ws_ok(s);
        if (c != ':') return false;
        f->st = O_VALUE;
        return true;
    case O_VALUE:
        if (ws) return ws_ok(s);
        return start_value(s, prop_node(s, n, f->prop), c);
    case O_AFTER:
        if (ws) return ws_ok(s);
        if (c == ',' && ((all & ~f->used) || n->additional)) {
            f->st = O_NEXT;
            return true;
        }
        if (c == '}' && !(n->required & ~f->used)) {
            pop(s);
            return true;
        }
        return false;
    }
    return false;
}

static bool arr_feed(bm_gstate *s, bm_gframe *f, uint8_t c, bool ws) {
    const gnode *n = f->node;
    if (ws) return ws_ok(s);
    switch (f->st) {
    case A_START:
        if (c == ']' && n->min_items == 0) {
            pop(s);
            return true;
        }
        return n->max_items > 0 && start_value(s, item_node(s, n), c);
    case A_VALUE:
        return start_value(s, item_node(s, n), c);
    case A_AFTER:
        if (c == ',' && f->count < n->max_items) {
            f->st = A_VALUE;
            return true;
        }
        if (c == ']' && f->count >= n->min_items) {
            pop(s);
            return true;
        }
        return false;
    }
    return false;
}

static bool feed1(bm_gstate *s, uint8_t c) {
    bool ws = is_ws(c);
    if (!ws) s->ws_run = 0;
    for (;;) {
        if (s->depth == 0) {
            if (s->done) return false;
            if (ws) return ws_ok(s);
            return start_value(s, s->g->root, c);
        }
        bm_gframe *f = &s->f[s->depth - 1];
        switch (f->kind) {
        case K_STR: {
            int r = lex(f, c);
            if (r < 0) return false;
            if (r == 1) pop(s);
            return true;
        }
        case K_NUM:
            if (num_feed(f, c)) return true;
            if (!num_complete(f)) return false;
            pop(s);
            continue;
        case K_LIT: {
            int r = lit_feed(s, f, c);
            if (r != 0) return r > 0;
            pop(s);
            continue;
        }
        case K_OBJ:
            return obj_feed(s, f, c, ws);
        case K_ARR:
            return arr_feed(s, f, c, ws);
        }
        return false;
    }
}

bool bm_gstate_feed(bm_gstate *s, const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!feed1(s, bytes[i])) return false;
    return true;
}

bool bm_gstate_accepts(const bm_gstate *s, const uint8_t *bytes, size_t n) {
    if (n == 0) return false;
    bm_gstate t;
    size_t head = offsetof(bm_gstate, f);
    memcpy(&t, s, head + (size_t)s->depth * sizeof(bm_gframe));
    return bm_gstate_feed(&t, bytes, n);
}

bool bm_gstate_done(const bm_gstate *s) { return s->depth == 0 && s->done; }

bool bm_gstate_can_end(const bm_gstate *s) {
    if (bm_gstate_done(s)) return true;
    if (s->depth != 1) return false;
    const bm_gframe *f = &s->f[0];
    if (f->kind == K_NUM) return num_complete(f);
    if (f->kind == K_LIT) {
        const gnode *n = f->node;
        for (int i = 0; i < n->n_lits; i++)
            if ((f->mask >> i & 1) && n->lit_len[i] == (uint32_t)f->pos) return true;
    }
    return false;
}

/* ---- shortest completion ---------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t cap, n;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, b->n++)
        if (b->n + 1 < b->cap) b->p[b->n] = s[i];
}
static void putc1(sbuf *b, char c) { put(b, &c, 1); }
static void put_min(sbuf *b, const gnode *n) { put(b, n->min_text, n->min_len); }

static void lex_complete(sbuf *b, const bm_gframe *f) {
    if (f->utf_need) {
        putc1(b, (char)f->utf_lo);
        for (int i = 1; i < f->utf_need; i++) putc1(b, (char)0x80);
    }
    for (int i = 0; i < f->u_n; i++) putc1(b, '4');
    if (f->esc) putc1(b, 'n');
    putc1(b, '"');
}

/* A key equal to no property name: "_", "__", ... */
static void put_fresh_key(sbuf *b, const gnode *n, const char *prefix, size_t plen) {
    for (uint32_t k = plen ? 0 : 1;; k++) {
        bool clash = false;
        for (int i = 0; i < n->n_props; i++) {
            if (n->key_len[i] != plen + k || memcmp(n->keys[i], prefix, plen)) continue;
            bool all_us = true;
            for (uint32_t j = 0; j < k; j++) all_us &= n->keys[i][plen + j] == '_';
            clash |= all_us;
        }
        if (!clash) {
            for (uint32_t j = 0; j < k; j++) putc1(b, '_');
            return;
        }
    }
}

static int pick_key(const gnode *n, uint64_t cand, uint64_t used) {
    int best = -1;
    for (int i = 0; i < n->n_props; i++) {
        if (!(cand >> i & 1) || (used >> i & 1)) continue;
        bool req = n->required >> i & 1, breq = best >= 0 && (n->required >> best & 1);
        if (best < 0 || (req && !breq) ||
            (req == breq && n->key_len[i] + n->props[i]->min_len <
                                n->key_len[best] + n->props[best]->min_len))
            best = i;
    }
    return best;
}

static void obj_complete(sbuf *b, const bm_gstate *s, const bm_gframe *f, bool top) {
    const gnode *n = f->node;
    int st = top ? f->st : O_AFTER;
    uint64_t used = f->used;
    bool first = st == O_START;
    if (st == O_KEY) {
        int k = pick_key(n, f->mask, used);
        const gnode *v = &s->g->any;
        if (k >= 0) {
            put(b, n->keys[k] + f->pos, n->key_len[k] - (uint32_t)f->pos);
            putc1(b, '"');
            used |= 1ull << k;
            v = n->props[k];
        } else if (f->mask) {
            /* typed text is a prefix of used names only: extend it to a fresh key */
            int any = 0;
            while (!(f->mask >> any & 1)) any++;
            if (!f->utf_need) put_fresh_key(b, n, n->keys[any], (size_t)f->pos);
            lex_complete(b, f);
        } else {
            lex_complete(b, f);
        }
        putc1(b, ':');
        put_min(b, v);
    } else if (st == O_COLON || st == O_VALUE) {
        if (st == O_COLON) putc1(b, ':');
        put_min(b, prop_node(s, n, f->prop));
    } else if (st == O_NEXT) {
        int k = pick_key(n, all_props(n), used);
        putc1(b, '"');
        if (k >= 0) {
            put(b, n->keys[k], n->key_len[k]);
            used |= 1ull << k;
        } else {
            put_fresh_key(b, n, "", 0);
        }
        put(b, "\":", 2);
        put_min(b, k >= 0 ? n->props[k] : &s->g->any);
    }
    for (int i = 0; i < n->n_props; i++) {
        if (!(n->required >> i & 1) || (used >> i & 1)) continue;
        if (!first) putc1(b, ',');
        first = false;
        putc1(b, '"');
        put(b, n->keys[i], n->key_len[i]);
        put(b, "\":", 2);
        put_min(b, n->props[i]);
    }
    putc1(b, '}');
}

static void arr_complete(sbuf *b, const bm_gstate *s, const bm_gframe *f, bool top) {
    const gnode *n = f->node, *it = item_node(s, n);
    int st = top ? f->st : A_AFTER;
    int32_t count = f->count + (top ? 0 : 1);
    if (st == A_VALUE) {
        put_min(b, it);
        count++;
    }
    for (; count < n->min_items; count++) {
        if (count > 0) putc1(b, ',');
        put_min(b, it);
        st = A_AFTER;
    }
    putc1(b, ']');
}

size_t bm_gstate_completion(const bm_gstate *s, char *out, size_t cap) {
    sbuf b = {out, cap, 0};
    if (s->depth == 0 && !s->done) put_min(&b, s->g->root);
    for (int i = s->depth - 1; i >= 0; i--) {
        const bm_gframe *f = &s->f[i];
        bool top = i == s->depth - 1;
        switch (f->kind) {
        case K_STR:
            lex_complete(&b, f);
            break;
        case K_NUM:
            if (!num_complete(f)) putc1(&b, '0');
            break;
        case K_LIT: {
            const gnode *n = f->node;
            int best = -1;
            for (int k = 0; k < n->n_lits; k++)
                if ((f->mask >> k & 1) && (best < 0 || n->lit_len[k] < n->lit_len[best])) best = k;
            put(&b, n->lits[best] + f->pos, n->lit_len[best] - (uint32_t)f->pos);
            break;
        }
        case K_OBJ:
            obj_complete(&b, s, f, top);
            break;
        case K_ARR:
            arr_complete(&b, s, f, top);
            break;
        }
    }
    if (cap > 0) out[b.n < cap ? b.n : cap - 1] = 0;
    return b.n;
}
