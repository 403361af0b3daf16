/* The 256-element "K" super-block formats Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K: exact dequantization
 * as the GGML/GGUF format defines it, and a reference quantizer. The quantizer fits each sub-block
 * (scale, or scale and min) by a small search over candidate scales with a least-squares refit of
 * each candidate, quantizes those to the format's 4/6/8-bit codes under f16 super-block scales,
 * then tries the neighbouring scale codes of each sub-block with round-to-nearest element codes
 * and keeps the best. Written from the format description; it is not ggml's search and need not
 * produce ggml's bytes (Q8_K, a closed formula, does). */
#include "tensor/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- dequantization -------------------------------------------------------------------------- */

/* Q2_K: 16 sub-blocks of 16; scales[i] = 4-bit scale | 4-bit min << 4; y = d * sc * q - dmin * m.
 * Codes: element 32*s + l of each 128-chunk is bits 2s of qs[l]. */
void bm_dequant_q2_K(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK_K; i++, p += sizeof(bm_block_q2_K)) {
        bm_block_q2_K b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d), dmin = bm_f16_to_f32(b.dmin);
        for (int e = 0; e < BM_QK_K; e++) {
            const int sub = e / 16, chunk = e / 128, l = e % 32, shift = 2 * ((e % 128) / 32);
            const float dl = d * (float)(b.scales[sub] & 0xF);
            const float ml = dmin * (float)(b.scales[sub] >> 4);
            const int q = (b.qs[32 * chunk + l] >> shift) & 3;
            *y++ = dl * (float)q - ml;
        }
    }
}

/* Q3_K 6-bit signed scales: low 4 bits of scale i in nibble i/8 of byte i%8, high 2 bits in bits
 * 2*(i/4) of byte 8 + i%4; value = code - 32. */
static int q3_scale(const uint8_t s[12], int i) {
    int lo = (s[i % 8] >> (4 * (i / 8))) & 0xF;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* Q3_K: y = d * scale * (q - 4 * !hbit), q the 2 low bits laid out as Q2_K; the high bit of element
 * e is bit e/32 of hmask[e%32]. */
void bm_dequant_q3_K(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK_K; i++, p += sizeof(bm_block_q3_K)) {
        bm_block_q3_K b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d);
        for (int e = 0; e < BM_QK_K; e++) {
            const int chunk = e / 128, l = e % 32, shift = 2 * ((e % 128) / 32);
            const float dl = d * (float)q3_scale(b.scales, e / 16);
            int q = (b.qs[32 * chunk + l] >> shift) & 3;
            if (!(b.hmask[l] & (1 << (e / 32)))) q -= 4;
            *y++ = dl * (float)q;
        }
    }
}

/* Q4_K/Q5_K 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes: j < 4 in the low 6
 * bits of bytes j and j+4; j >= 4 low nibbles in byte j+4, high 2 bits in the top bits of bytes j-4
 * (scale) and j (min). */
static void k4_scale_min(const uint8_t s[12], int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K: 8 sub-blocks of 32; y = d * sc * q - dmin * m; each 64-chunk takes 32 bytes of qs, low
 * nibbles first. */
void bm_dequant_q4_K(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK_K; i++, p += sizeof(bm_block_q4_K)) {
        bm_block_q4_K b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d), dmin = bm_f16_to_f32(b.dmin);
        for (int sub = 0; sub < 8; sub++) {
            int sc, m;
            k4_scale_min(b.scales, sub, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = b.qs + 32 * (sub / 2);
            const int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++) *y++ = dl * (float)((q[l] >> shift) & 0xF) - ml;
        }
    }
}

/* Q5_K: as Q4_K with a 5th bit: bit `sub` of qh[l] for element l of sub-block sub. */
void bm_dequant_q5_K(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK_K; i++, p += sizeof(bm_block_q5_K)) {
        bm_block_q5_K b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d), dmin = bm_f16_to_f32(b.dmin);
        for (int sub = 0; sub < 8; sub++) {
            int sc, m;
            k4_scale_min(b.scales, sub, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = b.qs + 32 * (sub / 2);
            const int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 0xF) | ((b.qh[l] >> sub) & 1) << 4;
                *y++ = dl * (float)v - ml;
            }
        }
    }
}

