/* Chat-template evaluator: scopes, statements (if, for with loop.*, set, macro, call, filter
 * blocks, break/continue) and expressions, with @huggingface/jinja's semantics: a for loop
 * and a macro call open a scope, `set` writes the current scope, macros see the caller's
 * scope, output of a loop iteration interrupted by break/continue is dropped, `==` is
 * JavaScript's loose equality, `+` on a string concatenates String(value). Runtime errors
 * carry "template:LINE:COL:" and the reference's message text. */
#include "template_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tm_fail(interp *in, const node *at, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) bm_err_set(in->err, BM_EINVAL, "template:%u:%u: %s", at->line, at->col, msg);
    else bm_err_set(in->err, BM_EINVAL, "template: %s", msg);
    return R_ERR;
}

int tm_oom(interp *in, const node *at) {
    (void)at;
    bm_err_set(in->err, BM_ENOMEM,
               "template: rendering needs more than %u MiB of memory or a string over %u MiB",
               TM_MAX_MEMORY >> 20, TM_MAX_OUTPUT >> 20);
    return R_ERR;
}

env *env_new(interp *in, env *parent) {
    env *e = tm_alloc(in->pool, sizeof *e);
    if (e) e->parent = parent;
    return e;
}

bool env_set(interp *in, env *e, const char *name, size_t n, tv v) {
    return tmap_set(in->pool, &e->vars, name, n, v);
}

tv env_get(const env *e, const char *name, size_t n) {
    for (; e; e = e->parent) {
        tv *v = tmap_get(&e->vars, name, n);
        if (v) return *v;
    }
    return tv_undef();
}

/* ---- expressions ---------------------------------------------------------------------- */

static int concat(interp *in, const node *at, tv l, tv r, tv *out) {
    sbuf b;
    sb_init(&b, in->pool);
    tv_raw_str(&b, l);
    tv_raw_str(&b, r);
    *out = tv_strs(sb_str(&b));
    return out->k == TV_STR ? R_OK : tm_oom(in, at);
}

static bool str_contains(tstr *hay, tstr *needle) {
    if (needle->n == 0) return true;
    if (needle->n > hay->n) return false;
    return memmem(hay->s, hay->n, needle->s, needle->n) != NULL;
}

