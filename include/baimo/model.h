/* Models of the Llama family as data: the architecture table, weight binding from GGUF or a
 * Hugging Face safetensors directory, the KV cache (paged: fixed-size blocks, a block table
 * per sequence) and the batched forward pass over tokens of one or more sequences.
 * Weights stay in read-only mmaps; activations live in arenas sized when a context is made;
 * no allocation happens per token. */
#ifndef BAIMO_MODEL_H
#define BAIMO_MODEL_H

#include "baimo/base.h"
#include "baimo/gguf.h"
#include "baimo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Architecture features, one row per family in the table (src/model/arch.c). */
enum {
    BM_ARCH_QKV_BIAS = 1 << 0,  /* q/k/v projections carry biases (qwen2) */
    BM_ARCH_QK_NORM = 1 << 1,   /* RMSNorm on each q and k head (qwen3) */
    BM_ARCH_ROPE_NEOX = 1 << 2, /* GGUF weights use NeoX (rotate-half) RoPE */
    BM_ARCH_NORM_HEAD = 1 << 3, /* output rows L2-normalised (Baichuan2 NormHead; HF load) */
    BM_ARCH_FUSED_QKV = 1 << 4, /* HF checkpoints store one fused qkv matrix */
};

typedef struct bm_arch {
    const char *name;        /* GGUF general.architecture */
    const char *hf_class;    /* config.json "architectures"[0] (NULL if none) */
    unsigned flags;
} bm_arch;

/* Row for a GGUF architecture name or an HF class name; NULL when unknown. */
const bm_arch *bm_arch_find(const char *name);
const bm_arch *bm_arch_find_hf(const char *hf_class);
/* Comma-separated list of known names, for error messages. Static. */
const char *bm_arch_list(void);

enum { BM_ROPE_SCALING_NONE = 0, BM_ROPE_SCALING_LINEAR, BM_ROPE_SCALING_YARN };

typedef struct bm_hparams {
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    int32_t n_rot;
    float norm_eps;
    float rope_theta;
    int rope_scaling;        /* BM_ROPE_SCALING_* */
    float rope_factor;       /* linear/YaRN factor (1 = none) */
    int32_t rope_ctx_orig;   /* YaRN original context */
    float yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    bool rope_neox;          /* RoPE style of the loaded weights */
    bool tied_output;        /* output head shares token_embd */
} bm_hparams;

typedef struct bm_layer {
    const bm_tensor *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *q_norm, *k_norm;
    const bm_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} bm_layer;

typedef struct bm_model bm_model;
struct bm_gguf;
struct bm_st;
struct bm_model {
    const bm_arch *arch;
    bm_hparams hp;
    const bm_tensor *tok_embd, *out_norm, *output;
    bm_layer *layers;          /* [n_layer] */
    const float *rope_freqs;   /* [n_rot/2] or NULL */
    bm_tensor *tensors;        /* all bound tensors (views) */
    int64_t n_tensors, cap_tensors;
    struct bm_gguf *gguf;      /* source when loaded from GGUF (owned) */
    struct bm_st *st;          /* source when loaded from safetensors (owned) */
    char *path;
    bm_arena arena;            /* converted small tensors, names */
    uint64_t n_params;
    uint64_t weight_bytes;
    /* Matmul weights repacked at load for the kernels in use (bm_tensor_pack); BM_NO_PACK=1
     * in the environment turns it off. */
    void *pack_buf;            /* every packed copy, one owned buffer */
    int32_t n_packs;
    uint64_t pack_bytes;
    double pack_secs;
};

/* Loads a .gguf file or a Hugging Face model directory (config.json + *.safetensors).
 * Validates architecture, every required tensor's presence, dtype and shape.
 * Returns owned; free with bm_model_free(). */
bm_status bm_model_load(const char *path, bm_model **out, bm_err *err);
void bm_model_free(bm_model *m);
/* Bytes of KV cache per token of context (all layers, K and V). */
size_t bm_model_kv_bytes_per_token(const bm_model *m);

/* ---- KV cache: blocks of BM_KV_BLOCK token slots, shared by sequences ---------------- */

#define BM_KV_BLOCK 32

