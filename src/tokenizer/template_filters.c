/* Chat-template filters and tests, dispatched by operand type exactly as @huggingface/jinja's
 * applyFilter does (so `x | default` without parentheses fails like the reference, and an
 * unknown filter is a runtime error naming the filter and the operand type). tojson follows
 * the reference's JSON.stringify-based output: ", " / ": " separators, "," with indent,
 * non-ASCII kept unless ensure_ascii=true. */
#include "template_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tv arr_tv(tarr *a) { return (tv){.k = TV_ARRAY, .u.a = a}; }
static int ok_str(interp *in, const node *at, tstr *s, tv *out) {
    *out = tv_strs(s);
    return s ? R_OK : tm_oom(in, at);
}

/* JS truthiness of a value's raw .value (arrays/maps are objects: always true) */
static bool raw_truthy(tv v) {
    if (v.k >= TV_ARRAY) return true;
    return tv_truthy(v);
}

static tstr *trim_all(tm_pool *p, tstr *s) {
    size_t a = 0, b = s->n, l;
    while (a < b && (l = js_space_len(s->s + a, b - a))) a += l;
    while (b > a && (l = js_space_len_back(s->s + a, b - a))) b -= l;
    return ts_new(p, s->s + a, b - a);
}

static int tojson(interp *in, const node *at, tv v, const tojson_opts *o, tv *out) {
    sbuf b;
    sb_init(&b, in->pool);
    tv_kind bad;
    if (!tv_tojson(&b, v, o, 0, &bad)) return tm_fail(in, at, "Cannot convert to JSON: %s", tv_type_name(bad));
    return ok_str(in, at, sb_str(&b), out);
}

static int join(interp *in, const node *at, tv v, const char *sep, size_t sn, tv *out) {
    sbuf b;
    sb_init(&b, in->pool);
    if (v.k == TV_STR) { /* Array.from(str).join(sep) */
        tstr *s = v.u.s;
        for (size_t i = 0; i < s->n;) {
            uint32_t cp;
            int l = bm_utf8_decode((const uint8_t *)s->s + i, s->n - i, &cp);
            if (!l) l = 1;
            if (i) sb_put(&b, sep, sn);
            sb_put(&b, s->s + i, (size_t)l);
            i += (size_t)l;
        }
    } else {
        for (size_t i = 0; i < v.u.a->n; i++) {
            tv e = v.u.a->v[i];
            if (i) sb_put(&b, sep, sn);
            if (e.k != TV_UNDEF && e.k != TV_NULL) tv_raw_str(&b, e);
        }
    }
    return ok_str(in, at, sb_str(&b), out);
}

static double parse_int(const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n && (l = js_space_len(s + i, n - i))) i += l;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    double v = 0;
    size_t d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0'), d++;
    if (!d) return NAN;
    return neg ? -v : v;
}

static double parse_float(const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n && (l = js_space_len(s + i, n - i))) i += l;
    size_t a = i;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (n - i >= 8 && !memcmp(s + i, "Infinity", 8)) return s[a] == '-' ? -INFINITY : INFINITY;
    size_t d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
    }
    if (!d) return NAN;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        if (j < n && s[j] >= '0' && s[j] <= '9') {
            while (j < n && s[j] >= '0' && s[j] <= '9') j++;
            i = j;
        }
    }
    char buf[512];
    if (i - a >= sizeof buf) return NAN;
    memcpy(buf, s + a, i - a);
    buf[i - a] = 0;
    return strtod(buf, NULL);
}

static tstr *indent(tm_pool *p, tstr *s, double width, bool first, bool blank) {
    sbuf b;
    sb_init(&b, p);
    size_t line = 0, a = 0;
    for (size_t i = 0; i <= s->n; i++) {
        if (i < s->n && s->s[i] != '\n') continue;
        if (line) sb_putc(&b, '\n');
        bool empty = i == a;
        if (!((!first && line == 0) || (!blank && empty)))
            for (double k = 0; k < width; k++) sb_putc(&b, ' ');
        sb_put(&b, s->s + a, i - a);
        a = i + 1;
        line++;
    }
    return sb_str(&b);
}

/* tests: returns R_OK and *out, or an error */
static const char *const test_names[] = {
    "boolean", "callable", "odd",    "even",    "false",     "true",      "none",   "string",
    "number",  "integer",  "iterable", "mapping", "sequence", "lower",   "upper",  "defined",
    "undefined", "equalto", "eq", NULL,
};

