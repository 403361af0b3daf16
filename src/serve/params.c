/* Request parameters onto engine generation parameters: OpenAI fields (temperature, top_p,
 * top_k, min_p, max_tokens, n, stop, seed, penalties, logit_bias, logprobs, response_format)
 * and Ollama "options". Each field is type- and range-checked; errors name the field. */
#include "serve/serve_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_gen_free(srv_gen *g) {
    for (size_t i = 0; i < g->n_stop; i++) free(g->stop[i]);
    free(g->stop);
    free(g->bias_ids);
    free(g->bias_vals);
    free(g->schema);
    memset(g, 0, sizeof *g);
}

static void gen_init(srv_gen *g) {
    memset(g, 0, sizeof *g);
    g->gp = bm_gen_defaults();
    g->gp.top_logprobs = -1;
    g->n = 1;
    bm_rng r;
    bm_rng_seed(&r, (uint64_t)(bm_time_now() * 1e9) ^ (uint64_t)(uintptr_t)g);
    g->gp.sample.seed = bm_rng_u64(&r) >> 1;
}

/* Reads an optional number field into *out within [lo, hi]. */
static bool num(json_t *o, const char *key, const char *param, double lo, double hi,
                double *out, bool *given, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (given) *given = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v)) return srv_fail(e, 400, param, "%s must be a number", param);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return srv_fail(e, 400, param, "%s must be in [%g, %g], got %g", param, lo, hi, d);
    *out = d;
    if (given) *given = true;
    return true;
}

static bool integer(json_t *o, const char *key, const char *param, long long lo, long long hi,
                    long long *out, bool *given, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (given) *given = false;
    if (!v || json_is_null(v)) return true;
    long long x;
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
        fabs(json_real_value(v)) < 9e15)
        x = (long long)json_real_value(v);
    else if (json_is_integer(v))
        x = json_integer_value(v);
    else
        return srv_fail(e, 400, param, "%s must be an integer", param);
    if (x < lo || x > hi)
        return srv_fail(e, 400, param, "%s must be in [%lld, %lld], got %lld", param, lo, hi, x);
    *out = x;
    if (given) *given = true;
    return true;
}

static bool stops(json_t *v, const char *param, srv_gen *g, srv_error *e) {
    if (!v || json_is_null(v)) return true;
    json_t *arr = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return srv_fail(e, 400, param, "%s must be a string or an array of strings", param);
    }
    size_t n = json_array_size(arr), i;
    if (n > 16) {
        json_decref(arr);
        return srv_fail(e, 400, param, "%s has %zu strings; the limit is 16", param, n);
    }
    g->stop = calloc(n ? n : 1, sizeof *g->stop);
    json_t *s;
    bool ok = g->stop != NULL;
    json_array_foreach(arr, i, s) {
        if (!ok) break;
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > 256) {
            ok = srv_fail(e, 400, param, "%s[%zu] must be a non-empty string of at most 256 bytes",
                          param, i);
            break;
        }
        g->stop[g->n_stop++] = strdup(json_string_value(s));
    }
    json_decref(arr);
    g->gp.stop = (const char *const *)g->stop;
    g->gp.n_stop = g->n_stop;
    return ok;
}

