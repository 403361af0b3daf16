/* baimo tensors: dtypes and block formats with bit layouts identical to GGUF/ggml, exact
 * dequantization and reference (round-to-nearest) quantization, tensor views, and the scalar
 * reference kernels of the forward pass. Fast per-ISA variants are chosen at run time through
 * the kernel table (bm_kernels()); every variant must agree with its `_ref`. */
#ifndef BAIMO_TENSOR_H
#define BAIMO_TENSOR_H

#include "baimo/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are the GGUF/ggml type ids (they appear in files). */
typedef enum bm_dtype {
    BM_F32 = 0,
    BM_F16 = 1,
    BM_Q4_0 = 2,
    BM_Q4_1 = 3,
    BM_Q5_0 = 6,
    BM_Q5_1 = 7,
    BM_Q8_0 = 8,
    BM_Q8_1 = 9,
    BM_Q2_K = 10,
    BM_Q3_K = 11,
    BM_Q4_K = 12,
    BM_Q5_K = 13,
    BM_Q6_K = 14,
    BM_Q8_K = 15,
    BM_I8 = 24,
    BM_I16 = 25,
    BM_I32 = 26,
    BM_I64 = 27,
    BM_F64 = 28,
    BM_BF16 = 30,
    BM_DTYPE_COUNT = 40
} bm_dtype;

#define BM_QK 32   /* block size of the *_0/_1 formats */
#define BM_QK_K 256 /* super-block size of the K formats */

/* Per-type traits. Types without a row converter (I8.., F64) have NULL function pointers. */
typedef struct bm_type_traits {
    const char *name;      /* "q4_K" style, as ggml names them */
    int block_elems;       /* elements per block (1 for plain types) */
    size_t block_bytes;    /* bytes per block */
    bool quantized;
    /* y[0..n) = dequantized x; n is a multiple of block_elems. */
    void (*to_f32)(const void *x, float *y, int64_t n);
    /* Reference quantization of x[0..n) into y; n a multiple of block_elems. */
    void (*from_f32)(const float *x, void *y, int64_t n);
} bm_type_traits;

/* Traits of t, or NULL for an unknown id. */
const bm_type_traits *bm_type_traits_get(int t);
const char *bm_dtype_name(bm_dtype t);
/* Parses "q4_0", "Q4_K", "f16", "bf16"... Returns false when unknown. */
bool bm_dtype_parse(const char *s, bm_dtype *out);
/* Bytes for n elements of type t (one row). false if n is not a multiple of the block size,
 * t unknown, or overflow. */
bool bm_row_bytes(bm_dtype t, int64_t n, size_t *out);

/* IEEE half and bfloat16 conversions (exact; round-to-nearest-even for f32 -> 16-bit). */
float bm_f16_to_f32(uint16_t h);
uint16_t bm_f32_to_f16(float f);
float bm_bf16_to_f32(uint16_t h);
uint16_t bm_f32_to_bf16(float f);

/* ---- tensor view ---------------------------------------------------------------------- */

#define BM_MAX_DIMS 4
#define BM_TENSOR_NAME_MAX 96

/* A view of a contiguous row-major tensor. ne[0] is the innermost dimension (row length), as
 * in GGUF: a weight matrix W with n_out rows of n_in columns has ne = {n_in, n_out}.
 * data is borrowed (usually a view into a read-only mmap). */
typedef struct bm_tensor {
    char name[BM_TENSOR_NAME_MAX];
    bm_dtype type;
    int n_dims;
    int64_t ne[BM_MAX_DIMS];
    const void *data;
    size_t n_bytes;
    /* Optional copy of the rows repacked for the fast kernels (bm_tensor_pack): groups of
     * BM_PACK_ROWS rows interleaved so one vector instruction serves all of them. NULL when
     * not packed; data always keeps the original layout for everything else. */
    const void *packed;
} bm_tensor;

static inline int64_t bm_tensor_nelem(const bm_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->ne[i];
    return n;
}
/* Rows per interleaved group of a packed tensor. */
#define BM_PACK_ROWS 16
/* Whether the kernels in use have a packed layout for t (its type and shape). */
bool bm_tensor_packable(const bm_tensor *t);
/* Called with each range of the original rows once it has been copied (e.g. to release the
 * mapped pages). */
typedef void (*bm_release_fn)(void *ctx, const void *p, size_t n);
/* Packs t's rows for the kernels in use into a new buffer (2 MiB aligned, huge-page backed)
 * and sets t->packed, split over pool (NULL: this thread), slice by slice, calling release (if
 * not NULL) on each copied slice; *buf receives the buffer (free() it after the tensor's last
 * use), *bytes its size. BM_EINVAL when the tensor is not packable, BM_ENOMEM when out of memory. */
bm_status bm_tensor_pack(bm_tensor *t, bm_pool *pool, bm_release_fn release, void *rctx,
                         void **buf, size_t *bytes, bm_err *err);
/* Bytes of t's packed copy for the kernels in use (0 when t is not packable here). */
size_t bm_tensor_pack_bytes(const bm_tensor *t);
/* bm_tensor_pack into dst, which the caller owns: 64-byte aligned, bm_tensor_pack_bytes(t)
 * bytes (a model packs every weight into one buffer, so huge pages back all of it). */
