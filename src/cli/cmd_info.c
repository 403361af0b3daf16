/* baimo info: what a model is and what it needs. */
#include "cli.h"
#include "cli_model.h"

#include <stdlib.h>
#include <string.h>

int cmd_info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: baimo info MODEL   (a .gguf file or a Hugging Face directory)\n");
        return argc == 2 ? 0 : 2;
    }
    bm_err err = {0};
    bm_model *m;
    if (bm_model_load(argv[1], &m, &err)) return cli_fail("info", &err);
    const bm_hparams *h = &m->hp;
    char b1[32], b2[32], b3[32], b4[32];
    printf("model:        %s (%s)\n", m->path, m->gguf ? "GGUF" : "safetensors");
    printf("architecture: %s\n", m->arch->name);
    printf("parameters:   %.3f B (%llu)\n", (double)m->n_params / 1e9,
           (unsigned long long)m->n_params);
    if (m->n_packs)
        printf("repacked:     %d matrices, %.1f MiB, %.0f ms at load (%s kernels)\n",
               m->n_packs, (double)m->pack_bytes / 1048576.0, m->pack_secs * 1e3,
               bm_kernels_name());
    printf("kernels:      %s\n", bm_kernels_summary());
    printf("layers %d, embedding %d, heads %d (kv %d, dim %d), ffn %d, vocab %d\n", h->n_layer,
           h->n_embd, h->n_head, h->n_head_kv, h->head_dim, h->n_ff, h->n_vocab);
    printf("context:      %d (trained)\n", h->n_ctx_train);
    printf("rope:         %s, theta %g, scaling %s x%g\n", h->rope_neox ? "neox" : "normal",
           (double)h->rope_theta,
           h->rope_scaling == BM_ROPE_SCALING_YARN     ? "yarn"
           : h->rope_scaling == BM_ROPE_SCALING_LINEAR ? "linear"
           : m->rope_freqs                             ? "llama3"
                                                       : "none",
           (double)h->rope_factor);
    printf("output head:  %s\n", h->tied_output ? "tied to token embedding" : "separate");
    /* dtype histogram over bound weights */
    uint64_t count[BM_DTYPE_COUNT] = {0}, bytes[BM_DTYPE_COUNT] = {0};
    for (int64_t i = 0; i < m->n_tensors; i++) {
        count[m->tensors[i].type]++;
        bytes[m->tensors[i].type] += m->tensors[i].n_bytes;
    }
    printf("tensor types:");
    for (int t = 0; t < BM_DTYPE_COUNT; t++)
        if (count[t])
            printf(" %s x%llu (%s)", bm_dtype_name((bm_dtype)t), (unsigned long long)count[t],
                   bm_fmt_bytes(bytes[t], b1, sizeof b1));
    printf("\n");
    bm_tok *tok = NULL;
    bm_err terr = {0};
    if (cli_model_tokenizer(m, &tok, &terr) == BM_OK) {
        printf("tokenizer:    %d tokens, bos %d, eos %d, chat template %s\n",
               bm_tok_n_vocab(tok), bm_tok_bos(tok), bm_tok_eos(tok),
               bm_tok_chat_template(tok) ? "yes" : "no");
        bm_tok_free(tok);
    } else {
        printf("tokenizer:    none (%s)\n", terr.msg);
    }
    size_t kvt = bm_model_kv_bytes_per_token(m);
    int32_t ctx = h->n_ctx_train < 4096 ? h->n_ctx_train : 4096;
    printf("memory:       weights %s + KV cache %s per token (%s at context %d) = %s\n",
           bm_fmt_bytes(m->weight_bytes, b1, sizeof b1), bm_fmt_bytes(kvt, b2, sizeof b2),
           bm_fmt_bytes((uint64_t)kvt * (uint64_t)ctx, b3, sizeof b3), ctx,
           bm_fmt_bytes(m->weight_bytes + (uint64_t)kvt * (uint64_t)ctx, b4, sizeof b4));
    bm_model_free(m);
    return 0;
}
