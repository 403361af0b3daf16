/* The row-range driver shared by the row-tiled matmul kernels of every ISA (x86/mmk.h,
 * arm/mmk_arm.h, arm/mm_neon.c): tiles of nr rows x nt tokens with nr * nt <= 4, 1 row x 4
 * tokens over the full token tiles, then up to 4 rows x 1 token for the token tail (decode).
 * TILE(a, r, nr, t0, nt) computes one tile; each output element keeps its own accumulators
 * and instruction sequence whatever the tile, so results are batch invariant. */
#ifndef BAIMO_TENSOR_TILE_DRIVER_H
#define BAIMO_TENSOR_TILE_DRIVER_H

#define BM_TILE_NT 4  /* tokens per batch tile */
#define BM_TILE_NR 4  /* rows per single-token tile */

#define BM_TILE_DRIVER(NAME, TILE)                                                                 \
    void NAME(const bm_mm_args *a, int64_t r0, int64_t r1) {                                       \
        const int64_t t_full = a->n_tok / BM_TILE_NT * BM_TILE_NT;                                 \
        for (int64_t r = r0; r < r1; r += BM_TILE_NR) {                                            \
            const int nr = r1 - r < BM_TILE_NR ? (int)(r1 - r) : BM_TILE_NR;                       \
            for (int i = 0; i < nr; i++)                                                           \
                for (int64_t t = 0; t < t_full; t += BM_TILE_NT) TILE(a, r + i, 1, t, BM_TILE_NT); \
            for (int64_t t = t_full; t < a->n_tok; t++) {                                          \
                switch (nr) {                                                                      \
                case 4: TILE(a, r, 4, t, 1); break;                                                \
                case 3: TILE(a, r, 3, t, 1); break;                                                \
                case 2: TILE(a, r, 2, t, 1); break;                                                \
                default: TILE(a, r, 1, t, 1); break;                                               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#endif
