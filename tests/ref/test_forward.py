"""Forward pass of baimo vs the independent PyTorch reference (torch_llm.py).

Part 1 (reference alone): for each architecture a random GGUF written here in Python is run
through the reference's GGUF path (interleaved RoPE on permuted Q/K for llama-style arches) and
through its HF path after st_py.py converted it to an HF directory (rotate-half RoPE, fused
W_pack / wqkv, NormHead): the two must agree to float64 round-off, and must NOT agree when the
Q/K un-permutation is skipped (so the check can fail).
Part 2 (baimo): `baimo make-model` tiny models per arch and weight type, `baimo logits` vs the
reference on the dequantized weights; the HF directory written by st_py.py vs the GGUF in baimo;
YaRN rope scaling past the original context. Prints a table of the measured numbers.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gguf_py  # noqa: E402
import st_py  # noqa: E402
import torch_llm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BAIMO = os.environ.get('BAIMO', os.path.join(ROOT, 'build', 'baimo'))
TMP = os.environ.get('BAIMO_TMP') or tempfile.mkdtemp(prefix='baimo-fwd-')
ARCHES = torch_llm.ARCHES
failures, rows = [], []


def check(ok, what):
    if not ok:
        failures.append(what)
        print('FAIL:', what, flush=True)


def stats(a, b):
    """max|a-b|/std(b), min cosine per position, top-1 agreement of a vs reference b."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rel = float(np.abs(a - b).max() / b.std())
    cos = float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())
    top = float((a.argmax(1) == b.argmax(1)).mean())
    return rel, cos, top


def row(case, a, b):
    rel, cos, top = stats(a, b)
    rows.append((case, rel, cos, top))
    return rel, cos, top


# ------------------------------------------------------------------- Part 1: reference alone

def py_gguf(arch, path, seed, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=128,
            vocab=96, scaling=None):
    """A random model in GGUF (llama.cpp) conventions, written from Python."""
    rng = np.random.default_rng(seed)
    hd = n_embd // n_head
    kv = {'general.architecture': (gguf_py.STR, arch),
          f'{arch}.block_count': (gguf_py.U32, n_layer),
          f'{arch}.embedding_length': (gguf_py.U32, n_embd),
          f'{arch}.feed_forward_length': (gguf_py.U32, n_ff),
          f'{arch}.attention.head_count': (gguf_py.U32, n_head),
          f'{arch}.attention.head_count_kv': (gguf_py.U32, n_head_kv),
          f'{arch}.context_length': (gguf_py.U32, 512),
          f'{arch}.rope.freq_base': (gguf_py.F32, 10000.0),
          f'{arch}.rope.dimension_count': (gguf_py.U32, hd),
          f'{arch}.attention.layer_norm_rms_epsilon': (gguf_py.F32, 1e-6)}
    if scaling:
        kv[f'{arch}.rope.scaling.type'] = (gguf_py.STR, scaling[0])
        kv[f'{arch}.rope.scaling.factor'] = (gguf_py.F32, scaling[1])
        kv[f'{arch}.rope.scaling.original_context_length'] = (gguf_py.U32, scaling[2])

    def mat(o, i):
        return rng.normal(0, 0.15, (o, i)).astype(np.float32)

    def vec(n, base=1.0, s=0.1):
        return (base + rng.normal(0, s, n)).astype(np.float32)
    T = [gguf_py.f32_tensor('token_embd.weight', rng.normal(0, 1, (vocab, n_embd)))]
    for i in range(n_layer):
        b = f'blk.{i}.'
        T += [gguf_py.f32_tensor(b + 'attn_norm.weight', vec(n_embd)),
              gguf_py.f32_tensor(b + 'attn_q.weight', mat(n_head * hd, n_embd)),
              gguf_py.f32_tensor(b + 'attn_k.weight', mat(n_head_kv * hd, n_embd)),
              gguf_py.f32_tensor(b + 'attn_v.weight', mat(n_head_kv * hd, n_embd)),
              gguf_py.f32_tensor(b + 'attn_output.weight', mat(n_embd, n_head * hd)),
              gguf_py.f32_tensor(b + 'ffn_norm.weight', vec(n_embd)),
              gguf_py.f32_tensor(b + 'ffn_gate.weight', mat(n_ff, n_embd)),
              gguf_py.f32_tensor(b + 'ffn_up.weight', mat(n_ff, n_embd)),
              gguf_py.f32_tensor(b + 'ffn_down.weight', mat(n_embd, n_ff))]
        if arch == 'qwen2':
            T += [gguf_py.f32_tensor(b + 'attn_q.bias', vec(n_head * hd, 0, 0.3)),
                  gguf_py.f32_tensor(b + 'attn_k.bias', vec(n_head_kv * hd, 0, 0.3)),
                  gguf_py.f32_tensor(b + 'attn_v.bias', vec(n_head_kv * hd, 0, 0.3))]
        if arch == 'qwen3':
            T += [gguf_py.f32_tensor(b + 'attn_q_norm.weight', vec(hd)),
                  gguf_py.f32_tensor(b + 'attn_k_norm.weight', vec(hd))]
    T.append(gguf_py.f32_tensor('output_norm.weight', vec(n_embd)))
    if arch != 'qwen2':  # qwen2 case: tied head
        out = mat(vocab, n_embd)
        if arch == 'baichuan':  # the converter stores NormHead rows already normalised
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        T.append(gguf_py.f32_tensor('output.weight', out))
    gguf_py.write(path, kv, T)


