/* Chat-template builtins as @huggingface/jinja defines them: global functions (namespace,
 * raise_exception, range, strftime_now), macros and call blocks, string/object methods
 * (strip & co. take no argument there: they trim all JS whitespace), filters (per operand type,
 * with the reference's error texts for unsupported combinations) and tests. */
#include "template_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    M_UPPER, M_LOWER, M_STRIP, M_TITLE, M_CAPITALIZE, M_RSTRIP, M_LSTRIP, M_STARTSWITH,
    M_ENDSWITH, M_SPLIT, M_REPLACE, M_GET, M_ITEMS, M_KEYS, M_VALUES, M_DICTSORT,
};
static const char *const method_names[] = {
    "upper", "lower", "strip", "title", "capitalize", "rstrip", "lstrip", "startswith",
    "endswith", "split", "replace", "get", "items", "keys", "values", "dictsort",
};

static int ok_str(interp *in, const node *at, tstr *s, tv *out) {
    *out = tv_strs(s);
    return s ? R_OK : tm_oom(in, at);
}

static tv arr_tv(tarr *a) { return (tv){.k = TV_ARRAY, .u.a = a}; }

int tm_member_builtin(interp *in, const node *at, tv obj, const char *name, size_t n, tv *out) {
    *out = tv_undef();
    if (n == 6 && !memcmp(name, "length", 6)) {
        if (obj.k == TV_STR) *out = tv_int((double)js_utf16_len(obj.u.s->s, obj.u.s->n));
        else if (tv_is_arr(obj)) *out = tv_int((double)obj.u.a->n);
        return R_OK;
    }
    int lo = obj.k == TV_STR ? M_UPPER : tv_is_obj(obj) ? M_GET : -1;
    int hi = obj.k == TV_STR ? M_REPLACE : M_DICTSORT;
    if (lo < 0) return R_OK;
    for (int m = lo; m <= hi; m++) {
        if (strlen(method_names[m]) == n && !memcmp(method_names[m], name, n)) {
            tfunc *f = tm_alloc(in->pool, sizeof *f);
            if (!f) return tm_oom(in, at);
            f->k = FN_METHOD;
            f->method = m;
            f->self = obj;
            *out = (tv){.k = TV_FUNC, .u.f = f};
            return R_OK;
        }
    }
    return R_OK;
}

/* ---- string helpers ------------------------------------------------------------------- */

static tstr *trim(tm_pool *p, tstr *s, bool left, bool right) {
    size_t a = 0, b = s->n, l;
    if (left)
        while (a < b && (l = js_space_len(s->s + a, b - a))) a += l;
    if (right)
        while (b > a && (l = js_space_len_back(s->s + a, b - a))) b -= l;
    return ts_new(p, s->s + a, b - a);
}

