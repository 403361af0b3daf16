/* Integer-dot row kernels of Q4_1, Q5_1 and the K formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)
 * against the signed 8-bit activation blocks of 32 (BM_ACT_Q8, act_u8 false), written once and
 * compiled per AArch64 level after mmk_arm.h: the includer defines BDOT(w, x0, x1) (exact dot
 * of 32 codes over 4 int32 lanes), DOT16(w, x) (exact dot of 16 codes over 4 lanes) and
 * SUM16(x) (sum of 16 codes over 4 lanes). The block math follows bm_mm_q8_ref: per 32-element
 * (sub-)block the integer dot is exact; the 16-element integer scales of Q6_K, Q3_K and Q2_K
 * multiply the int32 lanes of their half (|lane| * |scale| < 2^23: exact); float scales per
 * 32-block; the mins of Q4_1/Q5_1 (value d q + m) and Q4_K/Q5_K (d sc q - dmin m) through the
 * activation block sums (m d_x sum x), Q2_K's per-16 integer mins through SUM16. Tiles and
 * accumulators as mmk_arm.h: each output element has its own and one fixed instruction
 * sequence whatever the tile: batch invariant. */

INLINE int8x16_t xld(const bm_mm_args *a, int64_t t, int64_t b, int h) {
    return vld1q_s8((const int8_t *)a->xq + t * a->ldq + b * BM_QK + 16 * h);
}
INLINE float xdv(const bm_mm_args *a, int64_t t, int64_t b) { return a->xd[t * a->ldd + b]; }

/* 16 bytes whose lane l is 0x10 where bit `bit` of q[l] is set. */
INLINE uint8x16_t bit4(uint8x16_t q, int bit) {
    return vandq_u8(vtstq_u8(q, vdupq_n_u8((uint8_t)(1u << bit))), vdupq_n_u8(0x10));
}
/* q >> s for a run-time s (0..7). */
INLINE uint8x16_t shr_u8(uint8x16_t q, int s) { return vshlq_u8(q, vdupq_n_s8((int8_t)-s)); }

/* ---- Q4_1 / Q5_1: value = d * q + m, q unsigned -------------------------------------------- */

/* Q4_1 (20 bytes): f16 d, f16 m, nibbles as Q4_0 (codes 0..15). */
INLINE void wq_q4_1(const uint8_t *p, int8x16_t w[2]) {
    const uint8x16_t raw = vld1q_u8(p + 4);
    w[0] = vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F)));
    w[1] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
}
/* Q5_1 (24 bytes): f16 d, f16 m, fifth bits and nibbles as Q5_0 (codes 0..31). */
INLINE void wq_q5_1(const uint8_t *p, int8x16_t w[2]) {
    q5_codes(p + 4, p + 8, w);
}

#define Q1_KERNEL(T, BS, DEC)                                                                      \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t nb = a->n_in / BM_QK;                                                        \
        float32x4_t acc[4];                                                                        \
        float ms[4];                                                                               \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) {                                \
            acc[j] = vdupq_n_f32(0.0f);                                                            \
            ms[j] = 0.0f;                                                                          \
        }                                                                                          \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes + b * (BS);               \
                const float dw = f16_at(p), mw = f16_at(p + 2);                                    \
                int8x16_t w[2];                                                                    \
                DEC(p, w);                                                                         \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                    const int64_t t = t0 + j;                                                      \
                    const float dx = xdv(a, t, b);                                                 \
                    const int32x4_t s = BDOT(w, xld(a, t, b, 0), xld(a, t, b, 1));                 \
                    acc[i * nt + j] =                                                              \
                        vfmaq_f32(acc[i * nt + j], vcvtq_f32_s32(s), vdupq_n_f32(dw * dx));        \
                    ms[i * nt + j] += mw * a->xm[t * a->ldd + b]; /* m d_x xs */                   \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                                   \
                a->y[(t0 + j) * a->ldy + r + i] = vaddvq_f32(acc[i * nt + j]) + ms[i * nt + j];    \
    }                                                                                              \
    BM_TILE_DRIVER(KNAME(T), T##_tile)

Q1_KERNEL(q4_1, sizeof(bm_block_q4_1), wq_q4_1)
Q1_KERNEL(q5_1, sizeof(bm_block_q5_1), wq_q5_1)

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, value = d*sc*q - dmin*m ------------------------------ */

/* d * sc[j] and dmin * m[j] of the 8 sub-blocks (one float rounding each, as the reference).
 * The 12 scale bytes as 32-bit words: scales 0..3 = low 6 bits of bytes 0..3, mins 0..3 = of
 * bytes 4..7; scales 4..7 = low nibbles of bytes 8..11 | top 2 bits of bytes 0..3 << 4; mins
 * 4..7 = high nibbles of bytes 8..11 | top 2 bits of bytes 4..7 << 4. */
INLINE void k4_scales(const uint8_t *p, float ds[8], float32x4_t mf[2]) {
    const float d = f16_at(p), dmin = f16_at(p + 2);
    uint32_t w0, w1, w2;
    memcpy(&w0, p + 4, 4);
    memcpy(&w1, p + 8, 4);
    memcpy(&w2, p + 12, 4);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
    const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
    const uint16x8_t sc = vmovl_u8(vcreate_u8((uint64_t)sc_hi << 32 | sc_lo));
    const uint16x8_t mn = vmovl_u8(vcreate_u8((uint64_t)m_hi << 32 | m_lo));
    vst1q_f32(ds, vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(sc))), d));
    vst1q_f32(ds + 4, vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(sc)), d));
    mf[0] = vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(mn))), dmin);
    mf[1] = vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(mn)), dmin);
}

