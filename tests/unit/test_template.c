/* Unit tests of the chat-template interpreter: expressions and statements with outputs from
 * Jinja semantics (as @huggingface/jinja implements them), error codes and positions, limits,
 * and robustness: every prefix of each real template must parse or fail cleanly, and render
 * without crashing. */
#include "baimo/template.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(const char *src, const char *ctx, bm_status *st, bm_err *err) {
    bm_tmpl *t = NULL;
    char *out = NULL;
    size_t n = 0;
    *st = bm_tmpl_parse(src, strlen(src), &t, err);
    if (!*st) *st = bm_tmpl_render_json(t, ctx, &out, &n, err);
    bm_tmpl_free(t);
    if (out) cr_assert_eq(strlen(out), n);
    return out;
}

static void expect(const char *src, const char *ctx, const char *want) {
    bm_err err = {0};
    bm_status st;
    char *out = render(src, ctx, &st, &err);
    cr_assert_eq(st, BM_OK, "%s: %s", src, err.msg);
    cr_assert_str_eq(out, want, "template %s", src);
    free(out);
}

static void expect_err(const char *src, const char *ctx, bm_status code, const char *msg_part) {
    bm_err err = {0};
    bm_status st;
    char *out = render(src, ctx, &st, &err);
    cr_assert_null(out);
    cr_assert_eq(st, code, "%s: got %d (%s)", src, st, err.msg);
    cr_assert(strstr(err.msg, msg_part), "%s: message '%s' lacks '%s'", src, err.msg, msg_part);
}

Test(template, literals_and_arithmetic) {
    expect("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 3 }}", NULL,
           "7|9|3|-4|1|8");
    expect("{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 1.5 + 1 }}|{{ 0.1 + 0.2 }}|{{ 10 ** 21 }}", "{}",
           "3.5|2.0|2.5|0.30000000000000004|1e+21");
    expect("{{ 'a\\tb\\n' }}{{ \"q'\" }}{{ 'x' 'y' }}", NULL, "a\tb\nq'xy");
    expect("{{ true }} {{ False }} {{ none }}|{{ [1, 'a', none] }}|{{ {'k': 1} }}", NULL,
           "true false |[1, \"a\", null]|{\"k\": 1}");
}

Test(template, strings_and_methods) {
    expect("{{ s|trim }}|{{ s.upper() }}|{{ 'ab cd'.title() }}|{{ s|length }}", "{\"s\":\" Hi \"}",
           "Hi| HI |Ab Cd|4");
    expect("{{ 'a,b'.split(',') }}|{{ 'x'.replace('x', 'yz') }}|{{ 'abc'.startswith('ab') }}", NULL,
           "[\"a\", \"b\"]|yz|true");
    /* strip ignores its argument in the reference: all whitespace goes */
    expect("[{{ ' \\n a \\n'.strip('\\n') }}]", NULL, "[a]");
    expect("{{ 'héllo'[1] }}{{ 'héllo'[::-1] }}{{ 'abcdef'[1:5:2] }}", NULL, "éolléhbd");
}

Test(template, comparisons_and_logic) {
    expect("{{ 1 == 1.0 }}{{ '1' == 1 }}{{ x == none }}{{ 2 in [1, 2] }}{{ 'b' in 'abc' }}", NULL,
           "truetruetruetruetrue");
    expect("{{ 'k' in d }}{{ 'z' not in d }}{{ not 0 }}{{ '' or 'e' }}{{ 0 and 1 }}",
           "{\"d\":{\"k\":1}}", "truetruetruee0");
    expect("{{ 'a' if x is defined else 'b' }}{{ 'c' if 1 > 2 }}", NULL, "b");
}

Test(template, tests) {
    expect("{{ x is defined }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ n is number }}"
           "{{ n is odd }}{{ t is true }}{{ z is none }}{{ z is not none }}",
           "{\"s\":\"x\",\"d\":{},\"l\":[],\"n\":3,\"t\":true,\"z\":null}",
           "falsetruetruetruetruetruetruetruefalse");
}

