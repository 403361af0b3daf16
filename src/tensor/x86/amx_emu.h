/* Software emulation of the AMX tile instructions the kernels use (LDTILECFG, TILELOADD,
 * TILEZERO, TDPBSUD/TDPBSSD, TDPBF16PS, TILESTORED, TILERELEASE), written from the Intel SDM's
 * descriptions, for testing mmp_amx.h and mmp_amx_bf16.h on CPUs without AMX. Test-only (tests/unit/test_amx.c):
 * it prints and aborts on any use the hardware would fault on (#GP on a bad configuration,
 * #UD on an unconfigured tile or mismatched shapes), which the tests catch as a crash.
 * State is per thread, as the tile registers are. */
#ifndef BAIMO_X86_AMX_EMU_H
#define BAIMO_X86_AMX_EMU_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct amx_emu_state {
    bool configured;
    uint16_t colsb[8];
    uint8_t rows[8];
    uint8_t t[8][16][64]; /* tile data, rows x 64 bytes */
    /* Counters and fault injection for the tests. */
    long n_cfg, n_load, n_dp, n_store, n_release, n_dpbf16;
    bool swap_sign; /* run TDPBSUD as TDPBSSD and back (a deliberately wrong kernel) */
    bool swap_pair; /* TDPBF16PS pairs a's element j with b's element 1 - j (wrong too) */
} amx_emu_state;

static _Thread_local amx_emu_state amx_emu;

#define AMX_EMU_REQUIRE(cond, ...)                                                             \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "amx_emu: fault: " __VA_ARGS__);                                  \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* LDTILECFG: 64 bytes: palette (0 = release, 1 = the 8-tile palette), start_row, 14 reserved
 * zero bytes, colsb[16] as u16 at byte 16, rows[16] at byte 48. Palette 1: tiles 0..7 with
 * rows <= 16 and colsb <= 64, the entries of tiles 8..15 and reserved bytes zero (#GP
 * otherwise). A tile is valid when its rows and colsb are both non-zero. */
static inline void amx_emu_loadconfig(const void *p) {
    const uint8_t *c = p;
    amx_emu.n_cfg++;
    if (c[0] == 0) {
        memset(&amx_emu, 0, offsetof(amx_emu_state, n_cfg));
        return;
    }
    AMX_EMU_REQUIRE(c[0] == 1, "palette %d not supported", c[0]);
    AMX_EMU_REQUIRE(c[1] == 0, "start_row %d (only 0 outside a restart)", c[1]);
    for (int i = 2; i < 16; i++) AMX_EMU_REQUIRE(c[i] == 0, "reserved byte %d not zero", i);
    for (int i = 0; i < 16; i++) {
        uint16_t colsb;
        memcpy(&colsb, c + 16 + 2 * i, 2);
        const uint8_t rows = c[48 + i];
        if (i >= 8) {
            AMX_EMU_REQUIRE(colsb == 0 && rows == 0, "tile %d does not exist in palette 1", i);
            continue;
        }
        AMX_EMU_REQUIRE(rows <= 16, "tile %d: rows %d > 16", i, rows);
        AMX_EMU_REQUIRE(colsb <= 64, "tile %d: colsb %d > 64", i, colsb);
        AMX_EMU_REQUIRE((rows == 0) == (colsb == 0), "tile %d: rows %d colsb %d", i, rows,
                        colsb);
        amx_emu.rows[i] = rows;
        amx_emu.colsb[i] = colsb;
    }
    for (int i = 56; i < 64; i++) AMX_EMU_REQUIRE(c[i] == 0, "reserved byte %d not zero", i);
    amx_emu.configured = true;
    memset(amx_emu.t, 0, sizeof amx_emu.t);
}

static inline void amx_emu_valid(int t, const char *op) {
    AMX_EMU_REQUIRE(amx_emu.configured, "%s tmm%d without a tile configuration", op, t);
    AMX_EMU_REQUIRE(t >= 0 && t < 8, "%s: no tile %d", op, t);
    AMX_EMU_REQUIRE(amx_emu.rows[t] > 0, "%s: tile %d not configured", op, t);
}

/* TILELOADD: row r from base + r * stride, colsb bytes; the rest of the tile zeroed. */
static inline void amx_emu_loadd(int t, const void *base, long stride) {
    amx_emu_valid(t, "tileloadd");
    amx_emu.n_load++;
    memset(amx_emu.t[t], 0, sizeof amx_emu.t[t]);
    for (int r = 0; r < amx_emu.rows[t]; r++)
        memcpy(amx_emu.t[t][r], (const uint8_t *)base + (long)r * stride, amx_emu.colsb[t]);
}

