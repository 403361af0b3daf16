"""Independent PyTorch reference of a decoder-only causal LM (Llama, Qwen2, Qwen3, Baichuan2-7B,
InternLM2), written from the model cards and papers: RMSNorm, rotary embeddings (RoFormer
interleaved pairs for llama-family GGUF, rotate-half / NeoX pairs for HF and qwen GGUF), GQA,
causal softmax attention, optional QKV bias and per-head q/k RMSNorm, SwiGLU MLP, final norm,
tied or separate head (Baichuan2 NormHead), RoPE scaling linear / YaRN / Llama-3 frequency factors.
Computes in float64. Configured from GGUF metadata (gguf_py) or an HF directory (st_py).
"""
import json
import math
import os

import numpy as np
import torch

import gguf_py

NORMAL_ROPE_ARCHES = ('llama', 'baichuan', 'internlm2')  # GGUF Q/K rows permuted by converter
ARCHES = ('llama', 'qwen2', 'qwen3', 'baichuan', 'internlm2')


class Config:
    def __init__(self, **kw):
        self.arch = 'llama'
        self.n_embd = self.n_layer = self.n_head = self.n_head_kv = self.head_dim = 0
        self.n_ff = self.vocab = 0
        self.eps = 1e-6
        self.rope_base = 10000.0
        self.n_rot = 0
        self.rope_style = 'normal'   # 'normal' = pairs (2i, 2i+1); 'neox' = pairs (i, i+n_rot/2)
        self.scaling = None          # None or dict(type=linear|yarn|llama3, factor, orig_ctx, ...)
        self.freq_factors = None     # per-pair divisors of the rotary frequency (rope_freqs)
        self.norm_head = False       # Baichuan2 NormHead: L2-normalise head rows at inference
        self.n_ctx = 0
        self.__dict__.update(kw)

    def __repr__(self):
        return 'Config(%s)' % ', '.join(f'{k}={v!r}' for k, v in self.__dict__.items()
                                       if k != 'freq_factors')


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


# ------------------------------------------------------------------------------- RoPE