bm_status bm_tensor_pack_into(bm_tensor *t, bm_pool *pool, bm_release_fn release, void *rctx,
                              void *dst, bm_err *err);

/* Row r (of ne[0] elements) dequantized into y. */
void bm_tensor_get_row(const bm_tensor *t, int64_t r, float *y);

/* ---- reference kernels (the specification of every fast variant) --------------------- */

/* Matrix product with a weight in any supported dtype:
 *   y[t, r] = sum_k W[r, k] * x[t, k]   for t in [0, n_tok), r in [r0, r1)
 * w: rows of n_in elements of type wt, row stride row_bytes; x: [n_tok, n_in] f32;
 * y: [n_tok, ldy] f32 (only columns r0..r1 written); scratch: >= n_in floats. */
void bm_k_matmul_ref(const void *w, bm_dtype wt, size_t row_bytes, int64_t n_in, int64_t r0,
                     int64_t r1, const float *x, int64_t n_tok, float *y, int64_t ldy,
                     float *scratch);

/* y = x / sqrt(mean(x^2) + eps) * w   (Zhang & Sennrich 2019). x, y, w: [n]. y may equal x. */
void bm_k_rmsnorm_ref(const float *x, const float *w, float *y, int64_t n, float eps);

/* Softmax in place over x[0..n), max-subtracted. */
void bm_k_softmax_ref(float *x, int64_t n);

/* y[i] = silu(g[i]) * u[i]; silu(v) = v / (1 + exp(-v)) (Shazeer 2020, SwiGLU). y may alias g. */
void bm_k_swiglu_ref(const float *g, const float *u, float *y, int64_t n);

/* Rotary position embedding (Su et al. 2021) applied in place to one head x[0..head_dim).
 * Only the first n_rot dims rotate. neox=false: pairs (2i, 2i+1) ("normal", GGUF llama);
 * neox=true: pairs (i, i + n_rot/2) (GPT-NeoX / HF rotate_half). cs holds cos/sin per pair:
 * cs[2i] = cos(theta_i), cs[2i+1] = sin(theta_i), i < n_rot/2. */
void bm_k_rope_ref(float *x, int64_t n_rot, bool neox, const float *cs);

/* Rotary angles for one position per pair i: theta_i = pos * freq_scale * base^(-2i/n_rot)
 * / (freq_factors ? freq_factors[i] : 1), with YaRN ramp mixing when ext_factor != 0
 * (Peng et al. 2023) and magnitude scale mscale applied to cos and sin. */
typedef struct bm_rope_params {
    int n_rot;
    float base;          /* rope_theta */
    float freq_scale;    /* 1/linear factor */
    float ext_factor;    /* YaRN extrapolation mix, 0 = off */
    float attn_factor;   /* YaRN magnitude factor (mscale) */
    float beta_fast, beta_slow;
    int n_ctx_orig;      /* original training context for YaRN */
    const float *freq_factors; /* [n_rot/2] or NULL (Llama 3.1 rope_freqs) */
} bm_rope_params;
void bm_rope_cache_ref(const bm_rope_params *p, int64_t pos, float *cs);


/* ---- threaded operations (use the fastest kernel the CPU has) ------------------------- */

/* y[t, r] = sum_k W[r, k] * x[t, k] for every row r of w (w: ne = {n_in, n_out}), split over
 * the pool's threads by rows. x: [n_tok, n_in] f32; y: [n_tok, n_out] f32.
 * scratch: bm_matmul_scratch_bytes(n_in, n_tok, n_threads) bytes, 64-byte aligned.
 * Never allocates. */
void bm_matmul(bm_pool *pool, const bm_tensor *w, const float *x, int64_t n_tok, float *y,
               void *scratch);
size_t bm_matmul_scratch_bytes(int64_t n_in, int64_t n_tok, int n_threads);
/* Name of the kernel family in use ("ref", "avx2", ...). BM_KERNELS=ref forces the scalar
 * reference. */
const char *bm_kernels_name(void);
/* One line for users: the family in use, the families this CPU and build offer, and why AMX is
 * not used when the CPU has it (e.g. "vnni (available: ref avx2 vnni)"). */
const char *bm_kernels_summary(void);
/* Measured peak of the kernel family in use, in G ops/s (a multiply-add counts 2) over every
 * thread of pool: int8=true the int8 dot-product instruction (vpdpbusd / vpmaddubsw), else the
 * f32 FMA. Runs about 0.1 s of register-only loops; 0 for the scalar reference. For
 * benchmarks. */
double bm_kernels_peak_gops(bm_pool *pool, bool int8);
/* Switches the kernel family to name ("ref", "avx2", "avxvnni", "vnni", "amx", ...), for
 * benchmarks and tests; false (nothing changed) when unknown or not supported by this CPU. Not
 * thread-safe with running matmuls. */
bool bm_kernels_use(const char *name);

#ifdef __cplusplus
}
#endif
#endif
