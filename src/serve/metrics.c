/* Prometheus text metrics: requests by route and status, prompt and generated tokens, per-model
 * queue depth, running sequences and KV-cache use from the engine, and histograms of time to
 * first token and inter-token latency (exposition format 0.0.4). */
#include "serve/serve_int.h"

#include <stdlib.h>
#include <string.h>

static const double BUCKETS[SRV_N_BUCKETS - 1] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10};

void srv_metrics_request(srv_metrics *m, const char *route, int status) {
    pthread_mutex_lock(&m->mu);
    size_t i;
    for (i = 0; i < m->n_routes; i++)
        if (m->routes[i].status == status && !strcmp(m->routes[i].route, route)) break;
    if (i == m->n_routes) {
        if (m->n_routes == m->cap_routes) {
            size_t c = m->cap_routes ? m->cap_routes * 2 : 16;
            srv_route_count *q = realloc(m->routes, c * sizeof *q);
            if (!q) {
                pthread_mutex_unlock(&m->mu);
                return;
            }
            m->routes = q;
            m->cap_routes = c;
        }
        memset(&m->routes[i], 0, sizeof m->routes[i]);
        snprintf(m->routes[i].route, sizeof m->routes[i].route, "%s", route);
        m->routes[i].status = status;
        m->n_routes++;
    }
    m->routes[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe(srv_metrics *m, srv_hist *h, double v) {
    pthread_mutex_lock(&m->mu);
    int b = 0;
    while (b < SRV_N_BUCKETS - 1 && v > BUCKETS[b]) b++;
    h->counts[b]++;
    h->sum += v;
    h->n++;
    pthread_mutex_unlock(&m->mu);
}

static void hist(srv_buf *o, const char *name, const char *help, const srv_hist *h) {
    srv_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int b = 0; b < SRV_N_BUCKETS; b++) {
        cum += h->counts[b];
        if (b < SRV_N_BUCKETS - 1)
            srv_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, BUCKETS[b],
                           (unsigned long long)cum);
        else
            srv_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    srv_buf_printf(o, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                   (unsigned long long)h->n);
}

enum MHD_Result srv_metrics_route(srv_req *r) {
    bm_server *s = r->srv;
    srv_metrics *m = &s->metrics;
    srv_buf o = {0};
    pthread_mutex_lock(&m->mu);
    srv_buf_printf(&o, "# HELP baimo_requests_total HTTP requests by route and status.\n"
                       "# TYPE baimo_requests_total counter\n");
    for (size_t i = 0; i < m->n_routes; i++)
        srv_buf_printf(&o, "baimo_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                       m->routes[i].route, m->routes[i].status,
                       (unsigned long long)m->routes[i].n);
    srv_buf_printf(&o, "# HELP baimo_prompt_tokens_total Prompt tokens processed.\n"
                       "# TYPE baimo_prompt_tokens_total counter\nbaimo_prompt_tokens_total %llu\n"
                       "# HELP baimo_generated_tokens_total Tokens generated.\n"
                       "# TYPE baimo_generated_tokens_total counter\n"
                       "baimo_generated_tokens_total %llu\n",
                   (unsigned long long)m->prompt_tokens, (unsigned long long)m->gen_tokens);
    hist(&o, "baimo_time_to_first_token_seconds", "Time from request to first token.", &m->ttft);
    hist(&o, "baimo_inter_token_latency_seconds", "Time between generated tokens.", &m->itl);
    pthread_mutex_unlock(&m->mu);
    const char *names[] = {"baimo_queue_depth", "baimo_running_sequences",
                           "baimo_kv_blocks_used", "baimo_kv_blocks_total",
                           "baimo_kv_usage_ratio"};
    const char *helps[] = {"Requests waiting for admission.", "Sequences decoding now.",
                           "KV cache blocks in use.", "KV cache blocks in all.",
                           "Fraction of the KV cache in use."};
    bm_engine_stats st[16];
    size_t nm = s->n_models < 16 ? s->n_models : 16;
    for (size_t i = 0; i < nm; i++) bm_engine_get_stats(s->models[i].sm->engine, &st[i]);
    for (int k = 0; k < 5; k++) {
        srv_buf_printf(&o, "# HELP %s %s\n# TYPE %s gauge\n", names[k], helps[k], names[k]);
        for (size_t i = 0; i < nm; i++) {
            double v = k == 0   ? st[i].n_queued
                       : k == 1 ? st[i].n_running
                       : k == 2 ? st[i].kv_blocks_used
                       : k == 3 ? st[i].kv_blocks_total
                                : (st[i].kv_blocks_total
                                       ? (double)st[i].kv_blocks_used / st[i].kv_blocks_total
                                       : 0);
            srv_buf_printf(&o, "%s{model=\"%s\"} %g\n", names[k], s->models[i].sm->name, v);
        }
    }
    srv_buf_printf(&o, "# HELP baimo_preemptions_total Sequences sent back to the queue because "
                       "the KV cache was full.\n# TYPE baimo_preemptions_total counter\n");
    for (size_t i = 0; i < nm; i++)
        srv_buf_printf(&o, "baimo_preemptions_total{model=\"%s\"} %llu\n",
                       s->models[i].sm->name, (unsigned long long)st[i].n_preemptions);
    enum MHD_Result res = srv_send_bytes(r, 200, "text/plain; version=0.0.4", o.p ? o.p : "",
                                         o.n, true);
    srv_buf_free(&o);
    return res;
}
