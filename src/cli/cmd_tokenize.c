/* baimo tokenize: encodes text with a model's tokenizer (-m MODEL.gguf, read from its metadata
 * only, so vocabulary-only GGUF files work) or a tokenizer.json, and prints the ids on one line
 * separated by spaces. Special-token strings in the text are recognised; --no-special adds no
 * BOS/EOS. --lines encodes each line of the input separately (one output line per input line,
 * the newline not included), a batch mode for tests; --split SEP does the same for pieces
 * separated by the string SEP (pieces may hold newlines). */
#include <stdlib.h>
#include <string.h>

#include "baimo/tokenizer.h"
#include "cli.h"

int cli_tok_open(const char *cmd, const char *model, const char *tokj, bm_tok **t, void **g);
void cli_tok_close(bm_tok *t, void *g);

static int usage(void) {
    fprintf(stderr, "usage: baimo tokenize (-m MODEL.gguf | --tokenizer tokenizer.json) "
                    "(-p TEXT | -f FILE) [--no-special] [--no-parse-special] [--lines | --split SEP]\n");
    return 2;
}

static bool encode_print(const bm_tok *t, const char *s, size_t n, int flags, bm_err *err) {
    size_t cap = n + 16, got = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return false;
    if (bm_tok_encode(t, s, n, flags, ids, cap, &got, err) != BM_OK) {
        free(ids);
        return false;
    }
    if (got > cap) {
        free(ids);
        ids = malloc(got * sizeof *ids);
        if (!ids || bm_tok_encode(t, s, n, flags, ids, got, &got, err) != BM_OK) {
            free(ids);
            return false;
        }
    }
    for (size_t i = 0; i < got; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    return true;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *tokj = NULL, *text = NULL, *file = NULL, *sep = NULL;
    bool bad = false, lines = false;
    int flags = BM_TOK_ADD_SPECIAL | BM_TOK_PARSE_SPECIAL;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_str(argc, argv, &i, "--model", "-m", &model, &bad) ||
            cli_opt_str(argc, argv, &i, "--tokenizer", NULL, &tokj, &bad) ||
            cli_opt_str(argc, argv, &i, "--prompt", "-p", &text, &bad) ||
            cli_opt_str(argc, argv, &i, "--file", "-f", &file, &bad) ||
            cli_opt_str(argc, argv, &i, "--split", NULL, &sep, &bad)) {
            if (bad) return 2;
        } else if (cli_opt_flag(argv, i, "--no-special", NULL)) {
            flags &= ~BM_TOK_ADD_SPECIAL;
        } else if (cli_opt_flag(argv, i, "--no-parse-special", NULL)) {
            flags &= ~BM_TOK_PARSE_SPECIAL;
        } else if (cli_opt_flag(argv, i, "--lines", NULL)) {
            lines = true;
        } else {
            fprintf(stderr, "baimo tokenize: unknown argument '%s'\n", argv[i]);
            return usage();
        }
    }
    if ((!model) == (!tokj) || (!text) == (!file)) return usage();
    bm_err err = {0};
    char *buf = NULL;
    size_t n = 0;
    if (file) {
        if (bm_file_read(file, &buf, &n, (size_t)1 << 30, &err) != BM_OK)
            return cli_fail("tokenize", &err);
    } else {
        n = strlen(text);
    }
    bm_tok *t = NULL;
    void *g = NULL;
    int rc = cli_tok_open("tokenize", model, tokj, &t, &g);
    if (rc) {
        free(buf);
        return rc;
    }
    const char *s = file ? buf : text;
    bool ok = true;
    if (lines || (sep && *sep)) {
        const char *d = sep && *sep ? sep : "\n";
        size_t nd = strlen(d), a = 0;
        while (ok && a < n) {
            const char *hit = memmem(s + a, n - a, d, nd);
            size_t b = hit ? (size_t)(hit - s) : n;
            ok = encode_print(t, s + a, b - a, flags, &err);
            a = b + nd;
        }
    } else {
        ok = encode_print(t, s, n, flags, &err);
    }
    free(buf);
    cli_tok_close(t, g);
    if (!ok) return cli_fail("tokenize", &err);
    return 0;
}