/* Q6_K: y = d * scale * (q - 32), q = 4 bits of ql | 2 bits of qh << 4. In each 128-chunk (64 bytes
 * of ql, 32 of qh) element 32*s + l takes the nibble s/2 of ql[l + 32*(s%2)] and bits 2s of qh[l].
 */
void bm_dequant_q6_K(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK_K; i++, p += sizeof(bm_block_q6_K)) {
        bm_block_q6_K b;
        memcpy(&b, p, sizeof b);
        const float d = bm_f16_to_f32(b.d);
        for (int e = 0; e < BM_QK_K; e++) {
            const int chunk = e / 128, s = (e % 128) / 32, l = e % 32;
            const int lo = (b.ql[64 * chunk + l + 32 * (s % 2)] >> (4 * (s / 2))) & 0xF;
            const int hi = (b.qh[32 * chunk + l] >> (2 * s)) & 3;
            *y++ = d * (float)b.scales[e / 16] * (float)((lo | hi << 4) - 32);
        }
    }
}

/* Q8_K: y = d * q with a float d. */
void bm_dequant_q8_K(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n / BM_QK_K; i++, p += sizeof(bm_block_q8_K)) {
        bm_block_q8_K b;
        memcpy(&b, p, sizeof b);
        for (int e = 0; e < BM_QK_K; e++) *y++ = b.d * (float)b.qs[e];
    }
}

/* ---- reference quantization ------------------------------------------------------------------ */

/* Round to nearest (ties to even) and clamp to [lo, hi]; NaN gives lo. */
static int round_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)lrintf(v);
}

#define NSTEP 12 /* candidate inverse scales nmax + 0.1*k, k in [-NSTEP, NSTEP] */

/* Fits x[0..n) ~= a*q + c, q integer in [0, nmax], a >= 0, c <= 0 (the formats store -c as an
 * unsigned min). Each candidate inverse scale (nmax + 0.1k) / (max - min) assigns codes; least
 * squares then gives a and c for those codes (c clamped to <= 0); the pair with the smallest
 * squared error wins. Returns a, sets *c. */
static float fit_affine(const float *x, int n, int nmax, float *c) {
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        mn = fminf(mn, x[j]);
        mx = fmaxf(mx, x[j]);
    }
    if (mn > 0.0f) mn = 0.0f;
    if (!(mx > mn)) {
        *c = mn;
        return 0.0f;
    }
    float best_a = (mx - mn) / (float)nmax, best_c = mn;
    double best_err = 0.0;
    for (int j = 0; j < n; j++) {
        double r = best_a * (float)round_clamp((x[j] - mn) / best_a, 0, nmax) + mn - x[j];
        best_err += r * r;
    }
    for (int k = -NSTEP; k <= NSTEP; k++) {
        const float is = ((float)nmax + 0.1f * (float)k) / (mx - mn);
        double sq = 0, sq2 = 0, sx = 0, sqx = 0;
        int q[BM_QK];
        for (int j = 0; j < n; j++) {
            q[j] = round_clamp((x[j] - mn) * is, 0, nmax);
            sq += q[j];
            sq2 += (double)q[j] * q[j];
            sx += x[j];
            sqx += (double)q[j] * x[j];
        }
        const double det = n * sq2 - sq * sq;
        if (det <= 0) continue;
        double a = (n * sqx - sq * sx) / det, cc = (sq2 * sx - sq * sqx) / det;
        if (cc > 0) {
            cc = 0;
            a = sqx / sq2;
        }
        if (a <= 0) continue;
        double err = 0;
        for (int j = 0; j < n; j++) {
            double r = a * q[j] + cc - x[j];
            err += r * r;
        }
        if (err < best_err) {
            best_err = err;
            best_a = (float)a;
            best_c = (float)cc;
        }
    }
    *c = best_c;
    return best_a;
}

/* Fits x[0..n) ~= a*q, q integer in [-nmax, nmax-1] (a may be negative, which puts the largest
 * magnitude on the extra negative code). Candidates +-(nmax + 0.1k)/absmax, each refit by least
 * squares; the one with the smallest error wins. Returns a. */
