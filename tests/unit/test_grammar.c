/* Grammar: valid documents are accepted byte by byte and complete exactly at their end; invalid
 * ones are rejected; random walks (a random acceptable byte at each step, then the shortest
 * completion) always give text that Jansson parses and that matches the schema; schema
 * errors name the keyword. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "baimo/grammar.h"

static bm_grammar *compile(const char *schema) {
    bm_grammar *g = NULL;
    bm_err err = {0};
    cr_assert_eq(bm_grammar_from_schema(schema, strlen(schema), &g, &err), BM_OK, "%s", err.msg);
    return g;
}

static bool whole(const bm_grammar *g, const char *doc) {
    bm_gstate s;
    bm_gstate_init(&s, g);
    return bm_gstate_feed(&s, (const uint8_t *)doc, strlen(doc)) && bm_gstate_can_end(&s);
}

static const char *PERSON =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
    "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\","
    "\"bb\",1]},\"minItems\":1,\"maxItems\":3},\"kind\":{\"const\":\"human\"},"
    "\"extra\":{\"type\":[\"number\",\"null\"]},\"pet\":{\"type\":\"object\",\"properties\":"
    "{\"n\":{\"type\":\"boolean\"}},\"required\":[\"n\"]}},"
    "\"required\":[\"name\",\"age\",\"tags\"],\"additionalProperties\":false}";

Test(grammar, accepts_valid_documents) {
    bm_grammar *g = compile(PERSON);
    const char *ok[] = {
        "{\"name\":\"x\",\"age\":3,\"tags\":[\"a\"]}",
        "{ \"age\" : -12 , \"tags\" : [ 1 , \"bb\" ], \"name\" : \"\\u00e9\\n\" }",
        "{\"name\":\"日本\",\"age\":0,\"tags\":[1,1,1],\"kind\":\"human\",\"extra\":null}",
        "{\"name\":\"\",\"age\":1,\"tags\":[\"a\"],\"extra\":-1.5e+3,\"pet\":{\"n\":false}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_assert(whole(g, ok[i]), "rejected: %s", ok[i]);
    bm_grammar_free(g);
}

Test(grammar, rejects_invalid_documents) {
    bm_grammar *g = compile(PERSON);
    const char *bad[] = {
        "{\"name\":\"x\",\"age\":3}",                          /* required tags missing */
        "{\"name\":\"x\",\"age\":3.5,\"tags\":[\"a\"]}",        /* integer */
        "{\"name\":\"x\",\"age\":3,\"tags\":[]}",               /* minItems */
        "{\"name\":\"x\",\"age\":3,\"tags\":[1,1,1,1]}",        /* maxItems */
        "{\"name\":\"x\",\"age\":3,\"tags\":[\"c\"]}",          /* enum */
        "{\"name\":\"x\",\"age\":3,\"tags\":[1],\"zz\":1}",     /* additionalProperties */
        "{\"name\":\"x\",\"name\":\"y\",\"age\":3,\"tags\":[1]}", /* duplicate */
        "{\"name\":\"x\",\"age\":03,\"tags\":[1]}",             /* leading zero */
        "{\"name\":\"\\ud800\",\"age\":3,\"tags\":[1]}",        /* surrogate escape */
        "{\"name\":\"\xc3\x28\",\"age\":3,\"tags\":[1]}",       /* bad UTF-8 */
        "{\"name\":\"x\",\"age\":3,\"tags\":[1],\"kind\":\"humans\"}",
        "{\"name\":\"x\",\"age\":3,\"tags\":[1],\"pet\":{}}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!whole(g, bad[i]), "accepted: %s", bad[i]);
    bm_grammar_free(g);
}

/* Minimal validator of the subset, written against the schema JSON (independent of the
 * matcher): enough for the test schemas. */
static bool valid(json_t *schema, json_t *v) {
    json_t *c = json_object_get(schema, "const");
    if (c) return json_equal(c, v);
    json_t *en = json_object_get(schema, "enum");
    if (en) {
        size_t i;
        json_t *x;
        json_array_foreach(en, i, x) if (json_equal(x, v)) return true;
        return false;
    }
    json_t *t = json_object_get(schema, "type");
    if (t) {
        bool any = false;
        json_t *list = json_is_array(t) ? t : NULL;
        for (size_t i = 0; i < (list ? json_array_size(list) : 1); i++) {
            const char *n = json_string_value(list ? json_array_get(list, i) : t);
            any |= (!strcmp(n, "object") && json_is_object(v)) ||
                   (!strcmp(n, "array") && json_is_array(v)) ||
                   (!strcmp(n, "string") && json_is_string(v)) ||
                   (!strcmp(n, "number") && json_is_number(v)) ||
                   (!strcmp(n, "integer") && json_is_integer(v)) ||
                   (!strcmp(n, "boolean") && json_is_boolean(v)) ||
                   (!strcmp(n, "null") && json_is_null(v));
        }
        if (!any) return false;
    }
    if (json_is_object(v)) {
        json_t *props = json_object_get(schema, "properties");
        json_t *req = json_object_get(schema, "required");
        size_t i;
        json_t *x;
        if (req) json_array_foreach(req, i, x) if (!json_object_get(v, json_string_value(x)))
            return false;
        const char *k;
        json_object_foreach(v, k, x) {
            json_t *ps = props ? json_object_get(props, k) : NULL;
            if (ps && !valid(ps, x)) return false;
            if (!ps && json_is_false(json_object_get(schema, "additionalProperties")))
                return false;
        }
    }
    if (json_is_array(v)) {
        json_t *items = json_object_get(schema, "items");
        json_t *mn = json_object_get(schema, "minItems"), *mx = json_object_get(schema, "maxItems");
        if (mn && (json_int_t)json_array_size(v) < json_integer_value(mn)) return false;
        if (mx && (json_int_t)json_array_size(v) > json_integer_value(mx)) return false;
        size_t i;
        json_t *x;
        if (items) json_array_foreach(v, i, x) if (!valid(items, x)) return false;
    }
    return true;
}

