/* Integer-dot row kernels of the block formats against the 8-bit activation blocks of 32
 * (scale and code sum per block): Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and the K formats (Q3_K, Q4_K,
 * Q5_K, Q6_K), written once and compiled per ISA level: mmk_avx2.c (signed codes,
 * vpmaddubsw/vpmaddwd), mmk_vnni.c (codes + 128, EVEX vpdpbusd with a per-weight correction) and
 * mmk_avxvnni.c (the same with VEX vpdpbusd, dpbusd.h). Per 32-element (sub-)block the integer
 * dot is exact; 16-element integer scales (Q6_K, Q3_K) are applied to the int32 lanes (each lane
 * covers 4 elements of one 16-group); float scales per 32-block; mins through the activation
 * block sums (min * d_x * sum of codes), vectorized per super-block. Every output element
 * follows one fixed instruction sequence whatever n_tok is: results are batch invariant. */
#include "tensor/tile_driver.h"
#include "tensor/x86/dpbusd.h"
#include "tensor/x86/wblock.h"

#define NT BM_TILE_NT
#define KNR BM_TILE_NR
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define KNAME(t) CAT(CAT(bm_mm_, t), CAT(_, MMK_SUF))

#ifdef MMK_VNNI
/* x arrives as u = x + 128: dpbusd(u, w) = sum x*w + 128 sum w; c = -128 sum w per lane. */
typedef struct wv { __m256i w, c; } wv;
INLINE wv prep(__m256i w) {
    const __m256i z = _mm256_setzero_si256();
    wv r = {w, _mm256_sub_epi32(z, DPBUSD256(z, _mm256_set1_epi8((char)0x80), w))};
    return r;
}
#define prep_u prep
INLINE __m256i dot(wv w, __m256i x) { return DPBUSD256(w.c, x, w.w); }
#define dot_u dot
/* Integer scales of the two 16-element halves, as multipliers of the int32 lanes. */
typedef __m256i scv;
INLINE scv mk_scv(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi32(hi), _mm_set1_epi32(lo));
}
INLINE __m256i dot_sc(wv w, __m256i x, scv s) { return _mm256_mullo_epi32(dot(w, x), s); }
#else
/* Signed x: |w| * sign(x, w) pairs with vpmaddubsw (|w| <= 128, |x| <= 127: no saturation). */
typedef struct wv { __m256i a, w; } wv;
INLINE wv prep(__m256i w) {
    wv r = {_mm256_sign_epi8(w, w), w};
    return r;
}
/* Weights known to be in 0..127: used unsigned as they are. */
INLINE wv prep_u(__m256i w) {
    wv r = {w, w};
    return r;
}
INLINE __m256i dot(wv w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, _mm256_sign_epi8(x, w.w)),
                             _mm256_set1_epi16(1));
}
INLINE __m256i dot_u(wv w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, x), _mm256_set1_epi16(1));
}
typedef __m256i scv;
INLINE scv mk_scv(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}
/* |pair| <= 2 * 32 * 127 before the scale (|w| <= 32 for Q6_K/Q3_K), so vpmaddwd is exact. */
INLINE __m256i dot_sc(wv w, __m256i x, scv s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, _mm256_sign_epi8(x, w.w)), s);
}
#endif

/* Single-token tiles read 4 rows at once; they prefetch the same block of the next 4 rows
 * (BM_MM_PREFETCH=0 at build time turns it off, for measurements). */
#ifndef BM_MM_PREFETCH
#define BM_MM_PREFETCH 1
#endif
INLINE void prefetch_block(const uint8_t *p, size_t n) {
#if BM_MM_PREFETCH
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T0);
#else
    (void)p;
    (void)n;
#endif
}

INLINE __m256i xload(const bm_mm_args *a, int64_t t, int64_t b) {
    return _mm256_loadu_si256((const __m256i *)(a->xq + t * a->ldq + b * BM_QK));
}
INLINE float xdv(const bm_mm_args *a, int64_t t, int64_t b) { return a->xd[t * a->ldd + b]; }

/* ---- Q8_0 / Q4_0 / Q5_0: value = d * q, q signed ---------------------------------------- */

