/* OpenAI-compatible routes: POST /v1/chat/completions (chat template, tools, tool-call parsing,
 * response_format, logprobs, n, streaming), POST /v1/completions, POST /v1/embeddings
 * (mean-pooled, normalised), GET /v1/models. Validation errors name the parameter. */
#include "serve/serve_int.h"

#include "tools/toolcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void new_id(char *buf, size_t cap, const char *prefix) {
    bm_rng r;
    bm_rng_seed(&r, (uint64_t)(bm_time_now() * 1e9) ^ (uint64_t)(uintptr_t)buf);
    snprintf(buf, cap, "%s-%016llx", prefix, (unsigned long long)bm_rng_u64(&r));
}

/* Common front half: body, model, parameters, prompt. */
typedef struct oa_req {
    json_t *body;
    srv_model *m;
    srv_gen g;
    srv_ids prompt;
} oa_req;

static void oa_free(oa_req *q) {
    json_decref(q->body);
    srv_gen_free(&q->g);
    srv_ids_free(&q->prompt);
}

static bool oa_begin(srv_req *r, oa_req *q, srv_error *e) {
    memset(q, 0, sizeof *q);
    if (!(q->body = srv_body_json(r, e))) return false;
    json_t *mv = json_object_get(q->body, "model");
    if (mv && !json_is_string(mv) && !json_is_null(mv))
        return srv_fail(e, 400, "model", "model must be a string");
    if (!(q->m = srv_find_model(r->srv, json_string_value(mv), e))) return false;
    return srv_gen_openai(q->m, q->body, &q->g, e);
}

/* The common run of a generation request: start the job (when ok), stream it, or wait for it.
 * Returns the finished job for the caller to format, or NULL once *res holds the response
 * already sent (the stream, or an error: start refused, client gone, a choice that failed).
 * prompt_param names the request field a prompt error points at. q is freed unless a job is
 * returned. */
static srv_job *oa_run(srv_req *r, oa_req *q, bool ok, srv_stream_kind kind,
                       const char *prompt_param, srv_error *e, enum MHD_Result *res) {
    srv_job *j = ok ? srv_job_start(r->srv, q->m, &q->prompt, &q->g, e) : NULL;
    if (!j) {
        if (e->http == 400 && !strcmp(e->param, "messages"))
            snprintf(e->param, sizeof e->param, "%s", prompt_param);
        oa_free(q);
        *res = srv_send_error(r, e);
        return NULL;
    }
    if (q->g.stream) {
        *res = srv_stream(r, j, kind, &q->g, q->m->sm->name);
        oa_free(q);
        return NULL;
    }
    bool done = srv_job_wait(j, r, e);
    for (int i = 0; done && i < j->n; i++)
        if (j->ch[i].finish == BM_FINISH_ERROR)
            done = srv_fail(e, 500, NULL, "generation failed: %s", j->ch[i].error);
    if (!done) {
        srv_job_release(j);
        oa_free(q);
        *res = srv_send_error(r, e);
        return NULL;
    }
    return j;
}

enum MHD_Result srv_openai_chat(srv_req *r) {
    srv_error e;
    oa_req q;
    bool ok = oa_begin(r, &q, &e);
    json_t *tools = ok ? json_object_get(q.body, "tools") : NULL;
    if (ok) {
        json_t *tc = json_object_get(q.body, "tool_choice");
        const char *tcs = json_string_value(tc);
        if (tc && !json_is_null(tc) && !json_is_object(tc) &&
            !(tcs && (!strcmp(tcs, "auto") || !strcmp(tcs, "none") || !strcmp(tcs, "required"))))
            ok = srv_fail(&e, 400, "tool_choice",
                          "tool_choice must be \"auto\", \"none\", \"required\" or an object");
        if (tcs && !strcmp(tcs, "none")) tools = NULL;
        q.g.has_tools = json_array_size(tools) > 0;
    }
    if (ok) ok = srv_chat_prompt(q.m, json_object_get(q.body, "messages"), tools, &q.prompt, &e);
    enum MHD_Result res;
    srv_job *j = oa_run(r, &q, ok, SRV_SSE_CHAT, "messages", &e, &res);
    if (!j) return res;
    char id[48];
    new_id(id, sizeof id, "chatcmpl");
    json_t *choices = json_array();
    for (int i = 0; i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        bm_toolcalls tc = {0};
        bool calls = q.g.has_tools &&
                     bm_toolcall_parse(c->text.p ? c->text.p : "", c->text.n, &tc, NULL) ==
                         BM_OK &&
                     tc.n > 0;
        if (calls) {
            json_object_set_new(msg, "content",
                                tc.content[0] ? json_string(tc.content) : json_null());
            json_t *arr = json_array();
            for (size_t k = 0; k < tc.n; k++) {
                char cid[128];
                snprintf(cid, sizeof cid, "call_%s_%d_%zu", id + 9, i, k);
                json_array_append_new(arr, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", cid, "type",
                                                     "function", "function", "name",
                                                     tc.calls[k].name, "arguments",
                                                     tc.calls[k].arguments));
            }
            json_object_set_new(msg, "tool_calls", arr);
        } else {
            json_object_set_new(msg, "content", srv_json_text(c->text.p ? c->text.p : "",
                                                              c->text.n));
        }
        bm_toolcalls_fini(&tc);
        json_t *ch = json_pack("{s:i,s:o}", "index", i, "message", msg);
        json_object_set_new(ch, "logprobs",
                            j->want_logprobs ? srv_logprobs_json(q.m, c->toks, c->n_toks, true)
                                             : json_null());
        json_object_set_new(ch, "finish_reason", json_string(srv_finish_name(c->finish, calls)));
        json_array_append_new(choices, ch);
    }
    json_t *resp = json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", id, "object", "chat.completion",
                             "created", (json_int_t)time(NULL), "model", q.m->sm->name,
                             "choices", choices, "usage", srv_usage_json(j));
    srv_job_release(j);
    oa_free(&q);
    return srv_send_json(r, 200, resp);
}