bool tm_test_exists(const char *name) {
    for (int i = 0; test_names[i]; i++)
        if (!strcmp(test_names[i], name)) return true;
    return false;
}

int tm_apply_test(interp *in, const node *at, const char *name, tv v, tv arg, bool has_arg, bool *out) {
    (void)has_arg;
    if (!strcmp(name, "boolean")) *out = v.k == TV_BOOL;
    else if (!strcmp(name, "callable")) *out = v.k == TV_FUNC;
    else if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (v.k != TV_INT) return tm_fail(in, at, "cannot %s on %s", name, tv_type_name(v.k));
        bool odd = fmod(v.u.n, 2) != 0;
        *out = name[0] == 'o' ? odd : !odd;
    } else if (!strcmp(name, "false")) *out = v.k == TV_BOOL && !v.u.b;
    else if (!strcmp(name, "true")) *out = v.k == TV_BOOL && v.u.b;
    else if (!strcmp(name, "none")) *out = v.k == TV_NULL;
    else if (!strcmp(name, "string")) *out = v.k == TV_STR;
    else if (!strcmp(name, "number")) *out = tv_is_num(v);
    else if (!strcmp(name, "integer")) *out = v.k == TV_INT;
    else if (!strcmp(name, "iterable")) *out = v.k == TV_ARRAY || v.k == TV_STR;
    else if (!strcmp(name, "mapping")) *out = tv_is_obj(v);
    else if (!strcmp(name, "sequence")) *out = tv_is_arr(v) || tv_is_obj(v) || v.k == TV_STR;
    else if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v.k != TV_STR) {
            if (v.k == TV_UNDEF || v.k == TV_NULL)
                return tm_fail(in, at, "Cannot read properties of %s (reading 'to%sCase')",
                               v.k == TV_NULL ? "null" : "undefined", name[0] == 'l' ? "Lower" : "Upper");
            *out = false;
            if (v.k != TV_STR) return tm_fail(in, at, "str.to%sCase is not a function", name[0] == 'l' ? "Lower" : "Upper");
        }
        tstr *c = name[0] == 'l' ? js_lower(in->pool, v.u.s->s, v.u.s->n) : js_upper(in->pool, v.u.s->s, v.u.s->n);
        if (!c) return tm_oom(in, at);
        *out = c->n == v.u.s->n && !memcmp(c->s, v.u.s->s, c->n);
    } else if (!strcmp(name, "defined")) *out = v.k != TV_UNDEF;
    else if (!strcmp(name, "undefined")) *out = v.k == TV_UNDEF;
    else if (!strcmp(name, "equalto") || !strcmp(name, "eq")) *out = tv_strict_eq(v, arg);
    else return tm_fail(in, at, "Unknown test: %s", name);
    return R_OK;
}

