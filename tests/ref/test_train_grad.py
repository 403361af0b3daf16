"""Training gradients of baimo checked against PyTorch autograd.

A PyTorch (float64) model of the llama/qwen2 rows written here from the architecture
description (RMSNorm, Q/K/V (+bias for qwen2), RoPE: interleaved pairs (2i, 2i+1) for llama
GGUF weights, rotate-half (i, i+d/2) for qwen2, causal softmax attention with GQA, SwiGLU MLP,
residuals, final norm, head tied or not, cross-entropy over the masked targets) is loaded with
the initial weights baimo wrote as GGUF (read by tests/ref/gguf_py.py) and run on the same
batch. Checks: loss within 1e-5 relative; every parameter's gradient within 1e-4 relative norm
error ||g - g_ref|| / ||g_ref||; ten AdamW steps (decay only on matrices, clipping) giving the
same losses within 1e-4 relative.
Harness: $BAIMO_BUILD/ref/train_tool (tests/ref/train_tool.c). Run with /usr/bin/python3.
"""
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_py  # noqa: E402

BUILD = os.environ.get('BAIMO_BUILD', 'build')
TOOL = os.path.join(BUILD, 'ref', 'train_tool')
TMP = os.environ.get('BAIMO_TMP') or tempfile.mkdtemp()
torch.set_default_dtype(torch.float64)
failures = []


def check(cond, msg):
    print(('ok    ' if cond else 'FAIL  ') + msg)
    if not cond:
        failures.append(msg)


def run(*args):
    r = subprocess.run([TOOL] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f'train_tool {args[0]} failed: {r.stderr}')
    return r.stdout


def rms(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, style, theta):
    # x: [B, T, n_heads, d]
    B, T, nh, d = x.shape
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]   # [T, d/2]
    c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    if style == 'interleaved':
        a, b = x[..., 0::2], x[..., 1::2]
        ra, rb = a * c - b * s, a * s + b * c
        return torch.stack([ra, rb], dim=-1).reshape(B, T, nh, d)
    a, b = x[..., :d // 2], x[..., d // 2:]
    return torch.cat([a * c - b * s, a * s + b * c], dim=-1)


def model_loss(P, cfg, tokens, mask):
    """tokens: [B, T+1] int64; mask: [B, T+1] bool (targets counted) or None."""
    inp, tgt = tokens[:, :-1], tokens[:, 1:]
    B, T = inp.shape
    H, K, E = cfg['H'], cfg['K'], cfg['E']
    d = E // H
    style = 'neox' if cfg['arch'] == 'qwen2' else 'interleaved'
    x = P['token_embd.weight'][inp]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg['L']):
        g = lambda n: P[f'blk.{i}.{n}']  # noqa: E731
        h = rms(x, g('attn_norm.weight'), cfg['eps'])
        q, k, v = h @ g('attn_q.weight').T, h @ g('attn_k.weight').T, h @ g('attn_v.weight').T
        if cfg['arch'] == 'qwen2':
            q, k, v = q + g('attn_q.bias'), k + g('attn_k.bias'), v + g('attn_v.bias')
        q = rope(q.reshape(B, T, H, d), style, cfg['theta'])
        k = rope(k.reshape(B, T, K, d), style, cfg['theta'])
        v = v.reshape(B, T, K, d)
        k = k.repeat_interleave(H // K, dim=2)   # head h reads kv head h // (H/K)
        v = v.repeat_interleave(H // K, dim=2)
        a = torch.einsum('bthd,bshd->bhts', q, k) / math.sqrt(d)
        a = a.masked_fill(~causal, float('-inf')).softmax(-1)
        o = torch.einsum('bhts,bshd->bthd', a, v).reshape(B, T, H * d)
        x = x + o @ g('attn_output.weight').T
        h = rms(x, g('ffn_norm.weight'), cfg['eps'])
        gate, up = h @ g('ffn_gate.weight').T, h @ g('ffn_up.weight').T
        x = x + (torch.nn.functional.silu(gate) * up) @ g('ffn_down.weight').T
    x = rms(x, P['output_norm.weight'], cfg['eps'])
    head = P['token_embd.weight'] if cfg['tied'] else P['output.weight']
    logits = x @ head.T
    ce = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), tgt.reshape(-1),
                                           reduction='none')
    if mask is None:
        return ce.mean()
    m = mask[:, 1:].reshape(-1).to(torch.float64)
    return (ce * m).sum() / m.sum()