static int eval_binary(interp *in, const node *x, env *e, tv *out) {
    tv l, r;
    int rc = tm_eval(in, x->a, e, &l);
    if (rc) return rc;
    if (x->op == OP_AND || x->op == OP_OR) {
        bool t = tv_truthy(l);
        if ((x->op == OP_AND) != t) {
            *out = l;
            return R_OK;
        }
        return tm_eval(in, x->b, e, out);
    }
    if ((rc = tm_eval(in, x->b, e, &r))) return rc;
    int op = x->op;
    if (op == OP_EQ || op == OP_NE) {
        bool eq = tv_loose_eq(in->pool, l, r);
        *out = tv_bool(op == OP_EQ ? eq : !eq);
        return R_OK;
    }
    if (l.k == TV_UNDEF || r.k == TV_UNDEF) {
        if (r.k == TV_UNDEF && (op == OP_IN || op == OP_NOTIN)) {
            *out = tv_bool(op == OP_NOTIN);
            return R_OK;
        }
        return tm_fail(in, x, "Cannot perform operation %s on undefined values", op_name(op));
    }
    if (l.k == TV_NULL || r.k == TV_NULL) return tm_fail(in, x, "Cannot perform operation on null values");
    if (op == OP_CONCAT) return concat(in, x, l, r, out);
    bool lnum = tv_is_num(l) || l.k == TV_BOOL, rnum = tv_is_num(r) || r.k == TV_BOOL;
    if (op == OP_POW && lnum && rnum) {
        double a = l.k == TV_BOOL ? l.u.b : l.u.n, b = r.k == TV_BOOL ? r.u.b : r.u.n;
        if (a == 0 && b < 0) return tm_fail(in, x, "0.0 cannot be raised to a negative power");
        double res = pow(a, b);
        if (!isfinite(res)) return tm_fail(in, x, "Exponentiation result is not a finite real number");
        *out = (l.k == TV_FLOAT || r.k == TV_FLOAT || b < 0) ? tv_float(res) : tv_int(res);
        return R_OK;
    }
    if (tv_is_num(l) && tv_is_num(r)) {
        double a = l.u.n, b = r.u.n;
        bool f = l.k == TV_FLOAT || r.k == TV_FLOAT;
        switch (op) {
        case OP_ADD: *out = f ? tv_float(a + b) : tv_int(a + b); return R_OK;
        case OP_SUB: *out = f ? tv_float(a - b) : tv_int(a - b); return R_OK;
        case OP_MUL: *out = f ? tv_float(a * b) : tv_int(a * b); return R_OK;
        case OP_DIV: *out = tv_float(a / b); return R_OK;
        case OP_FLOORDIV: *out = f ? tv_float(floor(a / b)) : tv_int(floor(a / b)); return R_OK;
        case OP_MOD: *out = f ? tv_float(fmod(a, b)) : tv_int(fmod(a, b)); return R_OK;
        case OP_LT: *out = tv_bool(a < b); return R_OK;
        case OP_GT: *out = tv_bool(a > b); return R_OK;
        case OP_GE: *out = tv_bool(a >= b); return R_OK;
        case OP_LE: *out = tv_bool(a <= b); return R_OK;
        default: break;
        }
    } else if (tv_is_arr(l) && tv_is_arr(r)) {
        if (op == OP_ADD) {
            tarr *a = ta_new(in->pool, l.u.a->n + r.u.a->n);
            if (!a) return tm_oom(in, x);
            for (size_t i = 0; i < l.u.a->n; i++) a->v[a->n++] = l.u.a->v[i];
            for (size_t i = 0; i < r.u.a->n; i++) a->v[a->n++] = r.u.a->v[i];
            *out = (tv){.k = TV_ARRAY, .u.a = a};
            return R_OK;
        }
    } else if (tv_is_arr(r)) {
        if (op == OP_IN || op == OP_NOTIN) {
            bool m = false;
            for (size_t i = 0; i < r.u.a->n && !m; i++) m = tv_strict_eq(r.u.a->v[i], l);
            *out = tv_bool(op == OP_IN ? m : !m);
            return R_OK;
        }
    }
    if ((l.k == TV_STR || r.k == TV_STR) && op == OP_ADD) return concat(in, x, l, r, out);
    if (l.k == TV_STR && r.k == TV_STR && (op == OP_IN || op == OP_NOTIN)) {
        bool m = str_contains(r.u.s, l.u.s);
        *out = tv_bool(op == OP_IN ? m : !m);
        return R_OK;
    }
    if (l.k == TV_STR && tv_is_obj(r) && (op == OP_IN || op == OP_NOTIN)) {
        bool m = tmap_get(r.u.m, l.u.s->s, l.u.s->n) != NULL;
        *out = tv_bool(op == OP_IN ? m : !m);
        return R_OK;
    }
    return tm_fail(in, x, "Unknown operator \"%s\" between %s and %s", op_name(op),
                   tv_type_name(l.k), tv_type_name(r.k));
}

/* Python-style slice with the reference's clamping (utils.ts slice). */
static void slice_bounds(double len, bool has_start, double start, bool has_stop, double stop,
                         double step, double *s0, double *s1) {
    if (step >= 0) {
        start = !has_start ? 0 : start < 0 ? fmax(len + start, 0) : fmin(start, len);
        stop = !has_stop ? len : stop < 0 ? fmax(len + stop, 0) : fmin(stop, len);
    } else {
        start = !has_start ? len - 1 : start < 0 ? fmax(len + start, -1) : fmin(start, len - 1);
        stop = !has_stop ? -1 : stop < -1 ? fmax(len + stop, -1) : fmin(stop, len - 1);
    }
    *s0 = start;
    *s1 = stop;
}

