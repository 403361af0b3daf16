#!/usr/bin/env bash
# Runs every test: Criterion unit binaries, reference checks (numpy/PyTorch, transformers.js,
# @huggingface/jinja), end-to-end tests, and each libFuzzer target for a short budget.
# Prints one line per test program and a closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BAIMO="$PWD/$BUILD/baimo" BAIMO_BUILD="$PWD/$BUILD" PY=/usr/bin/python3
export BAIMO_TMP=$(mktemp -d /tmp/baimo-test.XXXXXX)
trap 'rm -rf "$BAIMO_TMP"' EXIT
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
pass=0; fail=0; failed=()
only=${1:-}

run() { # name, command...
  local name=$1; shift
  [ -n "$only" ] && [[ "$name" != *"$only"* ]] && return
  local log="$BAIMO_TMP/$(echo "$name" | tr '/ ' '__').log" t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    pass=$((pass+1)); printf 'PASS  %-44s %3ds\n' "$name" $((SECONDS-t0))
  else
    fail=$((fail+1)); failed+=("$name"); printf 'FAIL  %-44s %3ds\n' "$name" $((SECONDS-t0))
    tail -n 40 "$log" | sed 's/^/    | /'
  fi
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] && run "unit/$(basename "$t")" "$t" --jobs 2
done
for t in tests/ref/test_*.py; do
  [ -e "$t" ] && run "ref/$(basename "$t")" "$PY" "$t"
done
for t in tests/ref/test_*.mjs tests/e2e/test_*.mjs; do
  [ -e "$t" ] && run "${t#tests/}" node "$t"
done
for t in tests/ref/test_*.sh tests/e2e/test_*.sh; do
  [ -e "$t" ] && run "${t#tests/}" bash "$t"
done
for f in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  n=$(basename "$f"); corpus="$BAIMO_TMP/corpus_$n"; mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/${n#fuzz_}"
  run "fuzz/$n" "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 "$corpus" $( [ -d "$seeds" ] && echo "$seeds")
done

echo
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
