/* bm_matmul throughput per weight type at n_tok = 1 (decode: weight bandwidth, GB/s) and
 * n_tok = 128 (prefill: GFLOP/s), fast kernels vs the scalar reference (BM_KERNELS=ref level)
 * measured in the same run, and OpenBLAS sgemm for F32. Warm-up, then median and min of the
 * repetitions; an output checksum and the max difference to the reference catch a fast wrong
 * kernel. Usage: bench_matmul [--n-in N] [--n-out N] [--n-out-pp N (rows at n_tok = 128,
 * default 1024)] [-t THREADS] [-r REPS] [--types a,b]
 * [--level ref|avx2|avxvnni|vnni|avxvnni-evex] [--pack] [--json]; --level picks the fast level
 * measured (default: the best the CPU has; avxvnni-evex: the avxvnni sources built with EVEX
 * vpdpbusd, for CPUs with AVX-512 VNNI but not AVX-VNNI); --pack measures the fast level on the
 * weights repacked for it (bm_tensor_pack, as a model load does) where it has a packed layout. */
#include "baimo/tensor.h"
#include "tensor/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stat { double med, min; } stat;

static stat timeit(bm_pool *pool, const bm_tensor *w, const float *x, int64_t n_tok, float *y,
                   void *scr, int reps) {
    double ts[256];
    if (reps > 256) reps = 256;
    bm_matmul(pool, w, x, n_tok, y, scr); /* warm-up */
    for (int i = 0; i < reps; i++) {
        double t0 = bm_time_now();
        bm_matmul(pool, w, x, n_tok, y, scr);
        ts[i] = bm_time_now() - t0;
    }
    qsort(ts, (size_t)reps, sizeof ts[0], cmp_d);
    return (stat){ts[reps / 2], ts[0]};
}

static double checksum(const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += y[i] * (double)((i % 7) + 1);
    return s;
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mx = 1e-30;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return md / mx;
}

