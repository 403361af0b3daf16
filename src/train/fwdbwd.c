/* Forward pass with saved activations and the backward pass of the training model, each
 * layer's gradient derived from its definition (the same math as src/model/forward.c):
 *   RMSNorm y = x r w, r = (mean(x^2) + eps)^-1/2:
 *       dw += dy x r;  dx = r (dy w) - x r^3 / n * sum(dy w x)
 *   linear y = x W^T + b:  dx = dy W;  dW += dy^T x;  db += sum dy
 *   RoPE (a rotation by theta per pair): dx = rotation by -theta of dy
 *   SwiGLU h = silu(g) u, silu(g) = g s(g):  du = dh silu(g);
 *       dg = dh u s(g) (1 + g (1 - s(g)))
 *   cross-entropy l = logsumexp(z) - z_y:  dz = softmax(z) - onehot(y)
 *   attention: see kern.c. Residual streams add gradients; tied embeddings sum both uses. */
#include "train/train_int.h"

#include <math.h>
#include <string.h>

/* Per-layer saved activations (N tokens). */
enum { A_XN1, A_Q, A_K, A_V, A_AO, A_XMID, A_XN2, A_G, A_U, A_H, A_R1, A_R2, A_NLAYER };

typedef struct acts {
    int64_t N, T, n_seq;
    float *xs;                   /* [n_layer + 1][N, E] residual stream at each layer input */
    float *lay;                  /* [n_layer] blocks of per-layer activations */
    size_t lay_floats, off[A_NLAYER];
    float *p;                    /* [n_layer][n_seq, H, T, T] */
    size_t p_floats;
    float *rf, *xnf;             /* final norm: [N], [N, E] */
    float *dx, *dxn, *dq, *dk, *dv, *dao, *dg, *du; /* backward scratch */
    float *logits;               /* [CHUNK, V] */
    float *rowloss;              /* [CHUNK] */
    float *att_scr;              /* [n_threads, T] */
} acts;

enum { CHUNK = 64 };

static size_t rnd16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Carves the activation buffer; with base NULL only counts. */
static size_t carve(const bm_tmodel *m, int64_t n_seq, int64_t T, float *base, acts *a) {
    const bm_train_hparams *h = &m->hp;
    const size_t N = (size_t)(n_seq * T), E = (size_t)h->n_embd, F = (size_t)h->n_ff,
                 qd = (size_t)m->qd, kvd = (size_t)m->kvd, V = (size_t)h->n_vocab;
    int nth = m->pool ? bm_pool_n_threads(m->pool) : 1;
    size_t o = 0;
    memset(a, 0, sizeof *a);
    a->N = (int64_t)N;
    a->T = T;
    a->n_seq = n_seq;
#define TAKE(ptr, n)                                                                           \
    do {                                                                                       \
        (ptr) = base ? base + o : NULL;                                                        \
        o += rnd16(n);                                                                         \
    } while (0)
    TAKE(a->xs, (size_t)(h->n_layer + 1) * N * E);
    size_t lo = 0, sizes[A_NLAYER] = {N * E, N * qd, N * kvd, N * kvd, N * qd, N * E, N * E,
                                      N * F, N * F, N * F, N, N};
    for (int i = 0; i < A_NLAYER; i++) {
        a->off[i] = lo;
        lo += rnd16(sizes[i]);
    }
    a->lay_floats = lo;
    TAKE(a->lay, (size_t)h->n_layer * lo);
    a->p_floats = rnd16((size_t)n_seq * (size_t)h->n_head * (size_t)(T * T));
    TAKE(a->p, (size_t)h->n_layer * a->p_floats);
    TAKE(a->rf, N);
    TAKE(a->xnf, N * E);
    TAKE(a->dx, N * E);
    TAKE(a->dxn, N * E);
    TAKE(a->dq, N * qd);
    TAKE(a->dk, N * kvd);
    TAKE(a->dv, N * kvd);
    TAKE(a->dao, N * qd);
    TAKE(a->dg, N * F);
    TAKE(a->du, N * F);
    TAKE(a->logits, (size_t)CHUNK * V);
    TAKE(a->rowloss, CHUNK);
    TAKE(a->att_scr, (size_t)nth * (size_t)T);
#undef TAKE
    return o;
}

static inline float *L(const acts *a, int layer, int which) {
    return a->lay + (size_t)layer * a->lay_floats + a->off[which];
}