static bool schema_of(json_t *rf, const char *param, srv_gen *g, srv_error *e) {
    if (!rf || json_is_null(rf)) return true;
    const char *ty = json_string_value(json_is_object(rf) ? json_object_get(rf, "type") : rf);
    if (!ty) return srv_fail(e, 400, param, "%s must be an object with a \"type\"", param);
    if (!strcmp(ty, "text")) return true;
    if (!strcmp(ty, "json_object") || !strcmp(ty, "json")) {
        g->gp.json_object = true;
        return true;
    }
    if (!strcmp(ty, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *sc = json_object_get(js, "schema");
        if (!json_is_object(sc))
            return srv_fail(e, 400, param, "%s.json_schema.schema must be an object", param);
        g->schema = json_dumps(sc, JSON_COMPACT);
        g->gp.json_schema = g->schema;
        return true;
    }
    return srv_fail(e, 400, param, "%s.type '%s' is not one of text, json_object, json_schema",
                    param, ty);
}

static bool bias(srv_model *m, json_t *lb, srv_gen *g, srv_error *e) {
    if (!lb || json_is_null(lb)) return true;
    if (!json_is_object(lb))
        return srv_fail(e, 400, "logit_bias", "logit_bias must be an object {token_id: bias}");
    size_t n = json_object_size(lb);
    g->bias_ids = calloc(n ? n : 1, sizeof *g->bias_ids);
    g->bias_vals = calloc(n ? n : 1, sizeof *g->bias_vals);
    if (!g->bias_ids || !g->bias_vals) return srv_fail(e, 500, NULL, "out of memory");
    int32_t nv = bm_tok_n_vocab(m->sm->tok);
    const char *k;
    json_t *v;
    json_object_foreach(lb, k, v) {
        char *end;
        long id = strtol(k, &end, 10);
        if (*k == 0 || *end || id < 0 || id >= nv)
            return srv_fail(e, 400, "logit_bias", "logit_bias key '%s' is not a token id in "
                            "[0, %d)", k, nv);
        if (!json_is_number(v) || json_number_value(v) < -100 || json_number_value(v) > 100)
            return srv_fail(e, 400, "logit_bias", "logit_bias[%s] must be a number in "
                            "[-100, 100]", k);
        g->bias_ids[g->gp.n_bias] = (int32_t)id;
        g->bias_vals[g->gp.n_bias++] = (float)json_number_value(v);
    }
    g->gp.bias_ids = g->bias_ids;
    g->gp.bias_vals = g->bias_vals;
    return true;
}

bool srv_gen_openai(srv_model *m, json_t *b, srv_gen *g, srv_error *e) {
    gen_init(g);
    bm_sample_params *sp = &g->gp.sample;
    double d;
    long long x;
    bool given;
    if (!num(b, "temperature", "temperature", 0, 2, &d, &given, e)) return false;
    if (given) sp->temperature = (float)d;
    if (!num(b, "top_p", "top_p", 0, 1, &d, &given, e)) return false;
    if (given) sp->top_p = (float)d;
    if (!num(b, "min_p", "min_p", 0, 1, &d, &given, e)) return false;
    if (given) sp->min_p = (float)d;
    if (!integer(b, "top_k", "top_k", 0, 1 << 20, &x, &given, e)) return false;
    if (given) sp->top_k = (int32_t)x;
    if (!num(b, "presence_penalty", "presence_penalty", -2, 2, &d, &given, e)) return false;
    if (given) g->gp.presence_penalty = (float)d;
    if (!num(b, "frequency_penalty", "frequency_penalty", -2, 2, &d, &given, e)) return false;
    if (given) g->gp.frequency_penalty = (float)d;
    const char *rp = json_object_get(b, "repetition_penalty") ? "repetition_penalty"
                                                                : "repeat_penalty";
    if (!num(b, rp, rp, 0.01, 10, &d, &given, e)) return false;
    if (given) {
        g->gp.repeat_penalty = (float)d;
        if (g->gp.repeat_last_n == 0) g->gp.repeat_last_n = 64;
    }
    const char *mt = json_object_get(b, "max_completion_tokens") ? "max_completion_tokens"
                                                                   : "max_tokens";
    if (!integer(b, mt, mt, 0, INT32_MAX, &x, &given, e)) return false;
    if (given) g->gp.max_tokens = (int32_t)x;
    if (!integer(b, "n", "n", 1, 16, &x, &given, e)) return false;
    if (given) g->n = (int)x;
    if (!integer(b, "seed", "seed", INT64_MIN, INT64_MAX, &x, &given, e)) return false;
    if (given) {
        sp->seed = (uint64_t)x;
        g->seed_given = true;
    }
    if (!stops(json_object_get(b, "stop"), "stop", g, e)) return false;
    if (!bias(m, json_object_get(b, "logit_bias"), g, e)) return false;
    json_t *lp = json_object_get(b, "logprobs");
    if (lp && !json_is_null(lp)) {
        if (json_is_boolean(lp)) {
            g->logprobs = json_is_true(lp);
        } else if (json_is_integer(lp) && json_integer_value(lp) >= 0 &&
                   json_integer_value(lp) <= 20) { /* /v1/completions: logprobs = N */
            g->logprobs = true;
            g->gp.top_logprobs = (int32_t)json_integer_value(lp);
        } else {
            return srv_fail(e, 400, "logprobs", "logprobs must be a boolean (chat) or an "
                            "integer in [0, 20] (completions)");
        }
        if (g->logprobs && g->gp.top_logprobs < 0) g->gp.top_logprobs = 0;
    }
    if (!integer(b, "top_logprobs", "top_logprobs", 0, 20, &x, &given, e)) return false;
    if (given) {
        if (!g->logprobs)
            return srv_fail(e, 400, "top_logprobs", "top_logprobs needs logprobs: true");
        g->gp.top_logprobs = (int32_t)x;
    }
    json_t *st = json_object_get(b, "stream");
    if (st && !json_is_null(st) && !json_is_boolean(st))
        return srv_fail(e, 400, "stream", "stream must be a boolean");
    g->stream = json_is_true(st);
    json_t *so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return srv_fail(e, 400, "stream_options", "stream_options must be an object");
        g->include_usage = json_is_true(json_object_get(so, "include_usage"));
    }
    if (!schema_of(json_object_get(b, "response_format"), "response_format", g, e)) return false;
    bm_err err = {0};
    if (bm_sample_params_check(sp, &err)) return srv_fail_status(e, &err, NULL);
    return true;
}