static int filter_plain(interp *in, const node *at, const char *f, tv v, tv *out) {
    if (!strcmp(f, "safe")) {
        *out = v;
        return R_OK;
    }
    if (!strcmp(f, "tojson")) {
        tojson_opts o = {.undef_null = true};
        return tojson(in, at, v, &o, out);
    }
    if (tv_is_arr(v)) {
        tarr *a = v.u.a;
        if (!strcmp(f, "list")) *out = v;
        else if (!strcmp(f, "first")) *out = a->n ? a->v[0] : tv_undef();
        else if (!strcmp(f, "last")) *out = a->n ? a->v[a->n - 1] : tv_undef();
        else if (!strcmp(f, "length")) *out = tv_int((double)a->n);
        else if (!strcmp(f, "reverse")) {
            tarr *r = ta_new(in->pool, a->n);
            if (!r) return tm_oom(in, at);
            for (size_t i = 0; i < a->n; i++) r->v[r->n++] = a->v[a->n - 1 - i];
            *out = arr_tv(r);
        } else if (!strcmp(f, "join")) return join(in, at, v, "", 0, out);
        else if (!strcmp(f, "string")) {
            tojson_opts o = {0};
            return tojson(in, at, v, &o, out);
        } else if (!strcmp(f, "unique")) {
            tarr *r = ta_new(in->pool, a->n);
            if (!r) return tm_oom(in, at);
            for (size_t i = 0; i < a->n; i++) {
                bool seen = false;
                for (size_t j = 0; j < r->n && !seen; j++)
                    seen = tv_strict_eq(r->v[j], a->v[i]) ||
                           (tv_is_num(a->v[i]) && tv_is_num(r->v[j]) && isnan(a->v[i].u.n) && isnan(r->v[j].u.n));
                if (!seen) r->v[r->n++] = a->v[i];
            }
            *out = arr_tv(r);
        } else return tm_fail(in, at, "Unknown ArrayValue filter: %s", f);
        return R_OK;
    }
    if (v.k == TV_STR) {
        tstr *s = v.u.s;
        if (!strcmp(f, "length")) *out = tv_int((double)js_utf16_len(s->s, s->n));
        else if (!strcmp(f, "upper")) return ok_str(in, at, js_upper(in->pool, s->s, s->n), out);
        else if (!strcmp(f, "lower")) return ok_str(in, at, js_lower(in->pool, s->s, s->n), out);
        else if (!strcmp(f, "title") || !strcmp(f, "capitalize")) {
            tfunc fn = {.k = FN_METHOD, .method = f[0] == 't' ? 3 : 4, .self = v};
            tarr none = {0};
            return tm_call_method(in, at, &fn, &none, out);
        } else if (!strcmp(f, "trim")) return ok_str(in, at, trim_all(in->pool, s), out);
        else if (!strcmp(f, "indent")) return ok_str(in, at, indent(in->pool, s, 4, false, false), out);
        else if (!strcmp(f, "join") || !strcmp(f, "string")) *out = v;
        else if (!strcmp(f, "int")) {
            double d = parse_int(s->s, s->n);
            *out = tv_int(isnan(d) ? 0 : d);
        } else if (!strcmp(f, "float")) {
            double d = parse_float(s->s, s->n);
            *out = tv_float(isnan(d) ? 0 : d);
        } else return tm_fail(in, at, "Unknown StringValue filter: %s", f);
        return R_OK;
    }
    if (tv_is_num(v)) {
        if (!strcmp(f, "abs")) *out = v.k == TV_INT ? tv_int(fabs(v.u.n)) : tv_float(fabs(v.u.n));
        else if (!strcmp(f, "int")) *out = tv_int(floor(v.u.n));
        else if (!strcmp(f, "float")) *out = tv_float(v.u.n);
        else if (!strcmp(f, "string")) {
            sbuf b;
            sb_init(&b, in->pool);
            tv_render(&b, v);
            return ok_str(in, at, sb_str(&b), out);
        } else return tm_fail(in, at, "Unknown NumericValue filter: %s", f);
        return R_OK;
    }
    if (tv_is_obj(v)) {
        if (!strcmp(f, "items") || !strcmp(f, "keys") || !strcmp(f, "values") || !strcmp(f, "dictsort")) {
            tv fn;
            int rc = tm_member_builtin(in, at, v, f, strlen(f), &fn);
            if (rc) return rc;
            tarr none = {0};
            return tm_call_method(in, at, fn.u.f, &none, out);
        }
        if (!strcmp(f, "length")) *out = tv_int((double)v.u.m->n);
        else if (!strcmp(f, "get")) return tm_fail(in, at, "Object key must be a string: got UndefinedValue");
        else return tm_fail(in, at, "Unknown ObjectValue filter: %s", f);
        return R_OK;
    }
    if (v.k == TV_BOOL) {
        if (!strcmp(f, "bool")) *out = v;
        else if (!strcmp(f, "int")) *out = tv_int(v.u.b);
        else if (!strcmp(f, "float")) *out = tv_float(v.u.b);
        else if (!strcmp(f, "string")) return ok_str(in, at, ts_cstr(in->pool, v.u.b ? "true" : "false"), out);
        else return tm_fail(in, at, "Unknown BooleanValue filter: %s", f);
        return R_OK;
    }
    return tm_fail(in, at, "Cannot apply filter \"%s\" to type: %s", f, tv_type_name(v.k));
}

static bool kw(tmap *m, const char *k, tv *out) {
    tv *v = tmap_get(m, k, strlen(k));
    if (v) *out = *v;
    return v != NULL;
}

static tv pos_or_kw(tarr *a, size_t i, tmap *m, const char *k, tv dflt) {
    tv v;
    if (i < a->n) return a->v[i];
    if (k && kw(m, k, &v)) return v;
    return dflt;
}