LLAMA3 = {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
          'high_freq_factor': 4.0, 'original_max_position_embeddings': 64}


def llama3_freqs(cfg):
    """Per-pair frequency divisors for the Llama 3 rope scaling (Llama 3.1 model card params):
    wavelength < orig/high_freq_factor: 1; > orig/low_freq_factor: factor; else a smooth mix."""
    inv = cfg.rope_base ** (-np.arange(0, cfg.n_rot, 2, dtype=np.float64) / cfg.n_rot)
    s, L = LLAMA3['factor'], LLAMA3['original_max_position_embeddings']
    lf, hf = LLAMA3['low_freq_factor'], LLAMA3['high_freq_factor']
    out = []
    for f in inv:
        wl = 2 * np.pi / f
        if wl < L / hf:
            out.append(1.0)
        elif wl > L / lf:
            out.append(s)
        else:
            sm = (L / wl - lf) / (hf - lf)
            out.append(1.0 / ((1 - sm) / s + sm))
    return np.array(out, np.float32)


def part1():
    rng = np.random.default_rng(7)
    for k, arch in enumerate(ARCHES):
        path = os.path.join(TMP, f'py_{arch}.gguf')
        py_gguf(arch, path, seed=100 + k)
        ids = rng.integers(0, 96, 40)
        ref_g = torch_llm.load_gguf(path).logits(ids)
        hf = os.path.join(TMP, f'py_{arch}_hf')
        st_py.gguf_to_hf(path, hf, 'F32', shards=2 if k % 2 else 1)
        ref_h = torch_llm.load_hf(hf).logits(ids)
        rel, cos, top = row(f'ref {arch}: HF path vs GGUF path', ref_h, ref_g)
        # baichuan: the HF path re-normalises head rows that are unit-norm only to f32 precision
        tol = 1e-6 if arch == 'baichuan' else 1e-9
        check(rel < tol, f'ref {arch} HF vs GGUF rel {rel:.3g}')
        if arch in torch_llm.NORMAL_ROPE_ARCHES:  # without the un-permutation they must differ
            m = torch_llm.load_hf(hf)
            c = m.cfg
            for i in range(c.n_layer):
                for key, nh in (('wq', c.n_head), ('wk', c.n_head_kv)):
                    w = m.W[f'{i}.{key}'].numpy()
                    m.W[f'{i}.{key}'] = torch_llm._t(st_py.permute(w, nh))
            bad = stats(m.logits(ids), ref_g)[0]
            check(bad > 1e-2, f'ref {arch}: skipping the Q/K un-permutation went unnoticed')
    # YaRN: GGUF path (interleaved or NeoX) == HF path, positions past the original context
    for arch in ('llama', 'qwen2'):
        path = os.path.join(TMP, f'py_{arch}_yarn.gguf')
        py_gguf(arch, path, seed=5, scaling=('yarn', 4.0, 32))
        ids = rng.integers(0, 96, 96)
        mg = torch_llm.load_gguf(path)
        check(mg.cfg.scaling and mg.cfg.scaling['type'] == 'yarn', 'yarn metadata not read')
        hf = os.path.join(TMP, f'py_{arch}_yarn_hf')
        st_py.gguf_to_hf(path, hf)
        rel = row(f'ref {arch} yarn: HF vs GGUF', torch_llm.load_hf(hf).logits(ids),
                  mg.logits(ids))[0]
        check(rel < 1e-9, f'ref {arch} yarn HF vs GGUF rel {rel:.3g}')
    # Llama 3 rope: GGUF rope_freqs tensor (the converter's per-pair divisors) == HF llama3 config
    path = os.path.join(TMP, 'py_llama.gguf')
    dst = os.path.join(TMP, 'py_llama_rf.gguf')
    rf = llama3_freqs(torch_llm.load_gguf(path).cfg)
    gguf_py.copy_with_kv(path, dst, extra_tensors=[gguf_py.f32_tensor('rope_freqs.weight', rf)])
    hf = os.path.join(TMP, 'py_llama_rf_hf')
    st_py.gguf_to_hf(dst, hf, rope_scaling=LLAMA3)
    ids = rng.integers(0, 96, 64)
    mg = torch_llm.load_gguf(dst)
    rel = row('ref llama rope_freqs: HF llama3 vs GGUF', torch_llm.load_hf(hf).logits(ids),
              mg.logits(ids))[0]
    check(rel < 1e-6, f'ref llama3 rope HF vs GGUF rel {rel:.3g}')
    check(stats(torch_llm.load_gguf(path).logits(ids), mg.logits(ids))[0] > 1e-3,
          'rope_freqs had no effect')
    # built-in dequantizers vs the separately written ggml_np (two independent readings of the spec)
    if gguf_py._ggml_np is not None:
        r = np.random.default_rng(9)
        for t in (2, 3, 8, 12):  # Q4_0, Q4_1, Q8_0, Q4_K
            _, blk, bsz = gguf_py.GGML[t]
            raw = bytearray(r.integers(0, 256, 16 * bsz, dtype=np.uint8).tobytes())
            for b in range(16):  # finite f16 scales (d, and m/dmin where present)
                for o in ((0, 2) if t in (3, 12) else (0,)):
                    raw[b * bsz + o:b * bsz + o + 2] = np.float16(r.normal(0, .01)).tobytes()
            a = gguf_py._builtin_dequantize(t, bytes(raw), 16 * blk)
            b = np.asarray(gguf_py._ggml_np.dequantize(t, bytes(raw), 16 * blk)).reshape(-1)
            check(np.array_equal(a, b), f'dequantize {gguf_py.GGML[t][0]}: built-in != ggml_np')
    # BF16 safetensors writer: round-to-nearest-even, checked on known values
    x = np.array([1.0, 1.00390625, 1.005859375, -2.5, 3.0e38], np.float32)
    got = (st_py.bf16_bits(x).astype(np.uint32) << 16).view(np.float32)
    check(list(got[:4]) == [1.0, 1.0, 1.0078125, -2.5], f'bf16 rounding {got}')