int main(int argc, char **argv) {
    int64_t n_in = 4096, n_out = 8192, n_out_pp = 1024;
    int threads = 2, reps = 10;
    bool json = false, pack = false;
    const char *type_list = NULL, *level = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n-in") && i + 1 < argc) n_in = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--n-out") && i + 1 < argc) n_out = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--n-out-pp") && i + 1 < argc) n_out_pp = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--pack")) pack = true;
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) type_list = argv[++i];
        else if (!strcmp(argv[i], "--level") && i + 1 < argc) level = argv[++i];
        else {
            fprintf(stderr, "usage: bench_matmul [--n-in N] [--n-out N] [--n-out-pp N] "
                            "[-t THREADS] [-r REPS] "
                            "[--types q4_K,q6_K] [--level ref|avx2|avxvnni|vnni|avxvnni-evex] "
                            "[--pack] [--json]\n");
            return 2;
        }
    }
    if (n_in <= 0 || n_in % 32 || n_out <= 0 || n_out_pp <= 0 || threads <= 0 || reps < 1) {
        fprintf(stderr, "bench_matmul: n_in must be a positive multiple of 32 (types with "
                        "256-column blocks are skipped when it is not one of 256)\n");
        return 2;
    }
    if (n_out_pp > n_out) n_out_pp = n_out;
    bm_pool *pool = bm_pool_new(threads, NULL);
    openblas_set_num_threads(threads);
    int fast = bm_kernels_max_level();
    if (level) {
        int l = 0;
        while (l < BM_LVL_COUNT && strcmp(level, bm_kernels_level_name(l))) l++;
        if (l == BM_LVL_COUNT && !strcmp(level, bm_kernels_level_name(BM_LVL_AVXVNNI_EVEX)))
            l = BM_LVL_AVXVNNI_EVEX;
        if (!bm_kernels_at(l)) {
            fprintf(stderr, "bench_matmul: level '%s' unknown or not supported here (best: %s)\n",
                    level, bm_kernels_level_name(fast));
            return 2;
        }
        fast = l;
    }
    const int64_t toks[2] = {1, 128};
    bm_dtype types[16] = {BM_Q8_0, BM_Q4_0, BM_F16,  BM_F32,  BM_Q4_K, BM_BF16, BM_Q6_K,
                          BM_Q5_K, BM_Q5_0, BM_Q4_1, BM_Q5_1, BM_Q3_K, BM_Q2_K};
    size_t n_types = 13;
    if (type_list) { /* --types q4_K,q6_K */
        n_types = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", type_list);
        for (char *tok = strtok(buf, ","); tok && n_types < 16; tok = strtok(NULL, ",")) {
            if (!bm_dtype_parse(tok, &types[n_types])) {
                fprintf(stderr, "bench_matmul: unknown type '%s'\n", tok);
                return 2;
            }
            n_types++;
        }
    }
    float *x = malloc(sizeof(float) * (size_t)(128 * n_in));
    float *y = malloc(sizeof(float) * (size_t)(128 * n_out));
    float *yr = malloc(sizeof(float) * (size_t)(128 * n_out));
    float *src = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t i = 0; i < 128 * n_in; i++) x[i] = frand();
    size_t sb = bm_matmul_scratch_bytes(n_in, 128, threads);
    void *scr = aligned_alloc(64, (sb + 63) & ~(size_t)63);
    if (!json)
        printf("bench_matmul: n_in %lld, n_out %lld (n_tok=1) / %lld (n_tok=128), %d threads, "
               "kernels %s%s, %d reps\n%-5s %4s %10s %9s %9s %9s %8s %9s %14s\n",
               (long long)n_in, (long long)n_out, (long long)n_out_pp, threads,
               bm_kernels_level_name(fast), pack ? " (packed weights where it has a layout)" : "",
               reps, "type", "ntok", "med_ms", "GB/s", "GFLOP/s",
               "ref_GF/s", "speedup", "rel_diff", "checksum");
    else
        printf("[");
    bool first = true;
    for (size_t ti = 0; ti < n_types; ti++) {
        const bm_type_traits *tt = bm_type_traits_get(types[ti]);
        size_t rb;
        if (!bm_row_bytes(types[ti], n_in, &rb)) continue;
        uint8_t *wd = aligned_alloc(64, (rb * (size_t)n_out + 63) & ~(size_t)63);
        for (int64_t r = 0; r < n_out; r++) {
            for (int64_t i = 0; i < n_in; i++) src[i] = frand();
            tt->from_f32(src, wd + (size_t)r * rb, n_in);
        }
        for (int k = 0; k < 2; k++) {
            const int64_t nt = toks[k], no = nt == 1 ? n_out : n_out_pp;
            bm_tensor w = {.type = types[ti], .n_dims = 2, .ne = {n_in, no}, .data = wd,
                           .n_bytes = rb * (size_t)no};
            bm_kernels_set_level(fast);
            void *pbuf = NULL;
            size_t pbytes;
            bm_err err = {0};
            if (pack && bm_tensor_packable(&w) &&
                bm_tensor_pack(&w, pool, NULL, NULL, &pbuf, &pbytes, &err) != BM_OK) {
                fprintf(stderr, "bench_matmul: %s\n", err.msg);
                return 1;
            }
            stat sf = timeit(pool, &w, x, nt, y, scr, reps);
            bm_kernels_set_level(BM_LVL_REF);
            stat sr = timeit(pool, &w, x, nt, yr, scr, nt == 1 ? reps : 3);
            const double flop = 2.0 * (double)n_in * (double)no * (double)nt;
            const double gbs = (double)w.n_bytes / sf.med / 1e9, gf = flop / sf.med / 1e9;
            const double rd = max_rel_diff(y, yr, (size_t)(nt * no));
            const double cs = checksum(y, (size_t)(nt * no));
            double blas = 0;
            if (types[ti] == BM_F32) {
                double ts[64];
                int nr = reps < 64 ? reps : 64;
                for (int i = -1; i < nr; i++) {
                    double t0 = bm_time_now();
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)no,
                                (int)n_in, 1.0f, x, (int)n_in, (const float *)wd, (int)n_in, 0.0f,
                                yr, (int)no);
                    if (i >= 0) ts[i] = bm_time_now() - t0;
                }
                qsort(ts, (size_t)nr, sizeof ts[0], cmp_d);
                blas = flop / ts[nr / 2] / 1e9;
            }
            if (json) {
                printf("%s{\"type\":\"%s\",\"n_tok\":%lld,\"med_ms\":%.4f,\"min_ms\":%.4f,"
                       "\"gb_s\":%.3f,\"gflop_s\":%.3f,\"ref_gflop_s\":%.3f,\"speedup\":%.2f,"
                       "\"rel_diff\":%.3g,\"checksum\":%.6e,\"sgemm_gflop_s\":%.3f}",
                       first ? "" : ",", tt->name, (long long)nt, sf.med * 1e3, sf.min * 1e3,
                       gbs, gf, flop / sr.med / 1e9, sr.med / sf.med, rd, cs, blas);
                first = false;
            } else {
                printf("%-5s %4lld %10.3f %9.2f %9.2f %9.2f %8.1fx %9.2g %14.6e", tt->name,
                       (long long)nt, sf.med * 1e3, gbs, gf, flop / sr.med / 1e9,
                       sr.med / sf.med, rd, cs);
                if (blas > 0) printf("  sgemm %.2f GFLOP/s", blas);
                printf("\n");
            }
            fflush(stdout);
            free(pbuf);
        }
        free(wd);
    }
    if (json) printf("]\n");
    bm_kernels_set_level(fast);
    free(scr);
    free(x);
    free(y);
    free(yr);
    free(src);
    bm_pool_free(pool);
    return 0;
}
