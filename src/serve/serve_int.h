/* Internals shared by the server's files: the server and request records, OpenAI-style errors,
 * the generation job that bridges engine callbacks to HTTP handlers, prompt building, request
 * parameter parsing, metrics and the conversation store. Not a public API. */
#ifndef BAIMO_SERVE_INT_H
#define BAIMO_SERVE_INT_H

#include "baimo/serve.h"
#include "baimo/template.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sqlite3.h>

/* ---- growable byte buffer ------------------------------------------------------------- */
typedef struct srv_buf {
    char *p;
    size_t n, cap;
} srv_buf;
bool srv_buf_put(srv_buf *b, const char *s, size_t n);
bool srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_free(srv_buf *b);

/* ---- errors: {"error":{"message","type","param","code"}} ------------------------------ */
typedef struct srv_error {
    int http;          /* 0: no error */
    char type[40];     /* invalid_request_error, authentication_error, ... */
    char param[64];    /* "" = null */
    char code[48];     /* "" = null */
    char msg[600];
    int retry_after;   /* seconds, 503 only */
} srv_error;
/* Sets e and returns false, so validators can `return srv_fail(...)`. */
bool srv_fail(srv_error *e, int http, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a library status (BM_ERANGE -> 400, BM_EBUSY -> 503, ...) onto e. */
bool srv_fail_status(srv_error *e, const bm_err *err, const char *param);

/* ---- metrics ------------------------------------------------------------------------- */
#define SRV_N_BUCKETS 12
typedef struct srv_hist {
    uint64_t counts[SRV_N_BUCKETS]; /* cumulative at render time, per bucket here */
    double sum;
    uint64_t n;
} srv_hist;
typedef struct srv_route_count {
    char route[48];
    int status;
    uint64_t n;
} srv_route_count;
typedef struct srv_metrics {
    pthread_mutex_t mu;
    srv_route_count *routes;
    size_t n_routes, cap_routes;
    uint64_t prompt_tokens, gen_tokens;
    srv_hist ttft, itl;
} srv_metrics;
void srv_metrics_request(srv_metrics *m, const char *route, int status);
void srv_metrics_observe(srv_metrics *m, srv_hist *h, double seconds);

/* ---- the server ---------------------------------------------------------------------- */
typedef struct srv_model {
    const bm_serve_model *sm;
    bm_tmpl *tmpl;        /* parsed chat template (the model's, or ChatML) */
    int32_t n_ctx;
    double created;
} srv_model;

typedef struct srv_store srv_store;

typedef struct bm_server {
    bm_serve_params p;
    struct MHD_Daemon *mhd;
    int port;
    srv_model *models;
    size_t n_models;
    srv_store *store;
    srv_metrics metrics;
    size_t max_body;
    double timeout_s;
    volatile int stopping;
    double t_start;
} bm_server;

typedef struct srv_req {
    bm_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    char route[48];       /* for metrics: a route pattern, not the raw path */
    srv_buf body;
    bool too_big;
    double t0;
} srv_req;

/* Queues a JSON response (takes ownership of v) / an error / raw bytes. Return MHD_YES/NO. */
enum MHD_Result srv_send_json(srv_req *r, int status, json_t *v);
enum MHD_Result srv_send_error(srv_req *r, const srv_error *e);
enum MHD_Result srv_send_bytes(srv_req *r, int status, const char *ctype, const void *data,
                               size_t n, bool copy);
/* Parses the body as a JSON object; on failure fills e (line/column) and returns NULL. */
json_t *srv_body_json(srv_req *r, srv_error *e);
/* Model by name (NULL or "" = the default); fills e with 404 when unknown. */
srv_model *srv_find_model(bm_server *s, const char *name, srv_error *e);
/* true when the client of r has closed its connection. */
bool srv_client_gone(srv_req *r);
/* RFC 3339 UTC time with nanoseconds of wall-clock now, into buf (>= 40 bytes). */
const char *srv_time_rfc3339(char *buf, size_t cap);
/* Text that is valid UTF-8: invalid bytes replaced by U+FFFD (malloc'd). */
char *srv_utf8_clean(const char *s, size_t n, size_t *n_out);
json_t *srv_json_text(const char *s, size_t n);

/* ---- prompts ------------------------------------------------------------------------- */
typedef struct srv_ids {
    int32_t *p;
    size_t n, cap;
} srv_ids;
void srv_ids_free(srv_ids *v);
/* Renders messages (+ tools) with the model's chat template and tokenizes the result; special
 * token strings inside message contents stay plain text. */
bool srv_chat_prompt(srv_model *m, json_t *messages, json_t *tools, srv_ids *out, srv_error *e);
/* A completion prompt: a string (BOS added, special tokens parsed) or an array of token ids. */
bool srv_text_prompt(srv_model *m, json_t *prompt, const char *param, bool raw_ids_ok,
                     srv_ids *out, srv_error *e);
bool srv_tokenize(const bm_tok *tok, const char *s, size_t n, int flags, srv_ids *out,
                  srv_error *e);

/* ---- generation parameters ----------------------------------------------------------- */
typedef struct srv_gen {
    bm_gen_params gp;
    int n;                 /* choices */
    bool stream, include_usage, logprobs, seed_given;
    char **stop;           /* owned */
    size_t n_stop;
    int32_t *bias_ids;
    float *bias_vals;
    char *schema;          /* owned JSON text */
    bool has_tools;
} srv_gen;
void srv_gen_free(srv_gen *g);
/* OpenAI body fields onto g (defaults first). */
bool srv_gen_openai(srv_model *m, json_t *body, srv_gen *g, srv_error *e);
/* Ollama "options" (+ top-level format/stream) onto g. */
bool srv_gen_ollama(srv_model *m, json_t *body, srv_gen *g, srv_error *e);

/* ---- generation jobs ----------------------------------------------------------------- */
typedef struct srv_tokrec {
    int32_t id;
    float logprob;
    int32_t n_top;
    bm_top_logprob top[20];
} srv_tokrec;

typedef struct srv_choice {
    uint64_t id;
    bool submitted, done;
    srv_buf text;
    srv_tokrec *toks;
    size_t n_toks, cap_toks;
    bm_finish finish;
    char error[256];
    int32_t n_prompt, n_gen, n_cached;
    double t_first, t_last;
} srv_choice;

typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;              /* consumer + choices still running in the engine */
    bm_server *srv;
    srv_model *m;
    bool want_logprobs;
    bool cancel;
    int n;
    srv_choice *ch;
    int n_done;
    double t0;
    uint64_t version;      /* bumped on every event */
} srv_job;

