/* Internal kernel table: one matmul kernel per weight dtype for the selected ISA level, the
 * activation format each one consumes (f32 rows, or blocks of 32 int8 codes with a float scale
 * quantized once per bm_matmul call), and the scalar references the fast kernels are tested
 * against. Filled once from cpuid by dispatch.c; not part of the public API. */
#ifndef BAIMO_TENSOR_KERNELS_H
#define BAIMO_TENSOR_KERNELS_H

#include "baimo/tensor.h"

/* ISA levels. Each implies the ones before it except avxvnni (AVX2 + VEX-encoded 256-bit
 * vpdpbusd, e.g. Alder Lake), which CPUs with AVX-512 may lack, and avx512 (AVX-512
 * F/BW/VL/DQ, e.g. Skylake-SP/X/W, Cannon Lake: the vnni level's 512-bit kernels with
 * vpdpbusd emulated exactly by vpmaddubsw + vpmaddwd), which AVX-VNNI CPUs may lack: a level
 * is available when the CPU has it (bm_kernels_at), the best available one is used (vnni over
 * avx512 and avxvnni where the CPU has it). amx (tile int8 packed kernels on top of vnni) only
 * when the tile state is granted and the self-check passes (x86/amx_check.c). The AArch64
 * levels come after the x86 ones (never available on x86, and the x86 ones never on
 * AArch64): neon (Advanced SIMD, baseline on AArch64) and dotprod (neon plus sdot,
 * FEAT_DotProd, from getauxval(AT_HWCAP)). */
enum {
    BM_LVL_REF = 0,
    BM_LVL_AVX2 = 1,
    BM_LVL_AVXVNNI = 2,
    BM_LVL_AVX512 = 3,
    BM_LVL_VNNI = 4,
    BM_LVL_AMX = 5,
    BM_LVL_NEON = 6,
    BM_LVL_DOTPROD = 7,
    BM_LVL_COUNT = 8
};

/* Which family of SIMD kernels this build has (none with BM_NO_SIMD or on other targets). */
#if !defined(BM_NO_SIMD) && defined(__x86_64__)
#define BM_SIMD_X86 1
#elif !defined(BM_NO_SIMD) && defined(__aarch64__)
#define BM_SIMD_ARM 1
#endif
/* Test-only table id: the avxvnni table with every kernel built from the same sources with the
 * EVEX encoding of vpdpbusd (AVX512VL + AVX512_VNNI), so those sources are tested and measured
 * on CPUs with AVX-512 VNNI but not AVX-VNNI. bm_kernels_at and bm_kernels_set_level accept it
 * on CPUs with AVX-512 VNNI; bm_kernels_max_level, BM_KERNELS and bm_kernels_use never pick it. */
enum { BM_LVL_AVXVNNI_EVEX = 16 };

/* Activation formats. */
enum {
    BM_ACT_F32 = 0, /* the caller's x as is */
    BM_ACT_Q8 = 1,  /* per token: n_in/32 blocks of 32 int8 codes, float d (x ~ d * q) */
    BM_ACT_Q8S = 2  /* BM_ACT_Q8 with the codes always signed (packed kernels) */
};

/* Arguments of one matmul kernel call over weight rows [r0, r1) and every token. */
typedef struct bm_mm_args {
    const uint8_t *w;   /* weight rows of n_in elements, row stride row_bytes */
    size_t row_bytes;
    int64_t n_in;
    int64_t n_tok;
    const float *x;     /* BM_ACT_F32: [n_tok, n_in] */
    const uint8_t *xq;  /* BM_ACT_Q8: codes [n_tok, ldq] (offset by +128 when act_u8) */
    const float *xd;    /* BM_ACT_Q8: scales [n_tok, ldd], one per 32 codes */
    const int32_t *xs;  /* BM_ACT_Q8: sum of the (signed) codes per block [n_tok, ldd] */
    const float *xm;    /* BM_ACT_Q8: xd * (float)xs per block (the mins term) [n_tok, ldd] */
    int64_t ldq, ldd;
    float *y;           /* [n_tok, ldy] */
    int64_t ldy;
} bm_mm_args;