static void rms_fwd(const float *x, const float *w, float *y, float *r, int64_t N, int64_t E,
                    float eps) {
    for (int64_t t = 0; t < N; t++) {
        const float *xr = x + t * E;
        float *yr = y + t * E;
        double ss = 0;
        for (int64_t i = 0; i < E; i++) ss += (double)xr[i] * xr[i];
        float rr = (float)(1.0 / sqrt(ss / (double)E + eps));
        r[t] = rr;
        for (int64_t i = 0; i < E; i++) yr[i] = xr[i] * rr * w[i];
    }
}

/* dx (+)= rmsnorm backward of dy; dw += ... */
static void rms_bwd(const float *dy, const float *x, const float *w, const float *r, float *dx,
                    float *dw, int64_t N, int64_t E, bool acc) {
    for (int64_t t = 0; t < N; t++) {
        const float *g = dy + t * E, *xr = x + t * E;
        float *d = dx + t * E, rr = r[t];
        double s = 0;
        for (int64_t i = 0; i < E; i++) {
            s += (double)g[i] * w[i] * xr[i];
            dw[i] += g[i] * xr[i] * rr;
        }
        float c = (float)(s * (double)rr * rr * rr / (double)E);
        for (int64_t i = 0; i < E; i++) {
            float v = rr * g[i] * w[i] - xr[i] * c;
            d[i] = acc ? d[i] + v : v;
        }
    }
}

static void rope_rows(float *x, int64_t N, int64_t T, int n_heads, int hd, bool neox,
                      const float *cs) {
    for (int64_t t = 0; t < N; t++) {
        const float *c = cs + (size_t)(t % T) * (size_t)hd;
        for (int h = 0; h < n_heads; h++) bm_k_rope_ref(x + (t * n_heads + h) * hd, hd, neox, c);
    }
}

typedef struct ce_task {
    const float *logits;
    float *dlogits, *rowloss;
    const int32_t *target;
    const uint8_t *counted;
    int64_t n, V;
    float scale;
    bool backward;
} ce_task;

static void ce_run(void *ctx, int ith, int nth) {
    const ce_task *c = ctx;
    int64_t lo, hi;
    bm_split_range(c->n, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *z = c->logits + r * c->V;
        float *dz = c->dlogits + r * c->V;
        float mx = -INFINITY;
        for (int64_t i = 0; i < c->V; i++) mx = z[i] > mx ? z[i] : mx;
        double sum = 0;
        for (int64_t i = 0; i < c->V; i++) sum += exp((double)(z[i] - mx));
        double lse = (double)mx + log(sum);
        c->rowloss[r] = c->counted[r] ? (float)(lse - z[c->target[r]]) : 0.0f;
        if (!c->backward) continue;
        if (!c->counted[r]) {
            memset(dz, 0, (size_t)c->V * 4);
            continue;
        }
        for (int64_t i = 0; i < c->V; i++) dz[i] = (float)exp((double)z[i] - lse) * c->scale;
        dz[c->target[r]] -= c->scale;
    }
}

static bm_status ensure_acts(bm_tmodel *m, int64_t n_seq, int64_t T, acts *a, bm_err *err) {
    size_t need = carve(m, n_seq, T, NULL, a);
    if ((int64_t)need > m->act_n) {
        bm_free_aligned(m->act);
        m->act_n = 0;
        size_t bytes;
        if (!bm_size_mul(need, sizeof(float), &bytes))
            return bm_err_set(err, BM_EOVERFLOW, "train: activation size overflows");
        m->act = bm_malloc_aligned(bytes, err);
        if (!m->act)
            return bm_err_wrap(err, "train: activations for %lld x %lld tokens",
                               (long long)n_seq, (long long)T);
        m->act_n = (int64_t)need;
    }
    carve(m, n_seq, T, m->act, a);
    return BM_OK;
}

