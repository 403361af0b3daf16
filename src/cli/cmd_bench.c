/* baimo bench: llama-bench style throughput of a model: prompt processing (pp, tokens/s over one
 * batch of -p tokens) and generation (tg, -n tokens one at a time after the prompt), median /
 * min / max over -r repetitions, with in-run context (all measured in this process, after the
 * timed runs, so they are compared like for like):
 *  - tg / read bandwidth: bytes read per generated token (every matmul weight incl. the output
 *    head once, plus the K/V of the average context p + n/2) times tg tok/s, over the read
 *    bandwidth of every thread summing a 1 GiB buffer (best of 2 sweeps). Because the
 *    bandwidth of a shared machine moves by tens of percent within minutes, the ratio comes
 *    from -r extra generation runs each placed between two probes: a run's ratio uses the mean
 *    of its two neighbouring probes, and the median over the runs is reported (with the
 *    median of all probes as bandwidth_gb_s).
 *  - pp / peak: the pp batch costs (multiply-add = 2 ops)
 *        2 * (layer matmul params) * p           q, k, v, o, gate, up, down of every layer
 *      + 2 * (output head params) * 1            bm_model_eval(all=false) runs the head only
 *                                                for the last prompt token
 *      + 4 * n_head * head_dim * p(p+1)/2 * n_layer   attention: QK^T and PV, query i (from 0)
 *                                                attends to i+1 keys (causal, empty context)
 *    pp_peak_ratio = (time those ops take at the measured peaks: each matmul at the int8 peak
 *    (vpdpbusd / vpmaddubsw) if its weights are quantized, else at the f32 FMA peak;
 *    attention at the f32 FMA peak) / (measured pp time). Peaks: bm_kernels_peak_gops, every
 *    pool thread at once, best of 5 rounds, run before and after the timed runs (the higher).
 *  - peak RSS (VmHWM) next to the model file size + the KV cache allocated, read after the
 *    timed runs and BEFORE the --ref runs (the scalar kernels read the GGUF's bytes of the
 *    repacked matrices again) and the bandwidth probe (whose 1 GiB buffer would dominate it).
 *  - --ref: pp16 / tg4 with the fast kernels and with the scalar reference (BM_KERNELS=ref).
 *  - --profile: one more pp and tg run with the forward pass timing its steps (bm_ctx_profile):
 *    the share of each step, and the matmul steps' ops over their own time against the peaks.
 * Self-contained (library API, stdio and POSIX only) so bench/bench_forward.c can reuse it. */
#include "baimo/model.h"
#include "baimo/tensor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

int cmd_bench(int argc, char **argv);

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- read bandwidth probe ------------------------------------------------------------------ */

typedef struct bw_task {
    const uint64_t *buf;
    size_t n;
    uint64_t sums[512];
} bw_task;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 256-bit loads, 4 independent sums, 128 bytes per step: scalar 64-bit loads under-measure
 * (a whole-model decode of Qwen2.5-7B Q4_0 streamed 36 GB/s where the scalar probe read 28). */
__attribute__((target("avx2"))) static uint64_t bw_sum_avx2(const uint64_t *p, const uint64_t *e) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (; p < e; p += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)p));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + 12)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)v, a0);
    return v[0] + v[1] + v[2] + v[3];
}
#endif

static void bw_run(void *ctx, int ith, int nth) {
    bw_task *t = ctx;
    int64_t lo, hi;
    bm_split_range((int64_t)t->n / 16, ith, nth, &lo, &hi);
    lo *= 2, hi *= 2; /* units of 8 words, whole 128-byte steps */
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) {
        t->sums[ith] = bw_sum_avx2(t->buf + lo * 8, t->buf + hi * 8);
        return;
    }
#endif
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (const uint64_t *p = t->buf + lo * 8, *e = t->buf + hi * 8; p < e; p += 8) {
        s0 += p[0], s1 += p[1], s2 += p[2], s3 += p[3];
        s4 += p[4], s5 += p[5], s6 += p[6], s7 += p[7];
    }
    t->sums[ith] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/* A 1 GiB buffer (larger than any last-level cache) filled once; probes sweep it. */
static uint64_t *bw_buffer(bw_task *t) {
    const size_t bytes = (size_t)1 << 30;
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) return NULL;
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i;
    t->buf = buf;
    t->n = bytes / 8;
    return buf;
}