/* One row x nt tokens (ROW_DRIVER: 1 x 4 for batches, 1 x 1..3 for the rest). */
#define Q_KERNEL(T, BS, LOADW)                                                                     \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, int64_t t0, const int nt) {               \
        const uint8_t *wr = a->w + (size_t)r * a->row_bytes;                                       \
        const int64_t nb = a->n_in / BM_QK;                                                        \
        __m256 acc[NT];                                                                            \
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) acc[j] = _mm256_setzero_ps();        \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            float dw;                                                                              \
            const wv w = prep(LOADW(wr + b * (BS), &dw));                                          \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                                 \
                const int64_t t = t0 + j;                                                          \
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xdv(a, t, b)),                       \
                                         _mm256_cvtepi32_ps(dot(w, xload(a, t, b))), acc[j]);      \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) a->y[(t0 + j) * a->ldy + r] =         \
            hsum8(acc[j]);                                                                         \
    }                                                                                              \
    ROW_DRIVER(KNAME(T), T##_tile)

Q_KERNEL(q8_0, sizeof(bm_block_q8_0), w_q8_0)
Q_KERNEL(q4_0, sizeof(bm_block_q4_0), w_q4_0)
Q_KERNEL(q5_0, sizeof(bm_block_q5_0), w_q5_0)

/* Tiles are nr rows x nt tokens with nr * nt <= 4: 1 x 4 tokens for batches, up to 4 rows x 1
 * token for the token tail (decode): each element keeps its own accumulators and sequence. */
#define TILE_DRIVER(T) BM_TILE_DRIVER(KNAME(T), T##_tile)

/* ---- Q4_1 / Q5_1: value = d * q + m, q unsigned ------------------------------------------ */

#define Q1_KERNEL(T, BS, LOADQ)                                                                    \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t nb = a->n_in / BM_QK;                                                        \
        __m256 acc[4];                                                                             \
        float ms[4];                                                                               \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) {                                \
            acc[j] = _mm256_setzero_ps();                                                          \
            ms[j] = 0.0f;                                                                          \
        }                                                                                          \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes + b * (BS);               \
                if (nt == 1) prefetch_block(p + 4 * a->row_bytes, BS);                             \
                const float dw = load_f16(p), mw = load_f16(p + 2);                                \
                const wv w = prep_u(LOADQ(p));                                                     \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                    const int64_t t = t0 + j;                                                      \
                    const float dx = xdv(a, t, b);                                                 \
                    acc[i * nt + j] = _mm256_fmadd_ps(                                             \
                        _mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(dot_u(w, xload(a, t, b))),     \
                        acc[i * nt + j]);                                                          \
                    ms[i * nt + j] += mw * a->xm[t * a->ldd + b]; /* m d_x xs */                   \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                                   \
                a->y[(t0 + j) * a->ldy + r + i] = hsum8(acc[i * nt + j]) + ms[i * nt + j];         \
    }                                                                                              \
    TILE_DRIVER(T)

INLINE __m256i wq_q4_1(const uint8_t *p) { return nibbles(p + 4); }
INLINE __m256i wq_q5_1(const uint8_t *p) {
    return _mm256_or_si256(nibbles(p + 8), high_bits(p + 4));
}
Q1_KERNEL(q4_1, sizeof(bm_block_q4_1), wq_q4_1)
Q1_KERNEL(q5_1, sizeof(bm_block_q5_1), wq_q5_1)

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, value = d*sc*q - dmin*m ---------------------------- */

INLINE void k4_scales(const uint8_t *s, float d, float dmin, float ds[8], float mf[8]) {
    /* Bytewise on 32-bit words: scales 0..3 = low 6 bits of bytes 0..3, mins 0..3 = of bytes
     * 4..7; scales 4..7 = low nibbles of bytes 8..11 | top 2 bits of bytes 0..3 << 4; mins 4..7 =
     * high nibbles of bytes 8..11 | top 2 bits of bytes 4..7 << 4. */
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4);
    memcpy(&w1, s + 4, 4);
    memcpy(&w2, s + 8, 4);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
    const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
    const __m256 scf = _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo)));
    const __m256 mff = _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)m_hi, (int)m_lo)));
    _mm256_storeu_ps(ds, _mm256_mul_ps(_mm256_set1_ps(d), scf));
    _mm256_storeu_ps(mf, _mm256_mul_ps(_mm256_set1_ps(dmin), mff));
}

