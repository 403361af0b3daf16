/* Tool-call parsing: Qwen/Hermes <tool_call> blocks, Llama 3 JSON calls (with and without
 * <|python_tag|>), text around calls, streaming hold-back, and malformed calls (errors with
 * offsets, never a crash: every truncation of a valid call is tried). */
#include "tools/toolcall.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

static bm_toolcalls parse_ok(const char *s) {
    bm_toolcalls tc;
    bm_err err = {0};
    bm_status st = bm_toolcall_parse(s, strlen(s), &tc, &err);
    cr_assert_eq(st, BM_OK, "parse failed: %s", err.msg);
    return tc;
}

/* arguments text parses to the same JSON as expected */
static void args_eq(const char *got, const char *want) {
    json_error_t e;
    json_t *a = json_loads(got, 0, &e), *b = json_loads(want, 0, &e);
    cr_assert(a && b);
    cr_assert(json_equal(a, b), "arguments %s != %s", got, want);
    json_decref(a);
    json_decref(b);
}

Test(toolcall, qwen_single) {
    bm_toolcalls tc = parse_ok("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                               "{\"city\": \"北京\", \"days\": 2}}\n</tool_call>");
    cr_assert_eq(tc.n, 1);
    cr_assert_str_eq(tc.calls[0].name, "get_weather");
    args_eq(tc.calls[0].arguments, "{\"city\":\"北京\",\"days\":2}");
    cr_assert_str_eq(tc.content, "");
    bm_toolcalls_fini(&tc);
}

Test(toolcall, qwen_multiple_with_text) {
    bm_toolcalls tc = parse_ok("Let me check.\n<tool_call>\n{\"name\":\"a\",\"arguments\":{}}\n"
                               "</tool_call>\n<tool_call>\n{\"name\":\"b\",\"arguments\":"
                               "{\"x\":[1,2]}}\n</tool_call>");
    cr_assert_eq(tc.n, 2);
    cr_assert_str_eq(tc.calls[0].name, "a");
    cr_assert_str_eq(tc.calls[1].name, "b");
    args_eq(tc.calls[1].arguments, "{\"x\":[1,2]}");
    cr_assert_str_eq(tc.content, "Let me check.");
    bm_toolcalls_fini(&tc);
}

Test(toolcall, qwen_unclosed_at_end_and_string_arguments) {
    /* generation stopped at the end-of-turn token before </tool_call> */
    bm_toolcalls tc = parse_ok("<tool_call>{\"name\":\"f\",\"arguments\":\"{\\\"q\\\":1}\"}");
    cr_assert_eq(tc.n, 1);
    args_eq(tc.calls[0].arguments, "{\"q\":1}");
    bm_toolcalls_fini(&tc);
}

Test(toolcall, llama3_python_tag_and_bare) {
    bm_toolcalls tc = parse_ok("<|python_tag|>{\"name\": \"search\", \"parameters\": "
                               "{\"query\": \"baimo\"}}");
    cr_assert_eq(tc.n, 1);
    cr_assert_str_eq(tc.calls[0].name, "search");
    args_eq(tc.calls[0].arguments, "{\"query\":\"baimo\"}");
    bm_toolcalls_fini(&tc);

    tc = parse_ok("  {\"name\": \"f\", \"parameters\": {\"a\": 1}}; {\"name\": \"g\", "
                  "\"parameters\": {}}\n");
    cr_assert_eq(tc.n, 2);
    cr_assert_str_eq(tc.calls[1].name, "g");
    bm_toolcalls_fini(&tc);
}

Test(toolcall, plain_text_and_json_answers_are_not_calls) {
    const char *cases[] = {
        "Hello, world.",
        "{\"name\": \"Alice\", \"age\": 3}",          /* JSON answer without parameters */
        "{\"name\": \"f\", \"parameters\": {}} trailing", /* not the whole answer */
        "",
        "the tag <tool_ is not complete",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bm_toolcalls tc = parse_ok(cases[i]);
        cr_assert_eq(tc.n, 0, "case %zu", i);
        bm_toolcalls_fini(&tc);
    }
}

Test(toolcall, malformed_calls_are_errors) {
    const char *cases[] = {
        "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",
        "<tool_call>not json</tool_call>",
        "<tool_call>{\"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": 3}</tool_call>",
        "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",
        "<tool_call>{\"name\": \"f\"} junk </tool_call>",
        "<tool_call>[1,2]</tool_call>",
        "<|python_tag|>{\"name\": \"f\", \"parameters\": {}} x",
        "<tool_call>{\"name\": \"f\", \"arguments\": \"[1]\"}</tool_call>",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bm_toolcalls tc;
        bm_err err = {0};
        bm_status st = bm_toolcall_parse(cases[i], strlen(cases[i]), &tc, &err);
        cr_assert_eq(st, BM_EFORMAT, "case %zu: %s", i, cases[i]);
        cr_assert(strstr(err.msg, "tool call"), "message: %s", err.msg);
        cr_assert_eq(tc.n, 0);
        cr_assert_null(tc.calls);
    }
}

Test(toolcall, truncations_never_crash) {
    const char *s = "ok <tool_call>\n{\"name\":\"f\",\"arguments\":{\"a\":\"x\\u4e2d\"}}\n"
                    "</tool_call>";
    size_t n = strlen(s);
    for (size_t k = 0; k <= n; k++) {
        char *buf = malloc(k ? k : 1); /* exact-size copy: ASan catches reads past the end */
        memcpy(buf, s, k);
        bm_toolcalls tc;
        bm_status st = bm_toolcall_parse(buf, k, &tc, NULL);
        cr_assert(st == BM_OK || st == BM_EFORMAT);
        if (st == BM_OK && tc.n) cr_assert_str_eq(tc.calls[0].name, "f");
        bm_toolcalls_fini(&tc);
        free(buf);
    }
}

Test(toolcall, hold_back_and_find) {
    cr_assert_eq(bm_toolcall_hold("abc <tool", 9), 5);
    cr_assert_eq(bm_toolcall_hold("abc <", 5), 1);
    cr_assert_eq(bm_toolcall_hold("abc", 3), 0);
    cr_assert_eq(bm_toolcall_hold("x<|python", 9), 8);
    cr_assert_eq(bm_toolcall_find("ab<tool_call>{", 14), 2);
    cr_assert_eq(bm_toolcall_find("ab<tool_cal", 11), -1);
}