/* Best of `passes` sweeps of t's buffer on every pool thread, GB/s (0 if the sums vanished). */
static double bw_probe(bm_pool *pool, bw_task *t, int passes) {
    int nth = bm_pool_n_threads(pool) < 512 ? bm_pool_n_threads(pool) : 512;
    double best = 1e30;
    for (int r = 0; r < passes; r++) {
        double t0 = bm_time_now();
        bm_pool_run(pool, bw_run, t, nth);
        double dt = bm_time_now() - t0;
        if (dt < best) best = dt;
    }
    uint64_t s = 0;
    for (int i = 0; i < nth; i++) s += t->sums[i];
    return s == 0 ? 0 : (double)(t->n * 8) / best / 1e9; /* s != 0 keeps the loop alive */
}

/* ---- model timing -------------------------------------------------------------------------- */

typedef struct run_stats {
    double pp[64], tg[64]; /* tokens/s per repetition */
} run_stats;

/* One batch of p prompt tokens, then n tokens generated one at a time: tok/s of each. With pr
 * (the context profiling), pr[0] gets the batch's seconds per step and pr[1] the seconds per
 * step per generated token. */
static bm_status time_once(bm_ctx *c, int32_t n_vocab, int32_t p, int32_t n, double *pp,
                           double *tg, bm_profile *pr, float *logits, int32_t *toks,
                           bm_err *err) {
    bm_seq s;
    bm_status st = bm_seq_init(&s, p + n + 1, err);
    if (st) return st;
    for (int32_t i = 0; i < p + n; i++) toks[i] = (int32_t)((i * 7919u + 13u) % (uint32_t)n_vocab);
    if (pr) bm_ctx_profile_reset(c);
    double t0 = bm_time_now();
    if (p > 0) st = bm_model_eval(c, &s, toks, p, false, logits, err); /* -p 0: tg only */
    double t1 = bm_time_now();
    if (pr) {
        bm_ctx_profile(c, &pr[0]);
        bm_ctx_profile_reset(c);
        t1 = bm_time_now();
    }
    for (int32_t i = 0; i < n && !st; i++) st = bm_model_eval(c, &s, toks + p + i, 1, false,
                                                              logits, err);
    double t2 = bm_time_now();
    if (pr) {
        bm_ctx_profile(c, &pr[1]);
        for (int k = 0; k < BM_PROF_COUNT && n > 0; k++) pr[1].secs[k] /= n;
    }
    bm_seq_fini(&s, bm_ctx_kv(c));
    *pp = p > 0 ? p / (t1 - t0) : 0;
    *tg = n > 0 ? n / (t2 - t1) : 0;
    return st;
}

static double prof_total(const bm_profile *pr) {
    double t = 0;
    for (int k = 0; k < BM_PROF_COUNT; k++) t += pr->secs[k];
    return t;
}

/* Seconds in the matmul steps (the head included: its ops are counted too). */
static double prof_matmul(const bm_profile *pr) {
    return pr->secs[BM_PROF_QKV] + pr->secs[BM_PROF_WO] + pr->secs[BM_PROF_GATE_UP] +
           pr->secs[BM_PROF_DOWN] + pr->secs[BM_PROF_HEAD];
}

static void spread(const double *v, int n, double *med, double *mn, double *mx) {
    double s[64];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof s[0], cmp_dbl);
    *med = s[n / 2];
    *mn = s[0];
    *mx = s[n - 1];
}

/* Peak resident set of this process in bytes: VmHWM from /proc/self/status, else getrusage. */
static double peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
        fclose(f);
        if (kb > 0) return (double)kb * 1024;
    }
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss * 1024 : 0;
}

static int usage(void) {
    fprintf(stderr, "usage: baimo bench -m MODEL [-p 128] [-n 32] [-t THREADS] [-r REPS] "
                    "[--json] [--ref] [--profile]\n"
                    "  -p N   prompt tokens timed as one batch (0..8192)\n"
                    "  -n N   tokens generated one at a time after it (0..8192)\n"
                    "  -t N   threads (0 = all CPUs, up to 512)\n"
                    "  -r N   repetitions (1..64); median, min and max are reported\n"
                    "  --json one JSON object on stdout\n"
                    "  --ref  also time pp16 / tg4 with the scalar reference kernels\n"
                    "  --profile  time each step of the forward pass in one more pp and tg run\n");
    return 2;
}

