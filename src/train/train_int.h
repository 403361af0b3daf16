/* Internals of the training module: the training model's layout and saved activations,
 * and the threaded f32 kernels (matmul forward/backward, attention forward/backward) that
 * fwdbwd.c composes. Every kernel assigns each output element to exactly one thread and
 * sums in a fixed order, so results do not depend on the thread count. */
#ifndef BAIMO_TRAIN_INT_H
#define BAIMO_TRAIN_INT_H

#include "baimo/train.h"

/* Offsets (in floats) of one layer's tensors in the flat arrays; bias offsets are SIZE_MAX
 * when the architecture has none. */
typedef struct tlayer {
    size_t attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, wg, wu, wd;
} tlayer;

struct bm_tmodel {
    bm_train_hparams hp;
    int32_t hd, qd, kvd;     /* head_dim, n_head*hd, n_head_kv*hd */
    bool bias, neox;
    bm_pool *pool;           /* borrowed */
    float *params, *grads;   /* [n_floats], 64-byte aligned */
    size_t n_floats;
    uint64_t n_params;
    bm_tparam *t;
    int n_t;
    size_t emb, onorm, out;  /* out == emb when tied */
    tlayer *L;
    float *cs, *cs_inv;      /* RoPE cos/sin [n_ctx][hd] and its inverse rotation */
    /* saved activations and backward scratch, sized for act_n tokens */
    int64_t act_n;
    float *act;
};

#define TM_NOBIAS ((size_t)-1)

/* y[N,out] = x[N,in] W[out,in]^T (+ b[out]) */
void tk_mm_fwd(bm_pool *p, const float *x, const float *W, const float *b, int64_t N,
               int64_t in, int64_t out, float *y);
/* dx[N,in] (+)= dy[N,out] W[out,in]; accumulate when acc */
void tk_mm_bwd_x(bm_pool *p, const float *dy, const float *W, int64_t N, int64_t in,
                 int64_t out, float *dx, bool acc);
/* dW[out,in] += dy[N,out]^T x[N,in]; db[out] += sum_t dy[t,:] when db */
void tk_mm_bwd_w(bm_pool *p, const float *dy, const float *x, int64_t N, int64_t in,
                 int64_t out, float *dW, float *db);

typedef struct tk_att {
    int32_t n_seq, T, n_head, n_head_kv, hd;
    const float *q, *k, *v;  /* [n_seq*T, n_head*hd], [.., n_head_kv*hd] (after RoPE) */
    float *p;                /* [n_seq, n_head, T, T] softmax probabilities */
    float *o;                /* [n_seq*T, n_head*hd] */
    const float *dout;       /* backward: d o */
    float *dq, *dk, *dv;     /* backward outputs (overwritten) */
    float *scratch;          /* backward: [n_threads * T] */
} tk_att;
void tk_att_fwd(bm_pool *p, tk_att *a);
void tk_att_bwd(bm_pool *p, tk_att *a);

#endif