typedef void (*bm_mm_fn)(const bm_mm_args *a, int64_t r0, int64_t r1);
/* Quantizes rows [t0, t1) of x [.., n_in] into the BM_ACT_Q8 arrays of a (n_in % 32 == 0). */
typedef void (*bm_act_q8_fn)(const float *x, int64_t n_in, int64_t t0, int64_t t1,
                             const bm_mm_args *a, bool u8);

/* ---- attention chunk kernel (contract of model/attention.c's fused attention) ------------
 * Keys are processed in chunks of BM_ATT_CHUNK absolute positions ([0,256), [256,512), ...):
 * the partial softmax state of a chunk depends only on the query row and the keys in it. One
 * call: n_tok tokens x G query heads (the heads sharing a KV head) = n_tok * G rows, row
 * r = t * G + g, against the keys of one chunk; token t sees the first n_key[t] of them (its
 * causal limit, so consecutive prefill tokens share one call). With s[r][j] = scale * q_r . k_j
 * over j < n_key[t]: m[r] = max_j s[r][j], l[r] = sum_j exp(s[r][j] - m[r]),
 * o[r] = sum_j exp(s[r][j] - m[r]) v_j. Every variant computes one row's result from its query
 * and its own keys only, in a fixed order over the keys: bitwise the same whatever n_tok, G,
 * the row's slot and the other rows' n_key. */
#define BM_ATT_CHUNK 256
typedef struct bm_att_chunk {
    const float *q;                      /* row (t, g) at q + t * ldq + g * hd */
    int64_t ldq;
    /* One pointer per block of blk keys covering the chunk: K transposed (element d of key j
     * at kb[j / blk][d * blk + j % blk]), V by key (element d at vb[j / blk][(j % blk) * ld
     * + d]). Slots past a block's last key may hold anything (a NaN included): a variant may
     * compute scores from them but never lets them reach m, l or o. */
    const float *const *kb, *const *vb;
    int64_t ld;                          /* row stride of V inside a block */
    int blk;                             /* keys per block (the KV cache's block size) */
    int n_tok, G, hd;
    const int *n_key;                    /* [n_tok], each 1..BM_ATT_CHUNK */
    float scale;
    float *s;                            /* scratch [n_tok * G, BM_ATT_CHUNK] */
    float *m, *l;                        /* [n_tok * G] */
    float *o;                            /* [n_tok * G, hd] */
} bm_att_chunk;
typedef void (*bm_att_chunk_fn)(const bm_att_chunk *a);
/* Rows (n_tok * G) the SIMD chunk kernels take per call; more go to the reference. */
#define BM_ATT_ROWS_MAX 256
/* Each row's query and key count, once per call (not a division by G per row and key group):
 * qp[r], nkr[r] for r < n_tok * G <= BM_ATT_ROWS_MAX. */
static inline void bm_att_rows(const bm_att_chunk *a, const float **qp, int *nkr) {
    for (int t = 0, r = 0; t < a->n_tok; t++)
        for (int g = 0; g < a->G; g++, r++) {
            qp[r] = a->q + (size_t)t * a->ldq + (size_t)g * a->hd;
            nkr[r] = a->n_key[t];
        }
}
/* Scalar reference: in-order dot products and sums, expf. */
void bm_att_chunk_ref(const bm_att_chunk *a);

typedef struct bm_kernels {
    const char *name;
    int level;
    bool act_u8;              /* Q8 activation codes stored as q + 128 (for vpdpbusd) */
    bm_act_q8_fn act_q8;
    bm_mm_fn mm[BM_DTYPE_COUNT];   /* NULL: the f32 reference bm_k_matmul_ref */
    uint8_t act[BM_DTYPE_COUNT];   /* BM_ACT_* consumed by mm[t] */
    /* Kernels over weights repacked by bm_tensor_pack (a->w = the packed buffer, rows r0 a
     * multiple of BM_PACK_ROWS); they consume BM_ACT_Q8S, except BF16's, which takes the f32
     * rows (BM_ACT_F32) and rounds them itself. NULL: no packed layout. */
    bm_mm_fn mmp[BM_DTYPE_COUNT];
    /* Attention helpers: sum a[i] b[i]; y[i] += s x[i] (fixed order per level). */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    void (*axpy_f32)(float s, const float *x, float *y, int64_t n);
    /* y[i] = g[i] / (1 + exp(-g[i])) * u[i] (y may be g). */
    void (*swiglu)(const float *g, const float *u, float *y, int64_t n);
    /* RMS norm as bm_k_rmsnorm_ref (sum of squares in double; y may be x). */
    void (*rmsnorm)(const float *x, const float *w, float *y, int64_t n, float eps);
    /* One attention chunk (struct bm_att_chunk below). */
    bm_att_chunk_fn att_chunk;
} bm_kernels;