static float fit_sym(const float *x, int n, int nmax) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    if (amax == 0.0f) return 0.0f;
    float best_a = 0.0f;
    double best_gain = -1.0; /* error = sum x^2 - sqx^2 / sq2: maximise sqx^2 / sq2 */
    for (int sign = -1; sign <= 1; sign += 2)
        for (int k = -NSTEP; k <= NSTEP; k++) {
            const float is = (float)sign * ((float)nmax + 0.1f * (float)k) / max;
            double sq2 = 0, sqx = 0;
            for (int j = 0; j < n; j++) {
                const int q = round_clamp(x[j] * is, -nmax, nmax - 1);
                sq2 += (double)q * q;
                sqx += (double)q * x[j];
            }
            if (sq2 <= 0) continue;
            const double gain = sqx * sqx / sq2;
            if (gain > best_gain) {
                best_gain = gain;
                best_a = (float)(sqx / sq2);
            }
        }
    return best_a;
}

/* f16 bits of d rounded to nearest, then moved one step away from zero if that lost magnitude, so
 * that sub-scale codes computed against the stored value never clamp. */
static uint16_t f16_at_least(float d) {
    uint16_t h = bm_f32_to_f16(d);
    if (fabsf(bm_f16_to_f32(h)) < fabsf(d) && (h & 0x7FFF) < 0x7BFF) h++;
    return h;
}

/* Quantizes the sub-block scales a[0..ns) (all >= 0) to codes in [0, qmax] under one f16 super
 * scale; the codes are rounded against the stored (f16) super scale, which matters where it is
 * subnormal. Returns the super scale as stored (f16 bits). */
static uint16_t quant_scales_unsigned(const float *a, int ns, int qmax, uint8_t *codes) {
    float max = 0.0f;
    for (int j = 0; j < ns; j++) max = fmaxf(max, a[j]);
    const uint16_t h = f16_at_least(max / (float)qmax);
    const float d = bm_f16_to_f32(h);
    for (int j = 0; j < ns; j++) codes[j] = d > 0.0f ? (uint8_t)round_clamp(a[j] / d, 0, qmax) : 0;
    return h;
}

/* Quantizes signed sub-block scales a[0..ns) to codes in [-qneg, qneg-1], the largest magnitude
 * mapping to -qneg (so the super scale carries the opposite sign); codes are rounded against the
 * stored f16 super scale. Returns it (f16 bits). */
static uint16_t quant_scales_signed(const float *a, int ns, int qneg, int *codes) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < ns; j++)
        if (fabsf(a[j]) > amax) {
            amax = fabsf(a[j]);
            max = a[j];
        }
    const uint16_t h = f16_at_least(max / -(float)qneg);
    const float d = bm_f16_to_f32(h);
    for (int j = 0; j < ns; j++) codes[j] = d != 0.0f ? round_clamp(a[j] / d, -qneg, qneg - 1) : 0;
    return h;
}

/* Codes of x[0..n) for x ~= dl*q - ml, q in [0, nmax]; all 0 when dl == 0. */
static void assign_affine(const float *x, int n, float dl, float ml, int nmax, uint8_t *L) {
    for (int j = 0; j < n; j++)
        L[j] = dl != 0.0f ? (uint8_t)round_clamp((x[j] + ml) / dl, 0, nmax) : 0;
}

/* Codes (offset by nmax) of x[0..n) for x ~= dl*q, q in [-nmax, nmax-1]; q = 0 when dl == 0. */
static void assign_sym(const float *x, int n, float dl, int nmax, uint8_t *L) {
    for (int j = 0; j < n; j++)
        L[j] = (uint8_t)((dl != 0.0f ? round_clamp(x[j] / dl, -nmax, nmax - 1) : 0) + nmax);
}

/* Squared error of x[0..n) against dl*L - ml (affine) or dl*(L - off) (symmetric). */
static double sse_codes(const float *x, int n, float dl, float ml, int off, const uint8_t *L) {
    double e = 0;
    for (int j = 0; j < n; j++) {
        const double r = (double)(dl * (float)(L[j] - off) - ml) - x[j];
        e += r * r;
    }
    return e;
}

/* Local search on one sub-block's integer scale and min codes (each +-1 within [0, qmax]) under
 * the stored super scales d, dmin: recovers most of what rounding the sub-block fit to 4/6-bit
 * codes lost. Updates *ls, *lm and the element codes L[0..n). */
