/* Streamed responses: OpenAI server-sent events (chat.completion.chunk / text_completion
 * chunks, a usage chunk on request, then [DONE]) and Ollama NDJSON lines. A libmicrohttpd
 * content-reader callback pulls from the job: it blocks (this connection's own thread) until
 * the engine produced more, and a failed write or a closed socket cancels the job. With tools,
 * text that may start a tool call is held back and sent at the end as delta.tool_calls (OpenAI)
 * or message.tool_calls (Ollama), or as text when it was no call. */
#include "serve/serve_int.h"

#include "tools/toolcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct srv_stream_st {
    srv_req *r;               /* valid while the connection lives */
    bm_server *srv;
    struct MHD_Connection *conn;
    srv_job *j;
    srv_stream_kind kind;
    bool include_usage, has_tools;
    char model[128];
    char id[48];
    long created;
    size_t *sent;             /* [n] bytes of text sent per choice */
    size_t *sent_toks;        /* [n] token records sent per choice */
    bool *role_sent, *final_sent;
    bool *in_call;            /* a tool call started: hold the rest */
    int n_final;
    bool done;
    srv_buf out;
    size_t out_pos;
    uint64_t seen;
} srv_stream_st;

static void emit_json(srv_stream_st *s, json_t *v) {
    char *t = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!t) return;
    if (s->kind == SRV_SSE_CHAT || s->kind == SRV_SSE_COMPLETION) {
        srv_buf_put(&s->out, "data: ", 6);
        srv_buf_put(&s->out, t, strlen(t));
        srv_buf_put(&s->out, "\n\n", 2);
    } else {
        srv_buf_put(&s->out, t, strlen(t));
        srv_buf_put(&s->out, "\n", 1);
    }
    free(t);
}

static json_t *chunk_base(srv_stream_st *s) {
    return json_pack("{s:s,s:s,s:I,s:s}", "id", s->id, "object",
                     s->kind == SRV_SSE_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)s->created, "model", s->model);
}

static void emit_openai_delta(srv_stream_st *s, int i, const char *text, size_t n,
                              json_t *logprobs, json_t *tool_calls, const char *finish) {
    json_t *c = chunk_base(s), *choice = json_pack("{s:i}", "index", i);
    if (s->kind == SRV_SSE_CHAT) {
        json_t *delta = json_object();
        if (!s->role_sent[i]) {
            json_object_set_new(delta, "role", json_string("assistant"));
            s->role_sent[i] = true;
        }
        if (text) json_object_set_new(delta, "content", srv_json_text(text, n));
        if (tool_calls) json_object_set_new(delta, "tool_calls", tool_calls);
        json_object_set_new(choice, "delta", delta);
    } else {
        json_object_set_new(choice, "text", srv_json_text(text ? text : "", text ? n : 0));
    }
    json_object_set_new(choice, "logprobs", logprobs ? logprobs : json_null());
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_object_set_new(c, "choices", json_pack("[o]", choice));
    emit_json(s, c);
}

/* One NDJSON line: text (chat: message.content, with tool_calls when given), done with fin. */
static void emit_ollama(srv_stream_st *s, const char *text, size_t n, json_t *tool_calls,
                        const srv_choice *fin) {
    char ts[48];
    json_t *o = json_pack("{s:s,s:s}", "model", s->model, "created_at",
                          srv_time_rfc3339(ts, sizeof ts));
    json_t *t = srv_json_text(text ? text : "", text ? n : 0);
    if (s->kind == SRV_NDJSON_CHAT) {
        json_t *msg = json_pack("{s:s,s:o}", "role", "assistant", "content", t);
        if (tool_calls) json_object_set_new(msg, "tool_calls", tool_calls);
        json_object_set_new(o, "message", msg);
    } else {
        json_decref(tool_calls);
        json_object_set_new(o, "response", t);
    }
    json_object_set_new(o, "done", json_boolean(fin != NULL));
    if (fin) {
        double total = bm_time_now() - s->j->t0;
        double first = fin->t_first > 0 ? fin->t_first - s->j->t0 : total;
        json_object_set_new(o, "done_reason",
                            json_string(fin->finish == BM_FINISH_LENGTH ? "length" : "stop"));
        json_object_set_new(o, "total_duration", json_integer((json_int_t)(total * 1e9)));
        json_object_set_new(o, "load_duration", json_integer(0));
        json_object_set_new(o, "prompt_eval_count", json_integer(fin->n_prompt));
        json_object_set_new(o, "prompt_eval_duration", json_integer((json_int_t)(first * 1e9)));
        json_object_set_new(o, "eval_count", json_integer(fin->n_gen));
        json_object_set_new(o, "eval_duration",
                            json_integer((json_int_t)((total - first) * 1e9)));
    }
    emit_json(s, o);
}

