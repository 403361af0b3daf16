/* Ollama-compatible routes: POST /api/chat and /api/generate (NDJSON streaming by default,
 * one object with "stream": false), GET /api/tags, POST /api/show. Fields follow what Ollama
 * returns (model, created_at, message/response, done, done_reason, durations in ns, counts). */
#include "serve/serve_int.h"

#include "tools/toolcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

json_t *srv_ollama_tool_calls(const bm_toolcalls *tc) {
    json_t *arr = json_array();
    for (size_t k = 0; k < tc->n; k++) {
        json_t *args = json_loads(tc->calls[k].arguments, 0, NULL);
        json_array_append_new(arr, json_pack("{s:{s:s,s:o}}", "function", "name",
                                             tc->calls[k].name, "arguments",
                                             args ? args : json_object()));
    }
    return arr;
}

static enum MHD_Result generate(srv_req *r, bool chat) {
    srv_error e;
    srv_gen g = {0};
    srv_ids prompt = {0};
    json_t *body = srv_body_json(r, &e);
    srv_model *m = NULL;
    bool ok = body != NULL;
    if (ok) {
        json_t *mv = json_object_get(body, "model");
        if (!json_is_string(mv)) ok = srv_fail(&e, 400, "model", "model is required");
        else ok = (m = srv_find_model(r->srv, json_string_value(mv), &e)) != NULL;
    }
    if (ok) ok = srv_gen_ollama(m, body, &g, &e);
    json_t *tools = ok && chat ? json_object_get(body, "tools") : NULL;
    g.has_tools = json_array_size(tools) > 0;
    if (ok && chat) {
        ok = srv_chat_prompt(m, json_object_get(body, "messages"), tools, &prompt, &e);
    } else if (ok) {
        json_t *p = json_object_get(body, "prompt");
        bool raw = json_is_true(json_object_get(body, "raw"));
        const char *sys = json_string_value(json_object_get(body, "system"));
        if (!json_is_string(p)) {
            ok = srv_fail(&e, 400, "prompt", "prompt must be a string");
        } else if (raw) {
            ok = srv_text_prompt(m, p, "prompt", false, &prompt, &e);
        } else {
            /* Ollama applies the chat template to the prompt unless raw */
            json_t *msgs = json_array();
            if (sys) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system",
                                                           "content", sys));
            json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", p));
            ok = srv_chat_prompt(m, msgs, NULL, &prompt, &e);
            json_decref(msgs);
        }
    }
    srv_job *j = ok ? srv_job_start(r->srv, m, &prompt, &g, &e) : NULL;
    srv_ids_free(&prompt);
    if (!j) {
        srv_gen_free(&g);
        json_decref(body);
        return srv_send_error(r, &e);
    }
    if (g.stream) {
        enum MHD_Result res =
            srv_stream(r, j, chat ? SRV_NDJSON_CHAT : SRV_NDJSON_GENERATE, &g, m->sm->name);
        srv_gen_free(&g);
        json_decref(body);
        return res;
    }
    if (!srv_job_wait(j, r, &e)) {
        srv_job_release(j);
        srv_gen_free(&g);
        json_decref(body);
        return srv_send_error(r, &e);
    }
    srv_choice *c = &j->ch[0];
    char ts[48];
    double total = bm_time_now() - j->t0;
    double first = c->t_first > 0 ? c->t_first - j->t0 : total;
    json_t *o = json_pack("{s:s,s:s}", "model", m->sm->name, "created_at",
                          srv_time_rfc3339(ts, sizeof ts));
    json_t *text = srv_json_text(c->text.p ? c->text.p : "", c->text.n);
    if (chat) {
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        bm_toolcalls tc = {0};
        if (g.has_tools && bm_toolcall_parse(json_string_value(text), json_string_length(text),
                                             &tc, NULL) == BM_OK && tc.n) {
            json_object_set_new(msg, "content", json_string(tc.content));
            json_object_set_new(msg, "tool_calls", srv_ollama_tool_calls(&tc));
            json_decref(text);
        } else {
            json_object_set_new(msg, "content", text);
        }
        bm_toolcalls_fini(&tc);
        json_object_set_new(o, "message", msg);
    } else {
        json_object_set_new(o, "response", text);
    }
    json_object_set_new(o, "done", json_true());
    json_object_set_new(o, "done_reason",
                        json_string(c->finish == BM_FINISH_LENGTH ? "length" : "stop"));
    json_object_set_new(o, "total_duration", json_integer((json_int_t)(total * 1e9)));
    json_object_set_new(o, "load_duration", json_integer(0));
    json_object_set_new(o, "prompt_eval_count", json_integer(c->n_prompt));
    json_object_set_new(o, "prompt_eval_duration", json_integer((json_int_t)(first * 1e9)));
    json_object_set_new(o, "eval_count", json_integer(c->n_gen));
    json_object_set_new(o, "eval_duration", json_integer((json_int_t)((total - first) * 1e9)));
    srv_job_release(j);
    srv_gen_free(&g);
    json_decref(body);
    return srv_send_json(r, 200, o);
}

