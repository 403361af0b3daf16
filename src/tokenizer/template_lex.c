/* Chat-template lexer: preprocessing and tokenization exactly as @huggingface/jinja's
 * tokenize(src, {lstrip_blocks: true, trim_blocks: true}) (the options its Template passes):
 *   1. one trailing "\n" of the template is removed;
 *   2. lstrip_blocks: spaces/tabs from a line start up to "{#", "{%" or "{-" are removed;
 *   3. trim_blocks: a "\n" right after "#}", "%}" or "-}" is removed (anywhere in the text);
 *   4. transformers' {% generation %} / {% endgeneration %} tags are dropped (honouring -).
 * Then "{%-"/"{{-"/"{#-" strip trailing whitespace of the text before, "-%}"/"-}}"/"-#}"
 * skip whitespace after (JS \s set). Positions map back to the original source for errors. */
#include "template_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tok_type_name(tok_type t) {
    static const char *names[] = {
        "Text",         "NumericLiteral",    "StringLiteral",      "Identifier",
        "Equals",       "OpenParen",         "CloseParen",         "OpenStatement",
        "CloseStatement", "OpenExpression",  "CloseExpression",    "OpenSquareBracket",
        "CloseSquareBracket", "OpenCurlyBracket", "CloseCurlyBracket", "Comma",
        "Dot",          "Colon",             "Pipe",               "AdditiveBinaryOperator",
        "MultiplicativeBinaryOperator", "ExponentiationBinaryOperator",
        "ComparisonBinaryOperator", "UnaryOperator", "Comment",
    };
    return names[t];
}

typedef struct lexer {
    tm_pool *pool;
    const char *orig;
    size_t orig_n;
    char *s;      /* preprocessed text */
    size_t n;
    uint32_t *map; /* s offset -> orig offset */
    size_t pos;
    token *toks;
    size_t n_toks, cap;
    int depth; /* curly bracket depth */
    /* incremental line/col */
    size_t lc_off;
    uint32_t line, col;
    bm_err *err;
} lexer;

static void line_col(lexer *L, size_t off, uint32_t *line, uint32_t *col) {
    if (off < L->lc_off) {
        L->lc_off = 0;
        L->line = 1;
        L->col = 1;
    }
    for (; L->lc_off < off && L->lc_off < L->orig_n; L->lc_off++) {
        unsigned char c = (unsigned char)L->orig[L->lc_off];
        if (c == '\n') {
            L->line++;
            L->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            L->col++;
        }
    }
    *line = L->line;
    *col = L->col;
}

static size_t orig_off(const lexer *L, size_t p) { return p < L->n ? L->map[p] : L->orig_n; }

static bm_status lex_fail(lexer *L, size_t p, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint32_t line, col;
    line_col(L, orig_off(L, p), &line, &col);
    return bm_err_set(L->err, BM_EFORMAT, "template:%u:%u: %s", line, col, msg);
}

/* Removes bytes flagged in drop[] from (s, map). */
static void compact(char *s, uint32_t *map, size_t *n, const bool *drop) {
    size_t o = 0;
    for (size_t i = 0; i < *n; i++)
        if (!drop[i]) {
            s[o] = s[i];
            map[o] = map[i];
            o++;
        }
    *n = o;
}

static bool line_start(const char *s, size_t i) {
    if (i == 0) return true;
    if (s[i - 1] == '\n' || s[i - 1] == '\r') return true;
    return i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x80 &&
           ((unsigned char)s[i - 1] == 0xA8 || (unsigned char)s[i - 1] == 0xA9);
}

