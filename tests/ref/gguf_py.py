"""Independent numpy reader and writer for GGUF v3 files (written from the GGUF format spec).

read(path) -> Gguf with .kv (dict key -> python value), .tensors (dict name -> TensorInfo with
ne, type, offset), .array(name) -> float32 ndarray in row-major shape (ne reversed, so a matrix
stored with ne=[in, out] comes back as [out, in]).
write(path, kv, tensors): writes a GGUF v3 file; kv values carry their GGUF type explicitly
(see KV helpers), tensors are (name, ne, ggml_type, raw bytes).
Dequantization: ggml_np.dequantize when present, else the small built-in set below.
"""
import struct

import numpy as np

# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_SCALAR = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f',
           BOOL: '<?', U64: '<Q', I64: '<q', F64: '<d'}

# ggml tensor types: id -> (name, block elements, block bytes)
GGML = {0: ('F32', 1, 4), 1: ('F16', 1, 2), 2: ('Q4_0', 32, 18), 3: ('Q4_1', 32, 20),
        6: ('Q5_0', 32, 22), 7: ('Q5_1', 32, 24), 8: ('Q8_0', 32, 34), 9: ('Q8_1', 32, 36),
        10: ('Q2_K', 256, 84), 11: ('Q3_K', 256, 110), 12: ('Q4_K', 256, 144),
        13: ('Q5_K', 256, 176), 14: ('Q6_K', 256, 210), 15: ('Q8_K', 256, 292),
        30: ('BF16', 1, 2)}
TYPE_ID = {v[0]: k for k, v in GGML.items()}


class TensorInfo:
    def __init__(self, name, ne, type_id, offset):
        self.name, self.ne, self.type, self.offset = name, list(ne), type_id, offset

    @property
    def n_elems(self):
        return int(np.prod(self.ne, dtype=np.int64))

    @property
    def nbytes(self):
        _, blk, bsz = GGML[self.type]
        assert self.n_elems % blk == 0, (self.name, self.ne)
        return self.n_elems // blk * bsz


class Gguf:
    def __init__(self, path):
        self.path = path
        with open(path, 'rb') as f:
            self.buf = f.read()
        self.pos = 0
        if self._take(4) != b'GGUF':
            raise ValueError(f'{path}: not a GGUF file')
        self.version = self._scalar(U32)
        if self.version not in (2, 3):
            raise ValueError(f'{path}: GGUF version {self.version} unsupported')
        n_tensors, n_kv = self._scalar(U64), self._scalar(U64)
        self.kv, self.kv_types = {}, {}
        for _ in range(n_kv):
            key = self._string()
            t = self._scalar(U32)
            self.kv_types[key] = t
            if t == ARR:  # remember the element type so copies keep it
                save = self.pos
                self.kv_types[key] = (ARR, self._scalar(U32))
                self.pos = save
            self.kv[key] = self._value(t)
        self.tensors = {}
        for _ in range(n_tensors):
            name = self._string()
            nd = self._scalar(U32)
            ne = [self._scalar(U64) for _ in range(nd)]
            t = self._scalar(U32)
            off = self._scalar(U64)
            self.tensors[name] = TensorInfo(name, ne, t, off)
        self.alignment = int(self.kv.get('general.alignment', 32))
        self.data_start = (self.pos + self.alignment - 1) // self.alignment * self.alignment

    def _take(self, n):
        b = self.buf[self.pos:self.pos + n]
        if len(b) != n:
            raise ValueError(f'{self.path}: truncated at {self.pos}')
        self.pos += n
        return b

    def _scalar(self, t):
        fmt = _SCALAR[t]
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def _string(self):
        return self._take(self._scalar(U64)).decode('utf-8')

    def _value(self, t):
        if t == STR:
            return self._string()
        if t == ARR:
            et, n = self._scalar(U32), self._scalar(U64)
            if et in _SCALAR and et != BOOL:
                fmt = _SCALAR[et]
                sz = struct.calcsize(fmt)
                arr = np.frombuffer(self._take(n * sz), dtype=np.dtype(fmt)).tolist()
                return arr
            return [self._value(et) for _ in range(n)]
        return self._scalar(t)

    def raw(self, name):
        ti = self.tensors[name]
        start = self.data_start + ti.offset
        return self.buf[start:start + ti.nbytes]

    def array(self, name):
        """Dequantized float32 tensor, shape = reversed(ne)."""
        ti = self.tensors[name]
        x = dequantize(ti.type, self.raw(name), ti.n_elems)
        return x.reshape(list(reversed(ti.ne)))

    def arch(self):
        return self.kv['general.architecture']


def read(path):
    return Gguf(path)


# ---------------------------------------------------------------- dequantization (built-in)

def _f16(b, count, off, stride):
    """count float16 values at byte offset off in each row of a [count, stride] uint8 view."""
    return b[:, off:off + 2].copy().view(np.float16).astype(np.float32).reshape(count)


