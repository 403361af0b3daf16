/* baimo quantize: rewrite a GGUF model with its weight matrices in another type. */
#include "cli.h"

#include "baimo/model.h"

static void progress(void *user, const char *what, uint64_t done, uint64_t total) {
    bm_progress *p = user;
    p->total = total;
    bm_progress_update(p, done);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int n_pos = 0;
    int64_t threads = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad)) continue;
        if (argv[i][0] == '-' || n_pos == 3) {
            fprintf(stderr, "usage: baimo quantize IN.gguf OUT.gguf TYPE [-t THREADS]\n"
                            "  TYPE: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k "
                            "q6_k\n");
            return cli_opt_flag(argv, i, "-h", "--help") ? 0 : 2;
        }
        pos[n_pos++] = argv[i];
    }
    if (bad) return 2;
    if (n_pos != 3) return cli_failf("quantize", "need IN.gguf OUT.gguf TYPE");
    bm_dtype t;
    if (!bm_dtype_parse(pos[2], &t)) return cli_failf("quantize", "unknown type '%s'", pos[2]);
    bm_err err = {0};
    bm_progress pr;
    bm_progress_init(&pr, stderr, "quantize", 1);
    double t0 = bm_time_now();
    if (bm_model_quantize(pos[0], pos[1], t, (int)threads, progress, &pr, &err))
        return cli_fail("quantize", &err);
    bm_progress_done(&pr);
    fprintf(stderr, "quantize: wrote %s (%s) in %.1f s\n", pos[1], bm_dtype_name(t),
            bm_time_now() - t0);
    return 0;
}
