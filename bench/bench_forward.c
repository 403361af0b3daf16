/* Whole-model throughput: `baimo bench` (src/cli/cmd_bench.c, compiled in here) on a given GGUF,
 * or on a random-weight model of a real shape made first with bm_model_make and cached as
 * /tmp/bench-SHAPE-TYPE.gguf (written under a temporary name and renamed, so an interrupted
 * make never leaves a truncated file to be reused):
 *   bench_forward --make q8_0 [--shape qwen2.5-0.5b] [--arch qwen2] [-p 128] [-n 32] [-t 2]
 *                 [-r 5] [--json] [--ref]
 *   bench_forward -m MODEL.gguf [...]                                                         */
#include "cli/cmd_bench.c"

#include <unistd.h>

int main(int argc, char **argv) {
    const char *make = NULL, *shape = "qwen2.5-0.5b", *arch = "qwen2";
    char *args[64];
    int n = 0;
    args[n++] = "bench";
    for (int i = 1; i < argc && n < 60; i++) {
        if (!strcmp(argv[i], "--make") && i + 1 < argc) make = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else args[n++] = argv[i];
    }
    char path[256];
    if (make) {
        bm_make_params mp = {.arch = arch, .shape = shape, .seed = 1};
        if (!bm_dtype_parse(make, &mp.type)) {
            fprintf(stderr, "bench_forward: unknown type '%s'\n", make);
            return 2;
        }
        snprintf(path, sizeof path, "/tmp/bench-%s-%s.gguf", shape, make);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f); /* reuse a model made by an earlier run */
        } else {
            bm_err err = {0};
            char tmp[300];
            snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
            fprintf(stderr, "bench_forward: making %s (%s, %s)...\n", path, arch, shape);
            double t0 = bm_time_now();
            if (bm_model_make(&mp, tmp, &err) || rename(tmp, path)) {
                fprintf(stderr, "bench_forward: %s\n", err.msg[0] ? err.msg : "rename failed");
                remove(tmp);
                return 1;
            }
            fprintf(stderr, "bench_forward: made %s in %.1f s\n", path, bm_time_now() - t0);
        }
        args[n++] = "-m";
        args[n++] = path;
    }
    args[n] = NULL;
    return cmd_bench(n, args);
}