# ------------------------------------------------------------------- Part 2: baimo

def sh(*args, env=None):
    r = subprocess.run([BAIMO, *map(str, args)], capture_output=True, text=True, timeout=120,
                       env=env)
    if r.returncode != 0:
        cmd = ' '.join(str(a)[:60] for a in [BAIMO, *args])
        raise RuntimeError(f'{cmd}: rc {r.returncode}\n{r.stderr}')
    return r


def baimo_logits(model, ids, tag, kernels=None):
    """kernels='ref' runs baimo's scalar reference kernels (f32 activations)."""
    out = os.path.join(TMP, f'logits_{tag}.npy')
    env = dict(os.environ, BM_KERNELS=kernels) if kernels else None
    sh('logits', '-m', model, '--ids', ','.join(map(str, ids)), '-o', out, env=env)
    return np.load(out)


def clear_top1(got, want, budget=0.01):
    """Top-1 agreement on the positions whose reference margin (top-1 minus top-2) exceeds
    budget x the position's logit range: 8-bit activations (the fast kernels' design, as in
    llama.cpp) move each logit by well under 1 % of the range, so a flip there is a bug, while
    the near-ties of tiny random models may flip legitimately. Returns (agreement, fraction of
    positions that qualify)."""
    w = np.asarray(want, np.float64)
    s = np.sort(w, axis=1)
    clear = (s[:, -1] - s[:, -2]) > budget * (s[:, -1] - s[:, 0])
    agree = (np.asarray(got).argmax(1) == w.argmax(1))[clear]
    return (float(agree.mean()) if clear.any() else 0.0), float(clear.mean())


def make_model(arch, typ, tag):
    path = os.path.join(TMP, f'{tag}.gguf')
    sh('make-model', '--arch', arch, '--shape', 'tiny', '--type', typ, '--seed', 42, '-o', path)
    return path


def guarded(what, fn, *args):
    """Runs one case; a failing baimo command is that case's failure, the others still run."""
    try:
        return fn(*args)
    except Exception as e:
        check(False, f'{what}: {type(e).__name__}: {e}')
        return None