def rope_inv_freq(cfg):
    """Angular frequency of each rotary pair i in [0, n_rot/2), and the attention scale of cos/sin.
    theta_i = base^(-2i/n_rot) (RoFormer); scaling adjusts it."""
    d = cfg.n_rot
    inv = cfg.rope_base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    mscale = 1.0
    sc = cfg.scaling
    if sc and sc['type'] == 'linear':
        inv = inv / sc['factor']  # position interpolation: m -> m / s
    elif sc and sc['type'] == 'yarn':
        # YaRN (Peng et al. 2023): NTK-by-parts between interpolation (theta/s) and
        # extrapolation (theta) by a ramp over the pair index between the dims where the
        # number of rotations over the original context is beta_fast and beta_slow, plus
        # attention temperature sqrt(1/t) = 0.1 ln(s) + 1 applied to q and k.
        s, L = sc['factor'], sc['orig_ctx']
        bf, bs = sc.get('beta_fast', 32.0), sc.get('beta_slow', 1.0)

        def corr_dim(rot):  # pair-dim index at which L / wavelength == rot
            return d * math.log(L / (rot * 2 * math.pi)) / (2 * math.log(cfg.rope_base))
        lo = max(math.floor(corr_dim(bf)), 0)
        hi = min(math.ceil(corr_dim(bs)), d - 1)
        if hi == lo:
            hi += 0.001
        ramp = np.clip((np.arange(d // 2, dtype=np.float64) - lo) / (hi - lo), 0, 1)
        extrap = 1.0 - ramp   # 1 -> keep theta (high frequency), 0 -> theta / s
        inv = (inv / s) * (1 - extrap) + inv * extrap
        mscale = sc.get('attn_factor', 1.0) * (0.1 * math.log(s) + 1.0 if s > 1 else 1.0)
    elif sc and sc['type'] == 'llama3':
        s, L = sc['factor'], sc['orig_ctx']
        lf, hf = sc['low_freq_factor'], sc['high_freq_factor']
        wl = 2 * math.pi / inv
        smooth = np.clip((L / wl - lf) / (hf - lf), 0, 1)
        scaled = np.where(wl > L / lf, inv / s, inv)
        mid = (wl <= L / lf) & (wl >= L / hf)
        inv = np.where(mid, (1 - smooth) * inv / s + smooth * inv, scaled)
    if cfg.freq_factors is not None:
        inv = inv / np.asarray(cfg.freq_factors, dtype=np.float64)
    return inv, mscale


def apply_rope(x, pos, cfg):
    """x: [T, H, head_dim]; rotates the first n_rot dims of each head."""
    inv, mscale = rope_inv_freq(cfg)
    ang = _t(pos)[:, None] * _t(inv)[None, :]          # [T, n_rot/2]
    cos = (torch.cos(ang) * mscale)[:, None, :]
    sin = (torch.sin(ang) * mscale)[:, None, :]
    d = cfg.n_rot
    r, rest = x[..., :d], x[..., d:]
    if cfg.rope_style == 'normal':
        a, b = r[..., 0::2], r[..., 1::2]
        out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    else:
        a, b = r[..., :d // 2], r[..., d // 2:]
        out = torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return torch.cat([out, rest], dim=-1)


# ------------------------------------------------------------------------------- model

def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


class CausalLM:
    """Weights W (float64 tensors): embd, out_norm, head, and per layer i the keys
    '{i}.attn_norm', '{i}.wq', '{i}.wk', '{i}.wv', '{i}.wo' (+ '.bq/.bk/.bv', '.q_norm/.k_norm'),
    '{i}.ffn_norm', '{i}.w_gate', '{i}.w_up', '{i}.w_down'. Matrices are [out, in]."""

    def __init__(self, cfg, W):
        self.cfg, self.W = cfg, W

    @torch.no_grad()
    def logits(self, ids, positions=None):
        c, W = self.cfg, self.W
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        T = ids.shape[0]
        pos = np.arange(T, dtype=np.float64) if positions is None else np.asarray(positions, float)
        x = W['embd'][ids]
        mask = torch.full((T, T), float('-inf'), dtype=torch.float64).triu(1)
        grp = c.n_head // c.n_head_kv
        for i in range(c.n_layer):
            p = f'{i}.'
            h = rms_norm(x, W[p + 'attn_norm'], c.eps)
            q, k, v = h @ W[p + 'wq'].T, h @ W[p + 'wk'].T, h @ W[p + 'wv'].T
            if p + 'bq' in W:
                q, k, v = q + W[p + 'bq'], k + W[p + 'bk'], v + W[p + 'bv']
            q = q.view(T, c.n_head, c.head_dim)
            k = k.view(T, c.n_head_kv, c.head_dim)
            v = v.view(T, c.n_head_kv, c.head_dim)
            if p + 'q_norm' in W:
                q = rms_norm(q, W[p + 'q_norm'], c.eps)
                k = rms_norm(k, W[p + 'k_norm'], c.eps)
            q, k = apply_rope(q, pos, c), apply_rope(k, pos, c)
            k = k.repeat_interleave(grp, dim=1)   # query head j uses kv head j // grp
            v = v.repeat_interleave(grp, dim=1)
            att = torch.einsum('thd,shd->hts', q, k) / math.sqrt(c.head_dim) + mask
            att = torch.softmax(att, dim=-1)
            o = torch.einsum('hts,shd->thd', att, v).reshape(T, c.n_head * c.head_dim)
            x = x + o @ W[p + 'wo'].T
            h = rms_norm(x, W[p + 'ffn_norm'], c.eps)
            g = h @ W[p + 'w_gate'].T
            x = x + (torch.nn.functional.silu(g) * (h @ W[p + 'w_up'].T)) @ W[p + 'w_down'].T
        x = rms_norm(x, W['out_norm'], c.eps)
        head = W['head']
        if c.norm_head:
            head = head / head.norm(dim=1, keepdim=True)
        return (x @ head.T).numpy()


# ------------------------------------------------------------------------------- GGUF path

def config_from_gguf(g):
    a = g.arch()
    kv = g.kv

    def get(key, default=None):
        return kv.get(f'{a}.{key}', default)
    n_embd = int(get('embedding_length'))
    n_head = int(get('attention.head_count'))
    n_head_kv = int(get('attention.head_count_kv', n_head))
    head_dim = int(get('attention.key_length', n_embd // n_head))
    emb = g.tensors['token_embd.weight']
    cfg = Config(arch=a, n_embd=n_embd, n_layer=int(get('block_count')), n_head=n_head,
                 n_head_kv=n_head_kv, head_dim=head_dim, n_ff=int(get('feed_forward_length')),
                 vocab=int(emb.ne[1]), eps=float(get('attention.layer_norm_rms_epsilon', 1e-5)),
                 rope_base=float(get('rope.freq_base', 10000.0)),
                 n_rot=int(get('rope.dimension_count', head_dim)),
                 rope_style='normal' if a in NORMAL_ROPE_ARCHES else 'neox',
                 n_ctx=int(get('context_length', 0)))
    st = get('rope.scaling.type')
    factor = get('rope.scaling.factor')
    if st in ('linear', 'yarn') and factor and float(factor) != 1.0:
        cfg.scaling = dict(type=st, factor=float(factor),
                           orig_ctx=int(get('rope.scaling.original_context_length', cfg.n_ctx)))
        for gk, ck in (('rope.scaling.yarn_beta_fast', 'beta_fast'),
                       ('rope.scaling.yarn_beta_slow', 'beta_slow'),
                       ('rope.scaling.attn_factor', 'attn_factor')):
            if get(gk) is not None:
                cfg.scaling[ck] = float(get(gk))
    elif st is None and get('rope.scale_linear'):
        cfg.scaling = dict(type='linear', factor=float(get('rope.scale_linear')), orig_ctx=0)
    if 'rope_freqs.weight' in g.tensors:
        cfg.freq_factors = g.array('rope_freqs.weight').astype(np.float64)
    return cfg


GGUF_LAYER = {'attn_norm': 'attn_norm', 'wq': 'attn_q', 'wk': 'attn_k', 'wv': 'attn_v',
              'wo': 'attn_output', 'bq': 'attn_q.bias', 'bk': 'attn_k.bias',
              'bv': 'attn_v.bias', 'q_norm': 'attn_q_norm', 'k_norm': 'attn_k_norm',
              'ffn_norm': 'ffn_norm', 'w_gate': 'ffn_gate', 'w_up': 'ffn_up',
              'w_down': 'ffn_down'}


def gguf_tensor_name(layer, key):
    n = GGUF_LAYER[key]
    return f'blk.{layer}.{n}' if n.endswith('.bias') else f'blk.{layer}.{n}.weight'


def weights_from_gguf(g, cfg):
    W = {'embd': g.array('token_embd.weight'), 'out_norm': g.array('output_norm.weight')}
    W['head'] = g.array('output.weight') if 'output.weight' in g.tensors else W['embd']
    for i in range(cfg.n_layer):
        for k in GGUF_LAYER:
            name = gguf_tensor_name(i, k)
            if name in g.tensors:
                W[f'{i}.{k}'] = g.array(name)
            elif k not in ('bq', 'bk', 'bv', 'q_norm', 'k_norm'):
                raise KeyError(f'GGUF lacks tensor {name}')
    return {k: _t(v) for k, v in W.items()}


def load_gguf(path):
    g = gguf_py.read(path)
    cfg = config_from_gguf(g)
    return CausalLM(cfg, weights_from_gguf(g, cfg))


# ------------------------------------------------------------------------------- HF path

HF_ARCH = {'LlamaForCausalLM': 'llama', 'Qwen2ForCausalLM': 'qwen2', 'Qwen3ForCausalLM': 'qwen3',
           'BaichuanForCausalLM': 'baichuan', 'InternLM2ForCausalLM': 'internlm2'}


def config_from_hf(hc):
    arch = HF_ARCH.get((hc.get('architectures') or [''])[0], hc.get('model_type'))
    n_embd, n_head = hc['hidden_size'], hc['num_attention_heads']
    head_dim = hc.get('head_dim') or n_embd // n_head
    cfg = Config(arch=arch, n_embd=n_embd, n_layer=hc['num_hidden_layers'], n_head=n_head,
                 n_head_kv=hc.get('num_key_value_heads') or n_head, head_dim=head_dim,
                 n_ff=hc['intermediate_size'], vocab=hc['vocab_size'], eps=hc['rms_norm_eps'],
                 rope_base=float(hc.get('rope_theta', 10000.0)), n_rot=head_dim,
                 rope_style='neox',  # HF modeling code: rotate_half, pairs (i, i + d/2)
                 norm_head=(arch == 'baichuan'),
                 n_ctx=hc.get('max_position_embeddings') or hc.get('model_max_length', 0))
    rs = hc.get('rope_scaling')
    if rs:
        t = rs.get('rope_type', rs.get('type'))
        if t in ('linear', 'yarn', 'llama3'):
            cfg.scaling = dict(type=t, factor=float(rs['factor']),
                               orig_ctx=int(rs.get('original_max_position_embeddings', 0)))
            for k in ('beta_fast', 'beta_slow', 'low_freq_factor', 'high_freq_factor'):
                if k in rs:
                    cfg.scaling[k] = float(rs[k])
            if rs.get('attention_factor') is not None:
                raise NotImplementedError('yarn attention_factor override')
        elif t not in (None, 'default'):
            raise NotImplementedError(f'rope_scaling {t}')
    return cfg


def weights_from_hf(tensors, cfg):
    T = tensors
    a = cfg.arch
    qd, kd = cfg.n_head * cfg.head_dim, cfg.n_head_kv * cfg.head_dim
    if a == 'internlm2':
        W = {'embd': T['model.tok_embeddings.weight'], 'out_norm': T['model.norm.weight']}
        W['head'] = T.get('output.weight', W['embd'])
    else:
        W = {'embd': T['model.embed_tokens.weight'], 'out_norm': T['model.norm.weight']}
        W['head'] = T.get('lm_head.weight', W['embd'])
    for i in range(cfg.n_layer):
        p, o = f'model.layers.{i}.', f'{i}.'
        if a == 'internlm2':
            grp = cfg.n_head // cfg.n_head_kv
            wqkv = T[p + 'attention.wqkv.weight'].reshape(cfg.n_head_kv, grp + 2, cfg.head_dim, -1)
            W[o + 'wq'] = wqkv[:, :grp].reshape(qd, -1)
            W[o + 'wk'] = wqkv[:, grp].reshape(kd, -1)
            W[o + 'wv'] = wqkv[:, grp + 1].reshape(kd, -1)
            W[o + 'wo'] = T[p + 'attention.wo.weight']
            W[o + 'attn_norm'] = T[p + 'attention_norm.weight']
            W[o + 'ffn_norm'] = T[p + 'ffn_norm.weight']
            W[o + 'w_gate'] = T[p + 'feed_forward.w1.weight']
            W[o + 'w_up'] = T[p + 'feed_forward.w3.weight']
            W[o + 'w_down'] = T[p + 'feed_forward.w2.weight']
            continue
        if a == 'baichuan':
            wp = T[p + 'self_attn.W_pack.weight']
            W[o + 'wq'], W[o + 'wk'], W[o + 'wv'] = wp[:qd], wp[qd:qd + kd], wp[qd + kd:]
        else:
            for k, n in (('wq', 'q'), ('wk', 'k'), ('wv', 'v')):
                W[o + k] = T[p + f'self_attn.{n}_proj.weight']
                if p + f'self_attn.{n}_proj.bias' in T:
                    W[o + 'b' + n] = T[p + f'self_attn.{n}_proj.bias']
            if p + 'self_attn.q_norm.weight' in T:
                W[o + 'q_norm'] = T[p + 'self_attn.q_norm.weight']
                W[o + 'k_norm'] = T[p + 'self_attn.k_norm.weight']
        W[o + 'wo'] = T[p + 'self_attn.o_proj.weight']
        W[o + 'attn_norm'] = T[p + 'input_layernorm.weight']
        W[o + 'ffn_norm'] = T[p + 'post_attention_layernorm.weight']
        W[o + 'w_gate'] = T[p + 'mlp.gate_proj.weight']
        W[o + 'w_up'] = T[p + 'mlp.up_proj.weight']
        W[o + 'w_down'] = T[p + 'mlp.down_proj.weight']
    return {k: _t(v) for k, v in W.items()}


def load_hf(directory):
    import st_py
    with open(os.path.join(directory, 'config.json')) as f:
        hc = json.load(f)
    cfg = config_from_hf(hc)
    return CausalLM(cfg, weights_from_hf(st_py.read_dir(directory), cfg))


def load(path):
    return load_hf(path) if os.path.isdir(path) else load_gguf(path)