static bool is_word(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static tstr *title(tm_pool *p, tstr *s) { /* /\b\w/g -> upper (ASCII word chars) */
    tstr *r = ts_new(p, s->s, s->n);
    if (!r) return NULL;
    for (size_t i = 0; i < r->n; i++) {
        unsigned char c = (unsigned char)r->s[i];
        if (is_word(c) && (i == 0 || !is_word((unsigned char)s->s[i - 1])) && c >= 'a' && c <= 'z')
            r->s[i] = (char)(c - 32);
    }
    return r;
}

static tstr *capitalize(tm_pool *p, tstr *s) {
    if (!s->n) return s;
    uint32_t cp;
    int l = bm_utf8_decode((const uint8_t *)s->s, s->n, &cp);
    if (!l) l = 1;
    tstr *u = js_upper(p, s->s, (size_t)l);
    if (!u) return NULL;
    sbuf b;
    sb_init(&b, p);
    sb_put(&b, u->s, u->n);
    sb_put(&b, s->s + l, s->n - (size_t)l);
    return sb_str(&b);
}

static bool has_prefix(tstr *s, tstr *x, bool suffix) {
    if (x->n > s->n) return false;
    return !memcmp(s->s + (suffix ? s->n - x->n : 0), x->s, x->n);
}

static int str_split(interp *in, const node *at, tstr *s, tarr *args, tv *out) {
    tv sep = args->n > 0 ? args->v[0] : tv_null();
    tv max = args->n > 1 ? args->v[1] : tv_int(-1);
    if (sep.k != TV_STR && sep.k != TV_NULL) return tm_fail(in, at, "sep argument must be a string or null");
    if (max.k != TV_INT) return tm_fail(in, at, "maxsplit argument must be a number");
    double maxsplit = max.u.n;
    tarr *r = ta_new(in->pool, 0);
    if (!r) return tm_oom(in, at);
    if (sep.k == TV_NULL) {
        size_t i = 0, l, n = s->n;
        while (i < n && (l = js_space_len(s->s + i, n - i))) i += l;
        while (i < n) {
            size_t a = i;
            while (i < n && !js_space_len(s->s + i, n - i)) {
                uint32_t cp;
                int cl = bm_utf8_decode((const uint8_t *)s->s + i, n - i, &cp);
                i += cl ? (size_t)cl : 1;
            }
            if (maxsplit != -1 && (double)r->n >= maxsplit) {
                if (!ta_push(in->pool, r, tv_str(in->pool, s->s + a, n - a))) return tm_oom(in, at);
                break;
            }
            if (!ta_push(in->pool, r, tv_str(in->pool, s->s + a, i - a))) return tm_oom(in, at);
            while (i < n && (l = js_space_len(s->s + i, n - i))) i += l;
        }
    } else {
        tstr *d = sep.u.s;
        if (!d->n) return tm_fail(in, at, "empty separator");
        size_t a = 0;
        for (;;) {
            const char *hit = (maxsplit != -1 && (double)r->n >= maxsplit)
                                  ? NULL
                                  : memmem(s->s + a, s->n - a, d->s, d->n);
            if (!hit) {
                if (!ta_push(in->pool, r, tv_str(in->pool, s->s + a, s->n - a))) return tm_oom(in, at);
                break;
            }
            size_t h = (size_t)(hit - s->s);
            if (!ta_push(in->pool, r, tv_str(in->pool, s->s + a, h - a))) return tm_oom(in, at);
            a = h + d->n;
        }
    }
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].k != TV_STR) return tm_oom(in, at);
    *out = arr_tv(r);
    return R_OK;
}

static int str_replace(interp *in, const node *at, tstr *s, tarr *args, tv *out) {
    if (args->n < 2) return tm_fail(in, at, "replace() requires at least two arguments");
    tv o = args->v[0], nw = args->v[1], cnt = tv_null();
    if (o.k != TV_STR || nw.k != TV_STR) return tm_fail(in, at, "replace() arguments must be strings");
    if (args->n > 2) {
        if (args->v[2].k == TV_KWARGS) {
            tv *c = tmap_get(args->v[2].u.m, "count", 5);
            cnt = c ? *c : tv_null();
        } else {
            cnt = args->v[2];
        }
    }
    if (cnt.k != TV_INT && cnt.k != TV_NULL) return tm_fail(in, at, "replace() count argument must be a number or null");
    double remaining = cnt.k == TV_NULL || cnt.u.n < 0 ? INFINITY : cnt.u.n;
    sbuf b;
    sb_init(&b, in->pool);
    tstr *old = o.u.s;
    if (old->n == 0) { /* matches at every code point boundary */
        for (size_t i = 0;;) {
            if (remaining > 0) {
                sb_put(&b, nw.u.s->s, nw.u.s->n);
                remaining--;
            }
            if (i >= s->n) break;
            uint32_t cp;
            int l = bm_utf8_decode((const uint8_t *)s->s + i, s->n - i, &cp);
            if (!l) l = 1;
            sb_put(&b, s->s + i, (size_t)l);
            i += (size_t)l;
        }
    } else {
        size_t a = 0;
        while (a <= s->n) {
            const char *hit = remaining > 0 ? memmem(s->s + a, s->n - a, old->s, old->n) : NULL;
            if (!hit) break;
            size_t h = (size_t)(hit - s->s);
            sb_put(&b, s->s + a, h - a);
            sb_put(&b, nw.u.s->s, nw.u.s->n);
            remaining--;
            a = h + old->n;
        }
        sb_put(&b, s->s + a, s->n - a);
    }
    return ok_str(in, at, sb_str(&b), out);
}

