"""Reference test of baimo's dtype conversions against tests/ref/ggml_np.py (numpy, written from
the GGML/GGUF spec), through the harness $BAIMO_BUILD/ref/quant_tool:
  1. dequantization of random raw blocks of every quantized type: bit-identical float32;
  2. reference quantization of the closed-form types (q4_0..q8_1, q8_K): byte-identical;
     the K search quantizers: the numpy dequantization of baimo's bytes is within a per-type
     error bound of the input;
  3. f16 / bf16: every 16-bit pattern to f32, and f32 edge values (subnormals, ties, overflow,
     inf, nan) plus random bit patterns to f16 (numpy's float16) and bf16 (ggml_np rounding).
Run with /usr/bin/python3; env BAIMO_BUILD (default build), BAIMO_TMP (default a temp dir).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ggml_np as G  # noqa: E402

BUILD = os.environ.get('BAIMO_BUILD', 'build')
TOOL = os.path.join(BUILD, 'ref', 'quant_tool')
TMP = os.environ.get('BAIMO_TMP') or tempfile.mkdtemp()
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print('FAIL', msg)


def tool(mode, t, data):
    name = G.TYPE_INFO[t][0]
    src = os.path.join(TMP, f'qt_{name}_{mode}.in')
    dst = os.path.join(TMP, f'qt_{name}_{mode}.out')
    with open(src, 'wb') as f:
        f.write(data)
    subprocess.run([TOOL, mode, name, src, dst], check=True)
    with open(dst, 'rb') as f:
        return f.read()


def deq_c(t, raw):
    return np.frombuffer(tool('deq', t, raw), np.float32)


def quant_c(t, x):
    return tool('quant', t, np.ascontiguousarray(x, np.float32).tobytes())


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def random_halves(rng, n):
    """Finite f16 scales: mostly small normals, with zeros, -0, subnormals and large values."""
    v = (rng.standard_normal(n) * 0.05).astype(np.float16)
    special = np.array([0.0, -0.0, 6e-8, -3e-6, 1e-5, 60000.0, -1.5, 2.0], np.float16)
    k = min(n // 4, 64)
    v[rng.integers(0, n, k)] = special[rng.integers(0, special.size, k)]
    return v


def test_dequant_random_blocks():
    rng = np.random.default_rng(1234)
    nb = 512
    for t in G.QUANTIZED:
        name, be, bb = G.TYPE_INFO[t]
        dt = G.BLOCK_DTYPE[t]
        check(dt.itemsize == bb, f'{name}: block bytes {dt.itemsize} != {bb}')
        blocks = np.frombuffer(rng.bytes(nb * bb), dt).copy()
        for field in ('d', 'm', 'dmin', 's'):
            if field in dt.names:
                if dt[field] == np.dtype('<f4'):
                    blocks[field] = rng.standard_normal(nb).astype(np.float32) * 0.01
                else:
                    blocks[field] = random_halves(rng, nb)
        raw = blocks.tobytes()
        got = deq_c(t, raw)
        want = G.dequantize(t, raw, nb * be)
        ok = same_bits(got, want)
        if not ok and got.shape == want.shape:
            bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
            i = bad[0]
            print(f'  {name}: {bad.size} mismatches, first at {i}: {got[i]!r} vs {want[i]!r}')
        check(ok, f'{name}: dequantization of {nb} random blocks is not bit-identical')
        print(f'dequant {name}: {nb} blocks bit-identical' if ok else '')


def sample_rows(rng, n):
    """Random normal data plus blocks that are all zero, constant, and with a 1e4 outlier."""
    x = rng.standard_normal(n).astype(np.float32)
    x[:256] = 0.0
    x[256:512] = 3.25
    x[512:768] = -0.5
    x[800] = 1e4
    x[1100] = -1e4
    return x


# Relative RMS error bounds for the K search quantizers on N(0,1) data, measured by numpy on
# baimo's bytes (q2_K 0.263, q3_K 0.143, q4_K 0.070, q5_K 0.035, q6_K 0.017) times ~1.3.
K_BOUNDS = {G.Q2_K: 0.34, G.Q3_K: 0.19, G.Q4_K: 0.092, G.Q5_K: 0.046, G.Q6_K: 0.022}


def test_quantize():
    rng = np.random.default_rng(99)
    n = 256 * 64
    x = sample_rows(rng, n)
    for t in G.QUANTIZED:
        name = G.TYPE_INFO[t][0]
        got = quant_c(t, x)
        y = G.dequantize(t, got, n)
        check(np.all(np.isfinite(y)), f'{name}: non-finite dequantized values')
        if t in K_BOUNDS:
            normal = slice(1280, n)  # the N(0,1) part (after the special blocks)
            rel = np.sqrt(np.mean((y[normal] - x[normal]) ** 2) / np.mean(x[normal] ** 2))
            check(rel < K_BOUNDS[t], f'{name}: relative RMS error {rel:.4f} >= {K_BOUNDS[t]}')
            check(np.all(y[:256] == 0), f'{name}: zero block does not round-trip')
            print(f'quant {name}: relative RMS error {rel:.4f} (bound {K_BOUNDS[t]})')
        else:
            want = G.quantize(t, x)
            ok = got == want
            if not ok:
                a, b = np.frombuffer(got, np.uint8), np.frombuffer(want, np.uint8)
                if a.size == b.size:
                    i = np.flatnonzero(a != b)[0]
                    print(f'  {name}: first differing byte {i}: {a[i]} vs {b[i]}')
            check(ok, f'{name}: reference quantization bytes differ from numpy')
            print(f'quant {name}: byte-identical to numpy' if ok else '')


def f32_edge_values():
    tiny = np.float32(2.0 ** -24)  # smallest f16 subnormal
    v = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.996, 65520.0, -65520.0, 1e5, 3e38,
         np.inf, -np.inf, np.nan, -np.nan,
         1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2048 + 1, 2048 + 3,
         2.0 ** -14, 2.0 ** -14 * (1 - 2 ** -11), 2.0 ** -15, tiny, tiny / 2, tiny * 1.5,
         tiny * 2.5, tiny / 2 * 1.0000001, tiny / 4, 1e-45, -1e-45, 1.1754942e-38, 6.1e-5,
         -6.1e-5, 5.96e-8, 2.98e-8]
    return np.array(v, np.float32)


def test_f16():
    allh = np.arange(65536, dtype=np.uint32).astype('<u2')
    got = deq_c(G.F16, allh.tobytes())
    want = allh.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    check(np.array_equal(np.isnan(got), nan), 'f16->f32: NaN set differs')
    check(same_bits(got[~nan], want[~nan]), 'f16->f32: values differ from numpy')
    rng = np.random.default_rng(7)
    rnd = rng.integers(0, 2 ** 32, 200000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    near = (rng.standard_normal(100000) * rng.choice([1e-7, 1e-5, 1.0, 1e4], 100000))
    x = np.concatenate([f32_edge_values(), rnd, near.astype(np.float32)])
    got = np.frombuffer(quant_c(G.F16, x), '<u2')
    with np.errstate(over='ignore', invalid='ignore'):
        want = x.astype(np.float16).view('<u2')
    nan = np.isnan(x)
    check(np.all(np.isnan(got[nan].view(np.float16))), 'f32->f16: NaN not kept')
    ok = np.array_equal(got[~nan], want[~nan])
    if not ok:
        i = np.flatnonzero(got[~nan] != want[~nan])[0]
        print(f'  f32->f16 {x[~nan][i]!r}: {got[~nan][i]:#06x} vs {want[~nan][i]:#06x}')
    check(ok, 'f32->f16: rounding differs from numpy float16')
    print(f'f16: 65536 halves and {x.size} floats match numpy' if ok else '')


def test_bf16():
    allb = np.arange(65536, dtype=np.uint32).astype('<u2')
    got = deq_c(G.BF16, allb.tobytes())
    want = G.dequantize(G.BF16, allb.tobytes(), 65536)
    nan = np.isnan(want)
    check(np.array_equal(np.isnan(got), nan), 'bf16->f32: NaN set differs')
    check(same_bits(got[~nan], want[~nan]), 'bf16->f32: values differ')
    rng = np.random.default_rng(8)
    rnd = rng.integers(0, 2 ** 32, 200000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2 ** 16, 1000, dtype=np.uint64).astype(np.uint32) << 16) | 0x8000
    edges = np.array([0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0xFF7F8000, 0x00008000, 0x00018000,
                      0x3F808000, 0x3F818000, 0x807FFFFF, 0x00000001], np.uint32)
    x = np.concatenate([f32_edge_values(), rnd.view(np.float32), ties.view(np.float32),
                        edges.view(np.float32)])
    got = np.frombuffer(quant_c(G.BF16, x), '<u2')
    want = G.f32_to_bf16_bits(x)
    nan = np.isnan(x)
    check(np.all(np.isnan((got[nan].astype(np.uint32) << 16).view(np.float32))),
          'f32->bf16: NaN not kept')
    ok = np.array_equal(got[~nan], want[~nan])
    if not ok:
        i = np.flatnonzero(got[~nan] != want[~nan])[0]
        print(f'  f32->bf16 {x[~nan][i]!r}: {got[~nan][i]:#06x} vs {want[~nan][i]:#06x}')
    check(ok, 'f32->bf16: rounding differs from the numpy reference')
    print(f'bf16: 65536 values and {x.size} floats match' if ok else '')


def test_harness_rejects_partial_blocks():
    src = os.path.join(TMP, 'qt_partial.in')
    with open(src, 'wb') as f:
        f.write(b'\0' * 17)
    r = subprocess.run([TOOL, 'deq', 'q4_0', src, src + '.out'], capture_output=True)
    check(r.returncode == 2 and b'18' in r.stderr, 'harness accepted 17 bytes of q4_0')


if __name__ == '__main__':
    for fn in [test_dequant_random_blocks, test_quantize, test_f16, test_bf16,
               test_harness_rejects_partial_blocks]:
        fn()
    print(f'{len(failures)} failure(s)')
    sys.exit(1 if failures else 0)
