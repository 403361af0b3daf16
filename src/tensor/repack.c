/* Weight repacking at load: rows of Q8_0 / Q4_0 / Q5_0 / Q4_K / Q5_K / Q6_K tensors regrouped
 * by 16 and interleaved by column quads (layout in kernels.h) so the packed kernels produce 16
 * outputs per vector instruction with no horizontal sums; BF16 rows (only where the level has a
 * packed BF16 kernel: AMX-BF16) into AMX B tiles of column pairs. Plain C over the GGUF block structs;
 * the result is a separate buffer (t->packed), the original bytes stay mapped for everything
 * else (the scalar kernels, writers); bm_pack_get_block reads a block back exactly, so a tied
 * head's embedding rows come from the packed copy. */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* 8 sub-blocks of 320 bytes (nibbles + plane), then d, dmin (32 bytes each), sc, m (128 each). */
_Static_assert(BM_PACK_Q5_K_SB == 8 * 320 + 2 * 32 + 2 * 128 && BM_PACK_Q5_K_SB % 64 == 0,
               "Q5_K packed super-block: whole 64-byte lines");

size_t bm_pack_group_bytes(bm_dtype type, int64_t n_in) {
    if (type == BM_BF16) /* 1024 bytes per 32 columns, the last block zero-padded */
        return n_in > 0 ? (size_t)((n_in + BM_QK - 1) / BM_QK) * 1024 : 0;
    const size_t nb = (size_t)(n_in / BM_QK), R = BM_PACK_ROWS;
    const bool k = type == BM_Q4_K || type == BM_Q5_K || type == BM_Q6_K;
    if (n_in <= 0 || n_in % (k ? BM_QK_K : BM_QK)) return 0;
    size_t b;
    switch (type) {
    case BM_Q8_0: b = nb * R * (BM_QK + 2); break;
    case BM_Q4_0: b = nb * R * (BM_QK / 2 + 2); break;
    case BM_Q5_0: b = nb * R * (BM_QK / 2 + 6); break;
    case BM_Q4_K: b = (size_t)(n_in / BM_QK_K) * BM_PACK_Q4_K_SB; break;
    case BM_Q5_K: b = (size_t)(n_in / BM_QK_K) * BM_PACK_Q5_K_SB; break;
    case BM_Q6_K: b = (size_t)(n_in / BM_QK_K) * BM_PACK_Q6_K_SB; break;
    default: return 0;
    }
    return (b + 63) & ~(size_t)63; /* every group starts 64-byte aligned */
}

/* Codes q[32] (0..15) of one 32-column block of row i into the Q4_0-style nibble layout at out
 * (256 bytes for the group's 16 rows). */
static void put_nibbles(const uint8_t q[BM_QK], int64_t i, uint8_t *out) {
    for (int c = 0; c < 4; c++)
        for (int j = 0; j < 4; j++)
            out[(c * BM_PACK_ROWS + i) * 4 + j] = (uint8_t)(q[8 * c + j] | q[8 * c + 4 + j] << 4);
}

/* Fifth bits f[32] (0/1) of one 32-column block of row i into the Q5_0-style plane at out
 * (64 bytes for the group's 16 rows): byte i * 4 + j, bit c = column 4 c + j. */
static void put_plane(const uint8_t f[BM_QK], int64_t i, uint8_t *out) {
    for (int j = 0; j < 4; j++) {
        uint8_t v = 0;
        for (int c = 0; c < 8; c++) v |= (uint8_t)(f[4 * c + j] << c);
        out[i * 4 + j] = v;
    }
}

/* Q4_K (q5 = 0) or Q5_K (q5 = 1) super-block of row i (GGUF block at blk) into the group's
 * packed super-block sb: per sub-block j the nibbles (and for Q5_K the plane of fifth bits,
 * bit j of qh[l] for column l), then d, dmin, scales and mins. */
static void pack_q45_K(const uint8_t *blk, int64_t i, uint8_t *sb, int q5) {
    const int64_t R = BM_PACK_ROWS, cb = q5 ? 320 : 256;
    uint8_t *sp = sb + 8 * cb; /* d, dmin, sc, m */
    memcpy(sp + 2 * i, blk, 2);         /* d */
    memcpy(sp + 2 * R + 2 * i, blk + 2, 2); /* dmin */
    const uint8_t *s = blk + 4, *qh = blk + 16, *qs = blk + (q5 ? 48 : 16);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        if (j < 4) {
            sc = s[j] & 63;
            m = s[j + 4] & 63;
        } else {
            sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
            m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
        }
        sp[4 * R + j * R + i] = (uint8_t)sc;
        sp[4 * R + 8 * R + j * R + i] = (uint8_t)m;
        uint8_t q[BM_QK], f[BM_QK];
        for (int l = 0; l < BM_QK; l++) {
            q[l] = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
            f[l] = q5 ? (qh[l] >> j) & 1 : 0;
        }
        put_nibbles(q, i, sb + j * cb);
        if (q5) put_plane(f, i, sb + j * cb + 256);
    }
}