static void random_walks(const char *schema_text, bool object_only, int n_walks) {
    bm_grammar *g = NULL;
    bm_err err = {0};
    if (schema_text) g = compile(schema_text);
    else cr_assert_eq(bm_grammar_json_object(&g, &err), BM_OK);
    json_t *schema = schema_text ? json_loads(schema_text, 0, NULL) : json_object();
    static const char ALPHA[] = "{}[]\",:-0123456789.eE+ \n\\untrfalsx\xc3\xa9\xe6\x97\xa5";
    bm_rng rng;
    bm_rng_seed(&rng, 42);
    for (int w = 0; w < n_walks; w++) {
        bm_gstate s;
        bm_gstate_init(&s, g);
        char doc[8192];
        size_t n = 0;
        int len = (int)(bm_rng_u64(&rng) % 120);
        for (int step = 0; step < len && !bm_gstate_done(&s); step++) {
            uint8_t opts[64];
            int no = 0;
            for (size_t k = 0; k < sizeof ALPHA - 1; k++)
                if (bm_gstate_accepts(&s, (const uint8_t *)ALPHA + k, 1)) opts[no++] = (uint8_t)ALPHA[k];
            for (int b = 0x80; b < 0xC0 && no < 64; b++) {
                uint8_t bb = (uint8_t)b;
                if (bm_gstate_accepts(&s, &bb, 1)) opts[no++] = bb;
            }
            if (no == 0) break;
            uint8_t c = opts[bm_rng_u64(&rng) % (uint64_t)no];
            cr_assert(bm_gstate_feed(&s, &c, 1));
            doc[n++] = (char)c;
        }
        char comp[4096];
        size_t nc = bm_gstate_completion(&s, comp, sizeof comp);
        cr_assert_lt(nc, sizeof comp);
        cr_assert(bm_gstate_feed(&s, (const uint8_t *)comp, nc), "completion rejected: %.*s|%s",
                  (int)n, doc, comp);
        cr_assert(bm_gstate_can_end(&s), "completion incomplete: %.*s|%s", (int)n, doc, comp);
        memcpy(doc + n, comp, nc);
        n += nc;
        json_error_t je;
        json_t *v = json_loadb(doc, n, JSON_DECODE_ANY, &je);
        cr_assert(v, "Jansson: %s in %.*s", je.text, (int)n, doc);
        if (object_only) cr_assert(json_is_object(v));
        cr_assert(valid(schema, v), "schema violated: %.*s", (int)n, doc);
        json_decref(v);
    }
    json_decref(schema);
    bm_grammar_free(g);
}

Test(grammar, random_walks_person) { random_walks(PERSON, true, 400); }
Test(grammar, random_walks_json_object) { random_walks(NULL, true, 400); }
Test(grammar, random_walks_scalars) {
    random_walks("{\"type\":[\"number\",\"string\",\"boolean\",\"null\"]}", false, 300);
    random_walks("{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":"
                 "\"integer\"},\"maxItems\":2},\"minItems\":2}", false, 300);
}

Test(grammar, schema_errors_name_the_problem) {
    const char *bad[][2] = {
        {"{\"type\":\"string\",\"pattern\":\"a+\"}", "pattern"},
        {"{\"type\":\"strin\"}", "strin"},
        {"{\"type\":\"object\",\"required\":[\"x\"],\"properties\":{}}", "'x'"},
        {"{\"type\":\"array\",\"minItems\":1000}", "minItems"},
        {"{not json", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bm_grammar *g = NULL;
        bm_err err = {0};
        cr_assert_neq(bm_grammar_from_schema(bad[i][0], strlen(bad[i][0]), &g, &err), BM_OK);
        cr_assert_null(g);
        cr_assert(strstr(err.msg, bad[i][1]), "message '%s' lacks '%s'", err.msg, bad[i][1]);
    }
}