static void refine_affine(const float *x, int n, float d, float dmin, int nmax, int qmax,
                          uint8_t *ls, uint8_t *lm, uint8_t *L) {
    uint8_t T[BM_QK];
    const int s0 = *ls, m0 = *lm;
    assign_affine(x, n, d * (float)s0, dmin * (float)m0, nmax, L);
    double best = sse_codes(x, n, d * (float)s0, dmin * (float)m0, 0, L);
    for (int ds = -1; ds <= 1; ds++)
        for (int dm = -1; dm <= 1; dm++) {
            const int s = s0 + ds, m = m0 + dm;
            if ((!ds && !dm) || s < 0 || s > qmax || m < 0 || m > qmax) continue;
            assign_affine(x, n, d * (float)s, dmin * (float)m, nmax, T);
            const double e = sse_codes(x, n, d * (float)s, dmin * (float)m, 0, T);
            if (e < best) {
                best = e;
                *ls = (uint8_t)s;
                *lm = (uint8_t)m;
                memcpy(L, T, (size_t)n);
            }
        }
}

/* As refine_affine for a signed scale code in [-qneg, qneg-1] with codes offset by nmax. */
static void refine_sym(const float *x, int n, float d, int nmax, int qneg, int *ls, uint8_t *L) {
    uint8_t T[BM_QK];
    const int s0 = *ls;
    assign_sym(x, n, d * (float)s0, nmax, L);
    double best = sse_codes(x, n, d * (float)s0, 0.0f, nmax, L);
    for (int ds = -2; ds <= 2; ds++) {
        const int s = s0 + ds;
        if (!ds || s < -qneg || s > qneg - 1) continue;
        assign_sym(x, n, d * (float)s, nmax, T);
        const double e = sse_codes(x, n, d * (float)s, 0.0f, nmax, T);
        if (e < best) {
            best = e;
            *ls = s;
            memcpy(L, T, (size_t)n);
        }
    }
}

/* 2-bit codes L[0..256) into the Q2_K/Q3_K qs layout (see bm_dequant_q2_K). */
static void pack_2bit(const uint8_t *L, uint8_t qs[64]) {
    memset(qs, 0, 64);
    for (int e = 0; e < BM_QK_K; e++)
        qs[32 * (e / 128) + e % 32] |= (uint8_t)((L[e] & 3) << (2 * ((e % 128) / 32)));
}

/* Affine sub-block fits of a 256-element block into ns sub-blocks: scales a[], mins -c[]. */
static void fit_subblocks_affine(const float *x, int ns, int nmax, float *a, float *mins) {
    const int len = BM_QK_K / ns;
    for (int s = 0; s < ns; s++) {
        float c;
        a[s] = fit_affine(x + len * s, len, nmax, &c);
        mins[s] = -c;
    }
}

void bm_quant_q2_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK_K; i++, x += BM_QK_K, p += sizeof(bm_block_q2_K)) {
        bm_block_q2_K b;
        float a[16], mins[16];
        uint8_t ls[16], lm[16], L[BM_QK_K];
        fit_subblocks_affine(x, 16, 3, a, mins);
        b.d = quant_scales_unsigned(a, 16, 15, ls);
        b.dmin = quant_scales_unsigned(mins, 16, 15, lm);
        const float d = bm_f16_to_f32(b.d), dmin = bm_f16_to_f32(b.dmin);
        for (int s = 0; s < 16; s++) {
            refine_affine(x + 16 * s, 16, d, dmin, 3, 15, &ls[s], &lm[s], L + 16 * s);
            b.scales[s] = (uint8_t)(ls[s] | lm[s] << 4);
        }
        pack_2bit(L, b.qs);
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q3_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK_K; i++, x += BM_QK_K, p += sizeof(bm_block_q3_K)) {
        bm_block_q3_K b;
        float a[16];
        int ls[16];
        uint8_t L[BM_QK_K];
        for (int s = 0; s < 16; s++) a[s] = fit_sym(x + 16 * s, 16, 4);
        b.d = quant_scales_signed(a, 16, 32, ls);
        const float d = bm_f16_to_f32(b.d);
        memset(b.scales, 0, sizeof b.scales);
        for (int s = 0; s < 16; s++) {
            refine_sym(x + 16 * s, 16, d, 4, 32, &ls[s], L + 16 * s);
            const int c = ls[s] + 32;
            b.scales[s % 8] |= (uint8_t)((c & 0xF) << (4 * (s / 8)));
            b.scales[8 + s % 4] |= (uint8_t)((c >> 4) << (2 * (s / 4)));
        }
        memset(b.hmask, 0, sizeof b.hmask);
        for (int e = 0; e < BM_QK_K; e++)
            if (L[e] & 4) b.hmask[e % 32] |= (uint8_t)(1 << (e / 32));
        pack_2bit(L, b.qs);
        memcpy(p, &b, sizeof b);
    }
}

