/* baimo train-tokenizer: trains a byte-level BPE tokenizer (Chinese-aware pre-tokenizer, see
 * include/baimo/bpe_train.h) on text files and writes a Hugging Face tokenizer.json plus
 * tokenizer_config.json (ChatML special tokens and chat template) beside it.
 *   baimo train-tokenizer -f FILE... --vocab N -o tokenizer.json [--special TOKEN ...]
 * -o may name a directory (tokenizer.json is written inside). --special replaces the default
 * special tokens <|endoftext|> <|im_start|> <|im_end|>. Each file is one document. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "baimo/bpe_train.h"
#include "cli.h"

static int usage(void) {
    fprintf(stderr, "usage: baimo train-tokenizer -f FILE... --vocab N -o tokenizer.json "
                    "[--special TOKEN ...] [--min-count N]\n");
    return 2;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_train_tokenizer(int argc, char **argv) {
    const char **files = calloc((size_t)argc, sizeof *files);
    const char **special = calloc((size_t)argc, sizeof *special);
    int n_files = 0, n_special = 0;
    const char *outp = NULL;
    int64_t vocab = 0, min_count = 2;
    bool bad = false;
    int rc = 2;
    if (!files || !special) goto done;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_int(argc, argv, &i, "--vocab", NULL, 257, 1 << 24, &vocab, &bad) ||
            cli_opt_int(argc, argv, &i, "--min-count", NULL, 1, INT64_MAX, &min_count, &bad) ||
            cli_opt_str(argc, argv, &i, "--output", "-o", &outp, &bad)) {
            if (bad) goto done;
        } else if (cli_opt_flag(argv, i, "--file", "-f") ||
                   cli_opt_flag(argv, i, "--special", NULL)) {
            bool sp = !strcmp(argv[i], "--special");
            int n0 = sp ? n_special : n_files;
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (sp) special[n_special++] = argv[++i];
                else files[n_files++] = argv[++i];
            }
            if ((sp ? n_special : n_files) == n0) {
                fprintf(stderr, "baimo train-tokenizer: %s needs at least one value\n", argv[i]);
                goto done;
            }
        } else {
            fprintf(stderr, "baimo train-tokenizer: unknown argument '%s'\n", argv[i]);
            rc = usage();
            goto done;
        }
    }
    if (!n_files || !vocab || !outp) {
        rc = usage();
        goto done;
    }
    char *path = NULL;
    struct stat sb;
    size_t ol = strlen(outp);
    if ((stat(outp, &sb) == 0 && S_ISDIR(sb.st_mode)) || (ol && outp[ol - 1] == '/')) {
        path = malloc(ol + 32);
        if (path) snprintf(path, ol + 32, "%s%stokenizer.json", outp,
                           outp[ol - 1] == '/' ? "" : "/");
    } else {
        path = strdup(outp);
    }
    bm_err err = {0};
    bm_bpe_trainer *t = NULL;
    bm_bpe_train_opts o = {.vocab_size = (int32_t)vocab,
                           .special = n_special ? special : NULL,
                           .n_special = n_special,
                           .min_count = min_count};
    rc = 1;
    if (!path) {
        fprintf(stderr, "baimo train-tokenizer: out of memory\n");
        goto done;
    }
    if (bm_bpe_trainer_new(&o, &t, &err) != BM_OK) {
        rc = cli_fail("train-tokenizer", &err);
        free(path);
        goto done;
    }
    double t0 = now_s();
    for (int k = 0; k < n_files; k++) {
        char *buf = NULL;
        size_t n = 0;
        if (bm_file_read(files[k], &buf, &n, (size_t)4 << 30, &err) != BM_OK ||
            bm_bpe_trainer_feed(t, buf, n, &err) != BM_OK) {
            free(buf);
            bm_err_wrap(&err, "%s", files[k]);
            rc = cli_fail("train-tokenizer", &err);
            goto out;
        }
        free(buf);
    }
    double t1 = now_s();
    if (bm_bpe_trainer_train(t, &err) != BM_OK) {
        rc = cli_fail("train-tokenizer", &err);
        goto out;
    }
    double t2 = now_s();
    if (bm_bpe_trainer_save(t, path, &err) != BM_OK) {
        rc = cli_fail("train-tokenizer", &err);
        goto out;
    }
    bm_bpe_train_stats st;
    bm_bpe_trainer_stats(t, &st);
    double mb = (double)st.n_bytes / 1e6;
    fprintf(stderr,
            "baimo train-tokenizer: %.2f MB, %llu pre-tokens, %llu distinct; counting %.2f s "
            "(%.1f MB/s), %d merges %.2f s; total %.2f s (%.2f MB/s); vocab %d -> %s\n",
            mb, (unsigned long long)st.n_pretok, (unsigned long long)st.n_words, t1 - t0,
            t1 > t0 ? mb / (t1 - t0) : 0.0, (int)st.n_merges, t2 - t1, t2 - t0,
            t2 > t0 ? mb / (t2 - t0) : 0.0, (int)st.n_vocab, path);
    if (st.n_vocab < vocab)
        fprintf(stderr, "baimo train-tokenizer: note: no pair left with count >= %lld, "
                        "vocabulary is %d < %lld\n",
                (long long)min_count, (int)st.n_vocab, (long long)vocab);
    rc = 0;
out:
    bm_bpe_trainer_free(t);
    free(path);
done:
    free(files);
    free(special);
    return rc;
}
