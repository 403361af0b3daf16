/* Internal form of a compiled JSON grammar: a tree of schema nodes shared by the schema
 * compiler (json_schema.c) and the matcher (grammar.c). Every node carries its shortest
 * completion text, computed at compile time. */
#ifndef BAIMO_GRAMMAR_INT_H
#define BAIMO_GRAMMAR_INT_H

#include "baimo/grammar.h"

enum {
    T_OBJ = 1, T_ARR = 2, T_STR = 4, T_NUM = 8, T_INT = 16, T_BOOL = 32, T_NULL = 64,
    T_ALL = 127
};

#define GRAMMAR_MAX_PROPS 64
#define GRAMMAR_MAX_LITS 64

typedef struct gnode {
    unsigned types;
    /* object */
    int32_t n_props;
    const char **keys;
    uint32_t *key_len;
    struct gnode **props;
    uint64_t required;
    bool additional;           /* extra keys allowed (their values: any JSON) */
    /* array */
    struct gnode *items;       /* NULL: any JSON */
    int32_t min_items, max_items;
    /* enum / const: the allowed values as compact JSON texts */
    int32_t n_lits;
    const char **lits;
    uint32_t *lit_len;
    /* shortest completion */
    const char *min_text;
    uint32_t min_len;
} gnode;

struct bm_grammar {
    bm_arena arena;
    gnode *root;
    gnode any;      /* any JSON value */
    gnode lit_bool; /* true / false */
    gnode lit_null; /* null */
};

/* Sets up the built-in nodes (any, bool, null) of a fresh grammar. */
void grammar_init_builtin(bm_grammar *g);

#endif
