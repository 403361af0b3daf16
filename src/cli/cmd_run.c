/* baimo run: generate from a prompt and stream the text (or the ids, for a model without a
 * tokenizer) to stdout; prompt and generation speed to stderr. --chat renders the prompt as a
 * user message with the model's own chat template. */
#include "cli.h"
#include "cli_model.h"

#include "baimo/sample.h"
#include "baimo/template.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr,
            "usage: baimo run -m MODEL (-p PROMPT | -f FILE | --ids 1,2,3) [-n N] [--chat] "
            "[--system TEXT]\n"
            "                 [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] "
            "[--ctx N] [-t THREADS]\n");
}

/* Renders one user turn (and an optional system turn) with the model's chat template. */
static bm_status render_chat(const bm_tok *tok, const char *system, const char *prompt,
                             char **out, bm_err *err) {
    const char *src = bm_tok_chat_template(tok);
    if (!src) return bm_err_set(err, BM_ENOTFOUND, "the model has no chat template");
    json_t *ctx = json_object(), *msgs = json_array();
    if (system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
    json_object_set_new(ctx, "messages", msgs);
    json_object_set_new(ctx, "add_generation_prompt", json_true());
    size_t n;
    int32_t id;
    const char *t;
    if ((id = bm_tok_bos(tok)) >= 0 && (t = bm_tok_token_text(tok, id, &n)))
        json_object_set_new(ctx, "bos_token", json_stringn(t, n));
    if ((id = bm_tok_eos(tok)) >= 0 && (t = bm_tok_token_text(tok, id, &n)))
        json_object_set_new(ctx, "eos_token", json_stringn(t, n));
    char *js = json_dumps(ctx, JSON_COMPACT);
    json_decref(ctx);
    bm_tmpl *tm = NULL;
    bm_status st = bm_tmpl_parse(src, strlen(src), &tm, err);
    if (!st) st = bm_tmpl_render_json(tm, js, out, &n, err);
    bm_tmpl_free(tm);
    free(js);
    return st;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *ids_s = NULL, *system = NULL;
    int64_t n_gen = 128, threads = 0, ctx = 0, top_k = 40, seed = -1;
    double temp = 0.8, top_p = 0.95, min_p = 0.05;
    bool bad = false, chat = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "-m", "--model", &model, &bad) ||
            cli_opt_str(argc, argv, &i, "-p", "--prompt", &prompt, &bad) ||
            cli_opt_str(argc, argv, &i, "-f", "--file", &file, &bad) ||
            cli_opt_str(argc, argv, &i, "--ids", NULL, &ids_s, &bad) ||
            cli_opt_str(argc, argv, &i, "--system", NULL, &system, &bad) ||
            cli_opt_int(argc, argv, &i, "-n", "--n-predict", INT32_MIN, INT32_MAX, &n_gen, &bad) ||
            cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad) ||
            cli_opt_int(argc, argv, &i, "--ctx", "-c", 1, 1 << 22, &ctx, &bad) ||
            cli_opt_int(argc, argv, &i, "--top-k", NULL, 0, 1 << 24, &top_k, &bad) ||
            cli_opt_int(argc, argv, &i, "--seed", "-s", -1, INT64_MAX, &seed, &bad) ||
            cli_opt_float(argc, argv, &i, "--temp", NULL, 0, 100, &temp, &bad) ||
            cli_opt_float(argc, argv, &i, "--top-p", NULL, 0, 1, &top_p, &bad) ||
            cli_opt_float(argc, argv, &i, "--min-p", NULL, 0, 1, &min_p, &bad))
            continue;
        if (cli_opt_flag(argv, i, "--chat", NULL)) {
            chat = true;
            continue;
        }
        usage();
        return cli_opt_flag(argv, i, "-h", "--help") ? 0 : 2;
    }
    if (bad) return 2;
    if (n_gen < 0) return cli_failf("run", "-n must be >= 0, got %lld", (long long)n_gen);
    if (!model || (!prompt && !file && !ids_s)) {
        usage();
        return cli_failf("run", "-m and one of -p, -f, --ids are required");
    }
    if (top_p <= 0) return cli_failf("run", "--top-p must be in (0, 1], got %g", top_p);

    bm_err err = {0};
    bm_model *m = NULL;
    bm_tok *tok = NULL;
    bm_ctx *c = NULL;
    bm_sampler *smp = NULL;
    int32_t *ids = NULL;
    char *text = NULL, *rendered = NULL;
    float *lg = NULL;
    size_t n_ids = 0;
    bm_seq s = {0};
    int rc = 1;
    if (bm_model_load(model, &m, &err)) goto fail;
    if (ids_s) {
        char msg[128];
        if (!cli_parse_ids(ids_s, &ids, &n_ids, msg, sizeof msg)) {
            bm_err_set(&err, BM_EINVAL, "%s", msg);
            goto fail;
        }
        bm_err terr;
        if (cli_model_tokenizer(m, &tok, &terr)) tok = NULL; /* ids in, ids out */
    } else {
        if (cli_model_tokenizer(m, &tok, &err)) goto fail;
        size_t len;
        if (file) {
            if (bm_file_read(file, &text, &len, (size_t)1 << 30, &err)) goto fail;
        } else {
            text = strdup(prompt);
            len = strlen(text);
        }
        int flags = BM_TOK_ADD_SPECIAL | BM_TOK_PARSE_SPECIAL;
        if (chat) {
            if (render_chat(tok, system, text, &rendered, &err)) goto fail;
            free(text);
            text = rendered;
            rendered = NULL;
            len = strlen(text);
            flags = BM_TOK_PARSE_SPECIAL; /* the template writes BOS itself */
        }
        if (cli_tokenize(tok, text, len, flags, &ids, &n_ids, &err)) goto fail;
    }
    if (n_ids == 0) {
        bm_err_set(&err, BM_EINVAL, "the prompt is empty (0 tokens)");
        goto fail;
    }
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] >= m->hp.n_vocab) {
            bm_err_set(&err, BM_EINVAL, "token id %d is outside the vocabulary [0, %d)", ids[i],
                       m->hp.n_vocab);
            goto fail;
        }
    bm_ctx_params cp = {.n_ctx = (int32_t)ctx, .n_threads = (int)threads};
    if (bm_ctx_new(m, &cp, &c, &err)) goto fail;
    int32_t n_ctx = bm_ctx_n_ctx(c);
    if ((int64_t)n_ids >= n_ctx) {
        bm_err_set(&err, BM_ERANGE, "the prompt has %zu tokens, the context holds %d (use --ctx)",
                   n_ids, n_ctx);
        goto fail;
    }
    if ((int64_t)n_ids + n_gen > n_ctx) {
        fprintf(stderr, "run: generation limited to %lld tokens by the context of %d\n",
                (long long)(n_ctx - (int64_t)n_ids), n_ctx);
        n_gen = n_ctx - (int64_t)n_ids;
    }
    bm_sample_params sp = {(float)temp, (int32_t)top_k, (float)top_p, (float)min_p,
                           seed < 0 ? (uint64_t)(bm_time_now() * 1e6) : (uint64_t)seed};
    if (bm_sampler_new(m->hp.n_vocab, &sp, &smp, &err)) goto fail;
    lg = bm_calloc((size_t)m->hp.n_vocab, sizeof(float), &err);
    if (!lg || bm_seq_init(&s, n_ctx, &err)) goto fail;

    double t0 = bm_time_now();
    if (bm_model_eval(c, &s, ids, (int32_t)n_ids, false, lg, &err)) goto fail;
    double t1 = bm_time_now();
    bm_detok dt;
    if (tok) bm_detok_init(&dt, tok, true);
    char buf[256];
    int64_t n_done = 0;
    for (; n_done < n_gen; n_done++) {
        int32_t id = bm_sampler_sample(smp, lg);
        if (tok && bm_tok_is_eog(tok, id)) break;
        if (tok) {
            size_t k = bm_detok_push(&dt, id, buf, sizeof buf);
            fwrite(buf, 1, k < sizeof buf ? k : sizeof buf, stdout);
        } else {
            printf("%s%d", n_done ? " " : "", id);
        }
        fflush(stdout);
        if (n_done + 1 < n_gen && bm_model_eval(c, &s, &id, 1, false, lg, &err)) goto fail;
    }
    if (tok) {
        size_t k = bm_detok_flush(&dt, buf, sizeof buf);
        fwrite(buf, 1, k < sizeof buf ? k : sizeof buf, stdout);
    }
    printf("\n");
    double t2 = bm_time_now();
    fprintf(stderr, "prompt: %zu tokens, %.2f tok/s; generation: %lld tokens, %.2f tok/s\n",
            n_ids, (double)n_ids / (t1 - t0), (long long)n_done,
            n_done ? (double)n_done / (t2 - t1) : 0.0);
    rc = 0;
fail:
    if (rc) cli_fail("run", &err);
    if (c) bm_seq_fini(&s, bm_ctx_kv(c));
    free(lg);
    free(ids);
    free(text);
    free(rendered);
    bm_sampler_free(smp);
    bm_ctx_free(c);
    bm_tok_free(tok);
    bm_model_free(m);
    return rc;
}