enum MHD_Result srv_ollama_chat(srv_req *r) { return generate(r, true); }
enum MHD_Result srv_ollama_generate(srv_req *r) { return generate(r, false); }

static json_t *details(srv_model *m) {
    const bm_model *md = m->sm->model;
    char ps[32];
    double np = (double)md->n_params;
    if (np >= 1e9) snprintf(ps, sizeof ps, "%.1fB", np / 1e9);
    else snprintf(ps, sizeof ps, "%.0fM", np / 1e6);
    return json_pack("{s:s,s:s,s:[s],s:s,s:s}", "format", "gguf", "family",
                     md->arch ? md->arch->name : "unknown", "families",
                     md->arch ? md->arch->name : "unknown", "parameter_size", ps,
                     "quantization_level", "");
}

enum MHD_Result srv_ollama_tags(srv_req *r) {
    json_t *models = json_array();
    char ts[48];
    srv_time_rfc3339(ts, sizeof ts);
    for (size_t i = 0; i < r->srv->n_models; i++) {
        srv_model *m = &r->srv->models[i];
        json_array_append_new(
            models, json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", m->sm->name, "model",
                              m->sm->name, "modified_at", ts, "size",
                              (json_int_t)m->sm->model->weight_bytes, "digest", "", "details",
                              details(m)));
    }
    return srv_send_json(r, 200, json_pack("{s:o}", "models", models));
}

enum MHD_Result srv_ollama_show(srv_req *r) {
    srv_error e;
    json_t *body = srv_body_json(r, &e);
    srv_model *m = NULL;
    if (body) {
        json_t *mv = json_object_get(body, "model");
        if (!mv) mv = json_object_get(body, "name");
        if (!json_is_string(mv)) srv_fail(&e, 400, "model", "model is required");
        else m = srv_find_model(r->srv, json_string_value(mv), &e);
    }
    json_decref(body);
    if (!m) return srv_send_error(r, &e);
    const bm_hparams *hp = &m->sm->model->hp;
    const char *arch = m->sm->model->arch ? m->sm->model->arch->name : "unknown";
    json_t *info = json_object();
    char k[96];
    json_object_set_new(info, "general.architecture", json_string(arch));
    json_object_set_new(info, "general.parameter_count",
                        json_integer((json_int_t)m->sm->model->n_params));
#define KV(name, v)                                                                            \
    snprintf(k, sizeof k, "%s.%s", arch, name);                                                \
    json_object_set_new(info, k, json_integer(v))
    KV("context_length", hp->n_ctx_train);
    KV("embedding_length", hp->n_embd);
    KV("block_count", hp->n_layer);
    KV("attention.head_count", hp->n_head);
    KV("attention.head_count_kv", hp->n_head_kv);
    KV("feed_forward_length", hp->n_ff);
#undef KV
    const char *tmpl = bm_tok_chat_template(m->sm->tok);
    char params[64];
    snprintf(params, sizeof params, "num_ctx %d", m->n_ctx);
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:[s]}", "modelfile", "", "parameters", params,
                          "template", tmpl ? tmpl : "", "details", details(m), "model_info",
                          info, "capabilities", "completion");
    json_array_append_new(json_object_get(o, "capabilities"), json_string("tools"));
    json_array_append_new(json_object_get(o, "capabilities"), json_string("embedding"));
    return srv_send_json(r, 200, o);
}