def case_f32(arch, ids):
    f32 = make_model(arch, 'f32', f'{arch}_f32')
    ref = torch_llm.load_gguf(f32)
    want = ref.logits(ids)
    got = baimo_logits(f32, ids, f'{arch}_f32')
    check(got.shape == want.shape, f'{arch} f32 logits shape {got.shape} vs {want.shape}')
    rel, cos, top = row(f'{arch} f32 baimo vs ref', got, want)
    check(rel <= 1e-3, f'{arch} f32 max diff / std = {rel:.3g} > 1e-3')
    return f32, want, got


def case_hf(arch, ids, f32, want, got):
    # HF directory from the f32 GGUF: sharded F32 (baimo dir == baimo GGUF), and BF16
    hf = os.path.join(TMP, f'{arch}_hf')
    scale = None
    if arch == 'baichuan':  # NormHead: rows of any norm in the HF dir give the same logits
        scale = np.random.default_rng(3).uniform(0.5, 2.0, torch_llm.load_gguf(f32).cfg.vocab)
    st_py.gguf_to_hf(f32, hf, 'F32', shards=2, head_scale=scale)
    rel = row(f'{arch} ref HF path vs ref GGUF path', torch_llm.load_hf(hf).logits(ids),
              want)[0]
    check(rel <= (1e-5 if arch == 'baichuan' else 1e-9),
          f'{arch} ref HF path vs GGUF path = {rel:.3g}')
    got_hf = baimo_logits(hf, ids, f'{arch}_hf')
    rel = row(f'{arch} baimo HF dir vs baimo GGUF', got_hf, got)[0]
    check(rel <= 1e-4, f'{arch} baimo HF dir vs GGUF max diff / std = {rel:.3g} > 1e-4')
    hfb = os.path.join(TMP, f'{arch}_hf_bf16')
    st_py.gguf_to_hf(f32, hfb, 'BF16')
    want_b = torch_llm.load_hf(hfb).logits(ids)
    # scalar kernels (f32 activations): strict
    rel, cos, top = row(f'{arch} bf16 HF dir baimo ref kernels vs ref',
                        baimo_logits(hfb, ids, 'b_ref', kernels='ref'), want_b)
    check(rel <= 1e-3, f'{arch} bf16 HF dir ref kernels: max diff / std {rel:.3g} > 1e-3')
    # fastest kernels: on a CPU with AVX512_BF16 the BF16 kernel rounds activations to bf16
    # (8 significant bits) for vdpbf16ps, so it is judged like the 8-bit-activation kernels
    # (cosine, top-1 on clear positions) plus max diff / std <= 0.05 (measured ~0.015);
    # without AVX512_BF16 it keeps f32 activations and stays far below that.
    got_b = baimo_logits(hfb, ids, 'b')
    rel, cos, top = row(f'{arch} bf16 HF dir baimo fast kernels vs ref', got_b, want_b)
    agree, frac = clear_top1(got_b, want_b)
    check(rel <= 0.05 and cos >= 0.999 and agree >= 0.99 and frac >= 0.5,
          f'{arch} bf16 HF dir fast kernels: max diff / std {rel:.3g}, min cosine {cos:.6f}, '
          f'top-1 on clear positions {agree:.3f} ({frac:.0%} of positions)')


def case_type(arch, typ, ids):
    path = make_model(arch, typ, f'{arch}_{typ}')
    g = gguf_py.read(path)
    types = sorted({gguf_py.GGML[t.type][0] for t in g.tensors.values()})
    want = torch_llm.load_gguf(path).logits(ids)
    check(typ.upper() in types, f'{arch} {typ}: no tensor of that type in {types}')
    # scalar kernels (f32 activations): the model math on the dequantized weights
    got = baimo_logits(path, ids, f'{arch}_{typ}_ref', kernels='ref')
    rel, cos, top = row(f'{arch} {typ} baimo ref kernels vs ref ({"/".join(types)})', got, want)
    check(cos >= 0.999 and top >= 0.99, f'{arch} {typ} ref kernels: min cosine {cos:.6f}, '
          f'top-1 {top:.3f}')
    # fastest kernels of this CPU (8-bit activations for quantized weights)
    got = baimo_logits(path, ids, f'{arch}_{typ}')
    rel, cos, top = row(f'{arch} {typ} baimo fast kernels vs ref', got, want)
    agree, frac = clear_top1(got, want)
    print(f'{arch} {typ} fast kernels: top-1 {top:.3f}; on the {frac:.0%} of positions with a '
          f'clear margin: {agree:.3f}')
    check(cos >= 0.999 and agree >= 0.99 and frac >= 0.5,
          f'{arch} {typ} fast kernels: min cosine {cos:.6f}, top-1 on clear positions {agree:.3f} '
          f'({frac:.0%} of positions)')


