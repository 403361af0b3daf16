"""Independent GGUF (v2/v3) parser and writer in plain python + numpy, written from the GGUF
specification (ggml docs/gguf.md) for checking baimo's reader and writer. Not shared code with
baimo: it reads the bytes with struct and knows the layout only from the spec."""
import struct

import numpy as np

# value type ids and their struct codes
SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?',
          10: '<Q', 11: '<q', 12: '<d'}
STRING, ARRAY = 8, 9
TYPE_NAMES = {0: 'u8', 1: 'i8', 2: 'u16', 3: 'i16', 4: 'u32', 5: 'i32', 6: 'f32', 7: 'bool',
              8: 'str', 9: 'arr', 10: 'u64', 11: 'i64', 12: 'f64'}
TYPE_IDS = {v: k for k, v in TYPE_NAMES.items()}
# ggml tensor types: (elements per block, bytes per block), from the ggml type table
GGML_TYPES = {'f32': (0, 1, 4), 'f16': (1, 1, 2), 'q4_0': (2, 32, 18), 'q4_1': (3, 32, 20),
              'q5_0': (6, 32, 22), 'q5_1': (7, 32, 24), 'q8_0': (8, 32, 34),
              'q2_K': (10, 256, 84), 'q3_K': (11, 256, 110), 'q4_K': (12, 256, 144),
              'q5_K': (13, 256, 176), 'q6_K': (14, 256, 210), 'q8_K': (15, 256, 292),
              'bf16': (30, 1, 2)}
GGML_BY_ID = {v[0]: (k, v[1], v[2]) for k, v in GGML_TYPES.items()}


class Reader:
    def __init__(self, buf):
        self.b, self.pos = buf, 0

    def take(self, n):
        if self.pos + n > len(self.b):
            raise ValueError(f'truncated at {self.pos} (+{n}), size {len(self.b)}')
        r = self.b[self.pos:self.pos + n]
        self.pos += n
        return r

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return self.take(self.unpack('<Q')).decode('utf-8')

    def value(self, t):
        if t in SCALAR:
            return self.unpack(SCALAR[t])
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.unpack('<I'), self.unpack('<Q')
            return (TYPE_NAMES[et], [self.value(et) for _ in range(n)])
        raise ValueError(f'bad type {t}')


def read_gguf(path):
    """Returns dict(version, alignment, kv={key: (type_name, value)}, tensors=[dict])."""
    with open(path, 'rb') as f:
        buf = f.read()
    r = Reader(buf)
    if r.take(4) != b'GGUF':
        raise ValueError('bad magic')
    version = r.unpack('<I')
    if version not in (2, 3):
        raise ValueError(f'version {version}')
    n_tensors, n_kv = r.unpack('<Q'), r.unpack('<Q')
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        t = r.unpack('<I')
        if key in kv:
            raise ValueError(f'duplicate key {key}')
        kv[key] = (TYPE_NAMES[t], r.value(t))
    align = kv.get('general.alignment', ('u32', 32))[1]
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.unpack('<I')
        ne = [r.unpack('<Q') for _ in range(nd)]
        t = r.unpack('<I')
        off = r.unpack('<Q')
        infos.append((name, ne, t, off))
    data_start = (r.pos + align - 1) // align * align
    tensors = []
    for name, ne, t, off in infos:
        tname, be, bb = GGML_BY_ID[t]
        n = int(np.prod(ne))
        assert ne[0] % be == 0
        nbytes = n // be * bb
        begin = data_start + off
        assert off % align == 0, (name, off)
        assert begin + nbytes <= len(buf), (name, begin, nbytes, len(buf))
        tensors.append(dict(name=name, type=tname, ne=ne, offset=off,
                            data=buf[begin:begin + nbytes]))
    return dict(version=version, alignment=align, kv=kv, tensors=tensors, size=len(buf))


def _s(x):
    b = x.encode('utf-8')
    return struct.pack('<Q', len(b)) + b


def _val(tname, v):
    t = TYPE_IDS[tname]
    if t in SCALAR:
        return struct.pack(SCALAR[t], v)
    if t == STRING:
        return _s(v)
    et, items = v
    return struct.pack('<IQ', TYPE_IDS[et], len(items)) + b''.join(_val(et, x) for x in items)


def write_gguf(path, kv, tensors, version=3, align=32):
    """kv: list of (key, type_name, value) (arrays: ('arr', (elem_name, [..]))); tensors: list of
    (name, type_name, ne, bytes). Offsets padded to align; general.alignment added if != 32."""
    kv = list(kv)
    if align != 32:
        kv.append(('general.alignment', 'u32', align))
    out = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kv))
    for key, t, v in kv:
        out += _s(key) + struct.pack('<I', TYPE_IDS[t]) + _val(t, v)
    off, blobs = 0, []
    for name, t, ne, data in tensors:
        out += _s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', d) for d in ne)
        out += struct.pack('<IQ', GGML_TYPES[t][0], off)
        blobs.append((off, data))
        off += (len(data) + align - 1) // align * align
    out += b'\0' * (-len(out) % align)
    base = len(out)
    for o, data in blobs:
        out += b'\0' * (base + o - len(out)) + data
    with open(path, 'wb') as f:
        f.write(out)
