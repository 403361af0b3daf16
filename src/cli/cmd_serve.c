/* baimo serve: load one or more models, start an engine for each and serve the OpenAI- and
 * Ollama-compatible API, the web chat page and /metrics over HTTP until SIGINT/SIGTERM.
 * Prints "baimo serve: listening on http://HOST:PORT" on stderr once ready. */
#include "cli.h"
#include "cli_model.h"

#include "baimo/serve.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MODELS 8
#define MAX_KEYS 32

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

static void usage(void) {
    fprintf(stderr,
            "usage: baimo serve -m MODEL [-m MODEL2 ...] [--alias NAME ...] [--parallel N]\n"
            "                   [--ctx N] [--kv-mem SIZE] [--host 127.0.0.1] [--port P]\n"
            "                   [--db FILE | --no-db] [--api-key KEY ...] [--timeout SECONDS]\n"
            "                   [-t THREADS]\n"
            "  --alias names the models in order (default: the file name without .gguf)\n"
            "  --port 0 picks a free port; --kv-mem takes 512M, 2G, ... per model\n");
}

/* "512M" / "2G" / "1048576" -> bytes; false on a bad value. */
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return false;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    default: return false;
    }
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return false;
    *out = (uint64_t)(v * mul);
    return true;
}

static char *default_name(const char *path) {
    const char *b = strrchr(path, '/');
    b = b && b[1] ? b + 1 : path;
    char *n = strdup(b);
    size_t k = strlen(n);
    if (k > 5 && !strcmp(n + k - 5, ".gguf")) n[k - 5] = 0;
    return n;
}

int cmd_serve(int argc, char **argv) {
    const char *paths[MAX_MODELS], *aliases[MAX_MODELS], *keys[MAX_KEYS];
    size_t n_paths = 0, n_alias = 0, n_keys = 0;
    const char *host = "127.0.0.1", *db = NULL, *kv_s = NULL, *s = NULL;
    int64_t port = 8080, parallel = 4, ctx = 0, threads = 0, timeout = 600;
    bool bad = false, no_db = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "-m", "--model", &s, &bad)) {
            if (n_paths == MAX_MODELS) return cli_failf("serve", "at most %d models", MAX_MODELS);
            paths[n_paths++] = s;
            continue;
        }
        if (cli_opt_str(argc, argv, &i, "--alias", "-a", &s, &bad)) {
            if (n_alias == MAX_MODELS) return cli_failf("serve", "at most %d aliases", MAX_MODELS);
            aliases[n_alias++] = s;
            continue;
        }
        if (cli_opt_str(argc, argv, &i, "--api-key", NULL, &s, &bad)) {
            if (n_keys == MAX_KEYS) return cli_failf("serve", "at most %d API keys", MAX_KEYS);
            if (!*s) return cli_failf("serve", "--api-key must not be empty");
            keys[n_keys++] = s;
            continue;
        }
        if (cli_opt_str(argc, argv, &i, "--host", NULL, &host, &bad) ||
            cli_opt_str(argc, argv, &i, "--db", NULL, &db, &bad) ||
            cli_opt_str(argc, argv, &i, "--kv-mem", NULL, &kv_s, &bad) ||
            cli_opt_int(argc, argv, &i, "--port", "-p", 0, 65535, &port, &bad) ||
            cli_opt_int(argc, argv, &i, "--parallel", "-np", 1, 256, &parallel, &bad) ||
            cli_opt_int(argc, argv, &i, "--ctx", "-c", 16, 1 << 22, &ctx, &bad) ||
            cli_opt_int(argc, argv, &i, "--timeout", NULL, 1, 86400, &timeout, &bad) ||
            cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad))
            continue;
        if (cli_opt_flag(argv, i, "--no-db", NULL)) {
            no_db = true;
            continue;
        }
        usage();
        return cli_opt_flag(argv, i, "-h", "--help") ? 0 : 2;
    }
    if (bad) return 2;
    if (!n_paths) {
        usage();
        return 2;
    }
    if (n_alias > n_paths)
        return cli_failf("serve", "%zu --alias given for %zu models", n_alias, n_paths);
    uint64_t kv_bytes = 0;
    if (kv_s && !parse_size(kv_s, &kv_bytes))
        return cli_failf("serve", "--kv-mem '%s' is not a size like 512M or 2G", kv_s);

    bm_err err = {0};
    char db_buf[4096];
    if (!no_db && !db) {
        if (bm_serve_default_db(db_buf, sizeof db_buf, &err)) return cli_fail("serve", &err);
        db = db_buf;
    }
    bm_model *models[MAX_MODELS] = {0};
    bm_tok *toks[MAX_MODELS] = {0};
    bm_engine *engines[MAX_MODELS] = {0};
    char *names[MAX_MODELS] = {0};
    bm_serve_model sm[MAX_MODELS];
    bm_server *srv = NULL;
    int rc = 0;
    for (size_t i = 0; i < n_paths && !rc; i++) {
        names[i] = i < n_alias ? strdup(aliases[i]) : default_name(paths[i]);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(names[k], names[i])) {
                rc = cli_failf("serve", "two models are named '%s'; use --alias", names[i]);
                break;
            }
        if (rc) break;
        if (bm_model_load(paths[i], &models[i], &err) ||
            cli_model_tokenizer(models[i], &toks[i], &err)) {
            rc = cli_fail("serve", &err);
            break;
        }
        bm_engine_params ep = {.n_ctx = (int32_t)ctx, .n_parallel = (int32_t)parallel,
                               .kv_bytes = kv_bytes, .n_threads = (int)threads};
        if (bm_engine_new(models[i], toks[i], &ep, &engines[i], &err)) {
            rc = cli_fail("serve", &err);
            break;
        }
        sm[i] = (bm_serve_model){.name = names[i], .model = models[i], .tok = toks[i],
                                 .engine = engines[i]};
        fprintf(stderr, "baimo serve: model '%s' from %s (context %d)\n", names[i], paths[i],
                bm_engine_n_ctx(engines[i]));
        if (models[i]->n_packs)
            fprintf(stderr, "baimo serve: repacked %d weight matrices (%.1f MiB) for the %s "
                            "kernels in %.0f ms\n",
                    models[i]->n_packs, (double)models[i]->pack_bytes / 1048576.0,
                    bm_kernels_name(), models[i]->pack_secs * 1e3);
    }
    if (!rc) {
        bm_serve_params sp = {.host = host, .port = (int)port, .models = sm,
                              .n_models = n_paths, .db_path = db, .api_keys = keys,
                              .n_api_keys = n_keys, .request_timeout_s = (double)timeout};
        if (bm_server_new(&sp, &srv, &err)) rc = cli_fail("serve", &err);
    }
    if (!rc) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        if (db) fprintf(stderr, "baimo serve: conversations in %s\n", db);
        fprintf(stderr, "baimo serve: listening on http://%s:%d\n", host, bm_server_port(srv));
        fflush(stderr);
        while (!g_stop) pause();
        fprintf(stderr, "baimo serve: stopping\n");
    }
    bm_server_free(srv);
    for (size_t i = 0; i < n_paths; i++) {
        bm_engine_free(engines[i]);
        bm_tok_free(toks[i]);
        bm_model_free(models[i]);
        free(names[i]);
    }
    return rc;
}