/* sort(reverse, case_sensitive, attribute): stable, via dictsort-like keys */
static int filter_sort(interp *in, const node *at, tv v, tarr *a, tmap *m, tv *out) {
    tv rev = pos_or_kw(a, 0, m, "reverse", tv_bool(false));
    if (rev.k != TV_BOOL) return tm_fail(in, at, "reverse must be a boolean");
    tv cs = pos_or_kw(a, 1, m, "case_sensitive", tv_bool(false));
    if (cs.k != TV_BOOL) return tm_fail(in, at, "case_sensitive must be a boolean");
    tv attr = pos_or_kw(a, 2, m, "attribute", tv_null());
    if (attr.k != TV_STR && attr.k != TV_INT && attr.k != TV_NULL)
        return tm_fail(in, at, "attribute must be a string, integer, or null");
    /* build a {key: value} list sorted through tm_call_method(dictsort) is not reusable here;
     * sort an array of [key, item] pairs by value with dictsort on an ad-hoc map instead */
    tarr *src = v.u.a;
    tmap *pairs = tmap_new(in->pool, src->n);
    if (!pairs) return tm_oom(in, at);
    /* keys are the positions (unique), values the sort keys */
    for (size_t i = 0; i < src->n; i++) {
        char k[32];
        int kn = snprintf(k, sizeof k, "%zu", i);
        tv key = src->v[i];
        if (attr.k != TV_NULL) {
            char path[64];
            tstr *ps = attr.k == TV_STR ? attr.u.s : NULL;
            if (!ps) {
                js_num_str(attr.u.n, path);
                ps = ts_cstr(in->pool, path);
                if (!ps) return tm_oom(in, at);
            }
            /* getAttributeValue */
            tv cur = key;
            const char *p = ps->s, *end = ps->s + ps->n;
            for (;;) {
                const char *dot = memchr(p, '.', (size_t)(end - p));
                size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
                if (tv_is_container(cur)) {
                    tv *f = tmap_get(cur.u.m, p, len);
                    cur = f ? *f : tv_undef();
                } else if (tv_is_arr(cur)) {
                    char buf[32];
                    size_t l = len < 31 ? len : 31;
                    memcpy(buf, p, l);
                    buf[l] = 0;
                    char *e;
                    long idx = strtol(buf, &e, 10);
                    cur = (e == buf || idx < 0 || (size_t)idx >= cur.u.a->n) ? tv_undef() : cur.u.a->v[idx];
                } else {
                    cur = tv_undef();
                }
                if (!dot || cur.k == TV_UNDEF) break;
                p = dot + 1;
            }
            key = cur;
        }
        if (!tmap_set(in->pool, pairs, k, (size_t)kn, key)) return tm_oom(in, at);
    }
    tarr *args = ta_new(in->pool, 3);
    if (!args) return tm_oom(in, at);
    args->v[0] = cs;
    args->v[1] = tv_str(in->pool, "value", 5);
    args->v[2] = rev;
    args->n = 3;
    tfunc fn = {.k = FN_METHOD, .method = 15, .self = {.k = TV_OBJECT, .u.m = pairs}};
    tv sorted;
    int rc = tm_call_method(in, at, &fn, args, &sorted);
    if (rc) return rc;
    tarr *r = ta_new(in->pool, src->n);
    if (!r) return tm_oom(in, at);
    for (size_t i = 0; i < sorted.u.a->n; i++) {
        tstr *k = sorted.u.a->v[i].u.a->v[0].u.s;
        r->v[r->n++] = src->v[strtoul(k->s, NULL, 10)];
    }
    *out = arr_tv(r);
    return R_OK;
}

