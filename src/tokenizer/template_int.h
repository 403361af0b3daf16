/* Internal declarations of the chat-template interpreter (Jinja subset): memory pool, runtime
 * values, tokens, AST nodes, and the entry points shared by template_lex.c, template_parse.c,
 * template_value.c, template_eval.c and template_builtins.c. The semantics follow
 * @huggingface/jinja (the reference our tests compare against), including its JavaScript-isms:
 * loose `==`, UTF-16 string lengths, JS number formatting. Not part of the public API. */
#ifndef BAIMO_TEMPLATE_INT_H
#define BAIMO_TEMPLATE_INT_H

#include "baimo/base.h"
#include "baimo/template.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits --------------------------------------------------------------------------- */
#define TM_MAX_SOURCE (4u << 20)       /* template source bytes */
#define TM_MAX_OUTPUT (64u << 20)      /* rendered output / any one string */
#define TM_MAX_MEMORY (512u << 20)     /* all values of one render */
#define TM_MAX_PARSE_DEPTH 200         /* nesting of expressions and blocks */
#define TM_MAX_CALL_DEPTH 100          /* macro recursion */
#define TM_MAX_ITERATIONS 1000000      /* loop iterations over a whole render */
#define TM_MAX_RANGE 1000000           /* elements of range() */

/* ---- memory pool: bump allocation, freed all at once ---------------------------------- */
typedef struct tm_pool_block tm_pool_block;
typedef struct tm_pool {
    tm_pool_block *head;
    size_t total, limit;
    bool failed;
} tm_pool;
void tm_pool_init(tm_pool *p, size_t limit);
void tm_pool_fini(tm_pool *p);
/* 8-byte aligned, zeroed; NULL when the limit would be exceeded (p->failed set). */
void *tm_alloc(tm_pool *p, size_t n);

/* ---- values --------------------------------------------------------------------------- */
typedef enum {
    TV_UNDEF,
    TV_NULL,
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STR,
    TV_ARRAY,
    TV_TUPLE,
    TV_OBJECT,
    TV_KWARGS,
    TV_NS,
    TV_FUNC,
} tv_kind;

typedef struct tstr {
    size_t n;
    char s[]; /* NUL-terminated */
} tstr;

struct tv;
typedef struct tarr {
    size_t n, cap;
    struct tv *v;
} tarr;

typedef struct tmap {
    size_t n, cap;
    tstr **keys;
    struct tv *vals;
} tmap;

typedef struct tfunc tfunc;

typedef struct tv {
    tv_kind k;
    union {
        bool b;
        double n;
        tstr *s;
        tarr *a;
        tmap *m;
        tfunc *f;
    } u;
} tv;

static inline tv tv_undef(void) { return (tv){.k = TV_UNDEF}; }
static inline tv tv_null(void) { return (tv){.k = TV_NULL}; }
static inline tv tv_bool(bool b) { return (tv){.k = TV_BOOL, .u.b = b}; }
static inline tv tv_int(double n) { return (tv){.k = TV_INT, .u.n = n}; }
static inline tv tv_float(double n) { return (tv){.k = TV_FLOAT, .u.n = n}; }
static inline bool tv_is_num(tv v) { return v.k == TV_INT || v.k == TV_FLOAT; }
static inline bool tv_is_arr(tv v) { return v.k == TV_ARRAY || v.k == TV_TUPLE; }
static inline bool tv_is_obj(tv v) { return v.k == TV_OBJECT || v.k == TV_KWARGS; }
static inline bool tv_is_container(tv v) { return tv_is_obj(v) || v.k == TV_NS; }

/* Reference type names ("StringValue"), used in error messages exactly as the reference. */
const char *tv_type_name(tv_kind k);

/* ---- string builder (pool-backed) ----------------------------------------------------- */
typedef struct sbuf {
    tm_pool *pool;
    char *p;
    size_t n, cap;
    bool failed; /* pool or size limit hit */
} sbuf;
void sb_init(sbuf *b, tm_pool *p);
void sb_put(sbuf *b, const char *s, size_t n);
static inline void sb_puts(sbuf *b, const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    sb_put(b, s, n);
}
void sb_putc(sbuf *b, char c);
/* Returns the content as a pool string (NULL on failure). */
tstr *sb_str(sbuf *b);

