/* libFuzzer target: parse arbitrary bytes as a chat template and render it with a small fixed
 * context. Any outcome but a crash, leak or sanitizer report is fine. */
#include "baimo/template.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *ctx =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
        "\"hi\"},{\"role\":\"assistant\",\"content\":\"<think>r</think>a\",\"tool_calls\":[{\"id\":"
        "\"abcdefghi\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],"
        "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}";
    bm_tmpl *t = NULL;
    if (bm_tmpl_parse((const char *)data, size, &t, NULL)) return 0;
    char *out = NULL;
    size_t n;
    bm_tmpl_render_json(t, ctx, &out, &n, NULL);
    free(out);
    bm_tmpl_free(t);
    return 0;
}
