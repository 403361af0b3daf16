"""Independent safetensors reader/writer (from the safetensors format spec: u64 little-endian
header length, JSON header {name: {dtype, shape, data_offsets}}, raw little-endian data) and a
GGUF -> Hugging Face model directory converter: config.json + *.safetensors with HF tensor names
(Q/K rows un-permuted back to rotate-half order for llama-style arches, W_pack / wqkv fused for
Baichuan2 / InternLM2), F32 or BF16, optionally 2 shards + model.safetensors.index.json.

CLI: st_py.py MODEL.gguf OUT_DIR [--bf16] [--shards 2]
"""
import json
import os
import struct
import sys

import numpy as np

import gguf_py
import torch_llm

_NP = {'F32': '<f4', 'F16': '<f2', 'F64': '<f8', 'I64': '<i8', 'I32': '<i4'}


def bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even (NaN kept NaN)."""
    u = np.ascontiguousarray(a, dtype='<f4').view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(a, dtype=np.float32))
    r[nan] = 0x7FC0
    return r


def write_file(path, tensors, dtype='F32', metadata=None):
    """tensors: list of (name, float ndarray)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        if dtype == 'BF16':
            b = bf16_bits(a).astype('<u2').tobytes()
        else:
            b = np.ascontiguousarray(a, dtype=_NP[dtype]).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['__metadata__'] = metadata or {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((-len(h)) % 8)  # pad the header so data starts 8-aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


def read_file(path):
    """dict name -> float32/float64 ndarray."""
    with open(path, 'rb') as f:
        buf = f.read()
    n = struct.unpack('<Q', buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    data = buf[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        s, e = info['data_offsets']
        raw = data[s:e]
        if info['dtype'] == 'BF16':
            a = (np.frombuffer(raw, '<u2').astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, _NP[info['dtype']])
        out[name] = a.reshape(info['shape'])
    return out


def read_dir(d):
    idx = os.path.join(d, 'model.safetensors.index.json')
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
    else:
        files = [x for x in sorted(os.listdir(d)) if x.endswith('.safetensors')]
    out = {}
    for fn in files:
        out.update(read_file(os.path.join(d, fn)))
    return out


# ------------------------------------------------------------------------------- GGUF -> HF

def unpermute(w, n_head):
    """GGUF (llama.cpp converter) Q/K row order -> HF order. The converter maps HF row
    half*(hd/2) + i of each head to GGUF row 2i + half, so interleaved-pair RoPE on GGUF rows equals
    rotate-half RoPE on HF rows; this is the inverse map."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute(w, n_head):
    """HF -> GGUF row order (the converter's permutation)."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


ARCH_CLASS = {'llama': ('LlamaForCausalLM', 'llama'), 'qwen2': ('Qwen2ForCausalLM', 'qwen2'),
              'qwen3': ('Qwen3ForCausalLM', 'qwen3'),
              'baichuan': ('BaichuanForCausalLM', 'baichuan'),
              'internlm2': ('InternLM2ForCausalLM', 'internlm2')}


def hf_config(cfg, tied, rope_scaling=None):
    cls, mt = ARCH_CLASS[cfg.arch]
    hc = {'architectures': [cls], 'model_type': mt, 'hidden_size': cfg.n_embd,
          'intermediate_size': cfg.n_ff, 'num_hidden_layers': cfg.n_layer,
          'num_attention_heads': cfg.n_head, 'num_key_value_heads': cfg.n_head_kv,
          'head_dim': cfg.head_dim, 'rms_norm_eps': cfg.eps, 'rope_theta': cfg.rope_base,
          'max_position_embeddings': cfg.n_ctx, 'vocab_size': cfg.vocab,
          'tie_word_embeddings': tied, 'hidden_act': 'silu', 'torch_dtype': 'float32',
          'rope_scaling': None}
    if cfg.arch == 'baichuan':
        hc['model_max_length'] = cfg.n_ctx
    if cfg.arch == 'internlm2':
        hc['bias'] = False
    if cfg.arch == 'qwen2':
        hc['use_sliding_window'] = False
    sc = cfg.scaling
    if sc:
        rs = {'type': sc['type'], 'rope_type': sc['type'], 'factor': sc['factor']}
        if sc.get('orig_ctx'):
            rs['original_max_position_embeddings'] = sc['orig_ctx']
        for k in ('beta_fast', 'beta_slow'):
            if k in sc:
                rs[k] = sc[k]
        if sc.get('attn_factor', 1.0) != 1.0:
            raise NotImplementedError('yarn attn_factor in HF config')
        hc['rope_scaling'] = rs
    if rope_scaling is not None:  # e.g. llama3 parameters behind a rope_freqs tensor
        hc['rope_scaling'] = rope_scaling
    elif cfg.freq_factors is not None:
        raise NotImplementedError('rope_freqs tensor -> HF config (llama3 parameters) not derived')
    if cfg.n_rot != cfg.head_dim:
        raise NotImplementedError('partial rotary')
    return hc


def gguf_to_hf(gguf_path, out_dir, dtype='F32', shards=1, rope_scaling=None, head_scale=None):
    """head_scale: optional per-row factors applied to the written head (Baichuan2 NormHead
    normalises rows at inference, so the logits must not change)."""
    g = gguf_py.read(gguf_path)
    cfg = torch_llm.config_from_gguf(g)
    A = g.array
    tied = 'output.weight' not in g.tensors
    perm = cfg.arch in torch_llm.NORMAL_ROPE_ARCHES
    t = []
    pre = 'model.tok_embeddings' if cfg.arch == 'internlm2' else 'model.embed_tokens'
    t.append((pre + '.weight', A('token_embd.weight')))
    for i in range(cfg.n_layer):
        def L(k):
            return A(torch_llm.gguf_tensor_name(i, k))

        def has(k):
            return torch_llm.gguf_tensor_name(i, k) in g.tensors
        wq, wk, wv = L('wq'), L('wk'), L('wv')
        if perm:
            wq, wk = unpermute(wq, cfg.n_head), unpermute(wk, cfg.n_head_kv)
        p = f'model.layers.{i}.'
        if cfg.arch == 'internlm2':
            grp = cfg.n_head // cfg.n_head_kv
            hd = cfg.head_dim
            qg = wq.reshape(cfg.n_head_kv, grp, hd, -1)
            kg = wk.reshape(cfg.n_head_kv, 1, hd, -1)
            vg = wv.reshape(cfg.n_head_kv, 1, hd, -1)
            wqkv = np.concatenate([qg, kg, vg], axis=1).reshape(-1, cfg.n_embd)
            t += [(p + 'attention.wqkv.weight', wqkv), (p + 'attention.wo.weight', L('wo')),
                  (p + 'attention_norm.weight', L('attn_norm')),
                  (p + 'ffn_norm.weight', L('ffn_norm')),
                  (p + 'feed_forward.w1.weight', L('w_gate')),
                  (p + 'feed_forward.w3.weight', L('w_up')),
                  (p + 'feed_forward.w2.weight', L('w_down'))]
            continue
        if cfg.arch == 'baichuan':
            t.append((p + 'self_attn.W_pack.weight', np.concatenate([wq, wk, wv], axis=0)))
        else:
            t += [(p + 'self_attn.q_proj.weight', wq), (p + 'self_attn.k_proj.weight', wk),
                  (p + 'self_attn.v_proj.weight', wv)]
            if has('bq'):
                bq, bk = L('bq'), L('bk')
                if perm:
                    bq, bk = unpermute(bq, cfg.n_head), unpermute(bk, cfg.n_head_kv)
                t += [(p + 'self_attn.q_proj.bias', bq), (p + 'self_attn.k_proj.bias', bk),
                      (p + 'self_attn.v_proj.bias', L('bv'))]
            if has('q_norm'):
                t += [(p + 'self_attn.q_norm.weight', L('q_norm')),
                      (p + 'self_attn.k_norm.weight', L('k_norm'))]
        t += [(p + 'self_attn.o_proj.weight', L('wo')),
              (p + 'input_layernorm.weight', L('attn_norm')),
              (p + 'post_attention_layernorm.weight', L('ffn_norm')),
              (p + 'mlp.gate_proj.weight', L('w_gate')), (p + 'mlp.up_proj.weight', L('w_up')),
              (p + 'mlp.down_proj.weight', L('w_down'))]
    t.append(('model.norm.weight', A('output_norm.weight')))
    if not tied:
        head = A('output.weight')
        if head_scale is not None:
            head = head * np.asarray(head_scale, np.float32)[:, None]
        t.append(('output.weight' if cfg.arch == 'internlm2' else 'lm_head.weight', head))
    os.makedirs(out_dir, exist_ok=True)
    hc = hf_config(cfg, tied, rope_scaling)
    hc['torch_dtype'] = 'bfloat16' if dtype == 'BF16' else 'float32'
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(hc, f, indent=2)
    if shards <= 1:
        write_file(os.path.join(out_dir, 'model.safetensors'), t, dtype)
        return cfg
    per = (len(t) + shards - 1) // shards
    wmap, total = {}, 0
    for s in range(shards):
        fn = f'model-{s + 1:05d}-of-{shards:05d}.safetensors'
        part = t[s * per:(s + 1) * per]
        total += write_file(os.path.join(out_dir, fn), part, dtype)
        wmap.update({name: fn for name, _ in part})
    with open(os.path.join(out_dir, 'model.safetensors.index.json'), 'w') as f:
        json.dump({'metadata': {'total_size': total}, 'weight_map': wmap}, f, indent=2)
    return cfg


if __name__ == '__main__':
    args = sys.argv[1:]
    bf = '--bf16' in args
    sh = int(args[args.index('--shards') + 1]) if '--shards' in args else 1
    gguf_to_hf(args[0], args[1], 'BF16' if bf else 'F32', sh)