static int eval_slice(interp *in, const node *x, tv obj, env *e, tv *out) {
    if (!tv_is_arr(obj) && obj.k != TV_STR) return tm_fail(in, x, "Slice object must be an array or string");
    tv v[3] = {tv_undef(), tv_undef(), tv_undef()};
    const node *parts[3] = {x->a, x->b, x->c};
    static const char *names[3] = {"start", "stop", "step"};
    for (int i = 0; i < 3; i++) {
        if (parts[i]) {
            int rc = tm_eval(in, parts[i], e, &v[i]);
            if (rc) return rc;
        }
        if (v[i].k != TV_INT && v[i].k != TV_UNDEF)
            return tm_fail(in, x, "Slice %s must be numeric or undefined", names[i]);
    }
    double step = v[2].k == TV_INT ? v[2].u.n : 1;
    if (step == 0 || isnan(step)) { /* the reference loops forever; refuse instead */
        return tm_fail(in, x, "slice step cannot be zero");
    }
    /* strings slice by code point (Array.from) */
    size_t len = 0;
    const char **cps = NULL;
    size_t *cpl = NULL;
    if (obj.k == TV_STR) {
        tstr *s = obj.u.s;
        cps = tm_alloc(in->pool, (s->n + 1) * sizeof *cps);
        cpl = tm_alloc(in->pool, (s->n + 1) * sizeof *cpl);
        if (!cps || !cpl) return tm_oom(in, x);
        for (size_t i = 0; i < s->n;) {
            uint32_t cp;
            int l = bm_utf8_decode((const uint8_t *)s->s + i, s->n - i, &cp);
            if (!l) l = 1;
            cps[len] = s->s + i;
            cpl[len++] = (size_t)l;
            i += (size_t)l;
        }
    } else {
        len = obj.u.a->n;
    }
    double s0, s1;
    slice_bounds((double)len, v[0].k == TV_INT, v[0].u.n, v[1].k == TV_INT, v[1].u.n, step, &s0, &s1);
    double dir = step > 0 ? 1 : -1;
    if (obj.k == TV_STR) {
        sbuf b;
        sb_init(&b, in->pool);
        for (double i = s0; dir * i < dir * s1; i += step)
            if (i >= 0 && i < (double)len) sb_put(&b, cps[(size_t)i], cpl[(size_t)i]);
        *out = tv_strs(sb_str(&b));
        return out->k == TV_STR ? R_OK : tm_oom(in, x);
    }
    tarr *a = ta_new(in->pool, 0);
    if (!a) return tm_oom(in, x);
    for (double i = s0; dir * i < dir * s1; i += step)
        if (!ta_push(in->pool, a, i >= 0 && i < (double)len ? obj.u.a->v[(size_t)i] : tv_undef()))
            return tm_oom(in, x);
    *out = (tv){.k = TV_ARRAY, .u.a = a};
    return R_OK;
}