enum MHD_Result srv_openai_completions(srv_req *r) {
    srv_error e;
    oa_req q;
    bool ok = oa_begin(r, &q, &e);
    if (ok && !json_object_get(q.body, "prompt"))
        ok = srv_fail(&e, 400, "prompt", "prompt is required");
    if (ok) ok = srv_text_prompt(q.m, json_object_get(q.body, "prompt"), "prompt", true,
                                 &q.prompt, &e);
    if (ok && json_object_get(q.body, "suffix") && !json_is_null(json_object_get(q.body, "suffix")))
        ok = srv_fail(&e, 400, "suffix", "suffix (fill-in-the-middle) is not supported");
    if (ok && q.g.gp.max_tokens < 0 && !json_object_get(q.body, "max_tokens"))
        q.g.gp.max_tokens = 16; /* OpenAI's default for completions */
    enum MHD_Result res;
    srv_job *j = oa_run(r, &q, ok, SRV_SSE_COMPLETION, "prompt", &e, &res);
    if (!j) return res;
    char id[48];
    new_id(id, sizeof id, "cmpl");
    json_t *choices = json_array();
    bool echo = json_is_true(json_object_get(q.body, "echo"));
    for (int i = 0; i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        srv_buf text = {0};
        srv_buf_put(&text, "", 0);
        if (echo) {
            char one[1];
            size_t need = bm_tok_decode(q.m->sm->tok, q.prompt.p, q.prompt.n, true, one, 0);
            char *pb = malloc(need + 1);
            if (pb) {
                bm_tok_decode(q.m->sm->tok, q.prompt.p, q.prompt.n, true, pb, need);
                srv_buf_put(&text, pb, need);
                free(pb);
            }
        }
        srv_buf_put(&text, c->text.p ? c->text.p : "", c->text.n);
        json_t *ch = json_pack("{s:i,s:o}", "index", i, "text", srv_json_text(text.p, text.n));
        srv_buf_free(&text);
        json_object_set_new(ch, "logprobs",
                            j->want_logprobs ? srv_logprobs_json(q.m, c->toks, c->n_toks, false)
                                             : json_null());
        json_object_set_new(ch, "finish_reason", json_string(srv_finish_name(c->finish, false)));
        json_array_append_new(choices, ch);
    }
    json_t *resp = json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", id, "object", "text_completion",
                             "created", (json_int_t)time(NULL), "model", q.m->sm->name,
                             "choices", choices, "usage", srv_usage_json(j));
    srv_job_release(j);
    oa_free(&q);
    return srv_send_json(r, 200, resp);
}