/* The table in use (filled on first call). Thread-safe. */
const bm_kernels *bm_kernels_get(void);
/* Highest level this CPU (and build) supports, ignoring BM_KERNELS. */
int bm_kernels_max_level(void);
/* Table of level lvl, for tests and benchmarks; NULL when the CPU (or build) lacks it (a level
 * below bm_kernels_max_level() can be missing: avxvnni on CPUs with AVX-512 only). */
const bm_kernels *bm_kernels_at(int lvl);
/* Makes level lvl the one bm_matmul uses (tests, benchmarks; not thread-safe with running
 * matmuls). Returns false when the CPU lacks it. */
bool bm_kernels_set_level(int lvl);
const char *bm_kernels_level_name(int lvl);

/* Most matrices bm_matmul_multi takes at once. */
#define BM_MM_MULTI_MAX 4
/* ys[i] = x ws[i]^T for n matrices (1..BM_MM_MULTI_MAX) with the same input x [n_tok, n_in]:
 * the activations are quantized once and all row chunks of all matrices go to one pool run.
 * Each output equals what bm_matmul gives for that matrix alone, bitwise. scratch as for
 * bm_matmul. Falls back to one call per matrix when a matrix has no fast kernel or another
 * n_in. */
void bm_matmul_multi(bm_pool *pool, int n, const bm_tensor *const *ws, const float *x,
                     int64_t n_tok, float *const *ys, void *scratch);

/* ---- packed weights (repack.c) ----------------------------------------------------------
 * Rows are grouped by BM_PACK_ROWS (16; the last group padded with zero rows). A group holds,
 * for each 32-element block b in order, the codes of its 16 rows interleaved by 4 columns:
 * byte (c * 16 + i) * 4 + j = row i, column b * 32 + 4 c + j (c = 0..7), so that one 64-byte
 * vector holds 4 consecutive columns of all 16 rows;
 *   Q8_0: 512 bytes per block, codes stored + 128 (unsigned);
 *   Q4_0: 256 bytes per block, the 4-bit codes (0..15, value code - 8) of column quads 2 c' and
 *         2 c' + 1 in the low and high nibble of 64-byte vector c' (c' = 0..3);
 *   Q5_0: 320 bytes per block, the low 4 bits as Q4_0, then a 64-byte plane of fifth bits:
 *         byte i * 4 + j, bit c = fifth bit of row i, column 4 c + j (value code - 16);
 * followed by all the group's scales: nb x 16 f16 (block b, row i at b * 16 + i), the group
 * padded to a multiple of 64 bytes. Sizes equal the original rows' (18, 22 and 34 bytes per row
 * and block) up to that padding.
 * The K types are packed super-block by super-block (256 columns, each a whole number of 64-byte
 * lines, so every group stays aligned):
 *   Q4_K (2368 bytes = 148 per row vs 144): the 8 sub-blocks' codes (0..15) in the Q4_0 nibble
 *         layout (256 bytes each), then d[16] and dmin[16] (f16, row i at i), then the 6-bit
 *         scales sc[8][16] and mins m[8][16] as bytes (sub-block j, row i at j * 16 + i); value
 *         = d * sc * q - dmin * m;
 *   Q5_K (2880 bytes = 180 per row vs 176): per 32-column sub-block j, 320 bytes: the low 4
 *         bits of the codes in the Q4_0 nibble layout (256 bytes), then a 64-byte plane of
 *         fifth bits as Q5_0's (byte i * 4 + l, bit c = fifth bit of row i, column 4 c + l of
 *         the sub-block); then d[16], dmin[16], sc[8][16], m[8][16] as in Q4_K; value
 *         = d * sc * q - dmin * m, q = 0..31;
 *   Q6_K (3392 bytes = 212 per row vs 210): per 32-column block j, 384 bytes: the low 4 bits of
 *         the codes in the Q4_0 nibble layout (256 bytes), then the high 2 bits as two vectors
 *         h = 0, 1 of 4 column quads each (byte (h * 16 + i) * 4 + l holds, for row i, the high
 *         bits of column 16 h + 4 k + l at bits 4-5, 6-7, 0-1, 2-3 for k = 0..3); then the
 *         int8 scales[16][16] (16-column group e, row i at e * 16 + i), then d[16] as f32;
 *         value = d * scale * (q - 32).
 * BF16 (only packed at levels with a packed BF16 kernel, amx with AMX-BF16): per 32-column
 *   block kb (n_in padded with zero columns to a multiple of 32), 1024 bytes: the AMX B-tile
 *   ("VNNI") layout, 16 lines of 64 bytes, line p holding the column pair (32 kb + 2p,
 *   32 kb + 2p + 1) of the 16 rows: byte (p * 16 + i) * 4 + 2 j = row i, column 32 kb + 2p + j
 *   (bf16 as stored). No scales. For BF16 bm_pack_get_block's "block" is one column (the
 *   type's block of 1 element, 2 bytes). */