def _builtin_dequantize(type_id, raw, n):
    name = GGML[type_id][0]
    if name == 'F32':
        return np.frombuffer(raw, dtype='<f4', count=n).astype(np.float32)
    if name == 'F16':
        return np.frombuffer(raw, dtype='<f2', count=n).astype(np.float32)
    if name == 'BF16':
        u = np.frombuffer(raw, dtype='<u2', count=n).astype(np.uint32) << 16
        return u.view(np.float32)
    _, blk, bsz = GGML[type_id]
    nb = n // blk
    b = np.frombuffer(raw, dtype=np.uint8, count=nb * bsz).reshape(nb, bsz)
    if name == 'Q8_0':  # f16 d, int8 q[32]: x = d*q
        d = _f16(b, nb, 0, bsz)
        q = b[:, 2:].copy().view(np.int8).astype(np.float32)
        return (d[:, None] * q).reshape(n)
    if name == 'Q4_0':  # f16 d, 16 bytes: x[j] = d*(lo nibble - 8), x[j+16] = d*(hi - 8)
        d = _f16(b, nb, 0, bsz)
        qs = b[:, 2:]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32) - 8
        return (d[:, None] * q).reshape(n)
    if name == 'Q4_1':  # f16 d, f16 m, 16 bytes: x = d*q + m
        d, m = _f16(b, nb, 0, bsz), _f16(b, nb, 2, bsz)
        qs = b[:, 4:]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)
        return (d[:, None] * q + m[:, None]).reshape(n)
    if name == 'Q4_K':
        return _q4_k(b, nb).reshape(n)
    raise NotImplementedError(f'dequantize {name}: needs tests/ref/ggml_np.py')


def _q4_k(b, nb):
    """Q4_K super-block (256): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins for 8
    sub-blocks of 32, 128 bytes of 4-bit quants; x = d*sc*q - dmin*m. Sub-block pair
    (2j, 2j+1) uses the low / high nibbles of quant bytes 32j..32j+31."""
    d, dmin = _f16(b, nb, 0, 144), _f16(b, nb, 2, 144)
    s = b[:, 4:16].astype(np.int32)
    qs = b[:, 16:144]
    sc = np.zeros((nb, 8), np.int32)
    mn = np.zeros((nb, 8), np.int32)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    out = np.empty((nb, 8, 32), np.float32)
    for j in range(4):
        q = qs[:, 32 * j:32 * j + 32]
        for h, qq in ((0, q & 15), (1, q >> 4)):
            k = 2 * j + h
            out[:, k, :] = (d * sc[:, k])[:, None] * qq - (dmin * mn[:, k])[:, None]
    return out


try:  # the shared dequantizer for every ggml type, when it has landed
    import ggml_np as _ggml_np
except ImportError:  # pragma: no cover
    _ggml_np = None


def dequantize(type_id, raw, n):
    if GGML[type_id][0] in ('F32', 'F16', 'BF16'):
        return _builtin_dequantize(type_id, raw, n)
    if _ggml_np is not None:
        return np.asarray(_ggml_np.dequantize(type_id, raw, n), dtype=np.float32).reshape(n)
    return _builtin_dequantize(type_id, raw, n)


# ---------------------------------------------------------------- writer

def kv_value(t, v):
    """Tag a metadata value with its GGUF type: kv_value(F32, 1e-5), kv_value(ARR, (STR, [...]))."""
    return (t, v)


def _pack_value(t, v):
    if t == STR:
        b = v.encode('utf-8')
        return struct.pack('<Q', len(b)) + b
    if t == ARR:
        et, items = v
        return struct.pack('<IQ', et, len(items)) + b''.join(_pack_value(et, x) for x in items)
    return struct.pack(_SCALAR[t], v)


def write(path, kv, tensors, alignment=32):
    """kv: dict key -> (type, value); tensors: list of (name, ne, type_id, raw bytes)."""
    out = [b'GGUF', struct.pack('<IQQ', 3, len(tensors), len(kv))]
    for k, (t, v) in kv.items():
        out += [_pack_value(STR, k), struct.pack('<I', t), _pack_value(t, v)]
    offsets, off = [], 0
    for name, ne, t, raw in tensors:
        off = (off + alignment - 1) // alignment * alignment
        offsets.append(off)
        off += len(raw)
    for (name, ne, t, raw), o in zip(tensors, offsets):
        out += [_pack_value(STR, name), struct.pack('<I', len(ne)),
                struct.pack(f'<{len(ne)}Q', *ne), struct.pack('<IQ', t, o)]
    head = b''.join(out)
    pad = (-len(head)) % alignment
    body = [head, b'\0' * pad]
    pos = 0
    for (name, ne, t, raw), o in zip(tensors, offsets):
        body.append(b'\0' * (o - pos))
        body.append(raw)
        pos = o + len(raw)
    with open(path, 'wb') as f:
        f.write(b''.join(body))


def f32_tensor(name, arr):
    """(name, ne, F32, raw) for a row-major float array (ne = reversed shape)."""
    a = np.ascontiguousarray(arr, dtype='<f4')
    return (name, list(reversed(a.shape)), 0, a.tobytes())


def copy_with_kv(src, dst, set_kv=None, drop_kv=(), extra_tensors=()):
    """Rewrite GGUF src to dst with metadata changed (tensor bytes copied unchanged) and
    extra_tensors ((name, ne, type, raw) tuples) appended."""
    g = read(src)
    kv = {}
    for k, v in g.kv.items():
        if k in drop_kv:
            continue
        t = g.kv_types[k]
        kv[k] = (ARR, (t[1], v)) if isinstance(t, tuple) else (t, v)
    kv.update(set_kv or {})
    tensors = [(n, ti.ne, ti.type, g.raw(n)) for n, ti in g.tensors.items()]
    write(dst, kv, tensors + list(extra_tensors), alignment=g.alignment)
