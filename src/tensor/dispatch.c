/* Kernel table: filled once (pthread_once) from the CPU's features. Levels: ref (scalar C),
 * avx2 (AVX2+FMA+F16C), avxvnni (adds VEX-encoded 256-bit vpdpbusd for the int8 dot products:
 * Alder Lake and later client cores), avx512 (AVX-512F/BW/VL/DQ without VNNI: Skylake-SP/X/W,
 * Cannon Lake; 512-bit float and packed int8 kernels, the rest avx2's), vnni (AVX2 +
 * AVX-512F/BW/VL/DQ + VNNI; preferred where the others exist too), amx (vnni plus AMX tile
 * kernels for packed Q8_0/Q4_0/Q5_0 and BF16, only when bm_amx_probe grants and self-checks
 * them); on AArch64 neon (baseline Advanced SIMD) and dotprod (sdot, from getauxval(AT_HWCAP)
 * on Linux). BM_KERNELS=ref|avx2|avxvnni|avx512|vnni|amx|neon|dotprod caps the level (an
 * unknown value falls back to the best the CPU has; otherwise the best available level at or
 * below the one asked). Built with BM_NO_SIMD (or for another target) only ref exists. */
#include "tensor/kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(BM_SIMD_ARM) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static const char *const level_names[BM_LVL_COUNT] = {"ref", "avx2", "avxvnni", "avx512",
                                                      "vnni", "amx",  "neon",    "dotprod"};

static bm_kernels tables[BM_LVL_COUNT];
static bool avail[BM_LVL_COUNT];
static bm_kernels evex_twin; /* BM_LVL_AVXVNNI_EVEX */
static bool have_twin;
static int max_level;
static const bm_kernels *current;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Marks the levels the CPU has in avail[]. */
static void cpu_levels(void) {
    avail[BM_LVL_REF] = true;
#ifdef BM_SIMD_X86
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
          __builtin_cpu_supports("f16c")))
        return;
    avail[BM_LVL_AVX2] = true;
    avail[BM_LVL_AVXVNNI] = __builtin_cpu_supports("avxvnni"); /* CPUID.(7,1):EAX[4] */
    avail[BM_LVL_AVX512] = __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    avail[BM_LVL_VNNI] = avail[BM_LVL_AVX512] && __builtin_cpu_supports("avx512vnni");
    avail[BM_LVL_AMX] = avail[BM_LVL_VNNI] && bm_amx_probe() == BM_AMX_OK;
#elif defined(BM_SIMD_ARM) && defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    avail[BM_LVL_NEON] = (hw & HWCAP_ASIMD) != 0;
    avail[BM_LVL_DOTPROD] = avail[BM_LVL_NEON] && (hw & HWCAP_ASIMDDP) != 0;
#elif defined(BM_SIMD_ARM)
    avail[BM_LVL_NEON] = true; /* Advanced SIMD is part of the AArch64 base ISA */
#endif
}

#if defined(BM_SIMD_ARM) || defined(BM_SIMD_X86)
/* Every quantized weight type's kernel of a SIMD level takes int8 activation blocks. */
static void int8_acts(bm_kernels *k) {
    static const bm_dtype q8[] = {BM_Q8_0, BM_Q4_0, BM_Q5_0, BM_Q4_1, BM_Q5_1,
                                  BM_Q2_K, BM_Q3_K, BM_Q4_K, BM_Q5_K, BM_Q6_K};
    for (size_t i = 0; i < sizeof q8 / sizeof q8[0]; i++) k->act[q8[i]] = BM_ACT_Q8;
}
#endif