/* Packs 8 six-bit scales and mins into the Q4_K/Q5_K 12-byte layout (see k4_scale_min). */
static void pack_k4_scales(const uint8_t *ls, const uint8_t *lm, uint8_t s[12]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((ls[j + 4] & 0xF) | (lm[j + 4] & 0xF) << 4);
    }
}

/* Shared Q4_K/Q5_K quantization of one 256 block: codes L in [0, nmax]. */
static void quant_k4_block(const float *x, int nmax, uint16_t *dh, uint16_t *dminh,
                           uint8_t scales[12], uint8_t *L) {
    float a[8], mins[8];
    uint8_t ls[8], lm[8];
    fit_subblocks_affine(x, 8, nmax, a, mins);
    *dh = quant_scales_unsigned(a, 8, 63, ls);
    *dminh = quant_scales_unsigned(mins, 8, 63, lm);
    const float d = bm_f16_to_f32(*dh), dmin = bm_f16_to_f32(*dminh);
    for (int s = 0; s < 8; s++)
        refine_affine(x + 32 * s, 32, d, dmin, nmax, 63, &ls[s], &lm[s], L + 32 * s);
    pack_k4_scales(ls, lm, scales);
}

void bm_quant_q4_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK_K; i++, x += BM_QK_K, p += sizeof(bm_block_q4_K)) {
        bm_block_q4_K b;
        uint8_t L[BM_QK_K];
        quant_k4_block(x, 15, &b.d, &b.dmin, b.scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b.qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q5_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK_K; i++, x += BM_QK_K, p += sizeof(bm_block_q5_K)) {
        bm_block_q5_K b;
        uint8_t L[BM_QK_K];
        quant_k4_block(x, 31, &b.d, &b.dmin, b.scales, L);
        memset(b.qh, 0, sizeof b.qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                b.qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
                b.qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            }
        memcpy(p, &b, sizeof b);
    }
}

void bm_quant_q6_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK_K; i++, x += BM_QK_K, p += sizeof(bm_block_q6_K)) {
        bm_block_q6_K b;
        float a[16];
        int ls[16];
        uint8_t L[BM_QK_K];
        for (int s = 0; s < 16; s++) a[s] = fit_sym(x + 16 * s, 16, 32);
        b.d = quant_scales_signed(a, 16, 128, ls);
        const float d = bm_f16_to_f32(b.d);
        for (int s = 0; s < 16; s++) {
            refine_sym(x + 16 * s, 16, d, 32, 128, &ls[s], L + 16 * s);
            b.scales[s] = (int8_t)ls[s];
        }
        memset(b.ql, 0, sizeof b.ql);
        memset(b.qh, 0, sizeof b.qh);
        for (int e = 0; e < BM_QK_K; e++) {
            const int chunk = e / 128, s = (e % 128) / 32, l = e % 32;
            b.ql[64 * chunk + l + 32 * (s % 2)] |= (uint8_t)((L[e] & 0xF) << (4 * (s / 2)));
            b.qh[32 * chunk + l] |= (uint8_t)((L[e] >> 4) << (2 * s));
        }
        memcpy(p, &b, sizeof b);
    }
}

/* Q8_K: the largest magnitude maps to -127 (so d = max / -127 carries the sign), codes
 * round-to-nearest-even clamped to 127; bsums hold the sum of each 16 codes. */
void bm_quant_q8_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n / BM_QK_K; i++, x += BM_QK_K, p += sizeof(bm_block_q8_K)) {
        bm_block_q8_K b;
        float max = 0.0f, amax = 0.0f;
        for (int e = 0; e < BM_QK_K; e++)
            if (fabsf(x[e]) > amax) {
                amax = fabsf(x[e]);
                max = x[e];
            }
        memset(&b, 0, sizeof b);
        if (amax > 0.0f) {
            const float is = -127.0f / max;
            for (int e = 0; e < BM_QK_K; e++) b.qs[e] = (int8_t)round_clamp(is * x[e], -128, 127);
            b.d = 1.0f / is;
        }
        for (int s = 0; s < 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b.qs[16 * s + l];
            b.bsums[s] = (int16_t)sum;
        }
        memcpy(p, &b, sizeof b);
    }
}
