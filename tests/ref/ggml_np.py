"""Independent numpy reference for the GGML/GGUF tensor types, written from the format spec
(block layouts of ggml-common.h, dequantize_row_* formulas of the GGML docs).

API (other reference tests import this):
  TYPE_INFO = {type_id: (name, block_elems, block_bytes)}
  BLOCK_DTYPE = {type_id: numpy structured dtype of one block (packed, little-endian)}
  dequantize(type_id, raw, n_elems) -> np.ndarray float32 [n_elems]
  quantize(type_id, x) -> bytes   for the types whose reference quantization is a closed
      formula (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q8_K); K types other than
      q8_K raise NotImplementedError (their quantizer is a search, not a formula).
  f32_to_bf16_bits(x) -> uint16 array, round-to-nearest-even done in float64 value space.

Every float operation is done in float32 in the same order as the spec's formulas, so the
results are bit-identical to a correct C implementation.
"""
import numpy as np

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 = 0, 1, 2, 3, 6, 7, 8, 9
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, BF16 = 10, 11, 12, 13, 14, 15, 30
QK, QK_K = 32, 256

_h = '<f2'
BLOCK_DTYPE = {
    F32: np.dtype('<f4'),
    F16: np.dtype('<f2'),
    BF16: np.dtype('<u2'),
    Q4_0: np.dtype([('d', _h), ('qs', 'u1', 16)]),
    Q4_1: np.dtype([('d', _h), ('m', _h), ('qs', 'u1', 16)]),
    Q5_0: np.dtype([('d', _h), ('qh', '<u4'), ('qs', 'u1', 16)]),
    Q5_1: np.dtype([('d', _h), ('m', _h), ('qh', '<u4'), ('qs', 'u1', 16)]),
    Q8_0: np.dtype([('d', _h), ('qs', 'i1', 32)]),
    Q8_1: np.dtype([('d', _h), ('s', _h), ('qs', 'i1', 32)]),
    Q2_K: np.dtype([('scales', 'u1', 16), ('qs', 'u1', 64), ('d', _h), ('dmin', _h)]),
    Q3_K: np.dtype([('hmask', 'u1', 32), ('qs', 'u1', 64), ('scales', 'u1', 12), ('d', _h)]),
    Q4_K: np.dtype([('d', _h), ('dmin', _h), ('scales', 'u1', 12), ('qs', 'u1', 128)]),
    Q5_K: np.dtype([('d', _h), ('dmin', _h), ('scales', 'u1', 12), ('qh', 'u1', 32),
                    ('qs', 'u1', 128)]),
    Q6_K: np.dtype([('ql', 'u1', 128), ('qh', 'u1', 64), ('scales', 'i1', 16), ('d', _h)]),
    Q8_K: np.dtype([('d', '<f4'), ('qs', 'i1', 256), ('bsums', '<i2', 16)]),
}
_NAMES = {F32: 'f32', F16: 'f16', BF16: 'bf16', Q4_0: 'q4_0', Q4_1: 'q4_1', Q5_0: 'q5_0',
          Q5_1: 'q5_1', Q8_0: 'q8_0', Q8_1: 'q8_1', Q2_K: 'q2_K', Q3_K: 'q3_K', Q4_K: 'q4_K',
          Q5_K: 'q5_K', Q6_K: 'q6_K', Q8_K: 'q8_K'}
_ELEMS = {F32: 1, F16: 1, BF16: 1, Q4_0: QK, Q4_1: QK, Q5_0: QK, Q5_1: QK, Q8_0: QK,
          Q8_1: QK, Q2_K: QK_K, Q3_K: QK_K, Q4_K: QK_K, Q5_K: QK_K, Q6_K: QK_K, Q8_K: QK_K}
TYPE_INFO = {t: (_NAMES[t], _ELEMS[t], BLOCK_DTYPE[t].itemsize) for t in _NAMES}
QUANTIZED = [t for t in TYPE_INFO if _ELEMS[t] > 1]

f32 = np.float32


def _blocks(t, raw, n_elems):
    name, be, bb = TYPE_INFO[t]
    if n_elems % be:
        raise ValueError(f'{name}: {n_elems} elements is not a multiple of {be}')
    nb = n_elems // be
    buf = raw.tobytes() if isinstance(raw, np.ndarray) else bytes(raw)
    if len(buf) < nb * bb:
        raise ValueError(f'{name}: need {nb * bb} bytes for {n_elems} elements, got {len(buf)}')
    return np.frombuffer(buf[:nb * bb], dtype=BLOCK_DTYPE[t])


def _h2f(a):
    return np.asarray(a).astype(f32)


def _nibbles(qs):
    """qs [nb, 16] -> codes [nb, 32]: low nibbles are elements 0..15, high 16..31."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int32)


def _qh_bits(qh):
    """Little-endian uint32 qh [nb] -> bit j for element j, [nb, 32]."""
    return ((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)


def _k4_scale_min(s):
    """get_scale_min_k4 over [nb, 12] packed bytes -> (scales [nb, 8], mins [nb, 8])."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    mn = np.empty_like(sc)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, mn


