/* HTTP layer over libmicrohttpd: server lifecycle, body accumulation with a size limit, API-key
 * authentication (constant-time), routing to the OpenAI/Ollama/store handlers, the embedded web
 * page, /health, and the helpers every handler uses to answer (JSON, OpenAI error objects).
 * Threading: one thread per connection, so handlers may block while a generation runs. */
#include "serve/serve_int.h"

#include "web_assets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

/* ---- buffers, text ------------------------------------------------------------------ */

bool srv_buf_put(srv_buf *b, const char *s, size_t n) {
    size_t need;
    if (!bm_size_add(b->n, n + 1, &need)) return false;
    if (need > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < need) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) return false;
        b->p = q;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

bool srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return false;
    if ((size_t)k < sizeof tmp) return srv_buf_put(b, tmp, (size_t)k);
    char *big = malloc((size_t)k + 1);
    if (!big) return false;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    bool ok = srv_buf_put(b, big, (size_t)k);
    free(big);
    return ok;
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *srv_utf8_clean(const char *s, size_t n, size_t *n_out) {
    srv_buf b = {0};
    size_t i = 0;
    srv_buf_put(&b, "", 0);
    while (i < n) {
        uint32_t cp;
        int k = bm_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k > 0 && cp != 0) {
            srv_buf_put(&b, s + i, (size_t)k);
            i += (size_t)k;
        } else {
            srv_buf_put(&b, k > 0 ? " " : "\xEF\xBF\xBD", k > 0 ? 1 : 3);
            i += k > 0 ? (size_t)k : 1;
        }
    }
    if (n_out) *n_out = b.n;
    return b.p;
}

json_t *srv_json_text(const char *s, size_t n) {
    json_t *v = json_stringn(s, n);
    if (v) return v;
    size_t m;
    char *c = srv_utf8_clean(s, n, &m);
    v = json_stringn(c ? c : "", c ? m : 0);
    free(c);
    return v;
}

const char *srv_time_rfc3339(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%09ldZ", d, (long)ts.tv_nsec);
    return buf;
}

/* ---- errors ------------------------------------------------------------------------- */

bool srv_fail(srv_error *e, int http, const char *param, const char *fmt, ...) {
    memset(e, 0, sizeof *e);
    e->http = http;
    const char *type = http == 401   ? "authentication_error"
                       : http == 404 ? "not_found_error"
                       : http == 503 ? "server_overloaded"
                       : http == 504 ? "timeout_error"
                       : http >= 500 ? "server_error"
                                     : "invalid_request_error";
    snprintf(e->type, sizeof e->type, "%s", type);
    if (param) snprintf(e->param, sizeof e->param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return false;
}

bool srv_fail_status(srv_error *e, const bm_err *err, const char *param) {
    int http;
    switch (err->code) {
    case BM_EINVAL: case BM_ERANGE: case BM_EFORMAT: case BM_EOVERFLOW: http = 400; break;
    case BM_ENOTFOUND: http = 404; break;
    case BM_EBUSY: http = 503; break;
    case BM_EUNSUPPORTED: http = 501; break;
    default: http = 500;
    }
    srv_fail(e, http, param, "%s", err->msg);
    if (http == 503) {
        e->retry_after = 1;
        snprintf(e->code, sizeof e->code, "queue_full");
    }
    if (err->code == BM_ERANGE) snprintf(e->code, sizeof e->code, "context_length_exceeded");
    return false;
}

/* ---- responses ---------------------------------------------------------------------- */

enum MHD_Result srv_send_bytes(srv_req *r, int status, const char *ctype, const void *data,
                               size_t n, bool copy) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        n, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(&r->srv->metrics, r->route, status);
    return ok;
}

enum MHD_Result srv_send_json(srv_req *r, int status, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s) return srv_send_bytes(r, 500, "text/plain", "out of memory", 13, false);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(&r->srv->metrics, r->route, status);
    return ok;
}