static inline void amx_emu_zero(int t) {
    amx_emu_valid(t, "tilezero");
    memset(amx_emu.t[t], 0, sizeof amx_emu.t[t]);
}

/* TILESTORED: colsb bytes of each configured row to base + r * stride. */
static inline void amx_emu_stored(int t, void *base, long stride) {
    amx_emu_valid(t, "tilestored");
    amx_emu.n_store++;
    for (int r = 0; r < amx_emu.rows[t]; r++)
        memcpy((uint8_t *)base + (long)r * stride, amx_emu.t[t][r], amx_emu.colsb[t]);
}

/* TDPB[S|U][S|U]D c, a, b: c[m][n] += sum_k sum_j a[m][4k+j] * b[k][4n+j] (int32, wrapping),
 * a's bytes signed when sa, b's when sb. #UD unless c, a, b are distinct and valid,
 * colsb % 4 == 0 for all three, c.rows == a.rows, a.colsb / 4 == b.rows, c.colsb == b.colsb. */
static inline void amx_emu_dp(bool sa, bool sb, int c, int a, int b) {
    amx_emu_valid(c, "tdpb*d");
    amx_emu_valid(a, "tdpb*d");
    amx_emu_valid(b, "tdpb*d");
    AMX_EMU_REQUIRE(c != a && c != b && a != b, "tdpb*d: tiles %d %d %d not distinct", c, a, b);
    AMX_EMU_REQUIRE(amx_emu.colsb[c] % 4 == 0 && amx_emu.colsb[a] % 4 == 0 &&
                        amx_emu.colsb[b] % 4 == 0,
                    "tdpb*d: colsb not a multiple of 4");
    AMX_EMU_REQUIRE(amx_emu.rows[c] == amx_emu.rows[a], "tdpb*d: c.rows %d != a.rows %d",
                    amx_emu.rows[c], amx_emu.rows[a]);
    AMX_EMU_REQUIRE(amx_emu.colsb[a] / 4 == amx_emu.rows[b], "tdpb*d: a.colsb/4 %d != b.rows %d",
                    amx_emu.colsb[a] / 4, amx_emu.rows[b]);
    AMX_EMU_REQUIRE(amx_emu.colsb[c] == amx_emu.colsb[b], "tdpb*d: c.colsb %d != b.colsb %d",
                    amx_emu.colsb[c], amx_emu.colsb[b]);
    amx_emu.n_dp++;
    for (int m = 0; m < amx_emu.rows[c]; m++)
        for (int n = 0; n < amx_emu.colsb[c] / 4; n++) {
            int32_t acc;
            memcpy(&acc, &amx_emu.t[c][m][4 * n], 4);
            uint32_t u = (uint32_t)acc;
            for (int k = 0; k < amx_emu.colsb[a] / 4; k++)
                for (int j = 0; j < 4; j++) {
                    const uint8_t x = amx_emu.t[a][m][4 * k + j], y = amx_emu.t[b][k][4 * n + j];
                    const int32_t xv = sa ? (int8_t)x : x, yv = sb ? (int8_t)y : y;
                    u += (uint32_t)(xv * yv);
                }
            memcpy(&amx_emu.t[c][m][4 * n], &u, 4);
        }
}

/* DAZ / FTZ of TDPBF16PS: a subnormal float (input, or a correctly rounded result) becomes a
 * zero of the same sign. */
static inline float amx_emu_ftz(float v) {
    return fpclassify(v) == FP_SUBNORMAL ? copysignf(0.0f, v) : v;
}
static inline float amx_emu_bf16(const uint8_t *p) { /* make_fp32: the bf16 as the high half */
    uint16_t h;
    memcpy(&h, p, 2);
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return amx_emu_ftz(f);
}

