/* Tile driver shared by the 512-bit float-weight kernels (mm_float_vnni.c, mm_float_bf16.c).
 * A kernel provides CORE(a, r, t0, pf, nr, nt): rows [r, r + nr) x tokens [t0, t0 + nt), one
 * accumulator per output element, the same instruction sequence for that element whatever the
 * tile shape (nr, nt only decide how many elements share each load). The driver below picks the
 * shapes: 8 rows x 1 token in decode (8 independent FMA chains, 8 weight streams, the next
 * tile prefetched), and in prefill RT rows x TT tokens (per kernel) over row blocks of about
 * 128 KiB of weights, so a block stays in L2 while every token tile passes over it. Shapes
 * never change results: batch invariant. */
#ifndef BAIMO_X86_MM_FLOAT_TILE_H
#define BAIMO_X86_MM_FLOAT_TILE_H

#include "tensor/x86/wblock.h"

#define MMF_RT1 8             /* rows per tile when n_tok == 1 */
#define MMF_TT 4              /* most tokens per tile */
#define MMF_BLOCK_BYTES 131072 /* weight bytes per row block in prefill */

/* Decode prefetch: the 8 rows of a tile are one contiguous region, but 8 short interleaved
 * streams train the hardware prefetchers poorly, so while a tile consumes its region at
 * `bytes` per step, the same share of the next tile's region is prefetched into L2. */
INLINE void mmf_prefetch(const uint8_t *p, const int bytes) {
    _Pragma("GCC unroll 16") for (int o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + o, _MM_HINT_T1);
}

/* Defines `static void NAME##_tile(a, r, t0, nr, nt)` (a switch over the allowed shapes, each a
 * specialization of CORE(a, r, t0, pf, nr, nt) with constant nr, nt; pf: the next tile's weights
 * to prefetch or NULL) and `void FN(a, r0, r1)` whose prefill tiles are RT rows x TT tokens
 * (4 x 4, or 8 x 3 at most). */
#define MMF_DRIVER(NAME, CORE, FN, RT, TT)                                                         \
    static void NAME##_tile(const bm_mm_args *a, int64_t r, int64_t t0, int nr, int nt) {          \
        switch (nr * 16 + nt) {                                                                    \
        case 0x11: CORE(a, r, t0, NULL, 1, 1); break;                                              \
        case 0x21: CORE(a, r, t0, NULL, 2, 1); break;                                              \
        case 0x31: CORE(a, r, t0, NULL, 3, 1); break;                                              \
        case 0x41: CORE(a, r, t0, NULL, 4, 1); break;                                              \
        case 0x51: CORE(a, r, t0, NULL, 5, 1); break;                                              \
        case 0x61: CORE(a, r, t0, NULL, 6, 1); break;                                              \
        case 0x71: CORE(a, r, t0, NULL, 7, 1); break;                                              \
        case 0x81: CORE(a, r, t0, NULL, 8, 1); break;                                              \
        case 0x12: CORE(a, r, t0, NULL, 1, 2); break;                                              \
        case 0x22: CORE(a, r, t0, NULL, 2, 2); break;                                              \
        case 0x32: CORE(a, r, t0, NULL, 3, 2); break;                                              \
        case 0x42: CORE(a, r, t0, NULL, 4, 2); break;                                              \
        case 0x52: CORE(a, r, t0, NULL, 5, 2); break;                                              \
        case 0x62: CORE(a, r, t0, NULL, 6, 2); break;                                              \
        case 0x72: CORE(a, r, t0, NULL, 7, 2); break;                                              \
        case 0x82: CORE(a, r, t0, NULL, 8, 2); break;                                              \
        case 0x13: CORE(a, r, t0, NULL, 1, 3); break;                                              \
        case 0x23: CORE(a, r, t0, NULL, 2, 3); break;                                              \
        case 0x33: CORE(a, r, t0, NULL, 3, 3); break;                                              \
        case 0x43: CORE(a, r, t0, NULL, 4, 3); break;                                              \
        case 0x53: CORE(a, r, t0, NULL, 5, 3); break;                                              \
        case 0x63: CORE(a, r, t0, NULL, 6, 3); break;                                              \
        case 0x73: CORE(a, r, t0, NULL, 7, 3); break;                                              \
        case 0x83: CORE(a, r, t0, NULL, 8, 3); break;                                              \
        case 0x14: CORE(a, r, t0, NULL, 1, 4); break;                                              \
        case 0x24: CORE(a, r, t0, NULL, 2, 4); break;                                              \
        case 0x34: CORE(a, r, t0, NULL, 3, 4); break;                                              \
        case 0x44: CORE(a, r, t0, NULL, 4, 4); break;                                              \
        default: break;                                                                            \
        }                                                                                          \
    }                                                                                              \
    void FN(const bm_mm_args *a, int64_t r0, int64_t r1) {                                         \
        if (a->n_tok == 1) {                                                                       \
            int64_t r = r0;                                                                        \
            for (; r + MMF_RT1 <= r1; r += MMF_RT1) {                                              \
                const uint8_t *pf = r + 2 * MMF_RT1 <= r1                                          \
                                        ? a->w + (size_t)(r + MMF_RT1) * a->row_bytes              \
                                        : NULL;                                                    \
                CORE(a, r, 0, pf, MMF_RT1, 1);                                                     \
            }                                                                                      \
            if (r < r1) NAME##_tile(a, r, 0, (int)(r1 - r), 1);                                    \
            return;                                                                                \
        }                                                                                          \
        int64_t rb = (int64_t)(MMF_BLOCK_BYTES / (a->row_bytes ? a->row_bytes : 1));               \
        rb -= rb % RT;                                                                             \
        if (rb < RT) rb = RT;                                                                      \
        for (int64_t b0 = r0; b0 < r1; b0 += rb) {                                                 \
            const int64_t b1 = b0 + rb < r1 ? b0 + rb : r1;                                        \
            for (int64_t t = 0; t < a->n_tok; t += TT) {                                           \
                const int nt = a->n_tok - t < TT ? (int)(a->n_tok - t) : TT;                       \
                int64_t r = b0;                                                                    \
                if (nt == TT)                                                                      \
                    for (; r + RT <= b1; r += RT) CORE(a, r, t, NULL, RT, TT);                     \
                for (; r + RT <= b1; r += RT) NAME##_tile(a, r, t, RT, nt);                        \
                if (r < b1) NAME##_tile(a, r, t, (int)(b1 - r), nt);                               \
            }                                                                                      \
        }                                                                                          \
    }

#endif