#define K4_KERNEL(T, BS, Q5)                                                                       \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t ns = a->n_in / BM_QK_K;                                                      \
        const uint8x16_t lo4 = vdupq_n_u8(0x0F);                                                   \
        float32x4_t acc[4], macc[4];                                                               \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) {                                \
            acc[j] = vdupq_n_f32(0.0f);                                                            \
            macc[j] = vdupq_n_f32(0.0f);                                                           \
        }                                                                                          \
        for (int64_t sb = 0; sb < ns; sb++) {                                                      \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes + sb * (BS);              \
                float ds[8];                                                                       \
                float32x4_t mf[2];                                                                 \
                k4_scales(p, ds, mf);                                                              \
                const uint8_t *qs = p + (BS) - BM_QK_K / 2;                                        \
                uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);                               \
                if (Q5) {                                                                          \
                    qh0 = vld1q_u8(p + 16);                                                        \
                    qh1 = vld1q_u8(p + 32);                                                        \
                }                                                                                  \
                _Pragma("GCC unroll 4") for (int pr = 0; pr < 4; pr++) {                           \
                    const uint8x16_t r0 = vld1q_u8(qs + 32 * pr), r1 = vld1q_u8(qs + 32 * pr + 16); \
                    uint8x16_t u0[2] = {vandq_u8(r0, lo4), vandq_u8(r1, lo4)};                     \
                    uint8x16_t u1[2] = {vshrq_n_u8(r0, 4), vshrq_n_u8(r1, 4)};                     \
                    if (Q5) {                                                                      \
                        u0[0] = vorrq_u8(u0[0], bit4(qh0, 2 * pr));                                \
                        u0[1] = vorrq_u8(u0[1], bit4(qh1, 2 * pr));                                \
                        u1[0] = vorrq_u8(u1[0], bit4(qh0, 2 * pr + 1));                            \
                        u1[1] = vorrq_u8(u1[1], bit4(qh1, 2 * pr + 1));                            \
                    }                                                                              \
                    const int8x16_t w0[2] = {vreinterpretq_s8_u8(u0[0]),                           \
                                             vreinterpretq_s8_u8(u0[1])};                          \
                    const int8x16_t w1[2] = {vreinterpretq_s8_u8(u1[0]),                           \
                                             vreinterpretq_s8_u8(u1[1])};                          \
                    const int64_t b0 = sb * 8 + 2 * pr;                                            \
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                         \
                        const int64_t t = t0 + j;                                                  \
                        float32x4_t s = acc[i * nt + j];                                           \
                        const int32x4_t d0 = BDOT(w0, xld(a, t, b0, 0), xld(a, t, b0, 1));         \
                        const int32x4_t d1 = BDOT(w1, xld(a, t, b0 + 1, 0), xld(a, t, b0 + 1, 1)); \
                        s = vfmaq_f32(s, vcvtq_f32_s32(d0), vdupq_n_f32(ds[2 * pr] * xdv(a, t, b0))); \
                        s = vfmaq_f32(s, vcvtq_f32_s32(d1),                                        \
                                      vdupq_n_f32(ds[2 * pr + 1] * xdv(a, t, b0 + 1)));            \
                        acc[i * nt + j] = s;                                                       \
                    }                                                                              \
                }                                                                                  \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                    const float *xm = a->xm + (t0 + j) * a->ldd + sb * 8;                          \
                    float32x4_t m = vfmaq_f32(macc[i * nt + j], mf[0], vld1q_f32(xm));             \
                    macc[i * nt + j] = vfmaq_f32(m, mf[1], vld1q_f32(xm + 4));                     \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                                   \
                a->y[(t0 + j) * a->ldy + r + i] =                                                  \
                    vaddvq_f32(acc[i * nt + j]) - vaddvq_f32(macc[i * nt + j]);                    \
    }                                                                                              \
    BM_TILE_DRIVER(KNAME(T), T##_tile)

K4_KERNEL(q4_K, sizeof(bm_block_q4_K), 0)
K4_KERNEL(q5_K, sizeof(bm_block_q5_K), 1)

/* ---- Q6_K / Q3_K / Q2_K: 16 groups of 16 with integer scales -------------------------------- */

/* Codes of the 4 sub-blocks s of 128-chunk c (w[2 s], w[2 s + 1]: elements 0..15, 16..31). */

/* Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. Element 32 s + l of chunk c: low
 * nibble s / 2 of ql[64 c + 32 (s % 2) + l], high bits 2 s of qh[32 c + l]; value code - 32. */
INLINE void q6_chunk(const uint8_t *p, int c, int8x16_t w[8]) {
    const uint8_t *ql = p + 64 * c, *qh = p + 128 + 32 * c;
    const uint8x16_t l[4] = {vld1q_u8(ql), vld1q_u8(ql + 16), vld1q_u8(ql + 32),
                             vld1q_u8(ql + 48)};
    const uint8x16_t h[2] = {vld1q_u8(qh), vld1q_u8(qh + 16)};
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int e = 0; e < 2; e++) {
        const uint8x16_t c0 = vorrq_u8(vandq_u8(l[e], m4), vandq_u8(vshlq_n_u8(h[e], 4), m30));
        const uint8x16_t c1 =
            vorrq_u8(vandq_u8(l[2 + e], m4), vandq_u8(vshlq_n_u8(h[e], 2), m30));
        const uint8x16_t c2 = vorrq_u8(vshrq_n_u8(l[e], 4), vandq_u8(h[e], m30));
        const uint8x16_t c3 = vorrq_u8(vshrq_n_u8(l[2 + e], 4), vandq_u8(vshrq_n_u8(h[e], 2), m30));
        w[0 + e] = vsubq_s8(vreinterpretq_s8_u8(c0), k32);
        w[2 + e] = vsubq_s8(vreinterpretq_s8_u8(c1), k32);
        w[4 + e] = vsubq_s8(vreinterpretq_s8_u8(c2), k32);
        w[6 + e] = vsubq_s8(vreinterpretq_s8_u8(c3), k32);
    }
}
INLINE void q6_scales(const uint8_t *p, float *d, float *dmin, int sc[16], int mn[16]) {
    (void)dmin;
    (void)mn;
    *d = f16_at(p + 208);
    for (int i = 0; i < 16; i++) sc[i] = (int8_t)p[192 + i];
}

