/* Integer-dot row kernels of Q8_0, Q4_0 and Q5_0 against the signed 8-bit activation blocks of
 * 32 (BM_ACT_Q8 with act_u8 false), written once and compiled per AArch64 level: mmk_neon.c
 * (BDOT with smull/smlal2 and pairwise widening adds) and mmk_dotprod.c (sdot). The includer
 * defines MMK_SUF and BDOT(w, x0, x1) -> int32x4_t, the exact integer dot of one block spread
 * over 4 lanes. Per block and output element: acc += float(lanes) * (d_w * d_x) in 4 float
 * lanes, summed across lanes at the end. Tiles are nr rows x nt tokens with nr * nt <= 4 (1 x 4
 * for whole groups of 4 tokens, up to 4 rows x 1 token for the rest); every element keeps its
 * own accumulator and the same instruction sequence whatever the tile: batch invariant. */
#include "tensor/arm/neon.h"
#include "tensor/tile_driver.h"

#define NT BM_TILE_NT
#define KNR BM_TILE_NR
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define KNAME(t) CAT(CAT(bm_mm_, t), CAT(_, MMK_SUF))

#define Q_KERNEL(T, BS, DEC)                                                                       \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t nb = a->n_in / BM_QK;                                                        \
        float32x4_t acc[4];                                                                        \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) acc[j] = vdupq_n_f32(0.0f);     \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                int8x16_t w[2];                                                                    \
                float dw;                                                                          \
                DEC(a->w + (size_t)(r + i) * a->row_bytes + b * (BS), w, &dw);                     \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                    const int64_t t = t0 + j;                                                      \
                    const int8_t *xq = (const int8_t *)a->xq + t * a->ldq + b * BM_QK;            \
                    const int32x4_t s = BDOT(w, vld1q_s8(xq), vld1q_s8(xq + 16));                  \
                    acc[i * nt + j] = vfmaq_f32(acc[i * nt + j], vcvtq_f32_s32(s),                 \
                                                vdupq_n_f32(dw * a->xd[t * a->ldd + b]));          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                                   \
                a->y[(t0 + j) * a->ldy + r + i] = vaddvq_f32(acc[i * nt + j]);                     \
    }                                                                                              \
    BM_TILE_DRIVER(KNAME(T), T##_tile)

Q_KERNEL(q8_0, sizeof(bm_block_q8_0), w_q8_0)
Q_KERNEL(q4_0, sizeof(bm_block_q4_0), w_q4_0)
Q_KERNEL(q5_0, sizeof(bm_block_q5_0), w_q5_0)
