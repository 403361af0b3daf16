/* Whether the AMX level may be used: cpuid (leaf 7: AMX-TILE EDX bit 24, AMX-INT8 bit 25, plus
 * AVX-512 VNNI for the kernels' float part and fallback; AMX-BF16 bit 22 for the bf16 kernel), the Linux permission for the tile
 * data state (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), confirmed with
 * ARCH_GET_XCOMP_PERM), then a self-check of the AMX kernels against the scalar reference on
 * small exact cases, first in a forked child (a kernel that faults cannot take the process
 * down), so a kernel that is wrong on some CPU falls back to vnni instead of giving wrong
 * answers. The bf16 kernel is checked the same way, in its own child, after the int8 ones pass:
 * failing it only keeps BF16 weights on the vnni / avx512bf16 kernels. BM_KERNELS set to a lower
 * level skips all of it. Built with baseline flags (calls
 * the AMX kernels only after the checks). */
#include "tensor/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(BM_NO_SIMD) && defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#define AMX_POSSIBLE 1
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#endif

static int amx_state = BM_AMX_NO_CPU;
static int amx_bf16_state = BM_AMX_NO_CPU;

/* ---- self-check ------------------------------------------------------------------------- */

#define SC_IN 64  /* two blocks */
#define SC_OUT 20 /* one full row group and one of 4 rows */
#define SC_TOK 17 /* one full 16-token tile and one token left for the fallback */
#define SC_GROUPS ((SC_OUT + BM_PACK_ROWS - 1) / BM_PACK_ROWS)
#define SC_ROW_MAX (SC_IN / BM_QK * 34) /* bytes of a Q8_0 row, the largest of the three */

static uint32_t sc_next(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Raw rows of type with codes whose values lie in [-16, 15] and scales 2^-e (e = 0..3): with
 * activation codes in [-127, 127] and scales 2^-e, every block sum is below 2^16 in magnitude
 * and a multiple of 2^-6 once scaled, so the two-block sums are exact in float. */
static void sc_rows(bm_dtype type, uint8_t *w, size_t rb, uint32_t *seed) {
    for (int64_t r = 0; r < SC_OUT; r++)
        for (int64_t b = 0; b < SC_IN / BM_QK; b++) {
            uint8_t *blk = w + (size_t)r * rb + (size_t)b * (rb / (SC_IN / BM_QK));
            const uint16_t d = bm_f32_to_f16(1.0f / (float)(1u << (sc_next(seed) % 4)));
            memcpy(blk, &d, 2);
            if (type == BM_Q8_0) {
                for (int j = 0; j < BM_QK; j++)
                    blk[2 + j] = (uint8_t)(int8_t)((int)(sc_next(seed) % 32) - 16);
            } else if (type == BM_Q4_0) {
                for (int j = 0; j < BM_QK / 2; j++) blk[2 + j] = (uint8_t)sc_next(seed);
            } else { /* Q5_0: qh[4], then the nibbles */
                for (int j = 0; j < 4 + BM_QK / 2; j++) blk[2 + j] = (uint8_t)sc_next(seed);
            }
        }
}

static bool sc_type(bm_dtype type, bm_mm_fn fn) {
    size_t rb;
    const size_t gb = bm_pack_group_bytes(type, SC_IN);
    _Alignas(64) uint8_t packed[SC_GROUPS * 1152];
    uint8_t w[SC_OUT * SC_ROW_MAX], xq[SC_TOK * SC_IN];
    float xd[SC_TOK * (SC_IN / BM_QK)], y[SC_TOK * SC_OUT], yr[SC_TOK * SC_OUT];
    int32_t xs[SC_TOK * (SC_IN / BM_QK)];
    if (!fn || !bm_row_bytes(type, SC_IN, &rb) || rb > SC_ROW_MAX || gb == 0 ||
        gb * SC_GROUPS > sizeof packed)
        return false;
    uint32_t seed = 12345u + (uint32_t)type;
    sc_rows(type, w, rb, &seed);
    for (int64_t g = 0; g < SC_GROUPS; g++)
        bm_pack_group(type, w, rb, SC_IN, SC_OUT, g, packed + (size_t)g * gb);
    for (int64_t t = 0; t < SC_TOK; t++)
        for (int64_t b = 0; b < SC_IN / BM_QK; b++) {
            int32_t s = 0;
            for (int j = 0; j < BM_QK; j++) {
                const int v = (int)(sc_next(&seed) % 255) - 127;
                xq[t * SC_IN + b * BM_QK + j] = (uint8_t)(int8_t)v;
                s += v;
            }
            xs[t * (SC_IN / BM_QK) + b] = s;
            xd[t * (SC_IN / BM_QK) + b] = 1.0f / (float)(1u << (sc_next(&seed) % 4));
        }
    bm_mm_args a;
    memset(&a, 0, sizeof a);
    a.row_bytes = rb;
    a.n_in = SC_IN;
    a.n_tok = SC_TOK;
    a.xq = xq;
    a.xd = xd;
    a.xs = xs;
    a.ldq = SC_IN;
    a.ldd = SC_IN / BM_QK;
    a.ldy = SC_OUT;
    a.w = w;
    a.y = yr;
    bm_mm_q8_ref(type, &a, false, 0, SC_OUT);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) y[i] = -1e30f;
    a.w = packed;
    a.y = y;
    fn(&a, 0, SC_OUT);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        if (!(y[i] == yr[i])) return false;
    return true;
}