static int eval_member(interp *in, const node *x, env *e, tv *out) {
    tv obj, prop;
    int rc = tm_eval(in, x->a, e, &obj);
    if (rc) return rc;
    if (x->op) {
        if (x->b->k == N_SLICE) return eval_slice(in, x->b, obj, e, out);
        if ((rc = tm_eval(in, x->b, e, &prop))) return rc;
    } else if (x->b->k == N_INT) {
        prop = tv_int(x->b->num);
    } else {
        prop = tv_strs(x->b->str);
    }
    *out = tv_undef();
    if (tv_is_container(obj)) {
        if (prop.k != TV_STR)
            return tm_fail(in, x, "Cannot access property with non-string: got %s", tv_type_name(prop.k));
        tv *v = tmap_get(obj.u.m, prop.u.s->s, prop.u.s->n);
        if (v) *out = *v;
        else if (tv_is_obj(obj)) return tm_member_builtin(in, x, obj, prop.u.s->s, prop.u.s->n, out);
        return R_OK;
    }
    if (tv_is_arr(obj) || obj.k == TV_STR) {
        if (prop.k == TV_INT) {
            double i = trunc(prop.u.n);
            if (tv_is_arr(obj)) {
                double n = (double)obj.u.a->n;
                if (i < 0) i += n;
                if (i >= 0 && i < n) *out = obj.u.a->v[(size_t)i];
                return R_OK;
            }
            /* String#at by code point (the reference indexes UTF-16 units; same for BMP) */
            tstr *s = obj.u.s;
            double n = 0;
            for (size_t k = 0; k < s->n; k++) n += ((unsigned char)s->s[k] & 0xC0) != 0x80;
            if (i < 0) i += n;
            if (i < 0 || i >= n) return R_OK;
            size_t k = 0, idx = 0;
            while (k < s->n) {
                uint32_t cp;
                int l = bm_utf8_decode((const uint8_t *)s->s + k, s->n - k, &cp);
                if (!l) l = 1;
                if ((double)idx == i) {
                    *out = tv_str(in->pool, s->s + k, (size_t)l);
                    return out->k == TV_STR ? R_OK : tm_oom(in, x);
                }
                idx++;
                k += (size_t)l;
            }
            return R_OK;
        }
        if (prop.k == TV_STR) return tm_member_builtin(in, x, obj, prop.u.s->s, prop.u.s->n, out);
        return tm_fail(in, x, "Cannot access property with non-string/non-number: got %s",
                       tv_type_name(prop.k));
    }
    if (prop.k != TV_STR)
        return tm_fail(in, x, "Cannot access property with non-string: got %s", tv_type_name(prop.k));
    return R_OK; /* no builtins on numbers, booleans, none, undefined, functions */
}

