/* Tool calls in model output: Qwen/Hermes `<tool_call>{"name":..,"arguments":..}</tool_call>`
 * blocks (any number, text around them is content) and Llama 3 JSON calls
 * (`<|python_tag|>{"name":..,"parameters":..}` or a whole answer that is such an object, several
 * separated by ';'). Parsing only: running tools lives elsewhere. */
#ifndef BAIMO_TOOLS_TOOLCALL_H
#define BAIMO_TOOLS_TOOLCALL_H

#include "baimo/base.h"

typedef struct bm_toolcall {
    char *name;       /* owned */
    char *arguments;  /* owned: compact JSON text of the arguments object */
} bm_toolcall;

typedef struct bm_toolcalls {
    bm_toolcall *calls; /* [n] owned */
    size_t n;
    char *content;      /* owned: the text outside the calls, trimmed (may be "") */
} bm_toolcalls;

/* Parses text[0..len). No call in the text: BM_OK, n = 0, content = the text. A call that is
 * started but malformed (bad JSON, no "name", arguments not an object): BM_EFORMAT naming the
 * problem and the byte offset; out is then empty. Free out with bm_toolcalls_fini(). */
bm_status bm_toolcall_parse(const char *text, size_t len, bm_toolcalls *out, bm_err *err);
void bm_toolcalls_fini(bm_toolcalls *tc);

/* Length of the longest suffix of text[0..len) that could start a tool call marker
 * ("<tool_call>", "<|python_tag|>"): streaming holds those bytes back. */
size_t bm_toolcall_hold(const char *text, size_t len);
/* Offset of the first complete tool call marker in text, or -1. */
long bm_toolcall_find(const char *text, size_t len);

#endif
