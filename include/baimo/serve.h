/* The HTTP server: OpenAI-compatible (/v1/chat/completions, /v1/completions, /v1/embeddings,
 * /v1/models) and Ollama-compatible (/api/chat, /api/generate, /api/tags, /api/show,
 * /api/version) routes over libmicrohttpd, SSE/NDJSON streaming, API keys, Prometheus
 * /metrics, a SQLite conversation store for the web page and the embedded web page itself.
 * Models, tokenizers and engines are loaded by the caller and borrowed by the server. */
#ifndef BAIMO_SERVE_H
#define BAIMO_SERVE_H

#include "baimo/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_serve_model {
    const char *name;        /* name clients use in "model" (borrowed) */
    const bm_model *model;   /* borrowed */
    const bm_tok *tok;       /* borrowed */
    bm_engine *engine;       /* borrowed */
} bm_serve_model;

typedef struct bm_serve_params {
    const char *host;              /* NULL: 127.0.0.1 */
    int port;                      /* 0: any free port (see bm_server_port) */
    const bm_serve_model *models;  /* [n_models], the first is the default */
    size_t n_models;
    const char *db_path;           /* conversation store (SQLite file); NULL: no store */
    const char *const *api_keys;   /* [n_api_keys]; none: no authentication */
    size_t n_api_keys;
    size_t max_body_bytes;         /* 0: 8 MiB */
    double request_timeout_s;      /* <= 0: 600 */
    int max_connections;           /* <= 0: 256 */
} bm_serve_params;

typedef struct bm_server bm_server;

/* Binds, opens the store and starts serving on internal threads. Returns owned; free with
 * bm_server_free() (stops serving, cancels running requests). Params and everything they
 * point to must outlive the server. */
bm_status bm_server_new(const bm_serve_params *p, bm_server **out, bm_err *err);
void bm_server_free(bm_server *s);
/* The port actually bound. */
int bm_server_port(const bm_server *s);

/* Default conversation store path: $XDG_DATA_HOME/baimo/baimo.db or
 * ~/.local/share/baimo/baimo.db (directories created). Writes into buf. */
bm_status bm_serve_default_db(char *buf, size_t cap, bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
