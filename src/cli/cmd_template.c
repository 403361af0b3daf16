/* baimo template: renders a chat template with a JSON context and prints exactly the rendered
 * text (no newline added). -t takes a .jinja file or a tokenizer_config.json (its
 * "chat_template": a string, or a list of {name, template} where "default" is used). */
#include "cli.h"

#include "baimo/template.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: baimo template -t TEMPLATE.jinja|tokenizer_config.json -c CONTEXT.json\n"
               "  Renders the chat template with the context (messages, tools, add_generation_prompt,\n"
               "  bos_token, ...) and prints the text exactly. Exit 1 when the template raises.\n");
}

/* If src is a JSON object with "chat_template", replaces *src with the template text. */
static int unwrap_config(char **src, size_t *n) {
    const char *p = *src;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p != '{') return 0;
    json_error_t je;
    json_t *j = json_loadb(*src, *n, JSON_DECODE_INT_AS_REAL, &je);
    if (!j) return 0; /* not JSON: a template that starts with '{' */
    json_t *ct = json_object_get(j, "chat_template");
    const char *text = NULL;
    size_t tn = 0;
    if (json_is_string(ct)) {
        text = json_string_value(ct);
        tn = json_string_length(ct);
    } else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            json_t *tt = json_object_get(e, "template");
            if (json_is_string(tt) && (!text || (name && !strcmp(name, "default")))) {
                text = json_string_value(tt);
                tn = json_string_length(tt);
            }
        }
    }
    if (!text) {
        json_decref(j);
        return -1;
    }
    char *c = malloc(tn + 1);
    if (!c) {
        json_decref(j);
        return -1;
    }
    memcpy(c, text, tn);
    c[tn] = 0;
    json_decref(j);
    free(*src);
    *src = c;
    *n = tn;
    return 1;
}

int cmd_template(int argc, char **argv) {
    const char *tpath = NULL, *cpath = NULL;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_flag(argv, i, "--help", "-h")) {
            usage(stdout);
            return 0;
        }
        if (cli_opt_str(argc, argv, &i, "--template", "-t", &tpath, &bad)) continue;
        if (cli_opt_str(argc, argv, &i, "--context", "-c", &cpath, &bad)) continue;
        fprintf(stderr, "baimo template: error: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (bad) return 2;
    if (!tpath) {
        usage(stderr);
        return 2;
    }
    bm_err err = {0};
    char *src = NULL, *ctx = NULL;
    size_t n_src = 0, n_ctx = 0;
    if (bm_file_read(tpath, &src, &n_src, 16u << 20, &err)) return cli_fail("template", &err);
    if (unwrap_config(&src, &n_src) < 0) {
        free(src);
        return cli_failf("template", "'%s' is JSON without a \"chat_template\" string", tpath);
    }
    if (cpath && bm_file_read(cpath, &ctx, &n_ctx, 256u << 20, &err)) {
        free(src);
        return cli_fail("template", &err);
    }
    bm_tmpl *t = NULL;
    char *out = NULL;
    size_t n_out = 0;
    bm_status st = bm_tmpl_parse(src, n_src, &t, &err);
    if (!st) st = bm_tmpl_render_json(t, ctx ? ctx : "{}", &out, &n_out, &err);
    bm_tmpl_free(t);
    free(src);
    free(ctx);
    if (st) return cli_fail("template", &err);
    fwrite(out, 1, n_out, stdout);
    free(out);
    return fflush(stdout) ? 1 : 0;
}