#ifdef BM_SIMD_ARM
static void fill_arm(bm_kernels *k, int lvl) {
    k->act_q8 = bm_act_q8_neon;
    k->dot_f32 = bm_dot_f32_neon;
    k->axpy_f32 = bm_axpy_f32_neon;
    k->rmsnorm = bm_rmsnorm_neon;
    k->swiglu = bm_swiglu_neon;
    k->att_chunk = bm_att_chunk_neon;
    k->act_u8 = false; /* both levels multiply signed codes (smull / sdot) */
    k->mm[BM_F32] = bm_mm_f32_neon;
    k->mm[BM_F16] = bm_mm_f16_neon;
    const bool dp = lvl == BM_LVL_DOTPROD;
    k->mm[BM_Q8_0] = dp ? bm_mm_q8_0_dotprod : bm_mm_q8_0_neon;
    k->mm[BM_Q4_0] = dp ? bm_mm_q4_0_dotprod : bm_mm_q4_0_neon;
    k->mm[BM_Q5_0] = dp ? bm_mm_q5_0_dotprod : bm_mm_q5_0_neon;
    k->mm[BM_Q4_1] = dp ? bm_mm_q4_1_dotprod : bm_mm_q4_1_neon;
    k->mm[BM_Q5_1] = dp ? bm_mm_q5_1_dotprod : bm_mm_q5_1_neon;
    k->mm[BM_Q2_K] = dp ? bm_mm_q2_K_dotprod : bm_mm_q2_K_neon;
    k->mm[BM_Q3_K] = dp ? bm_mm_q3_K_dotprod : bm_mm_q3_K_neon;
    k->mm[BM_Q4_K] = dp ? bm_mm_q4_K_dotprod : bm_mm_q4_K_neon;
    k->mm[BM_Q5_K] = dp ? bm_mm_q5_K_dotprod : bm_mm_q5_K_neon;
    k->mm[BM_Q6_K] = dp ? bm_mm_q6_K_dotprod : bm_mm_q6_K_neon;
    int8_acts(k);
}
#endif

#ifdef BM_SIMD_X86
/* The avxvnni level's int8 kernels over an avx2 table; evex: the test twin, the same sources
 * built with EVEX vpdpbusd (the vnni level's 256-bit row kernels, the _vnni256 packed ones). */
static void fill_avxvnni(bm_kernels *k, bool evex) {
#define PICK(f, e) (evex ? f##e : f##avxvnni)
    k->act_u8 = true;
    k->mm[BM_Q8_0] = PICK(bm_mm_q8_0_, vnni);
    k->mm[BM_Q4_0] = PICK(bm_mm_q4_0_, vnni);
    k->mm[BM_Q5_0] = PICK(bm_mm_q5_0_, vnni);
    k->mm[BM_Q4_1] = PICK(bm_mm_q4_1_, vnni);
    k->mm[BM_Q5_1] = PICK(bm_mm_q5_1_, vnni);
    k->mm[BM_Q3_K] = PICK(bm_mm_q3_K_, vnni);
    k->mm[BM_Q4_K] = PICK(bm_mm_q4_K_, vnni);
    k->mm[BM_Q5_K] = PICK(bm_mm_q5_K_, vnni);
    k->mm[BM_Q6_K] = PICK(bm_mm_q6_K_, vnni);
    k->mm[BM_Q2_K] = PICK(bm_mm_q2_K_, vnni);
    k->mmp[BM_Q8_0] = PICK(bm_mmp_q8_0_, vnni256);
    k->mmp[BM_Q4_0] = PICK(bm_mmp_q4_0_, vnni256);
    k->mmp[BM_Q5_0] = PICK(bm_mmp_q5_0_, vnni256);
    k->mmp[BM_Q4_K] = PICK(bm_mmp_q4_K_, vnni256);
    k->mmp[BM_Q5_K] = PICK(bm_mmp_q5_K_, vnni256);
    k->mmp[BM_Q6_K] = PICK(bm_mmp_q6_K_, vnni256);
#undef PICK
}

/* The avx512 level's 512-bit kernels over an avx2 table: the vnni level's float kernels and
 * its packed int8 kernels with vpdpbusd emulated exactly (bitwise the vnni results). Row
 * kernels and activation helpers stay avx2's (its int8 row kernels already are vpmaddubsw
 * sequences; the vnni ones are 256-bit too). */