static bool int_arg(int argc, char **argv, int *i, const char *name, long lo, long hi,
                    long *out, bool *bad) {
    if (strcmp(argv[*i], name)) return false;
    char *end;
    if (*i + 1 >= argc) {
        fprintf(stderr, "baimo bench: %s needs a value\n", name);
        *bad = true;
        return true;
    }
    errno = 0;
    const char *s = argv[++*i];
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "baimo bench: %s '%s' must be an integer in [%ld, %ld]\n", name, s, lo,
                hi);
        *bad = true;
    }
    *out = v;
    return true;
}

int cmd_bench(int argc, char **argv) {
    const char *path = NULL;
    long p = 128, n = 32, threads = 0, reps = 5;
    bool json = false, with_ref = false, with_prof = false, bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "baimo bench: %s needs a value (a .gguf file or a model "
                                "directory)\n", argv[i]);
                return 2;
            }
            path = argv[++i];
            continue;
        }
        if (int_arg(argc, argv, &i, "-p", 0, 8192, &p, &bad) ||
            int_arg(argc, argv, &i, "-n", 0, 8192, &n, &bad) ||
            int_arg(argc, argv, &i, "-t", 0, 512, &threads, &bad) ||
            int_arg(argc, argv, &i, "-r", 1, 64, &reps, &bad))
            continue;
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--ref")) with_ref = true;
        else if (!strcmp(argv[i], "--profile")) with_prof = true;
        else {
            fprintf(stderr, "baimo bench: unknown option '%s'\n", argv[i]);
            return usage();
        }
    }
    if (bad) return 2;
    if (!path) {
        fprintf(stderr, "baimo bench: -m MODEL is required\n");
        return usage();
    }
    if (p + n == 0) {
        fprintf(stderr, "baimo bench: -p and -n are both 0, nothing to time\n");
        return 2;
    }
    bm_err err = {0};
    bm_model *m = NULL;
    bm_ctx *c = NULL;
    float *logits = NULL;
    int32_t *toks = NULL;
    int rc = 1;
    if (bm_model_load(path, &m, &err)) goto fail;
    const int32_t pb = p > 16 ? (int32_t)p : 16;
    bm_ctx_params cp = {.n_ctx = (int32_t)(p + n + 32), .max_batch = pb, .n_seq = 1,
                        .n_threads = (int)threads, .profile = with_prof};
    if (bm_ctx_new(m, &cp, &c, &err)) goto fail;
    const int32_t nv = m->hp.n_vocab;
    logits = malloc(sizeof(float) * (size_t)nv);
    toks = malloc(sizeof(int32_t) * (size_t)(p + n + 32));
    if (!logits || !toks) {
        bm_err_set(&err, BM_ENOMEM, "bench: out of memory");
        goto fail;
    }
    bm_pool *pool = bm_ctx_pool(c);
    const int nth = bm_pool_n_threads(pool);

    /* Bytes read per generated token: every matmul weight once, the K/V of the context.
     * Multiply-adds per prompt token: the layer matmuls (the head only for the last one), split
     * by whether the weight type runs on the int8 units (quantized) or the f32 FMA. Bytes per
     * weight type, for the "type" (the largest share) and "types" columns: a row length that
     * is not a multiple of a type's block makes a file mix types (Qwen2.5-0.5B "Q4_K": the
     * 896-wide rows are Q5_0). */
    double w_bytes = 0, type_bytes[BM_DTYPE_COUNT] = {0};
    double mm_i8_ops = 0, mm_f32_ops = 0;
    for (int32_t l = 0; l <= m->hp.n_layer; l++) {
        const bm_layer *L = l < m->hp.n_layer ? &m->layers[l] : NULL;
        const bm_tensor *mats[7] = {m->output};
        if (L) {
            const bm_tensor *lm[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
            memcpy(mats, lm, sizeof lm);
        }
        for (int k = 0; k < 7; k++) {
            if (!mats[k]) continue;
            const double params = (double)mats[k]->ne[0] * (double)mats[k]->ne[1];
            const double toks_here = L ? (double)p : (p > 0 ? 1 : 0);
            w_bytes += (double)mats[k]->n_bytes;
            if ((int)mats[k]->type >= 0 && mats[k]->type < BM_DTYPE_COUNT)
                type_bytes[mats[k]->type] += (double)mats[k]->n_bytes;
            if (bm_type_traits_get(mats[k]->type)->quantized)
                mm_i8_ops += 2.0 * params * toks_here;
            else
                mm_f32_ops += 2.0 * params * toks_here;
        }
    }
    bm_dtype wt = m->output->type;
    char types[256] = "";
    for (int used = 0; used < BM_DTYPE_COUNT; used++) { /* types by decreasing bytes */
        int best = -1;
        for (int t = 0; t < BM_DTYPE_COUNT; t++)
            if (type_bytes[t] > 0 && (best < 0 || type_bytes[t] > type_bytes[best])) best = t;
        if (best < 0) break;
        if (!used) wt = (bm_dtype)best;
        size_t len = strlen(types);
        snprintf(types + len, sizeof types - len, "%s%s:%.0f%%", used ? "," : "",
                 bm_dtype_name((bm_dtype)best), 100 * type_bytes[best] / w_bytes);
        type_bytes[best] = 0;
    }
    const double kv_bytes = (double)bm_model_kv_bytes_per_token(m) * ((double)p + n / 2.0);
    const double mm_ops = mm_i8_ops + mm_f32_ops;
    const double attn_ops = 4.0 * m->hp.n_head * m->hp.head_dim * ((double)p * (p + 1) / 2) *
                            m->hp.n_layer;

    /* Peaks: once before the timed runs and once after, keeping the higher (the machine may be
     * shared: a round that another process slowed does not lower the peak). */
    double peak_i8 = bm_kernels_peak_gops(pool, true), peak_f32 = bm_kernels_peak_gops(pool, false);

    run_stats rs;
    double pp_med, pp_min, pp_max, tg_med, tg_min, tg_max;
    if (time_once(c, nv, (int32_t)p, n > 2 ? 2 : (int32_t)n, &rs.pp[0], &rs.tg[0], NULL, logits,
                  toks, &err)) /* warm-up */
        goto fail;
    for (int r = 0; r < reps; r++)
        if (time_once(c, nv, (int32_t)p, (int32_t)n, &rs.pp[r], &rs.tg[r], NULL, logits, toks,
                      &err))
            goto fail;
    spread(rs.pp, (int)reps, &pp_med, &pp_min, &pp_max);
    spread(rs.tg, (int)reps, &tg_med, &tg_min, &tg_max);

    double ref_pp = 0, ref_tg = 0, fast_pp16 = 0, fast_tg4 = 0;
    const char *kname = bm_kernels_name();
    /* Memory: read before the scalar reference runs (they read the GGUF's own bytes of the
     * repacked matrices, whose pages the packed copy had given back) and before the bandwidth
     * probe allocates and touches its 1 GiB. */
    const double rss = peak_rss_bytes();
    if (with_ref) {
        /* The scalar level is ~20-50x slower: a short pp16 / tg4 at both levels. */
        if (time_once(c, nv, 16, 4, &fast_pp16, &fast_tg4, NULL, logits, toks, &err)) goto fail;
        bm_kernels_use("ref");
        bm_status st = time_once(c, nv, 16, 4, &ref_pp, &ref_tg, NULL, logits, toks, &err);
        bm_kernels_use(kname);
        if (st) goto fail;
    }

    bm_profile prof[2]; /* pp, tg */
    memset(prof, 0, sizeof prof);
    double pp_x, tg_x;
    if (with_prof &&
        time_once(c, nv, (int32_t)p, (int32_t)n, &pp_x, &tg_x, prof, logits, toks, &err))
        goto fail;

    struct stat sb;
    const double file_bytes = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (double)sb.st_size
                                                                          : (double)m->weight_bytes;
    const double kv_alloc = (double)bm_ctx_kv(c)->n_blocks * BM_KV_BLOCK *
                            (double)bm_model_kv_bytes_per_token(m);
    const double mib = 1024.0 * 1024.0;

    /* Paired generation runs, each between two bandwidth probes (after the RSS reading). */
    static bw_task bwt;
    uint64_t *bwbuf = bw_buffer(&bwt);
    double bw = 0, tg_ratio = 0, tg_pair_med = 0, probes[65], ratios[64], tg_pair[64];
    if (bwbuf && n > 0) {
        probes[0] = bw_probe(pool, &bwt, 3); /* the first sweeps also warm the pages */
        for (int r = 0; r < reps; r++) {
            if (time_once(c, nv, (int32_t)p, (int32_t)n, &pp_x, &tg_pair[r], NULL, logits, toks,
                          &err)) {
                free(bwbuf);
                goto fail;
            }
            probes[r + 1] = bw_probe(pool, &bwt, 2);
            const double around = (probes[r] + probes[r + 1]) / 2;
            ratios[r] = around > 0 ? tg_pair[r] * (w_bytes + kv_bytes) / (around * 1e9) : 0;
        }
        double lo, hi;
        spread(probes, (int)reps + 1, &bw, &lo, &hi);
        spread(ratios, (int)reps, &tg_ratio, &lo, &hi);
        spread(tg_pair, (int)reps, &tg_pair_med, &lo, &hi);
    } else if (bwbuf) {
        bw = bw_probe(pool, &bwt, 5);
    }
    free(bwbuf);
    const double peak_i8_after = bm_kernels_peak_gops(pool, true);
    const double peak_f32_after = bm_kernels_peak_gops(pool, false);
    if (peak_i8_after > peak_i8) peak_i8 = peak_i8_after;
    if (peak_f32_after > peak_f32) peak_f32 = peak_f32_after;
    const double pp_secs = pp_med > 0 ? (double)p / pp_med : 0;
    const double pp_gops = pp_secs > 0 ? (mm_ops + attn_ops) / pp_secs / 1e9 : 0;
    const double ideal_secs = peak_i8 > 0 && peak_f32 > 0
                                  ? (mm_i8_ops / peak_i8 + (mm_f32_ops + attn_ops) / peak_f32) /
                                        1e9
                                  : 0;
    const double pp_ratio = pp_secs > 0 ? ideal_secs / pp_secs : 0;
    /* The matmul steps alone against the peaks (their ideal time over their profiled time). */
    const double mm_ideal = peak_i8 > 0 && peak_f32 > 0
                                ? (mm_i8_ops / peak_i8 + mm_f32_ops / peak_f32) / 1e9 : 0;
    const double pp_mm_ratio = prof_matmul(&prof[0]) > 0 ? mm_ideal / prof_matmul(&prof[0]) : 0;

    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (json) {
        printf("{\"model\":\"");
        for (const char *q = name; *q; q++) /* JSON string: escape what a file name may hold */
            if (*q == '"' || *q == '\\') printf("\\%c", *q);
            else if ((unsigned char)*q < 0x20) printf("\\u%04x", (unsigned char)*q);
            else putchar(*q);
        printf("\",\"type\":\"%s\",\"types\":\"%s\",\"threads\":%d,\"kernels\":\"%s\","
               "\"n_prompt\":%ld,\"n_gen\":%ld,\"reps\":%ld,"
               "\"pp_tok_s\":%.3f,\"pp_tok_s_min\":%.3f,\"pp_tok_s_max\":%.3f,"
               "\"tg_tok_s\":%.3f,\"tg_tok_s_min\":%.3f,\"tg_tok_s_max\":%.3f,"
               "\"bandwidth_gb_s\":%.3f,\"bytes_per_token\":%.0f,\"tg_bandwidth_ratio\":%.4f,"
               "\"tg_paired_tok_s\":%.3f,"
               "\"pp_gops\":%.3f,\"pp_matmul_gop\":%.4f,\"pp_attn_gop\":%.4f,"
               "\"peak_int8_gops\":%.3f,\"peak_f32_gops\":%.3f,"
               "\"pp_peak_ratio\":%.4f,"
               "\"rss_mib\":%.1f,\"file_mib\":%.1f,\"kv_mib\":%.1f,\"rss_over_file_kv\":%.4f",
               bm_dtype_name(wt), types, nth, kname, p, n, reps, pp_med, pp_min, pp_max, tg_med,
               tg_min, tg_max, bw, w_bytes + kv_bytes, tg_ratio, tg_pair_med, pp_gops, mm_ops / 1e9,
               attn_ops / 1e9, peak_i8, peak_f32, pp_ratio, rss / mib, file_bytes / mib,
               kv_alloc / mib, rss / (file_bytes + kv_alloc));
        if (with_ref)
            printf(",\"ref_n_prompt\":16,\"ref_n_gen\":4,\"fast_short_pp_tok_s\":%.3f,"
                   "\"fast_short_tg_tok_s\":%.3f,\"ref_pp_tok_s\":%.3f,\"ref_tg_tok_s\":%.3f,"
                   "\"pp_speedup_vs_ref\":%.3f,\"tg_speedup_vs_ref\":%.3f",
                   fast_pp16, fast_tg4, ref_pp, ref_tg, ref_pp > 0 ? fast_pp16 / ref_pp : 0,
                   ref_tg > 0 ? fast_tg4 / ref_tg : 0);
        if (with_prof) {
            for (int which = 0; which < 2; which++) {
                const bm_profile *pr = which ? &prof[1] : &prof[0];
                printf(",\"%s_profile_ms\":{", which ? "tg" : "pp");
                for (int k = 0; k < BM_PROF_COUNT; k++)
                    printf("%s\"%s\":%.4f", k ? "," : "", bm_prof_step_name(k),
                           pr->secs[k] * 1e3);
                printf("}");
            }
            printf(",\"pp_matmul_peak_ratio\":%.4f", pp_mm_ratio);
        }
        printf("}\n");
    } else {
        printf("model %s  type %s (%s of the matmul bytes)  threads %d  kernels %s\n", name,
               bm_dtype_name(wt), types, nth, kname);
        printf("pp%-4ld %9.2f tok/s  (min %.2f, max %.2f, %ld reps)  %.1f GOP/s "
               "(matmul %.2f + attention %.3f GOP per batch) = %.3f of the measured peak\n",
               p, pp_med, pp_min, pp_max, reps, pp_gops, mm_ops / 1e9, attn_ops / 1e9, pp_ratio);
        printf("tg%-4ld %9.2f tok/s  (min %.2f, max %.2f)  %.1f MB/token -> %.2f GB/s\n", n,
               tg_med, tg_min, tg_max, (w_bytes + kv_bytes) / 1e6,
               tg_med * (w_bytes + kv_bytes) / 1e9);
        printf("       runs between bandwidth probes: %.2f tok/s = %.3f of the read bandwidth "
               "around each (median of %ld; probes' median %.2f GB/s)\n",
               tg_pair_med, tg_ratio, reps, bw);
        printf("peak   int8 %.1f GOP/s, f32 FMA %.1f GFLOP/s (%d threads; quantized matmuls "
               "judged against int8, float ones and attention against f32)\n",
               peak_i8, peak_f32, nth);
        printf("memory peak RSS %.1f MiB vs file %.1f MiB + KV cache %.1f MiB = %.3f (before "
               "the bandwidth probe's 1 GiB)\n",
               rss / mib, file_bytes / mib, kv_alloc / mib, rss / (file_bytes + kv_alloc));
        if (with_ref)
            printf("vs scalar reference: pp16 %.2f vs %.2f tok/s (%.1fx), tg4 %.2f vs %.2f tok/s "
                   "(%.1fx)\n",
                   fast_pp16, ref_pp, ref_pp > 0 ? fast_pp16 / ref_pp : 0, fast_tg4, ref_tg,
                   ref_tg > 0 ? fast_tg4 / ref_tg : 0);
        if (with_prof) {
            const double tp = prof_total(&prof[0]), tt = prof_total(&prof[1]);
            printf("profile      pp%-4ld ms   share   tg ms/token   share\n", p);
            for (int k = 0; k < BM_PROF_COUNT; k++)
                printf("  %-10s %9.3f  %5.1f%%  %11.4f  %5.1f%%\n", bm_prof_step_name(k),
                       prof[0].secs[k] * 1e3, tp > 0 ? 100 * prof[0].secs[k] / tp : 0,
                       prof[1].secs[k] * 1e3, tt > 0 ? 100 * prof[1].secs[k] / tt : 0);
            printf("  matmul steps: %.1f%% of pp, at %.3f of the measured peak; %.1f%% of tg\n",
                   tp > 0 ? 100 * prof_matmul(&prof[0]) / tp : 0, pp_mm_ratio,
                   tt > 0 ? 100 * prof_matmul(&prof[1]) / tt : 0);
        }
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "baimo bench: %s\n", err.msg);
    free(logits);
    free(toks);
    bm_ctx_free(c);
    bm_model_free(m);
    return rc;
}
