#!/usr/bin/python3
"""Reference checks of baimo's format layer against independent python code written from the
specs: (1) GGUF files written by baimo's writer are read by gguf_np_reader (python); (2) GGUF
files written by the python writer are read by baimo; (3) safetensors files/directories written
here are read by baimo; (4) baimo's .npy output loads with numpy.load. baimo is driven through
$BAIMO_BUILD/ref/format_tool."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.dont_write_bytecode = True  # keep tests/ref free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_np_reader as G  # noqa: E402

BUILD = os.environ.get('BAIMO_BUILD', 'build')
TOOL = os.path.join(BUILD, 'ref', 'format_tool')
TMP = tempfile.mkdtemp(prefix='baimo-fmt-', dir=os.environ.get('BAIMO_TMP'))
rng = np.random.default_rng(1234)
failures = []
n_checks = [0]


def check(cond, what):
    n_checks[0] += 1
    if not cond:
        failures.append(what)
        print('FAIL', what)


def tool(*args, ok=True):
    p = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise RuntimeError(f'format_tool {args}: {p.stderr}')
    return p


def raw(name, arr):
    path = os.path.join(TMP, name)
    with open(path, 'wb') as f:
        f.write(arr if isinstance(arr, bytes) else arr.tobytes())
    return path


def test_baimo_writer_python_reader(align):
    f32 = rng.standard_normal((3, 5)).astype('<f4')  # ne = [5, 3]
    f16 = rng.standard_normal(7).astype('<f2')
    q8 = rng.integers(0, 256, 2 * 2 * 34, dtype=np.uint8).tobytes()  # ne = [64, 2]
    bf16 = rng.integers(0, 65536, 6, dtype=np.uint16).astype('<u2')
    scores = rng.standard_normal(9).astype('<f4')
    toks = ['<unk>', '', 'héllo', '▁world', '中文', '\n', 'a b']
    kv = [
        dict(key='general.architecture', type='str', value='llama'),
        dict(key='llama.block_count', type='u32', value=4000000000),
        dict(key='test.neg', type='i32', value=-123456),
        dict(key='test.big', type='u64', value=(1 << 62) + 5),
        dict(key='test.f32', type='f32', value=0.1),
        dict(key='test.flag', type='bool', value=False),
        dict(key='test.unicode', type='str', value='ünï 中文 🙂'),
        dict(key='tokenizer.ggml.scores', type='arr', elem='f32', value=scores.tolist()),
        dict(key='test.ids', type='arr', elem='i32', value=[1, -2, 2147483647, -2147483648]),
        dict(key='test.bytes', type='arr', elem='u8', value=[0, 255, 7]),
        dict(key='test.u64s', type='arr', elem='u64', value=[0, 1 << 40]),
        dict(key='tokenizer.ggml.tokens', type='arr', elem='str', value=toks),
    ]
    if align != 32:
        kv.append(dict(key='general.alignment', type='u32', value=align))
    tensors = [
        dict(name='tok_embd.weight', type='f32', ne=[5, 3], file=raw('a', f32)),
        dict(name='output_norm.weight', type='f16', ne=[7], file=raw('b', f16)),
        dict(name='blk.0.attn_q.weight', type='q8_0', ne=[64, 2], file=raw('c', q8)),
        dict(name='blk.0.bf', type='bf16', ne=[3, 1, 2], file=raw('d', bf16)),
    ]
    spec = os.path.join(TMP, 'spec.json')
    with open(spec, 'w') as f:
        json.dump(dict(kv=kv, tensors=tensors), f)
    out = os.path.join(TMP, f'w{align}.gguf')
    tool('gguf-write', out, spec)
    check(not os.path.exists(out + '.tmp'), 'writer leaves no .tmp behind')
    g = G.read_gguf(out)
    tag = f'[align {align}]'
    check(g['version'] == 3, f'{tag} version')
    check(g['alignment'] == align, f'{tag} alignment')
    check(list(g['kv']) == [k['key'] for k in kv], f'{tag} kv order {list(g["kv"])}')
    for k in kv:
        t, v = g['kv'][k['key']]
        check(t == k['type'], f'{tag} type of {k["key"]}: {t}')
        if k['type'] == 'arr':
            et, items = v
            check(et == k['elem'], f'{tag} elem type of {k["key"]}')
            if et == 'f32':
                check(np.array_equal(np.array(items, dtype=np.float32),
                                     np.array(k['value'], dtype=np.float32)), f'{tag} {k["key"]}')
            else:
                check(items == k['value'], f'{tag} {k["key"]}: {items}')
        elif k['type'] == 'f32':
            check(np.float32(v) == np.float32(k['value']), f'{tag} f32 value {v}')
        else:
            check(v == k['value'], f'{tag} value of {k["key"]}: {v!r}')
    check(len(g['tensors']) == len(tensors), f'{tag} tensor count')
    for want, got in zip(tensors, g['tensors']):
        check(got['name'] == want['name'] and got['type'] == want['type'] and
              got['ne'] == want['ne'], f'{tag} tensor info {got["name"]}')
        with open(want['file'], 'rb') as f:
            check(got['data'] == f.read(), f'{tag} tensor bytes {want["name"]}')
        check(got['offset'] % align == 0, f'{tag} offset aligned')
    # floats decode to the values written
    e = g['tensors'][0]
    check(np.array_equal(np.frombuffer(e['data'], '<f4').reshape(3, 5), f32), f'{tag} f32 data')


def test_python_writer_baimo_reader(version, align):
    q4k = rng.integers(0, 256, 2 * 144, dtype=np.uint8).tobytes()  # ne = [256, 2]
    f32 = rng.standard_normal((2, 3, 4)).astype('<f4')
    kv = [('general.architecture', 'str', 'qwen2'),
          ('t.u8', 'u8', 250), ('t.i8', 'i8', -100), ('t.u16', 'u16', 65535),
          ('t.i16', 'i16', -32768), ('t.u32', 'u32', 4294967295), ('t.i32', 'i32', -1),
          ('t.u64', 'u64', (1 << 64) - 1), ('t.i64', 'i64', -(1 << 63)), ('t.f64', 'f64', 1e-300),
          ('t.f32', 'f32', 3.5), ('t.bool', 'bool', True),
          ('t.strs', 'arr', ('str', ['x', 'ÿ', ''])),
          ('t.f64s', 'arr', ('f64', [0.5, -2.25])),
          ('t.bools', 'arr', ('bool', [True, False]))]
    tensors = [('blk.0.ffn_down.weight', 'q4_K', [256, 2], q4k),
               ('t3', 'f32', [4, 3, 2], f32.tobytes())]
    path = os.path.join(TMP, f'py_v{version}_{align}.gguf')
    G.write_gguf(path, kv, tensors, version=version, align=align)
    d = json.loads(tool('gguf-dump', path).stdout)
    tag = f'[py v{version} align {align}]'
    check(d['version'] == version and d['alignment'] == align, f'{tag} header {d["version"]}')
    for key, t, v in kv:
        got = d['kv'].get(key)
        check(got is not None and got['type'] == t, f'{tag} {key} type {got}')
        if got is None:
            continue
        gv = got['value']
        if t == 'arr':
            check(got['elem'] == v[0] and gv == v[1], f'{tag} {key} array {gv}')
        elif t == 'u64':
            check(gv == str(v), f'{tag} {key} {gv}')
        elif t == 'f32':
            check(np.float32(gv) == np.float32(v), f'{tag} {key} {gv}')
        else:
            check(gv == v, f'{tag} {key} {gv!r} != {v!r}')
    for (name, t, ne, data), got in zip(tensors, d['tensors']):
        check(got['name'] == name and got['type'] == t and got['ne'] == ne,
              f'{tag} tensor {got}')
        check(bytes.fromhex(got['hex']) == data, f'{tag} tensor bytes {name}')
    # a file cut inside the last tensor is rejected with a message naming it
    with open(path, 'rb') as f:
        buf = f.read()
    cut = os.path.join(TMP, 'cut.gguf')
    with open(cut, 'wb') as f:
        f.write(buf[:-5])
    p = tool('gguf-dump', cut, ok=False)
    check(p.returncode == 1 and "'t3'" in p.stderr and 'past the end' in p.stderr,
          f'{tag} truncated file message: {p.stderr}')


def write_st(path, tensors, metadata=None):
    """tensors: list of (name, dtype, numpy array or (shape, raw bytes))."""
    hdr, data = {}, b''
    if metadata:
        hdr['__metadata__'] = metadata
    for name, dt, a in tensors:
        shape, b = (list(a.shape), a.tobytes()) if isinstance(a, np.ndarray) else a
        hdr[name] = dict(dtype=dt, shape=shape, data_offsets=[len(data), len(data) + len(b)])
        data += b
    h = json.dumps(hdr).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + data)


def bf16(a):
    """float32 -> bfloat16 bits by round-to-nearest-even (numpy has no bfloat16)."""
    u = a.astype('<f4').view('<u4').astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype('<u2')


def test_safetensors():
    w = rng.standard_normal((4, 6)).astype('<f4')
    b = rng.standard_normal(6).astype('<f2')
    e = bf16(rng.standard_normal((2, 3, 5)).astype('<f4'))
    ts = [('model.embed_tokens.weight', 'F32', w), ('model.norm.bias', 'F16', b),
          ('lm_head.weight', 'BF16', (list(e.shape), e.tobytes()))]
    path = os.path.join(TMP, 'm.safetensors')
    write_st(path, ts, metadata={'format': 'pt'})
    got = {t['name']: t for t in json.loads(tool('st-dump', path).stdout)}
    check(set(got) == {t[0] for t in ts}, f'st names {set(got)}')
    want_type = {'F32': 'f32', 'F16': 'f16', 'BF16': 'bf16'}
    for name, dt, a in ts:
        shape, raw_b = (list(a.shape), a.tobytes()) if isinstance(a, np.ndarray) else a
        g = got[name]
        check(g['type'] == want_type[dt], f'st {name} type {g["type"]}')
        check(g['ne'] == shape[::-1], f'st {name} ne {g["ne"]} (reversed shape {shape})')
        check(bytes.fromhex(g['hex']) == raw_b, f'st {name} bytes')

    # sharded directory with an index
    d = os.path.join(TMP, 'sharded')
    os.mkdir(d)
    write_st(os.path.join(d, 'model-00001-of-00002.safetensors'), ts[:2])
    write_st(os.path.join(d, 'model-00002-of-00002.safetensors'), ts[2:])
    wm = {ts[0][0]: 'model-00001-of-00002.safetensors', ts[1][0]: 'model-00001-of-00002.safetensors',
          ts[2][0]: 'model-00002-of-00002.safetensors'}
    with open(os.path.join(d, 'model.safetensors.index.json'), 'w') as f:
        json.dump(dict(metadata={}, weight_map=wm), f)
    got2 = {t['name']: t for t in json.loads(tool('st-dump', d).stdout)}
    check(got2 == got, 'sharded dir gives the same tensors as one file')

    # unsupported dtype and a size mismatch are rejected with the tensor named
    bad = os.path.join(TMP, 'bad.safetensors')
    write_st(bad, [('ids', 'I64', np.arange(3, dtype='<i8'))])
    p = tool('st-dump', bad, ok=False)
    check(p.returncode == 1 and "'ids'" in p.stderr and 'I64' in p.stderr,
          f'unsupported dtype message: {p.stderr}')
    write_st(bad, [('w', 'F32', ([2, 2], b'\0' * 12))])
    p = tool('st-dump', bad, ok=False)
    check(p.returncode == 1 and "'w' has 12 data bytes" in p.stderr, f'size message: {p.stderr}')


def test_npy():
    for shape in [(3, 4), (5,), (2, 3, 4), (1, 1)]:
        path = os.path.join(TMP, 'x.npy')
        tool('npy', path, *map(str, shape))
        a = np.load(path)
        want = (np.arange(int(np.prod(shape)), dtype=np.float32) * 0.25 - 1).reshape(shape)
        check(a.dtype == np.dtype('<f4') and a.shape == shape and np.array_equal(a, want),
              f'npy {shape}: {a.dtype} {a.shape}')
        with open(path, 'rb') as f:
            head = f.read(10)
        hl = struct.unpack('<H', head[8:10])[0]
        check(head[6:8] == b'\x01\x00' and (10 + hl) % 64 == 0, f'npy header v1.0, 64-aligned')


def main():
    if not os.access(TOOL, os.X_OK):
        print(f'{TOOL} missing: run make tests-bin')
        return 1
    test_baimo_writer_python_reader(32)
    test_baimo_writer_python_reader(64)
    test_python_writer_baimo_reader(3, 32)
    test_python_writer_baimo_reader(2, 128)
    test_safetensors()
    test_npy()
    if failures:
        print(f'{len(failures)} checks failed')
        return 1
    print(f'all {n_checks[0]} format reference checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