static void fill_avx512(bm_kernels *k) {
    k->mm[BM_F32] = bm_mm_f32_avx512;
    k->mm[BM_F16] = bm_mm_f16_avx512;
    k->mm[BM_BF16] = __builtin_cpu_supports("avx512bf16") ? bm_mm_bf16_avx512bf16
                                                          : bm_mm_bf16_avx512;
    k->mmp[BM_Q8_0] = bm_mmp_q8_0_avx512;
    k->mmp[BM_Q4_0] = bm_mmp_q4_0_avx512;
    k->mmp[BM_Q5_0] = bm_mmp_q5_0_avx512;
    k->mmp[BM_Q4_K] = bm_mmp_q4_K_avx512;
    k->mmp[BM_Q5_K] = bm_mmp_q5_K_avx512;
    k->mmp[BM_Q6_K] = bm_mmp_q6_K_avx512;
}
#endif

static void fill(bm_kernels *k, int lvl) {
    memset(k, 0, sizeof *k);
    k->name = level_names[lvl];
    k->level = lvl;
    k->act_q8 = bm_act_q8_ref;
    k->dot_f32 = bm_dot_f32_ref;
    k->axpy_f32 = bm_axpy_f32_ref;
    k->swiglu = bm_k_swiglu_ref;
    k->rmsnorm = bm_k_rmsnorm_ref;
    k->att_chunk = bm_att_chunk_ref;
#ifdef BM_SIMD_ARM
    if (lvl == BM_LVL_NEON || lvl == BM_LVL_DOTPROD) fill_arm(k, lvl);
#endif
#ifdef BM_SIMD_X86
    if (lvl >= BM_LVL_AVX2 && lvl <= BM_LVL_AMX) {
        k->act_q8 = bm_act_q8_avx2;
        k->dot_f32 = bm_dot_f32_avx2;
        k->axpy_f32 = bm_axpy_f32_avx2;
        k->swiglu = bm_swiglu_avx2;
        k->rmsnorm = bm_rmsnorm_avx2;
        k->att_chunk = bm_att_chunk_avx2;
        k->mm[BM_F32] = bm_mm_f32_avx2;
        k->mm[BM_F16] = bm_mm_f16_avx2;
        k->mm[BM_BF16] = bm_mm_bf16_avx2;
        k->mm[BM_Q8_0] = bm_mm_q8_0_avx2;
        k->mm[BM_Q4_0] = bm_mm_q4_0_avx2;
        k->mm[BM_Q5_0] = bm_mm_q5_0_avx2;
        k->mm[BM_Q4_1] = bm_mm_q4_1_avx2;
        k->mm[BM_Q5_1] = bm_mm_q5_1_avx2;
        k->mm[BM_Q3_K] = bm_mm_q3_K_avx2;
        k->mm[BM_Q4_K] = bm_mm_q4_K_avx2;
        k->mm[BM_Q5_K] = bm_mm_q5_K_avx2;
        k->mm[BM_Q6_K] = bm_mm_q6_K_avx2;
        k->mmp[BM_Q4_0] = bm_mmp_q4_0_avx2;
        k->mmp[BM_Q5_0] = bm_mmp_q5_0_avx2;
        k->mmp[BM_Q4_K] = bm_mmp_q4_K_avx2;
        k->mmp[BM_Q5_K] = bm_mmp_q5_K_avx2;
        k->mmp[BM_Q6_K] = bm_mmp_q6_K_avx2;
        k->mm[BM_Q2_K] = bm_mm_q2_K_avx2;
        int8_acts(k);
    }
    if (lvl == BM_LVL_AVXVNNI) fill_avxvnni(k, false);
    if (lvl == BM_LVL_AVX512) fill_avx512(k);
    if (lvl >= BM_LVL_VNNI && lvl <= BM_LVL_AMX) {
        k->act_u8 = true;
        k->mm[BM_Q8_0] = bm_mm_q8_0_vnni;
        k->mm[BM_Q4_0] = bm_mm_q4_0_vnni;
        k->mm[BM_Q5_0] = bm_mm_q5_0_vnni;
        k->mm[BM_Q4_1] = bm_mm_q4_1_vnni;
        k->mm[BM_Q5_1] = bm_mm_q5_1_vnni;
        k->mm[BM_Q3_K] = bm_mm_q3_K_vnni;
        k->mm[BM_Q4_K] = bm_mm_q4_K_vnni;
        k->mm[BM_Q5_K] = bm_mm_q5_K_vnni;
        k->mm[BM_Q6_K] = bm_mm_q6_K_vnni;
        k->mm[BM_Q2_K] = bm_mm_q2_K_vnni;
        k->mmp[BM_Q8_0] = bm_mmp_q8_0_vnni;
        k->mmp[BM_Q4_0] = bm_mmp_q4_0_vnni;
        k->mmp[BM_Q5_0] = bm_mmp_q5_0_vnni;
        k->mmp[BM_Q4_K] = bm_mmp_q4_K_vnni;
        k->mmp[BM_Q5_K] = bm_mmp_q5_K_vnni;
        k->mmp[BM_Q6_K] = bm_mmp_q6_K_vnni;
        k->mm[BM_F32] = bm_mm_f32_vnni;
        k->mm[BM_F16] = bm_mm_f16_vnni;
        k->mm[BM_BF16] = __builtin_cpu_supports("avx512bf16") ? bm_mm_bf16_avx512bf16
                                                              : bm_mm_bf16_vnni;
    }
    if (lvl == BM_LVL_AMX) {
        k->mmp[BM_Q8_0] = bm_mmp_q8_0_amx;
        k->mmp[BM_Q4_0] = bm_mmp_q4_0_amx;
        k->mmp[BM_Q5_0] = bm_mmp_q5_0_amx;
        /* BF16 weights packed into B tiles only where the bf16 kernel passed its own check. */
        if (bm_amx_bf16_state() == BM_AMX_OK) k->mmp[BM_BF16] = bm_mmp_bf16_amx;
    }
#endif
}