/* Q6_K super-block of row i: per 32-block j the low nibbles (Q4_0 layout) and the high 2 bits
 * (two vectors of 4 column quads: quads 4h + 0, 1, 2, 3 in bits 4-5, 6-7, 0-1, 2-3). */
static void pack_q6_K(const uint8_t *blk, int64_t i, uint8_t *sb) {
    const int64_t R = BM_PACK_ROWS;
    const uint8_t *ql = blk, *qh = blk + 128;
    static const int pos[4] = {4, 6, 0, 2};
    uint16_t h;
    memcpy(&h, blk + 208, 2);
    const float d = bm_f16_to_f32(h);
    memcpy(sb + 8 * 384 + 16 * R + 4 * i, &d, 4);
    for (int e = 0; e < 16; e++) sb[8 * 384 + e * R + i] = blk[192 + e];
    for (int j = 0; j < 8; j++) {
        const int c = j / 4, s = j % 4;
        uint8_t lo[BM_QK], *hv = sb + j * 384 + 256;
        for (int l = 0; l < BM_QK; l++) {
            lo[l] = (ql[64 * c + l + 32 * (s % 2)] >> (4 * (s / 2))) & 0xF;
            const int hi = (qh[32 * c + l] >> (2 * s)) & 3, k = l / 4;
            hv[((k / 4) * R + i) * 4 + l % 4] |= (uint8_t)(hi << pos[k % 4]);
        }
        put_nibbles(lo, i, sb + j * 384);
    }
}

/* BF16 group g: column pair (2q, 2q + 1) of row i at (q / 16) * 1024 + (q % 16 * 16 + i) * 4,
 * padding rows and columns zero. */
static void pack_bf16(const uint8_t *w, size_t row_bytes, int64_t n_in, int64_t n_rows,
                      int64_t g, uint8_t *dst) {
    memset(dst, 0, bm_pack_group_bytes(BM_BF16, n_in));
    for (int64_t i = 0; i < BM_PACK_ROWS && g * BM_PACK_ROWS + i < n_rows; i++) {
        const uint8_t *row = w + (size_t)(g * BM_PACK_ROWS + i) * row_bytes;
        for (int64_t q = 0; 2 * q < n_in; q++)
            memcpy(dst + (size_t)(q / 16) * 1024 + (size_t)((q % 16) * BM_PACK_ROWS + i) * 4,
                   row + 4 * q, 2 * q + 1 < n_in ? 4 : 2);
    }
}