/* Q3_K (110 bytes): hmask[32], qs[64], scales[12], f16 d. Element 32 s + l of chunk c: bits 2 s
 * of qs[32 c + l], minus 4 where bit 4 c + s of hmask[l] is clear. */
INLINE void q3_chunk(const uint8_t *p, int c, int8x16_t w[8]) {
    const uint8x16_t q[2] = {vld1q_u8(p + 32 + 32 * c), vld1q_u8(p + 48 + 32 * c)};
    const uint8x16_t hm[2] = {vld1q_u8(p), vld1q_u8(p + 16)};
    const uint8x16_t m3 = vdupq_n_u8(3), k4 = vdupq_n_u8(4);
    for (int s = 0; s < 4; s++)
        for (int e = 0; e < 2; e++) {
            const uint8x16_t lo = vandq_u8(shr_u8(q[e], 2 * s), m3);
            const uint8x16_t set = vtstq_u8(hm[e], vdupq_n_u8((uint8_t)(1u << (4 * c + s))));
            /* code - 4 where the high bit is clear: lo + (set & 4) - 4 */
            w[2 * s + e] = vsubq_s8(vreinterpretq_s8_u8(vaddq_u8(lo, vandq_u8(set, k4))),
                                    vreinterpretq_s8_u8(k4));
        }
}
/* 6-bit signed scales: low 4 bits of scale i in nibble i / 8 of byte i % 8, high 2 bits in bits
 * 2 (i / 4) of byte 8 + i % 4; value code - 32. */