static tv obj_items(interp *in, tmap *m) {
    tarr *a = ta_new(in->pool, m->n);
    if (!a) return tv_undef();
    for (size_t i = 0; i < m->n; i++) {
        tarr *pair = ta_new(in->pool, 2);
        if (!pair) return tv_undef();
        pair->v[0] = tv_strs(m->keys[i]);
        pair->v[1] = m->vals[i];
        pair->n = 2;
        a->v[a->n++] = arr_tv(pair);
    }
    return arr_tv(a);
}

/* compareRuntimeValues; returns false with an error message on incomparable values */
static bool compare(interp *in, const node *at, tv a, tv b, bool case_sensitive, int *res) {
    if (a.k == TV_NULL && b.k == TV_NULL) return (*res = 0, true);
    if (a.k == TV_NULL || b.k == TV_NULL || a.k == TV_UNDEF || b.k == TV_UNDEF) {
        if (a.k == TV_UNDEF && b.k == TV_UNDEF) return (*res = 0, true);
        tm_fail(in, at, "Cannot compare %s with %s", tv_type_name(a.k), tv_type_name(b.k));
        return false;
    }
    bool an = tv_is_num(a) || a.k == TV_BOOL, bn = tv_is_num(b) || b.k == TV_BOOL;
    if (an && bn) {
        double x = a.k == TV_BOOL ? a.u.b : a.u.n, y = b.k == TV_BOOL ? b.u.b : b.u.n;
        *res = x < y ? -1 : x > y ? 1 : 0;
        return true;
    }
    if (a.k != b.k) {
        tm_fail(in, at, "Cannot compare different types: %s and %s", tv_type_name(a.k), tv_type_name(b.k));
        return false;
    }
    if (a.k != TV_STR) {
        tm_fail(in, at, "Cannot compare type: %s", tv_type_name(a.k));
        return false;
    }
    tstr *x = a.u.s, *y = b.u.s;
    if (!case_sensitive) {
        x = js_lower(in->pool, x->s, x->n);
        y = js_lower(in->pool, y->s, y->n);
        if (!x || !y) {
            tm_oom(in, at);
            return false;
        }
    }
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->s, y->s, n);
    *res = r < 0 ? -1 : r > 0 ? 1 : x->n < y->n ? -1 : x->n > y->n;
    return true;
}

typedef struct sort_ctx {
    interp *in;
    const node *at;
    bool cs, rev, failed;
    tv *keys;
} sort_ctx;