def case(arch, tied, H, K, use_mask, seed):
    V, E, L, F, T, B = 61, 32, 2, 48, 9, 3
    name = f'{arch}_{"tied" if tied else "untied"}_H{H}K{K}{"_mask" if use_mask else ""}'
    cfg = dict(arch=arch, tied=tied, H=H, K=K, E=E, L=L, eps=1e-5, theta=10000.0)
    init = os.path.join(TMP, f'tg_{name}.gguf')
    run('init', arch, V, E, L, H, K, F, 16, int(tied), seed, init)
    g = gguf_py.read(init)
    check(g.kv[f'{arch}.attention.head_count_kv'] == K, f'{name}: GGUF metadata written')
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, V, size=(B, T + 1)).astype('<i4')
    tok_path = os.path.join(TMP, f'tg_{name}.i32')
    toks.tofile(tok_path)
    mask = None
    args = []
    if use_mask:
        mask = (rng.random((B, T + 1)) < 0.5).astype(np.uint8)
        mask[0, 3] = 1
        mask_path = os.path.join(TMP, f'tg_{name}.u8')
        mask.tofile(mask_path)
        args = [mask_path]
    grads_path = os.path.join(TMP, f'tg_{name}_grads.gguf')
    loss_c = float(run('grads', init, tok_path, B, T, grads_path, *args))

    names = list(g.tensors)
    P = {n: torch.tensor(g.array(n).astype(np.float64), requires_grad=True) for n in names}
    t_tok = torch.tensor(toks.astype(np.int64))
    t_mask = torch.tensor(mask.astype(bool)) if use_mask else None
    loss = model_loss(P, cfg, t_tok, t_mask)
    loss.backward()
    rel = abs(loss_c - loss.item()) / abs(loss.item())
    check(rel <= 1e-5, f'{name}: loss {loss_c:.7f} vs torch {loss.item():.7f} (rel {rel:.1e})')
    gg = gguf_py.read(grads_path)
    worst, worst_name = 0.0, ''
    for n in names:
        ref = P[n].grad.numpy()
        got = gg.array(n).astype(np.float64)
        err = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
        if err > worst:
            worst, worst_name = err, n
        if err > 1e-4:
            check(False, f'{name}: gradient of {n} rel error {err:.2e}')
    check(worst <= 1e-4, f'{name}: {len(names)} gradients, worst rel norm error {worst:.2e} '
          f'({worst_name})')
    return init, tok_path, names, cfg, toks


def adam_case(init, tok_path, names, cfg, toks, B, T):
    lr, wd, clip, steps = 3e-3, 0.1, 0.5, 10
    out = run('adam', init, tok_path, B, T, steps, lr, wd, clip).split()
    losses_c = [float(v) for v in out]
    g = gguf_py.read(init)
    P = {n: torch.tensor(g.array(n).astype(np.float64), requires_grad=True) for n in names}
    decay = [P[n] for n in names if len(g.tensors[n].ne) == 2]
    no_decay = [P[n] for n in names if len(g.tensors[n].ne) == 1]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': wd},
                             {'params': no_decay, 'weight_decay': 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    t_tok = torch.tensor(toks.astype(np.int64))
    worst = 0.0
    for s in range(steps):
        opt.zero_grad()
        loss = model_loss(P, cfg, t_tok, None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), clip)
        opt.step()
        worst = max(worst, abs(losses_c[s] - loss.item()) / abs(loss.item()))
    check(losses_c[-1] < losses_c[0] - 0.05, f'{cfg["arch"]}: AdamW lowers the loss '
          f'{losses_c[0]:.4f} -> {losses_c[-1]:.4f}')
    check(worst <= 1e-4, f'{cfg["arch"]} tied={cfg["tied"]}: {steps} AdamW steps, worst loss '
          f'rel diff {worst:.1e}')


def main():
    if not os.path.exists(TOOL):
        print(f'FAIL  {TOOL} is missing: run make {TOOL}')
        return 1
    r1 = case('llama', True, 4, 2, False, 1)
    case('llama', False, 4, 4, True, 2)
    case('qwen2', True, 4, 1, True, 3)
    r4 = case('qwen2', False, 4, 2, False, 4)
    adam_case(*r1, 3, 9)
    adam_case(*r4, 3, 9)
    print(f'{len(failures)} failures')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