#define BM_PACK_Q4_K_SB 2368
#define BM_PACK_Q5_K_SB 2880
#define BM_PACK_Q6_K_SB 3392
/* Bytes of one packed group of n_in columns (0 when type has no packed layout). */
size_t bm_pack_group_bytes(bm_dtype type, int64_t n_in);
/* Packs rows [g * 16, g * 16 + 16) of w (row stride row_bytes, n_rows in all) into dst. */
void bm_pack_group(bm_dtype type, const uint8_t *w, size_t row_bytes, int64_t n_in,
                   int64_t n_rows, int64_t g, uint8_t *dst);
/* Writes block b (32 columns; 256 for the K types) of row i (0..15) of the packed group grp
 * back in its GGUF layout: the exact inverse of bm_pack_group, so dequantizing it gives the
 * original row's values bitwise. */
void bm_pack_get_block(bm_dtype type, const uint8_t *grp, int64_t n_in, int64_t i, int64_t b,
                       uint8_t *blk);
/* A buffer for packed weights: 2 MiB aligned and a whole number of 2 MiB pages, advised
 * MADV_HUGEPAGE, so transparent huge pages back all of it (fewer page faults while packing,
 * fewer TLB misses while streaming it); free() it. NULL when out of memory. */
void *bm_pack_alloc(size_t bytes);

/* ---- scalar references of the quantized-activation path (act_quant.c) ------------------ */

/* Scalar activation quantization: per block of 32, d = amax/127, q = round-to-nearest-even
 * (x * (1/d)), 0 codes when amax == 0. Codes stored +128 when u8. */
void bm_act_q8_ref(const float *x, int64_t n_in, int64_t t0, int64_t t1, const bm_mm_args *a,
                   bool u8);
/* y[t, r] = sum_b d_w[r,b] * d_x[t,b] * (integer dot of block b), summed over b in order in
 * double: the exact value every Q8-activation kernel approximates to float rounding. Weight
 * types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (K types: per 32-element
 * sub-block, the 16-element integer scales folded into the integer dot; Q2_K's per-16 integer
 * mins give a second integer dot per sub-block, scaled by -dmin). */
void bm_mm_q8_ref(bm_dtype wt, const bm_mm_args *a, bool u8, int64_t r0, int64_t r1);

/* Scalar attention helpers (in order, one accumulator). */
float bm_dot_f32_ref(const float *a, const float *b, int64_t n);
void bm_axpy_f32_ref(float s, const float *x, float *y, int64_t n);

/* ---- AMX availability (x86/amx_check.c) ------------------------------------------------ */
enum {
    BM_AMX_NO_CPU = 0,
    BM_AMX_NO_PERM = 1,
    BM_AMX_CHECK_FAILED = 2,
    BM_AMX_OK = 3,
    BM_AMX_OFF = 4 /* not probed: BM_KERNELS names a lower level */
};
/* Once, by dispatch: cpuid (AMX-TILE, AMX-INT8, AVX-512 VNNI), the Linux permission for the
 * tile state (arch_prctl ARCH_REQ_XCOMP_PERM), then bm_amx_selfcheck on the AMX kernels.
 * Returns BM_AMX_OK only when all three pass. With AMX-BF16 too, the bf16 kernel is then
 * checked on its own (bm_amx_bf16_state); its failure leaves the int8 kernels in use. With
 * BM_KERNELS set to a level below amx nothing is probed or run (a way around AMX kernels that
 * would fault on some CPU). */
