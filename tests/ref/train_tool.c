/* Harness that exposes the training model to tests/ref/test_train_grad.py:
 *   train_tool init ARCH V E L H K F CTX TIED SEED OUT.gguf   initial weights as GGUF
 *   train_tool grads MODEL.gguf TOKENS.i32 NSEQ T OUT.gguf [MASK.u8]
 *       prints the mean loss; writes d(mean loss)/d(params) as a GGUF with the weight names
 *   train_tool adam MODEL.gguf TOKENS.i32 NSEQ T STEPS LR WD CLIP
 *       prints the loss before each of STEPS AdamW steps (beta 0.9/0.95, eps 1e-8) on the batch
 * TOKENS: raw little-endian int32 [NSEQ, T+1]; MASK: raw uint8 [NSEQ, T+1]. */
#include "baimo/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what, const bm_err *e) {
    fprintf(stderr, "train_tool: %s: %s\n", what, e ? e->msg : "");
    return 1;
}

static void *slurp(const char *path, size_t want) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *b = malloc(want ? want : 1);
    size_t got = fread(b, 1, want, f);
    fclose(f);
    if (got != want) {
        free(b);
        return NULL;
    }
    return b;
}

int main(int argc, char **argv) {
    bm_err err = {0};
    bm_pool *pool = bm_pool_new(2, &err);
    if (argc == 13 && !strcmp(argv[1], "init")) {
        bm_train_hparams hp = {0};
        snprintf(hp.arch, sizeof hp.arch, "%s", argv[2]);
        hp.n_vocab = atoi(argv[3]);
        hp.n_embd = atoi(argv[4]);
        hp.n_layer = atoi(argv[5]);
        hp.n_head = atoi(argv[6]);
        hp.n_head_kv = atoi(argv[7]);
        hp.n_ff = atoi(argv[8]);
        hp.n_ctx = atoi(argv[9]);
        hp.tied = atoi(argv[10]) != 0;
        bm_tmodel *m;
        if (bm_tmodel_new(&hp, strtoull(argv[11], NULL, 10), true, pool, &m, &err))
            return die("init", &err);
        /* perturb norms and biases so their gradients are exercised with non-trivial values */
        bm_rng r;
        bm_rng_seed(&r, 7);
        for (int i = 0; i < bm_tmodel_n_tensors(m); i++) {
            const bm_tparam *t = bm_tmodel_tensor(m, i);
            if (t->decay) continue;
            for (size_t j = 0; j < t->n; j++)
                bm_tmodel_params(m)[t->offset + j] += 0.1f * bm_rng_normal(&r);
        }
        if (bm_tmodel_save(m, argv[12], NULL, NULL, &err)) return die("save", &err);
        bm_tmodel_free(m);
        bm_pool_free(pool);
        return 0;
    }
    if (argc < 6) {
        fprintf(stderr, "usage: see the comment at the top of tests/ref/train_tool.c\n");
        return 2;
    }
    int n_seq = atoi(argv[4]), T = atoi(argv[5]);
    bm_tmodel *m;
    if (bm_tmodel_load(argv[2], 0, pool, &m, &err)) return die("load", &err);
    size_t nt = (size_t)n_seq * (size_t)(T + 1);
    int32_t *tok = slurp(argv[3], nt * 4);
    if (!tok) return die("tokens file has the wrong size", NULL);
    if (!strcmp(argv[1], "grads") && argc >= 7) {
        uint8_t *mask = argc >= 8 ? slurp(argv[7], nt) : NULL;
        double loss = 0;
        int64_t cnt = 0;
        if (bm_tmodel_step(m, tok, mask, n_seq, T, false, 0, &loss, &cnt, &err))
            return die("forward", &err);
        double l2 = 0;
        int64_t c2 = 0;
        bm_tmodel_zero_grad(m);
        if (bm_tmodel_step(m, tok, mask, n_seq, T, true, (float)(1.0 / (double)cnt), &l2, &c2,
                           &err))
            return die("backward", &err);
        printf("%.9g\n", loss / (double)cnt);
        memcpy(bm_tmodel_params(m), bm_tmodel_grads(m), bm_tmodel_n_floats(m) * sizeof(float));
        if (bm_tmodel_save(m, argv[6], NULL, NULL, &err)) return die("save", &err);
        free(mask);
    } else if (!strcmp(argv[1], "adam") && argc == 10) {
        int steps = atoi(argv[6]);
        float lr = strtof(argv[7], NULL);
        bm_adamw_params ap = {0.9f, 0.95f, 1e-8f, strtof(argv[8], NULL)};
        double clip = strtod(argv[9], NULL);
        size_t nf = bm_tmodel_n_floats(m);
        float *am = calloc(nf, 4), *av = calloc(nf, 4);
        int64_t step = 0;
        for (int s = 0; s < steps; s++) {
            double loss = 0;
            int64_t cnt = 0;
            bm_tmodel_zero_grad(m);
            if (bm_tmodel_step(m, tok, NULL, n_seq, T, true, 1.0f / (float)(n_seq * T), &loss,
                               &cnt, &err))
                return die("step", &err);
            printf("%.9g\n", loss / (double)cnt);
            bm_grad_clip(m, clip);
            bm_adamw_update(m, am, av, &step, &ap, lr);
        }
        free(am);
        free(av);
    } else {
        fprintf(stderr, "train_tool: unknown command or wrong arguments\n");
        return 2;
    }
    free(tok);
    bm_tmodel_free(m);
    bm_pool_free(pool);
    return 0;
}
