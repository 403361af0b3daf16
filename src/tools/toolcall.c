/* Tool-call parsing from model output (Qwen/Hermes <tool_call> blocks, Llama 3 JSON calls).
 * Every JSON value is parsed with Jansson from a bounded slice; a marker that starts a call
 * whose body does not parse is an error with the offset, never a guess. */
#include "tools/toolcall.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char QWEN_OPEN[] = "<tool_call>", QWEN_CLOSE[] = "</tool_call>";
static const char PY_TAG[] = "<|python_tag|>";

void bm_toolcalls_fini(bm_toolcalls *tc) {
    if (!tc) return;
    for (size_t i = 0; i < tc->n; i++) {
        free(tc->calls[i].name);
        free(tc->calls[i].arguments);
    }
    free(tc->calls);
    free(tc->content);
    memset(tc, 0, sizeof *tc);
}

static const char *memfind(const char *h, size_t n, const char *needle) {
    size_t k = strlen(needle);
    if (k > n) return NULL;
    for (size_t i = 0; i + k <= n; i++)
        if (h[i] == needle[0] && memcmp(h + i, needle, k) == 0) return h + i;
    return NULL;
}

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

long bm_toolcall_find(const char *text, size_t len) {
    const char *a = memfind(text, len, QWEN_OPEN), *b = memfind(text, len, PY_TAG);
    if (a && (!b || a < b)) return (long)(a - text);
    if (b) return (long)(b - text);
    return -1;
}

size_t bm_toolcall_hold(const char *text, size_t len) {
    const char *marks[2] = {QWEN_OPEN, PY_TAG};
    size_t best = 0;
    for (int m = 0; m < 2; m++) {
        size_t k = strlen(marks[m]);
        for (size_t s = k - 1; s > 0; s--) {
            if (s <= len && s > best && memcmp(text + len - s, marks[m], s) == 0) {
                best = s;
                break;
            }
        }
    }
    return best;
}