enum MHD_Result srv_send_error(srv_req *r, const srv_error *e) {
    json_t *err = json_pack("{s:s,s:s}", "message", e->msg, "type", e->type);
    json_object_set_new(err, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(err, "code", e->code[0] ? json_string(e->code) : json_null());
    json_t *wrap = json_pack("{s:o}", "error", err);
    char *s = json_dumps(wrap, JSON_COMPACT);
    json_decref(wrap);
    if (!s) return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (e->http == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", e->retry_after > 0 ? e->retry_after : 1);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (e->http == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)e->http, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(&r->srv->metrics, r->route, e->http);
    return ok;
}

json_t *srv_body_json(srv_req *r, srv_error *e) {
    if (r->body.n == 0) {
        srv_fail(e, 400, NULL, "request body is empty; expected a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(r->body.p, r->body.n, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        srv_fail(e, 400, NULL, "invalid JSON in request body at line %d, column %d: %s",
                 je.line, je.column, je.text);
        snprintf(e->code, sizeof e->code, "invalid_json");
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        srv_fail(e, 400, NULL, "request body must be a JSON object");
        return NULL;
    }
    return v;
}

srv_model *srv_find_model(bm_server *s, const char *name, srv_error *e) {
    if (!name || !*name) return &s->models[0];
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].sm->name, name) == 0) return &s->models[i];
    /* Ollama clients add ":latest" */
    size_t k = strlen(name);
    if (k > 7 && strcmp(name + k - 7, ":latest") == 0)
        for (size_t i = 0; i < s->n_models; i++)
            if (strlen(s->models[i].sm->name) == k - 7 &&
                strncmp(s->models[i].sm->name, name, k - 7) == 0)
                return &s->models[i];
    srv_fail(e, 404, "model", "model '%s' not found; this server has: %s%s%s", name,
             s->models[0].sm->name, s->n_models > 1 ? ", " : "",
             s->n_models > 1 ? s->models[1].sm->name : "");
    snprintf(e->code, sizeof e->code, "model_not_found");
    return NULL;
}

bool srv_client_gone(srv_req *r) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd pf = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) <= 0) return false;
    if (pf.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    if (pf.revents & POLLIN) {
        char c;
        ssize_t k = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return k == 0;
    }
    return false;
}

/* ---- static pages, health, version --------------------------------------------------- */

static const char *ctype_of(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

static bool send_asset(srv_req *r, const char *path, enum MHD_Result *res) {
    if (!strcmp(path, "/")) path = "/index.html";
    for (size_t i = 0; bm_web_assets[i].path; i++) {
        if (strcmp(bm_web_assets[i].path, path) == 0) {
            snprintf(r->route, sizeof r->route, "/static");
            *res = srv_send_bytes(r, 200, ctype_of(path), bm_web_assets[i].data,
                                  bm_web_assets[i].n, false);
            return true;
        }
    }
    return false;
}

static enum MHD_Result route_health(srv_req *r) {
    json_t *models = json_array();
    for (size_t i = 0; i < r->srv->n_models; i++) {
        bm_engine_stats st;
        bm_engine_get_stats(r->srv->models[i].sm->engine, &st);
        json_array_append_new(models, json_pack("{s:s,s:i,s:i}", "name",
                                                r->srv->models[i].sm->name, "running",
                                                st.n_running, "queued", st.n_queued));
    }
    return srv_send_json(r, 200, json_pack("{s:s,s:o}", "status", "ok", "models", models));
}

static enum MHD_Result route_version(srv_req *r) {
    return srv_send_json(r, 200, json_pack("{s:s}", "version", "0.1.0"));
}

/* ---- authentication ----------------------------------------------------------------- */

/* Compares without an early exit, so timing does not reveal how much of a key matched. */
static bool key_equal(const char *a, size_t na, const char *b, size_t nb) {
    unsigned char d = (unsigned char)(na != nb);
    size_t n = na > nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < na ? (unsigned char)a[i] : 0, y = i < nb ? (unsigned char)b[i] : 0;
        d |= (unsigned char)(x ^ y);
    }
    return d == 0;
}