static json_t *tool_calls_json(const bm_toolcalls *tc, const char *id_base, bool with_index) {
    json_t *a = json_array();
    for (size_t k = 0; k < tc->n; k++) {
        char id[128];
        snprintf(id, sizeof id, "call_%s_%zu", id_base, k);
        json_t *c = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function",
                              "name", tc->calls[k].name, "arguments", tc->calls[k].arguments);
        if (with_index) json_object_set_new(c, "index", json_integer((json_int_t)k));
        json_array_append_new(a, c);
    }
    return a;
}

/* Turns new job state into output bytes. Called with j->mu held. */
static void produce(srv_stream_st *s) {
    srv_job *j = s->j;
    for (int i = 0; i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        if (s->final_sent[i]) continue;
        size_t avail = c->text.n;
        if (s->has_tools) {
            const char *t = c->text.p ? c->text.p + s->sent[i] : "";
            size_t nt = avail - s->sent[i], lead = 0;
            while (lead < nt && t[lead] && strchr(" \t\r\n", t[lead])) lead++;
            if (s->in_call[i]) {
                avail = s->sent[i];
            } else if (s->sent[i] == 0 && (lead == nt || t[lead] == '{')) {
                /* only whitespace so far, or a '{' after it: may be a Llama 3 JSON call */
                avail = s->sent[i];
            } else {
                long at = bm_toolcall_find(t, nt);
                if (at >= 0) {
                    s->in_call[i] = true;
                    avail = s->sent[i] + (size_t)at;
                } else if (!c->done) {
                    avail -= bm_toolcall_hold(t, nt);
                }
            }
        }
        size_t ntok = c->n_toks;
        bool has_new = avail > s->sent[i] || (ntok > s->sent_toks[i] && !s->in_call[i]);
        if (s->kind == SRV_SSE_CHAT && !s->role_sent[i]) has_new = true;
        if (has_new) {
            json_t *lp = NULL;
            if (j->want_logprobs && ntok > s->sent_toks[i]) {
                lp = srv_logprobs_json(j->m, c->toks + s->sent_toks[i], ntok - s->sent_toks[i],
                                       s->kind == SRV_SSE_CHAT);
                s->sent_toks[i] = ntok;
            }
            const char *t = c->text.p ? c->text.p + s->sent[i] : "";
            size_t n = avail - s->sent[i];
            if (s->kind == SRV_NDJSON_CHAT || s->kind == SRV_NDJSON_GENERATE) {
                if (n) emit_ollama(s, t, n, NULL, NULL);
                json_decref(lp);
            } else {
                emit_openai_delta(s, i, n || s->kind != SRV_SSE_CHAT ? t : NULL, n, lp, NULL,
                                  NULL);
            }
            s->sent[i] = avail;
        }
        if (c->done) {
            bool calls = false;
            json_t *tcj = NULL;
            if (s->has_tools && c->text.n > s->sent[i]) {
                bm_toolcalls tc;
                const char *rest = c->text.p + s->sent[i];
                size_t nrest = c->text.n - s->sent[i];
                if (bm_toolcall_parse(rest, nrest, &tc, NULL) == BM_OK && tc.n) {
                    char base[64];
                    snprintf(base, sizeof base, "%s%d", s->id + 9, i);
                    calls = true;
                    if (s->kind == SRV_NDJSON_CHAT) {
                        /* Ollama: one message line with the calls (and any text before them) */
                        emit_ollama(s, tc.content, strlen(tc.content), srv_ollama_tool_calls(&tc),
                                    NULL);
                    } else {
                        tcj = tool_calls_json(&tc, base, true);
                        if (tc.content[0] && s->kind == SRV_SSE_CHAT)
                            emit_openai_delta(s, i, tc.content, strlen(tc.content), NULL, NULL,
                                              NULL);
                    }
                } else if (s->kind == SRV_SSE_CHAT) {
                    emit_openai_delta(s, i, rest, nrest, NULL, NULL, NULL);
                } else if (s->kind == SRV_NDJSON_CHAT) {
                    emit_ollama(s, rest, nrest, NULL, NULL); /* held back, not a call after all */
                }
                bm_toolcalls_fini(&tc);
                s->sent[i] = c->text.n;
            }
            if (c->finish == BM_FINISH_ERROR && s->kind <= SRV_SSE_COMPLETION) {
                json_t *err = json_pack("{s:{s:s,s:s}}", "error", "message",
                                        c->error[0] ? c->error : "generation failed", "type",
                                        "server_error");
                emit_json(s, err);
            }
            if (s->kind == SRV_SSE_CHAT || s->kind == SRV_SSE_COMPLETION) {
                if (tcj) emit_openai_delta(s, i, NULL, 0, NULL, tcj, NULL);
                emit_openai_delta(s, i, NULL, 0, NULL, NULL,
                                  srv_finish_name(c->finish, calls));
            } else {
                json_decref(tcj);
                emit_ollama(s, NULL, 0, NULL, c);
            }
            s->final_sent[i] = true;
            s->n_final++;
        }
    }
    if (s->n_final == j->n && !s->done) {
        if (s->kind == SRV_SSE_CHAT || s->kind == SRV_SSE_COMPLETION) {
            if (s->include_usage) {
                json_t *c = chunk_base(s);
                json_object_set_new(c, "choices", json_array());
                json_object_set_new(c, "usage", srv_usage_json(j));
                emit_json(s, c);
            }
            srv_buf_put(&s->out, "data: [DONE]\n\n", 14);
        }
        s->done = true;
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max) {
    srv_stream_st *s = cls;
    for (;;) {
        if (s->out_pos < s->out.n) {
            size_t k = s->out.n - s->out_pos;
            if (k > max) k = max;
            memcpy(buf, s->out.p + s->out_pos, k);
            s->out_pos += k;
            if (s->out_pos == s->out.n) s->out_pos = s->out.n = 0;
            return (ssize_t)k;
        }
        if (s->done) return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->srv->stopping) {
            srv_job_cancel(s->j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (bm_time_now() - s->j->t0 > s->srv->timeout_s) {
            srv_job_cancel(s->j);
            char msg[128];
            snprintf(msg, sizeof msg, "the request ran longer than the timeout of %g s",
                     s->srv->timeout_s);
            if (s->kind <= SRV_SSE_COMPLETION) {
                emit_json(s, json_pack("{s:{s:s,s:s}}", "error", "message", msg, "type",
                                       "timeout_error"));
                srv_buf_put(&s->out, "data: [DONE]\n\n", 14);
            } else {
                emit_json(s, json_pack("{s:s}", "error", msg));
            }
            s->done = true;
            continue;
        }
        srv_job_lock_wait(s->j, &s->seen);
        produce(s);
        pthread_mutex_unlock(&s->j->mu);
        if (s->out.n == 0 && !s->done) {
            /* nothing new: notice a client that left while the model is still thinking */
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (ci) {
                srv_req tmp = {.conn = s->conn};
                if (srv_client_gone(&tmp)) {
                    srv_job_cancel(s->j);
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                }
            }
        }
    }
}

static void stream_free(void *cls) {
    srv_stream_st *s = cls;
    srv_job_release(s->j); /* cancels what still runs: the client may have left */
    srv_buf_free(&s->out);
    free(s->sent);
    free(s->sent_toks);
    free(s->role_sent);
    free(s->final_sent);
    free(s->in_call);
    free(s);
}

enum MHD_Result srv_stream(srv_req *r, srv_job *j, srv_stream_kind kind, srv_gen *g,
                           const char *model_name) {
    srv_stream_st *s = calloc(1, sizeof *s);
    int n = j->n;
    if (s) {
        s->sent = calloc((size_t)n, sizeof *s->sent);
        s->sent_toks = calloc((size_t)n, sizeof *s->sent_toks);
        s->role_sent = calloc((size_t)n, sizeof(bool));
        s->final_sent = calloc((size_t)n, sizeof(bool));
        s->in_call = calloc((size_t)n, sizeof(bool));
    }
    if (!s || !s->sent || !s->sent_toks || !s->role_sent || !s->final_sent || !s->in_call) {
        if (s) {
            s->j = j;
            stream_free(s);
        } else {
            srv_job_release(j);
        }
        srv_error e;
        srv_fail(&e, 500, NULL, "out of memory");
        return srv_send_error(r, &e);
    }
    s->srv = r->srv;
    s->conn = r->conn;
    s->j = j;
    s->kind = kind;
    s->include_usage = g->include_usage;
    s->has_tools = g->has_tools;
    s->created = (long)time(NULL);
    snprintf(s->model, sizeof s->model, "%s", model_name);
    bm_rng rng;
    bm_rng_seed(&rng, (uint64_t)(bm_time_now() * 1e9) ^ (uint64_t)(uintptr_t)s);
    snprintf(s->id, sizeof s->id, "%s-%016llx", kind == SRV_SSE_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)bm_rng_u64(&rng));
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, s, stream_free);
    if (!resp) {
        stream_free(s);
        return MHD_NO;
    }
    bool sse = kind == SRV_SSE_CHAT || kind == SRV_SSE_COMPLETION;
    MHD_add_response_header(resp, "Content-Type",
                            sse ? "text/event-stream" : "application/x-ndjson");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(&r->srv->metrics, r->route, 200);
    return ok;
}
