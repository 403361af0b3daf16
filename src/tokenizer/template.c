/* Chat templates, public API (include/baimo/template.h): parse once, render many times with a
 * JSON context. The lexer, parser, values, evaluator and builtins are in template_*.c; their
 * behaviour is checked byte for byte against @huggingface/jinja by tests/ref/test_template.mjs.
 * Globals as the reference defines them: namespace, raise_exception, range, strftime_now,
 * true/false/none and True/False/None. */
#include "template_int.h"

#include <stdlib.h>
#include <string.h>

bm_status bm_tmpl_parse(const char *source, size_t len, bm_tmpl **out, bm_err *err) {
    *out = NULL;
    if (!source && len) return bm_err_set(err, BM_EINVAL, "template: NULL source");
    bm_tmpl *t = calloc(1, sizeof *t);
    if (!t) return bm_err_set(err, BM_ENOMEM, "template: out of memory");
    tm_pool_init(&t->pool, TM_MAX_MEMORY);
    token *toks;
    size_t n;
    bm_status st = tm_lex(&t->pool, source ? source : "", len, &toks, &n, err);
    if (!st) st = tm_parse(&t->pool, toks, n, &t->body, &t->n_body, err);
    if (st) {
        bm_tmpl_free(t);
        return st;
    }
    *out = t;
    return BM_OK;
}

void bm_tmpl_free(bm_tmpl *t) {
    if (!t) return;
    tm_pool_fini(&t->pool);
    free(t);
}

static bool add_fn(interp *in, env *g, const char *name, fn_kind k) {
    tfunc *f = tm_alloc(in->pool, sizeof *f);
    if (!f) return false;
    f->k = k;
    return env_set(in, g, name, strlen(name), (tv){.k = TV_FUNC, .u.f = f});
}

bm_status bm_tmpl_render(const bm_tmpl *t, const struct json_t *context, char **out,
                         size_t *n_out, bm_err *err) {
    *out = NULL;
    if (n_out) *n_out = 0;
    if (!t) return bm_err_set(err, BM_EINVAL, "template: NULL template");
    json_t *ctx = (json_t *)context;
    if (ctx && !json_is_object(ctx))
        return bm_err_set(err, BM_EINVAL, "template: the context must be a JSON object");
    bm_err local;
    if (!err) err = &local;
    tm_pool pool;
    tm_pool_init(&pool, TM_MAX_MEMORY);
    interp in = {.pool = &pool, .err = err};
    env *g = env_new(&in, NULL);
    bm_status st = BM_OK;
    /* Environment order of the reference: namespace, then setupGlobals, then the context. */
    bool ok = g && add_fn(&in, g, "namespace", FN_NAMESPACE) &&
              env_set(&in, g, "false", 5, tv_bool(false)) && env_set(&in, g, "true", 4, tv_bool(true)) &&
              env_set(&in, g, "none", 4, tv_null()) && add_fn(&in, g, "raise_exception", FN_RAISE) &&
              add_fn(&in, g, "range", FN_RANGE) && add_fn(&in, g, "strftime_now", FN_STRFTIME) &&
              env_set(&in, g, "True", 4, tv_bool(true)) && env_set(&in, g, "False", 5, tv_bool(false)) &&
              env_set(&in, g, "None", 4, tv_null());
    if (!ok) {
        st = bm_err_set(err, BM_ENOMEM, "template: out of memory");
        goto done;
    }
    if (ctx) {
        tv c = tv_from_json(&pool, ctx, 0);
        if (c.k != TV_OBJECT) {
            st = bm_err_set(err, BM_ENOMEM, "template: out of memory converting the context");
            goto done;
        }
        for (size_t i = 0; i < c.u.m->n; i++) {
            tstr *k = c.u.m->keys[i];
            if (tmap_get(&g->vars, k->s, k->n)) {
                st = bm_err_set(err, BM_EINVAL, "Variable already declared: %s", k->s);
                goto done;
            }
            if (!env_set(&in, g, k->s, k->n, c.u.m->vals[i])) {
                st = bm_err_set(err, BM_ENOMEM, "template: out of memory");
                goto done;
            }
        }
    }
    sbuf b;
    sb_init(&b, &pool);
    int rc = tm_exec_block(&in, t->body, t->n_body, g, &b);
    if (rc == R_BREAK || rc == R_CONT) {
        st = bm_err_set(err, BM_EINVAL, "template: '%s' outside of a for loop",
                        rc == R_BREAK ? "break" : "continue");
        goto done;
    }
    if (rc) {
        st = err->code ? err->code : BM_EINVAL;
        goto done;
    }
    if (b.failed || pool.failed) {
        tm_oom(&in, NULL);
        st = BM_ENOMEM;
        goto done;
    }
    char *r = malloc(b.n + 1);
    if (!r) {
        st = bm_err_set(err, BM_ENOMEM, "template: out of memory copying %zu bytes of output", b.n);
        goto done;
    }
    if (b.n) memcpy(r, b.p, b.n);
    r[b.n] = 0;
    *out = r;
    if (n_out) *n_out = b.n;
done:
    tm_pool_fini(&pool);
    return st;
}

bm_status bm_tmpl_render_json(const bm_tmpl *t, const char *context_json, char **out,
                              size_t *n_out, bm_err *err) {
    *out = NULL;
    if (n_out) *n_out = 0;
    json_t *ctx = NULL;
    if (context_json && *context_json) {
        json_error_t je;
        ctx = json_loads(context_json, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
        if (!ctx)
            return bm_err_set(err, BM_EFORMAT, "template: context JSON line %d column %d: %s",
                              je.line, je.column, je.text);
    }
    bm_status st = bm_tmpl_render(t, ctx, out, n_out, err);
    json_decref(ctx);
    return st;
}
