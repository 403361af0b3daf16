/* What bounds the packed int8 prefill kernels on this core: the cost of the float epilogue
 * next to vpdpbusd, measured in one run. Per 32-column block a 512-bit Q8_0 / Q4_0 tile spends 8
 * vpdpbusd on each 16-row x 1-token output vector, then scales it: s = d_w * d_x (a multiply)
 * and y += float(isum) * s (an FMA), plus a conversion. This program times, with every
 * dependency chain independent (8 accumulators) and no memory traffic:
 *   dp      8 vpdpbusd
 *   +cvt    8 vpdpbusd + 1 vcvtdq2ps            per output vector (the conversion)
 *   +mulfma 8 vpdpbusd + 1 vmulps + 1 vfmadd    per output vector (the scaling)
 *   +all    8 vpdpbusd + cvt + mul + fma
 * and prints each as a fraction of the pure-vpdpbusd rate: the best a kernel with that
 * epilogue can reach as a share of the int8 peak that `baimo bench` reports. On cores where the
 * multiply and FMA issue to the ports vpdpbusd uses (Zen 4: 8 / 10 = 0.80), no tile shape can
 * beat that fraction; where they have their own ports it stays near 1. Needs AVX-512 VNNI (the
 * program says so and exits 0 elsewhere). Usage: bench_pipes [-r REPS] [--json]. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One round: 8 independent vpdpbusd chains (zmm0-7), each followed (per variant) by the
 * epilogue ops on other registers, so only port pressure differs between the variants. */
#define DP8                                                                                    \
    "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n vpdpbusd %%zmm30, %%zmm31, %%zmm1\n"                  \
    "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n vpdpbusd %%zmm30, %%zmm31, %%zmm3\n"                  \
    "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n vpdpbusd %%zmm30, %%zmm31, %%zmm5\n"                  \
    "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n vpdpbusd %%zmm30, %%zmm31, %%zmm7\n"
#define CVT "vcvtdq2ps %%zmm29, %%zmm8\n"
#define MULFMA "vmulps %%zmm28, %%zmm27, %%zmm9\n vfmadd231ps %%zmm28, %%zmm27, %%zmm10\n"
#define CLOBBERS                                                                               \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
        "memory"

#define VARIANT(name, body)                                                                    \
    __attribute__((target("avx512f,avx512vnni"), noinline)) static double name(long n) {       \
        const double t0 = now_s();                                                             \
        __asm__ volatile("vpxord %%zmm27, %%zmm27, %%zmm27\n vpxord %%zmm28, %%zmm28, %%zmm28\n" \
                         "vpxord %%zmm29, %%zmm29, %%zmm29\n vpxord %%zmm30, %%zmm30, %%zmm30\n" \
                         "vpxord %%zmm31, %%zmm31, %%zmm31\n"                                  \
                         "1:\n" body "dec %0\n jnz 1b\n"                                       \
                         : "+r"(n)                                                             \
                         :                                                                     \
                         : CLOBBERS, "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");             \
        return now_s() - t0;                                                                   \
    }

VARIANT(run_dp, DP8)
VARIANT(run_cvt, DP8 CVT)
VARIANT(run_mulfma, DP8 MULFMA)
VARIANT(run_all, DP8 CVT MULFMA)

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int reps = 7;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else {
            fprintf(stderr, "usage: bench_pipes [-r REPS] [--json]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64) reps = 7;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni")) {
        printf(json ? "{\"skipped\":\"no AVX-512 VNNI\"}\n"
                    : "bench_pipes: this CPU has no AVX-512 VNNI; nothing to measure\n");
        return 0;
    }
    static double (*const fns[4])(long) = {run_dp, run_cvt, run_mulfma, run_all};
    static const char *const names[4] = {"dp", "cvt", "mulfma", "all"};
    const long n = 20000000; /* rounds per timing: ~50 ms each */
    double best[4], ts[4][64];
    /* Interleaved so a slow phase of a shared machine hits every variant alike. */
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < 4; v++) ts[v][r] = fns[v](n);
    for (int v = 0; v < 4; v++) {
        qsort(ts[v], (size_t)reps, sizeof ts[v][0], cmp_d);
        best[v] = ts[v][0];
    }
    const double dp_per_ns = 8.0 * (double)n / best[0] / 1e9;
    if (json) {
        printf("{\"vpdpbusd_per_ns\":%.3f", dp_per_ns);
        for (int v = 1; v < 4; v++) printf(",\"%s_fraction\":%.3f", names[v], best[0] / best[v]);
        printf("}\n");
    } else {
        printf("bench_pipes: 8 independent 512-bit vpdpbusd per round, best of %d\n", reps);
        printf("  %-8s %.3f vpdpbusd/ns (one core)\n", "dp", dp_per_ns);
        for (int v = 1; v < 4; v++)
            printf("  %-8s %.3f of the pure vpdpbusd rate with the %s epilogue\n", names[v],
                   best[0] / best[v],
                   v == 1 ? "conversion" : v == 2 ? "multiply + FMA" : "whole Q8_0");
    }
    return 0;
}

#else

int main(void) {
    printf("bench_pipes: x86-64 only; nothing to measure here\n");
    return 0;
}

#endif