def case_yarn(arch, rng):
    # rope scaling yarn x4 over an original context of 128, 300 positions (metadata set here)
    src = make_model(arch, 'f32', f'{arch}_f32_y')
    dst = os.path.join(TMP, f'{arch}_yarn.gguf')
    gguf_py.copy_with_kv(src, dst, {
        f'{arch}.rope.scaling.type': (gguf_py.STR, 'yarn'),
        f'{arch}.rope.scaling.factor': (gguf_py.F32, 4.0),
        f'{arch}.rope.scaling.original_context_length': (gguf_py.U32, 128)})
    ref = torch_llm.load_gguf(dst)
    ids = rng.integers(0, ref.cfg.vocab, 300)
    want = ref.logits(ids)
    plain = torch_llm.load_gguf(src).logits(ids)
    check(stats(plain, want)[0] > 1e-2, f'{arch} yarn: scaling had no effect on the ref')
    got = baimo_logits(dst, ids, f'{arch}_yarn')
    rel = row(f'{arch} yarn x4 (orig 128, 300 pos) baimo vs ref', got, want)[0]
    check(rel <= 1e-3, f'{arch} yarn: max diff / std = {rel:.3g} > 1e-3')
    hf = os.path.join(TMP, f'{arch}_yarn_hf')
    st_py.gguf_to_hf(dst, hf)
    rel = row(f'{arch} yarn baimo HF dir vs baimo GGUF', baimo_logits(hf, ids, 'yh'), got)[0]
    check(rel <= 1e-4, f'{arch} yarn HF dir vs GGUF = {rel:.3g}')


def case_rope_freqs(rng):
    # Llama 3 rope_freqs tensor (per-pair frequency divisors), and the HF llama3 config
    src = make_model('llama', 'f32', 'llama_f32_rf')
    dst = os.path.join(TMP, 'llama_rf.gguf')
    rf = llama3_freqs(torch_llm.load_gguf(src).cfg)
    gguf_py.copy_with_kv(src, dst, extra_tensors=[gguf_py.f32_tensor('rope_freqs.weight', rf)])
    ref = torch_llm.load_gguf(dst)
    ids = rng.integers(0, ref.cfg.vocab, 200)
    got = baimo_logits(dst, ids, 'llama_rf')
    rel = row('llama rope_freqs (llama3 x8, orig 64) baimo vs ref', got, ref.logits(ids))[0]
    check(rel <= 1e-3, f'llama rope_freqs: max diff / std = {rel:.3g} > 1e-3')
    hf = os.path.join(TMP, 'llama_rf_hf')
    st_py.gguf_to_hf(dst, hf, rope_scaling=LLAMA3)
    rel = row('llama llama3-rope baimo HF dir vs baimo GGUF', baimo_logits(hf, ids, 'rfh'),
              got)[0]
    check(rel <= 1e-3, f'llama3 rope HF dir vs GGUF = {rel:.3g}')


QUANT_TYPES = ('f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q2_k')


def part2():
    rng = np.random.default_rng(1234)
    for arch in ARCHES:
        ids = rng.integers(0, 1024, 48)
        r = guarded(f'{arch} f32', case_f32, arch, ids)
        if r:
            guarded(f'{arch} HF dir', case_hf, arch, ids, *r)
        for typ in QUANT_TYPES:
            guarded(f'{arch} {typ}', case_type, arch, typ, ids)
    for arch in ('qwen2', 'llama'):
        guarded(f'{arch} yarn', case_yarn, arch, rng)
    guarded('llama rope_freqs', case_rope_freqs, rng)


def main():
    part1()
    if os.environ.get('FORWARD_REF_ONLY'):
        print('FORWARD_REF_ONLY set: baimo part skipped')
    else:
        part2()
    print(f'{"case":58s} {"maxdiff/std":>12s} {"min cos":>10s} {"top-1":>6s}')
    for case, rel, cos, top in rows:
        print(f'{case:58s} {rel:12.3e} {cos:10.7f} {top:6.3f}')
    if failures:
        print(f'{len(failures)} failure(s)')
        sys.exit(1)
    print('all forward checks passed')


if __name__ == '__main__':
    main()