static bool authorized(srv_req *r) {
    const bm_serve_params *p = &r->srv->p;
    if (p->n_api_keys == 0) return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    const char *key = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) key = h + 7;
    if (!key) key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-api-key");
    if (!key) return false;
    bool ok = false;
    for (size_t i = 0; i < p->n_api_keys; i++)
        ok |= key_equal(key, strlen(key), p->api_keys[i], strlen(p->api_keys[i]));
    return ok;
}

/* ---- routing ------------------------------------------------------------------------ */

typedef struct route {
    const char *method, *path;
    enum MHD_Result (*fn)(srv_req *r);
} route;

static const route ROUTES[] = {
    {"POST", "/v1/chat/completions", srv_openai_chat},
    {"POST", "/v1/completions", srv_openai_completions},
    {"POST", "/v1/embeddings", srv_openai_embeddings},
    {"GET", "/v1/models", srv_openai_models},
    {"POST", "/api/chat", srv_ollama_chat},
    {"POST", "/api/generate", srv_ollama_generate},
    {"GET", "/api/tags", srv_ollama_tags},
    {"POST", "/api/show", srv_ollama_show},
    {"GET", "/api/version", route_version},
    {"GET", "/health", route_health},
    {"GET", "/metrics", srv_metrics_route},
};

static enum MHD_Result dispatch(srv_req *r) {
    srv_error e;
    const char *url = r->url;
    bool is_get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    if (r->too_big) {
        snprintf(r->route, sizeof r->route, "%s", url);
        srv_fail(&e, 413, NULL, "request body is larger than the limit of %zu bytes",
                 r->srv->max_body);
        return srv_send_error(r, &e);
    }
    if (is_get) {
        enum MHD_Result res;
        if (send_asset(r, url, &res)) return res;
    }
    bool open = !strcmp(url, "/health");
    for (size_t i = 0; i < sizeof ROUTES / sizeof *ROUTES; i++) {
        if (strcmp(ROUTES[i].path, url) != 0) continue;
        snprintf(r->route, sizeof r->route, "%s", ROUTES[i].path);
        if (!open && !authorized(r)) {
            srv_fail(&e, 401, NULL, "invalid or missing API key (send Authorization: Bearer KEY)");
            snprintf(e.code, sizeof e.code, "invalid_api_key");
            return srv_send_error(r, &e);
        }
        if (strcmp(ROUTES[i].method, r->method) != 0 &&
            !(is_get && !strcmp(ROUTES[i].method, "GET"))) {
            srv_fail(&e, 405, NULL, "method %s is not allowed on %s; use %s", r->method, url,
                     ROUTES[i].method);
            return srv_send_error(r, &e);
        }
        return ROUTES[i].fn(r);
    }
    const char *conv = "/api/conversations";
    size_t kc = strlen(conv);
    if (strncmp(url, conv, kc) == 0 && (url[kc] == 0 || url[kc] == '/')) {
        snprintf(r->route, sizeof r->route, "%s%s", conv, url[kc] ? "/{id}" : "");
        if (!authorized(r)) {
            srv_fail(&e, 401, NULL, "invalid or missing API key (send Authorization: Bearer KEY)");
            return srv_send_error(r, &e);
        }
        return srv_store_route(r, url[kc] == '/' ? url + kc + 1 : NULL);
    }
    snprintf(r->route, sizeof r->route, "unknown");
    srv_fail(&e, 404, NULL, "no route %s %s", r->method, url);
    snprintf(e.code, sizeof e.code, "not_found");
    return srv_send_error(r, &e);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
    bm_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->t0 = bm_time_now();
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big) {
            if (r->body.n + *upload_size > s->max_body) {
                r->too_big = true;
                srv_buf_free(&r->body);
            } else if (!srv_buf_put(&r->body, upload_data, *upload_size)) {
                return MHD_NO;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    r->method = method;
    r->url = url;
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    srv_req *r = *con_cls;
    if (!r) return;
    srv_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static const char CHATML[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

bm_status bm_server_new(const bm_serve_params *p, bm_server **out, bm_err *err) {
    *out = NULL;
    if (!p->n_models) return bm_err_set(err, BM_EINVAL, "serve: no model given");
    bm_server *s = bm_calloc(1, sizeof *s, err);
    if (!s) return BM_ENOMEM;
    s->p = *p;
    s->max_body = p->max_body_bytes ? p->max_body_bytes : (size_t)8 << 20;
    s->timeout_s = p->request_timeout_s > 0 ? p->request_timeout_s : 600;
    s->t_start = bm_time_now();
    pthread_mutex_init(&s->metrics.mu, NULL);
    bm_status st = BM_OK;
    s->models = bm_calloc(p->n_models, sizeof *s->models, err);
    if (!s->models) {
        bm_server_free(s);
        return BM_ENOMEM;
    }
    s->n_models = p->n_models;
    for (size_t i = 0; i < p->n_models && !st; i++) {
        srv_model *m = &s->models[i];
        m->sm = &p->models[i];
        m->n_ctx = bm_engine_n_ctx(m->sm->engine);
        m->created = (double)time(NULL);
        const char *src = bm_tok_chat_template(m->sm->tok);
        if (!src) src = CHATML;
        st = bm_tmpl_parse(src, strlen(src), &m->tmpl, err);
        if (st) bm_err_wrap(err, "serve: chat template of model '%s'", m->sm->name);
    }
    if (!st && p->db_path) st = srv_store_open(p->db_path, &s->store, err);
    if (st) {
        bm_server_free(s);
        return st;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    const char *host = p->host ? p->host : "127.0.0.1";
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        bm_server_free(s);
        return bm_err_set(err, BM_EINVAL, "serve: --host '%s' is not an IPv4 address", host);
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)p->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(p->max_connections > 0 ? p->max_connections : 256),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!s->mhd) {
        bm_server_free(s);
        return bm_err_set(err, BM_EIO, "serve: cannot listen on %s:%d (%s)", host, p->port,
                          errno ? strerror(errno) : "address in use?");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    *out = s;
    return BM_OK;
}

void bm_server_free(bm_server *s) {
    if (!s) return;
    s->stopping = 1;
    if (s->mhd) MHD_stop_daemon(s->mhd);
    for (size_t i = 0; i < s->n_models; i++) bm_tmpl_free(s->models[i].tmpl);
    free(s->models);
    srv_store_close(s->store);
    free(s->metrics.routes);
    pthread_mutex_destroy(&s->metrics.mu);
    free(s);
}

int bm_server_port(const bm_server *s) { return s->port; }

static bm_status mkdirs(char *path, bm_err *err) {
    for (char *q = path + 1; *q; q++) {
        if (*q != '/') continue;
        *q = 0;
        int rc = mkdir(path, 0700);
        *q = '/';
        if (rc != 0 && errno != EEXIST)
            return bm_err_set(err, BM_EIO, "serve: cannot create directory for '%s': %s", path,
                              strerror(errno));
    }
    return BM_OK;
}

bm_status bm_serve_default_db(char *buf, size_t cap, bm_err *err) {
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int k;
    if (x && *x) k = snprintf(buf, cap, "%s/baimo/baimo.db", x);
    else if (home && *home) k = snprintf(buf, cap, "%s/.local/share/baimo/baimo.db", home);
    else return bm_err_set(err, BM_ENOTFOUND, "serve: neither XDG_DATA_HOME nor HOME is set; "
                           "pass --db FILE");
    if (k < 0 || (size_t)k >= cap) return bm_err_set(err, BM_ERANGE, "serve: db path too long");
    return mkdirs(buf, err);
}
