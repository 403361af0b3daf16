#!/usr/bin/env bash
# make run: start the main job on the default model, making a model first when none is there.
set -euo pipefail
build=$1 model=$2
if [ ! -e "$model" ]; then
  echo "run: $model not found; making a random-weight tiny model with baimo make-model" >&2
  mkdir -p "$(dirname "$model")"
  "$build/baimo" make-model --arch qwen2 --shape tiny --type q8_0 -o "$model"
fi
exec "$build/baimo" run -m "$model" -p "${PROMPT:-你好，百模}" -n "${N:-32}"
