/* Prompts: chat messages rendered with the model's chat template, then tokenized so that the
 * template's own special tokens are recognised but text from the request is not. Each message
 * content is replaced by a unique placeholder before rendering; the rendered text is then
 * tokenized piece by piece: template text with special-token parsing, contents without (so a
 * user writing "<|im_start|>" gets plain-text tokens, not a control token). */
#include "serve/serve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_ids_free(srv_ids *v) {
    free(v->p);
    memset(v, 0, sizeof *v);
}

bool srv_tokenize(const bm_tok *tok, const char *s, size_t n, int flags, srv_ids *out,
                  srv_error *e) {
    bm_err err = {0};
    for (int attempt = 0; attempt < 3; attempt++) {
        size_t room = out->cap - out->n, need = 0;
        bm_status st = bm_tok_encode(tok, s, n, flags, out->p ? out->p + out->n : NULL, room,
                                     &need, &err);
        if (st) return srv_fail_status(e, &err, NULL);
        if (need <= room) {
            out->n += need;
            return true;
        }
        size_t cap = out->n + need + 64;
        int32_t *q = realloc(out->p, cap * sizeof *q);
        if (!q) return srv_fail(e, 500, NULL, "out of memory tokenizing %zu bytes", n);
        out->p = q;
        out->cap = cap;
    }
    return srv_fail(e, 500, NULL, "tokenizer: token count changed between calls");
}

typedef struct holder {
    char prefix[40];   /* "@@bm<nonce>_" */
    json_t **texts;    /* contents, indexed by placeholder number (owned references) */
    size_t n, cap;
} holder;

/* Returns a placeholder string for content text (takes the reference) or NULL on OOM. */
static json_t *hold(holder *h, json_t *text) {
    if (h->n == h->cap) {
        size_t c = h->cap ? h->cap * 2 : 16;
        json_t **q = realloc(h->texts, c * sizeof *q);
        if (!q) {
            json_decref(text);
            return NULL;
        }
        h->texts = q;
        h->cap = c;
    }
    h->texts[h->n] = text;
    char ph[64];
    snprintf(ph, sizeof ph, "%s%zu@@", h->prefix, h->n);
    h->n++;
    return json_string(ph);
}

/* Validates one message and appends its template form (content held) to msgs. */
static bool add_message(holder *h, json_t *msgs, json_t *m, size_t i, srv_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (!json_is_object(m)) return srv_fail(e, 400, param, "%s must be an object", param);
    json_t *role = json_object_get(m, "role");
    const char *rs = json_string_value(role);
    if (!rs) return srv_fail(e, 400, param, "%s.role must be a string", param);
    if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") &&
        strcmp(rs, "tool") && strcmp(rs, "developer") && strcmp(rs, "function"))
        return srv_fail(e, 400, param,
                        "%s.role '%s' is not one of system, developer, user, assistant, tool",
                        param, rs);
    json_t *out = json_deep_copy(m);
    if (!strcmp(rs, "developer")) json_object_set_new(out, "role", json_string("system"));
    json_t *c = json_object_get(m, "content");
    json_t *text = NULL;
    if (json_is_string(c)) {
        text = json_incref(c);
    } else if (json_is_array(c)) {
        /* content parts: concatenate the text parts */
        srv_buf b = {0};
        srv_buf_put(&b, "", 0);
        size_t k;
        json_t *part;
        json_array_foreach(c, k, part) {
            const char *ty = json_string_value(json_object_get(part, "type"));
            json_t *tx = json_object_get(part, "text");
            if (!ty || strcmp(ty, "text") || !json_is_string(tx)) {
                srv_buf_free(&b);
                json_decref(out);
                return srv_fail(e, 400, param,
                                "%s.content[%zu]: only {\"type\":\"text\",\"text\":...} parts are "
                                "supported", param, k);
            }
            srv_buf_put(&b, json_string_value(tx), json_string_length(tx));
        }
        text = json_stringn(b.p, b.n);
        srv_buf_free(&b);
    } else if (json_is_null(c) || !c) {
        if (strcmp(rs, "assistant")) {
            json_decref(out);
            return srv_fail(e, 400, param, "%s.content is required for role '%s'", param, rs);
        }
        text = json_string("");
    } else {
        json_decref(out);
        return srv_fail(e, 400, param, "%s.content must be a string or an array of parts",
                        param);
    }
    json_t *ph;
    if (json_string_length(text)) {
        ph = hold(h, text);
    } else {
        json_decref(text);
        ph = json_string("");
    }
    json_object_set_new(out, "content", ph);
    /* tool_calls: templates want arguments as objects (Hugging Face convention) */
    json_t *tcs = json_object_get(out, "tool_calls");
    if (tcs && !json_is_array(tcs)) {
        json_decref(out);
        return srv_fail(e, 400, param, "%s.tool_calls must be an array", param);
    }
    size_t k;
    json_t *tc;
    json_array_foreach(tcs, k, tc) {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name"))) {
            json_decref(out);
            return srv_fail(e, 400, param, "%s.tool_calls[%zu].function needs a name", param, k);
        }
        if (json_is_string(args)) {
            json_t *parsed = json_loads(json_string_value(args), 0, NULL);
            if (parsed) json_object_set_new(fn, "arguments", parsed);
        }
    }
    json_array_append_new(msgs, out);
    return true;
}