/* Byte l of the result is 0x10 when bit `bit` of qh[l] is set. */
INLINE __m256i bit_at(__m256i qh, int bit) {
    const __m256i m = _mm256_set1_epi8((char)(1 << bit));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m), m),
                            _mm256_set1_epi8(0x10));
}

#define K4_KERNEL(T, BS, Q5)                                                                       \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t ns = a->n_in / BM_QK_K;                                                      \
        const __m256i lo4 = _mm256_set1_epi8(0x0F);                                                \
        __m256 acc[4], macc[4];                                                                    \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) {                                \
            acc[j] = _mm256_setzero_ps();                                                          \
            macc[j] = _mm256_setzero_ps();                                                         \
        }                                                                                          \
        for (int64_t sb = 0; sb < ns; sb++) {                                                      \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes + sb * (BS);              \
                if (nt == 1) prefetch_block(p + 4 * a->row_bytes, BS);                             \
                float ds[8], mf[8];                                                                \
                k4_scales(p + 4, load_f16(p), load_f16(p + 2), ds, mf);                            \
                const uint8_t *qs = p + (BS) - BM_QK_K / 2;                                        \
                __m256i qh = _mm256_setzero_si256();                                               \
                if (Q5) qh = _mm256_loadu_si256((const __m256i *)(p + 16));                        \
                for (int pr = 0; pr < 4; pr++) {                                                   \
                    const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * pr));       \
                    __m256i q0 = _mm256_and_si256(raw, lo4);                                       \
                    __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4);                 \
                    if (Q5) {                                                                      \
                        q0 = _mm256_or_si256(q0, bit_at(qh, 2 * pr));                              \
                        q1 = _mm256_or_si256(q1, bit_at(qh, 2 * pr + 1));                          \
                    }                                                                              \
                    const wv w0 = prep_u(q0), w1 = prep_u(q1);                                     \
                    const int64_t b0 = sb * 8 + 2 * pr;                                            \
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                         \
                        const int64_t t = t0 + j;                                                  \
                        __m256 s = acc[i * nt + j];                                                \
                        s = _mm256_fmadd_ps(_mm256_set1_ps(ds[2 * pr] * xdv(a, t, b0)),            \
                                            _mm256_cvtepi32_ps(dot_u(w0, xload(a, t, b0))), s);    \
                        s = _mm256_fmadd_ps(_mm256_set1_ps(ds[2 * pr + 1] * xdv(a, t, b0 + 1)),    \
                                            _mm256_cvtepi32_ps(dot_u(w1, xload(a, t, b0 + 1))),    \
                                            s);                                                    \
                        acc[i * nt + j] = s;                                                       \
                    }                                                                              \
                }                                                                                  \
                const __m256 mv = _mm256_loadu_ps(mf);                                             \
                _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                             \
                    const __m256 xm = _mm256_loadu_ps(a->xm + (t0 + j) * a->ldd + sb * 8);         \
                    macc[i * nt + j] = _mm256_fmadd_ps(mv, xm, macc[i * nt + j]);                  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                                   \
                a->y[(t0 + j) * a->ldy + r + i] =                                                  \
                    hsum8(acc[i * nt + j]) - hsum8(macc[i * nt + j]);                              \
    }                                                                                              \
    TILE_DRIVER(T)

K4_KERNEL(q4_K, sizeof(bm_block_q4_K), 0)
K4_KERNEL(q5_K, sizeof(bm_block_q5_K), 1)

/* ---- Q6_K / Q3_K: 16 groups of 16 with integer scales, value = d * sc * q ---------------- */

/* Sub-block s (0..3) of 128-chunk c of a Q6_K super-block: signed codes (code - 32). */
INLINE __m256i q6_codes(const uint8_t *p, int c, int s) {
    const __m256i ql = _mm256_loadu_si256((const __m256i *)(p + 64 * c + 32 * (s % 2)));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * c));
    const __m256i lo = _mm256_and_si256(s / 2 ? _mm256_srli_epi16(ql, 4) : ql,
                                        _mm256_set1_epi8(0x0F));
    __m256i hi;
    switch (s) {
    case 0: hi = _mm256_slli_epi16(qh, 4); break;
    case 1: hi = _mm256_slli_epi16(qh, 2); break;
    case 2: hi = qh; break;
    default: hi = _mm256_srli_epi16(qh, 2); break;
    }
    hi = _mm256_and_si256(hi, _mm256_set1_epi8(0x30));
    return _mm256_sub_epi8(_mm256_or_si256(lo, hi), _mm256_set1_epi8(32));
}

