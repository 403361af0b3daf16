/* baimo detokenize: decodes comma-separated token ids with a model's tokenizer (-m MODEL.gguf)
 * or a tokenizer.json and prints exactly the decoded bytes followed by one "\n".
 * --skip-special drops control tokens. Batch mode for tests: --ids-file FILE --split SEP
 * decodes each line of FILE (ids separated by spaces or commas) and prints each text followed
 * by SEP (instead of "\n"). Also holds the shared tokenizer-opening helper of the
 * tokenize/detokenize commands. */
#include <stdlib.h>
#include <string.h>

#include "baimo/gguf.h"
#include "baimo/tokenizer.h"
#include "cli.h"

int cli_tok_open(const char *cmd, const char *model, const char *tokj, bm_tok **t, void **g);
void cli_tok_close(bm_tok *t, void *g);

int cli_tok_open(const char *cmd, const char *model, const char *tokj, bm_tok **t, void **g) {
    bm_err err = {0};
    *g = NULL;
    if (tokj) {
        if (bm_tok_load_hf(tokj, t, &err) != BM_OK) return cli_fail(cmd, &err);
        return 0;
    }
    bm_gguf *gg = NULL;
    if (bm_gguf_open(model, &gg, &err) != BM_OK) return cli_fail(cmd, &err);
    if (bm_tok_load_gguf(gg, t, &err) != BM_OK) {
        bm_gguf_close(gg);
        return cli_fail(cmd, &err);
    }
    *g = gg;
    return 0;
}

void cli_tok_close(bm_tok *t, void *g) {
    bm_tok_free(t);
    bm_gguf_close(g);
}

static int batch(const char *model, const char *tokj, const char *file, const char *sep,
                 bool skip) {
    bm_err err = {0};
    char *buf = NULL;
    size_t n = 0;
    if (bm_file_read(file, &buf, &n, (size_t)1 << 30, &err) != BM_OK)
        return cli_fail("detokenize", &err);
    bm_tok *t = NULL;
    void *g = NULL;
    int rc = cli_tok_open("detokenize", model, tokj, &t, &g);
    if (rc) {
        free(buf);
        return rc;
    }
    size_t cap = 1 << 16;
    int32_t *ids = malloc(n / 2 * sizeof *ids + sizeof *ids);
    char *out = malloc(cap);
    for (char *line = buf; rc == 0 && ids && out && line < buf + n;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        size_t k = 0;
        for (char *p = line; *p;) {
            if (*p == ' ' || *p == ',') {
                p++;
                continue;
            }
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p || v < 0 || v >= bm_tok_n_vocab(t)) {
                rc = cli_failf("detokenize", "%s: bad id '%.20s' (vocabulary has %d)", file, p,
                               bm_tok_n_vocab(t));
                break;
            }
            ids[k++] = (int32_t)v;
            p = e;
        }
        if (rc) break;
        size_t need = bm_tok_decode(t, ids, k, skip, out, cap);
        if (need >= cap) {
            cap = need + 1;
            char *q = realloc(out, cap);
            if (!q) break;
            out = q;
            bm_tok_decode(t, ids, k, skip, out, cap);
        }
        fwrite(out, 1, need, stdout);
        fputs(sep, stdout);
        line = nl ? nl + 1 : buf + n;
    }
    free(ids);
    free(out);
    free(buf);
    cli_tok_close(t, g);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *tokj = NULL, *ids_s = NULL, *ids_file = NULL, *sep = NULL;
    bool bad = false, skip = false;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_str(argc, argv, &i, "--model", "-m", &model, &bad) ||
            cli_opt_str(argc, argv, &i, "--tokenizer", NULL, &tokj, &bad) ||
            cli_opt_str(argc, argv, &i, "--ids", NULL, &ids_s, &bad) ||
            cli_opt_str(argc, argv, &i, "--ids-file", NULL, &ids_file, &bad) ||
            cli_opt_str(argc, argv, &i, "--split", NULL, &sep, &bad)) {
            if (bad) return 2;
        } else if (cli_opt_flag(argv, i, "--skip-special", NULL)) {
            skip = true;
        } else {
            fprintf(stderr, "baimo detokenize: unknown argument '%s'\n", argv[i]);
            bad = true;
        }
    }
    if (!bad && (model != NULL) != (tokj != NULL) && ids_file && !ids_s)
        return batch(model, tokj, ids_file, sep ? sep : "\n", skip);
    if (bad || (!model) == (!tokj) || !ids_s) {
        fprintf(stderr, "usage: baimo detokenize (-m MODEL.gguf | --tokenizer tokenizer.json) "
                        "--ids 1,2,3 [--skip-special]\n");
        return 2;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    char msg[256];
    if (*ids_s && !cli_parse_ids(ids_s, &ids, &n, msg, sizeof msg))
        return cli_failf("detokenize", "--ids: %s", msg);
    bm_tok *t = NULL;
    void *g = NULL;
    int rc = cli_tok_open("detokenize", model, tokj, &t, &g);
    if (rc) {
        free(ids);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= bm_tok_n_vocab(t)) {
            rc = cli_failf("detokenize", "id %d outside the vocabulary [0, %d)", ids[i],
                           bm_tok_n_vocab(t));
            free(ids);
            cli_tok_close(t, g);
            return rc;
        }
    size_t need = bm_tok_decode(t, ids, n, skip, NULL, 0);
    char *out = malloc(need + 1);
    if (!out) {
        free(ids);
        cli_tok_close(t, g);
        return cli_failf("detokenize", "out of memory (%zu bytes)", need);
    }
    bm_tok_decode(t, ids, n, skip, out, need + 1);
    fwrite(out, 1, need, stdout);
    putchar('\n');
    free(out);
    free(ids);
    cli_tok_close(t, g);
    return 0;
}
