/* Constrained output: a JSON grammar compiled from a JSON Schema subset (type object / array /
 * string / number / integer / boolean / null and unions of them, properties, required, enum,
 * const, items, additionalProperties false, minItems/maxItems, nesting) or "any JSON object",
 * matched byte by byte by a pushdown automaton whose state is a small fixed-size value (copied
 * to test whether a token's bytes may extend the accepted prefix). Also gives the shortest text
 * that completes a document from any state (used to force completion before max_tokens).
 * Objects accept their properties in any order, no duplicate keys, no escapes in keys. */
#ifndef BAIMO_GRAMMAR_H
#define BAIMO_GRAMMAR_H

#include "baimo/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_grammar bm_grammar;

/* Compiles a JSON Schema (subset above; unknown keywords such as "description" or "title" are
 * ignored, unsupported constraints such as "pattern", "$ref", "anyOf" give BM_EUNSUPPORTED
 * naming the keyword). Returns owned; free with bm_grammar_free(). */
bm_status bm_grammar_from_schema(const char *schema, size_t len, bm_grammar **out, bm_err *err);
/* A grammar for any JSON object (response_format json_object). */
bm_status bm_grammar_json_object(bm_grammar **out, bm_err *err);
void bm_grammar_free(bm_grammar *g);

#define BM_GRAMMAR_MAX_DEPTH 32

/* Matcher state (caller storage; plain value: copy it to explore). Fields are private. */
typedef struct bm_gframe {
    const void *node;
    uint8_t kind, st, flags, esc, u_n, utf_need, utf_lo, utf_hi;
    uint16_t u_val;
    int16_t prop;
    int32_t pos, count;
    uint64_t mask, used;
} bm_gframe;

typedef struct bm_gstate {
    const bm_grammar *g;
    int32_t depth, ws_run;
    bool done;
    bm_gframe f[BM_GRAMMAR_MAX_DEPTH];
} bm_gstate;

/* Starts matching a document. g is borrowed. */
void bm_gstate_init(bm_gstate *s, const bm_grammar *g);
/* Feeds bytes; false (state left unspecified) when they cannot extend the accepted prefix. */
bool bm_gstate_feed(bm_gstate *s, const uint8_t *bytes, size_t n);
/* true when bytes[0..n) (n > 0) can extend the accepted prefix; s is not modified. */
bool bm_gstate_accepts(const bm_gstate *s, const uint8_t *bytes, size_t n);
/* true when the text so far is a complete document (it may still continue, e.g. a number). */
bool bm_gstate_can_end(const bm_gstate *s);
/* true when the document is complete and nothing may follow. */
bool bm_gstate_done(const bm_gstate *s);
/* Writes the shortest-by-construction text that completes the document (NUL-terminated when it
 * fits); returns its length (or the length needed when > cap - 1). */
size_t bm_gstate_completion(const bm_gstate *s, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