INLINE void q6_scales(const uint8_t *p, float *d, int sc[16]) {
    *d = load_f16(p + 208);
    for (int i = 0; i < 16; i++) sc[i] = (int8_t)p[192 + i];
}

/* Sub-block s of chunk c of a Q3_K super-block: signed codes in -4..3. */
INLINE __m256i q3_codes(const uint8_t *p, int c, int s) {
    const __m256i qs = _mm256_loadu_si256((const __m256i *)(p + 32 + 32 * c));
    const __m256i hm = _mm256_loadu_si256((const __m256i *)p);
    __m256i lo;
    switch (s) {
    case 0: lo = qs; break;
    case 1: lo = _mm256_srli_epi16(qs, 2); break;
    case 2: lo = _mm256_srli_epi16(qs, 4); break;
    default: lo = _mm256_srli_epi16(qs, 6); break;
    }
    lo = _mm256_and_si256(lo, _mm256_set1_epi8(3));
    const __m256i m = _mm256_set1_epi8((char)(1 << (4 * c + s)));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, m), m);
    /* code - 4 when the high bit is clear: add (set & 4) - 4. */
    return _mm256_add_epi8(lo, _mm256_sub_epi8(_mm256_and_si256(set, _mm256_set1_epi8(4)),
                                               _mm256_set1_epi8(4)));
}

INLINE void q3_scales(const uint8_t *p, float *d, int sc[16]) {
    const uint8_t *s = p + 96;
    *d = load_f16(p + 108);
    for (int i = 0; i < 16; i++)
        sc[i] = (((s[i % 8] >> (4 * (i / 8))) & 0xF) | ((s[8 + i % 4] >> (2 * (i / 4))) & 3) << 4) -
                32;
}

#define K16_KERNEL(T, BS, CODES, SCALES)                                                           \
    INLINE void T##_tile(const bm_mm_args *a, int64_t r, const int nr, int64_t t0,                 \
                         const int nt) {                                                           \
        const int64_t ns = a->n_in / BM_QK_K;                                                      \
        __m256 acc[4];                                                                             \
        _Pragma("GCC unroll 4") for (int j = 0; j < nr * nt; j++) acc[j] = _mm256_setzero_ps();    \
        for (int64_t sb = 0; sb < ns; sb++) {                                                      \
            _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++) {                                 \
                const uint8_t *p = a->w + (size_t)(r + i) * a->row_bytes + sb * (BS);              \
                if (nt == 1) prefetch_block(p + 4 * a->row_bytes, BS);                             \
                float d;                                                                           \
                int sc[16];                                                                        \
                SCALES(p, &d, sc);                                                                 \
                _Pragma("GCC unroll 8") for (int sub = 0; sub < 8; sub++) {                        \
                    const wv w = prep(CODES(p, sub / 4, sub % 4));                                 \
                    const scv s = mk_scv(sc[2 * sub], sc[2 * sub + 1]);                            \
                    const int64_t b = sb * 8 + sub;                                                \
                    _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++) {                         \
                        const int64_t t = t0 + j;                                                  \
                        acc[i * nt + j] = _mm256_fmadd_ps(                                         \
                            _mm256_set1_ps(d * xdv(a, t, b)),                                      \
                            _mm256_cvtepi32_ps(dot_sc(w, xload(a, t, b), s)), acc[i * nt + j]);    \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < nr; i++)                                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)                                   \
                a->y[(t0 + j) * a->ldy + r + i] = hsum8(acc[i * nt + j]);                          \
    }                                                                                              \
    TILE_DRIVER(T)

K16_KERNEL(q6_K, sizeof(bm_block_q6_K), q6_codes, q6_scales)
K16_KERNEL(q3_K, sizeof(bm_block_q3_K), q3_codes, q3_scales)
