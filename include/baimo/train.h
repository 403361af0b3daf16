/* Training from scratch or from a checkpoint, in f32 on the CPU: a training model of the
 * llama/qwen2 rows of the architecture table (forward with saved activations, backward of
 * every layer written from the math), AdamW with decoupled weight decay, warmup + cosine
 * schedule, global-norm clipping, gradient accumulation, token shards on disk, checkpoints
 * that are ordinary GGUF models (+ an optimizer sidecar), and data parallelism through a
 * caller-supplied all-reduce (Open MPI in src/train/mpi_dp.c when built with it). */
#ifndef BAIMO_TRAIN_H
#define BAIMO_TRAIN_H

#include "baimo/base.h"
#include "baimo/gguf.h"
#include "baimo/tensor.h"
#include "baimo/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the training model ---------------------------------------------------------------- */

typedef struct bm_train_hparams {
    char arch[16];          /* "llama" (interleaved RoPE, GGUF convention) or "qwen2" (QKV
                               biases, NeoX RoPE) */
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    bool tied;              /* output head shares token_embd */
    float norm_eps;         /* RMSNorm epsilon (default 1e-5) */
    float rope_theta;       /* RoPE base (default 10000) */
} bm_train_hparams;

/* Checks dimensions (head_dim = n_embd / n_head must be even, n_head % n_head_kv == 0, every
 * dimension within [1, 1<<20]). Fills defaults for eps/theta when 0. */
bm_status bm_train_hparams_check(bm_train_hparams *hp, bm_err *err);

/* One parameter tensor inside the flat arrays. Layout (all f32, row-major, GGUF names and
 * shapes, ne[0] = row length): token_embd [V,E], output_norm [E], output [V,E] (untied only),
 * then per layer i: blk.i.attn_norm [E], attn_q [H*hd,E], attn_k [K*hd,E], attn_v [K*hd,E],
 * (qwen2: attn_q.bias [H*hd], attn_k.bias [K*hd], attn_v.bias [K*hd]), attn_output [E,H*hd],
 * ffn_norm [E], ffn_gate [F,E], ffn_up [F,E], ffn_down [E,F]. Each tensor starts at a multiple
 * of 16 floats; padding stays zero. Q/K rows are in the order baimo's forward pass reads from
 * GGUF (for llama: interleaved RoPE pairs (2i, 2i+1)). */
typedef struct bm_tparam {
    char name[BM_TENSOR_NAME_MAX];
    int n_dims;
    int64_t ne[2];
    size_t offset, n;       /* in floats */
    bool decay;             /* weight decay applies (matrices and embeddings, not norms/biases) */
} bm_tparam;

typedef struct bm_tmodel bm_tmodel;

/* New model with seeded initial weights: matrices N(0, 0.02) (residual projections
 * attn_output/ffn_down scaled by 1/sqrt(2*n_layer) when scaled_init), norms 1, biases 0.
 * pool (borrowed, may be NULL = serial) runs the matmuls. Returns owned; bm_tmodel_free(). */
bm_status bm_tmodel_new(const bm_train_hparams *hp, uint64_t seed, bool scaled_init,
                        bm_pool *pool, bm_tmodel **out, bm_err *err);
/* Loads the weights of a GGUF model (any weight dtype; dequantized to f32) of architecture
 * llama or qwen2 without rope scaling. n_ctx overrides the file's context when > 0. */
bm_status bm_tmodel_load(const char *path, int32_t n_ctx, bm_pool *pool, bm_tmodel **out,
                         bm_err *err);
void bm_tmodel_free(bm_tmodel *m);
/* Adds metadata to a model file being written (e.g. the tokenizer via bm_tok_write_gguf). */
typedef bm_status (*bm_meta_fn)(void *user, bm_gguf_writer *w, bm_err *err);
/* Writes the model as a GGUF file that bm_model_load reads (f32 weights); meta (may be NULL)
 * adds metadata such as the tokenizer. */
bm_status bm_tmodel_save(const bm_tmodel *m, const char *path, bm_meta_fn meta, void *user,
                         bm_err *err);

const bm_train_hparams *bm_tmodel_hparams(const bm_tmodel *m);
size_t bm_tmodel_n_floats(const bm_tmodel *m);    /* length of the flat arrays */
uint64_t bm_tmodel_n_params(const bm_tmodel *m);  /* real parameters (no padding) */
float *bm_tmodel_params(bm_tmodel *m);            /* borrowed [n_floats] */
float *bm_tmodel_grads(bm_tmodel *m);             /* borrowed [n_floats] */
int bm_tmodel_n_tensors(const bm_tmodel *m);
const bm_tparam *bm_tmodel_tensor(const bm_tmodel *m, int i);
const bm_tparam *bm_tmodel_tensor_find(const bm_tmodel *m, const char *name);
void bm_tmodel_zero_grad(bm_tmodel *m);