bm_status bm_tmodel_step(bm_tmodel *m, const int32_t *tokens, const uint8_t *mask,
                         int32_t n_seq, int32_t T, bool backward, float scale,
                         double *loss_sum, int64_t *n_counted, bm_err *err) {
    const bm_train_hparams *h = &m->hp;
    if (n_seq < 1 || T < 1 || T > h->n_ctx)
        return bm_err_set(err, BM_ERANGE, "train: batch %d x %d tokens; sequence length must be "
                          "in [1, %d]", n_seq, T, h->n_ctx);
    for (int64_t i = 0; i < (int64_t)n_seq * (T + 1); i++)
        if (tokens[i] < 0 || tokens[i] >= h->n_vocab)
            return bm_err_set(err, BM_EINVAL, "train: token id %d is outside the vocabulary "
                              "[0, %d)", tokens[i], h->n_vocab);
    acts a;
    bm_status st = ensure_acts(m, n_seq, T, &a, err);
    if (st) return st;
    bm_pool *pool = m->pool;
    const int64_t N = (int64_t)n_seq * T, E = h->n_embd, F = h->n_ff, qd = m->qd,
                  kvd = m->kvd, V = h->n_vocab;
    const float *P = m->params;
    float *G = m->grads;
    const float eps = h->norm_eps;

    /* ---- forward ---- */
    for (int64_t t = 0; t < N; t++) {
        int32_t tok = tokens[(t / T) * (T + 1) + t % T];
        memcpy(a.xs + t * E, P + m->emb + (size_t)tok * (size_t)E, (size_t)E * 4);
    }
    for (int li = 0; li < h->n_layer; li++) {
        const tlayer *l = &m->L[li];
        float *x = a.xs + (size_t)li * (size_t)(N * E), *xo = x + N * E;
        float *xn1 = L(&a, li, A_XN1), *q = L(&a, li, A_Q), *k = L(&a, li, A_K),
              *v = L(&a, li, A_V), *ao = L(&a, li, A_AO), *xm = L(&a, li, A_XMID),
              *xn2 = L(&a, li, A_XN2), *g = L(&a, li, A_G), *u = L(&a, li, A_U),
              *hh = L(&a, li, A_H);
        rms_fwd(x, P + l->attn_norm, xn1, L(&a, li, A_R1), N, E, eps);
        tk_mm_fwd(pool, xn1, P + l->wq, m->bias ? P + l->bq : NULL, N, E, qd, q);
        tk_mm_fwd(pool, xn1, P + l->wk, m->bias ? P + l->bk : NULL, N, E, kvd, k);
        tk_mm_fwd(pool, xn1, P + l->wv, m->bias ? P + l->bv : NULL, N, E, kvd, v);
        rope_rows(q, N, T, h->n_head, m->hd, m->neox, m->cs);
        rope_rows(k, N, T, h->n_head_kv, m->hd, m->neox, m->cs);
        tk_att at = {n_seq, T, h->n_head, h->n_head_kv, m->hd, q, k, v,
                     a.p + (size_t)li * a.p_floats, ao, NULL, NULL, NULL, NULL, NULL};
        tk_att_fwd(pool, &at);
        tk_mm_fwd(pool, ao, P + l->wo, NULL, N, qd, E, xm);
        for (int64_t i = 0; i < N * E; i++) xm[i] += x[i];
        rms_fwd(xm, P + l->ffn_norm, xn2, L(&a, li, A_R2), N, E, eps);
        tk_mm_fwd(pool, xn2, P + l->wg, NULL, N, E, F, g);
        tk_mm_fwd(pool, xn2, P + l->wu, NULL, N, E, F, u);
        for (int64_t i = 0; i < N * F; i++) hh[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        tk_mm_fwd(pool, hh, P + l->wd, NULL, N, F, E, xo);
        for (int64_t i = 0; i < N * E; i++) xo[i] += xm[i];
    }
    const float *xl = a.xs + (size_t)h->n_layer * (size_t)(N * E);
    rms_fwd(xl, P + m->onorm, a.xnf, a.rf, N, E, eps);

    /* ---- head and loss, in chunks of CHUNK tokens (logits never fully materialised) ---- */
    int32_t tgt[CHUNK];
    uint8_t cnt[CHUNK];
    double lsum = 0;
    int64_t nc = 0;
    for (int64_t c0 = 0; c0 < N; c0 += CHUNK) {
        int64_t n = N - c0 < CHUNK ? N - c0 : CHUNK;
        for (int64_t r = 0; r < n; r++) {
            int64_t t = c0 + r, row = t / T, pos = t % T;
            tgt[r] = tokens[row * (T + 1) + pos + 1];
            cnt[r] = mask ? mask[row * (T + 1) + pos + 1] != 0 : 1;
            nc += cnt[r];
        }
        tk_mm_fwd(pool, a.xnf + c0 * E, P + m->out, NULL, n, E, V, a.logits);
        ce_task ct = {a.logits, a.logits, a.rowloss, tgt, cnt, n, V, scale, backward};
        bm_pool_run(pool, ce_run, &ct, pool ? bm_pool_n_threads(pool) : 1);
        for (int64_t r = 0; r < n; r++) lsum += a.rowloss[r];
        if (backward) {
            tk_mm_bwd_x(pool, a.logits, P + m->out, n, E, V, a.dxn + c0 * E, false);
            tk_mm_bwd_w(pool, a.logits, a.xnf + c0 * E, n, E, V, G + m->out, NULL);
        }
    }
    if (loss_sum) *loss_sum += lsum;
    if (n_counted) *n_counted += nc;
    if (!backward) return BM_OK;

    /* ---- backward ---- */
    rms_bwd(a.dxn, xl, P + m->onorm, a.rf, a.dx, G + m->onorm, N, E, false);
    for (int li = h->n_layer - 1; li >= 0; li--) {
        const tlayer *l = &m->L[li];
        const float *x = a.xs + (size_t)li * (size_t)(N * E);
        float *xn1 = L(&a, li, A_XN1), *q = L(&a, li, A_Q), *k = L(&a, li, A_K),
              *v = L(&a, li, A_V), *ao = L(&a, li, A_AO), *xm = L(&a, li, A_XMID),
              *xn2 = L(&a, li, A_XN2), *g = L(&a, li, A_G), *u = L(&a, li, A_U),
              *hh = L(&a, li, A_H);
        /* MLP: dx is dL/d(layer output) = dL/d(xm) through the residual, plus the MLP path */
        tk_mm_bwd_w(pool, a.dx, hh, N, F, E, G + l->wd, NULL);
        tk_mm_bwd_x(pool, a.dx, P + l->wd, N, F, E, a.dg, false); /* a.dg holds dh */
        for (int64_t i = 0; i < N * F; i++) {
            float s = 1.0f / (1.0f + expf(-g[i])), dh = a.dg[i];
            a.du[i] = dh * g[i] * s;
            a.dg[i] = dh * u[i] * s * (1.0f + g[i] * (1.0f - s));
        }
        tk_mm_bwd_w(pool, a.dg, xn2, N, E, F, G + l->wg, NULL);
        tk_mm_bwd_w(pool, a.du, xn2, N, E, F, G + l->wu, NULL);
        tk_mm_bwd_x(pool, a.dg, P + l->wg, N, E, F, a.dxn, false);
        tk_mm_bwd_x(pool, a.du, P + l->wu, N, E, F, a.dxn, true);
        rms_bwd(a.dxn, xm, P + l->ffn_norm, L(&a, li, A_R2), a.dx, G + l->ffn_norm, N, E, true);
        /* attention: a.dx is now dL/d(xm) */
        tk_mm_bwd_w(pool, a.dx, ao, N, qd, E, G + l->wo, NULL);
        tk_mm_bwd_x(pool, a.dx, P + l->wo, N, qd, E, a.dao, false);
        tk_att at = {n_seq, T, h->n_head, h->n_head_kv, m->hd, q, k, v,
                     a.p + (size_t)li * a.p_floats, NULL, a.dao, a.dq, a.dk, a.dv, a.att_scr};
        tk_att_bwd(pool, &at);
        rope_rows(a.dq, N, T, h->n_head, m->hd, m->neox, m->cs_inv);
        rope_rows(a.dk, N, T, h->n_head_kv, m->hd, m->neox, m->cs_inv);
        tk_mm_bwd_w(pool, a.dq, xn1, N, E, qd, G + l->wq, m->bias ? G + l->bq : NULL);
        tk_mm_bwd_w(pool, a.dk, xn1, N, E, kvd, G + l->wk, m->bias ? G + l->bk : NULL);
        tk_mm_bwd_w(pool, a.dv, xn1, N, E, kvd, G + l->wv, m->bias ? G + l->bv : NULL);
        tk_mm_bwd_x(pool, a.dq, P + l->wq, N, E, qd, a.dxn, false);
        tk_mm_bwd_x(pool, a.dk, P + l->wk, N, E, kvd, a.dxn, true);
        tk_mm_bwd_x(pool, a.dv, P + l->wv, N, E, kvd, a.dxn, true);
        rms_bwd(a.dxn, x, P + l->attn_norm, L(&a, li, A_R1), a.dx, G + l->attn_norm, N, E, true);
    }
    for (int64_t t = 0; t < N; t++) {
        int32_t tok = tokens[(t / T) * (T + 1) + t % T];
        float *ge = G + m->emb + (size_t)tok * (size_t)E;
        const float *d = a.dx + t * E;
        for (int64_t i = 0; i < E; i++) ge[i] += d[i];
    }
    return BM_OK;
}