int tm_eval_args(interp *in, node *const *args, size_t n, env *e, tarr **pos, tmap **kw) {
    tarr *a = ta_new(in->pool, 0);
    tmap *m = tmap_new(in->pool, 0);
    if (!a || !m) return tm_oom(in, NULL);
    for (size_t i = 0; i < n; i++) {
        const node *x = args[i];
        tv v;
        if (x->k == N_KWARG || x->k == N_KWSPREAD) continue;
        int rc = tm_eval(in, x->k == N_SPREAD ? x->a : x, e, &v);
        if (rc) return rc;
        if (x->k == N_SPREAD) {
            if (!tv_is_arr(v)) return tm_fail(in, x, "Cannot unpack non-iterable type: %s", tv_type_name(v.k));
            for (size_t j = 0; j < v.u.a->n; j++)
                if (!ta_push(in->pool, a, v.u.a->v[j])) return tm_oom(in, x);
        } else if (!ta_push(in->pool, a, v)) {
            return tm_oom(in, x);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const node *x = args[i];
        tv v;
        if (x->k != N_KWARG && x->k != N_KWSPREAD) continue;
        int rc = tm_eval(in, x->a, e, &v);
        if (rc) return rc;
        if (x->k == N_KWARG) {
            if (tmap_get(m, x->str->s, x->str->n))
                return tm_fail(in, x, "Got multiple values for keyword argument '%s'", x->str->s);
            if (!tmap_set(in->pool, m, x->str->s, x->str->n, v)) return tm_oom(in, x);
        } else {
            if (!tv_is_obj(v))
                return tm_fail(in, x, "Argument after ** must be a mapping, not %s", tv_type_name(v.k));
            for (size_t j = 0; j < v.u.m->n; j++) {
                tstr *k = v.u.m->keys[j];
                if (tmap_get(m, k->s, k->n))
                    return tm_fail(in, x, "Got multiple values for keyword argument '%s'", k->s);
                if (!tmap_set(in->pool, m, k->s, k->n, v.u.m->vals[j])) return tm_oom(in, x);
            }
        }
    }
    *pos = a;
    if (kw) *kw = m;
    return R_OK;
}

static int eval_call(interp *in, const node *x, env *e, tv *out) {
    tarr *args;
    tmap *kw;
    int rc = tm_eval_args(in, x->list, x->n_list, e, &args, &kw);
    if (rc) return rc;
    if (kw->n && !ta_push(in->pool, args, (tv){.k = TV_KWARGS, .u.m = kw})) return tm_oom(in, x);
    tv fn;
    if ((rc = tm_eval(in, x->a, e, &fn))) return rc;
    if (fn.k != TV_FUNC)
        return tm_fail(in, x, "Cannot call something that is not a function: got %s", tv_type_name(fn.k));
    return tm_call(in, x, fn, args, e, out);
}

static int eval_unary(interp *in, const node *x, env *e, tv *out) {
    tv v;
    int rc = tm_eval(in, x->a, e, &v);
    if (rc) return rc;
    if (x->op == OP_NOT) {
        *out = tv_bool(!tv_truthy(v));
        return R_OK;
    }
    if (tv_is_num(v) || v.k == TV_BOOL) {
        double n = v.k == TV_BOOL ? v.u.b : v.u.n;
        double r = x->op == OP_NEG ? -n : n;
        *out = v.k == TV_FLOAT ? tv_float(r) : tv_int(r);
        return R_OK;
    }
    return tm_fail(in, x, "Unknown operator \"%s\" for %s", x->op == OP_NEG ? "-" : "+", tv_type_name(v.k));
}

int tm_eval(interp *in, const node *x, env *e, tv *out) {
    int rc;
    switch (x->k) {
    case N_STR: *out = tv_strs(x->str); return R_OK;
    case N_INT: *out = tv_int(x->num); return R_OK;
    case N_FLOAT: *out = tv_float(x->num); return R_OK;
    case N_IDENT: *out = env_get(e, x->str->s, x->str->n); return R_OK;
    case N_ARRAY:
    case N_TUPLE: {
        tarr *a = ta_new(in->pool, x->n_list);
        if (!a) return tm_oom(in, x);
        for (size_t i = 0; i < x->n_list; i++)
            if ((rc = tm_eval(in, x->list[i], e, &a->v[a->n++]))) return rc;
        *out = (tv){.k = x->k == N_ARRAY ? TV_ARRAY : TV_TUPLE, .u.a = a};
        return R_OK;
    }
    case N_OBJECT: {
        tmap *m = tmap_new(in->pool, x->n_list);
        if (!m) return tm_oom(in, x);
        for (size_t i = 0; i < x->n_list; i++) {
            tv k, v;
            if ((rc = tm_eval(in, x->list[i], e, &k))) return rc;
            if (k.k != TV_STR) return tm_fail(in, x->list[i], "Object keys must be strings: got %s", tv_type_name(k.k));
            if ((rc = tm_eval(in, x->list2[i], e, &v))) return rc;
            if (!tmap_set(in->pool, m, k.u.s->s, k.u.s->n, v)) return tm_oom(in, x);
        }
        *out = (tv){.k = TV_OBJECT, .u.m = m};
        return R_OK;
    }
    case N_MEMBER: return eval_member(in, x, e, out);
    case N_CALL: return eval_call(in, x, e, out);
    case N_BINARY: return eval_binary(in, x, e, out);
    case N_UNARY: return eval_unary(in, x, e, out);
    case N_FILTER: {
        tv v;
        if ((rc = tm_eval(in, x->a, e, &v))) return rc;
        return tm_apply_filter(in, x->b, v, e, out);
    }
    case N_TEST: {
        tv v;
        bool r;
        if ((rc = tm_eval(in, x->a, e, &v))) return rc;
        if ((rc = tm_apply_test(in, x, x->str->s, v, tv_undef(), false, &r))) return rc;
        *out = tv_bool(x->op ? !r : r);
        return R_OK;
    }
    case N_SELECT: {
        tv t;
        if ((rc = tm_eval(in, x->b, e, &t))) return rc;
        if (!tv_truthy(t)) {
            *out = tv_undef();
            return R_OK;
        }
        return tm_eval(in, x->a, e, out);
    }
    case N_TERNARY: {
        tv c;
        if ((rc = tm_eval(in, x->a, e, &c))) return rc;
        return tm_eval(in, tv_truthy(c) ? x->b : x->c, e, out);
    }
    case N_SLICE:
    case N_KWARG:
    case N_SPREAD:
    case N_KWSPREAD: return tm_fail(in, x, "Unknown node type in this position");
    default: break;
    }
    /* statements in expression position (inside a block) */
    sbuf b;
    sb_init(&b, in->pool);
    node *const one[1] = {(node *)x};
    if ((rc = tm_exec_block(in, one, 1, e, &b))) return rc;
    *out = tv_strs(sb_str(&b));
    return out->k == TV_STR ? R_OK : tm_oom(in, x);
}

/* ---- statements ----------------------------------------------------------------------- */

static int assign(interp *in, const node *target, tv v, env *e, const char *what) {
    if (target->k == N_IDENT) {
        return env_set(in, e, target->str->s, target->str->n, v) ? R_OK : tm_oom(in, target);
    }
    if (target->k == N_TUPLE) {
        if (!tv_is_arr(v)) return tm_fail(in, target, "Cannot unpack non-iterable type%s: %s", what, tv_type_name(v.k));
        if (v.u.a->n != target->n_list)
            return tm_fail(in, target, "Too %s items to unpack%s", target->n_list > v.u.a->n ? "few" : "many", what);
        for (size_t i = 0; i < target->n_list; i++) {
            if (target->list[i]->k != N_IDENT)
                return tm_fail(in, target, "Cannot unpack to non-identifier%s", what);
            if (!env_set(in, e, target->list[i]->str->s, target->list[i]->str->n, v.u.a->v[i]))
                return tm_oom(in, target);
        }
        return R_OK;
    }
    return tm_fail(in, target, "Invalid LHS inside assignment expression");
}

static int exec_set(interp *in, const node *x, env *e) {
    tv v;
    int rc;
    if (x->b) {
        if ((rc = tm_eval(in, x->b, e, &v))) return rc;
    } else {
        sbuf b;
        sb_init(&b, in->pool);
        if ((rc = tm_exec_block(in, x->list, x->n_list, e, &b))) return rc;
        v = tv_strs(sb_str(&b));
        if (v.k != TV_STR) return tm_oom(in, x);
    }
    const node *t = x->a;
    if (t->k == N_MEMBER) {
        tv obj;
        if ((rc = tm_eval(in, t->a, e, &obj))) return rc;
        if (obj.k != TV_NS) return tm_fail(in, t, "cannot assign attribute on non-namespace object");
        if (t->b->k != N_IDENT) return tm_fail(in, t, "Cannot assign to member with non-identifier property");
        return tmap_set(in->pool, obj.u.m, t->b->str->s, t->b->str->n, v) ? R_OK : tm_oom(in, t);
    }
    if (t->k == N_TUPLE) return assign(in, t, v, e, " in set");
    return assign(in, t, v, e, "");
}

/* loop.* for item i: the keys array is shared by all iterations (objects are immutable). */
static tv loop_obj(interp *in, tstr **keys, tarr *items, size_t i) {
    tmap *m = tmap_new(in->pool, 0);
    tv *v = tm_alloc(in->pool, 9 * sizeof *v);
    if (!m || !v) return tv_undef();
    size_t n = items->n;
    v[0] = tv_int((double)i + 1);
    v[1] = tv_int((double)i);
    v[2] = tv_int((double)(n - i));
    v[3] = tv_int((double)(n - i - 1));
    v[4] = tv_bool(i == 0);
    v[5] = tv_bool(i == n - 1);
    v[6] = tv_int((double)n);
    v[7] = i > 0 ? items->v[i - 1] : tv_undef();
    v[8] = i + 1 < n ? items->v[i + 1] : tv_undef();
    m->keys = keys;
    m->vals = v;
    m->n = m->cap = 9;
    return (tv){.k = TV_OBJECT, .u.m = m};
}

static int exec_for(interp *in, const node *x, env *e, sbuf *out) {
    env *scope = env_new(in, e);
    if (!scope) return tm_oom(in, x);
    const node *iter = x->b, *test = NULL;
    if (iter->k == N_SELECT) {
        test = iter->b;
        iter = iter->a;
    }
    tv it;
    int rc = tm_eval(in, iter, scope, &it);
    if (rc) return rc;
    if (!tv_is_arr(it) && !tv_is_obj(it))
        return tm_fail(in, x->b, "Expected iterable or object type in for loop: got %s", tv_type_name(it.k));
    tarr *src = NULL;
    if (tv_is_obj(it)) {
        src = ta_new(in->pool, it.u.m->n);
        if (!src) return tm_oom(in, x);
        for (size_t i = 0; i < it.u.m->n; i++) src->v[src->n++] = tv_strs(it.u.m->keys[i]);
    } else {
        src = it.u.a;
    }
    const node *lv = x->a;
    tarr *items = src;
    if (test || lv->k == N_TUPLE) {
        items = ta_new(in->pool, src->n);
        if (!items) return tm_oom(in, x);
        for (size_t i = 0; i < src->n; i++) {
            tv cur = src->v[i];
            if (lv->k == N_TUPLE) {
                if (cur.k != TV_ARRAY) return tm_fail(in, x, "Cannot unpack non-iterable type: %s", tv_type_name(cur.k));
                if (cur.u.a->n != lv->n_list)
                    return tm_fail(in, x, "Too %s items to unpack", lv->n_list > cur.u.a->n ? "few" : "many");
            }
            if (test) {
                if (++in->iterations > TM_MAX_ITERATIONS)
                    return tm_fail(in, x, "loop iterations exceed the limit of %u", TM_MAX_ITERATIONS);
                env *ls = env_new(in, scope);
                if (!ls) return tm_oom(in, x);
                if ((rc = assign(in, lv, cur, ls, ""))) return rc;
                tv t;
                if ((rc = tm_eval(in, test, ls, &t))) return rc;
                if (!tv_truthy(t)) continue;
            }
            items->v[items->n++] = cur;
        }
    }
    static const char *const names[9] = {"index",  "index0", "revindex", "revindex0", "first",
                                         "last",   "length", "previtem", "nextitem"};
    tstr **keys = tm_alloc(in->pool, 9 * sizeof *keys);
    if (!keys) return tm_oom(in, x);
    for (int k = 0; k < 9; k++)
        if (!(keys[k] = ts_cstr(in->pool, names[k]))) return tm_oom(in, x);
    bool none = true;
    for (size_t i = 0; i < items->n; i++) {
        if (++in->iterations > TM_MAX_ITERATIONS)
            return tm_fail(in, x, "loop iterations exceed the limit of %u", TM_MAX_ITERATIONS);
        tv loop = loop_obj(in, keys, items, i);
        if (loop.k == TV_UNDEF || !env_set(in, scope, "loop", 4, loop)) return tm_oom(in, x);
        if ((rc = assign(in, lv, items->v[i], scope, ""))) return rc;
        size_t mark = out->n;
        rc = tm_exec_block(in, x->list, x->n_list, scope, out);
        if (rc == R_CONT || rc == R_BREAK) {
            out->n = mark; /* the reference drops the interrupted iteration's output */
            if (out->p) out->p[mark] = 0;
            if (rc == R_BREAK) break;
            continue;
        }
        if (rc) return rc;
        none = false;
    }
    if (none) return tm_exec_block(in, x->list2, x->n_list2, scope, out);
    return R_OK;
}

int tm_exec_block(interp *in, node *const *body, size_t n, env *e, sbuf *out) {
    if (++in->depth > TM_MAX_PARSE_DEPTH * 4) {
        in->depth--;
        return tm_fail(in, n ? body[0] : NULL, "evaluation nesting exceeds the limit of %d",
                       TM_MAX_PARSE_DEPTH * 4);
    }
    int rc = R_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const node *x = body[i];
        tv v;
        switch (x->k) {
        case N_COMMENT: break;
        case N_SET: rc = exec_set(in, x, e); break;
        case N_IF:
            if ((rc = tm_eval(in, x->a, e, &v))) break;
            rc = tv_truthy(v) ? tm_exec_block(in, x->list, x->n_list, e, out)
                              : tm_exec_block(in, x->list2, x->n_list2, e, out);
            break;
        case N_FOR: rc = exec_for(in, x, e, out); break;
        case N_MACRO: {
            tfunc *f = tm_alloc(in->pool, sizeof *f);
            if (!f) {
                rc = tm_oom(in, x);
                break;
            }
            f->k = FN_MACRO;
            f->decl = x;
            if (!env_set(in, e, x->str->s, x->str->n, (tv){.k = TV_FUNC, .u.f = f})) rc = tm_oom(in, x);
            break;
        }
        case N_CALLSTMT: {
            tfunc *f = tm_alloc(in->pool, sizeof *f);
            tarr *args;
            tmap *kw;
            if (!f) {
                rc = tm_oom(in, x);
                break;
            }
            f->k = FN_CALLER;
            f->decl = x;
            f->def_env = e;
            if ((rc = tm_eval_args(in, x->a->list, x->a->n_list, e, &args, &kw))) break;
            if (!ta_push(in->pool, args, (tv){.k = TV_KWARGS, .u.m = kw})) {
                rc = tm_oom(in, x);
                break;
            }
            tv fn;
            if ((rc = tm_eval(in, x->a->a, e, &fn))) break;
            if (fn.k != TV_FUNC) {
                rc = tm_fail(in, x, "Cannot call something that is not a function: got %s", tv_type_name(fn.k));
                break;
            }
            env *ne = env_new(in, e);
            if (!ne || !env_set(in, ne, "caller", 6, (tv){.k = TV_FUNC, .u.f = f})) {
                rc = tm_oom(in, x);
                break;
            }
            if ((rc = tm_call(in, x, fn, args, ne, &v))) break;
            if (!tv_render(out, v)) rc = tm_fail(in, x, "Cannot convert to JSON: %s", tv_type_name(v.k));
            break;
        }
        case N_FILTERSTMT: {
            sbuf b;
            sb_init(&b, in->pool);
            if ((rc = tm_exec_block(in, x->list, x->n_list, e, &b))) break;
            tv s = tv_strs(sb_str(&b));
            if (s.k != TV_STR) {
                rc = tm_oom(in, x);
                break;
            }
            if ((rc = tm_apply_filter(in, x->a, s, e, &v))) break;
            if (!tv_render(out, v)) rc = tm_fail(in, x, "Cannot convert to JSON: %s", tv_type_name(v.k));
            break;
        }
        case N_BREAK: rc = R_BREAK; break;
        case N_CONTINUE: rc = R_CONT; break;
        default: {
            if ((rc = tm_eval(in, x, e, &v))) break;
            tv_kind bad;
            if (tv_is_arr(v) || tv_is_container(v)) {
                tojson_opts o = {0};
                if (!tv_tojson(out, v, &o, 0, &bad))
                    rc = tm_fail(in, x, "Cannot convert to JSON: %s", tv_type_name(bad));
            } else {
                tv_render(out, v);
            }
        }
        }
        if (!rc && (out->failed || in->pool->failed)) rc = tm_oom(in, x);
    }
    in->depth--;
    return rc;
}