/* Forward over n_seq rows of T+1 tokens each (tokens: [n_seq, T+1]; inputs are the first T,
 * targets the last T of each row) with causal attention inside each row, positions 0..T-1.
 * mask (may be NULL = all): [n_seq, T+1]; the target tokens[r][t+1] counts iff
 * mask[r][t+1] != 0. Adds the sum of counted cross-entropies (nats) to *loss_sum and their
 * number to *n_counted. When backward, ADDS scale * d(sum of counted losses)/d(params) to the
 * gradients (pass scale = 1 / number of counted targets of the whole global batch for a mean).
 * T <= n_ctx. Deterministic for any thread count. Not thread-safe per model. */
bm_status bm_tmodel_step(bm_tmodel *m, const int32_t *tokens, const uint8_t *mask,
                         int32_t n_seq, int32_t T, bool backward, float scale,
                         double *loss_sum, int64_t *n_counted, bm_err *err);

/* ---- optimizer --------------------------------------------------------------------------- */

typedef struct bm_adamw_params {
    float beta1, beta2, eps, weight_decay; /* defaults 0.9, 0.95, 1e-8, 0.1 */
} bm_adamw_params;

/* AdamW (Loshchilov & Hutter 2019): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd * p), wd only where decay.
 * t = *step + 1 and *step is incremented. m, v: [n_floats] caller-owned (start zeroed). */
void bm_adamw_update(bm_tmodel *model, float *m, float *v, int64_t *step,
                     const bm_adamw_params *p, float lr);
/* Global L2 norm of the gradients (deterministic order); when max_norm > 0 and the norm
 * exceeds it, scales the gradients by max_norm / norm. Returns the norm before clipping. */
double bm_grad_clip(bm_tmodel *m, double max_norm);
/* Linear warmup over `warmup` steps to lr, then cosine decay to min_lr at step total.
 * step counts from 0. */
float bm_lr_at(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr);

/* ---- token shards ----------------------------------------------------------------------- */

/* A shard file `<split>_NNN.bin`: 32-byte header, little-endian:
 *   char magic[8] = "BMTOKENS"; u32 version = 1; u32 n_vocab; u64 n_tokens; u64 reserved = 0
 * then n_tokens u32 token ids (documents separated by EOS). An optional parallel loss mask
 * `<split>_NNN.mask`: char magic[8] = "BMLMASK1"; u64 n_tokens; then n_tokens u8 (1 = train
 * on this token as a target). */
#define BM_SHARD_MAGIC "BMTOKENS"
#define BM_MASK_MAGIC "BMLMASK1"
bm_status bm_shard_write(const char *path, const uint32_t *tokens, uint64_t n, uint32_t n_vocab,
                         bm_err *err);
bm_status bm_mask_write(const char *path, const uint8_t *mask, uint64_t n, bm_err *err);

/* The concatenated shards of one split of a directory (mmap'd). */
typedef struct bm_data bm_data;
/* Opens DIR/<split>_*.bin in name order (and their .mask files: either every shard has one
 * or none). Validates headers, sizes and every token id < n_vocab. BM_ENOTFOUND if none. */
bm_status bm_data_open(const char *dir, const char *split, bm_data **out, bm_err *err);
void bm_data_close(bm_data *d);
uint64_t bm_data_n_tokens(const bm_data *d);
uint32_t bm_data_n_vocab(const bm_data *d);
bool bm_data_has_mask(const bm_data *d);
/* Number of windows of T+1 tokens (window w covers tokens [w*T, w*T+T+1)). */
uint64_t bm_data_n_windows(const bm_data *d, int32_t T);
/* Window (idx mod n_windows) into tokens [T+1] and mask [T+1] (mask may be NULL; all ones
 * when the data has none). */
void bm_data_window(const bm_data *d, uint64_t idx, int32_t T, int32_t *tokens, uint8_t *mask);

/* ---- data preparation -------------------------------------------------------------------- */

typedef struct bm_prep_stats {
    uint64_t n_docs, n_dups, n_train_docs, n_val_docs, n_train_tokens, n_val_tokens;
    uint64_t n_masked;      /* chat: target tokens trained on */
} bm_prep_stats;