int bm_amx_probe(void);
/* What bm_amx_probe found (BM_AMX_NO_CPU before it ran). */
int bm_amx_state(void);
const char *bm_amx_state_name(int state);
/* Small packed Q8_0, Q4_0 and Q5_0 matmuls (two row groups, the second partial; 17 tokens: one
 * full tile and one left over) through the given packed kernels against bm_mm_q8_ref; scales
 * are powers of two and codes small, so every float step is exact and the results must be
 * equal. True when all agree. */
bool bm_amx_selfcheck(bm_mm_fn q8_0, bm_mm_fn q4_0, bm_mm_fn q5_0);
/* The packed BF16 kernel fn (72 columns: two whole 32-column blocks and a tail of 8; 20 rows;
 * 17 tokens) against double references: (1) weights small integers, activations in
 * +-[2^-6, 1) with random low bits: each sum over the activations rounded to bf16 (round to
 * nearest even) is exact in float in any order, so the result must equal it; (2) general
 * weights and activations: |y - sum w x| <= (2^-8 + (n_in + 64) 2^-24 (1 + 2^-8)) sum |w x|,
 * 2^-8 for the bf16 rounding of each activation, the second term for float accumulation in
 * any order; and tokens 5..7 with rows 16..19 alone give the same bits. True when all hold. */
bool bm_amx_selfcheck_bf16(bm_mm_fn bf16);
/* What bm_amx_probe found for the bf16 kernel: BM_AMX_NO_CPU without AMX-BF16 (CPUID.(7,0):
 * EDX[22]) or without the int8 level, BM_AMX_CHECK_FAILED, or BM_AMX_OK (then the amx level's
 * mmp[BM_BF16] is bm_mmp_bf16_amx). */
int bm_amx_bf16_state(void);

/* ---- per-ISA kernels (src/tensor/arm/, AArch64) ---------------------------------------- */
#ifdef BM_SIMD_ARM
/* neon level (mm_neon.c, mmk_neon.c): activation codes signed (act_u8 false), quantizer
 * bitwise equal to bm_act_q8_ref; integer block dots with vmull_s8/vpadalq_s16. */
void bm_act_q8_neon(const float *x, int64_t n_in, int64_t t0, int64_t t1, const bm_mm_args *a,
                    bool u8);
float bm_dot_f32_neon(const float *a, const float *b, int64_t n);
void bm_axpy_f32_neon(float s, const float *x, float *y, int64_t n);
void bm_rmsnorm_neon(const float *x, const float *w, float *y, int64_t n, float eps);
/* SwiGLU with a polynomial exp (relative error a few ulps over [-87, 88]; clamped outside). */
void bm_swiglu_neon(const float *g, const float *u, float *y, int64_t n);
void bm_mm_f32_neon(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_f16_neon(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q8_0_neon(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_0_neon(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_0_neon(const bm_mm_args *a, int64_t r0, int64_t r1);
/* Q4_1, Q5_1 and the K formats (mmk_arm_k.h in mmk_neon.c / mmk_dotprod.c). */
#define BM_ARM_MM_DECL(suf)                                                                  \
    void bm_mm_q4_1_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);                      \
    void bm_mm_q5_1_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);                      \
    void bm_mm_q2_K_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);                      \
    void bm_mm_q3_K_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);                      \
    void bm_mm_q4_K_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);                      \
    void bm_mm_q5_K_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);                      \
    void bm_mm_q6_K_##suf(const bm_mm_args *a, int64_t r0, int64_t r1);