/* stable merge sort of idx[] by keys */
static void msort(sort_ctx *c, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2 || c->failed) return;
    size_t h = n / 2;
    msort(c, idx, tmp, h);
    msort(c, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n && !c->failed) {
        int r;
        if (!compare(c->in, c->at, c->keys[idx[i]], c->keys[idx[j]], c->cs, &r)) {
            c->failed = true;
            return;
        }
        if (c->rev) r = -r;
        tmp[k++] = r <= 0 ? idx[i++] : idx[j++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* sorts src (array of values) by key_of(i); returns new array */
static int sort_values(interp *in, const node *at, tarr *src, tv *keys, bool cs, bool rev, tv *out) {
    size_t n = src->n;
    size_t *idx = tm_alloc(in->pool, (n + 1) * sizeof *idx), *tmp = tm_alloc(in->pool, (n + 1) * sizeof *tmp);
    tarr *r = ta_new(in->pool, n);
    if (!idx || !tmp || !r) return tm_oom(in, at);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    sort_ctx c = {in, at, cs, rev, false, keys};
    msort(&c, idx, tmp, n);
    if (c.failed) return R_ERR;
    for (size_t i = 0; i < n; i++) r->v[r->n++] = src->v[idx[i]];
    *out = arr_tv(r);
    return R_OK;
}

static bool kw_get(tarr *args, const char *k, tv *out) {
    if (args->n && args->v[args->n - 1].k == TV_KWARGS) {
        tv *v = tmap_get(args->v[args->n - 1].u.m, k, strlen(k));
        if (v) {
            *out = *v;
            return true;
        }
    }
    return false;
}

static size_t n_positional(tarr *args) {
    return args->n && args->v[args->n - 1].k == TV_KWARGS ? args->n - 1 : args->n;
}

/* positional i, else keyword, else default */
static tv arg_or(tarr *args, size_t i, const char *k, tv dflt) {
    tv v;
    if (i < n_positional(args)) return args->v[i];
    if (k && kw_get(args, k, &v)) return v;
    return dflt;
}

static int dictsort(interp *in, const node *at, tmap *m, tarr *args, tv *out) {
    tv cs = arg_or(args, 0, "case_sensitive", tv_bool(false));
    if (cs.k != TV_BOOL) return tm_fail(in, at, "case_sensitive must be a boolean");
    tv by = arg_or(args, 1, "by", tv_undef());
    bool by_value = false;
    if (by.k != TV_UNDEF) {
        if (by.k != TV_STR) return tm_fail(in, at, "by must be a string");
        if (!strcmp(by.u.s->s, "value")) by_value = true;
        else if (strcmp(by.u.s->s, "key")) return tm_fail(in, at, "by must be either 'key' or 'value'");
    }
    tv rev = arg_or(args, 2, "reverse", tv_bool(false));
    if (rev.k != TV_BOOL) return tm_fail(in, at, "reverse must be a boolean");
    tv items = obj_items(in, m);
    if (items.k == TV_UNDEF) return tm_oom(in, at);
    tv *keys = tm_alloc(in->pool, (m->n + 1) * sizeof *keys);
    if (!keys) return tm_oom(in, at);
    for (size_t i = 0; i < m->n; i++) keys[i] = by_value ? m->vals[i] : tv_strs(m->keys[i]);
    return sort_values(in, at, items.u.a, keys, cs.u.b, rev.u.b, out);
}

int tm_call_method(interp *in, const node *at, tfunc *f, tarr *args, tv *out) {
    tv self = f->self;
    tstr *s = self.k == TV_STR ? self.u.s : NULL;
    switch (f->method) {
    case M_UPPER: return ok_str(in, at, js_upper(in->pool, s->s, s->n), out);
    case M_LOWER: return ok_str(in, at, js_lower(in->pool, s->s, s->n), out);
    case M_STRIP: return ok_str(in, at, trim(in->pool, s, true, true), out);
    case M_LSTRIP: return ok_str(in, at, trim(in->pool, s, true, false), out);
    case M_RSTRIP: return ok_str(in, at, trim(in->pool, s, false, true), out);
    case M_TITLE: return ok_str(in, at, title(in->pool, s), out);
    case M_CAPITALIZE: return ok_str(in, at, capitalize(in->pool, s), out);
    case M_STARTSWITH:
    case M_ENDSWITH: {
        const char *nm = f->method == M_STARTSWITH ? "startswith" : "endswith";
        bool suf = f->method == M_ENDSWITH;
        if (!args->n) return tm_fail(in, at, "%s() requires at least one argument", nm);
        tv p = args->v[0];
        if (p.k == TV_STR) {
            *out = tv_bool(has_prefix(s, p.u.s, suf));
            return R_OK;
        }
        if (tv_is_arr(p)) {
            for (size_t i = 0; i < p.u.a->n; i++) {
                if (p.u.a->v[i].k != TV_STR) return tm_fail(in, at, "%s() tuple elements must be strings", nm);
                if (has_prefix(s, p.u.a->v[i].u.s, suf)) {
                    *out = tv_bool(true);
                    return R_OK;
                }
            }
            *out = tv_bool(false);
            return R_OK;
        }
        return tm_fail(in, at, "%s() argument must be a string or tuple of strings", nm);
    }
    case M_SPLIT: return str_split(in, at, s, args, out);
    case M_REPLACE: return str_replace(in, at, s, args, out);
    case M_GET: {
        tv k = args->n > 0 ? args->v[0] : tv_undef();
        if (k.k != TV_STR) return tm_fail(in, at, "Object key must be a string: got %s", tv_type_name(k.k));
        tv *v = tmap_get(self.u.m, k.u.s->s, k.u.s->n);
        *out = v ? *v : args->n > 1 ? args->v[1] : tv_null();
        return R_OK;
    }
    case M_ITEMS: *out = obj_items(in, self.u.m); return out->k == TV_UNDEF ? tm_oom(in, at) : R_OK;
    case M_KEYS:
    case M_VALUES: {
        tarr *a = ta_new(in->pool, self.u.m->n);
        if (!a) return tm_oom(in, at);
        for (size_t i = 0; i < self.u.m->n; i++)
            a->v[a->n++] = f->method == M_KEYS ? tv_strs(self.u.m->keys[i]) : self.u.m->vals[i];
        *out = arr_tv(a);
        return R_OK;
    }
    case M_DICTSORT: return dictsort(in, at, self.u.m, args, out);
    }
    return tm_fail(in, at, "unknown method");
}

/* ---- global functions, macros --------------------------------------------------------- */

static bool mentions(const node *x, const char *name) {
    if (!x) return false;
    if (x->k == N_IDENT && !strcmp(x->str->s, name)) return true;
    if (mentions(x->a, name) || mentions(x->b, name) || mentions(x->c, name)) return true;
    for (size_t i = 0; i < x->n_list; i++)
        if (mentions(x->list[i], name)) return true;
    for (size_t i = 0; i < x->n_list2; i++)
        if (mentions(x->list2[i], name)) return true;
    return false;
}

static int bind_args(interp *in, const node *at, const char *display, node *const *params, size_t n_params,
                     node *const *body, size_t n_body, tarr *args, env *scope) {
    size_t npos = n_positional(args);
    tmap *kw = tmap_new(in->pool, 0);
    if (!kw) return tm_oom(in, at);
    if (npos < args->n) {
        tmap *src = args->v[args->n - 1].u.m;
        for (size_t i = 0; i < src->n; i++)
            if (!tmap_set(in->pool, kw, src->keys[i]->s, src->keys[i]->n, src->vals[i])) return tm_oom(in, at);
    }
    bool *pending = tm_alloc(in->pool, n_params + 1);
    if (!pending) return tm_oom(in, at);
    for (size_t i = 0; i < n_params; i++) {
        const node *p = params[i];
        tstr *name = p->str;
        tv v = tv_undef();
        bool have = i < npos;
        if (have) v = args->v[i];
        if (!have) {
            for (size_t j = 0; j < kw->n; j++) {
                if (kw->keys[j]->n == name->n && !memcmp(kw->keys[j]->s, name->s, name->n)) {
                    v = kw->vals[j];
                    have = true;
                    memmove(kw->keys + j, kw->keys + j + 1, (kw->n - j - 1) * sizeof *kw->keys);
                    memmove(kw->vals + j, kw->vals + j + 1, (kw->n - j - 1) * sizeof *kw->vals);
                    kw->n--;
                    break;
                }
            }
        }
        pending[i] = !have && p->k == N_KWARG;
        if (!env_set(in, scope, name->s, name->n, v)) return tm_oom(in, at);
    }
    bool uses_kwargs = false, uses_varargs = false;
    for (size_t i = 0; i < n_body; i++) {
        uses_kwargs = uses_kwargs || mentions(body[i], "kwargs");
        uses_varargs = uses_varargs || mentions(body[i], "varargs");
    }
    if (uses_kwargs) {
        if (!env_set(in, scope, "kwargs", 6, (tv){.k = TV_OBJECT, .u.m = kw})) return tm_oom(in, at);
    } else if (kw->n) {
        return tm_fail(in, at, "macro %s takes no keyword argument '%s'", display, kw->keys[0]->s);
    }
    if (uses_varargs) {
        tarr *va = ta_new(in->pool, 0);
        if (!va) return tm_oom(in, at);
        for (size_t i = n_params; i < npos; i++)
            if (!ta_push(in->pool, va, args->v[i])) return tm_oom(in, at);
        if (!env_set(in, scope, "varargs", 7, arr_tv(va))) return tm_oom(in, at);
    } else if (npos > n_params) {
        return tm_fail(in, at, "macro %s takes not more than %zu argument(s)", display, n_params);
    }
    for (size_t i = 0; i < n_params; i++) {
        if (!pending[i]) continue;
        tv v;
        int rc = tm_eval(in, params[i]->a, scope, &v);
        if (rc) return rc;
        if (!env_set(in, scope, params[i]->str->s, params[i]->str->n, v)) return tm_oom(in, at);
    }
    return R_OK;
}

static int fn_namespace(interp *in, const node *at, tarr *args, tv *out) {
    size_t npos = n_positional(args);
    if (npos > 1) return tm_fail(in, at, "namespace expected at most 1 argument, got %zu", npos);
    tmap *m = tmap_new(in->pool, 0);
    if (!m) return tm_oom(in, at);
    if (npos == 1) {
        tv src = args->v[0];
        if (tv_is_obj(src)) {
            for (size_t i = 0; i < src.u.m->n; i++)
                if (!tmap_set(in->pool, m, src.u.m->keys[i]->s, src.u.m->keys[i]->n, src.u.m->vals[i]))
                    return tm_oom(in, at);
        } else if (tv_is_arr(src)) {
            for (size_t i = 0; i < src.u.a->n; i++) {
                tv pr = src.u.a->v[i];
                if (!tv_is_arr(pr) || pr.u.a->n != 2)
                    return tm_fail(in, at, "namespace expected an object or an iterable of [key, value] pairs");
                if (pr.u.a->v[0].k != TV_STR) return tm_fail(in, at, "namespace keys must be strings");
                tstr *k = pr.u.a->v[0].u.s;
                if (!tmap_set(in->pool, m, k->s, k->n, pr.u.a->v[1])) return tm_oom(in, at);
            }
        } else {
            return tm_fail(in, at, "'%s' object is not iterable", tv_type_name(src.k));
        }
    }
    if (npos < args->n) {
        tmap *kw = args->v[args->n - 1].u.m;
        for (size_t i = 0; i < kw->n; i++)
            if (!tmap_set(in->pool, m, kw->keys[i]->s, kw->keys[i]->n, kw->vals[i])) return tm_oom(in, at);
    }
    *out = (tv){.k = TV_NS, .u.m = m};
    return R_OK;
}

static int fn_range(interp *in, const node *at, tarr *args, tv *out) {
    double v[3] = {0, 0, 1};
    size_t n = args->n < 3 ? args->n : 3;
    for (size_t i = 0; i < n; i++) {
        if (!tv_is_num(args->v[i])) return tm_fail(in, at, "range() arguments must be numbers");
        v[i] = args->v[i].u.n;
    }
    double start = 0, stop, step = n == 3 ? v[2] : 1;
    if (n <= 1) stop = n ? v[0] : 0;
    else {
        start = v[0];
        stop = v[1];
    }
    if (step == 0) return tm_fail(in, at, "range() step must not be zero");
    tarr *a = ta_new(in->pool, 0);
    if (!a) return tm_oom(in, at);
    for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (a->n >= TM_MAX_RANGE) return tm_fail(in, at, "range() longer than the limit of %u", TM_MAX_RANGE);
        if (!ta_push(in->pool, a, i == floor(i) ? tv_int(i) : tv_float(i))) return tm_oom(in, at);
    }
    *out = arr_tv(a);
    return R_OK;
}

static int fn_strftime(interp *in, const node *at, tarr *args, tv *out) {
    if (!args->n || args->v[0].k != TV_STR) return tm_fail(in, at, "strftime_now() needs a format string");
    static const char *months[] = {"January", "February", "March",     "April",   "May",      "June",
                                   "July",    "August",   "September", "October", "November", "December"};
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    tstr *f = args->v[0].u.s;
    sbuf b;
    sb_init(&b, in->pool);
    char buf[32];
    for (size_t i = 0; i < f->n; i++) {
        if (f->s[i] == '%' && i + 1 < f->n && strchr("YmdbBHM%", f->s[i + 1]) && f->s[i + 1]) {
            char c = f->s[++i];
            switch (c) {
            case 'Y': snprintf(buf, sizeof buf, "%d", tmv.tm_year + 1900); break;
            case 'm': snprintf(buf, sizeof buf, "%02d", tmv.tm_mon + 1); break;
            case 'd': snprintf(buf, sizeof buf, "%02d", tmv.tm_mday); break;
            case 'b': snprintf(buf, sizeof buf, "%.3s", months[tmv.tm_mon]); break;
            case 'B': snprintf(buf, sizeof buf, "%s", months[tmv.tm_mon]); break;
            case 'H': snprintf(buf, sizeof buf, "%02d", tmv.tm_hour); break;
            case 'M': snprintf(buf, sizeof buf, "%02d", tmv.tm_min); break;
            default: snprintf(buf, sizeof buf, "%%"); break;
            }
            sb_puts(&b, buf);
        } else {
            sb_putc(&b, f->s[i]);
        }
    }
    return ok_str(in, at, sb_str(&b), out);
}

int tm_call(interp *in, const node *at, tv fnv, tarr *args, env *e, tv *out) {
    tfunc *f = fnv.u.f;
    *out = tv_undef();
    switch (f->k) {
    case FN_NAMESPACE: return fn_namespace(in, at, args, out);
    case FN_RANGE: return fn_range(in, at, args, out);
    case FN_STRFTIME: return fn_strftime(in, at, args, out);
    case FN_RAISE: {
        sbuf b;
        sb_init(&b, in->pool);
        if (args->n && args->v[0].k != TV_UNDEF) tv_raw_str(&b, args->v[0]);
        bm_err_set(in->err, BM_EINVAL, "%s", b.p ? b.p : "");
        in->raised = true;
        return R_ERR;
    }
    case FN_METHOD: return tm_call_method(in, at, f, args, out);
    case FN_MACRO:
    case FN_CALLER: {
        if (++in->depth > TM_MAX_CALL_DEPTH) {
            in->depth--;
            return tm_fail(in, at, "macro calls nest deeper than the limit of %d", TM_MAX_CALL_DEPTH);
        }
        const node *d = f->decl;
        env *scope = env_new(in, f->k == FN_MACRO ? e : f->def_env);
        if (!scope) return tm_oom(in, at);
        char display[300];
        if (f->k == FN_MACRO) snprintf(display, sizeof display, "'%s'", d->str->s);
        else snprintf(display, sizeof display, "None");
        int rc = bind_args(in, at, display, d->list, d->n_list, d->list2, d->n_list2, args, scope);
        sbuf b;
        sb_init(&b, in->pool);
        if (!rc) rc = tm_exec_block(in, d->list2, d->n_list2, scope, &b);
        in->depth--;
        if (rc) return rc;
        return ok_str(in, at, sb_str(&b), out);
    }
    }
    return tm_fail(in, at, "unknown function");
}