static void init(void) {
    cpu_levels();
    for (int l = 0; l < BM_LVL_COUNT; l++)
        if (avail[l]) {
            fill(&tables[l], l);
            max_level = l;
        }
#ifdef BM_SIMD_X86
    if (avail[BM_LVL_VNNI]) {
        fill(&evex_twin, BM_LVL_AVX2);
        fill_avxvnni(&evex_twin, true);
        evex_twin.name = "avxvnni-evex";
        evex_twin.level = BM_LVL_AVXVNNI_EVEX;
        have_twin = true;
    }
#endif
    int lvl = max_level;
    const char *env = getenv("BM_KERNELS");
    if (env && *env)
        for (int l = 0; l < BM_LVL_COUNT; l++)
            if (!strcmp(env, level_names[l]))
                for (lvl = l < lvl ? l : lvl; !avail[lvl];) lvl--;
    current = &tables[lvl];
}

const bm_kernels *bm_kernels_get(void) {
    pthread_once(&once, init);
    return current;
}

int bm_kernels_max_level(void) {
    pthread_once(&once, init);
    return max_level;
}

const bm_kernels *bm_kernels_at(int lvl) {
    pthread_once(&once, init);
    if (lvl == BM_LVL_AVXVNNI_EVEX) return have_twin ? &evex_twin : NULL;
    return lvl >= 0 && lvl < BM_LVL_COUNT && avail[lvl] ? &tables[lvl] : NULL;
}

bool bm_kernels_set_level(int lvl) {
    const bm_kernels *k = bm_kernels_at(lvl);
    if (k) current = k;
    return k != NULL;
}

const char *bm_kernels_level_name(int lvl) {
    if (lvl == BM_LVL_AVXVNNI_EVEX) return "avxvnni-evex";
    return lvl >= 0 && lvl < BM_LVL_COUNT ? level_names[lvl] : "unknown";
}

const char *bm_kernels_name(void) { return bm_kernels_get()->name; }

