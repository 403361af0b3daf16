#!/usr/bin/env bash
# The shipped default model (models/default.gguf, trained by baimo: see models/README.md):
# it loads, carries its tokenizer and chat template, answers through the chat template, and
# has learned its corpus's distribution: poems score at least 3 bits per token better than
# uniform (perplexity < 8192/8) and at least 3x lower than the same characters shuffled
# (word order matters to it). Skips only when the model file is absent.
set -u
B=${BAIMO:-build/baimo}
M=${DEFAULT_MODEL:-models/default.gguf}
T=${BAIMO_TMP:-$(mktemp -d)}/default
mkdir -p "$T"
if [ ! -e "$M" ]; then echo "skip: $M not present"; exit 0; fi
fails=0
info=$("$B" info "$M" 2>&1) || { echo "FAIL: info: $info"; exit 1; }
grep -q "chat template yes" <<<"$info" || { echo "FAIL: no chat template"; fails=$((fails+1)); }

# Poems from the corpus (the model was trained on them) vs the same characters shuffled.
grep -v '^$' tests/ref/bpe_corpus.txt | grep '，' | head -20 > "$T/poems.txt"
/usr/bin/python3 - "$T/poems.txt" "$T/shuffled.txt" <<'PY'
import random, sys
s = open(sys.argv[1], encoding='utf-8').read()
chars = list(s.replace('\n', ''))
random.Random(1).shuffle(chars)
open(sys.argv[2], 'w', encoding='utf-8').write(''.join(chars))
PY
p1=$("$B" perplexity -m "$M" -f "$T/poems.txt" --ctx 64 2>/dev/null | tail -1 | awk '{print $2}')
p2=$("$B" perplexity -m "$M" -f "$T/shuffled.txt" --ctx 64 2>/dev/null | tail -1 | awk '{print $2}')
echo "perplexity: poems $p1, same characters shuffled $p2 (uniform would be 8192)"
/usr/bin/python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if a*3<b and a<8192/8 else 1)" "$p1" "$p2" \
  || { echo "FAIL: the model has not learned its corpus"; fails=$((fails+1)); }

ans=$("$B" run -m "$M" --chat -p "《静夜思》的作者是谁？" -n 24 --temp 0 2>/dev/null)
echo "answer: $ans"
[ -n "$(tr -d '[:space:]' <<<"$ans")" ] || { echo "FAIL: empty chat answer"; fails=$((fails+1)); }
grep -q "<|im_" <<<"$ans" && { echo "FAIL: control tokens in the answer"; fails=$((fails+1)); }
[ $fails -eq 0 ]
