/* Perplexity in windows (the second half of each window is scored, so every scored token has
 * at least n_ctx/2 tokens of context), with optional saving of the scored distributions and
 * KL divergence / top-1 agreement against a saved base. */
#include "baimo/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "BMLP"

typedef struct hdr {
    char magic[4];
    uint32_t version, n_vocab, n_ctx;
    uint64_t n_tokens, n_scored;
} hdr;

/* log-softmax of x[0..n) into y; returns the index of the max. */
static int32_t log_softmax(const float *x, float *y, int32_t n) {
    int32_t am = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[am]) am = i;
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += exp((double)x[i] - x[am]);
    float lse = (float)(x[am] + log(s));
    for (int32_t i = 0; i < n; i++) y[i] = x[i] - lse;
    return am;
}

bm_status bm_perplexity(bm_ctx *c, const bm_model *m, const int32_t *tokens, size_t n,
                        const bm_ppl_params *p, bm_ppl_result *r, bm_err *err) {
    memset(r, 0, sizeof *r);
    int32_t W = p->n_ctx, V = m->hp.n_vocab;
    if (W < 4 || W > bm_ctx_n_ctx(c))
        return bm_err_set(err, BM_ERANGE, "perplexity: window %d must be in [4, %d]", W,
                          bm_ctx_n_ctx(c));
    if (n < 4)
        return bm_err_set(err, BM_EINVAL, "perplexity: the text has %zu tokens, need at least 4",
                          n);
    if (n < (size_t)W) W = (int32_t)n; /* one short window */
    int32_t n_chunks = (int32_t)(n / (size_t)W);
    if (p->max_chunks > 0 && n_chunks > p->max_chunks) n_chunks = p->max_chunks;
    int32_t first = W / 2, per_chunk = W - 1 - first;
    uint64_t n_scored = (uint64_t)n_chunks * (uint64_t)per_chunk;

    bm_status st = BM_OK;
    FILE *save = NULL, *base = NULL;
    float *lg = bm_calloc((size_t)per_chunk * (size_t)V, sizeof(float), err);
    float *lp = bm_calloc((size_t)V, sizeof(float), err);
    float *blp = bm_calloc((size_t)V, sizeof(float), err);
    bool *want = bm_calloc((size_t)W, sizeof(bool), err);
    int32_t *pos = bm_calloc((size_t)W, sizeof(int32_t), err);
    bm_seq **seqs = bm_calloc((size_t)W, sizeof(bm_seq *), err);
    bm_seq s = {0};
    if (!lg || !lp || !blp || !want || !pos || !seqs) {
        st = BM_ENOMEM;
        goto done;
    }
    hdr h = {{'B', 'M', 'L', 'P'}, 1, (uint32_t)V, (uint32_t)W, (uint64_t)n_chunks * W, n_scored};
    if (p->save_logits) {
        if (!(save = fopen(p->save_logits, "wb"))) {
            st = bm_err_set(err, BM_EIO, "perplexity: cannot write '%s': %s", p->save_logits,
                            strerror(errno));
            goto done;
        }
        fwrite(&h, sizeof h, 1, save);
        for (uint64_t i = 0; i < h.n_tokens; i++) {
            uint32_t t = (uint32_t)tokens[i];
            fwrite(&t, 4, 1, save);
        }
    }
    if (p->kl_base) {
        hdr bh;
        if (!(base = fopen(p->kl_base, "rb"))) {
            st = bm_err_set(err, BM_EIO, "perplexity: cannot read '%s': %s", p->kl_base,
                            strerror(errno));
            goto done;
        }
        if (fread(&bh, sizeof bh, 1, base) != 1 || memcmp(bh.magic, MAGIC, 4) || bh.version != 1) {
            st = bm_err_set(err, BM_EFORMAT, "perplexity: '%s' is not a saved-logits file",
                            p->kl_base);
            goto done;
        }
        if (bh.n_vocab != (uint32_t)V || bh.n_ctx != (uint32_t)W || bh.n_tokens != h.n_tokens ||
            bh.n_scored != n_scored) {
            st = bm_err_set(err, BM_EINVAL, "perplexity: base '%s' has vocab %u, window %u, %llu "
                            "tokens; this run has vocab %d, window %d, %llu tokens",
                            p->kl_base, bh.n_vocab, bh.n_ctx, (unsigned long long)bh.n_tokens, V,
                            W, (unsigned long long)h.n_tokens);
            goto done;
        }
        for (uint64_t i = 0; i < h.n_tokens; i++) {
            uint32_t t;
            if (fread(&t, 4, 1, base) != 1 || t != (uint32_t)tokens[i]) {
                st = bm_err_set(err, BM_EINVAL, "perplexity: base '%s' was made from another "
                                "text (token %llu differs)", p->kl_base, (unsigned long long)i);
                goto done;
            }
        }
        r->has_kl = true;
    }
    if ((st = bm_seq_init(&s, W, err))) goto done;
    double sum = 0, sum2 = 0, bsum = 0, klsum = 0;
    int64_t agree = 0;
    for (int32_t ch = 0; ch < n_chunks; ch++) {
        const int32_t *tk = tokens + (size_t)ch * W;
        bm_seq_truncate(&s, bm_ctx_kv(c), 0);
        for (int32_t j = 0; j < W; j++) {
            pos[j] = j;
            seqs[j] = &s;
            want[j] = j >= first && j < W - 1;
        }
        bm_batch b = {W, tk, pos, seqs, want, NULL};
        if ((st = bm_model_forward(c, &b, lg, err))) goto done;
        for (int32_t j = 0; j < per_chunk; j++) {
            int32_t am = log_softmax(lg + (size_t)j * V, lp, V);
            double nll = -(double)lp[tk[first + j + 1]];
            sum += nll;
            sum2 += nll * nll;
            if (save && fwrite(lp, sizeof(float), (size_t)V, save) != (size_t)V) {
                st = bm_err_set(err, BM_EIO, "perplexity: write to '%s' failed", p->save_logits);
                goto done;
            }
            if (base) {
                if (fread(blp, sizeof(float), (size_t)V, base) != (size_t)V) {
                    st = bm_err_set(err, BM_EFORMAT, "perplexity: '%s' is truncated", p->kl_base);
                    goto done;
                }
                double kl = 0;
                int32_t bam = 0;
                for (int32_t v = 0; v < V; v++) {
                    kl += exp((double)blp[v]) * ((double)blp[v] - lp[v]);
                    if (blp[v] > blp[bam]) bam = v;
                }
                klsum += kl;
                if (kl > r->kl_max) r->kl_max = kl;
                agree += bam == am;
                bsum += -(double)blp[tk[first + j + 1]];
            }
        }
        if (p->progress) p->progress(p->progress_user, "chunks", (uint64_t)ch + 1,
                                     (uint64_t)n_chunks);
    }
    r->n_scored = (int64_t)n_scored;
    r->n_chunks = n_chunks;
    r->nll = sum / (double)n_scored;
    r->ppl = exp(r->nll);
    double var = sum2 / (double)n_scored - r->nll * r->nll;
    r->nll_stderr = n_scored > 1 ? sqrt(fmax(var, 0) / (double)(n_scored - 1)) : 0;
    if (base) {
        r->kl_mean = klsum / (double)n_scored;
        r->top1_agree = (double)agree / (double)n_scored;
        r->base_ppl = exp(bsum / (double)n_scored);
    }
done:
    if (save && fclose(save) != 0 && !st)
        st = bm_err_set(err, BM_EIO, "perplexity: closing '%s' failed", p->save_logits);
    if (base) fclose(base);
    bm_seq_fini(&s, bm_ctx_kv(c));
    free(lg);
    free(lp);
    free(blp);
    free(want);
    free(pos);
    free(seqs);
    return st;
}
