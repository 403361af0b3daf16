/* JSON Schema (a subset) to grammar nodes, parsed with Jansson. Supported: type (a name or a
 * list), properties, required, additionalProperties (boolean or a schema, treated as "any"),
 * enum, const, items, minItems, maxItems; annotations (title, description, default, ...) are
 * ignored; constraints the matcher cannot enforce (pattern, $ref, anyOf, minimum, ...) are
 * refused with BM_EUNSUPPORTED so output never silently violates the schema. Each node gets
 * its shortest completion text here. */
#include "sample/grammar_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_MAX_DEPTH 16
#define SCHEMA_MAX_ITEMS 64

static const char *const UNSUPPORTED[] = {
    "$ref", "anyOf", "oneOf", "allOf", "not", "pattern", "minLength", "maxLength", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "patternProperties",
    "minProperties", "maxProperties", "uniqueItems", "prefixItems", "if", "then", "else",
    "contains", "dependentRequired", "dependentSchemas", "propertyNames",
    "unevaluatedProperties", "unevaluatedItems"};

typedef struct cctx {
    bm_grammar *g;
    bm_err *err;
} cctx;

static char *dup_text(cctx *c, const char *s, size_t n) {
    return bm_arena_strdup(&c->g->arena, s, n, c->err);
}

static bm_status set_min(cctx *c, gnode *n) {
    /* candidates per allowed type; keep the shortest */
    char *best = NULL;
    size_t best_len = 0;
#define CAND(txt, len)                                                                         \
    do {                                                                                       \
        if (!best || (len) < best_len) {                                                       \
            best = (char *)(txt);                                                              \
            best_len = (len);                                                                  \
        }                                                                                      \
    } while (0)
    if (n->n_lits > 0) {
        for (int i = 0; i < n->n_lits; i++) CAND(n->lits[i], n->lit_len[i]);
    } else {
        if (n->types & (T_NUM | T_INT)) CAND("0", 1);
        if (n->types & T_STR) CAND("\"\"", 2);
        if (n->types & T_NULL) CAND("null", 4);
        if (n->types & T_BOOL) CAND("true", 4);
        if (n->types & T_ARR) {
            const char *im = n->items ? n->items->min_text : "0";
            size_t il = n->items ? n->items->min_len : 1, len = 2;
            len += (size_t)n->min_items * (il + 1);
            char *t = bm_arena_alloc(&c->g->arena, len + 1, c->err);
            if (!t) return BM_ENOMEM;
            size_t w = 0;
            t[w++] = '[';
            for (int i = 0; i < n->min_items; i++) {
                if (i) t[w++] = ',';
                memcpy(t + w, im, il);
                w += il;
            }
            t[w++] = ']';
            t[w] = 0;
            CAND(t, w);
        }
        if (n->types & T_OBJ) {
            size_t len = 2;
            for (int i = 0; i < n->n_props; i++)
                if (n->required >> i & 1) len += n->key_len[i] + n->props[i]->min_len + 4;
            char *t = bm_arena_alloc(&c->g->arena, len + 1, c->err);
            if (!t) return BM_ENOMEM;
            size_t w = 0;
            t[w++] = '{';
            for (int i = 0; i < n->n_props; i++) {
                if (!(n->required >> i & 1)) continue;
                if (w > 1) t[w++] = ',';
                t[w++] = '"';
                memcpy(t + w, n->keys[i], n->key_len[i]);
                w += n->key_len[i];
                t[w++] = '"';
                t[w++] = ':';
                memcpy(t + w, n->props[i]->min_text, n->props[i]->min_len);
                w += n->props[i]->min_len;
            }
            t[w++] = '}';
            t[w] = 0;
            CAND(t, w);
        }
    }
#undef CAND
    if (!best) return bm_err_set(c->err, BM_EINVAL, "json_schema: a node allows no value");
    n->min_text = best;
    n->min_len = (uint32_t)best_len;
    return BM_OK;
}

static bm_status type_bit(cctx *c, json_t *t, unsigned *bits) {
    static const struct { const char *name; unsigned bit; } TYPES[] = {
        {"object", T_OBJ}, {"array", T_ARR}, {"string", T_STR}, {"number", T_NUM},
        {"integer", T_INT}, {"boolean", T_BOOL}, {"null", T_NULL}};
    const char *s = json_string_value(t);
    if (!s) return bm_err_set(c->err, BM_EINVAL, "json_schema: \"type\" must be a string or a "
                              "list of strings");
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++)
        if (!strcmp(s, TYPES[i].name)) {
            *bits |= TYPES[i].bit;
            return BM_OK;
        }
    return bm_err_set(c->err, BM_EINVAL, "json_schema: unknown type '%.64s' (object, array, "
                      "string, number, integer, boolean, null)", s);
}