/* Submits prompt with g (n choices, seeds seed+i). On failure fills e (503 + Retry-After when
 * the queue is full) and returns NULL. */
srv_job *srv_job_start(bm_server *s, srv_model *m, const srv_ids *prompt, srv_gen *g,
                       srv_error *e);
/* Waits until every choice finished, the client left, or the timeout; false + e on timeout
 * or disconnect (the job is cancelled). */
bool srv_job_wait(srv_job *j, srv_req *r, srv_error *e);
/* Waits (<= 100 ms) for news after version *seen; returns with j->mu held. */
void srv_job_lock_wait(srv_job *j, uint64_t *seen);
void srv_job_cancel(srv_job *j);
void srv_job_release(srv_job *j);
const char *srv_finish_name(bm_finish f, bool tool_calls);

/* ---- streaming ------------------------------------------------------------------------ */
typedef enum srv_stream_kind {
    SRV_SSE_CHAT, SRV_SSE_COMPLETION, SRV_NDJSON_CHAT, SRV_NDJSON_GENERATE
} srv_stream_kind;
/* Starts a streamed response over job (takes ownership of it). */
enum MHD_Result srv_stream(srv_req *r, srv_job *j, srv_stream_kind kind, srv_gen *g,
                           const char *model_name);

/* ---- routes ------------------------------------------------------------------------- */
enum MHD_Result srv_openai_chat(srv_req *r);
enum MHD_Result srv_openai_completions(srv_req *r);
enum MHD_Result srv_openai_embeddings(srv_req *r);
enum MHD_Result srv_openai_models(srv_req *r);
/* Ollama's message.tool_calls: [{"function": {"name", "arguments": object}}]. */
struct bm_toolcalls;
json_t *srv_ollama_tool_calls(const struct bm_toolcalls *tc);
enum MHD_Result srv_ollama_chat(srv_req *r);
enum MHD_Result srv_ollama_generate(srv_req *r);
enum MHD_Result srv_ollama_tags(srv_req *r);
enum MHD_Result srv_ollama_show(srv_req *r);
enum MHD_Result srv_metrics_route(srv_req *r);
/* /api/conversations[/{id}] */
enum MHD_Result srv_store_route(srv_req *r, const char *id);

/* Builds the OpenAI response objects shared by stream and non-stream code. */
json_t *srv_logprobs_json(srv_model *m, const srv_tokrec *t, size_t n, bool chat);
json_t *srv_usage_json(srv_job *j);

/* ---- store -------------------------------------------------------------------------- */
bm_status srv_store_open(const char *path, srv_store **out, bm_err *err);
void srv_store_close(srv_store *st);

#endif