void bm_pack_group(bm_dtype type, const uint8_t *w, size_t row_bytes, int64_t n_in,
                   int64_t n_rows, int64_t g, uint8_t *dst) {
    if (type == BM_BF16) {
        pack_bf16(w, row_bytes, n_in, n_rows, g, dst);
        return;
    }
    if (type == BM_Q4_K || type == BM_Q5_K || type == BM_Q6_K) {
        /* Padding rows: all zero (scales 0). */
        const size_t sbb = type == BM_Q4_K   ? BM_PACK_Q4_K_SB
                           : type == BM_Q5_K ? BM_PACK_Q5_K_SB
                                             : BM_PACK_Q6_K_SB;
        const size_t bsz = type == BM_Q4_K   ? sizeof(bm_block_q4_K)
                           : type == BM_Q5_K ? sizeof(bm_block_q5_K)
                                             : sizeof(bm_block_q6_K);
        memset(dst, 0, bm_pack_group_bytes(type, n_in));
        for (int64_t i = 0; i < BM_PACK_ROWS && g * BM_PACK_ROWS + i < n_rows; i++) {
            const uint8_t *row = w + (size_t)(g * BM_PACK_ROWS + i) * row_bytes;
            for (int64_t s = 0; s < n_in / BM_QK_K; s++) {
                const uint8_t *blk = row + (size_t)s * bsz;
                uint8_t *sb = dst + (size_t)s * sbb;
                if (type == BM_Q6_K) pack_q6_K(blk, i, sb);
                else pack_q45_K(blk, i, sb, type == BM_Q5_K);
            }
        }
        return;
    }
    const int64_t nb = n_in / BM_QK, R = BM_PACK_ROWS;
    const bool q8 = type == BM_Q8_0, q5 = type == BM_Q5_0;
    const size_t bsz = q8 ? sizeof(bm_block_q8_0) : q5 ? sizeof(bm_block_q5_0)
                                                       : sizeof(bm_block_q4_0);
    const size_t cb = q8 ? (size_t)R * BM_QK : (size_t)R * (BM_QK / 2 + (q5 ? 4 : 0));
    uint16_t *scales = (uint16_t *)(dst + (size_t)nb * cb);
    /* Padding rows read as zeros: scale 0 and, for Q8_0, codes 128 (stored + 128). */
    memset(dst, q8 ? 128 : 0, (size_t)nb * cb);
    memset(scales, 0, bm_pack_group_bytes(type, n_in) - (size_t)nb * cb);
    for (int64_t i = 0; i < R && g * R + i < n_rows; i++) {
        const uint8_t *row = w + (size_t)(g * R + i) * row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bsz;
            uint8_t *out = dst + (size_t)b * cb;
            memcpy(&scales[b * R + i], blk, sizeof(uint16_t)); /* d is the first field */
            if (q8) {
                const uint8_t *qs = blk + 2;
                for (int c = 0; c < 8; c++) {
                    uint32_t v;
                    memcpy(&v, qs + 4 * c, 4);
                    v ^= 0x80808080u;
                    memcpy(out + (c * R + i) * 4, &v, 4);
                }
                continue;
            }
            /* Column k: k < 16 low nibble of qs[k], else high nibble of qs[k - 16]. Vector c,
             * lane j holds column 8c + j (low nibble) and 8c + 4 + j (high). Q5_0 adds bit k
             * of qh as the fifth bit, packed in a plane after the nibbles: byte (i * 4 + j)
             * bit c = fifth bit of column 4 c + j. */
            const uint8_t *qs = blk + (q5 ? 6 : 2);
            for (int j = 0; j < 4; j++) {
                out[(0 * R + i) * 4 + j] = (uint8_t)((qs[j] & 0x0F) | qs[j + 4] << 4);
                out[(1 * R + i) * 4 + j] = (uint8_t)((qs[8 + j] & 0x0F) | qs[12 + j] << 4);
                out[(2 * R + i) * 4 + j] = (uint8_t)((qs[j] >> 4) | (qs[j + 4] & 0xF0));
                out[(3 * R + i) * 4 + j] = (uint8_t)((qs[8 + j] >> 4) | (qs[12 + j] & 0xF0));
            }
            if (q5) {
                uint32_t qh;
                memcpy(&qh, blk + 2, 4);
                for (int j = 0; j < 4; j++) {
                    uint8_t v = 0;
                    for (int c = 0; c < 8; c++) v |= (uint8_t)(((qh >> (4 * c + j)) & 1) << c);
                    out[R * BM_QK / 2 + i * 4 + j] = v;
                }
            }
        }
    }
}

bool bm_tensor_packable(const bm_tensor *t) {
    const bm_kernels *k = bm_kernels_get();
    /* BF16 takes any row length (zero-padded); the quantized types whole blocks. */
    return t && t->n_dims == 2 && (unsigned)t->type < BM_DTYPE_COUNT && k->mmp[t->type] &&
           t->ne[0] > 0 && (t->type == BM_BF16 || t->ne[0] % BM_QK == 0) &&
           t->ne[1] >= BM_PACK_ROWS &&
           bm_pack_group_bytes(t->type, t->ne[0]) > 0;
}

typedef struct pack_task {
    const bm_tensor *t;
    size_t row_bytes, group_bytes;
    int64_t g0, n_groups; /* this slice */
    uint8_t *dst;
} pack_task;

static void pack_run(void *ctx, int ith, int nth) {
    const pack_task *p = ctx;
    int64_t lo, hi;
    bm_split_range(p->n_groups, ith, nth, &lo, &hi);
    for (int64_t g = p->g0 + lo; g < p->g0 + hi; g++)
        bm_pack_group(p->t->type, p->t->data, p->row_bytes, p->t->ne[0], p->t->ne[1], g,
                      p->dst + (size_t)g * p->group_bytes);
}

void *bm_pack_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20, cap = (bytes + huge - 1) & ~(huge - 1);
    void *p = cap >= bytes && cap > 0 ? aligned_alloc(huge, cap) : NULL;
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, cap, MADV_HUGEPAGE);
#endif
    return p;
}