/* ---- value helpers (template_value.c) ------------------------------------------------- */
tstr *ts_new(tm_pool *p, const char *s, size_t n);
static inline tstr *ts_cstr(tm_pool *p, const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return ts_new(p, s, n);
}
tv tv_str(tm_pool *p, const char *s, size_t n); /* TV_UNDEF on allocation failure */
tv tv_strs(tstr *s);
tarr *ta_new(tm_pool *p, size_t cap);
bool ta_push(tm_pool *p, tarr *a, tv v);
tmap *tmap_new(tm_pool *p, size_t cap);
/* Sets key (insertion order kept; an existing key keeps its place). */
bool tmap_set(tm_pool *p, tmap *m, const char *k, size_t kn, tv v);
tv *tmap_get(const tmap *m, const char *k, size_t kn);

/* JS truthiness (the reference's __bool__). */
bool tv_truthy(tv v);
/* Number formatting as JavaScript's Number#toString. buf >= 32 bytes. */
void js_num_str(double v, char *buf);
/* Appends the value as it renders in {{ }} (RuntimeValue#toString). false on error. */
bool tv_render(sbuf *b, tv v);
/* Appends String(value.value): what `+` and `~` concatenate. */
bool tv_raw_str(sbuf *b, tv v);
/* JSON serialisation (the reference's toJSON). indent <= 0: none. seps NULL: default.
 * undef_null: undefined -> null (else "undefined"). On an unserialisable value returns false
 * and sets *bad to its type. */
typedef struct tojson_opts {
    int indent;
    bool ensure_ascii, sort_keys, undef_null;
    const char *item_sep, *key_sep;
} tojson_opts;
bool tv_tojson(sbuf *b, tv v, const tojson_opts *o, int depth, tv_kind *bad);
/* Loose (==) and strict (===) equality of the values' .value, as JavaScript. */
bool tv_loose_eq(tm_pool *p, tv a, tv b);
bool tv_strict_eq(tv a, tv b);
/* Converts JSON to values (JavaScript object key order: integer keys first). */
tv tv_from_json(tm_pool *p, json_t *j, int depth);

/* JavaScript whitespace (String#trim set): byte length of the whitespace char at s, or 0. */
size_t js_space_len(const char *s, size_t n);
/* Byte length of the whitespace char ending at s[n-1], or 0. */
size_t js_space_len_back(const char *s, size_t n);
/* Number of UTF-16 code units of s (JS String#length). */
size_t js_utf16_len(const char *s, size_t n);
/* Case mapping over code points (ASCII exact; others via utf8proc simple mapping). */
tstr *js_upper(tm_pool *p, const char *s, size_t n);
tstr *js_lower(tm_pool *p, const char *s, size_t n);
/* JS ToNumber of a string. */
double js_str_to_num(const char *s, size_t n);

/* ---- tokens and AST ------------------------------------------------------------------- */
typedef enum {
    T_TEXT,
    T_NUM,
    T_STR,
    T_IDENT,
    T_EQUALS,
    T_LPAREN,
    T_RPAREN,
    T_OPEN_STMT,
    T_CLOSE_STMT,
    T_OPEN_EXPR,
    T_CLOSE_EXPR,
    T_LBRACKET,
    T_RBRACKET,
    T_LBRACE,
    T_RBRACE,
    T_COMMA,
    T_DOT,
    T_COLON,
    T_PIPE,
    T_ADD,   /* + - ~ */
    T_MUL,   /* * / // % */
    T_POW,   /* ** */
    T_CMP,   /* < > <= >= == != */
    T_UNARY, /* - + not followed by a number */
    T_COMMENT,
} tok_type;

typedef struct token {
    tok_type t;
    const char *s; /* value (escapes resolved) */
    size_t n;
    uint32_t line, col; /* in the original source, 1-based */
} token;

const char *tok_type_name(tok_type t);
/* Preprocesses (trim_blocks, lstrip_blocks, generation tags) and tokenizes. Tokens live in
 * the pool. BM_EFORMAT "template:LINE:COL: ..." on error. */
bm_status tm_lex(tm_pool *p, const char *src, size_t len, token **out, size_t *n_out, bm_err *err);

