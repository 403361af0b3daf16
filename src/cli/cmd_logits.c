/* baimo logits: float32 logits [n_ids, n_vocab] of every position, written as .npy. */
#include "cli.h"

#include "baimo/model.h"
#include "baimo/safetensors.h"

#include <stdlib.h>

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL;
    int64_t threads = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "-m", "--model", &model, &bad) ||
            cli_opt_str(argc, argv, &i, "--ids", NULL, &ids_s, &bad) ||
            cli_opt_str(argc, argv, &i, "-o", "--output", &out, &bad) ||
            cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad))
            continue;
        fprintf(stderr, "usage: baimo logits -m MODEL --ids 1,2,3 -o OUT.npy [-t THREADS]\n");
        return cli_opt_flag(argv, i, "-h", "--help") ? 0 : 2;
    }
    if (bad) return 2;
    if (!model || !ids_s || !out) return cli_failf("logits", "-m, --ids and -o are required");
    int32_t *ids;
    size_t n;
    char msg[128];
    if (!cli_parse_ids(ids_s, &ids, &n, msg, sizeof msg)) return cli_failf("logits", "%s", msg);
    if (n == 0) {
        free(ids);
        return cli_failf("logits", "--ids is empty");
    }
    bm_err err = {0};
    bm_model *m = NULL;
    bm_ctx *c = NULL;
    float *lg = NULL;
    int rc = 1;
    if (bm_model_load(model, &m, &err)) goto fail;
    bm_ctx_params cp = {.n_ctx = (int32_t)n, .n_threads = (int)threads};
    if (n > (size_t)m->hp.n_ctx_train) {
        bm_err_set(&err, BM_ERANGE, "%zu ids exceed the model's context of %d", n,
                   m->hp.n_ctx_train);
        goto fail;
    }
    if (bm_ctx_new(m, &cp, &c, &err)) goto fail;
    lg = bm_calloc(n * (size_t)m->hp.n_vocab, sizeof(float), &err);
    if (!lg) goto fail;
    bm_seq s;
    if (bm_seq_init(&s, (int32_t)n, &err)) goto fail;
    bm_status st = bm_model_eval(c, &s, ids, (int32_t)n, true, lg, &err);
    bm_seq_fini(&s, bm_ctx_kv(c));
    if (st) goto fail;
    int64_t shape[2] = {(int64_t)n, m->hp.n_vocab};
    if (bm_npy_write_f32(out, lg, 2, shape, &err)) goto fail;
    rc = 0;
fail:
    if (rc) cli_fail("logits", &err);
    free(lg);
    free(ids);
    bm_ctx_free(c);
    bm_model_free(m);
    return rc;
}
