#!/usr/bin/env bash
# The CLI on bad input: each case a specific message and a non-zero exit, never a crash
# (exit codes >= 128 are signals); and the happy paths of make-model/info/run/logits.
set -u
B=${BAIMO:-build/baimo}
T=${BAIMO_TMP:-$(mktemp -d)}/cli
mkdir -p "$T"
fails=0
expect_fail() { # message-substring, command...
  local want=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: '$*' (exit $rc) should fail mentioning '$want'; got: $out"; fails=$((fails+1))
  else
    echo "ok: $want"
  fi
}
expect_ok() {
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL: '$*' exit $rc: $out"; fails=$((fails+1)); else echo "ok: $1 ${2:-}"; fi
}

expect_ok "$B" make-model --arch llama --shape tiny --type q8_0 --ctx 64 -o "$T/m.gguf"
expect_ok "$B" info "$T/m.gguf"
expect_ok "$B" run -m "$T/m.gguf" --ids 1,2,3 -n 4 --temp 0
expect_ok "$B" logits -m "$T/m.gguf" --ids 1,2,3 -o "$T/l.npy"
out=$("$B" run -m "$T/m.gguf" --ids 1,2,3 -n 5 --temp 0 2>/dev/null)
[ "$(wc -w <<<"$out")" -eq 5 ] || { echo "FAIL: run printed '$out', want 5 ids"; fails=$((fails+1)); }

# quantize f32 -> q4_k equals making the q4_k model directly (same seed, same reference quantizer)
expect_ok "$B" make-model --arch llama --shape tiny --type f32 --ctx 64 -o "$T/f.gguf"
expect_ok "$B" make-model --arch llama --shape tiny --type q4_k --ctx 64 -o "$T/k.gguf"
expect_ok "$B" quantize "$T/f.gguf" "$T/fq.gguf" q4_k
"$B" logits -m "$T/k.gguf" --ids 1,2,3 -o "$T/k.npy" && "$B" logits -m "$T/fq.gguf" --ids 1,2,3 -o "$T/fq.npy"
cmp -s "$T/k.npy" "$T/fq.npy" || { echo "FAIL: quantize differs from make-model"; fails=$((fails+1)); }
# the same for q2_k (its logits through the Q2_K fast kernel)
expect_ok "$B" make-model --arch llama --shape tiny --type q2_k --ctx 64 -o "$T/k2.gguf"
expect_ok "$B" quantize "$T/f.gguf" "$T/fq2.gguf" q2_k
"$B" logits -m "$T/k2.gguf" --ids 1,2,3 -o "$T/k2.npy" && "$B" logits -m "$T/fq2.gguf" --ids 1,2,3 -o "$T/fq2.npy"
cmp -s "$T/k2.npy" "$T/fq2.npy" || { echo "FAIL: quantize q2_k differs from make-model"; fails=$((fails+1)); }
expect_fail "unknown type" "$B" quantize "$T/f.gguf" "$T/x.gguf" q9_9

head -c 1000 "$T/m.gguf" > "$T/trunc.gguf"
expect_fail "gguf" "$B" info "$T/trunc.gguf"
printf 'NOTGGUF-at-all-xxxxxxxxxxxxxxxxxxxxxxxxxxx' > "$T/magic.gguf"
expect_fail "magic" "$B" info "$T/magic.gguf"
expect_fail "no such file" "$B" info "$T/none.gguf"
expect_fail "unknown architecture" "$B" make-model --arch gpt9 --shape tiny -o "$T/x.gguf"
expect_fail "unknown shape" "$B" make-model --arch llama --shape huge -o "$T/x.gguf"
expect_fail "unknown type" "$B" make-model --arch llama --shape tiny --type q9 -o "$T/x.gguf"
long=$(seq -s, 1 80)
expect_fail "context" "$B" run -m "$T/m.gguf" --ids "$long" -n 4
expect_fail "-n must be >= 0" "$B" run -m "$T/m.gguf" --ids 1,2 -n -5
expect_fail "vocabulary" "$B" run -m "$T/m.gguf" --ids 1,99999 -n 2
expect_fail "bad token id" "$B" logits -m "$T/m.gguf" --ids 1,x -o "$T/l.npy"
expect_fail "--temp must be" "$B" run -m "$T/m.gguf" --ids 1 --temp -1
expect_fail "unknown command" "$B" frobnicate
expect_fail "no tokenizer" "$B" run -m "$T/m.gguf" -p "hello"

echo "$((fails == 0 ? 1 : 0)) passed, $fails failed" >/dev/null
[ $fails -eq 0 ]