typedef enum {
    N_STR,
    N_INT,
    N_FLOAT,
    N_IDENT,
    N_ARRAY,
    N_TUPLE,
    N_OBJECT,
    N_MEMBER,
    N_CALL,
    N_BINARY,
    N_UNARY,
    N_FILTER,
    N_TEST,
    N_SELECT,
    N_TERNARY,
    N_SLICE,
    N_KWARG,
    N_SPREAD,
    N_KWSPREAD,
    N_IF,
    N_FOR,
    N_SET,
    N_MACRO,
    N_CALLSTMT,
    N_FILTERSTMT,
    N_BREAK,
    N_CONTINUE,
    N_COMMENT,
} node_kind;

typedef enum {
    OP_AND,
    OP_OR,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_IN,
    OP_NOTIN,
    OP_ADD,
    OP_SUB,
    OP_CONCAT,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_NOT,
    OP_NEG,
    OP_POS,
} op_kind;
const char *op_name(int op);

typedef struct node node;
struct node {
    node_kind k;
    int op;         /* operator; member: computed; test: negate; callstmt: has caller args */
    uint32_t line, col;
    double num;     /* N_INT, N_FLOAT */
    tstr *str;      /* N_STR value, N_IDENT/N_TEST/N_KWARG/N_MACRO name */
    node *a, *b, *c;
    node **list, **list2;
    size_t n_list, n_list2;
};
/* If: a=test list=body list2=else. For: a=loopvar b=iterable list=body list2=else.
 * Set: a=target b=value|NULL list=body. Macro: str=name list=params list2=body.
 * CallStmt: a=call list=caller params list2=body. FilterStmt: a=filter list=body.
 * Member: a=object b=property op=computed. Call: a=callee list=args. Filter: a=operand
 * b=filter(ident|call). Test: a=operand str=name op=negate. Select: a=lhs b=test.
 * Ternary: a=cond b=then c=else. Slice: a,b,c (NULL = omitted). Object: list=keys
 * list2=values. Kwarg: str=name a=value. Spread/KwSpread: a. */

struct bm_tmpl {
    tm_pool pool;
    node **body;
    size_t n_body;
};

bm_status tm_parse(tm_pool *p, const token *toks, size_t n, node ***body, size_t *n_body,
                   bm_err *err);

/* ---- evaluation (template_eval.c, template_builtins.c) -------------------------------- */
typedef struct env env;
struct env {
    env *parent;
    tmap vars;
};

enum { R_OK = 0, R_ERR, R_BREAK, R_CONT };

typedef struct interp {
    tm_pool *pool;
    bm_err *err;
    uint64_t iterations;
    int depth;
    bool raised; /* error came from raise_exception */
} interp;

typedef enum {
    FN_NAMESPACE,
    FN_RAISE,
    FN_RANGE,
    FN_STRFTIME,
    FN_MACRO,
    FN_CALLER,
    FN_METHOD,
} fn_kind;

struct tfunc {
    fn_kind k;
    int method;       /* FN_METHOD: index into the method table */
    tv self;          /* FN_METHOD: receiver */
    const node *decl; /* FN_MACRO: the macro; FN_CALLER: the call statement */
    env *def_env;     /* FN_CALLER: environment of the call statement */
};

/* Runtime error at node position; returns R_ERR. */
int tm_fail(interp *in, const node *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tm_oom(interp *in, const node *at);
env *env_new(interp *in, env *parent);
bool env_set(interp *in, env *e, const char *name, size_t n, tv v);
tv env_get(const env *e, const char *name, size_t n);
int tm_eval(interp *in, const node *x, env *e, tv *out);
int tm_exec_block(interp *in, node *const *body, size_t n, env *e, sbuf *out);
int tm_call(interp *in, const node *at, tv fn, tarr *args, env *e, tv *out);
int tm_eval_args(interp *in, node *const *args, size_t n, env *e, tarr **pos, tmap **kw);

/* builtins */
int tm_member_builtin(interp *in, const node *at, tv obj, const char *name, size_t n, tv *out);
int tm_call_method(interp *in, const node *at, tfunc *f, tarr *args, tv *out);
int tm_apply_filter(interp *in, const node *filter, tv operand, env *e, tv *out);
int tm_apply_test(interp *in, const node *at, const char *name, tv operand, tv arg, bool has_arg,
                  bool *out);
bool tm_test_exists(const char *name);

#endif