static bm_status compile(cctx *c, json_t *js, int depth, gnode **out);

static bm_status get_count(cctx *c, json_t *js, const char *key, int32_t dflt, int32_t *out) {
    json_t *v = json_object_get(js, key);
    *out = dflt;
    if (!v) return BM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bm_err_set(c->err, BM_EINVAL, "json_schema: %s must be a non-negative integer",
                          key);
    json_int_t x = json_integer_value(v);
    if (!strcmp(key, "minItems") && x > SCHEMA_MAX_ITEMS)
        return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: minItems %lld exceeds the "
                          "limit of %d", (long long)x, SCHEMA_MAX_ITEMS);
    *out = x > INT32_MAX ? INT32_MAX : (int32_t)x;
    return BM_OK;
}

static bm_status compile_object(cctx *c, json_t *js, gnode *n, int depth) {
    json_t *props = json_object_get(js, "properties");
    json_t *addl = json_object_get(js, "additionalProperties");
    json_t *req = json_object_get(js, "required");
    n->additional = !(addl && json_is_false(addl));
    if (props && !json_is_object(props))
        return bm_err_set(c->err, BM_EINVAL, "json_schema: \"properties\" must be an object");
    size_t np = props ? json_object_size(props) : 0;
    if (np > GRAMMAR_MAX_PROPS)
        return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: %zu properties exceed the "
                          "limit of %d", np, GRAMMAR_MAX_PROPS);
    n->n_props = (int32_t)np;
    if (np) {
        n->keys = bm_arena_calloc(&c->g->arena, np, sizeof *n->keys, c->err);
        n->key_len = bm_arena_calloc(&c->g->arena, np, sizeof *n->key_len, c->err);
        n->props = bm_arena_calloc(&c->g->arena, np, sizeof *n->props, c->err);
        if (!n->keys || !n->key_len || !n->props) return BM_ENOMEM;
        const char *key;
        json_t *val;
        int i = 0;
        json_object_foreach(props, key, val) {
            size_t kl = strlen(key);
            for (size_t j = 0; j < kl; j++)
                if ((unsigned char)key[j] < 0x20 || key[j] == '"' || key[j] == '\\')
                    return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: property name "
                                      "'%.64s' needs escaping (not supported)", key);
            if (!(n->keys[i] = dup_text(c, key, kl))) return BM_ENOMEM;
            n->key_len[i] = (uint32_t)kl;
            bm_status st = compile(c, val, depth + 1, &n->props[i]);
            if (st) return bm_err_wrap(c->err, "property '%.64s'", key);
            i++;
        }
    }
    if (req) {
        if (!json_is_array(req))
            return bm_err_set(c->err, BM_EINVAL, "json_schema: \"required\" must be a list");
        size_t i;
        json_t *r;
        json_array_foreach(req, i, r) {
            const char *k = json_string_value(r);
            if (!k) return bm_err_set(c->err, BM_EINVAL, "json_schema: \"required\" holds a "
                                      "non-string");
            int found = -1;
            for (int j = 0; j < n->n_props; j++)
                if (!strcmp(n->keys[j], k)) found = j;
            if (found < 0)
                return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: required key '%.64s' "
                                  "is not in \"properties\"", k);
            n->required |= 1ull << found;
        }
    }
    return BM_OK;
}

