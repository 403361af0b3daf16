/* baimo make-model: writes a random-weight GGUF model of a real shape, optionally carrying a
 * real tokenizer (tokenizer.json) as GGUF metadata. */
#include "cli.h"

#include "baimo/model.h"
#include "baimo/tokenizer.h"

#include <string.h>

static void usage(void) {
    fprintf(stderr,
            "usage: baimo make-model --arch ARCH --shape SHAPE [--type TYPE] [--tokenizer "
            "tokenizer.json]\n"
            "                        [--seed S] [--ctx N] [--rope-scaling linear|yarn "
            "--rope-factor F --ctx-orig N] -o OUT.gguf\n"
            "  ARCH: %s\n  SHAPE: %s\n  TYPE: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k "
            "q4_k q5_k q6_k (default q8_0)\n",
            bm_arch_list(), bm_model_shapes());
}

static bm_status write_tok(void *user, bm_gguf_writer *w, bm_err *err) {
    return bm_tok_write_gguf(user, w, err);
}

static void progress(void *user, const char *what, uint64_t done, uint64_t total) {
    bm_progress *p = user;
    p->total = total;
    bm_progress_update(p, done);
}

int cmd_make_model(int argc, char **argv) {
    const char *arch = NULL, *shape = NULL, *type = "q8_0", *tok_path = NULL, *out = NULL,
               *scaling = NULL;
    int64_t seed = 42, ctx = 0, ctx_orig = 0, threads = 0;
    double factor = 1.0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "--arch", NULL, &arch, &bad) ||
            cli_opt_str(argc, argv, &i, "--shape", NULL, &shape, &bad) ||
            cli_opt_str(argc, argv, &i, "--type", NULL, &type, &bad) ||
            cli_opt_str(argc, argv, &i, "--tokenizer", NULL, &tok_path, &bad) ||
            cli_opt_str(argc, argv, &i, "-o", "--output", &out, &bad) ||
            cli_opt_str(argc, argv, &i, "--rope-scaling", NULL, &scaling, &bad) ||
            cli_opt_float(argc, argv, &i, "--rope-factor", NULL, 1, 1024, &factor, &bad) ||
            cli_opt_int(argc, argv, &i, "--ctx-orig", NULL, 1, 1 << 24, &ctx_orig, &bad) ||
            cli_opt_int(argc, argv, &i, "--ctx", NULL, 1, 1 << 24, &ctx, &bad) ||
            cli_opt_int(argc, argv, &i, "--seed", NULL, 0, INT64_MAX, &seed, &bad) ||
            cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad))
            continue;
        if (cli_opt_flag(argv, i, "-h", "--help")) {
            usage();
            return 0;
        }
        cli_failf("make-model", "unknown option '%s'", argv[i]);
        usage();
        return 2;
    }
    if (bad) return 2;
    if (!arch || !shape || !out) {
        usage();
        return cli_failf("make-model", "--arch, --shape and -o are required");
    }
    bm_make_params p = {.arch = arch, .shape = shape, .seed = (uint64_t)seed,
                        .n_ctx = (int32_t)ctx, .n_threads = (int)threads};
    if (!bm_dtype_parse(type, &p.type))
        return cli_failf("make-model", "unknown type '%s'", type);
    if (scaling) {
        if (!strcmp(scaling, "linear"))
            p.rope_scaling = BM_ROPE_SCALING_LINEAR;
        else if (!strcmp(scaling, "yarn"))
            p.rope_scaling = BM_ROPE_SCALING_YARN;
        else
            return cli_failf("make-model", "--rope-scaling must be linear or yarn, got '%s'",
                             scaling);
        p.rope_factor = (float)factor;
        p.rope_ctx_orig = (int32_t)ctx_orig;
    }
    bm_err err = {0};
    bm_tok *tok = NULL;
    if (tok_path) {
        if (bm_tok_load_hf(tok_path, &tok, &err)) return cli_fail("make-model", &err);
        p.n_vocab = bm_tok_n_vocab(tok);
        p.write_meta = write_tok;
        p.user = tok;
    }
    bm_progress pr;
    bm_progress_init(&pr, stderr, "make-model", 1);
    p.progress = progress;
    p.progress_user = &pr;
    double t0 = bm_time_now();
    bm_status st = bm_model_make(&p, out, &err);
    bm_tok_free(tok);
    if (st) return cli_fail("make-model", &err);
    bm_progress_done(&pr);
    fprintf(stderr, "make-model: wrote %s (%s, %s, %s) in %.1f s\n", out, arch, shape, type,
            bm_time_now() - t0);
    return 0;
}
