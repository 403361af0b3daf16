#!/usr/bin/env bash
# The decode loop allocates nothing and makes no system calls per token (the CPU-speed issue:
# "no allocation and no syscall per token in the hot loop"). `baimo bench` on a tiny model with
# 2 threads (so the pool's wake-ups are part of it) runs with -n 8 and then -n 400; with -r 1
# it decodes n tokens twice (the timed run and the run between bandwidth probes), and
# everything else it does (load, warm-up, the probes) is the same in both runs, so the
# difference divided by the 2 x 392 extra decode steps is the cost per token:
#   - heap allocations, counted by an LD_PRELOAD shim (tests/shim/alloc_count.c): at most 0.05
#     per token (a buffer grown by doubling would add a handful; one allocation per token adds
#     784);
#   - system calls, counted by strace -f -c: at most 0.25 per token (the pool spins between
#     runs; one that slept on a futex per run would add ~10 per token). The count of a run
#     moves by a few dozen with scheduling noise (threads that went to sleep during the
#     probes), so up to 3 attempts.
set -uo pipefail
BAIMO=${BAIMO:-build/baimo}
T=$(mktemp -d "${BAIMO_TMP:-/tmp}/hotloop.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
N0=8
N1=400
# OpenBLAS (used only by training) starts its own threads at load, which spin on sched_yield
# for a while: thousands of calls that vary from run to run and are not baimo's loop.
export OPENBLAS_NUM_THREADS=1

"$BAIMO" make-model --arch qwen2 --shape tiny --type q8_0 -o "$T/tiny.gguf" 2>/dev/null ||
  { echo "FAIL: make-model"; exit 1; }
BENCH=(bench -m "$T/tiny.gguf" -p 8 -r 1 -t 2)
bench() { "$BAIMO" "${BENCH[@]}" -n "$1" >/dev/null 2>&1; }

# ---- allocations ----
SHIM=${SHIM:-${BAIMO_BUILD:-build}/shim/alloc_count.so}
[ -f "$SHIM" ] || { echo "FAIL: $SHIM not built (make tests-bin)"; exit 1; }
for n in $N0 $N1; do
  ALLOC_COUNT_FILE="$T/alloc.$n" LD_PRELOAD="$SHIM" bench "$n" ||
    bad "bench -n $n under the allocation counter failed"
done
a0=$(cat "$T/alloc.$N0" 2>/dev/null || echo 0)
a1=$(cat "$T/alloc.$N1" 2>/dev/null || echo 0)
if [ "$a0" -le 0 ]; then
  bad "the allocation counter saw nothing (LD_PRELOAD not applied?)"
else
  per=$(awk -v a="$a0" -v b="$a1" -v d=$((2 * (N1 - N0))) 'BEGIN { printf "%.3f", (b - a) / d }')
  if awk -v p="$per" 'BEGIN { exit !(p <= 0.05) }'; then
    echo "ok: allocations $a0 (-n $N0) vs $a1 (-n $N1): $per per token"
  else
    bad "allocations $a0 (-n $N0) vs $a1 (-n $N1): $per per generated token (limit 0.05)"
  fi
fi

# ---- system calls ----
if ! strace -f -c -o "$T/probe.txt" true >/dev/null 2>&1; then
  echo "skip: strace cannot trace here (not installed or ptrace not permitted)"
else
  calls() { strace -f -c -o "$T/sc.$1" "$BAIMO" "${BENCH[@]}" -n "$1" >/dev/null 2>&1 &&
    awk '$NF == "total" { print $4 }' "$T/sc.$1"; }
  ok=0 broken=0
  for attempt in 1 2 3; do
    s0=$(calls $N0)
    s1=$(calls $N1)
    if [ -z "$s0" ] || [ -z "$s1" ]; then
      bad "bench under strace failed"
      broken=1
      break
    fi
    per=$(awk -v a="$s0" -v b="$s1" -v d=$((2 * (N1 - N0))) 'BEGIN { printf "%.3f", (b - a) / d }')
    if awk -v p="$per" 'BEGIN { exit !(p <= 0.25) }'; then
      echo "ok: system calls $s0 (-n $N0) vs $s1 (-n $N1): $per per token (attempt $attempt)"
      ok=1
      break
    fi
    echo "note: system calls $s0 (-n $N0) vs $s1 (-n $N1): $per per token (attempt $attempt)"
  done
  [ $ok -eq 1 ] || [ $broken -eq 1 ] || bad "more than 0.25 system calls per token in 3 attempts"
fi

[ $fail -eq 0 ] && echo "test_hotloop: all checks passed"
exit $fail