bool srv_chat_prompt(srv_model *m, json_t *messages, json_t *tools, srv_ids *out, srv_error *e) {
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return srv_fail(e, 400, "messages", "messages must be a non-empty array");
    holder h = {0};
    bm_rng rng;
    bm_rng_seed(&rng, (uint64_t)(bm_time_now() * 1e9) ^ (uint64_t)(uintptr_t)out);
    snprintf(h.prefix, sizeof h.prefix, "@@bm%016llx_", (unsigned long long)bm_rng_u64(&rng));
    json_t *ctx = json_object(), *msgs = json_array();
    json_object_set_new(ctx, "messages", msgs);
    bool ok = true;
    size_t i;
    json_t *msg;
    json_array_foreach(messages, i, msg) {
        if (!(ok = add_message(&h, msgs, msg, i, e))) break;
    }
    if (ok && tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) ok = srv_fail(e, 400, "tools", "tools must be an array");
        size_t k;
        json_t *t;
        json_array_foreach(tools, k, t) {
            if (!ok) break;
            json_t *fn = json_object_get(t, "function");
            if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
                ok = srv_fail(e, 400, "tools", "tools[%zu] must be {\"type\":\"function\","
                              "\"function\":{\"name\":...}}", k);
        }
        if (ok && json_array_size(tools)) json_object_set(ctx, "tools", tools);
    }
    json_object_set_new(ctx, "add_generation_prompt", json_true());
    const bm_tok *tok = m->sm->tok;
    size_t n;
    int32_t id;
    const char *t;
    if ((id = bm_tok_bos(tok)) >= 0 && (t = bm_tok_token_text(tok, id, &n)))
        json_object_set_new(ctx, "bos_token", json_stringn(t, n));
    if ((id = bm_tok_eos(tok)) >= 0 && (t = bm_tok_token_text(tok, id, &n)))
        json_object_set_new(ctx, "eos_token", json_stringn(t, n));
    char *js = ok ? json_dumps(ctx, JSON_COMPACT) : NULL;
    json_decref(ctx);
    char *text = NULL;
    size_t n_text = 0;
    if (ok) {
        bm_err err = {0};
        if (!js) ok = srv_fail(e, 500, NULL, "out of memory");
        else if (bm_tmpl_render_json(m->tmpl, js, &text, &n_text, &err))
            ok = srv_fail(e, 400, "messages", "chat template: %s", err.msg);
    }
    free(js);
    /* tokenize: template pieces with special tokens, held contents as plain text */
    size_t pos = 0, kp = strlen(h.prefix);
    while (ok && pos < n_text) {
        char *ph = strstr(text + pos, h.prefix);
        size_t end = ph ? (size_t)(ph - text) : n_text;
        if (end > pos) ok = srv_tokenize(tok, text + pos, end - pos, BM_TOK_PARSE_SPECIAL, out, e);
        if (!ok || !ph) break;
        char *q = ph + kp;
        size_t idx = strtoul(q, &q, 10);
        if (strncmp(q, "@@", 2) != 0 || idx >= h.n) {
            ok = srv_fail(e, 500, NULL, "chat template altered a message placeholder");
            break;
        }
        json_t *c = h.texts[idx];
        ok = srv_tokenize(tok, json_string_value(c), json_string_length(c), 0, out, e);
        pos = (size_t)(q + 2 - text);
    }
    free(text);
    for (size_t k = 0; k < h.n; k++) json_decref(h.texts[k]);
    free(h.texts);
    if (ok && out->n == 0) ok = srv_fail(e, 400, "messages", "the rendered prompt is empty");
    return ok;
}

bool srv_text_prompt(srv_model *m, json_t *prompt, const char *param, bool raw_ids_ok,
                     srv_ids *out, srv_error *e) {
    const bm_tok *tok = m->sm->tok;
    if (json_is_array(prompt) && json_array_size(prompt) == 1 &&
        json_is_string(json_array_get(prompt, 0)))
        prompt = json_array_get(prompt, 0);
    if (json_is_string(prompt)) {
        if (!srv_tokenize(tok, json_string_value(prompt), json_string_length(prompt),
                          BM_TOK_ADD_SPECIAL | BM_TOK_PARSE_SPECIAL, out, e))
            return false;
        if (out->n == 0) return srv_fail(e, 400, param, "%s is empty", param);
        return true;
    }
    if (raw_ids_ok && json_is_array(prompt) && json_array_size(prompt) > 0) {
        int32_t nv = bm_tok_n_vocab(tok);
        size_t n = json_array_size(prompt), i;
        out->p = calloc(n, sizeof *out->p);
        if (!out->p) return srv_fail(e, 500, NULL, "out of memory");
        out->cap = n;
        json_t *v;
        json_array_foreach(prompt, i, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= nv)
                return srv_fail(e, 400, param,
                                "%s[%zu] must be a token id in [0, %d)", param, i, nv);
            out->p[out->n++] = (int32_t)json_integer_value(v);
        }
        return true;
    }
    return srv_fail(e, 400, param,
                    "%s must be a string%s", param,
                    raw_ids_ok ? ", a one-element array of strings or an array of token ids" : "");
}