bool bm_amx_selfcheck(bm_mm_fn q8_0, bm_mm_fn q4_0, bm_mm_fn q5_0) {
    return sc_type(BM_Q8_0, q8_0) && sc_type(BM_Q4_0, q4_0) && sc_type(BM_Q5_0, q5_0);
}

/* ---- bf16 self-check -------------------------------------------------------------------- */

#define SB_IN 72  /* two whole 32-column blocks and a tail of 8 */
#define SB_OUT 20 /* one full row group and one of 4 rows */
#define SB_TOK 17 /* one full 16-token tile and one token */
#define SB_NKB ((SB_IN + 31) / 32)

static float sb_bf16(float v) { return bm_bf16_to_f32(bm_f32_to_bf16(v)); }

/* A float of magnitude [1, 2) * 2^-e, random sign and low bits. */
static float sb_mag(uint32_t *seed, int e) {
    const float m = 1.0f + (float)(sc_next(seed) & 0xFFFFF) / 1048576.0f;
    return ldexpf(sc_next(seed) & 1 ? -m : m, -e);
}

/* One case of bm_amx_selfcheck_bf16 (kernels.h): exact (small integer weights, the sums over
 * bf16-rounded activations exact in float) or bounded (general values). */
static bool sb_case(bm_mm_fn fn, bool exact, uint32_t seed) {
    uint16_t w[SB_OUT * SB_IN];
    float x[SB_TOK * SB_IN], y[SB_TOK * SB_OUT];
    _Alignas(64) uint8_t packed[2 * SB_NKB * 1024];
    for (int i = 0; i < SB_OUT * SB_IN; i++) {
        const float v = exact ? (float)((int)(sc_next(&seed) % 17) - 8)
                              : sb_mag(&seed, (int)(sc_next(&seed) % 7) - 3);
        w[i] = bm_f32_to_bf16(v);
    }
    for (int i = 0; i < SB_TOK * SB_IN; i++)
        x[i] = sc_next(&seed) % 8 == 0 ? 0.0f : sb_mag(&seed, 1 + (int)(sc_next(&seed) % 6));
    const size_t gb = bm_pack_group_bytes(BM_BF16, SB_IN);
    if (gb != SB_NKB * 1024) return false;
    for (int64_t g = 0; g < 2; g++)
        bm_pack_group(BM_BF16, (const uint8_t *)w, 2 * SB_IN, SB_IN, SB_OUT, g, packed + g * gb);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) y[i] = -1e30f;
    bm_mm_args a;
    memset(&a, 0, sizeof a);
    a.w = packed;
    a.row_bytes = 2 * SB_IN;
    a.n_in = SB_IN;
    a.n_tok = SB_TOK;
    a.x = x;
    a.y = y;
    a.ldy = SB_OUT;
    fn(&a, 0, SB_OUT);
    /* Tokens 5..7 alone (tiles of 3 rows, as in decode) and rows 16..19 alone: bitwise the
     * same outputs (batch and chunk invariance on this CPU). */
    float y3[3 * SB_OUT];
    for (size_t i = 0; i < sizeof y3 / sizeof y3[0]; i++) y3[i] = -1e30f;
    a.n_tok = 3;
    a.x = x + 5 * SB_IN;
    a.y = y3;
    fn(&a, 16, SB_OUT);
    for (int t = 0; t < 3; t++)
        if (memcmp(y3 + t * SB_OUT + 16, y + (5 + t) * SB_OUT + 16, 4 * sizeof(float)))
            return false;
    for (int t = 0; t < SB_TOK; t++)
        for (int r = 0; r < SB_OUT; r++) {
            double sr = 0, s = 0, mag = 0;
            for (int i = 0; i < SB_IN; i++) {
                const double wv = bm_bf16_to_f32(w[r * SB_IN + i]), xv = x[t * SB_IN + i];
                sr += wv * sb_bf16((float)xv);
                s += wv * xv;
                mag += fabs(wv * xv);
            }
            const double got = y[t * SB_OUT + r];
            if (exact ? !(got == sr)
                      : !(fabs(got - s) <= (0x1p-8 + (SB_IN + 64) * 0x1p-24 * (1 + 0x1p-8)) * mag))
                return false;
        }
    return true;
}