Test(template, loops) {
    expect("{% for x in [5, 6, 7] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
           "{{ loop.revindex }}{{ loop.length }},{% endfor %}",
           NULL, "10truefalse33,21falsefalse23,32falsetrue13,");
    expect("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "{\"d\":{\"b\":1,\"a\":2}}",
           "b=1;a=2;");
    expect("{% for x in l if x > 1 %}{{ x }}{% else %}none{% endfor %}|{% for x in [] %}{% else %}e{% endfor %}",
           "{\"l\":[1,2,3]}", "23|e");
    expect("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}"
           "{% endif %}{{ x }}{% endfor %}",
           NULL, "13");
    /* JS object key order: integer-like keys first */
    expect("{% for k in d %}{{ k }}{% endfor %}", "{\"d\":{\"b\":1,\"2\":2,\"a\":3,\"1\":4}}", "12ba");
}

Test(template, set_namespace_macro) {
    expect("{% set ns = namespace(n=0) %}{% for x in [1,2,3] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}",
           NULL, "6");
    /* set inside a loop does not leak out of the loop scope */
    expect("{% set a = 1 %}{% for x in [1] %}{% set a = 2 %}{% endfor %}{{ a }}", NULL, "1");
    expect("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(a=3, b=4) }}",
           NULL, "1B1234");
    expect("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% endcall %}", NULL, "[in]");
    expect("{% filter upper %}abc{% endfilter %}{% set b %}x{{ 1 }}{% endset %}{{ b }}", NULL, "ABCx1");
}

Test(template, filters) {
    expect("{{ l|join(', ') }}|{{ l|first }}|{{ l|last }}|{{ l|length }}|{{ l|reverse|list }}|{{ l|sort }}",
           "{\"l\":[3,1,2]}", "3, 1, 2|3|2|3|[2, 1, 3]|[1, 2, 3]");
    expect("{{ x|default('d') }}|{{ ''|default('d', true) }}|{{ '5'|int + 1 }}|{{ -2|abs }}", NULL,
           "d|d|6|2");
    expect("{{ p|map(attribute='n')|join }}|{{ p|selectattr('n', 'equalto', 'b')|list|length }}",
           "{\"p\":[{\"n\":\"a\"},{\"n\":\"b\"}]}", "ab|1");
}

Test(template, tojson) {
    expect("{{ d|tojson }}", "{\"d\":{\"a\":[1,2.5,\"é\"],\"b\":null}}", "{\"a\": [1, 2.5, \"é\"], \"b\": null}");
    expect("{{ d|tojson(indent=2) }}", "{\"d\":{\"a\":[1],\"e\":{}}}", "{\n  \"a\": [\n    1\n  ],\n  \"e\": {}\n}");
    expect("{{ 'é\"\\n'|tojson(ensure_ascii=true) }}", NULL, "\"\\u00e9\\\"\\n\"");
    expect("{{ 1.0|tojson }}|{{ 1.0 }}", NULL, "1|1.0");
}

Test(template, whitespace_control) {
    /* trim_blocks + lstrip_blocks as the reference's Template applies them */
    expect("a\n  {% if true %}\nb\n  {% endif %}\nc\n", NULL, "a\nb\nc");
    expect("a  {{- 'x' -}}  b {#- c -#} d", NULL, "axbd");
    expect("{% generation %}gen{% endgeneration %}", NULL, "gen");
}

Test(template, raise_exception_is_einval) {
    expect_err("x{{ raise_exception('Bad role: ' ~ r) }}", "{\"r\":\"sys\"}", BM_EINVAL, "Bad role: sys");
}

Test(template, syntax_errors_name_line_and_col) {
    expect_err("line1\n{% if %}", NULL, BM_EFORMAT, "template:2:");
    expect_err("ok\n\n{{ 'unterminated }}", NULL, BM_EFORMAT, "template:3:");
    expect_err("{% frobnicate %}", NULL, BM_EFORMAT, "Unknown statement type: frobnicate");
    expect_err("{% for x in y %}no end", NULL, BM_EFORMAT, "endfor");
    expect_err("{{ a $ b }}", NULL, BM_EFORMAT, "Unexpected character: $");
}

Test(template, runtime_errors_name_line) {
    expect_err("\n\n{{ x|nosuchfilter }}", "{\"x\":\"s\"}", BM_EINVAL, "template:3:");
    expect_err("{{ x|nosuchfilter }}", "{\"x\":\"s\"}", BM_EINVAL, "Unknown StringValue filter: nosuchfilter");
    expect_err("{{ x is nosuchtest }}", NULL, BM_EINVAL, "Unknown test: nosuchtest");
    expect_err("{{ u + 1 }}", NULL, BM_EINVAL, "Cannot perform operation + on undefined values");
    expect_err("{{ 1 }}", "[1]", BM_EINVAL, "context must be a JSON object");
    expect_err("{{ 1 }}", "{bad json", BM_EFORMAT, "context JSON");
}

Test(template, limits) {
    expect_err("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", NULL, BM_EINVAL, "limit");
    expect_err("{% for a in range(1100) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", NULL,
               BM_EINVAL, "loop iterations exceed the limit");
    expect_err("{% set s = namespace(v='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}"
               "{% set s.v = s.v + s.v %}{% endfor %}{{ s.v|length }}",
               NULL, BM_ENOMEM, "MiB");
    char deep[4000];
    size_t k = 0;
    k += (size_t)sprintf(deep + k, "{{ ");
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    sprintf(deep + k, " }}");
    expect_err(deep, NULL, BM_EFORMAT, "nesting exceeds the limit");
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

Test(template, every_prefix_of_real_templates_parses_or_fails_cleanly) {
    const char *dirs[] = {"../shared/testdata/templates", "../../shared/testdata/templates"};
    const char *ctx = "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
                      "\"content\":\"u\"},{\"role\":\"assistant\",\"content\":\"a\"}],"
                      "\"add_generation_prompt\":true,\"bos_token\":\"<s>\"}";
    int n_files = 0;
    for (int d = 0; d < 2 && !n_files; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!strstr(e->d_name, ".jinja")) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            size_t n;
            char *src = slurp(path, &n);
            cr_assert_not_null(src, "%s", path);
            n_files++;
            int n_ok = 0;
            for (size_t len = 0; len <= n; len++) {
                bm_tmpl *t = NULL;
                bm_err err = {0};
                bm_status st = bm_tmpl_parse(src, len, &t, &err);
                if (st) {
                    cr_assert(st == BM_EFORMAT && !strncmp(err.msg, "template:", 9), "%s[:%zu]: %s",
                              path, len, err.msg);
                    continue;
                }
                n_ok++;
                char *out = NULL;
                size_t n_out;
                st = bm_tmpl_render_json(t, ctx, &out, &n_out, &err);
                cr_assert(st == BM_OK || st == BM_EINVAL, "%s[:%zu]: %d %s", path, len, st, err.msg);
                free(out);
                bm_tmpl_free(t);
            }
            cr_assert_gt(n_ok, 1, "%s: some prefixes must parse", path);
            bm_tmpl *t = NULL;
            cr_assert_eq(bm_tmpl_parse(src, n, &t, NULL), BM_OK, "%s", path);
            bm_tmpl_free(t);
            free(src);
        }
        closedir(dir);
    }
    cr_assert_eq(n_files, 8, "expected the 8 real templates, found %d", n_files);
}