/* TDPBF16PS c, a, b (SDM, "TDPBF16PS - Dot Product of BF16 Tiles Accumulated into Packed Single
 * Precision Tile"): every dword of a and b is a pair of bf16 (element 0 in the low half). For
 * each row m of c the SDM keeps a temporary of 2 x (c.colsb / 4) fp32 values, zeroed, and for
 * k over a's pairs and n over c's columns does
 *     temp[2n]   += fp32(a[m].bf16[2k])     * fp32(b[k].bf16[2n])
 *     temp[2n+1] += fp32(a[m].bf16[2k + 1]) * fp32(b[k].bf16[2n + 1])
 * each an "FP32 FMA with DAZ=FTZ=1, RNE rounding" (MXCSR neither consulted nor updated, no
 * exceptions), then per column c[m][n] = c[m][n] + (temp[2n] + temp[2n+1]), both additions
 * with DAZ=FTZ=1 and RNE. So the even and the odd elements of the pairs are two separate
 * chains inside one instruction, summed once at its end and only then added to c. Here: fmaf
 * (one rounding, round to nearest even as the C default mode) on inputs flushed by
 * amx_emu_ftz, and amx_emu_ftz on every result. (The flush follows the correctly rounded
 * gradual-underflow result; x86's tininess-after-rounding can differ from that only for a
 * result within half an ulp below FLT_MIN.) #UD as for TDPB*D: c, a, b distinct and valid,
 * c.rows == a.rows, a.colsb / 4 == b.rows, c.colsb == b.colsb. */
static inline void amx_emu_dpbf16ps(int c, int a, int b) {
    amx_emu_valid(c, "tdpbf16ps");
    amx_emu_valid(a, "tdpbf16ps");
    amx_emu_valid(b, "tdpbf16ps");
    AMX_EMU_REQUIRE(c != a && c != b && a != b, "tdpbf16ps: tiles %d %d %d not distinct", c, a,
                    b);
    AMX_EMU_REQUIRE(amx_emu.colsb[c] % 4 == 0 && amx_emu.colsb[a] % 4 == 0 &&
                        amx_emu.colsb[b] % 4 == 0,
                    "tdpbf16ps: colsb not a multiple of 4");
    AMX_EMU_REQUIRE(amx_emu.rows[c] == amx_emu.rows[a], "tdpbf16ps: c.rows %d != a.rows %d",
                    amx_emu.rows[c], amx_emu.rows[a]);
    AMX_EMU_REQUIRE(amx_emu.colsb[a] / 4 == amx_emu.rows[b],
                    "tdpbf16ps: a.colsb/4 %d != b.rows %d", amx_emu.colsb[a] / 4, amx_emu.rows[b]);
    AMX_EMU_REQUIRE(amx_emu.colsb[c] == amx_emu.colsb[b], "tdpbf16ps: c.colsb %d != b.colsb %d",
                    amx_emu.colsb[c], amx_emu.colsb[b]);
    amx_emu.n_dpbf16++;
    const int nn = amx_emu.colsb[c] / 4, nk = amx_emu.colsb[a] / 4;
    for (int m = 0; m < amx_emu.rows[c]; m++) {
        float temp[32] = {0};
        for (int k = 0; k < nk; k++)
            for (int n = 0; n < nn; n++)
                for (int j = 0; j < 2; j++) {
                    const float x = amx_emu_bf16(&amx_emu.t[a][m][4 * k + 2 * j]);
                    const int jb = amx_emu.swap_pair ? 1 - j : j;
                    const float y = amx_emu_bf16(&amx_emu.t[b][k][4 * n + 2 * jb]);
                    temp[2 * n + j] = amx_emu_ftz(fmaf(x, y, temp[2 * n + j]));
                }
        for (int n = 0; n < nn; n++) {
            float acc;
            memcpy(&acc, &amx_emu.t[c][m][4 * n], 4);
            const float s = amx_emu_ftz(temp[2 * n] + temp[2 * n + 1]);
            acc = amx_emu_ftz(amx_emu_ftz(acc) + s);
            memcpy(&amx_emu.t[c][m][4 * n], &acc, 4);
        }
    }
}

static inline void amx_emu_release(void) {
    amx_emu.n_release++;
    memset(&amx_emu, 0, offsetof(amx_emu_state, n_cfg));
}

#define TILE_CFG(p) amx_emu_loadconfig(p)
#define TILE_LOAD(t, p, stride) amx_emu_loadd(t, p, stride)
#define TILE_ZERO(t) amx_emu_zero(t)
#define TILE_DPBSUD(c, x, y) amx_emu_dp(true, amx_emu.swap_sign, c, x, y)
#define TILE_DPBSSD(c, x, y) amx_emu_dp(true, !amx_emu.swap_sign, c, x, y)
#define TILE_DPBF16PS(c, x, y) amx_emu_dpbf16ps(c, x, y)
#define TILE_STORE(t, p, stride) amx_emu_stored(t, p, stride)
#define TILE_RELEASE() amx_emu_release()

#endif
