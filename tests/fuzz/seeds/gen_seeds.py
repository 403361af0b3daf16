#!/usr/bin/python3
"""Regenerates the tiny fuzz seeds in gguf/ and safetensors/ (each < 4 KB), written from the
GGUF and safetensors specs with struct only. Run from the repo root: /usr/bin/python3
tests/fuzz/seeds/gen_seeds.py"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, t, payload):
    return s(key) + struct.pack('<I', t) + payload


def gguf(kvs, tensors, align=32, version=3):
    """tensors: list of (name, ne, type, data bytes)."""
    out = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs)) + b''.join(kvs)
    off, infos, blobs = 0, b'', []
    for name, ne, typ, data in tensors:
        infos += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', d) for d in ne)
        infos += struct.pack('<IQ', typ, off)
        blobs.append((off, data))
        off += (len(data) + align - 1) // align * align
    out += infos
    out += b'\0' * (-len(out) % align)
    base = len(out)
    for o, data in blobs:
        out += b'\0' * (base + o - len(out)) + data
    return out


def write(sub, name, data):
    assert len(data) < 4096, name
    with open(os.path.join(HERE, sub, name), 'wb') as f:
        f.write(data)


scalars = [
    kv('general.architecture', 8, s('llama')),
    kv('llama.block_count', 4, struct.pack('<I', 2)),
    kv('t.i8', 1, struct.pack('<b', -3)),
    kv('t.u16', 2, struct.pack('<H', 600)),
    kv('t.i64', 11, struct.pack('<q', -5)),
    kv('t.f64', 12, struct.pack('<d', 0.25)),
    kv('t.bool', 7, b'\x01'),
    kv('t.f32', 6, struct.pack('<f', 1e-5)),
]
toks = ['<unk>', '<s>', '</s>', 'a', '▁b', '中']
arrays = [
    kv('tokenizer.ggml.tokens', 9, struct.pack('<IQ', 8, len(toks)) + b''.join(s(t) for t in toks)),
    kv('tokenizer.ggml.scores', 9, struct.pack('<IQ', 6, 3) + struct.pack('<3f', 0, -1, -2)),
    kv('tokenizer.ggml.token_type', 9, struct.pack('<IQ', 5, 2) + struct.pack('<2i', 1, 3)),
]
f32 = struct.pack('<8f', *range(8))
q8 = struct.pack('<e', 0.5) + bytes(range(32))  # one q8_0 block: f16 scale + 32 int8
write('gguf', 'kv_only.gguf', gguf(scalars + arrays, []))
write('gguf', 'tensors.gguf', gguf(scalars[:2], [('tok_embd.weight', [4, 2], 0, f32),
                                                 ('blk.0.q', [32], 8, q8),
                                                 ('out.f16', [4], 1, struct.pack('<4e', 1, 2, 3, 4))]))
write('gguf', 'align64_v2.gguf', gguf([kv('general.alignment', 4, struct.pack('<I', 64))],
                                      [('a', [2, 2], 0, f32[:16]), ('b', [8], 0, f32)],
                                      align=64, version=2))
write('gguf', 'empty.gguf', gguf([], []))


def st(entries, meta=None):
    """entries: list of (name, dtype, shape, data bytes)."""
    hdr, data = {}, b''
    if meta is not None:
        hdr['__metadata__'] = meta
    for name, dt, shape, d in entries:
        hdr[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(data), len(data) + len(d)]}
        data += d
    h = json.dumps(hdr).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


write('safetensors', 'basic.safetensors', st([('w', 'F32', [2, 2], struct.pack('<4f', 1, 2, 3, 4)),
                                              ('b', 'F16', [3], struct.pack('<3e', 1, 2, 3)),
                                              ('c', 'BF16', [1, 2], b'\x80\x3f\x00\x40')],
                                             meta={'format': 'pt'}))
write('safetensors', 'empty.safetensors', st([]))
write('safetensors', 'zero_dim.safetensors', st([('z', 'F32', [0, 4], b''),
                                                 ('s', 'F32', [], struct.pack('<f', 7))]))