INLINE void q3_scales(const uint8_t *p, float *d, float *dmin, int sc[16], int mn[16]) {
    (void)dmin;
    (void)mn;
    const uint8_t *s = p + 96;
    *d = f16_at(p + 108);
    for (int i = 0; i < 16; i++)
        sc[i] = (((s[i % 8] >> (4 * (i / 8))) & 0xF) | ((s[8 + i % 4] >> (2 * (i / 4))) & 3) << 4) -
                32;
}

/* Q2_K (84 bytes): scales[16] (4-bit scale | 4-bit min << 4), qs[64], f16 d, f16 dmin. Element
 * 32 s + l of chunk c: bits 2 s of qs[32 c + l], codes 0..3. */
INLINE void q2_chunk(const uint8_t *p, int c, int8x16_t w[8]) {
    const uint8x16_t q[2] = {vld1q_u8(p + 16 + 32 * c), vld1q_u8(p + 32 + 32 * c)};
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int s = 0; s < 4; s++)
        for (int e = 0; e < 2; e++)
            w[2 * s + e] = vreinterpretq_s8_u8(vandq_u8(shr_u8(q[e], 2 * s), m3));
}
INLINE void q2_scales(const uint8_t *p, float *d, float *dmin, int sc[16], int mn[16]) {
    *d = f16_at(p + 80);
    *dmin = f16_at(p + 82);
    for (int i = 0; i < 16; i++) {
        sc[i] = p[i] & 0xF;
        mn[i] = p[i] >> 4;
    }
}

/* Per 32-block b of token t: acc += float(sc0 dot(lo) + sc1 dot(hi)) * (d d_x); with MINS
 * (Q2_K) macc += float(m0 sum(lo) + m1 sum(hi)) * (dmin d_x), y = sum acc - sum macc. */
#define K16_KERNEL(T, BS, CHUNK, SCALES, MINS)                                                     \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t ns = a->n_in / BM_QK_K;                                                      \
        float32x4_t acc[4], macc[4];                                                               \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) {                                \
            acc[j] = vdupq_n_f32(0.0f);                                                            \
            macc[j] = vdupq_n_f32(0.0f);                                                           \
        }                                                                                          \
        for (int64_t sb = 0; sb < ns; sb++) {                                                      \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes + sb * (BS);              \
                float d, dmin = 0.0f;                                                              \
                int sc[16], mn[16];                                                                \
                SCALES(p, &d, &dmin, sc, mn);                                                      \
                _Pragma("GCC unroll 2") for (int c = 0; c < 2; c++) {                              \
                    int8x16_t w[8];                                                                \
                    CHUNK(p, c, w);                                                                \
                    _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) {                          \
                        const int g = 8 * c + 2 * s;                                               \
                        const int64_t b = sb * 8 + 4 * c + s;                                      \
                        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                     \
                            const int64_t t = t0 + j;                                              \
                            const int8x16_t x0 = xld(a, t, b, 0), x1 = xld(a, t, b, 1);            \
                            const float dx = xdv(a, t, b);                                         \
                            const int32x4_t is = vmlaq_n_s32(vmulq_n_s32(DOT16(w[2 * s], x0),      \
                                                                         sc[g]),                   \
                                                             DOT16(w[2 * s + 1], x1), sc[g + 1]);  \
                            acc[i * nt + j] = vfmaq_f32(acc[i * nt + j], vcvtq_f32_s32(is),        \
                                                        vdupq_n_f32(d * dx));                      \
                            if (MINS) {                                                            \
                                const int32x4_t ms = vmlaq_n_s32(                                  \
                                    vmulq_n_s32(SUM16(x0), mn[g]), SUM16(x1), mn[g + 1]);          \
                                macc[i * nt + j] = vfmaq_f32(macc[i * nt + j],                     \
                                                             vcvtq_f32_s32(ms),                    \
                                                             vdupq_n_f32(dmin * dx));              \
                            }                                                                      \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                                 \
                float y = vaddvq_f32(acc[i * nt + j]);                                             \
                if (MINS) y -= vaddvq_f32(macc[i * nt + j]);                                       \
                a->y[(t0 + j) * a->ldy + r + i] = y;                                               \
            }                                                                                      \
    }                                                                                              \
    BM_TILE_DRIVER(KNAME(T), T##_tile)

K16_KERNEL(q6_K, sizeof(bm_block_q6_K), q6_chunk, q6_scales, 0)
K16_KERNEL(q3_K, sizeof(bm_block_q3_K), q3_chunk, q3_scales, 0)
K16_KERNEL(q2_K, sizeof(bm_block_q2_K), q2_chunk, q2_scales, 1)