typedef struct bm_kv {
    int32_t n_blocks;
    int32_t n_layer, n_kv_dim;    /* n_kv_dim = n_head_kv * head_dim */
    int32_t head_dim;
    /* Both [n_layer][n_blocks][BM_KV_BLOCK * n_kv_dim]; inside a block, per KV head: V by slot
     * ([head][slot][head_dim]) and K transposed ([head][head_dim][slot]: the keys of a block
     * side by side, so attention scores take 8-16 keys per vector without horizontal sums).
     * Each head's K and V of a block are contiguous: decode streams them from DRAM. */
    float *k, *v;
    int32_t *free_list;           /* stack of free block ids */
    int32_t n_free;
    int32_t *refcount;            /* [n_blocks], for prefix sharing */
} bm_kv;

/* A sequence's view of the cache: its block table and how many positions are filled. */
typedef struct bm_seq {
    int32_t *blocks;     /* [cap_blocks] block ids */
    int32_t n_blocks, cap_blocks;
    int32_t n_pos;       /* positions [0, n_pos) hold valid K/V */
    int32_t max_pos;     /* the sequence may not grow past this */
} bm_seq;

/* Offset in kv->k / kv->v of block blk of a layer; with c = head * head_dim + e, K element c
 * of slot i at + c * BM_KV_BLOCK + i, V element c of slot i at
 * + (head * BM_KV_BLOCK + i) * head_dim + e. */
static inline size_t bm_kv_block_off(const bm_kv *kv, int layer, int32_t blk) {
    return ((size_t)layer * (size_t)kv->n_blocks + (size_t)blk) * BM_KV_BLOCK *
           (size_t)kv->n_kv_dim;
}

/* Allocates a cache of n_blocks blocks. Returns owned; free with bm_kv_free(). */
bm_status bm_kv_new(const bm_model *m, int32_t n_blocks, bm_kv **out, bm_err *err);
void bm_kv_free(bm_kv *kv);
/* seq with room for max_pos positions (block table only; blocks come from reserve). */
bm_status bm_seq_init(bm_seq *s, int32_t max_pos, bm_err *err);
void bm_seq_fini(bm_seq *s, bm_kv *kv); /* releases the seq's blocks */
/* Ensures s has blocks for positions [0, n_pos); BM_EBUSY when the cache is full,
 * BM_ERANGE past the sequence's max_pos. */
bm_status bm_seq_reserve(bm_seq *s, bm_kv *kv, int32_t n_pos, bm_err *err);
/* Drops positions >= n_pos (frees whole blocks past it). */
void bm_seq_truncate(bm_seq *s, bm_kv *kv, int32_t n_pos);
/* Prefix sharing (the engine's block cache): take / drop one reference to block b (a block
 * whose count drops to 0 returns to the free list). */
void bm_kv_block_retain(bm_kv *kv, int32_t b);
void bm_kv_block_release(bm_kv *kv, int32_t b);
/* Maps n full blocks (each referenced already, e.g. by the cache) at the start of an empty
 * sequence, taking a reference to each; the sequence then holds n * BM_KV_BLOCK positions.
 * The caller must never write into them (only positions after them are appended). */
bm_status bm_seq_share(bm_seq *s, bm_kv *kv, const int32_t *blocks, int32_t n, bm_err *err);

/* ---- forward pass ---------------------------------------------------------------------- */

/* n_tok tokens, each at position pos[i] of sequence seq[i]. Tokens of one sequence appear in
 * increasing position order and extend it (pos == its n_pos, n_pos+1, ...). */
typedef struct bm_batch {
    int32_t n_tok;
    const int32_t *tokens;   /* [n_tok] */
    const int32_t *pos;      /* [n_tok] */
    bm_seq *const *seq;      /* [n_tok] */
    const bool *logits;      /* [n_tok] which tokens produce output; NULL = all */
    float *hidden;           /* optional: [n_out, n_embd] final-normed hidden states of the
                                selected tokens (embeddings); logits may then be NULL */
} bm_batch;

/* Per-model run state: thread pool, KV cache, scratch arenas sized for max_batch tokens. */
typedef struct bm_ctx bm_ctx;
typedef struct bm_ctx_params {
    int32_t n_ctx;       /* max positions per sequence (<= 0: model's n_ctx_train, capped 4096) */
    int32_t max_batch;   /* max tokens per forward call (<= 0: 512) */
    int32_t n_seq;       /* max concurrent sequences the KV cache is sized for (<= 0: 1) */
    int32_t n_threads;   /* <= 0: all CPUs */
    bool profile;        /* time each step of the forward pass (bm_ctx_profile) */
} bm_ctx_params;