static bm_status compile(cctx *c, json_t *js, int depth, gnode **out) {
    if (depth > SCHEMA_MAX_DEPTH)
        return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: nesting deeper than %d",
                          SCHEMA_MAX_DEPTH);
    gnode *n = bm_arena_calloc(&c->g->arena, 1, sizeof *n, c->err);
    if (!n) return BM_ENOMEM;
    *out = n;
    if (json_is_true(js)) js = NULL; /* `true` schema: anything */
    if (js && !json_is_object(js))
        return bm_err_set(c->err, BM_EINVAL, "json_schema: a schema must be an object");
    for (size_t i = 0; js && i < sizeof UNSUPPORTED / sizeof *UNSUPPORTED; i++)
        if (json_object_get(js, UNSUPPORTED[i]))
            return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: keyword \"%s\" is not "
                              "supported", UNSUPPORTED[i]);
    json_t *type = js ? json_object_get(js, "type") : NULL;
    if (type && json_is_array(type)) {
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t) {
            bm_status st = type_bit(c, t, &n->types);
            if (st) return st;
        }
    } else if (type) {
        bm_status st = type_bit(c, type, &n->types);
        if (st) return st;
    } else if (js && json_object_get(js, "properties")) {
        n->types = T_OBJ;
    } else if (js && json_object_get(js, "items")) {
        n->types = T_ARR;
    } else {
        n->types = T_ALL;
    }
    if (!n->types) return bm_err_set(c->err, BM_EINVAL, "json_schema: empty \"type\" list");
    json_t *en = js ? json_object_get(js, "enum") : NULL, *cn = js ? json_object_get(js, "const")
                                                                 : NULL;
    if (en || cn) {
        if (en && (!json_is_array(en) || json_array_size(en) == 0))
            return bm_err_set(c->err, BM_EINVAL, "json_schema: \"enum\" must be a non-empty list");
        size_t nl = cn ? 1 : json_array_size(en);
        if (nl > GRAMMAR_MAX_LITS)
            return bm_err_set(c->err, BM_EUNSUPPORTED, "json_schema: enum of %zu values exceeds "
                              "the limit of %d", nl, GRAMMAR_MAX_LITS);
        n->n_lits = (int32_t)nl;
        n->lits = bm_arena_calloc(&c->g->arena, nl, sizeof *n->lits, c->err);
        n->lit_len = bm_arena_calloc(&c->g->arena, nl, sizeof *n->lit_len, c->err);
        if (!n->lits || !n->lit_len) return BM_ENOMEM;
        for (size_t i = 0; i < nl; i++) {
            char *t = json_dumps(cn ? cn : json_array_get(en, i),
                                 JSON_COMPACT | JSON_ENCODE_ANY);
            if (!t) return bm_err_set(c->err, BM_ENOMEM, "json_schema: cannot serialise enum");
            n->lits[i] = dup_text(c, t, strlen(t));
            n->lit_len[i] = (uint32_t)strlen(t);
            free(t);
            if (!n->lits[i]) return BM_ENOMEM;
        }
        return set_min(c, n);
    }
    bm_status st;
    if (js && (n->types & T_OBJ) && (st = compile_object(c, js, n, depth))) return st;
    if (!js || !(n->types & T_OBJ)) n->additional = true;
    n->max_items = INT32_MAX;
    if (js && (n->types & T_ARR)) {
        json_t *items = json_object_get(js, "items");
        if (items && (st = compile(c, items, depth + 1, &n->items)))
            return bm_err_wrap(c->err, "items");
        if ((st = get_count(c, js, "minItems", 0, &n->min_items)) ||
            (st = get_count(c, js, "maxItems", INT32_MAX, &n->max_items)))
            return st;
        if (n->min_items > n->max_items)
            return bm_err_set(c->err, BM_EINVAL, "json_schema: minItems %d > maxItems %d",
                              n->min_items, n->max_items);
    }
    return set_min(c, n);
}

static bm_grammar *grammar_alloc(bm_err *err) {
    bm_grammar *g = bm_calloc(1, sizeof *g, err);
    if (!g) return NULL;
    bm_arena_init(&g->arena, 1 << 14, 0);
    grammar_init_builtin(g);
    return g;
}

bm_status bm_grammar_from_schema(const char *schema, size_t len, bm_grammar **out, bm_err *err) {
    *out = NULL;
    json_error_t je;
    json_t *js = json_loadb(schema, len, 0, &je);
    if (!js)
        return bm_err_set(err, BM_EINVAL, "json_schema: invalid JSON at line %d column %d: %s",
                          je.line, je.column, je.text);
    bm_grammar *g = grammar_alloc(err);
    if (!g) {
        json_decref(js);
        return BM_ENOMEM;
    }
    cctx c = {g, err};
    bm_status st = compile(&c, js, 0, &g->root);
    json_decref(js);
    if (st) {
        bm_grammar_free(g);
        return st;
    }
    *out = g;
    return BM_OK;
}

bm_status bm_grammar_json_object(bm_grammar **out, bm_err *err) {
    *out = NULL;
    bm_grammar *g = grammar_alloc(err);
    if (!g) return BM_ENOMEM;
    g->root = bm_arena_calloc(&g->arena, 1, sizeof *g->root, err);
    if (!g->root) {
        bm_grammar_free(g);
        return BM_ENOMEM;
    }
    g->root->types = T_OBJ;
    g->root->additional = true;
    g->root->max_items = INT32_MAX;
    g->root->min_text = "{}";
    g->root->min_len = 2;
    *out = g;
    return BM_OK;
}

void bm_grammar_free(bm_grammar *g) {
    if (!g) return;
    bm_arena_fini(&g->arena);
    free(g);
}