/* float32 little-endian bytes in base64 (what the openai clients ask for by default) */
static json_t *base64_f32(const float *v, int32_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nb = (size_t)n * 4, i = 0, o = 0;
    const uint8_t *b = (const uint8_t *)v;
    char *s = malloc((nb + 2) / 3 * 4 + 1);
    if (!s) return json_null();
    for (; i + 2 < nb; i += 3) {
        uint32_t x = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        s[o++] = A[x >> 18], s[o++] = A[(x >> 12) & 63], s[o++] = A[(x >> 6) & 63],
        s[o++] = A[x & 63];
    }
    if (i < nb) {
        uint32_t x = (uint32_t)b[i] << 16 | (i + 1 < nb ? (uint32_t)b[i + 1] << 8 : 0);
        s[o++] = A[x >> 18], s[o++] = A[(x >> 12) & 63];
        s[o++] = i + 1 < nb ? A[(x >> 6) & 63] : '=';
        s[o++] = '=';
    }
    s[o] = 0;
    json_t *j = json_string(s);
    free(s);
    return j;
}

enum MHD_Result srv_openai_embeddings(srv_req *r) {
    srv_error e;
    json_t *body = srv_body_json(r, &e);
    srv_model *m = NULL;
    if (body) {
        json_t *mv = json_object_get(body, "model");
        m = srv_find_model(r->srv, json_string_value(mv), &e);
    }
    if (!m) {
        json_decref(body);
        return srv_send_error(r, &e);
    }
    json_t *in = json_object_get(body, "input");
    json_t *list = json_is_string(in) ? json_pack("[O]", in) : json_incref(in);
    /* an array of integers is one tokenized input */
    if (json_is_array(in) && json_array_size(in) && json_is_integer(json_array_get(in, 0))) {
        json_decref(list);
        list = json_pack("[O]", in);
    }
    bool ok = true;
    const char *ef = json_string_value(json_object_get(body, "encoding_format"));
    bool b64 = ef && !strcmp(ef, "base64");
    if (ef && strcmp(ef, "float") && !b64)
        ok = srv_fail(&e, 400, "encoding_format", "encoding_format '%s' is not one of float, "
                      "base64", ef);
    if (ok && (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 256))
        ok = srv_fail(&e, 400, "input", "input must be a string, an array of 1..256 strings or "
                      "token-id arrays");
    int32_t n_embd = m->sm->model->hp.n_embd;
    float *vec = ok ? malloc((size_t)n_embd * sizeof *vec) : NULL;
    if (ok && !vec) ok = srv_fail(&e, 500, NULL, "out of memory");
    json_t *data = json_array();
    long long n_tok = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (!ok) break;
        srv_ids ids = {0};
        char param[32];
        snprintf(param, sizeof param, "input[%zu]", i);
        if (json_is_string(item)) {
            ok = srv_tokenize(m->sm->tok, json_string_value(item), json_string_length(item),
                              BM_TOK_ADD_SPECIAL, &ids, &e);
            if (ok && ids.n == 0) ok = srv_fail(&e, 400, "input", "%s is empty", param);
        } else {
            ok = srv_text_prompt(m, item, param, true, &ids, &e);
        }
        if (ok && ids.n > (size_t)m->n_ctx)
            ok = srv_fail(&e, 400, "input", "%s has %zu tokens but the context holds %d", param,
                          ids.n, m->n_ctx);
        if (ok) {
            bm_err err = {0};
            if (bm_engine_embed(m->sm->engine, ids.p, ids.n, vec, &err))
                ok = srv_fail_status(&e, &err, "input");
        }
        if (ok) {
            n_tok += (long long)ids.n;
            json_t *emb = b64 ? base64_f32(vec, n_embd) : json_array();
            for (int32_t k = 0; !b64 && k < n_embd; k++)
                json_array_append_new(emb, json_real(vec[k]));
            json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding",
                                                  "index", (int)i, "embedding", emb));
        }
        srv_ids_free(&ids);
    }
    free(vec);
    json_decref(list);
    if (!ok) {
        json_decref(data);
        json_decref(body);
        return srv_send_error(r, &e);
    }
    json_t *resp = json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                             m->sm->name, "usage", "prompt_tokens", (json_int_t)n_tok,
                             "total_tokens", (json_int_t)n_tok);
    json_decref(body);
    return srv_send_json(r, 200, resp);
}

enum MHD_Result srv_openai_models(srv_req *r) {
    json_t *data = json_array();
    for (size_t i = 0; i < r->srv->n_models; i++) {
        srv_model *m = &r->srv->models[i];
        json_array_append_new(
            data, json_pack("{s:s,s:s,s:I,s:s,s:{s:i,s:i,s:I}}", "id", m->sm->name, "object",
                            "model", "created", (json_int_t)m->created, "owned_by", "baimo",
                            "meta", "n_ctx", m->n_ctx, "n_embd", m->sm->model->hp.n_embd,
                            "n_params", (json_int_t)m->sm->model->n_params));
    }
    return srv_send_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}