bm_status bm_ctx_new(const bm_model *m, const bm_ctx_params *p, bm_ctx **out, bm_err *err);
void bm_ctx_free(bm_ctx *c);
bm_kv *bm_ctx_kv(bm_ctx *c);
bm_pool *bm_ctx_pool(bm_ctx *c);
int32_t bm_ctx_n_ctx(const bm_ctx *c);
int32_t bm_ctx_max_batch(const bm_ctx *c);

/* Steps of the forward pass timed when bm_ctx_params.profile is set: token embedding lookup;
 * RMS norms and residual adds; the Q/K/V matmuls; biases, q/k norms, RoPE and the K/V cache
 * write; attention; the output projection; the gate/up matmuls; SwiGLU; the down matmul; the
 * final norm and the vocabulary head. */
typedef enum bm_prof_step {
    BM_PROF_EMBED, BM_PROF_NORM, BM_PROF_QKV, BM_PROF_ROPE, BM_PROF_ATTN, BM_PROF_WO,
    BM_PROF_GATE_UP, BM_PROF_ACT, BM_PROF_DOWN, BM_PROF_HEAD, BM_PROF_COUNT
} bm_prof_step;

/* Wall seconds per step summed over every forward call since the context was made or the last
 * bm_ctx_profile_reset (all zero when profiling is off). */
typedef struct bm_profile {
    double secs[BM_PROF_COUNT];
    int64_t n_forward; /* forward slices timed */
} bm_profile;

void bm_ctx_profile(const bm_ctx *c, bm_profile *out);
void bm_ctx_profile_reset(bm_ctx *c);
/* Short lowercase name of a step ("qkv", "attention", ...); "?" outside the enum. */
const char *bm_prof_step_name(int step);

/* Runs the model over the batch, appending K/V to each sequence, and writes logits
 * [n_out, n_vocab] for the tokens selected by batch->logits (in batch order) into logits
 * (skipped when logits is NULL; then batch->hidden should be set).
 * A batch larger than max_batch is split internally. */
bm_status bm_model_forward(bm_ctx *c, const bm_batch *b, float *logits, bm_err *err);

/* Convenience for one sequence: evaluates tokens[0..n) at positions s->n_pos.., and writes
 * the logits of every token (all=true, [n, n_vocab]) or of the last one ([n_vocab]). */
bm_status bm_model_eval(bm_ctx *c, bm_seq *s, const int32_t *tokens, int32_t n, bool all,
                        float *logits, bm_err *err);


/* ---- random-weight models of real shapes (tests, benchmarks) --------------------------- */

typedef struct bm_make_params {
    const char *arch;        /* a row of the architecture table */
    const char *shape;       /* tiny, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b, qwen3-0.6b,
                                llama-3.2-1b */
    bm_dtype type;           /* type of the 2-D weights (falls back per tensor when a row
                                length is not a multiple of the type's block) */
    uint64_t seed;
    int32_t n_vocab;         /* > 0 overrides the shape's vocabulary (e.g. a tokenizer's) */
    int32_t n_ctx;           /* > 0 overrides the shape's context length */
    int rope_scaling;        /* BM_ROPE_SCALING_* ; 0 keeps the shape's */
    float rope_factor;
    int32_t rope_ctx_orig;
    int n_threads;
    /* Writes extra metadata (the tokenizer) into the file; may be NULL. */
    bm_status (*write_meta)(void *user, bm_gguf_writer *w, bm_err *err);
    void *user;
    bm_progress_fn progress;
    void *progress_user;
} bm_make_params;

/* Writes a GGUF model with seeded random weights (std 0.02; norms 1 + noise; Baichuan output
 * rows unit-norm as its converter stores NormHead) to path. */
bm_status bm_model_make(const bm_make_params *p, const char *path, bm_err *err);
/* Comma-separated list of shape names. Static. */
const char *bm_model_shapes(void);

/* Llama 3 rope scaling: per-pair divisors of the rotary frequencies (rope_freqs). */
void bm_rope_llama3_factors(float *out, int n_rot, float theta, double factor, double low_ff,
                            double high_ff, double orig_ctx);

/* ---- quantization of a model file ----------------------------------------------------- */

/* Writes a copy of the GGUF model at in_path with every 2-D weight matrix converted to type
 * (reference round-to-nearest quantization; 1-D tensors stay f32; a matrix whose row length
 * is not a multiple of the type's block falls back as in bm_model_make). Metadata (tokenizer,
 * chat template) is copied. n_threads <= 0: all CPUs. */
bm_status bm_model_quantize(const char *in_path, const char *out_path, bm_dtype type,
                            int n_threads, bm_progress_fn progress, void *progress_user,
                            bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