/* Tokenizes documents into DIR/train_000.bin and DIR/val_000.bin. A file ending in .jsonl
 * gives one document per line (its "text" field); any other file is one document, or, when
 * doc_sep is non-NULL, one document per run of lines between lines equal to doc_sep. Documents
 * are deduplicated by a 64-bit hash of their normalized text (ASCII lower-cased, whitespace
 * runs collapsed, trimmed); a document goes to validation when another hash of it falls
 * below val_frac. Each document is followed by EOS (when the tokenizer has one). */
bm_status bm_data_prepare(const char *const *files, int n_files, const bm_tok *tok,
                          const char *dir, double val_frac, const char *doc_sep,
                          bm_prep_stats *stats, bm_err *err);
/* SFT data: each line {"messages":[{"role","content"},...]} rendered with the tokenizer's
 * chat template (add_generation_prompt false); the mask marks the tokens of assistant
 * messages (their content and the end-of-turn up to the next message), everything else 0. */
bm_status bm_data_prepare_chat(const char *jsonl, const bm_tok *tok, const char *dir,
                               double val_frac, bm_prep_stats *stats, bm_err *err);

/* ---- the training loop ------------------------------------------------------------------- */

/* Data parallelism: an all-reduce (sum, in place) over the ranks. rank 0 alone when NULL. */
typedef struct bm_dist {
    int rank, world;
    void *user;
    void (*allreduce_f32)(void *user, float *buf, size_t n);
    void (*allreduce_f64)(void *user, double *buf, size_t n);
} bm_dist;

/* Fills d for Open MPI (MPI_Init when launched by mpirun, else a world of one). Returns
 * BM_EUNSUPPORTED when baimo was built without MPI and the process runs under mpirun. */
bm_status bm_dist_mpi_init(bm_dist *d, int *argc, char ***argv, bm_err *err);
void bm_dist_mpi_fini(bm_dist *d);
/* true when the library was built with MPI support. */
bool bm_dist_mpi_available(void);

typedef struct bm_train_opts {
    int32_t batch;          /* sequences per rank per micro-step */
    int32_t seq;            /* tokens per sequence (T) */
    int32_t accum;          /* micro-steps per optimizer step (>= 1) */
    int64_t steps;          /* total optimizer steps (for the schedule) */
    int64_t warmup;
    float lr, min_lr;       /* peak and final learning rate */
    float clip;             /* <= 0: no clipping */
    bm_adamw_params adamw;
    uint64_t seed;
    int32_t eval_batches;   /* validation: this many batches of `batch` windows (default 8) */
} bm_train_opts;

typedef struct bm_train_stats {
    int64_t step;           /* optimizer steps done after this one */
    double loss;            /* mean training loss of this step */
    double grad_norm;       /* before clipping */
    float lr;
    int64_t tokens;         /* targets counted in this step (all ranks) */
} bm_train_stats;

typedef struct bm_trainer bm_trainer;
/* model, train, val (val may be NULL), dist (may be NULL) are borrowed. */
bm_status bm_trainer_new(bm_tmodel *model, const bm_data *train, const bm_data *val,
                         const bm_train_opts *o, const bm_dist *dist, bm_trainer **out,
                         bm_err *err);
void bm_trainer_free(bm_trainer *t);
/* One optimizer step: accum micro-batches, all-reduce, clip, AdamW at the scheduled lr. */
bm_status bm_trainer_step(bm_trainer *t, bm_train_stats *st, bm_err *err);
/* Mean loss over the first eval_batches*batch*world validation windows (all ranks). */
bm_status bm_trainer_eval(bm_trainer *t, double *val_loss, bm_err *err);
int64_t bm_trainer_step_count(const bm_trainer *t);
/* Writes the model to path (GGUF; meta adds e.g. the tokenizer) and the optimizer state to
 * path + ".opt": magic "BMOPTST1", u32 version, u32 reserved, i64 step, u64 data position,
 * u64 rng state[4], u64 n_floats, u64 hash of the hparams, f32 m[n_floats], f32 v[n_floats]. */
bm_status bm_trainer_save(const bm_trainer *t, const char *path, bm_meta_fn meta, void *user,
                          bm_err *err);
/* Restores optimizer state, step and data position from path + ".opt" (the model's weights
 * must have been loaded from path with bm_tmodel_load). */
bm_status bm_trainer_resume(bm_trainer *t, const char *path, bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
