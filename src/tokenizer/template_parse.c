/* Chat-template parser: tokens -> AST, following @huggingface/jinja's grammar and operator
 * precedence (lowest first): ternary/select `a if c [else b]`, or, and, not, comparisons and
 * (not) in, + - ~, * / // %, **, `is` tests, `|` filters, unary + -, calls/members, primary.
 * Statements: if/elif/else, for/else, set (incl. block set), macro, call, filter, break,
 * continue. Syntax errors are BM_EFORMAT "template:LINE:COL: ..." at the offending token. */
#include "template_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    tm_pool *pool;
    const token *t;
    size_t n, cur;
    int depth;
    bm_err *err;
    bool failed;
} parser;

const char *op_name(int op) {
    static const char *names[] = {"and", "or", "==", "!=", "<",  ">",  "<=", ">=", "in", "not in", "+",
                                  "-",   "~",  "*",  "/",  "//", "%",  "**", "not", "-", "+"};
    return names[op];
}

static node *fail(parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static node *fail(parser *P, const char *fmt, ...) {
    if (P->failed) return NULL;
    P->failed = true;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const token *k = P->cur < P->n ? &P->t[P->cur] : (P->n ? &P->t[P->n - 1] : NULL);
    if (k) bm_err_set(P->err, BM_EFORMAT, "template:%u:%u: %s", k->line, k->col, msg);
    else bm_err_set(P->err, BM_EFORMAT, "template:1:1: %s", msg);
    return NULL;
}

static node *mk(parser *P, node_kind k, const token *at) {
    node *x = tm_alloc(P->pool, sizeof *x);
    if (!x) return fail(P, "out of memory");
    x->k = k;
    if (!at) at = P->cur < P->n ? &P->t[P->cur] : (P->n ? &P->t[P->n - 1] : NULL);
    if (at) {
        x->line = at->line;
        x->col = at->col;
    }
    return x;
}

/* growable node list */
typedef struct nlist {
    node **v;
    size_t n, cap;
} nlist;
static bool nl_push(parser *P, nlist *l, node *x) {
    if (!x) return false;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        node **nv = tm_alloc(P->pool, cap * sizeof *nv);
        if (!nv) {
            fail(P, "out of memory");
            return false;
        }
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

static bool is(parser *P, tok_type t) { return P->cur < P->n && P->t[P->cur].t == t; }
static bool tok_eq(const token *k, const char *s) {
    size_t n = strlen(s);
    return k->n == n && !memcmp(k->s, s, n);
}
static bool is_ident(parser *P, const char *name) {
    return P->cur < P->n && P->t[P->cur].t == T_IDENT && tok_eq(&P->t[P->cur], name);
}
static bool is_ident2(parser *P, const char *a, const char *b) {
    return P->cur + 1 < P->n && P->t[P->cur + 1].t == T_IDENT && is_ident(P, a) &&
           tok_eq(&P->t[P->cur + 1], b);
}
static bool is_stmt(parser *P, const char *const *names) {
    if (!(P->cur + 1 < P->n && P->t[P->cur].t == T_OPEN_STMT && P->t[P->cur + 1].t == T_IDENT))
        return false;
    for (; *names; names++)
        if (tok_eq(&P->t[P->cur + 1], *names)) return true;
    return false;
}
static bool expect(parser *P, tok_type t, const char *what) {
    if (P->cur >= P->n) {
        fail(P, "%s, got end of template", what);
        return false;
    }
    if (P->t[P->cur].t != t) {
        fail(P, "%s, got %s '%.*s'", what, tok_type_name(P->t[P->cur].t), (int)P->t[P->cur].n,
             P->t[P->cur].s);
        return false;
    }
    P->cur++;
    return true;
}
static bool expect_ident(parser *P, const char *name) {
    if (!is_ident(P, name)) {
        fail(P, "Expected %s", name);
        return false;
    }
    P->cur++;
    return true;
}

static node *parse_expr(parser *P);
static node *parse_primary(parser *P);
static node *parse_any(parser *P);
static node *parse_call(parser *P, node *callee);

static node *parse_seq(parser *P, bool primary) {
    const token *at = P->cur < P->n ? &P->t[P->cur] : NULL;
    node *first = primary ? parse_primary(P) : parse_expr(P);
    if (!first || !is(P, T_COMMA)) return first;
    nlist l = {0};
    nl_push(P, &l, first);
    while (is(P, T_COMMA)) {
        P->cur++;
        if (!nl_push(P, &l, primary ? parse_primary(P) : parse_expr(P))) return NULL;
    }
    node *t = mk(P, N_TUPLE, at);
    if (!t) return NULL;
    t->list = l.v;
    t->n_list = l.n;
    return t;
}

/* mode 0: call arguments, 1: parameters */
static bool parse_args(parser *P, int mode, node ***out, size_t *n_out) {
    if (!expect(P, T_LPAREN, "Expected opening parenthesis for arguments list")) return false;
    nlist l = {0};
    bool saw_kw = false, saw_spread = false;
    while (!is(P, T_RPAREN)) {
        if (P->cur >= P->n) {
            fail(P, "Expected closing parenthesis for arguments list, got end of template");
            return false;
        }
        bool kwspread = is(P, T_POW);
        bool spread = is(P, T_MUL) && tok_eq(&P->t[P->cur], "*");
        if (mode == 1 && (kwspread || spread)) {
            fail(P, "Argument unpacking is not allowed in parameter declarations");
            return false;
        }
        const token *at = &P->t[P->cur];
        if (kwspread) {
            P->cur++;
            node *x = mk(P, N_KWSPREAD, at);
            if (!x || !(x->a = parse_expr(P))) return false;
            nl_push(P, &l, x);
            if (is(P, T_COMMA)) P->cur++;
            if (!is(P, T_RPAREN)) {
                fail(P, "Expected closing parenthesis: `**` must be applied to the final argument");
                return false;
            }
            break;
        }
        node *arg;
        if (spread) {
            if (saw_spread) {
                fail(P, "Only one `*` argument unpacking is allowed");
                return false;
            }
            saw_spread = true;
            P->cur++;
            arg = mk(P, N_SPREAD, at);
            if (!arg || !(arg->a = parse_expr(P))) return false;
        } else {
            arg = parse_expr(P);
            if (!arg) return false;
            if (is(P, T_EQUALS)) {
                P->cur++;
                if (arg->k != N_IDENT) {
                    fail(P, mode ? "Expected identifier for parameter declaration"
                                 : "Expected identifier for keyword argument");
                    return false;
                }
                node *kw = mk(P, N_KWARG, at);
                if (!kw) return false;
                kw->str = arg->str;
                if (!(kw->a = parse_expr(P))) return false;
                arg = kw;
            }
            if (mode == 1) {
                if (arg->k != N_IDENT && arg->k != N_KWARG) {
                    fail(P, "Expected identifier for parameter declaration");
                    return false;
                }
                for (size_t i = 0; i < l.n; i++)
                    if (l.v[i]->str->n == arg->str->n && !memcmp(l.v[i]->str->s, arg->str->s, arg->str->n)) {
                        fail(P, "Duplicate parameter name: %s", arg->str->s);
                        return false;
                    }
            }
            if (arg->k == N_KWARG) saw_kw = true;
            else if (saw_kw) {
                fail(P, mode == 0 ? "Positional arguments must come before keyword arguments"
                                  : "Non-default argument follows default argument");
                return false;
            } else if (saw_spread) {
                fail(P, "Positional arguments must not follow `*` argument unpacking");
                return false;
            }
        }
        if (!nl_push(P, &l, arg)) return false;
        if (is(P, T_COMMA)) P->cur++;
    }
    if (!expect(P, T_RPAREN, "Expected closing parenthesis for arguments list")) return false;
    *out = l.v;
    *n_out = l.n;
    return true;
}

static node *parse_member_args(parser *P) {
    node *sl[4] = {0};
    size_t n = 0;
    bool slice = false;
    const token *at = P->cur < P->n ? &P->t[P->cur] : NULL;
    while (!is(P, T_RBRACKET)) {
        if (P->cur >= P->n) return fail(P, "Expected closing square bracket, got end of template");
        if (n >= 4) return fail(P, "Expected 0-3 arguments for slice expression");
        if (is(P, T_COLON)) {
            sl[n++] = NULL;
            P->cur++;
            slice = true;
        } else {
            if (!(sl[n++] = parse_expr(P))) return NULL;
            if (is(P, T_COLON)) {
                P->cur++;
                slice = true;
            }
        }
    }
    if (n == 0) return fail(P, "Expected at least one argument for member/slice expression");
    if (slice) {
        if (n > 3) return fail(P, "Expected 0-3 arguments for slice expression");
        node *x = mk(P, N_SLICE, at);
        if (!x) return NULL;
        x->a = sl[0];
        x->b = n > 1 ? sl[1] : NULL;
        x->c = n > 2 ? sl[2] : NULL;
        return x;
    }
    return sl[0];
}

static node *parse_member(parser *P, node *obj) {
    while (obj && (is(P, T_DOT) || is(P, T_LBRACKET))) {
        const token *at = &P->t[P->cur];
        bool computed = at->t == T_LBRACKET;
        P->cur++;
        node *prop;
        if (computed) {
            prop = parse_member_args(P);
            if (!prop || !expect(P, T_RBRACKET, "Expected closing square bracket")) return NULL;
        } else {
            prop = parse_primary(P);
            if (!prop) return NULL;
            if (prop->k != N_IDENT && prop->k != N_INT)
                return fail(P, "Expected identifier or integer following dot operator");
        }
        node *m = mk(P, N_MEMBER, at);
        if (!m) return NULL;
        m->a = obj;
        m->b = prop;
        m->op = computed;
        obj = m;
    }
    return obj;
}

static node *parse_call(parser *P, node *callee) {
    node *c = mk(P, N_CALL, NULL);
    if (!c) return NULL;
    c->line = callee->line;
    c->col = callee->col;
    c->a = callee;
    if (!parse_args(P, 0, &c->list, &c->n_list)) return NULL;
    node *x = parse_member(P, c);
    if (x && is(P, T_LPAREN)) x = parse_call(P, x);
    return x;
}

static node *parse_call_member(parser *P) {
    node *m = parse_member(P, parse_primary(P));
    if (m && is(P, T_LPAREN)) return parse_call(P, m);
    return m;
}

static node *parse_unary_sign(parser *P) {
    if (P->cur < P->n && (P->t[P->cur].t == T_UNARY || P->t[P->cur].t == T_ADD) &&
        (tok_eq(&P->t[P->cur], "-") || tok_eq(&P->t[P->cur], "+"))) {
        node *u = mk(P, N_UNARY, NULL);
        if (!u) return NULL;
        u->op = P->t[P->cur].s[0] == '-' ? OP_NEG : OP_POS;
        P->cur++;
        if (++P->depth > TM_MAX_PARSE_DEPTH)
            return fail(P, "expression nesting exceeds the limit of %d", TM_MAX_PARSE_DEPTH);
        u->a = parse_unary_sign(P);
        P->depth--;
        return u->a ? u : NULL;
    }
    return parse_call_member(P);
}

static node *parse_filter_expr(parser *P) {
    node *x = parse_unary_sign(P);
    while (x && is(P, T_PIPE)) {
        const token *at = &P->t[P->cur];
        P->cur++;
        node *f = parse_primary(P);
        if (!f) return NULL;
        if (f->k != N_IDENT) return fail(P, "Expected identifier for the filter");
        if (is(P, T_LPAREN)) f = parse_call(P, f);
        if (!f) return NULL;
        node *fx = mk(P, N_FILTER, at);
        if (!fx) return NULL;
        fx->a = x;
        fx->b = f;
        x = fx;
    }
    return x;
}

static node *parse_test_expr(parser *P) {
    node *x = parse_filter_expr(P);
    while (x && is_ident(P, "is")) {
        const token *at = &P->t[P->cur];
        P->cur++;
        bool neg = is_ident(P, "not");
        if (neg) P->cur++;
        node *f = parse_primary(P);
        if (!f) return NULL;
        if (f->k != N_IDENT) return fail(P, "Expected identifier for the test");
        node *t = mk(P, N_TEST, at);
        if (!t) return NULL;
        t->a = x;
        t->str = f->str;
        t->op = neg;
        x = t;
    }
    return x;
}

static node *binary(parser *P, const token *at, int op, node *l, node *r) {
    if (!l || !r) return NULL;
    node *b = mk(P, N_BINARY, at);
    if (!b) return NULL;
    b->op = op;
    b->a = l;
    b->b = r;
    return b;
}

static node *parse_pow(parser *P) {
    node *l = parse_test_expr(P);
    while (l && is(P, T_POW)) {
        const token *at = &P->t[P->cur++];
        l = binary(P, at, OP_POW, l, parse_test_expr(P));
    }
    return l;
}

static node *parse_mul(parser *P) {
    node *l = parse_pow(P);
    while (l && is(P, T_MUL)) {
        const token *at = &P->t[P->cur++];
        int op = tok_eq(at, "*") ? OP_MUL : tok_eq(at, "/") ? OP_DIV : tok_eq(at, "//") ? OP_FLOORDIV : OP_MOD;
        l = binary(P, at, op, l, parse_pow(P));
    }
    return l;
}

static node *parse_add(parser *P) {
    node *l = parse_mul(P);
    while (l && is(P, T_ADD)) {
        const token *at = &P->t[P->cur++];
        int op = at->s[0] == '+' ? OP_ADD : at->s[0] == '-' ? OP_SUB : OP_CONCAT;
        l = binary(P, at, op, l, parse_mul(P));
    }
    return l;
}

static node *parse_cmp(parser *P) {
    node *l = parse_add(P);
    while (l) {
        const token *at = P->cur < P->n ? &P->t[P->cur] : NULL;
        int op;
        if (is_ident2(P, "not", "in")) {
            op = OP_NOTIN;
            P->cur += 2;
        } else if (is_ident(P, "in")) {
            op = OP_IN;
            P->cur++;
        } else if (is(P, T_CMP)) {
            op = tok_eq(at, "==") ? OP_EQ : tok_eq(at, "!=") ? OP_NE : tok_eq(at, "<") ? OP_LT
                 : tok_eq(at, ">") ? OP_GT : tok_eq(at, "<=") ? OP_LE : OP_GE;
            P->cur++;
        } else {
            break;
        }
        l = binary(P, at, op, l, parse_add(P));
    }
    return l;
}

static node *parse_not(parser *P) {
    if (is_ident(P, "not")) {
        node *u = mk(P, N_UNARY, NULL);
        if (!u) return NULL;
        u->op = OP_NOT;
        P->cur++;
        if (++P->depth > TM_MAX_PARSE_DEPTH)
            return fail(P, "expression nesting exceeds the limit of %d", TM_MAX_PARSE_DEPTH);
        u->a = parse_not(P);
        P->depth--;
        return u->a ? u : NULL;
    }
    return parse_cmp(P);
}

static node *parse_and(parser *P) {
    node *l = parse_not(P);
    while (l && is_ident(P, "and")) {
        const token *at = &P->t[P->cur++];
        l = binary(P, at, OP_AND, l, parse_not(P));
    }
    return l;
}

static node *parse_or(parser *P) {
    node *l = parse_and(P);
    while (l && is_ident(P, "or")) {
        const token *at = &P->t[P->cur++];
        l = binary(P, at, OP_OR, l, parse_and(P));
    }
    return l;
}

static node *parse_expr(parser *P) {
    if (++P->depth > TM_MAX_PARSE_DEPTH)
        return fail(P, "expression nesting exceeds the limit of %d", TM_MAX_PARSE_DEPTH);
    node *a = parse_or(P);
    if (a && is_ident(P, "if")) {
        const token *at = &P->t[P->cur++];
        node *test = parse_or(P);
        if (!test) return NULL;
        if (is_ident(P, "else")) {
            P->cur++;
            node *t = mk(P, N_TERNARY, at);
            if (!t) return NULL;
            t->a = test;
            t->b = a;
            t->c = parse_expr(P);
            a = t->c ? t : NULL;
        } else {
            node *s = mk(P, N_SELECT, at);
            if (!s) return NULL;
            s->a = a;
            s->b = test;
            a = s;
        }
    }
    P->depth--;
    return a;
}

static node *parse_primary(parser *P) {
    if (P->cur >= P->n) return fail(P, "Unexpected end of template");
    const token *k = &P->t[P->cur++];
    switch (k->t) {
    case T_NUM: {
        char buf[64];
        size_t n = k->n < sizeof buf - 1 ? k->n : sizeof buf - 1;
        memcpy(buf, k->s, n);
        buf[n] = 0;
        bool isf = memchr(k->s, '.', k->n) != NULL;
        node *x = mk(P, isf ? N_FLOAT : N_INT, k);
        if (!x) return NULL;
        x->num = k->n < sizeof buf - 1 ? strtod(buf, NULL) : js_str_to_num(k->s, k->n);
        return x;
    }
    case T_STR: {
        node *x = mk(P, N_STR, k);
        if (!x) return NULL;
        if (!is(P, T_STR)) {
            x->str = ts_new(P->pool, k->s, k->n);
        } else {
            sbuf b;
            sb_init(&b, P->pool);
            sb_put(&b, k->s, k->n);
            while (is(P, T_STR)) {
                sb_put(&b, P->t[P->cur].s, P->t[P->cur].n);
                P->cur++;
            }
            x->str = sb_str(&b);
        }
        if (!x->str) return fail(P, "out of memory");
        return x;
    }
    case T_IDENT: {
        node *x = mk(P, N_IDENT, k);
        if (!x || !(x->str = ts_new(P->pool, k->s, k->n))) return fail(P, "out of memory");
        return x;
    }
    case T_LPAREN: {
        if (++P->depth > TM_MAX_PARSE_DEPTH)
            return fail(P, "expression nesting exceeds the limit of %d", TM_MAX_PARSE_DEPTH);
        node *x = parse_seq(P, false);
        P->depth--;
        if (!x || !expect(P, T_RPAREN, "Expected closing parenthesis")) return NULL;
        return x;
    }
    case T_LBRACKET: {
        nlist l = {0};
        while (!is(P, T_RBRACKET)) {
            if (P->cur >= P->n) return fail(P, "Expected closing square bracket, got end of template");
            if (!nl_push(P, &l, parse_expr(P))) return NULL;
            if (is(P, T_COMMA)) P->cur++;
        }
        P->cur++;
        node *x = mk(P, N_ARRAY, k);
        if (!x) return NULL;
        x->list = l.v;
        x->n_list = l.n;
        return x;
    }
    case T_LBRACE: {
        nlist keys = {0}, vals = {0};
        while (!is(P, T_RBRACE)) {
            if (P->cur >= P->n) return fail(P, "Expected closing curly bracket, got end of template");
            if (!nl_push(P, &keys, parse_expr(P))) return NULL;
            if (!expect(P, T_COLON, "Expected colon between key and value in object literal"))
                return NULL;
            if (!nl_push(P, &vals, parse_expr(P))) return NULL;
            if (is(P, T_COMMA)) P->cur++;
        }
        P->cur++;
        node *x = mk(P, N_OBJECT, k);
        if (!x) return NULL;
        x->list = keys.v;
        x->n_list = keys.n;
        x->list2 = vals.v;
        x->n_list2 = vals.n;
        return x;
    }
    default:
        P->cur--;
        return fail(P, "Unexpected token: %s '%.*s'", tok_type_name(k->t), (int)k->n, k->s);
    }
}

/* Parses statements until one of the names (as {% name ...) is next. */
static bool parse_until(parser *P, const char *const *names, nlist *body, const char *what) {
    while (!is_stmt(P, names)) {
        if (P->cur >= P->n) {
            fail(P, "Unexpected end of template: expected {%% %s %%}", what);
            return false;
        }
        if (!nl_push(P, body, parse_any(P))) return false;
    }
    return true;
}

static node *parse_if(parser *P, const token *at) {
    node *x = mk(P, N_IF, at);
    if (!x || !(x->a = parse_expr(P))) return NULL;
    if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    nlist body = {0}, alt = {0};
    if (!parse_until(P, stops, &body, "endif")) return NULL;
    if (is_stmt(P, (const char *const[]){"elif", NULL})) {
        const token *eat = &P->t[P->cur + 1];
        P->cur += 2;
        if (!nl_push(P, &alt, parse_if(P, eat))) return NULL;
    } else if (is_stmt(P, (const char *const[]){"else", NULL})) {
        P->cur += 2;
        if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
        if (!parse_until(P, endif, &alt, "endif")) return NULL;
    }
    x->list = body.v;
    x->n_list = body.n;
    x->list2 = alt.v;
    x->n_list2 = alt.n;
    return x;
}

static bool parse_end(parser *P, const char *name) {
    return expect(P, T_OPEN_STMT, "Expected {% token") && expect_ident(P, name) &&
           expect(P, T_CLOSE_STMT, "Expected %} token");
}

static node *parse_stmt(parser *P) {
    const token *open = &P->t[P->cur];
    P->cur++; /* {% */
    if (P->cur >= P->n) return fail(P, "Unexpected end of template after {%%");
    if (P->t[P->cur].t != T_IDENT) return fail(P, "Unknown statement, got %s", tok_type_name(P->t[P->cur].t));
    const token *name = &P->t[P->cur];
    node *x = NULL;
    (void)open;
    if (tok_eq(name, "set")) {
        P->cur++;
        x = mk(P, N_SET, name);
        if (!x || !(x->a = parse_seq(P, false))) return NULL;
        if (is(P, T_EQUALS)) {
            P->cur++;
            if (!(x->b = parse_seq(P, false))) return NULL;
        } else {
            if (!expect(P, T_CLOSE_STMT, "Expected %} token")) return NULL;
            nlist body = {0};
            if (!parse_until(P, (const char *const[]){"endset", NULL}, &body, "endset")) return NULL;
            x->list = body.v;
            x->n_list = body.n;
            if (!expect(P, T_OPEN_STMT, "Expected {% token") || !expect_ident(P, "endset")) return NULL;
        }
        if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
    } else if (tok_eq(name, "if")) {
        P->cur++;
        x = parse_if(P, name);
        if (!x || !parse_end(P, "endif")) return NULL;
    } else if (tok_eq(name, "macro")) {
        P->cur++;
        x = mk(P, N_MACRO, name);
        node *id = parse_primary(P);
        if (!x || !id) return NULL;
        if (id->k != N_IDENT) return fail(P, "Expected identifier following macro statement");
        x->str = id->str;
        if (!parse_args(P, 1, &x->list, &x->n_list)) return NULL;
        if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
        nlist body = {0};
        if (!parse_until(P, (const char *const[]){"endmacro", NULL}, &body, "endmacro")) return NULL;
        x->list2 = body.v;
        x->n_list2 = body.n;
        if (!parse_end(P, "endmacro")) return NULL;
    } else if (tok_eq(name, "for")) {
        P->cur++;
        x = mk(P, N_FOR, name);
        if (!x || !(x->a = parse_seq(P, true))) return NULL;
        if (x->a->k != N_IDENT && x->a->k != N_TUPLE)
            return fail(P, "Expected identifier/tuple for the loop variable");
        if (!expect_ident(P, "in")) return NULL;
        if (!(x->b = parse_expr(P))) return NULL;
        if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
        nlist body = {0}, alt = {0};
        if (!parse_until(P, (const char *const[]){"endfor", "else", NULL}, &body, "endfor")) return NULL;
        if (is_stmt(P, (const char *const[]){"else", NULL})) {
            P->cur += 2;
            if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
            if (!parse_until(P, (const char *const[]){"endfor", NULL}, &alt, "endfor")) return NULL;
        }
        x->list = body.v;
        x->n_list = body.n;
        x->list2 = alt.v;
        x->n_list2 = alt.n;
        if (!parse_end(P, "endfor")) return NULL;
    } else if (tok_eq(name, "call")) {
        P->cur++;
        x = mk(P, N_CALLSTMT, name);
        if (!x) return NULL;
        if (is(P, T_LPAREN)) {
            x->op = 1;
            if (!parse_args(P, 1, &x->list, &x->n_list)) return NULL;
        }
        node *callee = parse_primary(P);
        if (!callee) return NULL;
        if (callee->k != N_IDENT) return fail(P, "Expected identifier following call statement");
        node *c = mk(P, N_CALL, name);
        if (!c) return NULL;
        c->a = callee;
        if (!parse_args(P, 0, &c->list, &c->n_list)) return NULL;
        x->a = c;
        if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
        nlist body = {0};
        if (!parse_until(P, (const char *const[]){"endcall", NULL}, &body, "endcall")) return NULL;
        x->list2 = body.v;
        x->n_list2 = body.n;
        if (!parse_end(P, "endcall")) return NULL;
    } else if (tok_eq(name, "break") || tok_eq(name, "continue")) {
        P->cur++;
        x = mk(P, tok_eq(name, "break") ? N_BREAK : N_CONTINUE, name);
        if (!x || !expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
    } else if (tok_eq(name, "filter")) {
        P->cur++;
        x = mk(P, N_FILTERSTMT, name);
        node *f = parse_primary(P);
        if (!x || !f) return NULL;
        if (f->k == N_IDENT && is(P, T_LPAREN)) f = parse_call(P, f);
        if (!f) return NULL;
        if (f->k != N_IDENT && !(f->k == N_CALL && f->a->k == N_IDENT))
            return fail(P, "Expected identifier or call for the filter block");
        x->a = f;
        if (!expect(P, T_CLOSE_STMT, "Expected closing statement token")) return NULL;
        nlist body = {0};
        if (!parse_until(P, (const char *const[]){"endfilter", NULL}, &body, "endfilter")) return NULL;
        x->list = body.v;
        x->n_list = body.n;
        if (!parse_end(P, "endfilter")) return NULL;
    } else {
        return fail(P, "Unknown statement type: %.*s", (int)name->n, name->s);
    }
    return x;
}

static node *parse_any(parser *P) {
    const token *k = &P->t[P->cur];
    if (++P->depth > TM_MAX_PARSE_DEPTH)
        return fail(P, "block nesting exceeds the limit of %d", TM_MAX_PARSE_DEPTH);
    node *x = NULL;
    switch (k->t) {
    case T_COMMENT:
        P->cur++;
        x = mk(P, N_COMMENT, k);
        break;
    case T_TEXT:
        P->cur++;
        x = mk(P, N_STR, k);
        if (x && !(x->str = ts_new(P->pool, k->s, k->n))) x = fail(P, "out of memory");
        break;
    case T_OPEN_STMT: x = parse_stmt(P); break;
    case T_OPEN_EXPR:
        P->cur++;
        x = parse_expr(P);
        if (x && !expect(P, T_CLOSE_EXPR, "Expected closing expression token")) x = NULL;
        break;
    default: x = fail(P, "Unexpected token type: %s '%.*s'", tok_type_name(k->t), (int)k->n, k->s);
    }
    P->depth--;
    return x;
}

bm_status tm_parse(tm_pool *p, const token *toks, size_t n, node ***body, size_t *n_body,
                   bm_err *err) {
    parser Px = {.pool = p, .t = toks, .n = n, .err = err};
    nlist l = {0};
    while (Px.cur < n) {
        if (!nl_push(&Px, &l, parse_any(&Px))) {
            if (!Px.failed) fail(&Px, "out of memory");
            return err ? err->code : BM_EFORMAT;
        }
    }
    *body = l.v;
    *n_body = l.n;
    return BM_OK;
}
