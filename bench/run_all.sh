#!/usr/bin/env bash
# The goal set of whole-model benchmarks on 2 threads: random-weight models of real shapes made
# once by bench_forward --make (cached as /tmp/bench-SHAPE-TYPE.gguf) and timed by the code of
# `baimo bench`, one JSON line per model on stdout (progress on stderr), after one line from
# bench_pipes (the int8 epilogue's cost on this core).
#   bench/run_all.sh            every model (the Qwen2.5-7B Q4_0 file is ~4.4 GB: slow to make)
#   bench/run_all.sh 0.5b       only the models whose "shape type" line contains the filter
#   THREADS=1 BENCH_ARGS=--ref bench/run_all.sh 0.5b   other threads / extra bench options
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-}
threads=${THREADS:-2}
make -j2 >&2
make -j2 bench >&2
# The int8 prefill kernels' ceiling on this core (the epilogue's share of the vpdpbusd ports).
echo "{\"bench_pipes\":$(build/bench/bench_pipes --json)}"

# shape type [bench options]
models=(
  "qwen2.5-0.5b q8_0"
  "qwen2.5-0.5b q4_0"
  "qwen2.5-0.5b q4_K"
  "qwen2.5-0.5b f16"
  "qwen3-0.6b q4_K --arch qwen3"
  "qwen3-0.6b q5_K --arch qwen3"
  "qwen2.5-1.5b q8_0"
  "qwen2.5-1.5b q4_0"
  "qwen2.5-1.5b q4_K"
  "qwen2.5-1.5b f16 -p 128 -n 16 -r 3"
  "qwen2.5-7b q4_0 -p 128 -n 16 -r 3"
)

status=0
for row in "${models[@]}"; do
  [ -n "$filter" ] && [[ "$row" != *"$filter"* ]] && continue
  read -r shape type opts <<<"$row"
  file=/tmp/bench-$shape-$type.gguf
  if [ ! -e "$file" ]; then
    # Rough size: parameters (from the shape) times bits per weight, plus headroom.
    case $shape in
      qwen2.5-0.5b) gparams=0.5 ;; qwen2.5-1.5b) gparams=1.6 ;; qwen2.5-7b) gparams=7.7 ;;
      *) gparams=2 ;;
    esac
    case $type in f16) bits=16 ;; q8_0) bits=8.5 ;; *) bits=5 ;; esac
    need_mb=$(awk -v g=$gparams -v b=$bits 'BEGIN { printf "%d", g * 1000 * b / 8 * 1.2 + 512 }')
    avail_mb=$(df -Pm /tmp | awk 'NR == 2 { print $4 }')
    if [ "$avail_mb" -lt "$need_mb" ]; then
      echo "run_all: skipping $shape $type: /tmp has $avail_mb MB free, making it needs ~$need_mb MB" >&2
      status=1
      continue
    fi
  fi
  echo "run_all: $shape $type ${opts:-}" >&2
  # shellcheck disable=SC2086
  if ! build/bench/bench_forward --make "$type" --shape "$shape" -t "$threads" --json \
       ${opts:-} ${BENCH_ARGS:-}; then
    echo "run_all: $shape $type failed" >&2
    status=1
  fi
done
exit $status