bool srv_gen_ollama(srv_model *m, json_t *b, srv_gen *g, srv_error *e) {
    gen_init(g);
    bm_sample_params *sp = &g->gp.sample;
    json_t *o = json_object_get(b, "options");
    if (o && !json_is_null(o) && !json_is_object(o))
        return srv_fail(e, 400, "options", "options must be an object");
    if (!o) o = json_object();
    else json_incref(o);
    double d;
    long long x;
    bool given, ok = false;
    do {
        if (!num(o, "temperature", "options.temperature", 0, 100, &d, &given, e)) break;
        if (given) sp->temperature = (float)d;
        if (!num(o, "top_p", "options.top_p", 0, 1, &d, &given, e)) break;
        if (given) sp->top_p = (float)d;
        if (!num(o, "min_p", "options.min_p", 0, 1, &d, &given, e)) break;
        if (given) sp->min_p = (float)d;
        if (!integer(o, "top_k", "options.top_k", 0, 1 << 20, &x, &given, e)) break;
        if (given) sp->top_k = (int32_t)x;
        if (!num(o, "repeat_penalty", "options.repeat_penalty", 0.01, 10, &d, &given, e)) break;
        if (given) g->gp.repeat_penalty = (float)d;
        if (!integer(o, "repeat_last_n", "options.repeat_last_n", -1, 1 << 20, &x, &given, e))
            break;
        if (given) g->gp.repeat_last_n = (int32_t)x;
        else if (g->gp.repeat_penalty != 1) g->gp.repeat_last_n = 64;
        if (!num(o, "presence_penalty", "options.presence_penalty", -2, 2, &d, &given, e)) break;
        if (given) g->gp.presence_penalty = (float)d;
        if (!num(o, "frequency_penalty", "options.frequency_penalty", -2, 2, &d, &given, e))
            break;
        if (given) g->gp.frequency_penalty = (float)d;
        if (!integer(o, "num_predict", "options.num_predict", -2, INT32_MAX, &x, &given, e))
            break;
        if (given) g->gp.max_tokens = x < 0 ? -1 : (int32_t)x;
        if (!integer(o, "seed", "options.seed", INT64_MIN, INT64_MAX, &x, &given, e)) break;
        if (given) sp->seed = (uint64_t)x, g->seed_given = true;
        if (!integer(o, "num_ctx", "options.num_ctx", 1, 1 << 24, &x, &given, e)) break;
        if (!stops(json_object_get(o, "stop"), "options.stop", g, e)) break;
        ok = true;
    } while (0);
    json_decref(o);
    if (!ok) return false;
    json_t *st = json_object_get(b, "stream");
    if (st && !json_is_null(st) && !json_is_boolean(st))
        return srv_fail(e, 400, "stream", "stream must be a boolean");
    g->stream = !st || json_is_null(st) || json_is_true(st);
    json_t *fmt = json_object_get(b, "format");
    if (json_is_string(fmt) && !strcmp(json_string_value(fmt), "json")) {
        g->gp.json_object = true;
    } else if (json_is_object(fmt)) {
        g->schema = json_dumps(fmt, JSON_COMPACT);
        g->gp.json_schema = g->schema;
    } else if (fmt && !json_is_null(fmt) && !(json_is_string(fmt) && !json_string_length(fmt))) {
        return srv_fail(e, 400, "format", "format must be \"json\" or a JSON schema object");
    }
    bm_err err = {0};
    if (bm_sample_params_check(sp, &err)) return srv_fail_status(e, &err, NULL);
    return true;
}