size_t bm_tensor_pack_bytes(const bm_tensor *t) {
    size_t total;
    if (!bm_tensor_packable(t)) return 0;
    const int64_t n_groups = (t->ne[1] + BM_PACK_ROWS - 1) / BM_PACK_ROWS;
    return bm_size_mul(bm_pack_group_bytes(t->type, t->ne[0]), (size_t)n_groups, &total) ? total
                                                                                         : 0;
}

bm_status bm_tensor_pack_into(bm_tensor *t, bm_pool *pool, bm_release_fn release, void *rctx,
                              void *dst, bm_err *err) {
    size_t rb;
    if (!bm_tensor_packable(t) || !bm_tensor_pack_bytes(t))
        return bm_err_set(err, BM_EINVAL, "pack: tensor '%s' (%s) has no packed layout here",
                          t ? t->name : "?", t ? bm_dtype_name(t->type) : "?");
    if (!bm_row_bytes(t->type, t->ne[0], &rb))
        return bm_err_set(err, BM_EINVAL, "pack: bad row length in '%s'", t->name);
    if ((uintptr_t)dst % 64)
        return bm_err_set(err, BM_EINVAL, "pack: destination for '%s' is not 64-byte aligned",
                          t->name);
    const int64_t n_groups = (t->ne[1] + BM_PACK_ROWS - 1) / BM_PACK_ROWS;
    const size_t gb = bm_pack_group_bytes(t->type, t->ne[0]);
    /* Slices of about 16 MiB, each source slice released once copied. */
    int64_t per = (int64_t)(((size_t)16 << 20) / gb);
    if (per < 1) per = 1;
    for (int64_t g0 = 0; g0 < n_groups; g0 += per) {
        pack_task pt = {.t = t, .row_bytes = rb, .group_bytes = gb, .g0 = g0,
                        .n_groups = g0 + per < n_groups ? per : n_groups - g0, .dst = dst};
        bm_pool_run(pool, pack_run, &pt, pool ? bm_pool_n_threads(pool) : 1);
        if (release) {
            const int64_t r0 = g0 * BM_PACK_ROWS;
            int64_t r1 = (g0 + pt.n_groups) * BM_PACK_ROWS;
            if (r1 > t->ne[1]) r1 = t->ne[1];
            release(rctx, (const uint8_t *)t->data + (size_t)r0 * rb, (size_t)(r1 - r0) * rb);
        }
    }
    t->packed = dst;
    return BM_OK;
}

bm_status bm_tensor_pack(bm_tensor *t, bm_pool *pool, bm_release_fn release, void *rctx,
                         void **buf, size_t *bytes, bm_err *err) {
    *buf = NULL;
    *bytes = 0;
    const size_t total = bm_tensor_pack_bytes(t);
    if (!total)
        return bm_err_set(err, BM_EINVAL, "pack: tensor '%s' (%s) has no packed layout here",
                          t ? t->name : "?", t ? bm_dtype_name(t->type) : "?");
    uint8_t *p = bm_pack_alloc(total);
    if (!p) return bm_err_set(err, BM_ENOMEM, "pack: out of memory for '%s'", t->name);
    bm_status st = bm_tensor_pack_into(t, pool, release, rctx, p, err);
    if (st) {
        free(p);
        return st;
    }
    *buf = p;
    *bytes = total;
    return BM_OK;
}

/* ---- reading rows back (the exact inverse of bm_pack_group) ------------------------------ */

/* Code of row i, column l (0..31) of a 32-column block in the Q4_0-style nibble layout. */
static uint8_t get_nibble(const uint8_t *nib, int64_t i, int l) {
    const int c = l / 8, j = l % 4, hi = (l % 8) / 4;
    return (uint8_t)((nib[(c * BM_PACK_ROWS + i) * 4 + j] >> (4 * hi)) & 0xF);
}