bool bm_amx_selfcheck_bf16(bm_mm_fn bf16) {
    return bf16 && sb_case(bf16, true, 777u) && sb_case(bf16, false, 778u);
}

/* ---- probe ------------------------------------------------------------------------------ */

int bm_amx_probe(void) {
#ifdef AMX_POSSIBLE
    const char *env = getenv("BM_KERNELS");
    if (env && *env && strcmp(env, "amx") != 0) return amx_state = BM_AMX_OFF;
    unsigned ea, eb, ec, ed;
    __builtin_cpu_init();
    if (!__get_cpuid_count(7, 0, &ea, &eb, &ec, &ed) || !((ed >> 24) & 1) || !((ed >> 25) & 1) ||
        !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512vnni"))
        return amx_state = BM_AMX_NO_CPU;
    unsigned long perm = 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 ||
        syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm) != 0 ||
        !(perm & (1ul << XFEATURE_XTILEDATA)))
        return amx_state = BM_AMX_NO_PERM;
    /* First in a child process: a tile configuration or encoding this CPU rejects (never run
     * on real AMX hardware here) then kills only the child, and the level falls back. */
    const pid_t pid = fork();
    if (pid == 0)
        _exit(bm_amx_selfcheck(bm_mmp_q8_0_amx, bm_mmp_q4_0_amx, bm_mmp_q5_0_amx) ? 0 : 1);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return amx_state = BM_AMX_CHECK_FAILED;
    if (!bm_amx_selfcheck(bm_mmp_q8_0_amx, bm_mmp_q4_0_amx, bm_mmp_q5_0_amx))
        return amx_state = BM_AMX_CHECK_FAILED;
    amx_state = BM_AMX_OK;
    /* The bf16 kernel on its own (AMX-BF16: EDX bit 22), again first in a child. */
    if ((ed >> 22) & 1) {
        const pid_t pb = fork();
        if (pb == 0) _exit(bm_amx_selfcheck_bf16(bm_mmp_bf16_amx) ? 0 : 1);
        amx_bf16_state = pb >= 0 && waitpid(pb, &status, 0) == pb && WIFEXITED(status) &&
                                 WEXITSTATUS(status) == 0 &&
                                 bm_amx_selfcheck_bf16(bm_mmp_bf16_amx)
                             ? BM_AMX_OK
                             : BM_AMX_CHECK_FAILED;
    }
    return amx_state;
#else
    return amx_state = BM_AMX_NO_CPU;
#endif
}

int bm_amx_state(void) { return amx_state; }

int bm_amx_bf16_state(void) { return amx_bf16_state; }

const char *bm_amx_state_name(int state) {
    switch (state) {
    case BM_AMX_NO_CPU: return "CPU lacks AMX-TILE/AMX-INT8/AVX-512 VNNI";
    case BM_AMX_NO_PERM: return "the OS did not grant the AMX tile state (arch_prctl)";
    case BM_AMX_CHECK_FAILED: return "AMX kernels failed the self-check; using vnni";
    case BM_AMX_OK: return "AMX in use";
    case BM_AMX_OFF: return "AMX not probed (BM_KERNELS below amx)";
    default: return "unknown";
    }
}
