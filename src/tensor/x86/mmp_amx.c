/* AMX kernels on the real tile instructions (LDTILECFG, TILELOADD, TILEZERO, TDPBSUD, TDPBSSD,
 * TDPBF16PS, TILESTORED, TILERELEASE): the int8 ones over packed Q8_0 / Q4_0 / Q5_0 weights
 * (mmp_amx.h) and the bf16 one over packed BF16 weights (mmp_amx_bf16.h). Only called once
 * amx_check.c has been granted the tile state by the kernel and the self-check has passed (the
 * bf16 one only on CPUs with AMX-BF16, checked separately); built with -mamx-tile -mamx-int8
 * -mamx-bf16 and AVX-512 VNNI. */
#include "tensor/x86/mmp.h"

#define TILE_CFG(p) _tile_loadconfig(p)
#define TILE_LOAD(t, p, stride) _tile_loadd(t, p, stride)
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_DPBSUD(c, x, y) _tile_dpbsud(c, x, y)
#define TILE_DPBSSD(c, x, y) _tile_dpbssd(c, x, y)
#define TILE_DPBF16PS(c, x, y) _tile_dpbf16ps(c, x, y)
#define TILE_STORE(t, p, stride) _tile_stored(t, p, stride)
#define TILE_RELEASE() _tile_release()

#include "tensor/x86/mmp_amx.h"
#include "tensor/x86/mmp_amx_bf16.h"

void bm_mmp_q8_0_amx(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 0, bm_mmp_q8_0_vnni);
}
void bm_mmp_q4_0_amx(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 1, bm_mmp_q4_0_vnni);
}
void bm_mmp_q5_0_amx(const bm_mm_args *a, int64_t r0, int64_t r1) {
    amx_drive(a, r0, r1, 2, bm_mmp_q5_0_vnni);
}
void bm_mmp_bf16_amx(const bm_mm_args *a, int64_t r0, int64_t r1) { amxb_drive(a, r0, r1); }