/* Inverse of pack_q45_K. */
static void unpack_q45_K(const uint8_t *sb, int64_t i, uint8_t *blk, int q5) {
    const int64_t R = BM_PACK_ROWS, cb = q5 ? 320 : 256;
    const uint8_t *sp = sb + 8 * cb;
    memset(blk, 0, q5 ? sizeof(bm_block_q5_K) : sizeof(bm_block_q4_K));
    memcpy(blk, sp + 2 * i, 2);
    memcpy(blk + 2, sp + 2 * R + 2 * i, 2);
    uint8_t *s = blk + 4, *qh = blk + 16, *qs = blk + (q5 ? 48 : 16);
    for (int j = 0; j < 8; j++) {
        const int sc = sp[4 * R + j * R + i];
        const int m = sp[4 * R + 8 * R + j * R + i];
        if (j < 4) {
            s[j] |= (uint8_t)sc;
            s[j + 4] |= (uint8_t)m;
        } else {
            s[j + 4] = (uint8_t)((sc & 0xF) | (m & 0xF) << 4);
            s[j - 4] |= (uint8_t)((sc >> 4) << 6);
            s[j] |= (uint8_t)((m >> 4) << 6);
        }
        const uint8_t *plane = sb + j * cb + 256;
        for (int l = 0; l < BM_QK; l++) {
            qs[32 * (j / 2) + l] |= (uint8_t)(get_nibble(sb + j * cb, i, l) << (4 * (j % 2)));
            if (q5) qh[l] |= (uint8_t)(((plane[i * 4 + l % 4] >> (l / 4)) & 1) << j);
        }
    }
}

static void unpack_q6_K(const uint8_t *sb, int64_t i, uint8_t *blk) {
    const int64_t R = BM_PACK_ROWS;
    static const int pos[4] = {4, 6, 0, 2};
    memset(blk, 0, sizeof(bm_block_q6_K));
    uint8_t *ql = blk, *qh = blk + 128;
    float d;
    memcpy(&d, sb + 8 * 384 + 16 * R + 4 * i, 4);
    const uint16_t h = bm_f32_to_f16(d);
    memcpy(blk + 208, &h, 2);
    for (int e = 0; e < 16; e++) blk[192 + e] = sb[8 * 384 + e * R + i];
    for (int j = 0; j < 8; j++) {
        const int c = j / 4, s = j % 4;
        const uint8_t *hv = sb + j * 384 + 256;
        for (int l = 0; l < BM_QK; l++) {
            const int k = l / 4, hi = (hv[((k / 4) * R + i) * 4 + l % 4] >> pos[k % 4]) & 3;
            ql[64 * c + l + 32 * (s % 2)] |=
                (uint8_t)(get_nibble(sb + j * 384, i, l) << (4 * (s / 2)));
            qh[32 * c + l] |= (uint8_t)(hi << (2 * s));
        }
    }
}

void bm_pack_get_block(bm_dtype type, const uint8_t *grp, int64_t n_in, int64_t i, int64_t b,
                       uint8_t *blk) {
    if (type == BM_BF16) { /* block b = column b */
        memcpy(blk, grp + (size_t)(b / 32) * 1024 + (size_t)((b % 32 / 2) * BM_PACK_ROWS + i) * 4 +
                        (size_t)(b % 2) * 2, 2);
        return;
    }
    if (type == BM_Q4_K || type == BM_Q5_K) {
        const int q5 = type == BM_Q5_K;
        unpack_q45_K(grp + (size_t)b * (q5 ? BM_PACK_Q5_K_SB : BM_PACK_Q4_K_SB), i, blk, q5);
        return;
    }
    if (type == BM_Q6_K) {
        unpack_q6_K(grp + (size_t)b * BM_PACK_Q6_K_SB, i, blk);
        return;
    }
    const int64_t nb = n_in / BM_QK, R = BM_PACK_ROWS;
    const bool q8 = type == BM_Q8_0, q5 = type == BM_Q5_0;
    const size_t cb = q8 ? (size_t)R * BM_QK : (size_t)R * (BM_QK / 2 + (q5 ? 4 : 0));
    const uint8_t *in = grp + (size_t)b * cb;
    memcpy(blk, grp + (size_t)nb * cb + (size_t)(b * R + i) * 2, 2);
    if (q8) {
        for (int c = 0; c < 8; c++) {
            uint32_t v;
            memcpy(&v, in + (c * R + i) * 4, 4);
            v ^= 0x80808080u;
            memcpy(blk + 2 + 4 * c, &v, 4);
        }
        return;
    }
    uint8_t *qs = blk + (q5 ? 6 : 2);
    for (int l = 0; l < BM_QK / 2; l++)
        qs[l] = (uint8_t)(get_nibble(in, i, l) | get_nibble(in, i, l + 16) << 4);
    if (q5) {
        uint32_t qh = 0;
        for (int j = 0; j < 4; j++) {
            const uint8_t v = in[R * BM_QK / 2 + i * 4 + j];
            for (int c = 0; c < 8; c++) qh |= (uint32_t)((v >> c) & 1) << (4 * c + j);
        }
        memcpy(blk + 2, &qh, 4);
    }
}