static int filter_call(interp *in, const node *call, tv v, env *e, tv *out) {
    const node *at = call;
    if (call->a->k != N_IDENT) return tm_fail(in, at, "Unknown filter: %s", "CallExpression");
    const char *f = call->a->str->s;
    tarr *a;
    tmap *m;
    int rc = tm_eval_args(in, call->list, call->n_list, e, &a, &m);
    if (rc) return rc;
    if (!strcmp(f, "tojson")) {
        tv ind = tv_null(), asc = tv_bool(false), sk = tv_bool(false), seps = tv_null();
        kw(m, "indent", &ind);
        kw(m, "ensure_ascii", &asc);
        kw(m, "sort_keys", &sk);
        kw(m, "separators", &seps);
        if (ind.k != TV_INT && ind.k != TV_NULL) return tm_fail(in, at, "If set, indent must be a number");
        if (asc.k != TV_BOOL) return tm_fail(in, at, "If set, ensure_ascii must be a boolean");
        if (sk.k != TV_BOOL) return tm_fail(in, at, "If set, sort_keys must be a boolean");
        tojson_opts o = {.undef_null = true, .ensure_ascii = asc.u.b, .sort_keys = sk.u.b};
        if (ind.k == TV_INT) {
            if (ind.u.n < 0) return tm_fail(in, at, "Invalid count value: %g", ind.u.n);
            if (ind.u.n > 64) return tm_fail(in, at, "tojson indent %g exceeds the limit of 64", ind.u.n);
            o.indent = (int)ind.u.n;
        }
        if (tv_is_arr(seps)) {
            if (seps.u.a->n != 2 || seps.u.a->v[0].k != TV_STR || seps.u.a->v[1].k != TV_STR)
                return tm_fail(in, at, "separators must be a tuple of two strings");
            o.item_sep = seps.u.a->v[0].u.s->s;
            o.key_sep = seps.u.a->v[1].u.s->s;
        } else if (seps.k != TV_NULL) {
            return tm_fail(in, at, "If set, separators must be a tuple of two strings");
        }
        return tojson(in, at, v, &o, out);
    }
    if (!strcmp(f, "join")) {
        if (v.k != TV_STR && !tv_is_arr(v))
            return tm_fail(in, at, "Cannot apply filter \"%s\" to type: %s", f, tv_type_name(v.k));
        tv sep = pos_or_kw(a, 0, m, "separator", tv_undef());
        if (sep.k == TV_UNDEF) return join(in, at, v, "", 0, out);
        if (sep.k != TV_STR) return tm_fail(in, at, "separator must be a string");
        return join(in, at, v, sep.u.s->s, sep.u.s->n, out);
    }
    if (!strcmp(f, "int") || !strcmp(f, "float")) {
        bool isint = f[0] == 'i';
        tv dflt = pos_or_kw(a, 0, m, "default", isint ? tv_int(0) : tv_float(0));
        if (v.k == TV_STR) {
            double d = isint ? parse_int(v.u.s->s, v.u.s->n) : parse_float(v.u.s->s, v.u.s->n);
            *out = isnan(d) ? dflt : isint ? tv_int(d) : tv_float(d);
        } else if (tv_is_num(v)) *out = v;
        else if (v.k == TV_BOOL) *out = isint ? tv_int(v.u.b) : tv_float(v.u.b);
        else return tm_fail(in, at, "Cannot apply filter \"%s\" to type: %s", f, tv_type_name(v.k));
        return R_OK;
    }
    if (!strcmp(f, "default")) {
        tv dflt = a->n > 0 ? a->v[0] : tv_str(in->pool, "", 0);
        tv flag = pos_or_kw(a, 1, m, "boolean", tv_bool(false));
        if (flag.k != TV_BOOL) return tm_fail(in, at, "`default` filter flag must be a boolean");
        *out = (v.k == TV_UNDEF || (flag.u.b && !tv_truthy(v))) ? dflt : v;
        return R_OK;
    }
    if (tv_is_arr(v)) {
        tarr *src = v.u.a;
        if (!strcmp(f, "sort")) return filter_sort(in, at, v, a, m, out);
        if (!strcmp(f, "selectattr") || !strcmp(f, "rejectattr")) {
            bool sel = f[0] == 's';
            for (size_t i = 0; i < src->n; i++)
                if (!tv_is_container(src->v[i]))
                    return tm_fail(in, at, "`%s` can only be applied to array of objects", f);
            for (size_t i = 0; i < call->n_list; i++)
                if (call->list[i]->k != N_STR) return tm_fail(in, at, "arguments of `%s` must be strings", f);
            if (a->n == 0) return tm_fail(in, at, "`%s` needs an attribute name", f);
            tstr *attr = a->v[0].u.s;
            const char *test = a->n > 1 ? a->v[1].u.s->s : NULL;
            tv val = a->n > 2 ? a->v[2] : tv_undef();
            if (test && !tm_test_exists(test)) return tm_fail(in, at, "Unknown test: %s", test);
            tarr *r = ta_new(in->pool, src->n);
            if (!r) return tm_oom(in, at);
            for (size_t i = 0; i < src->n; i++) {
                tv *x = tmap_get(src->v[i].u.m, attr->s, attr->n);
                bool res = false;
                if (x) {
                    if (test) {
                        if ((rc = tm_apply_test(in, at, test, *x, val, a->n > 2, &res))) return rc;
                    } else {
                        res = tv_truthy(*x);
                    }
                }
                if (sel ? res : !res) r->v[r->n++] = src->v[i];
            }
            *out = arr_tv(r);
            return R_OK;
        }
        if (!strcmp(f, "map")) {
            tv attr, dflt = tv_undef();
            if (!kw(m, "attribute", &attr))
                return tm_fail(in, at, "`map` expressions without `attribute` set are not currently supported.");
            if (attr.k != TV_STR) return tm_fail(in, at, "attribute must be a string");
            bool has_dflt = kw(m, "default", &dflt);
            tarr *r = ta_new(in->pool, src->n);
            if (!r) return tm_oom(in, at);
            for (size_t i = 0; i < src->n; i++) {
                tv item = src->v[i];
                if (!tv_is_container(item)) return tm_fail(in, at, "items in map must be an object");
                tv x = item;
                const char *p = attr.u.s->s, *end = p + attr.u.s->n;
                for (;;) {
                    const char *dot = memchr(p, '.', (size_t)(end - p));
                    size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
                    if (tv_is_container(x)) {
                        tv *fx = tmap_get(x.u.m, p, len);
                        x = fx ? *fx : tv_undef();
                    } else if (tv_is_arr(x)) {
                        char buf[32];
                        size_t l = len < 31 ? len : 31;
                        memcpy(buf, p, l);
                        buf[l] = 0;
                        char *ep;
                        long idx = strtol(buf, &ep, 10);
                        x = (ep == buf || idx < 0 || (size_t)idx >= x.u.a->n) ? tv_undef() : x.u.a->v[idx];
                    } else {
                        x = tv_undef();
                    }
                    if (!dot || x.k == TV_UNDEF) break;
                    p = dot + 1;
                }
                r->v[r->n++] = x.k == TV_UNDEF && has_dflt ? dflt : x;
            }
            *out = arr_tv(r);
            return R_OK;
        }
        return tm_fail(in, at, "Unknown ArrayValue filter: %s", f);
    }
    if (v.k == TV_STR) {
        if (!strcmp(f, "indent")) {
            tv w = pos_or_kw(a, 0, m, "width", tv_int(4));
            if (w.k != TV_INT) return tm_fail(in, at, "width must be a number");
            if (w.u.n > 1024) return tm_fail(in, at, "indent width %g exceeds the limit of 1024", w.u.n);
            tv first = pos_or_kw(a, 1, m, "first", tv_bool(false));
            tv blank = pos_or_kw(a, 2, m, "blank", tv_bool(false));
            return ok_str(in, at, indent(in->pool, v.u.s, w.u.n, raw_truthy(first), raw_truthy(blank)), out);
        }
        if (!strcmp(f, "replace")) {
            tfunc fn = {.k = FN_METHOD, .method = 10, .self = v};
            tarr *args = ta_new(in->pool, a->n + 1);
            if (!args) return tm_oom(in, at);
            for (size_t i = 0; i < a->n; i++) args->v[args->n++] = a->v[i];
            args->v[args->n++] = (tv){.k = TV_KWARGS, .u.m = m};
            return tm_call_method(in, at, &fn, args, out);
        }
        return tm_fail(in, at, "Unknown StringValue filter: %s", f);
    }
    if (tv_is_obj(v)) {
        tv fn;
        if ((rc = tm_member_builtin(in, at, v, f, strlen(f), &fn))) return rc;
        if (fn.k == TV_FUNC) {
            if (m->n && !ta_push(in->pool, a, (tv){.k = TV_KWARGS, .u.m = m})) return tm_oom(in, at);
            return tm_call_method(in, at, fn.u.f, a, out);
        }
        return tm_fail(in, at, "Unknown ObjectValue filter: %s", f);
    }
    return tm_fail(in, at, "Cannot apply filter \"%s\" to type: %s", f, tv_type_name(v.k));
}

int tm_apply_filter(interp *in, const node *filter, tv operand, env *e, tv *out) {
    if (filter->k == N_IDENT) {
        if (tv_is_arr(operand) && !strcmp(filter->str->s, "sort")) {
            tarr none = {0};
            tmap nm = {0};
            return filter_sort(in, filter, operand, &none, &nm, out);
        }
        return filter_plain(in, filter, filter->str->s, operand, out);
    }
    return filter_call(in, filter, operand, e, out);
}
