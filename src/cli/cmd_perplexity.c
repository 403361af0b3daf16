/* baimo perplexity: perplexity of a model over a text file, and KL divergence / top-1
 * agreement against a saved base model. The last line is "perplexity: X". */
#include "cli.h"
#include "cli_model.h"

#include "baimo/eval.h"

#include <stdlib.h>

static void progress(void *user, const char *what, uint64_t done, uint64_t total) {
    bm_progress *p = user;
    p->total = total;
    bm_progress_update(p, done);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *save = NULL, *kl = NULL;
    int64_t ctx = 512, threads = 0, chunks = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "-m", "--model", &model, &bad) ||
            cli_opt_str(argc, argv, &i, "-f", "--file", &file, &bad) ||
            cli_opt_str(argc, argv, &i, "--save-logits", NULL, &save, &bad) ||
            cli_opt_str(argc, argv, &i, "--kl-base", NULL, &kl, &bad) ||
            cli_opt_int(argc, argv, &i, "--ctx", "-c", 4, 1 << 20, &ctx, &bad) ||
            cli_opt_int(argc, argv, &i, "--chunks", NULL, 0, 1 << 30, &chunks, &bad) ||
            cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad))
            continue;
        fprintf(stderr, "usage: baimo perplexity -m MODEL -f TEXT [--ctx N] [--chunks N] "
                        "[--save-logits F | --kl-base F] [-t THREADS]\n");
        return cli_opt_flag(argv, i, "-h", "--help") ? 0 : 2;
    }
    if (bad) return 2;
    if (!model || !file) return cli_failf("perplexity", "-m and -f are required");
    bm_err err = {0};
    bm_model *m = NULL;
    bm_tok *tok = NULL;
    bm_ctx *c = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len, n = 0;
    int rc = 1;
    if (bm_model_load(model, &m, &err) || cli_model_tokenizer(m, &tok, &err) ||
        bm_file_read(file, &text, &len, (size_t)1 << 30, &err) ||
        cli_tokenize(tok, text, len, BM_TOK_ADD_SPECIAL, &ids, &n, &err))
        goto fail;
    bm_ctx_params cp = {.n_ctx = (int32_t)ctx, .max_batch = (int32_t)ctx,
                        .n_threads = (int)threads};
    if (bm_ctx_new(m, &cp, &c, &err)) goto fail;
    bm_progress pr;
    bm_progress_init(&pr, stderr, "perplexity", 1);
    bm_ppl_params pp = {(int32_t)ctx, (int32_t)chunks, save, kl, progress, &pr};
    bm_ppl_result r;
    double t0 = bm_time_now();
    if (bm_perplexity(c, m, ids, n, &pp, &r, &err)) goto fail;
    bm_progress_done(&pr);
    fprintf(stderr, "perplexity: %zu tokens, %d chunks of %lld, %lld scored, %.1f s\n", n,
            r.n_chunks, (long long)ctx, (long long)r.n_scored, bm_time_now() - t0);
    if (r.has_kl) {
        printf("base perplexity: %.6f\n", r.base_ppl);
        printf("kl divergence: %.8g (mean, nats per token; max %.8g)\n", r.kl_mean, r.kl_max);
        printf("top-1 agreement: %.6f\n", r.top1_agree);
    }
    printf("nll: %.6f +/- %.6f\n", r.nll, r.nll_stderr);
    printf("perplexity: %.6f\n", r.ppl);
    rc = 0;
fail:
    if (rc) cli_fail("perplexity", &err);
    free(ids);
    free(text);
    bm_ctx_free(c);
    bm_tok_free(tok);
    bm_model_free(m);
    return rc;
}