static char summary[320];
static pthread_once_t summary_once = PTHREAD_ONCE_INIT;

static void summarize(void) {
    const bm_kernels *k = bm_kernels_get();
    size_t n = (size_t)snprintf(summary, sizeof summary, "%s (available:", k->name);
    for (int l = 0; l < BM_LVL_COUNT && n < sizeof summary; l++)
        if (avail[l]) n += (size_t)snprintf(summary + n, sizeof summary - n, " %s", level_names[l]);
#ifdef BM_SIMD_X86
    const int amx = bm_amx_state();
    if (n < sizeof summary && (amx == BM_AMX_NO_PERM || amx == BM_AMX_CHECK_FAILED))
        n += (size_t)snprintf(summary + n, sizeof summary - n, "; amx: %s", bm_amx_state_name(amx));
    if (n < sizeof summary && amx == BM_AMX_OK && bm_amx_bf16_state() == BM_AMX_CHECK_FAILED)
        n += (size_t)snprintf(summary + n, sizeof summary - n, "; amx-bf16: %s",
                              bm_amx_state_name(BM_AMX_CHECK_FAILED));
#endif
    if (n < sizeof summary) snprintf(summary + n, sizeof summary - n, ")");
}

const char *bm_kernels_summary(void) {
    pthread_once(&summary_once, summarize);
    return summary;
}

typedef struct peak_task {
    bool int8;
    int level;
    int64_t iters;
    double ops[512];
    double secs[512];
} peak_task;

static void peak_run(void *ctx, int ith, int nth) {
    peak_task *p = ctx;
    double t0 = bm_time_now(), ops = 0;
#ifdef BM_SIMD_X86
    if (p->level >= BM_LVL_VNNI) ops = p->int8 ? bm_probe_int8_vnni(p->iters)
                                               : bm_probe_fma_vnni(p->iters);
    else if (p->level == BM_LVL_AVX512)
        ops = p->int8 ? bm_probe_int8_avx512(p->iters) : bm_probe_fma_avx512(p->iters);
    else if (p->level == BM_LVL_AVXVNNI)
        ops = p->int8 ? bm_probe_int8_avxvnni(p->iters) : bm_probe_fma_avx2(p->iters);
    else ops = p->int8 ? bm_probe_int8_avx2(p->iters) : bm_probe_fma_avx2(p->iters);
#endif
    p->ops[ith] = ops;
    p->secs[ith] = bm_time_now() - t0;
}

/* Every pool thread runs the probe at once (so shared clocks, power and any SMT sibling count
 * as they do in a matmul); a round's rate is the sum of the threads' rates; the result is the
 * best of 5 rounds (each ~15-30 ms) after a longer warm-up round that lets clocks ramp, so a
 * round slowed by another process on a shared machine does not lower the peak. */
double bm_kernels_peak_gops(bm_pool *pool, bool int8) {
    static peak_task p; /* large; benchmarks call this from one thread */
    const int nth = bm_pool_n_threads(pool) < 512 ? bm_pool_n_threads(pool) : 512;
    p.int8 = int8;
    p.level = bm_kernels_get()->level;
    if (p.level == BM_LVL_AVXVNNI_EVEX) p.level = BM_LVL_VNNI; /* test twin: its CPU has vnni */
    if (p.level == BM_LVL_REF) return 0;
    p.iters = 1 << 23;
    bm_pool_run(pool, peak_run, &p, nth); /* warm-up */
    p.iters = 1 << 22;
    double best = 0;
    for (int round = 0; round < 5; round++) {
        bm_pool_run(pool, peak_run, &p, nth);
        double total = 0;
        for (int i = 0; i < nth; i++) total += p.secs[i] > 0 ? p.ops[i] / p.secs[i] : 0;
        if (total > best) best = total;
    }
    return best / 1e9;
}

bool bm_kernels_use(const char *name) {
    for (int l = 0; l < BM_LVL_COUNT; l++)
        if (name && !strcmp(name, level_names[l])) return bm_kernels_set_level(l);
    return false;
}
