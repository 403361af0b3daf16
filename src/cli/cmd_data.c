/* baimo data prepare: tokenizes documents (-f FILES...; .jsonl = one {"text"} per line) or
 * chat conversations (--chat FILE.jsonl, OpenAI-style {"messages": [...]}, rendered with the
 * tokenizer's chat template, with a loss mask on assistant tokens) into the token shards
 * `baimo train -d DIR` reads: DIR/train_000.bin, DIR/val_000.bin (+ .mask for chat). */
#include "cli.h"
#include "cli_model.h"

#include "baimo/train.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(void) {
    fprintf(stderr,
            "usage: baimo data prepare (-f FILE... | --chat FILE.jsonl) --tokenizer "
            "(tokenizer.json | MODEL.gguf)\n"
            "                          -o DIR [--val-frac 0.05] [--doc-sep LINE]\n"
            "  --doc-sep LINE: plain files hold several documents separated by lines equal to LINE\n"
            "  Documents are deduplicated (normalized-text hash); --val-frac of them (by hash)\n"
            "  go to the validation split. Shard format: include/baimo/train.h.\n");
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "prepare")) {
        usage();
        return cli_failf("data", "expected the subcommand 'prepare'");
    }
    const char *tok_path = NULL, *out = NULL, *chat = NULL, *doc_sep = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    double val_frac = 0.05;
    bool bad = false, in_files = false;
    if (!files) return cli_failf("data", "out of memory");
    for (int i = 2; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "--tokenizer", NULL, &tok_path, &bad) ||
            cli_opt_str(argc, argv, &i, "-o", "--output", &out, &bad) ||
            cli_opt_str(argc, argv, &i, "--chat", NULL, &chat, &bad) ||
            cli_opt_str(argc, argv, &i, "--doc-sep", NULL, &doc_sep, &bad) ||
            cli_opt_float(argc, argv, &i, "--val-frac", NULL, 0, 0.9, &val_frac, &bad)) {
            in_files = false;
            continue;
        }
        if (cli_opt_flag(argv, i, "-f", "--files")) {
            in_files = true;
            continue;
        }
        if (cli_opt_flag(argv, i, "-h", "--help")) {
            usage();
            free(files);
            return 0;
        }
        if (in_files && argv[i][0] != '-') {
            files[n_files++] = argv[i];
            continue;
        }
        cli_failf("data", "unknown option '%s'", argv[i]);
        usage();
        free(files);
        return 2;
    }
    if (bad) {
        free(files);
        return 2;
    }
    if (!tok_path || !out || (!n_files && !chat) || (n_files && chat)) {
        usage();
        free(files);
        return cli_failf("data", "--tokenizer, -o and either -f FILES... or --chat FILE are "
                         "required");
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        free(files);
        return cli_failf("data", "cannot create directory '%s': %s", out, strerror(errno));
    }
    bm_err err = {0};
    bm_tok *tok = NULL;
    bm_prep_stats st = {0};
    int rc = 0;
    if (cli_load_tok(tok_path, &tok, &err) ||
        (chat ? bm_data_prepare_chat(chat, tok, out, val_frac, &st, &err)
              : bm_data_prepare(files, n_files, tok, out, val_frac, doc_sep, &st, &err)))
        rc = cli_fail("data", &err);
    else {
        printf("%llu documents, %llu duplicates dropped; train: %llu documents, %llu tokens; "
               "val: %llu documents, %llu tokens",
               (unsigned long long)st.n_docs, (unsigned long long)st.n_dups,
               (unsigned long long)st.n_train_docs, (unsigned long long)st.n_train_tokens,
               (unsigned long long)st.n_val_docs, (unsigned long long)st.n_val_tokens);
        if (chat) printf("; %llu assistant tokens trained on", (unsigned long long)st.n_masked);
        printf(" -> %s\n", out);
    }
    bm_tok_free(tok);
    free(files);
    return rc;
}