/* Appends a call built from a parsed object {name, arguments|parameters}. */
static bm_status add_call(bm_toolcalls *tc, json_t *obj, size_t off, bool need_args,
                          bm_err *err) {
    if (!json_is_object(obj))
        return bm_err_set(err, BM_EFORMAT, "tool call at byte %zu: not a JSON object", off);
    json_t *name = json_object_get(obj, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return bm_err_set(err, BM_EFORMAT, "tool call at byte %zu: no \"name\" string", off);
    json_t *args = json_object_get(obj, "arguments");
    if (!args) args = json_object_get(obj, "parameters");
    char *args_s = NULL;
    if (!args && need_args)
        return bm_err_set(err, BM_EFORMAT, "tool call at byte %zu: no \"parameters\"", off);
    if (!args) {
        args_s = strdup("{}");
    } else if (json_is_object(args)) {
        args_s = json_dumps(args, JSON_COMPACT);
    } else if (json_is_string(args)) {
        /* some models emit the arguments as a JSON-encoded string: it must hold an object */
        json_error_t je;
        json_t *inner = json_loads(json_string_value(args), 0, &je);
        if (!json_is_object(inner)) {
            json_decref(inner);
            return bm_err_set(err, BM_EFORMAT,
                              "tool call at byte %zu: \"arguments\" string is not a JSON object",
                              off);
        }
        args_s = json_dumps(inner, JSON_COMPACT);
        json_decref(inner);
    } else {
        return bm_err_set(err, BM_EFORMAT, "tool call at byte %zu: \"arguments\" is not an object",
                          off);
    }
    bm_toolcall *nc = realloc(tc->calls, (tc->n + 1) * sizeof *nc);
    char *nm = strdup(json_string_value(name));
    if (!nc || !nm || !args_s) {
        if (nc) tc->calls = nc;
        free(nm);
        free(args_s);
        return bm_err_set(err, BM_ENOMEM, "tool call: out of memory");
    }
    tc->calls = nc;
    tc->calls[tc->n].name = nm;
    tc->calls[tc->n].arguments = args_s;
    tc->n++;
    return BM_OK;
}

/* Parses one JSON value starting at text[off] (after whitespace); *end = offset after it. */
static json_t *parse_value(const char *text, size_t len, size_t off, size_t *end, bm_err *err) {
    while (off < len && is_ws(text[off])) off++;
    json_error_t je;
    json_t *v = json_loadb(text + off, len - off, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (!v) {
        bm_err_set(err, BM_EFORMAT, "tool call at byte %zu: invalid JSON: %s", off, je.text);
        return NULL;
    }
    *end = off + (size_t)je.position;
    return v;
}

/* Buffer for the content outside calls. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;
static bool sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t c = (b->n + n + 1) * 2;
        char *q = realloc(b->p, c);
        if (!q) return false;
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

static char *trimmed_dup(const char *s, size_t n) {
    while (n && is_ws(*s)) s++, n--;
    while (n && is_ws(s[n - 1])) n--;
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
    }
    return o;
}

static bm_status parse_qwen(const char *text, size_t len, bm_toolcalls *out, sbuf *content,
                            bm_err *err) {
    size_t pos = 0, ko = strlen(QWEN_OPEN), kc = strlen(QWEN_CLOSE);
    for (;;) {
        const char *o = memfind(text + pos, len - pos, QWEN_OPEN);
        if (!o) break;
        size_t at = (size_t)(o - text);
        if (!sb_put(content, text + pos, at - pos)) return bm_err_set(err, BM_ENOMEM, "oom");
        size_t end;
        json_t *v = parse_value(text, len, at + ko, &end, err);
        if (!v) return BM_EFORMAT;
        bm_status st = add_call(out, v, at, false, err);
        json_decref(v);
        if (st) return st;
        while (end < len && is_ws(text[end])) end++;
        if (end + kc <= len && memcmp(text + end, QWEN_CLOSE, kc) == 0) {
            end += kc;
        } else if (end < len) {
            return bm_err_set(err, BM_EFORMAT, "tool call at byte %zu: expected %s at byte %zu",
                              at, QWEN_CLOSE, end);
        }
        pos = end;
    }
    if (!sb_put(content, text + pos, len - pos)) return bm_err_set(err, BM_ENOMEM, "oom");
    return BM_OK;
}

/* Llama 3: [<|python_tag|>] obj [; obj ...] making up the whole rest of the text. */
static bm_status parse_llama(const char *text, size_t len, size_t start, bool need_args,
                             bm_toolcalls *out, bm_err *err) {
    size_t pos = start;
    for (;;) {
        size_t end;
        json_t *v = parse_value(text, len, pos, &end, err);
        if (!v) return BM_EFORMAT;
        bm_status st = add_call(out, v, pos, need_args, err);
        json_decref(v);
        if (st) return st;
        while (end < len && is_ws(text[end])) end++;
        if (end == len) return BM_OK;
        if (text[end] != ';')
            return bm_err_set(err, BM_EFORMAT,
                              "tool call: unexpected '%c' at byte %zu after a call", text[end],
                              end);
        pos = end + 1;
        size_t p2 = pos;
        while (p2 < len && is_ws(text[p2])) p2++;
        if (p2 == len) return BM_OK;
    }
}

bm_status bm_toolcall_parse(const char *text, size_t len, bm_toolcalls *out, bm_err *err) {
    memset(out, 0, sizeof *out);
    sbuf content = {0};
    bm_status st = BM_OK;
    const char *py = memfind(text, len, PY_TAG);
    size_t lead = 0;
    while (lead < len && is_ws(text[lead])) lead++;
    if (memfind(text, len, QWEN_OPEN)) {
        st = parse_qwen(text, len, out, &content, err);
    } else if (py) {
        size_t at = (size_t)(py - text);
        if (!sb_put(&content, text, at)) st = bm_err_set(err, BM_ENOMEM, "oom");
        if (!st) st = parse_llama(text, len, at + strlen(PY_TAG), false, out, err);
    } else if (lead < len && text[lead] == '{') {
        /* a bare JSON answer is a call only when it has the shape of one */
        bm_toolcalls tmp = {0};
        bm_err e2;
        if (parse_llama(text, len, lead, true, &tmp, &e2) == BM_OK) {
            *out = tmp;
        } else {
            bm_toolcalls_fini(&tmp);
            if (!sb_put(&content, text, len)) st = bm_err_set(err, BM_ENOMEM, "oom");
        }
    } else {
        if (!sb_put(&content, text, len)) st = bm_err_set(err, BM_ENOMEM, "oom");
    }
    if (st) {
        free(content.p);
        bm_toolcalls_fini(out);
        return st;
    }
    out->content = trimmed_dup(content.p ? content.p : "", content.n);
    free(content.p);
    if (!out->content) {
        bm_toolcalls_fini(out);
        return bm_err_set(err, BM_ENOMEM, "tool call: out of memory");
    }
    return BM_OK;
}