static void preprocess(lexer *L, bool *drop) {
    char *s = L->s;
    size_t n = L->n;
    /* lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1" */
    memset(drop, 0, n);
    for (size_t i = 0; i < n; i++) {
        if (!line_start(s, i)) continue;
        size_t j = i;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
        if (j > i && j + 1 < n && s[j] == '{' && (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-'))
            for (size_t k = i; k < j; k++) drop[k] = true;
        if (j > i) i = j - 1;
    }
    compact(s, L->map, &L->n, drop);
    n = L->n;
    /* trim_blocks: /([#%-]})\n/g -> "$1" */
    memset(drop, 0, n);
    for (size_t i = 0; i + 2 < n; i++) {
        if ((s[i] == '#' || s[i] == '%' || s[i] == '-') && s[i + 1] == '}' && s[i + 2] == '\n') {
            drop[i + 2] = true;
            i += 2;
        }
    }
    compact(s, L->map, &L->n, drop);
    n = L->n;
    /* /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs -> (lstrip ? "" : before) +
     * (rstrip ? "" : after) */
    memset(drop, 0, n);
    size_t from = 0;
    for (size_t q = 0; q + 1 < n; q++) {
        if (s[q] != '{' || s[q + 1] != '%') continue;
        size_t j = q + 2, l;
        bool lstrip = false, rstrip = false;
        if (j < n && s[j] == '-') {
            lstrip = true;
            j++;
        }
        while (j < n && (l = js_space_len(s + j, n - j))) j += l;
        if (j + 3 <= n && !memcmp(s + j, "end", 3) && j + 13 <= n && !memcmp(s + j + 3, "generation", 10))
            j += 3;
        if (j + 10 > n || memcmp(s + j, "generation", 10)) continue;
        j += 10;
        while (j < n && (l = js_space_len(s + j, n - j))) j += l;
        if (j < n && s[j] == '-') {
            rstrip = true;
            j++;
        }
        if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') continue;
        j += 2;
        size_t start = q;
        while (start > from && (l = js_space_len_back(s + from, start - from))) start -= l;
        size_t end = j;
        while (end < n && (l = js_space_len(s + end, n - end))) end += l;
        for (size_t k = q; k < j; k++) drop[k] = true;
        if (lstrip)
            for (size_t k = start; k < q; k++) drop[k] = true;
        if (rstrip)
            for (size_t k = j; k < end; k++) drop[k] = true;
        from = end;
        q = end - 1;
    }
    compact(s, L->map, &L->n, drop);
}

static bool push(lexer *L, tok_type t, const char *s, size_t n, size_t at) {
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        token *nt = tm_alloc(L->pool, cap * sizeof *nt);
        if (!nt) return false;
        if (L->n_toks) memcpy(nt, L->toks, L->n_toks * sizeof *nt);
        L->toks = nt;
        L->cap = cap;
    }
    token *k = &L->toks[L->n_toks++];
    k->t = t;
    k->s = s;
    k->n = n;
    line_col(L, orig_off(L, at), &k->line, &k->col);
    return true;
}

static tok_type last_type(const lexer *L) {
    return L->n_toks ? L->toks[L->n_toks - 1].t : (tok_type)-1;
}

static void strip_trailing(lexer *L) {
    if (!L->n_toks || L->toks[L->n_toks - 1].t != T_TEXT) return;
    token *k = &L->toks[L->n_toks - 1];
    size_t l;
    while (k->n && (l = js_space_len_back(k->s, k->n))) k->n -= l;
    if (!k->n) L->n_toks--;
}

static void skip_ws(lexer *L) {
    size_t l;
    while (L->pos < L->n && (l = js_space_len(L->s + L->pos, L->n - L->pos))) L->pos += l;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_word(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* consumeWhile(c => c !== quote) with escapes; returns the unescaped string. */
static bm_status lex_string(lexer *L, char quote, char **out, size_t *n_out) {
    sbuf b;
    sb_init(&b, L->pool);
    size_t start = L->pos;
    while (L->pos < L->n && L->s[L->pos] != quote) {
        char c = L->s[L->pos];
        if (c == '\\') {
            L->pos++;
            if (L->pos >= L->n) return lex_fail(L, start, "Unexpected end of input");
            char e = L->s[L->pos++];
            if (e == 'x' || e == 'u') {
                size_t len = e == 'x' ? 2 : 4;
                uint32_t cp = 0;
                for (size_t i = 0; i < len; i++) {
                    char h = L->pos + i < L->n ? L->s[L->pos + i] : 0;
                    int d = is_digit(h) ? h - '0' : (h | 32) >= 'a' && (h | 32) <= 'f' ? (h | 32) - 'a' + 10 : -1;
                    if (d < 0)
                        return lex_fail(L, L->pos, "Invalid hexadecimal escape sequence: \\%c%.*s", e,
                                        (int)(L->n - L->pos < len ? L->n - L->pos : len), L->s + L->pos);
                    cp = cp * 16 + (uint32_t)d;
                }
                L->pos += len;
                uint8_t enc[4];
                int el = bm_utf8_encode(cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp, enc);
                sb_put(&b, (const char *)enc, (size_t)el);
                continue;
            }
            const char *m = NULL;
            switch (e) {
            case 'n': m = "\n"; break;
            case 't': m = "\t"; break;
            case 'r': m = "\r"; break;
            case 'b': m = "\b"; break;
            case 'f': m = "\f"; break;
            case 'v': m = "\v"; break;
            case '\'': m = "'"; break;
            case '"': m = "\""; break;
            case '\\': m = "\\"; break;
            }
            if (!m) return lex_fail(L, L->pos - 1, "Unexpected escaped character: %c", e);
            sb_puts(&b, m);
            continue;
        }
        sb_putc(&b, c);
        L->pos++;
        if (L->pos >= L->n) return lex_fail(L, start, "Unexpected end of input");
    }
    if (L->pos >= L->n) return lex_fail(L, start, "Unexpected end of input");
    if (b.failed) return bm_err_set(L->err, BM_ENOMEM, "template: out of memory");
    *out = b.p ? b.p : "";
    *n_out = b.n;
    return BM_OK;
}

static size_t digits(lexer *L) {
    size_t a = L->pos;
    while (L->pos < L->n && is_digit(L->s[L->pos])) L->pos++;
    return L->pos - a;
}

bm_status tm_lex(tm_pool *p, const char *src, size_t len, token **out, size_t *n_out, bm_err *err) {
    lexer Lx = {.pool = p, .orig = src, .orig_n = len, .err = err, .line = 1, .col = 1};
    lexer *L = &Lx;
    if (len > TM_MAX_SOURCE)
        return bm_err_set(err, BM_ERANGE, "template: source of %zu bytes exceeds the limit of %u",
                          len, TM_MAX_SOURCE);
    L->s = tm_alloc(p, len + 1);
    L->map = tm_alloc(p, (len + 1) * sizeof *L->map);
    bool *drop = tm_alloc(p, len + 1);
    if (!L->s || !L->map || !drop) return bm_err_set(err, BM_ENOMEM, "template: out of memory");
    memcpy(L->s, src, len);
    for (size_t i = 0; i < len; i++) L->map[i] = (uint32_t)i;
    L->n = len;
    if (L->n && L->s[L->n - 1] == '\n') L->n--;
    preprocess(L, drop);
    const char *s = L->s;
    size_t n = L->n;
#define PUSH(t, str, len_, at)                                                                 \
    do {                                                                                       \
        if (!push(L, t, str, len_, at)) return bm_err_set(err, BM_ENOMEM, "template: out of memory"); \
    } while (0)
    while (L->pos < n) {
        tok_type lt = last_type(L);
        if (lt == (tok_type)-1 || lt == T_CLOSE_STMT || lt == T_CLOSE_EXPR || lt == T_COMMENT) {
            size_t a = L->pos;
            while (L->pos < n && !(s[L->pos] == '{' && L->pos + 1 < n &&
                                   (s[L->pos + 1] == '%' || s[L->pos + 1] == '{' || s[L->pos + 1] == '#')))
                L->pos++;
            if (L->pos > a) {
                PUSH(T_TEXT, s + a, L->pos - a, a);
                continue;
            }
        }
        size_t at = L->pos;
        if (s[at] == '{' && at + 1 < n && s[at + 1] == '#') {
            L->pos += 2;
            bool strip_before = L->pos < n && s[L->pos] == '-';
            if (strip_before) L->pos++;
            size_t c0 = L->pos;
            while (!(L->pos + 1 < n && s[L->pos] == '#' && s[L->pos + 1] == '}')) {
                if (L->pos + 2 >= n) return lex_fail(L, at, "Missing end of comment tag");
                L->pos++;
            }
            size_t cn = L->pos - c0;
            bool strip_after = cn && s[c0 + cn - 1] == '-';
            if (strip_after) cn--;
            if (strip_before) strip_trailing(L);
            PUSH(T_COMMENT, s + c0, cn, at);
            L->pos += 2;
            if (strip_after) skip_ws(L);
            continue;
        }
        if (at + 2 < n && s[at] == '{' && s[at + 1] == '%' && s[at + 2] == '-') {
            strip_trailing(L);
            PUSH(T_OPEN_STMT, "{%", 2, at);
            L->pos += 3;
            continue;
        }
        if (at + 2 < n && s[at] == '{' && s[at + 1] == '{' && s[at + 2] == '-') {
            strip_trailing(L);
            PUSH(T_OPEN_EXPR, "{{", 2, at);
            L->depth = 0;
            L->pos += 3;
            continue;
        }
        skip_ws(L);
        if (L->pos >= n) break;
        at = L->pos;
        if (at + 2 < n && s[at] == '-' && (s[at + 1] == '%' || s[at + 1] == '}') && s[at + 2] == '}') {
            PUSH(s[at + 1] == '%' ? T_CLOSE_STMT : T_CLOSE_EXPR, s[at + 1] == '%' ? "%}" : "}}", 2, at);
            L->pos += 3;
            skip_ws(L);
            continue;
        }
        char c = s[at];
        if (c == '-' || c == '+') {
            lt = last_type(L);
            if (lt == T_TEXT || lt == (tok_type)-1) return lex_fail(L, at, "Unexpected character: %c", c);
            if (!(lt == T_IDENT || lt == T_NUM || lt == T_STR || lt == T_RPAREN || lt == T_RBRACKET)) {
                L->pos++;
                size_t nd = digits(L);
                if (nd && L->pos + 1 < n && s[L->pos] == '.' && is_digit(s[L->pos + 1])) {
                    L->pos++;
                    digits(L);
                }
                PUSH(nd ? T_NUM : T_UNARY, s + at, L->pos - at, at);
                continue;
            }
        }
        static const struct {
            const char *seq;
            tok_type t;
        } table[] = {
            {"{%", T_OPEN_STMT}, {"%}", T_CLOSE_STMT}, {"{{", T_OPEN_EXPR}, {"}}", T_CLOSE_EXPR},
            {"(", T_LPAREN},     {")", T_RPAREN},      {"{", T_LBRACE},     {"}", T_RBRACE},
            {"[", T_LBRACKET},   {"]", T_RBRACKET},    {",", T_COMMA},      {".", T_DOT},
            {":", T_COLON},      {"|", T_PIPE},        {"<=", T_CMP},       {">=", T_CMP},
            {"==", T_CMP},       {"!=", T_CMP},        {"<", T_CMP},        {">", T_CMP},
            {"+", T_ADD},        {"-", T_ADD},         {"~", T_ADD},        {"**", T_POW},
            {"*", T_MUL},        {"//", T_MUL},        {"/", T_MUL},        {"%", T_MUL},
            {"=", T_EQUALS},
        };
        bool matched = false;
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
            if (table[i].t == T_CLOSE_EXPR && L->depth > 0) continue;
            size_t sl = strlen(table[i].seq);
            if (at + sl <= n && !memcmp(s + at, table[i].seq, sl)) {
                PUSH(table[i].t, s + at, sl, at);
                if (table[i].t == T_OPEN_EXPR) L->depth = 0;
                else if (table[i].t == T_LBRACE) L->depth++;
                else if (table[i].t == T_RBRACE) L->depth--;
                L->pos += sl;
                matched = true;
                break;
            }
        }
        if (matched) continue;
        if (c == '\'' || c == '"') {
            L->pos++;
            char *str = NULL;
            size_t sn = 0;
            bm_status st = lex_string(L, c, &str, &sn);
            if (st) return st;
            PUSH(T_STR, str, sn, at);
            L->pos++;
            continue;
        }
        if (is_digit(c)) {
            digits(L);
            if (last_type(L) != T_DOT && L->pos + 1 < n && s[L->pos] == '.' && is_digit(s[L->pos + 1])) {
                L->pos++;
                digits(L);
            }
            PUSH(T_NUM, s + at, L->pos - at, at);
            continue;
        }
        if (is_word(c)) {
            while (L->pos < n && is_word(s[L->pos])) L->pos++;
            PUSH(T_IDENT, s + at, L->pos - at, at);
            continue;
        }
        uint32_t cp;
        int l = bm_utf8_decode((const uint8_t *)s + at, n - at, &cp);
        return lex_fail(L, at, "Unexpected character: %.*s", l ? l : 1, s + at);
    }
#undef PUSH
    *out = L->toks;
    *n_out = L->n_toks;
    return BM_OK;
}