BM_ARM_MM_DECL(neon)
/* dotprod level (mmk_dotprod.c, -march=armv8.2-a+dotprod): the same row kernels with sdot. */
void bm_mm_q8_0_dotprod(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_0_dotprod(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_0_dotprod(const bm_mm_args *a, int64_t r0, int64_t r1);
BM_ARM_MM_DECL(dotprod)
#undef BM_ARM_MM_DECL
/* Attention chunk kernel of both levels (att_neon.c): 4-lane fma chains; the scalar
 * reference when hd % 16 != 0. */
void bm_att_chunk_neon(const bm_att_chunk *a);
#endif

/* ---- per-ISA kernels (src/tensor/x86/) ------------------------------------------------- */
#ifdef BM_SIMD_X86
void bm_act_q8_avx2(const float *x, int64_t n_in, int64_t t0, int64_t t1, const bm_mm_args *a,
                    bool u8);
float bm_dot_f32_avx2(const float *a, const float *b, int64_t n);
void bm_axpy_f32_avx2(float s, const float *x, float *y, int64_t n);
/* SwiGLU with the polynomial exp8 of wblock.h (relative error ~1e-7 over [-87.3, 88]). */
void bm_swiglu_avx2(const float *g, const float *u, float *y, int64_t n);
void bm_rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, float eps);
void bm_mm_f32_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_f16_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_bf16_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q8_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_1_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_1_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q3_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q6_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q2_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_1_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_1_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q3_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q6_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q2_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q8_0_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_0_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_0_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
/* AVX-VNNI: the 256-bit vnni kernels above with VEX-encoded vpdpbusd (mmk_avxvnni.c,
 * mm_q2k_avxvnni.c), and packed kernels over two 8-row halves (mmp_avxvnni.c); _vnni256: the
 * same packed source with EVEX encoding (tests and benchmarks on CPUs without AVX-VNNI). */
void bm_mm_q8_0_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_0_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_0_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_1_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_1_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q3_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q4_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q5_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q6_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_q2_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q8_0_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_0_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_0_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q8_0_vnni256(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_0_vnni256(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_0_vnni256(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_0_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
/* Packed K-quant kernels over two 8-row halves (mmpk256.h), same three builds. */
void bm_mmp_q4_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q6_K_avx2(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q6_K_avxvnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_K_vnni256(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_K_vnni256(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q6_K_vnni256(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q8_0_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_0_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_0_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q6_K_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
/* AMX tiles for whole 16-token tiles, the rest through the _vnni kernel: bitwise the _vnni
 * kernel's results (mmp_amx.c, mmp_amx.h). Need the tile permission (bm_amx_probe). */
void bm_mmp_q8_0_amx(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_0_amx(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_0_amx(const bm_mm_args *a, int64_t r0, int64_t r1);
/* AMX-BF16 tiles (TDPBF16PS) over packed BF16 weights for every n_tok, f32 activations rounded
 * to bf16 as bm_f32_to_bf16 (mmp_amx.c, mmp_amx_bf16.h). Needs bm_amx_bf16_state() OK. */
void bm_mmp_bf16_amx(const bm_mm_args *a, int64_t r0, int64_t r1);
/* 512-bit float-weight kernels, f32 activations (mm_float_vnni.c). */
void bm_mm_f32_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_f16_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_bf16_vnni(const bm_mm_args *a, int64_t r0, int64_t r1);
/* avx512 level (AVX-512 F/BW/VL/DQ, no VNNI): the float kernels above built for it
 * (mm_float_avx512.c), and the vnni level's packed kernels with vpdpbusd emulated exactly
 * (mmp_avx512.c, mmpk_avx512.c; bitwise the _vnni results). */
void bm_mm_f32_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_f16_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mm_bf16_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q8_0_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_0_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_0_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q4_K_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q5_K_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
void bm_mmp_q6_K_avx512(const bm_mm_args *a, int64_t r0, int64_t r1);
/* BF16 weights with vdpbf16ps, activations rounded to bf16 (round to nearest even) per tile;
 * only on CPUs with AVX512_BF16 (mm_float_bf16.c). */
void bm_mm_bf16_avx512bf16(const bm_mm_args *a, int64_t r0, int64_t r1);
/* AVX2+FMA attention chunk (att_avx2.c); the scalar reference when hd % 16 != 0. */
void bm_att_chunk_avx2(const bm_att_chunk *a);
/* Peak probes: run iters rounds of independent multiply-add chains; return the op count. */
double bm_probe_fma_avx2(int64_t iters);
double bm_probe_int8_avx2(int64_t iters);
double bm_probe_int8_vnni(int64_t iters);
double bm_probe_int8_avxvnni(int64_t iters);
double bm_probe_fma_vnni(int64_t iters);
double bm_probe_fma_avx512(int64_t iters);
double bm_probe_int8_avx512(int64_t iters);
#endif

#endif