def _q3_scales(s):
    """Q3_K: 12 bytes -> 16 signed scales (6-bit code - 32), via the spec's 32-bit word shuffle
    (kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f)."""
    aux = np.frombuffer(np.ascontiguousarray(s).tobytes(), '<u4').reshape(-1, 3)
    k1, k2 = np.uint32(0x03030303), np.uint32(0x0F0F0F0F)
    a0, a1, tmp = aux[:, 0], aux[:, 1], aux[:, 2]
    w = np.stack([(a0 & k2) | (((tmp >> 0) & k1) << 4),
                  (a1 & k2) | (((tmp >> 2) & k1) << 4),
                  ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4),
                  ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4)], axis=1).astype('<u4')
    return np.frombuffer(w.tobytes(), np.int8).reshape(-1, 16).astype(np.int32) - 32


def _two_bit_codes(qs):
    """qs [nb, 64] -> [nb, 256]: per 128-chunk, the 4 shifts (0, 2, 4, 6) of 32 bytes."""
    q = qs.reshape(-1, 2, 1, 32) >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    return (q & 3).reshape(-1, 256).astype(np.int32)


def dequantize(type_id, raw, n_elems):
    """Dequantizes n_elems values of GGML type type_id from raw bytes -> float32 [n_elems]."""
    t = type_id
    b = _blocks(t, raw, n_elems)
    if t == F32:
        return b.astype(f32)
    if t == F16:
        return b.astype(f32)
    if t == BF16:
        return (b.astype(np.uint32) << 16).view(f32)
    if t in (Q4_0, Q4_1, Q5_0, Q5_1):
        d = _h2f(b['d'])[:, None]
        q = _nibbles(b['qs'])
        if t in (Q5_0, Q5_1):
            q = q | (_qh_bits(b['qh']) << 4)
        if t == Q4_0:
            y = (q - 8).astype(f32) * d
        elif t == Q5_0:
            y = (q - 16).astype(f32) * d
        else:
            y = q.astype(f32) * d + _h2f(b['m'])[:, None]
    elif t in (Q8_0, Q8_1):
        y = b['qs'].astype(f32) * _h2f(b['d'])[:, None]
    elif t == Q8_K:
        y = b['qs'].astype(f32) * b['d'].astype(f32)[:, None]
    elif t == Q2_K:
        d, dmin = _h2f(b['d'])[:, None], _h2f(b['dmin'])[:, None]
        sc = b['scales']
        dl = np.repeat(d * (sc & 0xF).astype(f32), 16, axis=1)
        ml = np.repeat(dmin * (sc >> 4).astype(f32), 16, axis=1)
        y = dl * _two_bit_codes(b['qs']).astype(f32) - ml
    elif t == Q3_K:
        d = _h2f(b['d'])[:, None]
        dl = np.repeat(d * _q3_scales(b['scales']).astype(f32), 16, axis=1)
        hm = b['hmask']  # [nb, 32]; bit m of hmask[l] is the high bit of element 32m + l
        hbit = ((hm[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1)
        q = _two_bit_codes(b['qs']) - 4 * (1 - hbit.reshape(-1, 256).astype(np.int32))
        y = dl * q.astype(f32)
    elif t in (Q4_K, Q5_K):
        d, dmin = _h2f(b['d'])[:, None], _h2f(b['dmin'])[:, None]
        sc, mn = _k4_scale_min(b['scales'])
        dl = np.repeat(d * sc.astype(f32), 32, axis=1)
        ml = np.repeat(dmin * mn.astype(f32), 32, axis=1)
        qs = b['qs'].reshape(-1, 4, 1, 32)  # 4 chunks of 64: low nibbles, then high
        q = np.concatenate([qs & 0xF, qs >> 4], axis=2).reshape(-1, 256).astype(np.int32)
        if t == Q5_K:
            qh = b['qh']
            hb = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1
            q = q + 16 * hb.reshape(-1, 256).astype(np.int32)
        y = dl * q.astype(f32) - ml
    elif t == Q6_K:
        d = _h2f(b['d'])[:, None]
        ql = b['ql'].reshape(-1, 2, 64).astype(np.int32)
        qh = b['qh'].reshape(-1, 2, 32).astype(np.int32)
        q1 = (ql[:, :, :32] & 0xF) | (((qh >> 0) & 3) << 4)
        q2 = (ql[:, :, 32:] & 0xF) | (((qh >> 2) & 3) << 4)
        q3 = (ql[:, :, :32] >> 4) | (((qh >> 4) & 3) << 4)
        q4 = (ql[:, :, 32:] >> 4) | (((qh >> 6) & 3) << 4)
        q = np.stack([q1, q2, q3, q4], axis=2).reshape(-1, 256) - 32
        dl = np.repeat(d * b['scales'].astype(f32), 16, axis=1)
        y = dl * q.astype(f32)
    else:
        raise ValueError(f'unsupported type id {t}')
    return np.ascontiguousarray(y, dtype=f32).reshape(-1)


# ---- reference quantization (closed-form types) -------------------------------------------

def _f32_bits_value(u):
    """float64 value of float32 bit patterns u (uint64 array), exponent 255 treated as a
    normal exponent (so 0x7F800000 reads 2**128), for rounding decisions."""
    u = u.astype(np.int64)
    sign = np.where(u & 0x80000000, -1.0, 1.0)
    e = (u >> 23) & 0xFF
    m = (u & 0x7FFFFF).astype(np.float64)
    v = np.where(e == 0, np.ldexp(m, -149), np.ldexp(1.0 + m / 2**23, (e - 127).astype(np.int32)))
    return sign * v


def f32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bfloat16 bits, decided on float64 distances to the two
    neighbouring bfloat16 values; NaN -> a quiet NaN (sign kept), inf kept."""
    x = np.asarray(x, f32).reshape(-1)
    u = x.view(np.uint32).astype(np.uint64)
    lo = u & 0xFFFF0000
    hi = lo + 0x10000
    vlo, vhi = _f32_bits_value(lo), _f32_bits_value(hi)
    with np.errstate(invalid='ignore'):
        xv = x.astype(np.float64)
        dlo, dhi = np.abs(xv - vlo), np.abs(vhi - xv)
        up = (dhi < dlo) | ((dhi == dlo) & (((lo >> 16) & 1) == 1))
    r = np.where(up, hi, lo) >> 16
    r = np.where(np.isinf(x), u >> 16, r)
    r = np.where(np.isnan(x), (u >> 16) | 0x40, r)
    return r.astype(np.uint16)


def _round_half_away(v):
    v = v.astype(np.float64)  # |v| + 0.5 is exact in float64 for float32 v
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _signed_absmax(x):
    """Per row: the value of largest magnitude (the first one on ties)."""
    i = np.argmax(np.abs(x), axis=1)
    return x[np.arange(x.shape[0]), i]


def _inv(d):
    with np.errstate(divide='ignore'):
        return np.where(d != 0, f32(1) / np.where(d != 0, d, f32(1)), f32(0)).astype(f32)


def _pack_nibbles(q):
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def quantize(type_id, x):
    """Reference quantization of float32 x (length a multiple of the block) -> raw bytes."""
    t = type_id
    x = np.ascontiguousarray(x, f32).reshape(-1)
    if t == F32:
        return x.tobytes()
    if t == F16:
        return x.astype('<f2').tobytes()
    if t == BF16:
        return f32_to_bf16_bits(x).astype('<u2').tobytes()
    name, be, _ = TYPE_INFO[t]
    if x.size % be:
        raise ValueError(f'{name}: {x.size} elements is not a multiple of {be}')
    xb = x.reshape(-1, be)
    out = np.zeros(xb.shape[0], BLOCK_DTYPE[t])
    if t in (Q4_0, Q5_0):
        half = 8 if t == Q4_0 else 16
        d = (_signed_absmax(xb) / f32(-half)).astype(f32)
        v = xb * _inv(d)[:, None] + f32(half + 0.5)
        q = np.minimum(2 * half - 1, np.trunc(v).astype(np.int64))
        out['d'] = d.astype(_h)
    elif t in (Q4_1, Q5_1):
        nmax = 15 if t == Q4_1 else 31
        mn, mx = xb.min(axis=1), xb.max(axis=1)
        d = ((mx - mn) / f32(nmax)).astype(f32)
        v = (xb - mn[:, None]) * _inv(d)[:, None] + f32(0.5)
        q = np.minimum(nmax, np.trunc(v).astype(np.int64))
        out['d'], out['m'] = d.astype(_h), mn.astype(_h)
    elif t in (Q8_0, Q8_1):
        d = (np.abs(xb).max(axis=1) / f32(127)).astype(f32)
        q = _round_half_away(xb * _inv(d)[:, None]).astype(np.int64)
        out['d'], out['qs'] = d.astype(_h), q
        if t == Q8_1:
            out['s'] = (q.sum(axis=1).astype(f32) * d).astype(_h)
        return out.tobytes()
    elif t == Q8_K:
        mx = _signed_absmax(xb)
        nz = mx != 0
        iscale = np.where(nz, f32(-127) / np.where(nz, mx, f32(1)), f32(0)).astype(f32)
        q = np.minimum(127, np.rint(xb * iscale[:, None])).astype(np.int64)
        out['qs'] = q
        out['d'] = _inv(iscale)
        out['bsums'] = q.reshape(-1, 16, 16).sum(axis=2)
        return out.tobytes()
    else:
        raise NotImplementedError(f'{name}: reference quantization is a search, not a formula')
    q = q.astype(np.uint8)
    out['qs'] = _pack_nibbles(q & 0xF)
    if t in (Q5_0, Q5_1):
        hb = ((q >> 4) & 1).astype(np.uint32)
        out['qh'] = (hb << np.arange(32, dtype=np.uint32)).sum(axis=1).astype(np.uint32)
    return out.tobytes()
